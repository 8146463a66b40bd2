//! Operational webhooks: hookbox tells the operator's endpoints about endpoints and failures.

use crate::support::receiver::{Received, Reply};
use crate::support::{signature_valid, wait_for, TestApp, TestReceiver};
use serde_json::{json, Value};
use std::time::Duration;

/// Registers an operational endpoint at a new receiver; returns it and its secret.
pub(crate) async fn operator(app: &TestApp) -> (TestReceiver, String) {
    let rx = TestReceiver::start().await;
    let ep = app
        .post(
            "/operational-webhook/endpoint",
            json!({ "url": format!("{}/ops", rx.url) }),
            201,
        )
        .await;
    let id = ep["id"].as_str().unwrap();
    let secret = app
        .get(&format!("/operational-webhook/endpoint/{id}/secret"), 200)
        .await;
    (rx, secret["key"].as_str().unwrap().to_owned())
}

/// The event types received so far, after checking each one's signature.
fn events(rx: &TestReceiver, secret: &str) -> Vec<Value> {
    rx.received()
        .iter()
        .map(|r: &Received| {
            let (id, ts, sig) = r.signed();
            assert!(
                signature_valid(secret, id, ts, &r.body, sig),
                "bad signature on {:?}",
                r.json()
            );
            r.json()
        })
        .collect()
}

async fn wait_for_types(rx: &TestReceiver, secret: &str, want: &[&str]) -> Vec<Value> {
    let ok = wait_for(Duration::from_secs(10), || async {
        let got: Vec<String> = events(rx, secret)
            .iter()
            .map(|e| e["type"].as_str().unwrap().to_owned())
            .collect();
        want.iter().all(|w| got.iter().any(|g| g == w))
    })
    .await;
    let got = events(rx, secret);
    assert!(ok, "wanted {want:?}, got {got:#?}");
    got
}

