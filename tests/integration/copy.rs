//! `hookbox copy`: a SQLite installation moved into PostgreSQL by the real binary, then served
//! by a PostgreSQL node that sends what was pending, signed with the endpoints' own secrets.
//! Runs on the throwaway cluster `scripts/test` starts (`HOOKBOX_TEST_PG_URL`).

use crate::support::receiver::Reply;
use crate::support::server::{bin, create_token, Server};
use crate::support::storage::pg_query;
use crate::support::{signature_valid, wait_for, TestReceiver};
use hookbox::db::copy::TABLES;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

/// The test cluster's superuser URL. Without one the test fails, unless
/// `HOOKBOX_TEST_SKIP_POSTGRES=1` asks to skip it (`None`).
fn admin_url() -> Option<String> {
    match std::env::var("HOOKBOX_TEST_PG_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var("HOOKBOX_TEST_SKIP_POSTGRES").as_deref() == Ok("1") => None,
        _ => panic!(
            "HOOKBOX_TEST_PG_URL is not set: run the tests with scripts/test \
             (or skip the PostgreSQL tests with HOOKBOX_TEST_SKIP_POSTGRES=1)"
        ),
    }
}

/// Retries every 2 s: the deliveries stay pending while the receiver is down.
const RETRIES: &str = "0s,2s,2s,2s,2s,2s,2s,2s,2s,2s,2s,2s,2s,2s,2s,2s,2s,2s,2s,2s";

/// `hookbox copy --from FROM --to TO`, the main key left to the data dir.
fn copy(from: &str, to: &str) -> Output {
    let out = Command::new(bin())
        .args(["copy", "--from", from, "--to", to])
        .env_remove("HOOKBOX_MAIN_KEY")
        .env_remove("HOOKBOX_MAIN_KEY_FILE")
        .env_remove("HOOKBOX_DATABASE_URL")
        .output()
        .expect("hookbox copy runs");
    eprintln!(
        "hookbox copy: {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Rows per table of the SQLite file in `dir`, read behind the (stopped) server's back.
fn sqlite_counts(dir: &Path) -> BTreeMap<String, i64> {
    let c = rusqlite::Connection::open(dir.join("hookbox.db")).unwrap();
    TABLES
        .iter()
        .map(|t| {
            let n: i64 = c
                .query_row(&format!("SELECT COUNT(*) FROM {t}"), [], |r| r.get(0))
                .unwrap();
            (t.to_string(), n)
        })
        .collect()
}

/// Rows per table of the PostgreSQL database at `url`, counted in one snapshot.
fn pg_counts(url: &str) -> BTreeMap<String, i64> {
    let counts: Vec<String> = TABLES
        .iter()
        .map(|t| format!("(SELECT COUNT(*) FROM {t})"))
        .collect();
    let row = &pg_query(url, &format!("SELECT {}", counts.join(", ")))[0];
    TABLES
        .iter()
        .enumerate()
        .map(|(i, t)| (t.to_string(), row.get(i)))
        .collect()
}

/// The counts `hookbox copy` printed: lines `  TABLE  N …`.
fn printed_counts(stdout: &str) -> BTreeMap<String, i64> {
    stdout
        .lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            let (t, n) = (words.next()?, words.next()?.parse().ok()?);
            TABLES.contains(&t).then(|| (t.to_owned(), n))
        })
        .collect()
}

struct Api {
    base: String,
    token: String,
    client: reqwest::Client,
}

