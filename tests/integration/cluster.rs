#![cfg(unix)]
//! A cluster: several `hookbox serve` processes (nodes) sharing one PostgreSQL database, as in
//! production: any node serves the API, every node delivers. Real binaries, a real database,
//! real receivers; the faults are real signals (SIGKILL, SIGSTOP/SIGCONT, SIGTERM). Each node
//! has a data dir of its own (with its `hookbox.toml`), all share `--database-url`.
//!
//! Only on PostgreSQL: `HOOKBOX_TEST_BACKEND=postgres` (with `HOOKBOX_TEST_PG_URL`).
//!
//! Nothing here sleeps to prove that something did not happen: each test waits (with a
//! deadline) until the database says every delivery is finished and unleased, after which no
//! node can send anything more, and only then counts what the receivers got.

use crate::support::receiver::{Received, Reply};
use crate::support::server::{bin, Server};
use crate::support::{pg_database_for, signature_valid, wait_for, TestReceiver, PG_TEST_MAIN_KEY};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// Each node's `hookbox.toml`: how fast nodes beat and are taken for dead, plus `delivery`
/// settings.
fn config(heartbeat: &str, node_timeout: &str, delivery: &str) -> String {
    format!(
        "shutdown_grace = \"5s\"\n\
         [database]\n\
         pool_size = 8\n\
         heartbeat_interval = \"{heartbeat}\"\n\
         node_timeout = \"{node_timeout}\"\n\
         [delivery]\n\
         retry_schedule = [\"0s\", \"500ms\", \"1s\"]\n\
         retry_jitter = 0.0\n\
         {delivery}\n"
    )
}

fn now_ms() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

/// The nodes sharing one database, the token they accept, and a connection to the database
/// for looking at leases.
struct Cluster {
    url: String,
    token: String,
    config: String,
    client: reqwest::Client,
    db: tokio_postgres::Client,
    /// Every node started, in order (a replacement is a new node).
    nodes: Vec<Node>,
    _root: tempfile::TempDir,
}

