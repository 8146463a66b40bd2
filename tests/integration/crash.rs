#![cfg(unix)]
//! Crash safety with the real binary (DESIGN.md §3): while producers post messages, the
//! server is killed with SIGKILL several times and restarted on the same data dir. Every
//! acknowledged message must still reach its endpoint, signed, under the id ingest returned.

use crate::support::server::{bin, Server};
use crate::support::{signature_valid, wait_for, TestReceiver};
use rand::Rng;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

const PRODUCERS: usize = 8;
const KILLS: usize = 4;

/// What the producers saw.
#[derive(Default)]
struct Ledger {
    /// seq → message id, for every message answered 2xx (the id is `None` if the answer's
    /// body was cut off by the kill).
    acked: Mutex<BTreeMap<u64, Option<String>>>,
    /// Requests that got no answer (refused, reset, timed out): not acknowledged.
    unanswered: AtomicU64,
    /// Answers that were not 2xx: there should be none.
    refused: Mutex<Vec<String>>,
}

impl Ledger {
    fn acked_count(&self) -> usize {
        self.acked.lock().unwrap().len()
    }
}

/// Posts `{"seq": n}` messages in a loop to whichever server `base` names, until `stop`.
async fn produce(
    client: reqwest::Client,
    base: Arc<RwLock<String>>,
    token: Arc<str>,
    app: Arc<str>,
    next_seq: Arc<AtomicU64>,
    ledger: Arc<Ledger>,
    stop: Arc<AtomicBool>,
) {
    while !stop.load(Ordering::Relaxed) {
        let seq = next_seq.fetch_add(1, Ordering::Relaxed);
        let url = format!("{}/app/{app}/msg", base.read().unwrap());
        let sent = client
            .post(url)
            .bearer_auth(&*token)
            .json(&json!({ "eventType": "crash.test", "payload": { "seq": seq } }))
            .send()
            .await;
        match sent {
            Ok(resp) if resp.status().is_success() => {
                let id = resp
                    .json::<Value>()
                    .await
                    .ok()
                    .and_then(|v| v["id"].as_str().map(str::to_owned));
                ledger.acked.lock().unwrap().insert(seq, id);
            }
            Ok(resp) => {
                let status = resp.status();
                let body = resp.text().await.unwrap_or_default();
                ledger
                    .refused
                    .lock()
                    .unwrap()
                    .push(format!("seq {seq}: {status} {body}"));
            }
            Err(_) => {
                // The server is down or was killed mid-request: back off, then go on with
                // the next seq (against the new address once the server is back).
                ledger.unanswered.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(15)).await;
            }
        }
    }
}

/// Waits until `server` (start number `round`, just started) acknowledges a message.
async fn acknowledges_some(ledger: &Ledger, server: &Server, round: usize) {
    let before = ledger.acked_count();
    let ok = wait_for(Duration::from_secs(20), || async {
        ledger.acked_count() > before
    })
    .await;
    assert!(
        ok,
        "start {round} acknowledged no message within 20 s; stderr:\n{}",
        server.stderr()
    );
}