impl Api {
    async fn call(&self, method: &str, path: &str, body: Option<Value>, expect: u16) -> Value {
        let mut req = self
            .client
            .request(method.parse().unwrap(), format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        assert_eq!(status, expect, "{method} {path}: {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    async fn get(&self, path: &str) -> Value {
        self.call("GET", path, None, 200).await
    }

    async fn post(&self, path: &str, body: Value, expect: u16) -> Value {
        self.call("POST", path, Some(body), expect).await
    }

    /// A message's attempts, newest first.
    async fn attempts(&self, app: &str, msg: &str) -> Vec<Value> {
        self.get(&format!("/app/{app}/attempt/msg/{msg}")).await["data"]
            .as_array()
            .unwrap()
            .clone()
    }
}

/// Sends SIGTERM and waits for the server to exit.
async fn stop(mut server: Server) {
    server.signal("TERM");
    let stopped = crate::support::wait_for(Duration::from_secs(30), || {
        let exited = server.child.try_wait().unwrap().is_some();
        async move { exited }
    })
    .await;
    assert!(
        stopped,
        "the server did not stop; stderr:\n{}",
        server.stderr()
    );
}

#[tokio::test]
async fn a_sqlite_installation_moves_to_postgres_and_its_nodes_send_what_was_pending() {
    let Some(_) = admin_url() else { return };
    let receiver = TestReceiver::start().await;
    receiver.set_default(Reply::status(503).body("down"));
    let dir = tempfile::tempdir().unwrap();
    let from = dir.path().to_str().unwrap().to_owned();
    let logs = tempfile::tempdir().unwrap();
    // A database of its own on the cluster, left empty (no node has started on it).
    let pg_dir = tempfile::tempdir().unwrap();
    let url = crate::support::pg_database_for(pg_dir.path());

    // A SQLite installation with some of everything, its deliveries pending.
    let token = create_token(dir.path());
    let sqlite = Server::start_with_args(
        dir.path(),
        logs.path().join("sqlite.log"),
        &[
            ("HOOKBOX_RETRY_SCHEDULE", RETRIES),
            ("HOOKBOX_SHUTDOWN_GRACE", "1s"),
        ],
        &["--allow-destination", "127.0.0.0/8"],
    )
    .await;
    let api = Api {
        base: sqlite.api.clone(),
        token: token.clone(),
        client: reqwest::Client::new(),
    };
    let app = api.post("/app", json!({ "name": "Acme" }), 201).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    api.post(
        "/event-type",
        json!({ "name": "order.created", "description": "An order" }),
        201,
    )
    .await;
    let ep = api
        .post(
            &format!("/app/{app}/endpoint"),
            json!({
                "url": format!("{}/hook", receiver.url),
                "headers": { "X-Copied": "from sqlite" },
                "filterTypes": ["order.created"],
            }),
            201,
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let secret = api.get(&format!("/app/{app}/endpoint/{ep}/secret")).await["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let portal = api
        .post(&format!("/auth/app-portal-access/{app}"), json!({}), 200)
        .await["url"]
        .as_str()
        .unwrap()
        .to_owned();
    // Exact payload bytes (spacing, escapes, big numbers) must survive.
    let payloads: Vec<String> = (0..3)
        .map(|i| {
            format!(r#"{{"n": {i},  "big": 123456789012345678901234567890, "s": "caf\u00e9 é"}}"#)
        })
        .collect();
    let mut msgs = Vec::new();
    for p in &payloads {
        let body = format!(r#"{{"eventType": "order.created", "payload": {p}}}"#);
        let resp = api
            .client
            .post(format!("{}/app/{app}/msg", api.base))
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 202);
        let m: Value = resp.json().await.unwrap();
        msgs.push(m["id"].as_str().unwrap().to_owned());
    }
    // Each tried once (and refused) before the copy.
    for m in &msgs {
        let ok = wait_for(Duration::from_secs(10), || async {
            !api.attempts(&app, m).await.is_empty()
        })
        .await;
        assert!(ok, "no attempt for {m}");
    }
    let mut history = BTreeMap::new();
    for m in &msgs {
        history.insert(m.clone(), api.attempts(&app, m).await);
    }

    // A retry is in flight (held by the receiver) when the server stops: its delivery stays
    // claimed in the file.
    receiver.set_default(Reply::status(503).delay(Duration::from_secs(60)));
    let seen = receiver.count();
    receiver
        .wait_for_count(seen + 1, Duration::from_secs(10))
        .await;

    // While the server runs, the copy is refused and PostgreSQL stays untouched.
    let out = copy(&from, &url);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("stop it first"), "{out:?}");
    let tables = pg_query(
        &url,
        "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'public'",
    );
    assert_eq!(tables[0].get::<_, i64>(0), 0, "nothing was created");

    stop(sqlite).await;
    let before = sqlite_counts(dir.path());

    // The copy.
    let out = copy(&from, &url);
    assert!(out.status.success(), "{out:?}");
    let stdout = text(&out.stdout);
    assert_eq!(printed_counts(&stdout), before, "{stdout}");
    assert_eq!(pg_counts(&url), before);
    assert_eq!(before["messages"], 3);
    assert!(before["attempts"] >= 3);
    assert!(before["portal_links"] >= 1);
    assert!(stdout.contains("3 pending"), "{stdout}");
    assert!(
        stdout.contains("claimed by the stopped server were released"),
        "{stdout}"
    );
    let key_file = dir.path().join("hookbox.key");
    assert!(
        stdout.contains(&key_file.display().to_string()) && stdout.contains("HOOKBOX_MAIN_KEY"),
        "the reminder names the key and where it came from: {stdout}"
    );
    let leased = pg_query(
        &url,
        "SELECT COUNT(*) FROM deliveries WHERE lease_until IS NOT NULL OR lease_owner IS NOT NULL",
    );
    assert_eq!(leased[0].get::<_, i64>(0), 0, "every delivery is unclaimed");

    // A PostgreSQL node with the installation's key sends what was pending.
    receiver.set_default(Reply::status(200).body("ok"));
    let seen_before = receiver.count();
    let key = std::fs::read_to_string(&key_file).unwrap();
    let node_dir = tempfile::tempdir().unwrap();
    let node = Server::start_with_args(
        node_dir.path(),
        logs.path().join("node.log"),
        &[
            ("HOOKBOX_MAIN_KEY", key.trim()),
            ("HOOKBOX_RETRY_SCHEDULE", RETRIES),
        ],
        &["--database-url", &url, "--allow-destination", "127.0.0.0/8"],
    )
    .await;
    let api = Api {
        base: node.api.clone(),
        ..api
    };
    let delivered = wait_for(Duration::from_secs(30), || async {
        receiver.received()[seen_before..]
            .iter()
            .filter(|r| r.header("webhook-id").is_some())
            .map(|r| r.header("webhook-id").unwrap().to_owned())
            .collect::<std::collections::BTreeSet<_>>()
            .len()
            == msgs.len()
    })
    .await;
    assert!(
        delivered,
        "the node sent the pending messages; stderr:\n{}",
        node.stderr()
    );
    for r in &receiver.received()[seen_before..] {
        let (id, ts, sig) = r.signed();
        let i = msgs
            .iter()
            .position(|m| m == id)
            .expect("one of the messages");
        assert_eq!(r.body, payloads[i].as_bytes(), "the exact payload bytes");
        assert!(
            signature_valid(&secret, id, ts, &r.body, sig),
            "signed with the endpoint's original secret"
        );
        assert_eq!(r.header("x-copied"), Some("from sqlite"));
        assert_eq!(r.path, "/hook");
    }

    // The old token works; the history is there, with the new attempts on top.
    let listed = api.get(&format!("/app/{app}/msg")).await;
    let mut ids: Vec<String> = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    let mut want = msgs.clone();
    want.sort();
    assert_eq!(ids, want);
    for (i, m) in msgs.iter().enumerate() {
        let got = api.get(&format!("/app/{app}/msg/{m}")).await;
        assert_eq!(got["payload"]["n"], i);
        let ok = wait_for(Duration::from_secs(10), || async {
            api.attempts(&app, m)
                .await
                .first()
                .map(|a| a["status"].clone())
                == Some(json!(0))
        })
        .await;
        assert!(ok, "{m} was marked delivered");
        // The attempts made on SQLite are kept as they were (more may have followed
        // before it stopped).
        let attempts = api.attempts(&app, m).await;
        for old in &history[m] {
            assert_eq!(old["responseStatusCode"], 503);
            assert!(attempts.contains(old), "{old} is kept: {attempts:#?}");
        }
    }
    assert_eq!(
        api.get(&format!("/app/{app}/endpoint/{ep}/secret")).await["key"],
        json!(secret)
    );
    // The portal link still opens the application.
    let link = url::Url::parse(&portal).unwrap();
    let root = node.api.trim_end_matches("/api/v1");
    let resp = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(format!(
            "{root}{}?{}",
            link.path(),
            link.query().unwrap_or_default()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303, "the portal link opens");
    assert_eq!(
        resp.headers()["location"].to_str().unwrap(),
        format!("/portal/apps/{app}/webhooks")
    );
    stop(node).await;

    // A second copy into the same database is refused and changes nothing.
    let filled = pg_counts(&url);
    let out = copy(&from, &url);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("not empty"), "{out:?}");
    assert_eq!(pg_counts(&url), filled);

    // Copying from PostgreSQL is refused.
    let out = copy(&url, &url);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("copying from PostgreSQL is not supported; use pg_dump"),
        "{out:?}"
    );
}
