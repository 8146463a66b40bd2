//! `/metrics`, request ids and structured logs, graceful shutdown (with the real binary).

use crate::support::receiver::Reply;
use crate::support::{wait_for, TestApp, TestReceiver};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

/// Parses the Prometheus text format strictly enough for the tests: every line is a comment
/// (`# HELP`/`# TYPE`) or `name{labels} value`, and every sample belongs to a typed family.
/// Returns `name{labels}` → value.
fn parse_metrics(text: &str) -> BTreeMap<String, f64> {
    let mut typed = BTreeSet::new();
    let mut samples = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split(' ');
            let name = parts.next().unwrap();
            let kind = parts.next().unwrap();
            assert!(
                ["counter", "gauge", "histogram"].contains(&kind),
                "unknown type: {line}"
            );
            typed.insert(name.to_owned());
            continue;
        }
        if line.starts_with("# HELP ") {
            continue;
        }
        assert!(!line.is_empty(), "empty line in:\n{text}");
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("no value: {line}"));
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            v => v.parse().unwrap_or_else(|_| panic!("bad value: {line}")),
        };
        let name_end = series.find('{').unwrap_or(series.len());
        let name = &series[..name_end];
        assert!(
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
                && !name.starts_with(|c: char| c.is_ascii_digit()),
            "bad metric name: {line}"
        );
        if name_end < series.len() {
            let labels = &series[name_end..];
            assert!(
                labels.starts_with('{') && labels.ends_with('}'),
                "bad labels: {line}"
            );
            for pair in labels[1..labels.len() - 1].split(',') {
                let (k, v) = pair
                    .split_once('=')
                    .unwrap_or_else(|| panic!("bad label: {line}"));
                assert!(!k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
                assert!(
                    v.len() >= 2 && v.starts_with('"') && v.ends_with('"'),
                    "{line}"
                );
            }
        }
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s).filter(|f| typed.contains(*f)))
            .unwrap_or(name);
        assert!(typed.contains(family), "sample without # TYPE: {line}");
        assert!(
            samples.insert(series.to_owned(), value).is_none(),
            "duplicate series: {line}"
        );
    }
    samples
}

/// `GET /metrics` as served, checked to be the Prometheus text format (0.0.4).
async fn scrape_text(app: &TestApp) -> String {
    let url = app.base.replace("/api/v1", "/metrics");
    // No token: scrapers are not given one.
    let resp = app.client.get(&url).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let ct = resp.headers()["content-type"].to_str().unwrap().to_owned();
    assert_eq!(ct, "text/plain; version=0.0.4; charset=utf-8");
    resp.text().await.unwrap()
}

pub(crate) async fn scrape(app: &TestApp) -> BTreeMap<String, f64> {
    parse_metrics(&scrape_text(app).await)
}

pub(crate) fn get(m: &BTreeMap<String, f64>, series: &str) -> f64 {
    *m.get(series)
        .unwrap_or_else(|| panic!("no series {series} in {m:#?}"))
}

