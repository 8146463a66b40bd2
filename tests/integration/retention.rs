use crate::support::console::Console;
use crate::support::{wait_for, TestApp, TestReceiver};
use serde_json::{json, Value};
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
    // The console's attempt page shows the recorded request and response headers.
    let mut c = Console::first_admin(&app).await;
    let attempt_page = |msg: &str, attempt: &Value| {
        format!(
            "/admin/apps/{a}/endpoints/{ep}/attempts/{msg}/{}",
            attempt["id"].as_str().unwrap()
        )
    };
    let page = c.page(&attempt_page(&gone, &attempts[0])).await;
    assert!(
        !page.contains("id=\"request-headers\"") && !page.contains("id=\"response-headers\""),
        "the headers outlived the payload: {page}"
    );
    assert!(
        page.contains("Headers not recorded (an older attempt, or purged by the retention policy)")
            && page.contains("Headers not recorded.</p>"),
        "{page}"
    );
    let kept_attempts = app
        .wait_attempts(&a, &kept, 1, Duration::from_secs(5))
        .await;
    let page = c.page(&attempt_page(&kept, &kept_attempts[0])).await;
    let shown = page
        .split_once("<pre id=\"request-headers\">")
        .and_then(|(_, rest)| rest.split_once("</pre>"))
        .map(|(h, _)| h)
        .unwrap_or_else(|| panic!("the kept message's request headers are gone: {page}"));
    assert!(shown.contains("webhook-signature: v1,"), "{shown}");
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
