//! Each endpoint's own delivery policy: its retry schedule, request timeout and auto-disable
//! period, where they differ from the server's; through the API and the console.

use crate::support::console::Console;
use crate::support::receiver::Reply;
use crate::support::{wait_for, TestApp, TestReceiver};
use serde_json::json;
use std::time::Duration;

#[tokio::test]
async fn an_endpoint_s_own_timeout_cuts_a_slow_receiver_short_while_the_server_s_waits() {
    let app = TestApp::spawn_with(|c| c.delivery.request_timeout = Duration::from_secs(15)).await;
    let slow = TestReceiver::start().await;
    slow.set_default(Reply::status(200).delay(Duration::from_secs(3)));
    let a = app.create_app("shop").await;
    let (short, _) = app
        .create_endpoint(
            &a,
            json!({ "url": format!("{}/short", slow.url), "timeoutSeconds": 1, "retrySchedule": [] }),
        )
        .await;
    let (patient, _) = app
        .create_endpoint(&a, json!({ "url": format!("{}/patient", slow.url) }))
        .await;
    assert_eq!(
        app.get(&format!("/app/{a}/endpoint/{short}"), 200).await["timeoutSeconds"],
        1
    );
    app.send(&a, "order.created", json!({})).await;
    let attempt = |ep: String| {
        let app = &app;
        let a = a.clone();
        async move {
            let v = app
                .get(&format!("/app/{a}/attempt/endpoint/{ep}"), 200)
                .await;
            v["data"][0].clone()
        }
    };
    let done = wait_for(Duration::from_secs(20), || async {
        !attempt(short.clone()).await.is_null() && !attempt(patient.clone()).await.is_null()
    })
    .await;
    assert!(done, "both endpoints were tried");
    let cut = attempt(short.clone()).await;
    assert_eq!(cut["status"], 2, "{cut}");
    assert_eq!(cut["responseStatusCode"], 0, "{cut}");
    assert!(
        cut["error"]
            .as_str()
            .unwrap_or_default()
            .starts_with("timed out"),
        "{cut}"
    );
    let took = cut["responseDurationMs"].as_i64().unwrap();
    assert!((900..2500).contains(&took), "cut at about a second: {cut}");
    let waited = attempt(patient.clone()).await;
    assert_eq!(
        waited["status"], 0,
        "the server's 15 s outlast 3 s: {waited}"
    );
    assert_eq!(waited["responseStatusCode"], 200);
}