struct Node {
    /// `None` once killed or stopped.
    server: Option<Server>,
    /// `http://127.0.0.1:PORT/api/v1`
    api: String,
    /// Its name in the `nodes` table: the owner its leases name.
    id: String,
    log: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Cluster {
    /// A fresh database with an API token; no node yet.
    async fn new(config: String) -> Cluster {
        let root = tempfile::tempdir().unwrap();
        let url = pg_database_for(root.path());
        let out = Command::new(bin())
            .env("HOOKBOX_MAIN_KEY", PG_TEST_MAIN_KEY)
            .args(["token", "create", "--name", "t", "--database-url", &url])
            .arg("--data-dir")
            .arg(root.path())
            .output()
            .expect("hookbox token create runs");
        assert!(out.status.success(), "token create: {out:?}");
        let token = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .last()
            .expect("a token")
            .trim()
            .to_owned();
        assert!(token.starts_with("hbx_"), "token create printed {token:?}");
        let (db, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .expect("the test database answers");
        tokio::spawn(conn);
        Cluster {
            url,
            token,
            config,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap(),
            db,
            nodes: Vec::new(),
            _root: root,
        }
    }

    /// Starts one more node on a data dir of its own; returns its index.
    async fn start_node(&mut self) -> usize {
        self.start_node_with_key(PG_TEST_MAIN_KEY).await
    }

    /// [`Cluster::start_node`] with main key `key`.
    async fn start_node_with_key(&mut self, key: &str) -> usize {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("hookbox.toml"), &self.config).unwrap();
        let before = self.node_ids().await;
        let log = dir.path().join("serve.log");
        let server = Server::start_with_args(
            dir.path(),
            log.clone(),
            &[("HOOKBOX_MAIN_KEY", key)],
            &[
                "--database-url",
                &self.url,
                "--allow-destination",
                "127.0.0.0/8",
            ],
        )
        .await;
        // A node registers (heartbeats) before it serves.
        let new: Vec<String> = self.node_ids().await.difference(&before).cloned().collect();
        assert_eq!(new.len(), 1, "one new row in `nodes`: {new:?}");
        self.nodes.push(Node {
            api: server.api.clone(),
            server: Some(server),
            id: new[0].clone(),
            log,
            _dir: dir,
        });
        self.nodes.len() - 1
    }

    async fn node_ids(&self) -> BTreeSet<String> {
        self.db
            .query("SELECT id FROM nodes", &[])
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect()
    }

    fn server(&self, i: usize) -> &Server {
        self.nodes[i].server.as_ref().expect("the node runs")
    }

    fn stderr(&self, i: usize) -> String {
        std::fs::read_to_string(&self.nodes[i].log).unwrap_or_default()
    }

    /// The end of every node's log, for failure messages.
    fn logs(&self) -> String {
        (0..self.nodes.len())
            .map(|i| {
                let all = self.stderr(i);
                let lines: Vec<&str> = all.lines().collect();
                let tail = lines[lines.len().saturating_sub(25)..].join("\n");
                format!("--- node {i} ({}):\n{tail}", self.nodes[i].id)
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Sends `sig` (`STOP`, `CONT`, `TERM`) to node `i`.
    fn signal(&self, i: usize, sig: &str) {
        self.server(i).signal(sig);
    }

    /// Waits (at most `within`) for node `i`'s process to end; whether it did.
    async fn exits(&mut self, i: usize, within: Duration) -> bool {
        let child = &mut self.nodes[i].server.as_mut().expect("the node runs").child;
        wait_for(within, || {
            let done = child.try_wait().unwrap().is_some();
            async move { done }
        })
        .await
    }

    fn kill_9(&mut self, i: usize) {
        self.nodes[i].server.take().expect("the node runs").kill_9();
    }

    /// One API call; asserts the status and returns the JSON body (or null).
    async fn call(&self, method: &str, url: &str, body: Option<Value>, expect: u16) -> Value {
        let mut req = self
            .client
            .request(method.parse().unwrap(), url)
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        assert_eq!(status, expect, "{method} {url} answered {status}: {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    /// An application with one endpoint at `url`, made through node `via`: (app, endpoint,
    /// signing secret).
    async fn setup(&self, via: usize, url: &str) -> (String, String, String) {
        let api = &self.nodes[via].api;
        let app = self
            .call(
                "POST",
                &format!("{api}/app"),
                Some(json!({ "name": "cluster" })),
                201,
            )
            .await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let ep = self
            .call(
                "POST",
                &format!("{api}/app/{app}/endpoint"),
                Some(json!({ "url": url })),
                201,
            )
            .await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let secret = self
            .call(
                "GET",
                &format!("{api}/app/{app}/endpoint/{ep}/secret"),
                None,
                200,
            )
            .await["key"]
            .as_str()
            .unwrap()
            .to_owned();
        (app, ep, secret)
    }

    /// Makes the endpoint ordered, through node `via`.
    async fn make_ordered(&self, via: usize, app: &str, ep: &str) {
        let v = self
            .call(
                "PATCH",
                &format!("{}/app/{app}/endpoint/{ep}", self.nodes[via].api),
                Some(json!({ "ordered": true })),
                200,
            )
            .await;
        assert_eq!(v["ordered"], true);
    }

    /// Every delivery of `app` is finished (delivered) and leased to no node: nothing more
    /// can be sent.
    async fn settled(&self, app: &str) -> bool {
        let open: i64 = self
            .db
            .query_one(
                "SELECT COUNT(*) FROM deliveries d JOIN messages m ON m.id = d.msg_id \
                 WHERE m.app_id = $1 AND (d.status <> 0 OR d.lease_owner IS NOT NULL)",
                &[&app],
            )
            .await
            .unwrap()
            .get(0);
        open == 0
    }

    /// Every delivery of `app` is finished (delivered or canceled) and leased to no node.
    async fn settled_or_canceled(&self, app: &str) -> bool {
        let open: i64 = self
            .db
            .query_one(
                "SELECT COUNT(*) FROM deliveries d JOIN messages m ON m.id = d.msg_id \
                 WHERE m.app_id = $1 AND (d.status NOT IN (0, 5) OR d.lease_owner IS NOT NULL)",
                &[&app],
            )
            .await
            .unwrap()
            .get(0);
        open == 0
    }

    /// Message ids of `app` whose delivery node `i` holds a lease on.
    async fn leased_to(&self, i: usize) -> BTreeSet<String> {
        self.db
            .query(
                "SELECT msg_id FROM deliveries WHERE lease_owner = $1",
                &[&self.nodes[i].id],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect()
    }

    /// Successful delivery attempts node `i` made, from its `/metrics`.
    async fn delivered_by(&self, i: usize) -> u64 {
        self.metric(i, "hookbox_delivery_attempts_total{outcome=\"success\"}")
            .await
    }

    /// The value of series `series` in node `i`'s `/metrics`.
    async fn metric(&self, i: usize, series: &str) -> u64 {
        let root = self.nodes[i].api.trim_end_matches("/api/v1");
        let text = self
            .client
            .get(format!("{root}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {series} in node {i}'s metrics:\n{text}"))
    }

    /// Waits until the database is settled for `app` and the receiver has every `seq`.
    async fn wait_delivered(
        &self,
        app: &str,
        receiver: &TestReceiver,
        seqs: &BTreeSet<u64>,
        within: Duration,
    ) -> bool {
        wait_for(within, || async {
            let got = seqs_of(&receiver.received());
            seqs.iter().all(|s| got.contains(s)) && self.settled(app).await
        })
        .await
    }
}

/// What the cluster delivered of what a load had acknowledged.
struct Settled {
    acked: BTreeMap<u64, Ack>,
    got: Vec<Received>,
    seen: Seen,
    /// Messages delivered more than once, and how many times.
    duplicates: BTreeMap<u64, usize>,
}

impl Cluster {
    /// Once `load`'s producers are done: every answer was 2xx, and within `within` the
    /// database settles with every acknowledged message delivered to `receiver`, signed with
    /// `secret`.
    async fn settle(
        &self,
        load: &Load,
        app: &str,
        receiver: &TestReceiver,
        secret: &str,
        within: Duration,
    ) -> Settled {
        let acked = load.acked();
        let refused = load.ledger.refused.lock().unwrap().clone();
        assert!(
            refused.is_empty(),
            "non-2xx answers: {refused:#?}\n{}",
            self.logs()
        );
        let seqs: BTreeSet<u64> = acked.keys().copied().collect();
        let done = self.wait_delivered(app, receiver, &seqs, within).await;
        let got = receiver.received();
        let seen = seen(&got, secret);
        let duplicates = seen.check(&acked, &self.logs());
        assert!(done, "the database never settled\n{}", self.logs());
        Settled {
            acked,
            got,
            seen,
            duplicates,
        }
    }
}

/// Sums the `key=N` fields of the log lines containing `message`.
fn logged_total(log: &str, message: &str, key: &str) -> u64 {
    log.lines()
        .filter(|l| l.contains(message))
        .filter_map(|l| {
            l.split_whitespace()
                .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
                .and_then(|n| n.parse::<u64>().ok())
        })
        .sum()
}

const FENCED: &str =
    "results dropped: their deliveries were deleted, or leased to another node, meanwhile";
const REJOINED: &str = "this node was taken for dead";
const HANDED_BACK: &str = "gave back unsent deliveries to the other nodes";
const NOT_HANDED_BACK: &str = "cannot give back this node's leases";

/// What producers saw.
#[derive(Default)]
struct Ledger {
    /// seq → what acknowledged it.
    acked: Mutex<BTreeMap<u64, Ack>>,
    /// Requests that got no answer (refused, reset, timed out): not acknowledged.
    unanswered: AtomicU64,
    /// Answers that were not 2xx: there should be none.
    refused: Mutex<Vec<String>>,
}

#[derive(Debug, Clone)]
struct Ack {
    /// `None` if the answer's body was cut off.
    id: Option<String>,
    /// The slot (in `Load::targets`) that answered.
    slot: usize,
    /// When the request was sent.
    sent: Instant,
}

/// Producers posting `{"seq": n}` messages to one application, round-robin over the nodes
/// in `targets` (a slot is `None` while its node is down).
struct Load {
    client: reqwest::Client,
    token: String,
    app: String,
    targets: RwLock<Vec<Option<String>>>,
    next_seq: AtomicU64,
    /// The producers stop once this many seqs are taken, or on `stop`.
    limit: u64,
    stop: AtomicBool,
    ledger: Ledger,
}

impl Load {
    fn new(cluster: &Cluster, app: &str, slots: &[usize], limit: u64) -> Arc<Load> {
        Arc::new(Load {
            client: cluster.client.clone(),
            token: cluster.token.clone(),
            app: app.to_owned(),
            targets: RwLock::new(
                slots
                    .iter()
                    .map(|&i| Some(cluster.nodes[i].api.clone()))
                    .collect(),
            ),
            next_seq: AtomicU64::new(0),
            limit,
            stop: AtomicBool::new(false),
            ledger: Ledger::default(),
        })
    }

    fn start(self: &Arc<Self>, producers: usize) -> Vec<tokio::task::JoinHandle<()>> {
        (0..producers)
            .map(|_| tokio::spawn(self.clone().produce()))
            .collect()
    }

    fn set_target(&self, slot: usize, api: Option<String>) {
        self.targets.write().unwrap()[slot] = api;
    }

    fn acked(&self) -> BTreeMap<u64, Ack> {
        self.ledger.acked.lock().unwrap().clone()
    }

    fn acked_by(&self, slot: usize) -> usize {
        let acked = self.ledger.acked.lock().unwrap();
        acked.values().filter(|a| a.slot == slot).count()
    }

    async fn finish(&self, producers: Vec<tokio::task::JoinHandle<()>>) {
        self.stop.store(true, Ordering::Relaxed);
        for p in producers {
            p.await.unwrap();
        }
    }

    async fn produce(self: Arc<Self>) {
        while !self.stop.load(Ordering::Relaxed) {
            let seq = self.next_seq.fetch_add(1, Ordering::Relaxed);
            if seq >= self.limit {
                return;
            }
            let target = {
                let targets = self.targets.read().unwrap();
                let n = targets.len();
                let first = usize::try_from(seq).unwrap() % n;
                (0..n)
                    .map(|k| (first + k) % n)
                    .find_map(|slot| Some((slot, targets[slot].clone()?)))
            };
            let Some((slot, base)) = target else {
                self.ledger.unanswered.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(15)).await;
                continue;
            };
            let sent = Instant::now();
            let answer = self
                .client
                .post(format!("{base}/app/{}/msg", self.app))
                .bearer_auth(&self.token)
                .json(&json!({ "eventType": "cluster.test", "payload": { "seq": seq } }))
                .send()
                .await;
            match answer {
                Ok(resp) if resp.status().is_success() => {
                    let id = resp
                        .json::<Value>()
                        .await
                        .ok()
                        .and_then(|v| v["id"].as_str().map(str::to_owned));
                    let ack = Ack { id, slot, sent };
                    self.ledger.acked.lock().unwrap().insert(seq, ack);
                }
                Ok(resp) => {
                    let status = resp.status();
                    let body = resp.text().await.unwrap_or_default();
                    self.ledger
                        .refused
                        .lock()
                        .unwrap()
                        .push(format!("seq {seq} (slot {slot}): {status} {body}"));
                }
                Err(_) => {
                    // The node is down or went down mid-request: not acknowledged.
                    self.ledger.unanswered.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(15)).await;
                }
            }
        }
    }
}

/// One request the receiver got with a `seq` in its body and a valid signature.
#[derive(Debug, Clone)]
struct Got {
    webhook_id: String,
    body: Vec<u8>,
    path: String,
}

/// What the receiver got, by `seq`, and what was not a signed message of the load.
struct Seen {
    by_seq: BTreeMap<u64, Vec<Got>>,
    malformed: Vec<String>,
}

fn seq_of(r: &Received) -> Option<u64> {
    serde_json::from_slice::<Value>(&r.body).ok()?["seq"].as_u64()
}

fn seqs_of(got: &[Received]) -> BTreeSet<u64> {
    got.iter().filter_map(seq_of).collect()
}

fn seen(got: &[Received], secret: &str) -> Seen {
    let mut by_seq: BTreeMap<u64, Vec<Got>> = BTreeMap::new();
    let mut malformed = Vec::new();
    for r in got {
        let headers = (
            r.header("webhook-id"),
            r.header("webhook-timestamp"),
            r.header("webhook-signature"),
        );
        match (headers, seq_of(r)) {
            ((Some(id), Some(ts), Some(sig)), Some(seq))
                if signature_valid(secret, id, ts, &r.body, sig) =>
            {
                by_seq.entry(seq).or_default().push(Got {
                    webhook_id: id.to_owned(),
                    body: r.body.clone(),
                    path: r.path.clone(),
                });
            }
            _ => malformed.push(format!(
                "{} {:?} {}",
                r.path,
                r.headers,
                String::from_utf8_lossy(&r.body)
            )),
        }
    }
    Seen { by_seq, malformed }
}

impl Seen {
    /// Asserts what holds in every test: every request signed and of the load, every
    /// acknowledged message delivered under the id ingest returned, and every copy of a
    /// message the same (id and body). Returns the seqs delivered more than once.
    fn check(&self, acked: &BTreeMap<u64, Ack>, logs: &str) -> BTreeMap<u64, usize> {
        assert!(
            self.malformed.is_empty(),
            "{} deliveries unsigned, badly signed or malformed; first: {}",
            self.malformed.len(),
            self.malformed[0]
        );
        let missing: Vec<u64> = acked
            .keys()
            .filter(|s| !self.by_seq.contains_key(s))
            .copied()
            .collect();
        assert!(
            missing.is_empty(),
            "{} of {} acknowledged messages never delivered; first: {:?}\n{logs}",
            missing.len(),
            acked.len(),
            &missing[..missing.len().min(20)]
        );
        let mut wrong = Vec::new();
        for (seq, copies) in &self.by_seq {
            let first = &copies[0];
            if copies
                .iter()
                .any(|c| c.webhook_id != first.webhook_id || c.body != first.body)
            {
                wrong.push(format!("seq {seq}: copies differ: {copies:?}"));
            }
            if let Some(Ack { id: Some(id), .. }) = acked.get(seq) {
                if &first.webhook_id != id {
                    wrong.push(format!(
                        "seq {seq}: acknowledged as {id}, delivered as {}",
                        first.webhook_id
                    ));
                }
            }
        }
        assert!(wrong.is_empty(), "{wrong:#?}");
        let ids: BTreeSet<&str> = self
            .by_seq
            .values()
            .map(|c| c[0].webhook_id.as_str())
            .collect();
        assert_eq!(ids.len(), self.by_seq.len(), "two messages, one webhook-id");
        self.by_seq
            .iter()
            .filter(|(_, c)| c.len() > 1)
            .map(|(s, c)| (*s, c.len()))
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_deliver_every_acknowledged_message_exactly_once_between_them() {
    crate::postgres_only!("cluster tests run with HOOKBOX_TEST_BACKEND=postgres");
    const MESSAGES: u64 = 600;
    let started = Instant::now();
    let mut cluster = Cluster::new(config("1s", "10s", "")).await;
    for _ in 0..3 {
        cluster.start_node().await;
    }
    let receiver = TestReceiver::start().await;
    let (app, _, secret) = cluster.setup(0, &format!("{}/hook", receiver.url)).await;

    let load = Load::new(&cluster, &app, &[0, 1, 2], MESSAGES);
    let producers = load.start(6);
    for p in producers {
        p.await.unwrap();
    }
    let ingested = started.elapsed();
    let Settled {
        acked,
        got,
        seen: _,
        duplicates,
    } = cluster
        .settle(&load, &app, &receiver, &secret, Duration::from_secs(30))
        .await;
    assert_eq!(load.ledger.unanswered.load(Ordering::Relaxed), 0);
    assert_eq!(acked.len() as u64, MESSAGES, "every message acknowledged");
    let per_node: Vec<usize> = (0..3).map(|i| load.acked_by(i)).collect();
    assert!(
        per_node.iter().all(|&n| n > 0),
        "every node answered: {per_node:?}"
    );

    assert!(duplicates.is_empty(), "delivered twice: {duplicates:?}");
    assert_eq!(got.len() as u64, MESSAGES, "one request per message");

    let mut by_node = Vec::new();
    for i in 0..3 {
        by_node.push(cluster.delivered_by(i).await);
    }
    println!(
        "cluster, no faults: {MESSAGES} messages acknowledged {per_node:?} by node, ingest \
         {ingested:.1?}; delivered {by_node:?} by node; total {:.1?}",
        started.elapsed()
    );
    assert_eq!(
        by_node.iter().sum::<u64>(),
        MESSAGES,
        "the nodes' successful attempts add up to the messages: {by_node:?}"
    );
    assert!(
        by_node.iter().filter(|&&n| n > 0).count() >= 2,
        "deliveries made by more than one node: {by_node:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_a_node_under_load_twice_loses_nothing_and_repeats_only_what_it_held() {
    crate::postgres_only!("cluster tests run with HOOKBOX_TEST_BACKEND=postgres");
    let started = Instant::now();
    let mut cluster = Cluster::new(config("300ms", "3s", "")).await;
    for _ in 0..3 {
        cluster.start_node().await;
    }
    // A little slow, so that deliveries are in flight when a node dies.
    let receiver = TestReceiver::start().await;
    receiver.set_default(Reply::status(200).delay(Duration::from_millis(30)));
    let (app, _, secret) = cluster.setup(0, &format!("{}/hook", receiver.url)).await;

    // Slot k of the load is served by `serving[k]` (a replacement takes the slot over).
    let mut serving = vec![0, 1, 2];
    let load = Load::new(&cluster, &app, &serving, u64::MAX);
    let producers = load.start(6);
    // Deliveries leased to each victim when it died: the only ones it may have sent
    // without recording it, so the only ones that may be sent again.
    let mut held: Vec<BTreeSet<String>> = Vec::new();
    for (round, slot) in [0usize, 1].into_iter().enumerate() {
        let before = load.acked_by(slot);
        let acked = wait_for(Duration::from_secs(15), || async {
            load.acked_by(slot) >= before + 60
        })
        .await;
        assert!(acked, "round {round}: the load stalled\n{}", cluster.logs());
        let victim = serving[slot];
        cluster.kill_9(victim);
        held.push(cluster.leased_to(victim).await);
        let replacement = cluster.start_node().await;
        serving[slot] = replacement;
        load.set_target(slot, Some(cluster.nodes[replacement].api.clone()));
    }
    // The last replacement takes part, then the load stops.
    let before = load.acked_by(1);
    let acked = wait_for(Duration::from_secs(15), || async {
        load.acked_by(1) >= before + 30
    })
    .await;
    assert!(
        acked,
        "the replacement acknowledged nothing\n{}",
        cluster.logs()
    );
    load.finish(producers).await;
    let ingested = started.elapsed();

    let Settled {
        acked,
        got,
        seen,
        duplicates,
    } = cluster
        .settle(&load, &app, &receiver, &secret, Duration::from_secs(30))
        .await;
    let extra: usize = duplicates.values().map(|n| n - 1).sum();
    let held_counts: Vec<usize> = held.iter().map(BTreeSet::len).collect();
    println!(
        "cluster, kill -9 twice: {} acknowledged, {} unanswered, {} delivered ({} distinct), \
         {extra} repeated; victims held {held_counts:?} leases; ingest {ingested:.1?}, total \
         {:.1?}",
        acked.len(),
        load.ledger.unanswered.load(Ordering::Relaxed),
        got.len(),
        seen.by_seq.len(),
        started.elapsed()
    );
    // A message is sent once more for each killed node that held it, at most.
    let unexplained: Vec<String> = duplicates
        .iter()
        .filter_map(|(seq, copies)| {
            let id = &seen.by_seq[seq][0].webhook_id;
            let holders = held.iter().filter(|h| h.contains(id)).count();
            (copies - 1 > holders).then(|| {
                format!("seq {seq} ({id}): {copies} copies, held by {holders} killed nodes")
            })
        })
        .collect();
    assert!(
        unexplained.is_empty(),
        "delivered more often than killed nodes held them: {unexplained:#?}"
    );
    assert!(extra <= held_counts.iter().sum::<usize>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_stopped_past_its_lease_has_its_late_results_fenced_off() {
    crate::postgres_only!("cluster tests run with HOOKBOX_TEST_BACKEND=postgres");
    const K: usize = 20;
    const NODE_TIMEOUT: Duration = Duration::from_secs(2);
    let started = Instant::now();
    let mut cluster = Cluster::new(config("250ms", "2s", "")).await;
    for _ in 0..3 {
        cluster.start_node().await;
    }
    let (a, b) = (0, 1);
    let receiver = TestReceiver::start().await;
    // Node a's requests (the first K) are answered 5 s late; the new owners' at once.
    receiver.script((0..K).map(|_| Reply::status(200).delay(Duration::from_secs(5))));
    let (app, ep, _) = cluster.setup(b, &format!("{}/hook", receiver.url)).await;

    // Node a acknowledges K messages and claims their deliveries at ingest.
    let url = format!("{}/app/{app}/msg", cluster.nodes[a].api);
    let posts = (0..K).map(|seq| {
        let body = json!({ "eventType": "cluster.test", "payload": { "seq": seq } });
        cluster.call("POST", &url, Some(body), 202)
    });
    let ids: BTreeSet<String> = futures_util::future::join_all(posts)
        .await
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), K);
    receiver.wait_for_count(K, Duration::from_secs(10)).await;
    let leased = cluster.leased_to(a).await;
    assert_eq!(
        leased, ids,
        "node a holds every delivery while its requests wait for their answers"
    );

    // Node a stops, its requests unanswered, and stays stopped until the others have taken
    // its deliveries over and delivered them.
    let stopped_ms = now_ms();
    let stopped = Instant::now();
    cluster.signal(a, "STOP");
    let last_beat: i64 = cluster
        .db
        .query_one(
            "SELECT heartbeat_at FROM nodes WHERE id = $1",
            &[&cluster.nodes[a].id],
        )
        .await
        .unwrap()
        .get(0);
    let taken_over = wait_for(Duration::from_secs(15), || async {
        receiver.count() >= 2 * K && cluster.settled(&app).await
    })
    .await;
    let stopped_for = stopped.elapsed();
    assert!(
        taken_over,
        "the other nodes did not deliver a stopped node's deliveries ({} requests)\n{}",
        receiver.count(),
        cluster.logs()
    );
    let got = receiver.received();
    let resent_after = got[K].at.saturating_duration_since(stopped);
    // Its leases were freed only once it had been silent for node_timeout.
    let silent_ms = stopped_ms + i64::try_from(resent_after.as_millis()).unwrap() - last_beat;
    assert!(
        silent_ms >= i64::try_from(NODE_TIMEOUT.as_millis()).unwrap() - 100,
        "a live node's lease was taken: sent again {silent_ms} ms after its last heartbeat"
    );

    // Node a resumes, gets its (late) answers and tries to record them: all refused.
    cluster.signal(a, "CONT");
    let fenced = wait_for(Duration::from_secs(15), || async {
        logged_total(&cluster.stderr(a), FENCED, "results") >= K as u64
    })
    .await;
    assert!(
        fenced,
        "node a did not report its results fenced\n{}",
        cluster.logs()
    );
    assert_eq!(
        logged_total(&cluster.stderr(a), FENCED, "results"),
        K as u64
    );

    // Each delivery: one attempt recorded, the new owner's (made after node a stopped).
    let rows = cluster
        .db
        .query(
            "SELECT msg_id, created_at FROM attempts WHERE endpoint_id = $1",
            &[&ep],
        )
        .await
        .unwrap();
    let attempts: BTreeMap<String, Vec<i64>> = rows.iter().fold(BTreeMap::new(), |mut m, r| {
        m.entry(r.get::<_, String>(0))
            .or_default()
            .push(r.get::<_, i64>(1));
        m
    });
    assert_eq!(
        attempts.keys().cloned().collect::<BTreeSet<_>>(),
        ids,
        "an attempt for every message"
    );
    let twice: Vec<_> = attempts.iter().filter(|(_, at)| at.len() != 1).collect();
    assert!(twice.is_empty(), "results from two nodes: {twice:?}");
    let old: Vec<_> = attempts
        .iter()
        .filter(|(_, at)| at[0] < stopped_ms)
        .collect();
    assert!(
        old.is_empty(),
        "the stopped node's attempt was recorded: {old:?}"
    );
    let states = cluster
        .db
        .query(
            "SELECT status, attempts, lease_owner FROM deliveries WHERE endpoint_id = $1",
            &[&ep],
        )
        .await
        .unwrap();
    assert_eq!(states.len(), K);
    for s in &states {
        let (status, n, owner): (i16, i32, Option<String>) = (s.get(0), s.get(1), s.get(2));
        assert_eq!(
            (status, n, owner),
            (0, 1, None),
            "delivered once, one attempt counted"
        );
    }
    // The API (through another node) says the same.
    let listed = cluster
        .call(
            "GET",
            &format!(
                "{}/app/{app}/attempt/endpoint/{ep}?limit=100",
                cluster.nodes[2].api
            ),
            None,
            200,
        )
        .await;
    let listed = listed["data"].as_array().unwrap();
    assert_eq!(listed.len(), K, "{listed:#?}");
    assert!(listed.iter().all(|a| a["status"] == 0), "{listed:#?}");
    // Exactly two requests per message: node a's and its new owner's.
    let got = receiver.received();
    assert_eq!(got.len(), 2 * K);
    let mut per_id: BTreeMap<&str, usize> = BTreeMap::new();
    for r in &got {
        *per_id.entry(r.signed().0).or_default() += 1;
    }
    assert!(per_id.values().all(|&n| n == 2), "{per_id:?}");

    // Node a is back in the cluster under a new name (the others had forgotten it, and
    // its old name's leases stay fenced off) and delivers what it acknowledges.
    let known: BTreeSet<String> = cluster.nodes.iter().map(|n| n.id.clone()).collect();
    let back = wait_for(Duration::from_secs(5), || async {
        cluster.node_ids().await.difference(&known).count() == 1
    })
    .await;
    assert!(back, "node a did not rejoin\n{}", cluster.logs());
    assert!(!cluster.node_ids().await.contains(&cluster.nodes[a].id));
    assert!(
        cluster.stderr(a).contains(REJOINED),
        "{}",
        cluster.stderr(a)
    );
    let m = cluster
        .call(
            "POST",
            &url,
            Some(json!({ "eventType": "cluster.test", "payload": { "seq": K } })),
            202,
        )
        .await;
    let seqs: BTreeSet<u64> = (0..=K as u64).collect();
    let done = cluster
        .wait_delivered(&app, &receiver, &seqs, Duration::from_secs(10))
        .await;
    assert!(
        done,
        "node a does not deliver after resuming\n{}",
        cluster.logs()
    );
    assert_eq!(receiver.count(), 2 * K + 1);
    assert_eq!(
        receiver.received()[2 * K].signed().0,
        m["id"].as_str().unwrap()
    );
    println!(
        "cluster, SIGSTOP: {K} deliveries sent again {resent_after:.1?} after the stop, node a \
         stopped for {stopped_for:.1?}, its {K} late results fenced; total {:.1?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_taken_for_dead_sends_none_of_what_it_still_held_when_it_resumes() {
    crate::postgres_only!("cluster tests run with HOOKBOX_TEST_BACKEND=postgres");
    // One request at a time per endpoint (per node: half of 1, rounded up), two queued.
    let mut cluster = Cluster::new(config("250ms", "2s", "max_in_flight_per_endpoint = 1")).await;
    let (a, b) = (cluster.start_node().await, cluster.start_node().await);
    let receiver = TestReceiver::start().await;
    // Node a's first request is answered 5 s late; every other at once.
    receiver.script([Reply::status(200).delay(Duration::from_secs(5))]);
    let (app, _, _) = cluster.setup(b, &format!("{}/hook", receiver.url)).await;

    // Node a acknowledges two messages and claims both: it sends the first, the second waits
    // for its turn.
    let url = format!("{}/app/{app}/msg", cluster.nodes[a].api);
    let mut ids = BTreeSet::new();
    for seq in 0..2 {
        let body = json!({ "eventType": "cluster.test", "payload": { "seq": seq } });
        let m = cluster.call("POST", &url, Some(body), 202).await;
        ids.insert(m["id"].as_str().unwrap().to_owned());
    }
    receiver.wait_for_count(1, Duration::from_secs(10)).await;
    assert_eq!(cluster.leased_to(a).await, ids, "node a holds both");
    assert_eq!(cluster.metric(a, "hookbox_queue_in_memory").await, 2);

    // Node a stops past node_timeout; b takes both over and delivers them.
    cluster.signal(a, "STOP");
    let taken_over = wait_for(Duration::from_secs(15), || async {
        receiver.count() >= 3 && cluster.settled(&app).await
    })
    .await;
    assert!(taken_over, "node b did not take over\n{}", cluster.logs());

    // Node a resumes: its late answer is fenced off, and the delivery it had not sent yet
    // is not sent (node b did) once it is done with what it held.
    cluster.signal(a, "CONT");
    let done = wait_for(Duration::from_secs(15), || async {
        cluster.metric(a, "hookbox_queue_in_memory").await == 0
            && logged_total(&cluster.stderr(a), FENCED, "results") >= 1
    })
    .await;
    assert!(done, "node a did not settle\n{}", cluster.logs());
    assert!(
        cluster.stderr(a).contains(REJOINED),
        "{}",
        cluster.stderr(a)
    );
    let got = receiver.received();
    let mut per_id: BTreeMap<&str, usize> = BTreeMap::new();
    for r in &got {
        *per_id.entry(r.signed().0).or_default() += 1;
    }
    assert_eq!(
        per_id
            .values()
            .copied()
            .collect::<Vec<_>>()
            .iter()
            .sum::<usize>(),
        3,
        "the first message twice (node a's request was in flight), the second once: {per_id:?}\n{}",
        cluster.logs()
    );
    assert_eq!(per_id.len(), 2);
}

/// `hookbox rotate-main-key` on the cluster's database with main key `key`.
fn rotate_main_key(cluster: &Cluster, key: &str) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    Command::new(crate::support::server::bin())
        .args([
            "rotate-main-key",
            "--database-url",
            &cluster.url,
            "--data-dir",
        ])
        .arg(dir.path())
        .env("HOOKBOX_MAIN_KEY", key)
        .env_remove("HOOKBOX_MAIN_KEY_FILE")
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_main_key_is_rotated_while_no_node_runs_and_nodes_then_need_the_new_one() {
    crate::postgres_only!("cluster tests run with HOOKBOX_TEST_BACKEND=postgres");
    let mut cluster = Cluster::new(config("250ms", "2s", "")).await;
    let n = cluster.start_node().await;
    let receiver = TestReceiver::start().await;
    let (app, ep, secret) = cluster.setup(n, &format!("{}/hook", receiver.url)).await;
    let api = cluster.nodes[n].api.clone();
    cluster
        .call(
            "PATCH",
            &format!("{api}/app/{app}/endpoint/{ep}/headers"),
            Some(json!({ "headers": { "X-Custom": "kept" } })),
            204,
        )
        .await;

    // Refused while a node runs: nothing changes.
    let out = rotate_main_key(&cluster, PG_TEST_MAIN_KEY);
    assert!(!out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("stop every node first"),
        "{out:?}"
    );

    cluster.signal(n, "TERM");
    let exited = cluster.exits(n, Duration::from_secs(15)).await;
    assert!(exited, "the node did not stop");

    // A wrong key is refused; the right one rotates, printing the new key.
    let wrong = hookbox::domain::crypto::MainKey::generate().to_base64();
    let out = rotate_main_key(&cluster, &wrong);
    assert!(!out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("do not decrypt"),
        "{out:?}"
    );
    let out = rotate_main_key(&cluster, PG_TEST_MAIN_KEY);
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.contains("re-encrypted 1 endpoint secret"),
        "{stdout}"
    );
    assert!(stdout.contains("on every node"), "{stdout}");
    let new_key = stdout
        .lines()
        .map(str::trim)
        .find(|l| hookbox::domain::crypto::MainKey::from_base64(l).is_ok())
        .expect("the new key is printed")
        .to_owned();
    assert_ne!(new_key, PG_TEST_MAIN_KEY);

    // A node with the old key refuses to start; one with the new key signs with the same
    // secret and sends the same headers.
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = crate::support::test_config(dir.path());
    cfg.database_url = Some(cluster.url.clone());
    cfg.main_key = Some(hookbox::config::HiddenKey::new(PG_TEST_MAIN_KEY));
    let err = format!(
        "{:#}",
        hookbox::app::Application::build(cfg).await.err().unwrap()
    );
    assert!(err.contains("main key does not open"), "{err}");
    let m = cluster.start_node_with_key(&new_key).await;
    let url = format!("{}/app/{app}/msg", cluster.nodes[m].api);
    cluster
        .call(
            "POST",
            &url,
            Some(json!({ "eventType": "cluster.test", "payload": { "seq": 0 } })),
            202,
        )
        .await;
    let got = receiver.wait_for_count(1, Duration::from_secs(10)).await;
    let seen = seen(&got, &secret);
    assert!(seen.malformed.is_empty(), "{:?}", seen.malformed);
    assert_eq!(got[0].header("x-custom"), Some("kept"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_of_a_node_under_load_hands_back_what_it_did_not_send_and_repeats_nothing() {
    crate::postgres_only!("cluster tests run with HOOKBOX_TEST_BACKEND=postgres");
    const MESSAGES: u64 = 900;
    let started = Instant::now();
    // Taken for dead only after 30 s: whatever the others send of the stopping node's
    // deliveries within this test, it handed back itself.
    // The nodes share an endpoint's in-flight cap: 4 each here.
    let mut cluster = Cluster::new(config("1s", "30s", "max_in_flight_per_endpoint = 12")).await;
    for _ in 0..3 {
        cluster.start_node().await;
    }
    // Slow (4 requests a second per node) until the stopping node has gone: each node holds
    // a backlog of claimed, unsent deliveries whatever the pace of ingest.
    let receiver = TestReceiver::start().await;
    receiver.set_default(Reply::status(200).delay(Duration::from_secs(1)));
    let (app, _, secret) = cluster.setup(1, &format!("{}/hook", receiver.url)).await;

    let victim = 0;
    let load = Load::new(&cluster, &app, &[0, 1, 2], MESSAGES);
    let producers = load.start(6);
    let backlog = wait_for(Duration::from_secs(15), || async {
        load.acked_by(victim) >= 30 && cluster.leased_to(victim).await.len() >= 20
    })
    .await;
    assert!(
        backlog,
        "node {victim} never held a backlog ({} acknowledged)\n{}",
        load.acked_by(victim),
        cluster.logs()
    );
    let held_at_term = cluster.leased_to(victim).await.len();
    cluster.signal(victim, "TERM");
    let termed = Instant::now();
    let exited = cluster.exits(victim, Duration::from_secs(15)).await;
    let exit_took = termed.elapsed();
    load.set_target(victim, None);
    assert!(exited, "node {victim} did not stop\n{}", cluster.logs());
    let status = cluster.nodes[victim]
        .server
        .as_mut()
        .unwrap()
        .child
        .wait()
        .unwrap();
    assert!(
        status.success(),
        "node {victim} exited with {status}\n{}",
        cluster.logs()
    );
    let log = cluster.stderr(victim);
    assert!(
        !log.contains(NOT_HANDED_BACK),
        "node {victim} could not give back its leases on SIGTERM ({held_at_term} leased at \
         SIGTERM): they wait for node_timeout. (Seen when a pooled connection was opened on an \
         HTTP worker, whose runtime, and with it the connection, is gone by the time the \
         stopping node gives its leases back.)\n{}",
        cluster.logs()
    );
    let handed_back = logged_total(&log, HANDED_BACK, "deliveries");
    assert!(
        handed_back > 0,
        "node {victim} stopped with nothing unsent ({held_at_term} leased at SIGTERM): the test \
         did not test the hand-back\n{}",
        cluster.logs()
    );
    // The others acknowledge the rest of the load, and deliver it all quickly.
    receiver.set_default(Reply::status(200));
    for p in producers {
        p.await.unwrap();
    }
    let ingested = started.elapsed();

    let Settled {
        acked,
        got,
        seen,
        duplicates,
    } = cluster
        .settle(&load, &app, &receiver, &secret, Duration::from_secs(20))
        .await;
    println!(
        "cluster, SIGTERM: {} acknowledged ({} by the stopped node), {} unanswered; it held \
         {held_at_term} leases at SIGTERM, handed back {handed_back}, exited after \
         {exit_took:.1?}; {} delivered; ingest {ingested:.1?}, total {:.1?}",
        acked.len(),
        load.acked_by(victim),
        load.ledger.unanswered.load(Ordering::Relaxed),
        got.len(),
        started.elapsed()
    );
    assert!(duplicates.is_empty(), "delivered twice: {duplicates:?}");
    assert_eq!(got.len(), seen.by_seq.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_idempotency_key_posted_to_two_nodes_at_once_makes_one_message() {
    crate::postgres_only!("cluster tests run with HOOKBOX_TEST_BACKEND=postgres");
    const KEYS: usize = 20;
    const COPIES: usize = 6;
    let started = Instant::now();
    let mut cluster = Cluster::new(config("1s", "10s", "")).await;
    for _ in 0..2 {
        cluster.start_node().await;
    }
    let receiver = TestReceiver::start().await;
    let (app, _, secret) = cluster.setup(0, &format!("{}/hook", receiver.url)).await;

    // Every copy of every key at once, alternately to each node.
    let posts = (0..KEYS).flat_map(|key| (0..COPIES).map(move |copy| (key, copy % 2)));
    let answers = futures_util::future::join_all(posts.map(|(key, node)| {
        let req = cluster
            .client
            .post(format!("{}/app/{app}/msg", cluster.nodes[node].api))
            .bearer_auth(&cluster.token)
            .header("idempotency-key", format!("cluster-key-{key}"))
            .json(&json!({ "eventType": "cluster.test", "payload": { "seq": key } }));
        async move {
            let resp = req.send().await.expect("the node answers");
            let status = resp.status().as_u16();
            (key, node, status, resp.text().await.unwrap())
        }
    }))
    .await;
    let mut ids: BTreeMap<usize, BTreeSet<String>> = BTreeMap::new();
    for (key, node, status, body) in &answers {
        assert_eq!(*status, 202, "key {key} at node {node}: {status} {body}");
        let v: Value = serde_json::from_str(body).unwrap();
        ids.entry(*key)
            .or_default()
            .insert(v["id"].as_str().unwrap().to_owned());
    }
    let split: Vec<_> = ids.iter().filter(|(_, s)| s.len() != 1).collect();
    assert!(split.is_empty(), "one key, several messages: {split:?}");
    let all: BTreeSet<String> = ids.values().flatten().cloned().collect();
    assert_eq!(all.len(), KEYS, "one message per key");
    let stored: i64 = cluster
        .db
        .query_one("SELECT COUNT(*) FROM messages WHERE app_id = $1", &[&app])
        .await
        .unwrap()
        .get(0);
    assert_eq!(stored, KEYS as i64, "messages stored");

    let seqs: BTreeSet<u64> = (0..KEYS as u64).collect();
    let done = cluster
        .wait_delivered(&app, &receiver, &seqs, Duration::from_secs(20))
        .await;
    assert!(done, "not delivered\n{}", cluster.logs());
    let got = receiver.received();
    let seen = seen(&got, &secret);
    let acked: BTreeMap<u64, Ack> = ids
        .iter()
        .map(|(k, s)| {
            let ack = Ack {
                id: s.first().cloned(),
                slot: 0,
                sent: started,
            };
            (*k as u64, ack)
        })
        .collect();
    let duplicates = seen.check(&acked, &cluster.logs());
    assert!(duplicates.is_empty(), "delivered twice: {duplicates:?}");
    assert_eq!(got.len(), KEYS, "one delivery per key");
    println!(
        "cluster, idempotency: {} requests for {KEYS} keys → {KEYS} messages, {} deliveries; \
         {:.1?}",
        answers.len(),
        got.len(),
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_url_changed_through_one_node_is_used_by_another_within_a_second() {
    crate::postgres_only!("cluster tests run with HOOKBOX_TEST_BACKEND=postgres");
    const AFTER: Duration = Duration::from_secs(1);
    let started = Instant::now();
    let mut cluster = Cluster::new(config("1s", "10s", "")).await;
    for _ in 0..3 {
        cluster.start_node().await;
    }
    let receiver = TestReceiver::start().await;
    let paths = ["/v0", "/v1", "/v2"];
    let (app, ep, secret) = cluster
        .setup(0, &format!("{}{}", receiver.url, paths[0]))
        .await;

    // Node 3 acknowledges messages all along, so it has the endpoint cached throughout.
    let load = Load::new(&cluster, &app, &[2], u64::MAX);
    let producers = load.start(2);
    let warm = wait_for(Duration::from_secs(10), || async { receiver.count() >= 20 }).await;
    assert!(warm, "node 3 delivers nothing\n{}", cluster.logs());

    // Two changes through node 1: PATCH, then PUT. After each, wait until node 3 has
    // acknowledged 20 messages sent a second or more after the change.
    let endpoint = format!("{}/app/{app}/endpoint/{ep}", cluster.nodes[0].api);
    let mut changed: Vec<Instant> = Vec::new();
    for (method, path) in [("PATCH", paths[1]), ("PUT", paths[2])] {
        let url = format!("{}{path}", receiver.url);
        cluster
            .call(method, &endpoint, Some(json!({ "url": url })), 200)
            .await;
        let at = Instant::now();
        changed.push(at);
        let enough = wait_for(Duration::from_secs(10), || async {
            let acked = load.ledger.acked.lock().unwrap();
            acked.values().filter(|a| a.sent >= at + AFTER).count() >= 20
        })
        .await;
        assert!(enough, "node 3 stopped acknowledging\n{}", cluster.logs());
    }
    load.finish(producers).await;

    let Settled {
        acked,
        got: _,
        seen,
        duplicates,
    } = cluster
        .settle(&load, &app, &receiver, &secret, Duration::from_secs(20))
        .await;
    assert_eq!(load.ledger.unanswered.load(Ordering::Relaxed), 0);
    assert!(duplicates.is_empty(), "delivered twice: {duplicates:?}");

    // A message sent a second or more after a change goes to that URL (or a later one).
    let mut stale = Vec::new();
    // Per change: the earliest message (sent after it) at the new URL, the latest at an
    // older one, relative to the change (ms).
    let mut first_new = vec![i128::MAX; changed.len()];
    let mut last_old = vec![i128::MIN; changed.len()];
    for (seq, ack) in &acked {
        let path = &seen.by_seq[seq][0].path;
        let to = paths
            .iter()
            .position(|p| p == path)
            .unwrap_or_else(|| panic!("seq {seq} went to {path}"));
        let due = changed.iter().filter(|&&c| ack.sent >= c + AFTER).count();
        if to < due {
            stale.push(format!(
                "seq {seq} sent {:?} after change {due} went to {path}",
                ack.sent - changed[due - 1]
            ));
        }
        for (k, &c) in changed.iter().enumerate() {
            let since = if ack.sent >= c {
                (ack.sent - c).as_millis() as i128
            } else {
                -((c - ack.sent).as_millis() as i128)
            };
            if to > k {
                first_new[k] = first_new[k].min(since);
            } else {
                last_old[k] = last_old[k].max(since);
            }
        }
    }
    println!(
        "cluster, endpoint change: {} messages through node 3; relative to each change, the \
         first sent to the new URL at {first_new:?} ms, the last to an old one at {last_old:?} \
         ms; total {:.1?}",
        acked.len(),
        started.elapsed()
    );
    assert!(
        stale.is_empty(),
        "old URL used a second after the change: {stale:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_deleted_through_one_node_is_not_sent_by_another_that_holds_its_delivery() {
    crate::postgres_only!("cluster tests run with HOOKBOX_TEST_BACKEND=postgres");
    let mut cluster = Cluster::new(config("1s", "10s", "")).await;
    for _ in 0..2 {
        cluster.start_node().await;
    }
    let receiver = TestReceiver::start().await;
    let (app, ep, _) = cluster.setup(0, &format!("{}/hook", receiver.url)).await;
    let (api0, api1) = (cluster.nodes[0].api.clone(), cluster.nodes[1].api.clone());
    // One a second: what node 1 takes in waits there, leased to it, for its turn.
    cluster
        .call(
            "PATCH",
            &format!("{api0}/app/{app}/endpoint/{ep}"),
            Some(json!({ "throttleRate": 1 })),
            200,
        )
        .await;
    let mut sent = Vec::new();
    // Four ahead of the private one: it waits about four seconds, time for the deletion and
    // its signal to reach node 1 however busy the machine is.
    let payloads = (1..=4)
        .map(|n| json!({ "n": n }))
        .chain([json!({ "email": "jane@example.com" })]);
    for payload in payloads {
        let m = cluster
            .call(
                "POST",
                &format!("{api1}/app/{app}/msg"),
                Some(json!({ "eventType": "a.b", "payload": payload })),
                202,
            )
            .await;
        sent.push(m["id"].as_str().unwrap().to_owned());
    }
    let private = sent[4].clone();
    assert!(
        cluster.leased_to(1).await.contains(&private),
        "node 1 holds the delivery of what it took in"
    );
    cluster
        .call(
            "DELETE",
            &format!("{api0}/app/{app}/msg/{private}/content"),
            None,
            204,
        )
        .await;
    let settled = wait_for(Duration::from_secs(15), || {
        cluster.settled_or_canceled(&app)
    })
    .await;
    assert!(settled, "deliveries still open\n{}", cluster.logs());
    let got = receiver.received();
    assert_eq!(
        got.len(),
        4,
        "the others are delivered, the deleted one is not"
    );
    assert!(got
        .iter()
        .all(|r| !String::from_utf8_lossy(&r.body).contains("jane@example.com")));
    let listed = cluster
        .call(
            "GET",
            &format!("{api0}/app/{app}/msg/{private}/endpoint"),
            None,
            200,
        )
        .await;
    assert_eq!(listed["data"][0]["statusText"], "canceled", "{listed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_s_throttle_rate_holds_for_the_whole_cluster() {
    crate::postgres_only!("cluster tests run with HOOKBOX_TEST_BACKEND=postgres");
    const RATE: usize = 20;
    const MESSAGES: usize = 100;
    let mut cluster = Cluster::new(config("1s", "10s", "")).await;
    for _ in 0..3 {
        cluster.start_node().await;
    }
    let receiver = TestReceiver::start().await;
    let (app, ep, _) = cluster.setup(0, &format!("{}/hook", receiver.url)).await;
    let api = cluster.nodes[0].api.clone();
    cluster
        .call(
            "PATCH",
            &format!("{api}/app/{app}/endpoint/{ep}"),
            Some(json!({ "throttleRate": RATE })),
            200,
        )
        .await;
    // Every node takes a third of the messages, so every node has deliveries to pace.
    let cluster_ref = &cluster;
    let posts = (0..MESSAGES).map(|i| {
        let url = format!("{}/app/{app}/msg", cluster_ref.nodes[i % 3].api);
        let body = json!({ "eventType": "a.b", "payload": { "seq": i } });
        async move { cluster_ref.call("POST", &url, Some(body), 202).await }
    });
    futures_util::future::join_all(posts).await;
    let all = wait_for(Duration::from_secs(30), || async {
        receiver.received().len() >= MESSAGES
    })
    .await;
    assert!(
        all,
        "{} of {MESSAGES} delivered\n{}",
        receiver.received().len(),
        cluster.logs()
    );
    let settled = wait_for(Duration::from_secs(10), || cluster.settled(&app)).await;
    assert!(settled, "deliveries still open\n{}", cluster.logs());

    // One second of burst, then RATE per second, whichever node sends: any window of the
    // arrivals holds at most RATE + RATE × its length, plus 0.25 s: a send's arrival lags its
    // turn by up to a few hundred milliseconds when three nodes, the database and this test
    // share two cores. (Each node pacing alone would send all 100 within about 1.3 s.)
    let mut t: Vec<Instant> = receiver.received().iter().map(|r| r.at).collect();
    assert_eq!(t.len(), MESSAGES, "each message once");
    t.sort();
    for i in 0..t.len() {
        for j in i..t.len() {
            let count = (j - i + 1) as f64;
            let window = (t[j] - t[i]).as_secs_f64() + 0.25;
            assert!(
                count <= RATE as f64 * (1.0 + window),
                "{count} deliveries within {window:.2} s at {RATE}/s across the cluster"
            );
        }
    }
    let took = (t[t.len() - 1] - t[0]).as_secs_f64();
    // After a burst of RATE, the other 80 need 4 s at 20/s (three nodes alone would take
    // about a third of that).
    assert!(took >= 3.5, "{MESSAGES} deliveries in {took:.2} s");
}

#[tokio::test]
async fn the_setup_link_one_node_printed_stays_valid_while_other_nodes_start() {
    crate::postgres_only!("cluster tests run with HOOKBOX_TEST_BACKEND=postgres");
    let first = crate::support::TestApp::spawn().await;
    let link = first
        .setup_token
        .clone()
        .expect("the first node prints a link");
    let url = crate::support::storage::postgres_url(first.dir.path()).unwrap();
    // A second node on the same database, started after the first printed its link.
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = crate::support::test_config(dir.path());
    cfg.database_url = Some(url);
    let second = hookbox::app::Application::build(cfg).await.unwrap();
    assert_eq!(second.setup_token(), None, "the second node prints no link");
    assert_eq!(
        second.bootstrap_token(),
        None,
        "nor a second bootstrap token"
    );
    let mut c = crate::support::console::Console::new(&first);
    let form = c.page(&format!("/admin/setup?token={link}")).await;
    assert!(
        form.contains("Create admin"),
        "the first link still works: {form}"
    );
}

#[tokio::test]
async fn a_node_claims_only_what_it_can_send_soon_and_leaves_the_rest_to_the_others() {
    crate::postgres_only!("cluster tests run with HOOKBOX_TEST_BACKEND=postgres");
    let app = crate::support::TestApp::spawn_with(|cfg| {
        cfg.delivery.max_in_flight = 2;
        cfg.delivery.max_in_flight_per_endpoint = Some(2);
    })
    .await;
    let receiver = TestReceiver::start().await;
    receiver.set_default(Reply::status(200).delay(Duration::from_secs(3)));
    let a = app.create_app("hoard").await;
    app.create_endpoint(&a, json!({ "url": format!("{}/slow", receiver.url) }))
        .await;
    for i in 0..30 {
        app.send(&a, "a.b", json!({ "i": i })).await;
    }
    // Both requests in flight (the receiver holds them), so the node holds all it will.
    assert!(
        wait_for(Duration::from_secs(10), || async { receiver.count() >= 2 }).await,
        "the first two were sent"
    );
    let url = crate::support::storage::postgres_url(app.dir.path()).unwrap();
    let leased: i64 = crate::support::storage::pg_query(
        &url,
        "SELECT COUNT(*) FROM deliveries WHERE lease_owner IS NOT NULL",
    )[0]
    .get(0);
    let pending: i64 =
        crate::support::storage::pg_query(&url, "SELECT COUNT(*) FROM deliveries WHERE status = 1")
            [0]
        .get(0);
    assert_eq!(pending, 30);
    assert!(
        leased <= 4,
        "a node with room for 2 in flight holds at most 4, not {leased} of {pending}"
    );
}

#[tokio::test]
async fn a_node_needs_the_main_key_from_configuration_and_refuses_one_that_does_not_fit() {
    crate::postgres_only!("PostgreSQL start-up rules run with HOOKBOX_TEST_BACKEND=postgres");
    let app = crate::support::TestApp::spawn().await;
    let a = app.create_app("keys").await;
    app.create_endpoint(&a, json!({ "url": "http://127.0.0.1:9/hook" }))
        .await;
    let url = crate::support::storage::postgres_url(app.dir.path()).unwrap();
    let node = |key: Option<&str>| {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = crate::support::test_config(dir.path());
        cfg.database_url = Some(url.clone());
        cfg.main_key = key.map(hookbox::config::HiddenKey::new);
        (cfg, dir)
    };
    // No key configured: refused, never made up (nothing written to the data dir).
    let (cfg, dir) = node(None);
    let err = format!(
        "{:#}",
        hookbox::app::Application::build(cfg).await.err().unwrap()
    );
    assert!(err.contains("HOOKBOX_MAIN_KEY"), "{err}");
    assert!(!dir.path().join("hookbox.key").exists());
    // Another key than the one the secrets were sealed with: refused, saying so.
    let other = hookbox::domain::crypto::MainKey::generate().to_base64();
    let (cfg, _dir) = node(Some(&other));
    let err = format!(
        "{:#}",
        hookbox::app::Application::build(cfg).await.err().unwrap()
    );
    assert!(err.contains("main key does not open"), "{err}");
    // The right key: the node starts.
    let (cfg, _dir) = node(Some(PG_TEST_MAIN_KEY));
    assert!(hookbox::app::Application::build(cfg).await.is_ok());
}

#[test]
fn backup_on_postgres_points_to_pg_dump() {
    crate::postgres_only!("PostgreSQL commands run with HOOKBOX_TEST_BACKEND=postgres");
    let dir = tempfile::tempdir().unwrap();
    let url = pg_database_for(dir.path());
    let out = Command::new(bin())
        .env("HOOKBOX_MAIN_KEY", PG_TEST_MAIN_KEY)
        .args(["backup", "copy.db", "--database-url", &url])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("pg_dump"), "{err}");
    assert!(!dir.path().join("copy.db").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ordered_endpoint_keeps_its_order_across_nodes_and_a_failure_holds_every_node() {
    crate::postgres_only!("cluster tests run with HOOKBOX_TEST_BACKEND=postgres");
    const MESSAGES: usize = 60;
    const FAILS_AT: usize = 10;
    let mut cluster = Cluster::new(config("1s", "10s", "")).await;
    for _ in 0..3 {
        cluster.start_node().await;
    }
    let receiver = TestReceiver::start().await;
    receiver.set_default(Reply::status(200).delay(Duration::from_millis(2)));
    // The 11th request fails twice (the schedule retries after 500 ms, then 1 s).
    let mut script = vec![Reply::status(200); FAILS_AT];
    script.extend([Reply::status(500), Reply::status(500)]);
    receiver.script(script);
    let (app, ep, _) = cluster.setup(0, &format!("{}/ordered", receiver.url)).await;
    cluster.make_ordered(1, &app, &ep).await;

    // Each message is acknowledged, by the nodes in turn, before the next is sent.
    let mut sent = Vec::new();
    for i in 0..MESSAGES {
        let api = &cluster.nodes[i % 3].api;
        let m = cluster
            .call(
                "POST",
                &format!("{api}/app/{app}/msg"),
                Some(json!({ "eventType": "order.updated", "payload": { "seq": i } })),
                202,
            )
            .await;
        sent.push(m["id"].as_str().unwrap().to_owned());
    }
    let settled = wait_for(Duration::from_secs(30), || cluster.settled(&app)).await;
    assert!(settled, "not all delivered\n{}", cluster.logs());

    // Exactly in the order acknowledged, the failing one three times in a row: nothing
    // after it went out, from any node, until it was delivered.
    let mut expected: Vec<&str> = sent.iter().map(String::as_str).collect();
    expected.splice(FAILS_AT..FAILS_AT, [sent[FAILS_AT].as_str(); 2]);
    let got = receiver.received();
    let got: Vec<&str> = got.iter().map(|r| r.signed().0).collect();
    assert_eq!(got, expected, "\n{}", cluster.logs());
    let per_node: Vec<u64> =
        futures_util::future::join_all((0..3).map(|i| cluster.delivered_by(i))).await;
    println!(
        "cluster, ordered endpoint: {MESSAGES} messages in order; delivered per node {per_node:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ordered_line_a_stopping_node_was_sending_goes_on_from_another_node() {
    crate::postgres_only!("cluster tests run with HOOKBOX_TEST_BACKEND=postgres");
    const MESSAGES: usize = 20;
    // Taken for dead only after 30 s: what the others send, the stopping node handed back.
    let mut cluster = Cluster::new(config("1s", "30s", "")).await;
    for _ in 0..2 {
        cluster.start_node().await;
    }
    // Slow, so that the node sending the line holds the rest of it, leased, when it stops.
    let receiver = TestReceiver::start().await;
    receiver.set_default(Reply::status(200).delay(Duration::from_millis(300)));
    let (app, ep, _) = cluster.setup(0, &format!("{}/ordered", receiver.url)).await;
    cluster.make_ordered(0, &app, &ep).await;
    let mut sent = Vec::new();
    for i in 0..MESSAGES {
        let m = cluster
            .call(
                "POST",
                &format!("{}/app/{app}/msg", cluster.nodes[i % 2].api),
                Some(json!({ "eventType": "order.updated", "payload": { "seq": i } })),
                202,
            )
            .await;
        sent.push(m["id"].as_str().unwrap().to_owned());
    }
    let holder = std::cell::Cell::new(None);
    let (holder_ref, cluster_ref) = (&holder, &cluster);
    let found = wait_for(Duration::from_secs(10), || async move {
        for i in 0..2 {
            if cluster_ref.leased_to(i).await.len() >= 5 {
                holder_ref.set(Some(i));
                return true;
            }
        }
        false
    })
    .await;
    assert!(found, "no node holds the line\n{}", cluster.logs());
    let victim = holder.get().unwrap();
    cluster.signal(victim, "TERM");
    assert!(
        cluster.exits(victim, Duration::from_secs(15)).await,
        "node {victim} did not stop\n{}",
        cluster.logs()
    );
    receiver.set_default(Reply::status(200));
    let settled = wait_for(Duration::from_secs(20), || cluster.settled(&app)).await;
    assert!(
        settled,
        "the line stopped with node {victim}\n{}",
        cluster.logs()
    );
    // In order, each once (a request the stopping node had in flight may come again, at
    // once: a receiver that drops ids it has seen gets each once, in order).
    let mut seen = BTreeSet::new();
    let firsts: Vec<String> = receiver
        .received()
        .iter()
        .map(|r| r.signed().0.to_owned())
        .filter(|id| seen.insert(id.clone()))
        .collect();
    assert_eq!(firsts, sent, "\n{}", cluster.logs());
}
