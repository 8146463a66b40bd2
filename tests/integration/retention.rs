use crate::support::{wait_for, TestApp, TestReceiver};
use serde_json::json;
use std::time::Duration;

#[tokio::test]
async fn expired_payloads_and_response_bodies_are_purged_but_counts_survive() {
    let app = TestApp::spawn_with(|c| {
        c.retention.payload = Duration::from_millis(500);
        c.retention.sweep_interval = Duration::from_millis(100);
    })
    .await;
    let rx = TestReceiver::start().await;
    let a = app.create_app("short").await;
    let kept_app = app
        .post(
            "/app",
            json!({ "name": "long", "payloadRetentionPeriod": 30 }),
            201,
        )
        .await;
    assert_eq!(kept_app["payloadRetentionPeriod"], 30);
    let b = kept_app["id"].as_str().unwrap().to_owned();
    let (ep, _) = app.create_endpoint(&a, json!({ "url": rx.url })).await;
    app.create_endpoint(&b, json!({ "url": rx.url })).await;

    let gone = app.send(&a, "x.y", json!({ "secret": "s1" })).await;
    let kept = app
        .post(
            &format!("/app/{a}/msg"),
            json!({ "eventType": "x.y", "payload": { "k": 1 }, "payloadRetentionHours": 1 }),
            202,
        )
        .await;
    let kept = kept["id"].as_str().unwrap().to_owned();
    let in_kept_app = app.send(&b, "x.y", json!({ "k": 2 })).await;
    rx.wait_for_count(3, Duration::from_secs(5)).await;

    let purged = wait_for(Duration::from_secs(5), || async {
        app.get(&format!("/app/{a}/msg/{gone}"), 200).await["payload"] == json!({})
    })
    .await;
    assert!(purged, "the payload was not purged");
    let attempts = app.attempts(&a, &gone).await;
    assert_eq!(
        attempts[0]["response"], "",
        "the response body outlived the payload"
    );
    assert_eq!(attempts[0]["responseStatusCode"], 200);
    let db = rusqlite::Connection::open(app.dir.path().join("hookbox.db")).unwrap();
    let headers: (Option<String>, Option<String>) = db
        .query_row(
            "SELECT request_headers, response_headers FROM attempts WHERE msg_id = ?",
            [&gone],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(headers, (None, None), "the headers outlived the payload");
    let other: Option<String> = db
        .query_row(
            "SELECT request_headers FROM attempts WHERE msg_id = ?",
            [&kept],
            |r| r.get(0),
        )
        .unwrap();
    assert!(other.is_some_and(|h| h.contains("webhook-signature: v1,")));
    let stats = app.get(&format!("/app/{a}/endpoint/{ep}/stats"), 200).await;
    assert_eq!(
        stats["success"], 2,
        "counts must survive the purge: {stats}"
    );

    assert_eq!(
        app.get(&format!("/app/{a}/msg/{kept}"), 200).await["payload"],
        json!({ "k": 1 })
    );
    assert_eq!(
        app.get(&format!("/app/{b}/msg/{in_kept_app}"), 200).await["payload"],
        json!({ "k": 2 })
    );
    app.post(
        "/app",
        json!({ "name": "bad", "payloadRetentionPeriod": 0 }),
        422,
    )
    .await;
}
