//! `GET /app/{app}/analytics`: attempt counts by outcome, event type, response code and time
//! bucket, for an application or one endpoint, surviving payload retention.

use crate::support::receiver::Reply;
use crate::support::{wait_for, TestApp, TestReceiver};
use serde_json::{json, Value};
use std::time::Duration;

fn sum(buckets: &Value, key: &str) -> i64 {
    buckets
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b[key].as_i64().unwrap())
        .sum()
}

#[tokio::test]
async fn analytics_count_attempts_by_outcome_event_type_code_and_hour() {
    // One attempt per delivery: no retries within the test. Payloads expire after a second,
    // so that the counts can be read again once the retention sweep has purged them.
    let app = TestApp::spawn_with(|cfg| {
        cfg.delivery.retry_schedule = vec![Duration::ZERO];
        cfg.retention.payload = Duration::from_secs(1);
        cfg.retention.sweep_interval = Duration::from_millis(100);
    })
    .await;
    let (ok_rx, bad_rx) = (TestReceiver::start().await, TestReceiver::start().await);
    // Both answer with a body, so that its purge shows in the attempts.
    bad_rx.set_default(Reply::status(503).body("down"));
    app.create_event_type("invoice.paid").await;
    let a = app.create_app("Acme").await;
    let other = app.create_app("Other").await;
    let (good, _) = app
        .create_endpoint(&a, json!({ "url": ok_rx.url, "uid": "good" }))
        .await;
    app.create_endpoint(
        &a,
        json!({ "url": bad_rx.url, "filterTypes": ["invoice.paid"] }),
    )
    .await;
    app.create_endpoint(&other, json!({ "url": ok_rx.url }))
        .await;
    let mut sent = Vec::new();
    for t in ["invoice.paid", "invoice.paid", "user.created"] {
        sent.push(app.send(&a, t, json!({ "x": 1 })).await);
    }
    app.send(&other, "invoice.paid", json!({})).await;
    // 3 to the good endpoint, 2 to the failing one, 1 for the other application.
    ok_rx.wait_for_count(4, Duration::from_secs(5)).await;
    bad_rx.wait_for_count(2, Duration::from_secs(5)).await;
    let path = format!("/app/{a}/analytics");
    let mut v = Value::Null;
    for _ in 0..100 {
        v = app.get(&path, 200).await;
        if v["total"]["fail"] == 2 && v["total"]["success"] == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    assert_eq!(v["total"], json!({ "success": 3, "fail": 2 }), "{v}");
    assert_eq!(v["interval"], "hour");
    assert_eq!(
        v["eventTypes"],
        json!([
            { "eventType": "invoice.paid", "success": 2, "fail": 2 },
            { "eventType": "user.created", "success": 1, "fail": 0 },
        ])
    );
    assert_eq!(
        v["statusCodes"],
        json!([{ "code": 200, "count": 3 }, { "code": 503, "count": 2 }])
    );
    // Every hour of the last day has a bucket, empty ones too; the counts add up.
    let n = v["buckets"].as_array().unwrap().len();
    assert!(n == 24 || n == 25, "{n} buckets");
    assert_eq!(sum(&v["buckets"], "success"), 3);
    assert_eq!(sum(&v["buckets"], "fail"), 2);

    // One endpoint, by uid; days.
    let one = app
        .get(&format!("{path}?endpointId=good&interval=day"), 200)
        .await;
    assert_eq!(one["total"], json!({ "success": 3, "fail": 0 }));
    assert_eq!(one["interval"], "day");
    let by_id = app.get(&format!("{path}?endpointId={good}"), 200).await;
    assert_eq!(by_id["total"], one["total"]);

    // A window that ends before the attempts holds none.
    let before = app
        .get(
            &format!("{path}?since=2020-01-01T00:00:00Z&until=2020-01-03T00:00:00Z"),
            200,
        )
        .await;
    assert_eq!(before["total"], json!({ "success": 0, "fail": 0 }));
    assert_eq!(before["buckets"].as_array().unwrap().len(), 48);

    // Counts survive the payloads' purge: once every payload and response body of the
    // application is gone, the same totals.
    let purged = wait_for(Duration::from_secs(10), || async {
        for msg in &sent {
            if app.get(&format!("/app/{a}/msg/{msg}"), 200).await["payload"] != json!({}) {
                return false;
            }
            let attempts = app.attempts(&a, msg).await;
            if attempts.is_empty() || attempts.iter().any(|at| at["response"] != "") {
                return false;
            }
        }
        true
    })
    .await;
    assert!(purged, "the payloads and response bodies were not purged");
    let after = app.get(&path, 200).await;
    for key in ["total", "eventTypes", "statusCodes"] {
        assert_eq!(after[key], v[key], "{key} after the purge: {after}");
    }

    // Bad windows and filters are refused with the field named.
    for (q, field) in [
        ("interval=week", "interval"),
        (
            "since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z",
            "since",
        ),
        (
            "since=2020-01-01T00:00:00Z&until=2026-01-01T00:00:00Z",
            "since",
        ),
        (
            "since=2026-01-01T00:00:00Z&until=2026-03-01T00:00:00Z&interval=hour",
            "interval",
        ),
        ("since=yesterday", "since"),
        ("endpointId=bad%20id", "endpointId"),
    ] {
        let (status, body) = app.raw("GET", &format!("{path}?{q}"), Vec::new()).await;
        assert_eq!(status, 422, "{q}: {body}");
        assert!(body.contains(field), "{q}: {body}");
    }
    app.get(&format!("{path}?endpointId=nope"), 404).await;
    app.get("/app/app_nope/analytics", 404).await;
}