#[tokio::test]
async fn operators_get_signed_endpoint_lifecycle_events() {
    let app = TestApp::spawn().await;
    let (ops, secret) = operator(&app).await;
    let a = app.create_app("customer").await;
    let (ep, _) = app
        .create_endpoint(
            &a,
            json!({ "url": "http://127.0.0.1:9/hook", "uid": "main" }),
        )
        .await;
    app.call(
        "PATCH",
        &format!("/app/{a}/endpoint/{ep}"),
        Some(json!({ "description": "x" })),
        200,
    )
    .await;
    app.call("DELETE", &format!("/app/{a}/endpoint/{ep}"), None, 204)
        .await;
    let got = wait_for_types(
        &ops,
        &secret,
        &["endpoint.created", "endpoint.updated", "endpoint.deleted"],
    )
    .await;
    for e in &got {
        assert_eq!(e["data"]["appId"], a.as_str(), "{e}");
        assert_eq!(e["data"]["endpointId"], ep.as_str(), "{e}");
        assert_eq!(e["data"]["endpointUid"], "main", "{e}");
        assert!(e["timestamp"].as_str().unwrap().ends_with('Z'));
    }
    // The operational endpoints' own application is not one of the user's.
    let apps = app.get("/app", 200).await;
    assert_eq!(apps["data"].as_array().unwrap().len(), 1, "{apps}");
    app.post("/app", json!({ "name": "x", "uid": "_hookbox_mine" }), 422)
        .await;
    assert_eq!(
        app.get("/operational-webhook/endpoint", 200).await["data"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn operators_hear_when_a_message_is_failing_exhausted_or_recovered() {
    let app = TestApp::spawn_with(|c| {
        c.delivery.retry_schedule = [0, 100, 100, 100, 100].map(Duration::from_millis).to_vec();
    })
    .await;
    let (ops, secret) = operator(&app).await;
    let dead = TestReceiver::start().await;
    dead.set_default(Reply::status(500));
    let flaky = TestReceiver::start().await;
    flaky.script((0..4).map(|_| Reply::status(500)));
    let a = app.create_app("customer").await;
    let (dead_ep, _) = app.create_endpoint(&a, json!({ "url": dead.url })).await;
    let (flaky_ep, _) = app.create_endpoint(&a, json!({ "url": flaky.url })).await;
    let m = app.send(&a, "x.y", json!({})).await;
    let got = wait_for_types(
        &ops,
        &secret,
        &[
            "message.attempt.failing",
            "message.attempt.exhausted",
            "message.attempt.recovered",
        ],
    )
    .await;
    let of = |t: &str, ep: &str| {
        got.iter()
            .filter(|e| e["type"] == t && e["data"]["endpointId"] == ep)
            .count()
    };
    assert_eq!(of("message.attempt.failing", &dead_ep), 1);
    assert_eq!(of("message.attempt.exhausted", &dead_ep), 1);
    assert_eq!(of("message.attempt.failing", &flaky_ep), 1);
    assert_eq!(of("message.attempt.recovered", &flaky_ep), 1);
    assert_eq!(of("message.attempt.exhausted", &flaky_ep), 0);
    let exhausted = got
        .iter()
        .find(|e| e["type"] == "message.attempt.exhausted")
        .unwrap();
    assert_eq!(exhausted["data"]["msgId"], m.as_str());
    assert_eq!(exhausted["data"]["lastAttempt"]["responseStatusCode"], 500);
}

#[tokio::test]
async fn an_endpoint_failing_for_the_configured_time_is_disabled_with_its_reason() {
    let app = TestApp::spawn_with(|c| {
        c.delivery.retry_schedule = [0, 200, 200, 200, 200, 200, 200, 200]
            .map(Duration::from_millis)
            .to_vec();
        c.delivery.auto_disable_after = Duration::from_millis(600);
        c.retention.sweep_interval = Duration::from_millis(100);
    })
    .await;
    let (ops, secret) = operator(&app).await;
    let dead = TestReceiver::start().await;
    dead.set_default(Reply::status(502));
    let a = app.create_app("customer").await;
    let (ep, _) = app.create_endpoint(&a, json!({ "url": dead.url })).await;
    app.send(&a, "x.y", json!({})).await;
    let got = wait_for_types(&ops, &secret, &["endpoint.disabled"]).await;
    let e = app.get(&format!("/app/{a}/endpoint/{ep}"), 200).await;
    assert_eq!(e["disabled"], true);
    assert!(
        e["disabledReason"]
            .as_str()
            .unwrap()
            .contains("every delivery failed"),
        "{e}"
    );
    let disabled = got
        .iter()
        .find(|e| e["type"] == "endpoint.disabled")
        .unwrap();
    assert_eq!(disabled["data"]["endpointId"], ep.as_str());
    // A disabled endpoint gets nothing more.
    let before = dead.count();
    app.send(&a, "x.y", json!({})).await;
    app.assert_nothing_due_within(Duration::from_secs(5)).await;
    assert_eq!(dead.count(), before);
}

#[tokio::test]
async fn a_healthy_endpoint_is_never_auto_disabled() {
    // The sweep measures failure on the test clock: nothing is disabled until it is moved.
    let app = TestApp::spawn_with(|c| {
        c.delivery.auto_disable_after = Duration::from_secs(3600);
        c.retention.sweep_interval = Duration::from_millis(100);
    })
    .await;
    let rx = TestReceiver::start().await;
    rx.script([Reply::status(500)]);
    // A witness that keeps failing: once it is disabled, the sweep has run past the period.
    let dead = TestReceiver::start().await;
    dead.set_default(Reply::status(500));
    let a = app.create_app("customer").await;
    let (ep, _) = app.create_endpoint(&a, json!({ "url": rx.url })).await;
    let (witness, _) = app.create_endpoint(&a, json!({ "url": dead.url })).await;
    app.send(&a, "x.y", json!({})).await;
    rx.wait_for_count(2, Duration::from_secs(5)).await;
    app.settled().await;
    // Delivered again, it is no longer failing.
    let health = app
        .get(&format!("/app/{a}/endpoint/{ep}/health"), 200)
        .await;
    assert!(health["failingSince"].is_null(), "{health}");

    app.clock.advance(Duration::from_secs(2 * 3600));
    let swept = wait_for(Duration::from_secs(10), || async {
        app.get(&format!("/app/{a}/endpoint/{witness}"), 200).await["disabled"] == true
    })
    .await;
    assert!(swept, "the failing witness was not disabled");
    assert_eq!(
        app.get(&format!("/app/{a}/endpoint/{ep}"), 200).await["disabled"],
        false
    );
}

#[tokio::test]
async fn operational_endpoints_are_managed_in_the_console_and_filter_their_events() {
    use crate::support::console::Console;
    let app = TestApp::spawn().await;
    let mut c = Console::first_admin(&app).await;
    let r = c.get("/admin/operational").await;
    assert_eq!(r.status, 303);
    let webhooks = r.location.unwrap();
    assert!(webhooks.ends_with("/webhooks"), "{webhooks}");
    let ops_app = webhooks.split('/').nth(3).unwrap().to_owned();
    let page = c.page(&webhooks).await;
    assert!(page.contains("Operational webhooks") && !page.contains("Customer portal"));
    // The form offers the operational events, not the (empty) event catalog.
    let form = c.page(&format!("{webhooks}/new")).await;
    for (name, _) in hookbox::operational::EVENTS {
        assert!(form.contains(&format!("value=\"{name}\"")), "{name}");
    }
    let rx = TestReceiver::start().await;
    let r = c
        .submit(
            &format!("{webhooks}/new"),
            &[
                ("url", &format!("{}/ops", rx.url)),
                ("events", "endpoint.created"),
                ("events", "endpoint.deleted"),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let listed = app.get("/operational-webhook/endpoint", 200).await;
    let ops = &listed["data"][0];
    assert_eq!(
        ops["filterTypes"],
        json!(["endpoint.created", "endpoint.deleted"])
    );
    // Subscribed events arrive; the others (endpoint.updated) do not.
    let a = app.create_app("Acme").await;
    let (ep, _) = app
        .create_endpoint(&a, json!({ "url": "http://127.0.0.1:9/x" }))
        .await;
    app.call(
        "PATCH",
        &format!("/app/{a}/endpoint/{ep}"),
        Some(json!({ "description": "changed" })),
        200,
    )
    .await;
    app.call("DELETE", &format!("/app/{a}/endpoint/{ep}"), None, 204)
        .await;
    let got = rx.wait_for_count(2, Duration::from_secs(5)).await;
    app.assert_nothing_due_within(Duration::from_secs(5)).await;
    let types: Vec<Value> = rx
        .received()
        .iter()
        .map(|r| r.json()["type"].clone())
        .collect();
    assert_eq!(
        types,
        vec![json!("endpoint.created"), json!("endpoint.deleted")],
        "{got:?}"
    );
    // An unknown operational event is refused; hookbox's application is not deleted or renamed.
    let r = c
        .submit(
            &format!("{webhooks}/new"),
            &[("url", "http://127.0.0.1:9/y"), ("events", "invoice.paid")],
        )
        .await;
    assert_eq!(r.status, 422);
    assert!(
        r.body.contains("unknown event types: invoice.paid"),
        "{}",
        r.body
    );
    assert_eq!(
        c.get(&format!("/admin/apps/{ops_app}/delete")).await.status,
        404
    );
    assert_eq!(
        c.get(&format!("/admin/apps/{ops_app}/settings"))
            .await
            .status,
        404
    );
    let r = c
        .submit(&format!("/admin/apps/{ops_app}/delete"), &[])
        .await;
    assert_eq!(r.status, 404);
}

#[tokio::test]
async fn disabling_in_the_console_or_the_api_announces_it_and_skips_what_was_pending_as_a_410_does()
{
    let app = TestApp::spawn().await;
    let (ops, secret) = operator(&app).await;
    let a = app.create_app("customer").await;
    let (by_console, _) = app
        .create_endpoint(&a, json!({ "url": "http://127.0.0.1:9/one" }))
        .await;
    let (by_api, _) = app
        .create_endpoint(&a, json!({ "url": "http://127.0.0.1:9/two" }))
        .await;
    // Pending for both, due tomorrow.
    let tomorrow = (chrono::Utc::now() + chrono::Duration::days(1)).to_rfc3339();
    let msg = app
        .post(
            &format!("/app/{a}/msg"),
            json!({ "eventType": "any.thing", "payload": {}, "deliverAt": tomorrow }),
            202,
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let mut admin = crate::support::console::Console::first_admin(&app).await;
    let r = admin
        .submit(
            &format!("/admin/apps/{a}/endpoints/{by_console}/disable"),
            &[],
        )
        .await;
    assert_eq!(r.status, 303, "{r:?}");
    app.call(
        "PATCH",
        &format!("/app/{a}/endpoint/{by_api}"),
        Some(json!({ "disabled": true })),
        200,
    )
    .await;

    let ok = wait_for(Duration::from_secs(10), || async {
        events(&ops, &secret)
            .iter()
            .filter(|e| e["type"] == "endpoint.disabled")
            .count()
            == 2
    })
    .await;
    let got = events(&ops, &secret);
    assert!(ok, "{got:#?}");
    for (ep, reason) in [
        (&by_console, "disabled in the console by admin"),
        (&by_api, "disabled through the API"),
    ] {
        let e = got
            .iter()
            .find(|e| e["type"] == "endpoint.disabled" && e["data"]["endpointId"] == **ep)
            .unwrap_or_else(|| panic!("no endpoint.disabled for {ep}: {got:#?}"));
        assert_eq!(e["data"]["reason"], reason, "{e}");
    }
    // What each had pending is skipped (canceled), so Enable can offer to replay it.
    let dests = app.get(&format!("/app/{a}/msg/{msg}/endpoint"), 200).await;
    let statuses: Vec<_> = dests["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["status"].clone())
        .collect();
    assert_eq!(statuses, vec![json!(4), json!(4)], "{dests}");
}