/// Dashboards and alerts select on these: every family with its type, every series with its
/// labels and, for histograms, its bucket bounds as written in `le`. A metric renamed,
/// retyped, relabelled or rebucketed fails here.
#[tokio::test]
async fn metrics_expose_exactly_the_families_types_labels_and_buckets_dashboards_rely_on() {
    const FAMILIES: &[(&str, &str)] = &[
        ("hookbox_messages_ingested_total", "counter"),
        ("hookbox_ingest_duration_seconds", "histogram"),
        ("hookbox_http_requests_in_flight", "gauge"),
        ("hookbox_delivery_attempts_total", "counter"),
        ("hookbox_deliveries_skipped_total", "counter"),
        ("hookbox_deliveries_handed_back_total", "counter"),
        ("hookbox_delivery_results_not_written_total", "counter"),
        ("hookbox_deliveries_offloaded_total", "counter"),
        ("hookbox_delivery_attempt_duration_seconds", "histogram"),
        ("hookbox_deliveries_in_flight", "gauge"),
        ("hookbox_queue_deliveries", "gauge"),
        ("hookbox_queue_in_memory", "gauge"),
        ("hookbox_endpoints", "gauge"),
        ("hookbox_db_transactions_total", "counter"),
        ("hookbox_db_wal_syncs_total", "counter"),
        ("hookbox_db_full_errors_total", "counter"),
        ("hookbox_db_full", "gauge"),
        ("hookbox_db_writer_batch_size", "histogram"),
        ("hookbox_db_commit_duration_seconds", "histogram"),
        ("hookbox_database_reachable", "gauge"),
    ];
    const LABELS: &[(&str, &str, &[&str])] = &[
        (
            "hookbox_delivery_attempts_total",
            "outcome",
            &["success", "failure", "gone"],
        ),
        ("hookbox_queue_deliveries", "state", &["due", "scheduled"]),
        ("hookbox_endpoints", "state", &["enabled", "disabled"]),
    ];
    const LATENCY: &[&str] = &[
        "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5",
        "10", "30",
    ];
    const BUCKETS: &[(&str, &[&str])] = &[
        ("hookbox_ingest_duration_seconds", LATENCY),
        ("hookbox_delivery_attempt_duration_seconds", LATENCY),
        (
            "hookbox_db_writer_batch_size",
            &[
                "1", "2", "5", "10", "25", "50", "100", "250", "500", "1000", "2000",
            ],
        ),
        (
            "hookbox_db_commit_duration_seconds",
            &[
                "5e-05", "0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005", "0.01",
                "0.025", "0.05", "0.1", "0.25", "1",
            ],
        ),
    ];

    let app = TestApp::spawn().await;
    let text = scrape_text(&app).await;
    let declared = |prefix: &str| -> Vec<(String, String)> {
        text.lines()
            .filter_map(|l| l.strip_prefix(prefix))
            .map(|l| {
                let (name, rest) = l.split_once(' ').unwrap();
                (name.to_owned(), rest.to_owned())
            })
            .collect()
    };
    let types = declared("# TYPE ");
    let expected: Vec<(String, String)> = FAMILIES
        .iter()
        .map(|(n, t)| ((*n).to_owned(), (*t).to_owned()))
        .collect();
    assert_eq!(types, expected, "families and types, in order");
    let helped: Vec<String> = declared("# HELP ").into_iter().map(|(n, _)| n).collect();
    let names: Vec<String> = expected.into_iter().map(|(n, _)| n).collect();
    assert_eq!(helped, names, "one # HELP per family");

    let mut series = BTreeSet::new();
    for (name, kind) in FAMILIES {
        if *kind == "histogram" {
            let (_, bounds) = BUCKETS.iter().find(|(n, _)| n == name).unwrap();
            for le in bounds.iter().chain(&["+Inf"]) {
                series.insert(format!("{name}_bucket{{le=\"{le}\"}}"));
            }
            series.insert(format!("{name}_sum"));
            series.insert(format!("{name}_count"));
        } else if let Some((_, label, values)) = LABELS.iter().find(|(n, _, _)| n == name) {
            for v in *values {
                series.insert(format!("{name}{{{label}=\"{v}\"}}"));
            }
        } else {
            series.insert((*name).to_owned());
        }
    }
    let exposed: BTreeSet<String> = parse_metrics(&text).into_keys().collect();
    assert_eq!(exposed, series);
}