/// One setup call to the API; asserts the status and returns the JSON body.
async fn call(
    client: &reqwest::Client,
    token: &str,
    url: String,
    body: Option<Value>,
    expect: u16,
) -> Value {
    let mut req = match &body {
        Some(b) => client.post(&url).json(b),
        None => client.get(&url),
    };
    req = req.bearer_auth(token);
    let resp = req.send().await.expect("request is sent");
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    assert_eq!(status, expect, "{url} answered {status}: {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_messages_survive_repeated_kill_9_and_are_delivered_signed_under_their_ids() {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(bin())
        .args(["token", "create", "--name", "crash", "--data-dir"])
        .arg(dir.path())
        .output()
        .expect("hookbox token create runs");
    assert!(out.status.success(), "token create: {out:?}");
    let token: Arc<str> = String::from_utf8(out.stdout).unwrap().trim().into();
    assert!(!token.is_empty() && !token.contains(char::is_whitespace));

    let receiver = TestReceiver::start().await;
    let log = |n: usize| dir.path().join(format!("serve-{n}.log"));
    let mut server = Server::start(dir.path(), log(0)).await;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let api = server.api.clone();
    let app = call(
        &client,
        &token,
        format!("{api}/app"),
        Some(json!({ "name": "crash" })),
        201,
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let hook = json!({ "url": format!("{}/hook", receiver.url) });
    let ep = call(
        &client,
        &token,
        format!("{api}/app/{app}/endpoint"),
        Some(hook),
        201,
    )
    .await;
    let ep = ep["id"].as_str().unwrap();
    let secret = call(
        &client,
        &token,
        format!("{api}/app/{app}/endpoint/{ep}/secret"),
        None,
        200,
    )
    .await["key"]
        .as_str()
        .unwrap()
        .to_owned();

    let base = Arc::new(RwLock::new(api));
    let ledger = Arc::new(Ledger::default());
    let stop = Arc::new(AtomicBool::new(false));
    let next_seq = Arc::new(AtomicU64::new(0));
    let app: Arc<str> = app.into();
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|_| {
            tokio::spawn(produce(
                client.clone(),
                base.clone(),
                token.clone(),
                app.clone(),
                next_seq.clone(),
                ledger.clone(),
                stop.clone(),
            ))
        })
        .collect();

    let mut dwells = Vec::new();
    for round in 1..=KILLS {
        acknowledges_some(&ledger, &server, round - 1).await;
        // How long ingest runs before this kill: the experiment itself, not a wait.
        let dwell = rand::thread_rng().gen_range(100..=400);
        dwells.push(dwell);
        tokio::time::sleep(Duration::from_millis(dwell)).await;
        server.kill_9();
        server = Server::start(dir.path(), log(round)).await;
        *base.write().unwrap() = server.api.clone();
    }
    acknowledges_some(&ledger, &server, KILLS).await;
    stop.store(true, Ordering::Relaxed);
    for p in producers {
        p.await.unwrap();
    }

    let acked = ledger.acked.lock().unwrap().clone();
    println!(
        "crash test, ingest: {KILLS} kills (after {dwells:?} ms); {} messages attempted, {} \
         acknowledged ({} without a readable id), {} unanswered, {} refused; {:.1?}",
        next_seq.load(Ordering::Relaxed),
        acked.len(),
        acked.values().filter(|id| id.is_none()).count(),
        ledger.unanswered.load(Ordering::Relaxed),
        ledger.refused.lock().unwrap().len(),
        started.elapsed(),
    );

    // Durable before acknowledged: the restarted server has every acknowledged message.
    let mut not_stored = Vec::new();
    for (seq, id) in &acked {
        let Some(id) = id else { continue };
        let url = format!("{}/app/{app}/msg/{id}", server.api);
        let resp = client.get(&url).bearer_auth(&*token).send().await.unwrap();
        let status = resp.status().as_u16();
        let stored = resp.json::<Value>().await.unwrap_or_default();
        if status != 200 || stored["payload"]["seq"].as_u64() != Some(*seq) {
            not_stored.push(format!("seq {seq} ({id}): GET message → {status} {stored}"));
        }
    }
    assert!(
        not_stored.is_empty(),
        "{} of {} acknowledged messages are not in the database after the last restart: \
         {not_stored:#?}",
        not_stored.len(),
        acked.len()
    );

    let delivered_seqs = |got: &[crate::support::receiver::Received]| -> BTreeSet<u64> {
        got.iter()
            .filter_map(|r| serde_json::from_slice::<Value>(&r.body).ok()?["seq"].as_u64())
            .collect()
    };
    let all_delivered = wait_for(Duration::from_secs(60), || async {
        receiver.count() >= acked.len() && {
            let seqs = delivered_seqs(&receiver.received());
            acked.keys().all(|s| seqs.contains(s))
        }
    })
    .await;

    // Every delivery: on the endpoint's path, signed, and one id per seq.
    let got = receiver.received();
    let mut ids_by_seq: BTreeMap<u64, BTreeSet<String>> = BTreeMap::new();
    let mut seqs_by_id: HashMap<String, BTreeSet<u64>> = HashMap::new();
    let mut malformed = Vec::new();
    for r in &got {
        let headers = (
            r.header("webhook-id"),
            r.header("webhook-timestamp"),
            r.header("webhook-signature"),
        );
        let seq = serde_json::from_slice::<Value>(&r.body)
            .ok()
            .and_then(|v| v["seq"].as_u64());
        match (headers, seq) {
            ((Some(id), Some(ts), Some(sig)), Some(seq))
                if r.path == "/hook" && signature_valid(&secret, id, ts, &r.body, sig) =>
            {
                ids_by_seq.entry(seq).or_default().insert(id.to_owned());
                seqs_by_id.entry(id.to_owned()).or_default().insert(seq);
            }
            _ => malformed.push(format!(
                "{} {:?} {}",
                r.path,
                r.headers,
                String::from_utf8_lossy(&r.body)
            )),
        }
    }
    let missing: Vec<u64> = acked
        .keys()
        .filter(|s| !ids_by_seq.contains_key(s))
        .copied()
        .collect();
    let wrong_id: Vec<String> = acked
        .iter()
        .filter_map(|(seq, id)| {
            let seen = ids_by_seq.get(seq)?;
            let id = id.as_ref()?;
            (seen.len() != 1 || !seen.contains(id))
                .then(|| format!("seq {seq}: acknowledged as {id}, delivered as {seen:?}"))
        })
        .collect();
    let split_ids: Vec<_> = ids_by_seq.iter().filter(|(_, ids)| ids.len() > 1).collect();
    let shared_ids: Vec<_> = seqs_by_id.iter().filter(|(_, s)| s.len() > 1).collect();
    let duplicates = got.len() - malformed.len() - ids_by_seq.len();
    let unacked_delivered = ids_by_seq.keys().filter(|s| !acked.contains_key(s)).count();
    let refused = ledger.refused.lock().unwrap().clone();

    println!(
        "crash test, delivery: {} deliveries of {} distinct messages, {duplicates} duplicates, \
         {unacked_delivered} delivered though unacknowledged, {} acknowledged but missing; \
         total {:.1?}",
        got.len(),
        ids_by_seq.len(),
        missing.len(),
        started.elapsed(),
    );

    if !missing.is_empty() {
        // They are stored (checked above): say what became of their deliveries.
        let mut report = Vec::new();
        for seq in missing.iter().take(5) {
            let Some(id) = &acked[seq] else { continue };
            let url = format!("{}/app/{app}/msg/{id}/endpoint", server.api);
            let resp = client.get(&url).bearer_auth(&*token).send().await;
            let text = match resp {
                Ok(r) => r.text().await.unwrap_or_default(),
                Err(e) => e.to_string(),
            };
            report.push(format!("seq {seq} ({id}): {text}"));
        }
        panic!(
            "{} of {} acknowledged messages were never delivered (all delivered: {all_delivered}); \
             first: {:?}\n{}\nlast server's stderr:\n{}",
            missing.len(),
            acked.len(),
            &missing[..missing.len().min(20)],
            report.join("\n"),
            server.stderr()
        );
    }
    assert!(
        malformed.is_empty(),
        "{} deliveries were unsigned, badly signed or malformed; first: {}",
        malformed.len(),
        malformed[0]
    );
    assert!(
        wrong_id.is_empty(),
        "webhook-id differs from ingest: {wrong_id:#?}"
    );
    assert!(
        split_ids.is_empty(),
        "one message, several webhook-ids: {split_ids:?}"
    );
    assert!(
        shared_ids.is_empty(),
        "one webhook-id, several messages: {shared_ids:?}"
    );
    assert!(
        refused.is_empty(),
        "non-2xx answers to valid messages: {refused:#?}"
    );
    assert!(!acked.is_empty());
    server.kill_9();
}
