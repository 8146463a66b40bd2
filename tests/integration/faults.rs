//! Fault injection: receivers that are slow, break the connection, never stop talking,
//! fail, go away or redirect. Each test checks the attempt log and the next scheduled time.
//! Retries here come a minute, then two, after a failure, with no jitter: far beyond a test's
//! run, so no retry runs while a test reads the first attempt's outcome; a test reaches the
//! next one by moving the test clock ahead.

use crate::support::faulty::{Fault, FaultyServer};
use crate::support::receiver::Reply;
use crate::support::{wait_for, TestApp, TestReceiver};
use serde_json::{json, Value};
use std::time::Duration;

const FIRST_RETRY_MS: i64 = 60_000;
const SECOND_RETRY_MS: i64 = 120_000;

/// A hookbox whose retries wait for the test clock (see the module's comment).
async fn fault_app(tweak: impl FnOnce(&mut hookbox::config::Config)) -> TestApp {
    TestApp::spawn_with(|c| {
        c.delivery.retry_schedule = [0, FIRST_RETRY_MS, SECOND_RETRY_MS]
            .map(|ms| Duration::from_millis(ms as u64))
            .to_vec();
        tweak(c);
    })
    .await
}

fn ms(v: &Value) -> i64 {
    chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap())
        .unwrap()
        .timestamp_millis()
}

/// Sends one message to an endpoint at `url`; returns (app, msg, first attempt, next attempt
/// as the API reports it).
async fn first_attempt(app: &TestApp, url: &str) -> (String, String, Value, Option<i64>) {
    let a = app.create_app("faults").await;
    app.create_endpoint(&a, json!({ "url": url })).await;
    let m = app.send(&a, "fault.test", json!({ "n": 1 })).await;
    let attempt = app
        .wait_attempts(&a, &m, 1, Duration::from_secs(10))
        .await
        .remove(0);
    // The attempt and the delivery's next time are written together; read once written.
    app.settled().await;
    let ep = app.get(&format!("/app/{a}/msg/{m}/endpoint"), 200).await;
    let next = ep["data"][0]["nextAttempt"]
        .as_str()
        .map(|_| ms(&ep["data"][0]["nextAttempt"]));
    (a, m, attempt, next)
}

/// The next attempt is due `delay_ms` after this attempt (give or take the time its result
/// took to be written).
fn assert_retry_after(attempt: &Value, next: Option<i64>, delay_ms: i64) {
    let next = next.unwrap_or_else(|| panic!("no next attempt scheduled after {attempt}"));
    let gap = next - ms(&attempt["timestamp"]);
    assert!(
        (delay_ms - 50..=delay_ms + 1_000).contains(&gap),
        "next attempt {gap} ms after {attempt}, expected {delay_ms} ms"
    );
}

async fn quick_timeout_app() -> TestApp {
    fault_app(|c| c.delivery.request_timeout = Duration::from_millis(500)).await
}

#[tokio::test]
async fn slow_response_headers_time_out_and_are_retried() {
    let app = quick_timeout_app().await;
    let srv = FaultyServer::start(Fault::SlowHeaders(Duration::from_secs(3))).await;
    let (_, _, attempt, next) = first_attempt(&app, &srv.url).await;
    assert_eq!(attempt["status"], 2);
    assert_eq!(attempt["responseStatusCode"], 0);
    assert!(
        attempt["error"].as_str().unwrap().contains("timed out"),
        "{attempt}"
    );
    assert_retry_after(&attempt, next, FIRST_RETRY_MS);
}

#[tokio::test]
async fn a_body_too_slow_to_finish_is_cut_off_at_the_timeout() {
    let app = quick_timeout_app().await;
    let srv = FaultyServer::start(Fault::SlowBody(Duration::from_millis(50))).await;
    let (_, _, attempt, next) = first_attempt(&app, &srv.url).await;
    // The receiver answered 200: the delivery counts, and the log says the body was cut off.
    assert_eq!(attempt["status"], 0);
    assert_eq!(attempt["responseStatusCode"], 200);
    assert!(
        attempt["error"].as_str().unwrap().contains("response body"),
        "{attempt}"
    );
    assert!(
        attempt["responseDurationMs"].as_i64().unwrap() < 2000,
        "{attempt}"
    );
    assert!(next.is_none(), "a delivered message has no next attempt");
}