#[tokio::test]
async fn metrics_count_ingested_messages_and_attempts_by_outcome_in_prometheus_text() {
    let app = TestApp::spawn().await;
    let ok = TestReceiver::start().await;
    let gone = TestReceiver::start().await;
    gone.set_default(Reply::status(410));
    let a = app.create_app("metrics").await;
    app.create_endpoint(&a, json!({ "url": format!("{}/ok", ok.url) }))
        .await;
    let (gone_ep, _) = app
        .create_endpoint(&a, json!({ "url": format!("{}/gone", gone.url) }))
        .await;

    let before = scrape(&app).await;
    assert_eq!(get(&before, "hookbox_messages_ingested_total"), 0.0);
    assert_eq!(get(&before, "hookbox_endpoints{state=\"enabled\"}"), 2.0);
    assert_eq!(get(&before, "hookbox_endpoints{state=\"disabled\"}"), 0.0);

    // The first message reaches both endpoints; the 410 disables the second one.
    let first = app.send(&a, "user.created", json!({ "n": 1 })).await;
    app.wait_attempts(&a, &first, 2, Duration::from_secs(10))
        .await;
    let disabled = wait_for(Duration::from_secs(10), || async {
        app.get(&format!("/app/{a}/endpoint/{gone_ep}"), 200).await["disabled"] == true
    })
    .await;
    assert!(disabled, "410 disables the endpoint");
    let mut msgs = vec![first];
    for n in 2..=3 {
        msgs.push(app.send(&a, "user.created", json!({ "n": n })).await);
    }
    for m in &msgs[1..] {
        app.wait_attempts(&a, m, 1, Duration::from_secs(10)).await;
    }
    ok.wait_for_count(3, Duration::from_secs(10)).await;

    let after = scrape(&app).await;
    let delta = |s: &str| get(&after, s) - before.get(s).copied().unwrap_or(0.0);
    assert_eq!(delta("hookbox_messages_ingested_total"), 3.0);
    assert_eq!(delta("hookbox_ingest_duration_seconds_count"), 3.0);
    assert_eq!(
        get(
            &after,
            "hookbox_ingest_duration_seconds_bucket{le=\"+Inf\"}"
        ),
        get(&after, "hookbox_ingest_duration_seconds_count")
    );
    assert!(get(&after, "hookbox_ingest_duration_seconds_sum") > 0.0);
    assert_eq!(
        delta("hookbox_delivery_attempts_total{outcome=\"success\"}"),
        3.0
    );
    assert_eq!(
        delta("hookbox_delivery_attempts_total{outcome=\"gone\"}"),
        1.0
    );
    assert_eq!(
        delta("hookbox_delivery_attempts_total{outcome=\"failure\"}"),
        0.0
    );
    assert_eq!(
        delta("hookbox_delivery_attempt_duration_seconds_count"),
        4.0
    );
    assert_eq!(get(&after, "hookbox_endpoints{state=\"disabled\"}"), 1.0);
    assert_eq!(get(&after, "hookbox_endpoints{state=\"enabled\"}"), 1.0);
    for state in ["due", "scheduled"] {
        assert_eq!(
            get(
                &after,
                &format!("hookbox_queue_deliveries{{state=\"{state}\"}}")
            ),
            0.0,
            "nothing is pending"
        );
    }
    assert_eq!(get(&after, "hookbox_queue_in_memory"), 0.0);
    assert_eq!(get(&after, "hookbox_deliveries_in_flight"), 0.0);
    // The scrape itself is the one request in flight.
    assert_eq!(get(&after, "hookbox_http_requests_in_flight"), 1.0);
    crate::sqlite_only!("the SQLite writer's figures");
    // Every write went through the writer: app, endpoints, messages, results.
    assert!(delta("hookbox_db_writer_batch_size_count") >= 5.0);
    assert!(get(&after, "hookbox_db_writer_batch_size_sum") >= 5.0);
    assert_eq!(
        get(&after, "hookbox_db_commit_duration_seconds_count"),
        get(&after, "hookbox_db_transactions_total")
    );
}

#[tokio::test]
async fn metrics_count_a_failed_attempt_and_show_its_retry_as_scheduled() {
    let app = TestApp::spawn_with(|cfg| {
        cfg.delivery.retry_schedule = vec![Duration::ZERO, Duration::from_secs(3600)];
    })
    .await;
    let failing = TestReceiver::start().await;
    failing.set_default(Reply::status(500));
    let a = app.create_app("retry").await;
    app.create_endpoint(&a, json!({ "url": failing.url })).await;
    let msg = app.send(&a, "user.created", json!({})).await;
    app.wait_attempts(&a, &msg, 1, Duration::from_secs(10))
        .await;
    let scheduled = wait_for(Duration::from_secs(10), || async {
        get(
            &scrape(&app).await,
            "hookbox_queue_deliveries{state=\"scheduled\"}",
        ) == 1.0
    })
    .await;
    assert!(scheduled, "the retry an hour later is counted as scheduled");
    let m = scrape(&app).await;
    assert_eq!(
        get(&m, "hookbox_delivery_attempts_total{outcome=\"failure\"}"),
        1.0
    );
    assert_eq!(get(&m, "hookbox_queue_deliveries{state=\"due\"}"), 0.0);
}