#[tokio::test]
async fn an_endpoint_s_own_retry_schedule_decides_how_often_it_is_tried() {
    let app = TestApp::spawn().await;
    let failing = TestReceiver::start().await;
    failing.set_default(Reply::status(500));
    let a = app.create_app("shop").await;
    let (once, _) = app
        .create_endpoint(
            &a,
            json!({ "url": format!("{}/once", failing.url), "retrySchedule": [] }),
        )
        .await;
    app.create_endpoint(
        &a,
        json!({ "url": format!("{}/five", failing.url), "retrySchedule": [0, 0, 0, 0] }),
    )
    .await;
    app.create_endpoint(&a, json!({ "url": format!("{}/server", failing.url) }))
        .await;
    let m = app.send(&a, "order.created", json!({})).await;
    // 1 + 5 + the server's 3.
    failing.wait_for_count(9, Duration::from_secs(20)).await;
    app.settled().await;
    let per_path = |p: &str| failing.received().iter().filter(|r| r.path == p).count();
    assert_eq!(
        (per_path("/once"), per_path("/five"), per_path("/server")),
        (1, 5, 3)
    );
    // The endpoint without retries has given up on the message.
    let dests = app.get(&format!("/app/{a}/msg/{m}/endpoint"), 200).await;
    let once_row = dests["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["id"] == once.as_str())
        .unwrap()
        .clone();
    assert_eq!(once_row["status"], 2, "{once_row}");
    assert!(once_row["nextAttempt"].is_null(), "{once_row}");
}

#[tokio::test]
async fn an_endpoint_is_disabled_after_its_own_failing_period_not_the_server_s() {
    let app = TestApp::spawn_with(|c| {
        c.delivery.auto_disable_after = Duration::from_secs(24 * 3600);
        c.retention.sweep_interval = Duration::from_millis(100);
    })
    .await;
    let failing = TestReceiver::start().await;
    failing.set_default(Reply::status(500));
    let a = app.create_app("shop").await;
    let (quick, _) = app
        .create_endpoint(
            &a,
            json!({ "url": format!("{}/quick", failing.url), "autoDisableAfterSeconds": 60 }),
        )
        .await;
    let (never, _) = app
        .create_endpoint(
            &a,
            json!({ "url": format!("{}/never", failing.url), "autoDisableAfterSeconds": 0 }),
        )
        .await;
    let (server, _) = app
        .create_endpoint(&a, json!({ "url": format!("{}/server", failing.url) }))
        .await;
    app.send(&a, "order.created", json!({})).await;
    failing.wait_for_count(9, Duration::from_secs(20)).await;
    app.settled().await;
    let disabled = |ep: String| {
        let app = &app;
        let a = a.clone();
        async move { app.get(&format!("/app/{a}/endpoint/{ep}"), 200).await }
    };
    assert_eq!(disabled(quick.clone()).await["disabled"], false);
    // A minute and a bit of failing: only the endpoint that allows a minute is disabled.
    app.clock.advance(Duration::from_secs(61));
    let off = wait_for(Duration::from_secs(10), || async {
        disabled(quick.clone()).await["disabled"] == true
    })
    .await;
    assert!(
        off,
        "the endpoint failing for its own minute was not disabled"
    );
    assert_eq!(
        disabled(server.clone()).await["disabled"],
        false,
        "the server's day holds"
    );
    assert_eq!(disabled(never.clone()).await["disabled"], false);
    let q = disabled(quick.clone()).await;
    assert!(
        q["disabledReason"]
            .as_str()
            .unwrap()
            .contains("every delivery failed for 1m"),
        "{q}"
    );
    // Days later (past the server's day), the one that never disables is still on.
    app.clock.advance(Duration::from_secs(2 * 24 * 3600));
    let server_off = wait_for(Duration::from_secs(10), || async {
        disabled(server.clone()).await["disabled"] == true
    })
    .await;
    assert!(server_off, "the server's day has passed");
    assert_eq!(disabled(never.clone()).await["disabled"], false);
}

#[tokio::test]
async fn a_policy_out_of_bounds_is_a_422_naming_the_field_and_null_returns_to_the_server_s() {
    let app = TestApp::spawn().await;
    let a = app.create_app("shop").await;
    for (body, field) in [
        (json!({ "timeoutSeconds": 0 }), "timeoutSeconds"),
        (json!({ "timeoutSeconds": 301 }), "timeoutSeconds"),
        (json!({ "retrySchedule": [604801] }), "retrySchedule"),
        (json!({ "retrySchedule": vec![1; 21] }), "retrySchedule"),
        (
            json!({ "autoDisableAfterSeconds": 2592001 }),
            "autoDisableAfterSeconds",
        ),
    ] {
        let mut b = body.clone();
        b["url"] = json!("http://127.0.0.1:9/");
        let e = app.post(&format!("/app/{a}/endpoint"), b, 422).await;
        assert_eq!(e["detail"][0]["loc"], json!(["body", field]), "{body}: {e}");
    }
    assert_eq!(
        app.get(&format!("/app/{a}/endpoint"), 200).await["data"],
        json!([]),
        "nothing was written"
    );
    let (ep, _) = app
        .create_endpoint(
            &a,
            json!({ "url": "http://127.0.0.1:9/", "retrySchedule": [5, 300], "timeoutSeconds": 10, "autoDisableAfterSeconds": 3600 }),
        )
        .await;
    let path = format!("/app/{a}/endpoint/{ep}");
    let v = app.get(&path, 200).await;
    assert_eq!(
        (
            &v["retrySchedule"],
            &v["timeoutSeconds"],
            &v["autoDisableAfterSeconds"]
        ),
        (&json!([5, 300]), &json!(10), &json!(3600))
    );
    // PATCH changes one, and a bad value changes nothing.
    app.call("PATCH", &path, Some(json!({ "timeoutSeconds": 400 })), 422)
        .await;
    let v = app
        .call("PATCH", &path, Some(json!({ "timeoutSeconds": 20 })), 200)
        .await;
    assert_eq!(v["timeoutSeconds"], 20);
    assert_eq!(v["retrySchedule"], json!([5, 300]));
    let v = app
        .call(
            "PATCH",
            &path,
            Some(json!({ "retrySchedule": null, "timeoutSeconds": null, "autoDisableAfterSeconds": null })),
            200,
        )
        .await;
    assert!(
        v["retrySchedule"].is_null() && v["timeoutSeconds"].is_null(),
        "{v}"
    );
    assert!(v["autoDisableAfterSeconds"].is_null(), "{v}");
    // PUT without them: the server's.
    let v = app
        .call(
            "PUT",
            &path,
            Some(json!({ "url": "http://127.0.0.1:9/", "timeoutSeconds": 7 })),
            200,
        )
        .await;
    assert_eq!(v["timeoutSeconds"], 7);
    assert!(v["retrySchedule"].is_null());
}

#[tokio::test]
async fn the_console_s_advanced_settings_show_and_change_the_policy() {
    let app = TestApp::spawn().await;
    let a = app.create_app("shop").await;
    let (ep, _) = app
        .create_endpoint(&a, json!({ "url": "http://127.0.0.1:9/" }))
        .await;
    let mut c = Console::first_admin(&app).await;
    let settings = format!("/admin/apps/{a}/endpoints/{ep}/settings");
    let form = c.page(&settings).await;
    // The server's settings are the hints.
    assert!(form.contains("placeholder=\"300ms, 600ms\""), "{form}");
    let base = [("url", "http://127.0.0.1:9/"), ("all_events", "1")];
    let r = c
        .submit(
            &settings,
            &[
                base.as_slice(),
                &[("retry_schedule", "10s, soon"), ("timeout", "5s")],
            ]
            .concat(),
        )
        .await;
    assert_eq!(r.status, 422);
    assert!(r.body.contains("`soon` is not a duration"), "{}", r.body);
    let r = c
        .submit(
            &settings,
            &[base.as_slice(), &[("timeout", "10m")]].concat(),
        )
        .await;
    assert_eq!(r.status, 422);
    assert!(r.body.contains("from 1 to 300 seconds"), "{}", r.body);
    let r = c
        .submit(
            &settings,
            &[
                base.as_slice(),
                &[
                    ("retry_schedule", "10s, 5m, 2h"),
                    ("timeout", "5s"),
                    ("auto_disable_after", "0"),
                ],
            ]
            .concat(),
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let v = app.get(&format!("/app/{a}/endpoint/{ep}"), 200).await;
    assert_eq!(v["retrySchedule"], json!([10, 300, 7200]));
    assert_eq!(v["timeoutSeconds"], 5);
    assert_eq!(v["autoDisableAfterSeconds"], 0);
    let form = c.page(&settings).await;
    assert!(form.contains("value=\"10s, 5m, 2h\""), "{form}");
    assert!(form.contains("name=\"timeout\" value=\"5s\""), "{form}");
    // `none`: no retry.
    c.submit(
        &settings,
        &[base.as_slice(), &[("retry_schedule", "none")]].concat(),
    )
    .await;
    let v = app.get(&format!("/app/{a}/endpoint/{ep}"), 200).await;
    assert_eq!(v["retrySchedule"], json!([]));
    assert!(v["timeoutSeconds"].is_null(), "emptied: the server's");
}

#[tokio::test]
async fn a_resend_that_fails_ends_there_whatever_the_endpoint_s_schedule() {
    let app = TestApp::spawn().await;
    let failing = TestReceiver::start().await;
    failing.set_default(Reply::status(500));
    let a = app.create_app("shop").await;
    // Six attempts: more than the server's three.
    let (ep, _) = app
        .create_endpoint(
            &a,
            json!({ "url": failing.url, "retrySchedule": [0, 0, 0, 0, 0] }),
        )
        .await;
    let m = app.send(&a, "order.created", json!({})).await;
    failing.wait_for_count(6, Duration::from_secs(10)).await;
    app.settled().await;
    app.post(
        &format!("/app/{a}/msg/{m}/endpoint/{ep}/resend"),
        json!({}),
        202,
    )
    .await;
    failing.wait_for_count(7, Duration::from_secs(10)).await;
    let ended = wait_for(Duration::from_secs(10), || async {
        let d = app.get(&format!("/app/{a}/msg/{m}/endpoint"), 200).await;
        d["data"][0]["status"] == 2 && d["data"][0]["nextAttempt"].is_null()
    })
    .await;
    assert!(ended, "the failed resend is the last attempt");
    app.settled().await;
    assert_eq!(
        failing.count(),
        7,
        "one attempt for the resend, no retry after it"
    );
}