#[tokio::test]
async fn a_connection_reset_mid_response_is_a_failed_attempt() {
    let app = fault_app(|_| {}).await;
    let srv = FaultyServer::start(Fault::ResetMidResponse).await;
    let (_, _, attempt, next) = first_attempt(&app, &srv.url).await;
    assert_eq!(attempt["status"], 2);
    assert_eq!(attempt["responseStatusCode"], 0);
    assert!(!attempt["error"].as_str().unwrap().is_empty(), "{attempt}");
    assert_retry_after(&attempt, next, FIRST_RETRY_MS);
}

#[tokio::test]
async fn an_endless_response_body_is_read_only_up_to_the_excerpt() {
    let app = fault_app(|_| {}).await;
    let srv = FaultyServer::start(Fault::EndlessBody).await;
    let (_, _, attempt, next) = first_attempt(&app, &srv.url).await;
    assert_eq!(attempt["status"], 0);
    assert_eq!(attempt["response"].as_str().unwrap().len(), 4096);
    assert!(
        attempt["responseDurationMs"].as_i64().unwrap() < 1000,
        "{attempt}"
    );
    assert!(next.is_none());
}

#[tokio::test]
async fn server_errors_are_retried_on_the_schedule() {
    let app = fault_app(|_| {}).await;
    let rx = TestReceiver::start().await;
    rx.set_default(Reply::status(500).body("down"));
    let (a, m, attempt, next) = first_attempt(&app, &rx.url).await;
    assert_eq!(attempt["responseStatusCode"], 500);
    assert_eq!(attempt["response"], "down");
    assert_retry_after(&attempt, next, FIRST_RETRY_MS);
    assert_eq!(rx.count(), 1, "no retry before its time");
    app.clock
        .advance(Duration::from_millis(FIRST_RETRY_MS as u64));
    assert_eq!(
        app.dispatcher.run_once().await.unwrap(),
        1,
        "the retry is due"
    );
    let attempts = app.wait_attempts(&a, &m, 2, Duration::from_secs(5)).await;
    app.settled().await;
    let ep = app.get(&format!("/app/{a}/msg/{m}/endpoint"), 200).await;
    assert_retry_after(
        &attempts[1],
        ep["data"][0]["nextAttempt"]
            .as_str()
            .map(|_| ms(&ep["data"][0]["nextAttempt"])),
        SECOND_RETRY_MS,
    );
}

#[tokio::test]
async fn too_many_requests_with_retry_after_sets_the_next_attempt() {
    let app = fault_app(|_| {}).await;
    let rx = TestReceiver::start().await;
    rx.set_default(Reply::status(429).header("Retry-After", "90"));
    let (_, _, attempt, next) = first_attempt(&app, &rx.url).await;
    assert_eq!(attempt["responseStatusCode"], 429);
    assert_retry_after(&attempt, next, 90_000);
}

#[tokio::test]
async fn gone_410_disables_and_schedules_nothing() {
    let app = fault_app(|_| {}).await;
    let rx = TestReceiver::start().await;
    rx.set_default(Reply::status(410));
    let (a, _, attempt, next) = first_attempt(&app, &rx.url).await;
    assert_eq!(attempt["responseStatusCode"], 410);
    assert!(next.is_none());
    let eps = app.get(&format!("/app/{a}/endpoint"), 200).await;
    assert_eq!(eps["data"][0]["disabled"], true);
}