#[tokio::test]
async fn request_id_comes_back_in_a_header_and_is_taken_from_the_client_when_sane() {
    let app = TestApp::spawn().await;
    let id_of = |resp: &reqwest::Response| {
        resp.headers()
            .get("x-request-id")
            .expect("every answer has x-request-id")
            .to_str()
            .unwrap()
            .to_owned()
    };
    let health = format!("{}/health", app.base);

    let generated = app.client.get(&health).send().await.unwrap();
    let first = id_of(&generated);
    assert!(first.starts_with("req_"), "{first}");
    let again = id_of(&app.client.get(&health).send().await.unwrap());
    assert_ne!(first, again, "each request gets its own id");

    let given = app
        .client
        .get(&health)
        .header("x-request-id", "client-id_1.2:3")
        .send()
        .await
        .unwrap();
    assert_eq!(id_of(&given), "client-id_1.2:3");

    // The Svix SDKs send `svix-req-id`.
    let svix = app
        .client
        .get(&health)
        .header("svix-req-id", "1234567890")
        .send()
        .await
        .unwrap();
    assert_eq!(id_of(&svix), "1234567890");

    // Not sane: replaced by a generated one.
    let odd = app
        .client
        .get(&health)
        .header("x-request-id", "two words")
        .send()
        .await
        .unwrap();
    assert!(id_of(&odd).starts_with("req_"));
    let long = app
        .client
        .get(&health)
        .header("x-request-id", "a".repeat(200))
        .send()
        .await
        .unwrap();
    assert!(id_of(&long).starts_with("req_"));

    // Error answers carry it too: unauthenticated, unknown route, wrong method.
    for (method, path) in [
        ("GET", "/app"),
        ("GET", "/no-such-route"),
        ("DELETE", "/health"),
    ] {
        let resp = app
            .client
            .request(method.parse().unwrap(), format!("{}{path}", app.base))
            .header("x-request-id", "err-1")
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_client_error(), "{method} {path}");
        assert_eq!(id_of(&resp), "err-1", "{method} {path}");
    }
}

#[cfg(unix)]
mod real_binary {
    use super::*;
    use crate::support::server::{create_token, Server};

