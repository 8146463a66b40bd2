//! hookbox's own endpoint routes beside the Svix ones: health and a synchronous test send.

use crate::support::receiver::Reply;
use crate::support::{signature_valid, wait_for, TestApp, TestReceiver};
use serde_json::json;
use std::time::Duration;

#[tokio::test]
async fn endpoint_health_reports_success_rate_hourly_counts_and_failing_since() {
    let app = TestApp::spawn_with(|c| c.delivery.retry_schedule = vec![Duration::ZERO]).await;
    let rx = TestReceiver::start().await;
    let a = app.create_app("x").await;
    let (ep, _) = app.create_endpoint(&a, json!({ "url": rx.url })).await;
    let path = format!("/app/{a}/endpoint/{ep}/health");
    assert_eq!(app.get(&path, 200).await["status"], "unknown");

    let m = app.send(&a, "x.y", json!({})).await;
    app.wait_attempts(&a, &m, 1, Duration::from_secs(5)).await;
    let h = app.get(&path, 200).await;
    assert_eq!(h["status"], "healthy", "{h}");
    assert_eq!(h["success"], 1);
    assert_eq!(h["successRate"], 100.0);
    assert_eq!(h["hourly"].as_array().unwrap().len(), 1);
    assert!(h["failingSince"].is_null());

    rx.set_default(Reply::status(500));
    let m = app.send(&a, "x.y", json!({})).await;
    app.wait_attempts(&a, &m, 1, Duration::from_secs(5)).await;
    let failing = wait_for(Duration::from_secs(5), || async {
        let h = app.get(&path, 200).await;
        h["status"] == "failing" && h["failingSince"].is_string()
    })
    .await;
    assert!(failing, "{}", app.get(&path, 200).await);
    let h = app.get(&path, 200).await;
    assert_eq!(h["successRate"], 50.0, "{h}");
    app.get(&format!("/app/{a}/endpoint/ep_nope/health"), 404)
        .await;
    app.get(&format!("{path}?since=yesterday"), 422).await;
}

#[tokio::test]
async fn test_send_answers_with_the_endpoints_response_and_is_logged() {
    let app = TestApp::spawn().await;
    let rx = TestReceiver::start().await;
    rx.set_default(Reply::status(201).body("got it"));
    let a = app.create_app("x").await;
    app.post(
        "/event-type",
        json!({ "name": "order.paid", "description": "d", "schemas": { "1": { "examples": [{ "order": 7 }] } } }),
        201,
    )
    .await;
    let (ep, secret) = app.create_endpoint(&a, json!({ "url": rx.url })).await;
    let path = format!("/app/{a}/endpoint/{ep}/test");

    let out = app
        .post(&path, json!({ "eventType": "order.paid" }), 200)
        .await;
    assert_eq!(out["success"], true, "{out}");
    assert_eq!(out["responseStatusCode"], 201);
    assert_eq!(out["response"], "got it");
    let got = rx.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].json(), json!({ "order": 7 }));
    let (id, ts, sig) = got[0].signed();
    assert_eq!(id, out["msgId"].as_str().unwrap());
    assert!(signature_valid(&secret, id, ts, &got[0].body, sig));
    let attempts = app.attempts(&a, out["msgId"].as_str().unwrap()).await;
    assert_eq!(attempts[0]["id"], out["attemptId"]);
    // Svix knows 0 (scheduled) and 1 (manual); its SDKs refuse anything else.
    assert_eq!(attempts[0]["triggerType"], 1);

    let custom = app
        .post(
            &path,
            json!({ "eventType": "order.paid", "payload": { "custom": true } }),
            200,
        )
        .await;
    assert_eq!(custom["success"], true);
    assert_eq!(rx.received()[1].json(), json!({ "custom": true }));
    app.post(&path, json!({ "eventType": "nope" }), 422).await;
    app.post(
        &path,
        json!({ "eventType": "order.paid", "payload": [1] }),
        422,
    )
    .await;

    // A failing endpoint: the answer says so, nothing is retried.
    rx.set_default(Reply::status(503).body("down"));
    let failed = app
        .post(&path, json!({ "eventType": "order.paid" }), 200)
        .await;
    assert_eq!(failed["success"], false);
    assert_eq!(failed["responseStatusCode"], 503);
    app.assert_nothing_due_within(Duration::from_secs(5)).await;
    assert_eq!(rx.count(), 3);
}