#[tokio::test]
async fn a_name_resolving_to_loopback_is_refused_without_the_allowlist() {
    let app = fault_app(|c| c.allow_destinations.clear()).await;
    let rx = TestReceiver::start().await;
    let port = rx.url.rsplit(':').next().unwrap().to_owned();
    let (_, _, attempt, next) = first_attempt(&app, &format!("http://localhost:{port}/")).await;
    assert_eq!(attempt["responseStatusCode"], 0);
    let err = attempt["error"].as_str().unwrap();
    assert_eq!(err, "destination refused: private or reserved address");
    assert_eq!(rx.count(), 0);
    assert_retry_after(&attempt, next, FIRST_RETRY_MS);
}

#[tokio::test]
async fn a_redirect_to_a_private_address_is_not_followed() {
    let app = fault_app(|_| {}).await;
    let rx = TestReceiver::start().await;
    rx.set_default(Reply::status(307).header("Location", "http://10.0.0.1/internal"));
    let (_, _, attempt, next) = first_attempt(&app, &rx.url).await;
    assert_eq!(attempt["status"], 2);
    assert_eq!(attempt["responseStatusCode"], 307);
    assert_eq!(attempt["url"].as_str().unwrap(), rx.url);
    assert_eq!(rx.count(), 1);
    assert_retry_after(&attempt, next, FIRST_RETRY_MS);
}

/// Makes the database refuse every attempt row for which `when` (SQL on `NEW`) holds, as a
/// constraint would: a trigger stands in for whatever the database may refuse.
fn refuse_attempts_where(app: &TestApp, when: &str) {
    refuse_where(app, "INSERT", "attempts", when);
}

/// Makes the database refuse each `event` (`INSERT`, `UPDATE`) of a row of `table` for which
/// `when` (SQL on `NEW`) holds.
fn refuse_where(app: &TestApp, event: &str, table: &str, when: &str) {
    use crate::support::storage::{pg_query, postgres_url};
    if let Some(url) = postgres_url(app.dir.path()) {
        pg_query(
            &url,
            &format!(
                "CREATE FUNCTION refuse_{table}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
                 IF {when} THEN \
                 RAISE EXCEPTION 'refused' USING ERRCODE = 'check_violation'; END IF; \
                 RETURN NEW; END $$"
            ),
        );
        pg_query(
            &url,
            &format!(
                "CREATE TRIGGER refuse_{table} BEFORE {event} ON {table} FOR EACH ROW \
                 EXECUTE FUNCTION refuse_{table}()"
            ),
        );
        return;
    }
    let c = rusqlite::Connection::open(app.dir.path().join("hookbox.db")).unwrap();
    c.busy_timeout(Duration::from_secs(10)).unwrap();
    c.execute_batch(&format!(
        "CREATE TRIGGER refuse_{table} BEFORE {event} ON {table} \
         WHEN {when} BEGIN SELECT RAISE(ABORT, 'refused'); END"
    ))
    .unwrap();
}