    /// Waits for the process to exit, at most `within`.
    async fn exit_within(server: &mut Server, within: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = server.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "still running {within:?} after the signal; stderr:\n{}",
                server.stderr()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn call(
        client: &reqwest::Client,
        token: &str,
        url: String,
        body: Option<Value>,
    ) -> Value {
        let req = match &body {
            Some(b) => client.post(&url).json(b),
            None => client.get(&url),
        };
        let resp = req
            .bearer_auth(token)
            .header("x-request-id", "trace-me-1")
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        assert!(status.is_success(), "{url}: {status} {text}");
        serde_json::from_str(&text).unwrap()
    }

    /// Sets up an app with one endpoint at `url`; returns the app id.
    async fn app_with_endpoint(
        client: &reqwest::Client,
        token: &str,
        api: &str,
        url: &str,
    ) -> String {
        let app = call(
            client,
            token,
            format!("{api}/app"),
            Some(json!({ "name": "s" })),
        )
        .await;
        let app = app["id"].as_str().unwrap().to_owned();
        call(
            client,
            token,
            format!("{api}/app/{app}/endpoint"),
            Some(json!({ "url": url })),
        )
        .await;
        app
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sigterm_lets_the_delivery_in_flight_finish_then_exits_0_with_the_wal_checkpointed() {
        let dir = tempfile::tempdir().unwrap();
        // JSON logs chosen in the config file (not the environment).
        std::fs::write(
            dir.path().join("hookbox.toml"),
            "log_format = \"json\"\nshutdown_grace = \"10s\"\n",
        )
        .unwrap();
        let token = create_token(dir.path());
        let receiver = TestReceiver::start().await;
        receiver.set_default(Reply::status(200).delay(Duration::from_secs(1)));
        let env = [("HOOKBOX_LOG", "info,hookbox::access=debug")];
        let mut server =
            Server::start_with_env(dir.path(), dir.path().join("serve-0.log"), &env).await;
        let client = reqwest::Client::new();
        let api = server.api.clone();
        let app = app_with_endpoint(&client, &token, &api, &format!("{}/slow", receiver.url)).await;
        let msg = call(
            &client,
            &token,
            format!("{api}/app/{app}/msg"),
            Some(json!({ "eventType": "slow.test", "payload": { "k": 1 } })),
        )
        .await;
        let msg = msg["id"].as_str().unwrap().to_owned();

        // The receiver holds the request for a second: SIGTERM arrives while it is in flight.
        receiver.wait_for_count(1, Duration::from_secs(10)).await;
        let signalled = Instant::now();
        server.signal("TERM");
        let status = exit_within(&mut server, Duration::from_secs(10)).await;
        let took = signalled.elapsed();
        let log = server.stderr();
        assert!(status.success(), "exit status {status}; stderr:\n{log}");
        assert_eq!(receiver.count(), 1);

        // Every pending write was committed and the WAL copied into the database.
        let wal = dir.path().join("hookbox.db-wal");
        let wal_len = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
        assert_eq!(wal_len, 0, "the WAL is empty or absent after exit");

        // JSON lines, and the request's id on its log lines.
        let lines: Vec<Value> = log
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
            .collect();
        let traced = lines
            .iter()
            .filter(|l| l["span"]["request_id"] == "trace-me-1")
            .count();
        assert!(
            traced >= 3,
            "access lines carry the request id; log:\n{log}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l["fields"]["message"].as_str() == Some("WAL checkpointed")),
            "{log}"
        );
        println!("graceful stop took {took:?}");
        // The receiver held the request for a second after SIGTERM: the stop waited for it.
        assert!(took >= Duration::from_millis(500), "stopped after {took:?}");

        // After a restart: one attempt, successful; nothing is sent again.
        let server = Server::start(dir.path(), dir.path().join("serve-1.log")).await;
        let attempts = call(
            &client,
            &token,
            format!("{}/app/{app}/attempt/msg/{msg}", server.api),
            None,
        )
        .await;
        let attempts = attempts["data"].as_array().unwrap();
        assert_eq!(attempts.len(), 1, "{attempts:#?}");
        assert_eq!(attempts[0]["status"], 0, "a success: {attempts:#?}");
        assert_eq!(attempts[0]["responseStatusCode"], 200);
        let delivery = call(
            &client,
            &token,
            format!("{}/app/{app}/msg/{msg}/endpoint", server.api),
            None,
        )
        .await;
        assert_eq!(
            delivery["data"][0]["status"], 0,
            "the delivery is done: {delivery:#}"
        );
        assert_eq!(receiver.count(), 1, "no duplicate");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_second_sigterm_stops_at_once_without_waiting_for_the_grace_period() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("hookbox.toml"),
            "shutdown_grace = \"60s\"\n",
        )
        .unwrap();
        let token = create_token(dir.path());
        let receiver = TestReceiver::start().await;
        receiver.set_default(Reply::status(200).delay(Duration::from_secs(60)));
        let mut server = Server::start(dir.path(), dir.path().join("serve.log")).await;
        let client = reqwest::Client::new();
        let api = server.api.clone();
        let app = app_with_endpoint(&client, &token, &api, &receiver.url).await;
        call(
            &client,
            &token,
            format!("{api}/app/{app}/msg"),
            Some(json!({ "eventType": "stuck", "payload": {} })),
        )
        .await;
        receiver.wait_for_count(1, Duration::from_secs(10)).await;

        server.signal("TERM");
        let shutting_down = wait_for(Duration::from_secs(10), || async {
            server.stderr().contains("shutting down")
        })
        .await;
        assert!(shutting_down, "stderr:\n{}", server.stderr());
        let signalled = Instant::now();
        server.signal("TERM");
        let status = exit_within(&mut server, Duration::from_secs(5)).await;
        assert!(!status.success(), "a forced stop is not a clean exit");
        assert!(signalled.elapsed() < Duration::from_secs(3), "not at once");
        assert!(
            server.stderr().contains("second signal"),
            "{}",
            server.stderr()
        );
    }
}