/// Each delivery of message `m`: (endpoint, status, next attempt).
async fn deliveries_of(app: &TestApp, a: &str, m: &str) -> Vec<(String, Value, Value)> {
    let v = app.get(&format!("/app/{a}/msg/{m}/endpoint"), 200).await;
    v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["id"].as_str().unwrap().to_owned(),
                d["status"].clone(),
                d["nextAttempt"].clone(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_result_the_database_refuses_is_kept_without_its_response_and_holds_nothing_back() {
    let app = fault_app(|_| {}).await;
    let (refused, fine) = (TestReceiver::start().await, TestReceiver::start().await);
    // First a 500 each (stored as usual), then, on the retry, a response the database refuses.
    refused.script([Reply::status(500)]);
    refused.set_default(Reply::status(200).body("poison"));
    fine.script([Reply::status(500)]);
    let a = app.create_app("refused").await;
    let (bad, _) = app
        .create_endpoint(&a, json!({ "url": format!("{}/bad", refused.url) }))
        .await;
    let (good, _) = app
        .create_endpoint(&a, json!({ "url": format!("{}/good", fine.url) }))
        .await;
    refuse_attempts_where(&app, "NEW.response LIKE '%poison%'");
    let m = app.send(&a, "fault.test", json!({ "n": 1 })).await;
    app.wait_attempts(&a, &m, 2, Duration::from_secs(10)).await;
    app.settled().await;

    // One step sends both retries and writes their results as one batch.
    app.clock
        .advance(Duration::from_millis(FIRST_RETRY_MS as u64));
    assert_eq!(app.dispatcher.run_once().await.unwrap(), 2);
    let attempts = app.attempts(&a, &m).await;
    let last = |ep: &str| {
        attempts
            .iter()
            .rfind(|t| t["endpointId"] == ep)
            .unwrap_or_else(|| panic!("no attempt for {ep}: {attempts:?}"))
            .clone()
    };
    let (b, g) = (last(&bad), last(&good));
    // The refused one: kept without what the receiver answered.
    assert_eq!(
        (&b["status"], &b["responseStatusCode"]),
        (&json!(0), &json!(200)),
        "{b}"
    );
    assert_eq!(b["response"], json!(""), "{b}");
    // The other one of the batch: kept whole.
    assert_eq!(
        (&g["status"], &g["response"]),
        (&json!(0), &json!("ok")),
        "{g}"
    );
    assert_eq!(attempts.len(), 4, "{attempts:?}");
    for (ep, status, next) in deliveries_of(&app, &a, &m).await {
        assert_eq!((status, next), (json!(0), Value::Null), "{ep}");
    }

    // The results after it are written as usual.
    refused.set_default(Reply::status(200).body("ok"));
    let m2 = app.send(&a, "fault.test", json!({ "n": 2 })).await;
    let later = app.wait_attempts(&a, &m2, 2, Duration::from_secs(10)).await;
    assert!(
        later.iter().all(|t| t["response"] == json!("ok")),
        "{later:?}"
    );
}

#[tokio::test]
async fn a_result_whose_attempt_the_database_always_refuses_still_moves_its_ordered_line_on() {
    let app = fault_app(|_| {}).await;
    let rx = TestReceiver::start().await;
    let a = app.create_app("refused").await;
    let (ep, _) = app
        .create_endpoint(
            &a,
            json!({ "url": format!("{}/never", rx.url), "ordered": true }),
        )
        .await;
    refuse_attempts_where(&app, "NEW.url LIKE '%/never%'");
    let sent = [
        app.send(&a, "fault.test", json!({ "n": 1 })).await,
        app.send(&a, "fault.test", json!({ "n": 2 })).await,
        app.send(&a, "fault.test", json!({ "n": 3 })).await,
    ];
    // Each is sent, in order, though no attempt of theirs can be stored: the line moves on.
    let got = rx.wait_for_count(3, Duration::from_secs(10)).await;
    let ids: Vec<String> = got.iter().map(|r| r.json()["n"].to_string()).collect();
    assert_eq!(ids, ["1", "2", "3"]);
    app.settled().await;
    for m in &sent {
        assert_eq!(
            deliveries_of(&app, &a, m).await,
            [(ep.clone(), json!(0), Value::Null)],
            "{m}: delivered, nothing left to send"
        );
        assert!(app.attempts(&a, m).await.is_empty());
    }
    // They still count in the endpoint's health (what alerts on error rates read).
    let sql = format!(
        "SELECT CAST(SUM(attempts) AS BIGINT) FROM endpoint_health WHERE endpoint_id = '{ep}'"
    );
    let counted: i64 = match crate::support::storage::postgres_url(app.dir.path()) {
        Some(url) => crate::support::storage::pg_query(&url, &sql)[0].get(0),
        None => rusqlite::Connection::open(app.dir.path().join("hookbox.db"))
            .unwrap()
            .query_row(&sql, [], |r| r.get(0))
            .unwrap(),
    };
    assert_eq!(counted, 3);
}

#[tokio::test]
async fn a_result_the_database_refuses_even_without_its_attempt_holds_back_no_other() {
    let app = fault_app(|_| {}).await;
    let (stuck, fine) = (TestReceiver::start().await, TestReceiver::start().await);
    let a = app.create_app("refused").await;
    let (bad, _) = app
        .create_endpoint(&a, json!({ "url": format!("{}/bad", stuck.url) }))
        .await;
    let (good, _) = app
        .create_endpoint(&a, json!({ "url": format!("{}/good", fine.url) }))
        .await;
    // What a success does to the one endpoint's deliveries cannot be written at all.
    refuse_where(
        &app,
        "UPDATE",
        "deliveries",
        &format!("NEW.endpoint_id = '{bad}' AND NEW.status = 0"),
    );
    let delivered = |m: String| {
        let (app, a, good) = (&app, &a, &good);
        async move {
            deliveries_of(app, a, &m)
                .await
                .into_iter()
                .any(|(ep, status, _)| ep == *good && status == json!(0))
        }
    };
    for n in 1..=3 {
        let m = app.send(&a, "fault.test", json!({ "n": n })).await;
        assert!(
            wait_for(Duration::from_secs(10), || delivered(m.clone())).await,
            "message {n}: the other endpoint's result is written"
        );
    }
    assert_eq!(stuck.count(), 3);
    assert_eq!(fine.count(), 3);
    // Each of the refused endpoint's results was given up, and is counted as such.
    let given_up = || async {
        let metrics = crate::observability::scrape(&app).await;
        crate::observability::get(&metrics, "hookbox_delivery_results_not_written_total") == 3.0
    };
    assert!(wait_for(Duration::from_secs(10), given_up).await);
    app.settled().await;
}

/// Runs `sql` on the app's database, whichever backend it is on.
fn run_sql(app: &TestApp, sql: &str) {
    use crate::support::storage::{pg_query, postgres_url};
    match postgres_url(app.dir.path()) {
        Some(url) => {
            pg_query(&url, sql);
        }
        None => {
            let c = rusqlite::Connection::open(app.dir.path().join("hookbox.db")).unwrap();
            c.busy_timeout(Duration::from_secs(10)).unwrap();
            c.execute_batch(sql).unwrap();
        }
    }
}

#[tokio::test]
async fn a_delivery_that_cannot_read_its_endpoint_for_long_is_released_and_sent_later() {
    let app = TestApp::spawn_with(|c| {
        c.delivery.max_in_flight_per_endpoint = Some(1);
        c.delivery.request_timeout = Duration::from_secs(10);
        c.delivery.db_patience = Duration::from_millis(500);
    })
    .await;
    let rx = TestReceiver::start().await;
    rx.script([Reply::status(200).delay(Duration::from_secs(1))]);
    let a = app.create_app("shop").await;
    let (ep, _) = app
        .create_endpoint(&a, json!({ "url": format!("{}/hook", rx.url) }))
        .await;
    app.send(&a, "x.y", json!({ "n": 1 })).await;
    rx.wait_for_count(1, Duration::from_secs(5)).await;
    // The second waits for the endpoint's place; its endpoint is forgotten (changed), and
    // cannot be read again until the outage ends, well after the delivery's patience.
    let second = app.send(&a, "x.y", json!({ "n": 2 })).await;
    let path = format!("/app/{a}/endpoint/{ep}");
    app.call("PATCH", &path, Some(json!({ "description": "x" })), 200)
        .await;
    run_sql(&app, "ALTER TABLE endpoints RENAME COLUMN url TO url_away");
    let handed_back = crate::support::wait_for(Duration::from_secs(10), || async {
        app.dispatcher.counters().handed_back.get() > 0
    })
    .await;
    assert!(handed_back, "the delivery was not handed back");
    run_sql(&app, "ALTER TABLE endpoints RENAME COLUMN url_away TO url");
    rx.wait_for_count(2, Duration::from_secs(10)).await;
    app.settled().await;
    let d = app
        .get(&format!("/app/{a}/msg/{second}/endpoint"), 200)
        .await;
    assert_eq!(d["data"][0]["statusText"], "success", "{d}");
}
