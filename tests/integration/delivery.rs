use crate::support::receiver::Reply;
use crate::support::{signature_valid, wait_for, TestApp, TestReceiver};
use serde_json::json;
use std::time::{Duration, Instant};

/// An app with one event type and one endpoint at the receiver: (app, endpoint, secret).
async fn setup(app: &TestApp, rx: &TestReceiver) -> (String, String, String) {
    let a = app.create_app("shop").await;
    app.create_event_type("order.created").await;
    let (ep, secret) = app
        .create_endpoint(&a, json!({ "url": format!("{}/hook", rx.url) }))
        .await;
    (a, ep, secret)
}

async fn delivery_status(app: &TestApp, a: &str, msg: &str) -> serde_json::Value {
    app.get(&format!("/app/{a}/msg/{msg}/endpoint"), 200).await["data"][0].clone()
}

#[tokio::test]
async fn delivery_is_signed_and_carries_the_exact_payload_bytes() {
    let app = TestApp::spawn().await;
    let rx = TestReceiver::start().await;
    let (a, _, secret) = setup(&app, &rx).await;
    let raw = br#"{"eventType": "order.created", "payload": {"x": 1.50,  "big": 123456789012345678901234567890, "s": "caf\u00e9"}}"#;
    let (status, body) = app
        .raw("POST", &format!("/app/{a}/msg"), raw.to_vec())
        .await;
    assert_eq!(status, 202, "{body}");
    let msg: serde_json::Value = serde_json::from_str(&body).unwrap();
    let got = rx.wait_for_count(1, Duration::from_secs(5)).await;
    let r = &got[0];
    assert_eq!(
        r.body,
        br#"{"x": 1.50,  "big": 123456789012345678901234567890, "s": "caf\u00e9"}"#
    );
    assert_eq!(r.header("webhook-id"), msg["id"].as_str());
    assert_eq!(r.header("content-type"), Some("application/json"));
    let ts = r.header("webhook-timestamp").unwrap();
    let age = chrono::Utc::now().timestamp() - ts.parse::<i64>().unwrap();
    assert!((0..=5).contains(&age), "timestamp {ts} is {age}s old");
    assert!(signature_valid(
        &secret,
        msg["id"].as_str().unwrap(),
        ts,
        &r.body,
        r.header("webhook-signature").unwrap()
    ));
    assert!(!signature_valid(
        &secret,
        "msg_other",
        ts,
        &r.body,
        r.header("webhook-signature").unwrap()
    ));
    // The response echoes the payload without losing precision.
    assert!(body.contains("123456789012345678901234567890"), "{body}");
    let attempts = app
        .wait_attempts(&a, msg["id"].as_str().unwrap(), 1, Duration::from_secs(5))
        .await;
    assert_eq!(attempts[0]["status"], 0);
    assert_eq!(attempts[0]["responseStatusCode"], 200);
    assert_eq!(attempts[0]["response"], "ok");
}

#[tokio::test]
async fn failed_delivery_is_retried_on_schedule_and_then_marked_failed() {
    let app = TestApp::spawn().await;
    let rx = TestReceiver::start().await;
    rx.set_default(Reply::status(500).body("boom"));
    let (a, _, _) = setup(&app, &rx).await;
    let msg = app.send(&a, "order.created", json!({ "n": 1 })).await;
    let got = rx.wait_for_count(3, Duration::from_secs(10)).await;
    // Schedule in tests: 0, 300 ms, 600 ms.
    let gap1 = got[1].at - got[0].at;
    let gap2 = got[2].at - got[1].at;
    assert!(
        gap1 >= Duration::from_millis(280),
        "first retry after {gap1:?}"
    );
    assert!(
        gap2 >= Duration::from_millis(580),
        "second retry after {gap2:?}"
    );
    let attempts = app.wait_attempts(&a, &msg, 3, Duration::from_secs(5)).await;
    assert!(attempts
        .iter()
        .all(|x| x["status"] == 2 && x["responseStatusCode"] == 500 && x["response"] == "boom"));
    assert!(
        wait_for(Duration::from_secs(5), || async {
            delivery_status(&app, &a, &msg).await["statusText"] == "fail"
        })
        .await
    );
    // No fourth attempt: the schedule has three.
    app.assert_nothing_due_within(Duration::from_secs(5)).await;
    assert_eq!(rx.count(), 3);
}

#[tokio::test]
async fn a_retry_that_succeeds_ends_the_delivery_as_success() {
    let app = TestApp::spawn().await;
    let rx = TestReceiver::start().await;
    rx.script([Reply::status(503)]);
    let (a, _, _) = setup(&app, &rx).await;
    let msg = app.send(&a, "order.created", json!({})).await;
    let got = rx.wait_for_count(2, Duration::from_secs(5)).await;
    assert_eq!(got[0].header("webhook-id"), got[1].header("webhook-id"));
    assert!(
        wait_for(Duration::from_secs(5), || async {
            delivery_status(&app, &a, &msg).await["statusText"] == "success"
        })
        .await
    );
}

#[tokio::test]
async fn retry_after_header_postpones_the_next_attempt() {
    let app = TestApp::spawn().await;
    let rx = TestReceiver::start().await;
    rx.script([Reply::status(429).header("Retry-After", "2")]);
    let (a, _, _) = setup(&app, &rx).await;
    app.send(&a, "order.created", json!({})).await;
    let got = rx.wait_for_count(2, Duration::from_secs(6)).await;
    let gap = got[1].at - got[0].at;
    assert!(
        gap >= Duration::from_millis(1900),
        "retried after {gap:?} despite Retry-After: 2"
    );
}

#[tokio::test]
async fn gone_410_disables_the_endpoint_and_later_messages_are_skipped() {
    let app = TestApp::spawn().await;
    let rx = TestReceiver::start().await;
    rx.set_default(Reply::status(410));
    let (a, ep, _) = setup(&app, &rx).await;
    app.send(&a, "order.created", json!({})).await;
    rx.wait_for_count(1, Duration::from_secs(5)).await;
    let ok = wait_for(Duration::from_secs(5), || async {
        app.get(&format!("/app/{a}/endpoint/{ep}"), 200).await["disabled"] == true
    })
    .await;
    assert!(ok, "endpoint was not disabled after 410");
    let e = app.get(&format!("/app/{a}/endpoint/{ep}"), 200).await;
    assert!(e["disabledReason"].as_str().unwrap().contains("410"), "{e}");
    let later = app.send(&a, "order.created", json!({})).await;
    app.assert_nothing_due_within(Duration::from_secs(5)).await;
    assert_eq!(rx.count(), 1, "a disabled endpoint got a request");
    assert_eq!(app.attempts(&a, &later).await.len(), 0);
    assert_eq!(
        delivery_status(&app, &a, &later).await["statusText"],
        "canceled"
    );
}

#[tokio::test]
async fn redirects_are_failures_and_are_not_followed() {
    let app = TestApp::spawn().await;
    let rx = TestReceiver::start().await;
    rx.set_default(Reply::status(302).header("Location", "/elsewhere"));
    let (a, _, _) = setup(&app, &rx).await;
    let msg = app.send(&a, "order.created", json!({})).await;
    let attempts = app.wait_attempts(&a, &msg, 1, Duration::from_secs(5)).await;
    assert_eq!(attempts[0]["status"], 2);
    assert_eq!(attempts[0]["responseStatusCode"], 302);
    assert!(
        rx.received().iter().all(|r| r.path == "/hook"),
        "a redirect was followed"
    );
}

#[tokio::test]
async fn slow_endpoint_times_out_and_the_attempt_says_so() {
    let app =
        TestApp::spawn_with(|c| c.delivery.request_timeout = Duration::from_millis(400)).await;
    let rx = TestReceiver::start().await;
    rx.script([Reply::status(200).delay(Duration::from_secs(3))]);
    let (a, _, _) = setup(&app, &rx).await;
    let msg = app.send(&a, "order.created", json!({})).await;
    let attempts = app.wait_attempts(&a, &msg, 1, Duration::from_secs(5)).await;
    assert_eq!(attempts[0]["status"], 2);
    assert_eq!(attempts[0]["responseStatusCode"], 0);
    assert!(
        attempts[0]["error"].as_str().unwrap().contains("timed out"),
        "{}",
        attempts[0]
    );
    assert!(attempts[0]["responseDurationMs"].as_i64().unwrap() >= 350);
    // The retry (no delay scripted) succeeds.
    let ok = wait_for(Duration::from_secs(5), || async {
        delivery_status(&app, &a, &msg).await["statusText"] == "success"
    })
    .await;
    assert!(ok);
}

#[tokio::test]
async fn connection_refused_is_recorded_as_a_failed_attempt() {
    let app = TestApp::spawn().await;
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let a = app.create_app("x").await;
    app.create_endpoint(
        &a,
        json!({ "url": format!("http://127.0.0.1:{port}/hook") }),
    )
    .await;
    let msg = app.send(&a, "any.thing", json!({})).await;
    let attempts = app.wait_attempts(&a, &msg, 1, Duration::from_secs(5)).await;
    assert_eq!(attempts[0]["responseStatusCode"], 0);
    assert!(
        attempts[0]["error"]
            .as_str()
            .unwrap()
            .contains("connection"),
        "{}",
        attempts[0]
    );
}

#[tokio::test]
async fn private_destinations_are_refused_unless_allowed() {
    let app = TestApp::spawn_with(|c| c.allow_destinations.clear()).await;
    let rx = TestReceiver::start().await;
    let a = app.create_app("x").await;
    let port = rx.url.rsplit(':').next().unwrap().to_owned();
    app.create_endpoint(&a, json!({ "url": format!("http://127.0.0.1:{port}/ip") }))
        .await;
    app.create_endpoint(
        &a,
        json!({ "url": format!("http://localhost:{port}/name") }),
    )
    .await;
    let msg = app.send(&a, "any.thing", json!({})).await;
    let attempts = app.wait_attempts(&a, &msg, 2, Duration::from_secs(5)).await;
    for at in &attempts {
        let err = at["error"].as_str().unwrap();
        // What a name resolves to is the server log's business, not the caller's.
        assert_eq!(
            err, "destination refused: private or reserved address",
            "{at}"
        );
    }
    assert_eq!(rx.count(), 0, "a refused destination was reached");
}

#[tokio::test]
async fn during_rotation_grace_old_and_new_keys_both_sign() {
    let app = TestApp::spawn().await;
    let rx = TestReceiver::start().await;
    let (a, ep, old) = setup(&app, &rx).await;
    let new = app
        .post(
            &format!("/app/{a}/endpoint/{ep}/secret/rotate"),
            json!({ "gracePeriodSeconds": 60 }),
            200,
        )
        .await;
    let new = new["key"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    assert_eq!(
        app.get(&format!("/app/{a}/endpoint/{ep}/secret"), 200)
            .await["key"],
        new.as_str()
    );
    app.send(&a, "order.created", json!({})).await;
    let r = &rx.wait_for_count(1, Duration::from_secs(5)).await[0];
    let (id, ts, sig) = r.signed();
    assert_eq!(sig.split(' ').count(), 2, "{sig}");
    assert!(signature_valid(&old, id, ts, &r.body, sig));
    assert!(signature_valid(&new, id, ts, &r.body, sig));

    // A rotation with no grace stops the previous key at once.
    let newer = app
        .post(
            &format!("/app/{a}/endpoint/{ep}/secret/rotate"),
            json!({ "gracePeriodSeconds": 0 }),
            200,
        )
        .await;
    let newer = newer["key"].as_str().unwrap().to_owned();
    app.send(&a, "order.created", json!({})).await;
    let r = &rx.wait_for_count(2, Duration::from_secs(5)).await[1];
    let (id, ts, sig) = r.signed();
    assert!(signature_valid(&newer, id, ts, &r.body, sig));
    assert!(
        !signature_valid(&new, id, ts, &r.body, sig),
        "the replaced key still signs"
    );
    // The oldest key, still in its grace period, keeps signing.
    assert!(signature_valid(&old, id, ts, &r.body, sig));
}

/// Each key a rotation replaced signs every request while its grace lasts: rotations are
/// refused (as Svix refuses them) once 5 replaced keys still sign, so the signature header
/// cannot grow past what receivers' servers take. A rotation with no grace is always taken.
#[tokio::test]
async fn a_sixth_rotation_while_five_replaced_keys_still_sign_is_400_limit_reached() {
    let app = TestApp::spawn().await;
    let rx = TestReceiver::start().await;
    let (a, ep, _) = setup(&app, &rx).await;
    let rotate = |grace: u64, expect: u16| {
        let (app, path) = (&app, format!("/app/{a}/endpoint/{ep}/secret/rotate"));
        async move {
            app.post(&path, json!({ "gracePeriodSeconds": grace }), expect)
                .await
        }
    };
    for _ in 0..5 {
        rotate(3600, 200).await;
    }
    let current = app
        .get(&format!("/app/{a}/endpoint/{ep}/secret"), 200)
        .await["key"]
        .clone();
    let err = rotate(3600, 400).await;
    assert_eq!(err["code"], "limit_reached", "{err}");
    assert!(
        err["detail"].as_str().unwrap().contains("stops signing at"),
        "{err}"
    );
    assert_eq!(
        app.get(&format!("/app/{a}/endpoint/{ep}/secret"), 200)
            .await["key"],
        current,
        "refused: nothing rotated"
    );
    app.send(&a, "order.created", json!({})).await;
    let r = &rx.wait_for_count(1, Duration::from_secs(5)).await[0];
    assert_eq!(
        r.signed().2.split(' ').count(),
        6,
        "the current key and five replaced"
    );
    // With no grace the replaced key stops at once: taken, and nothing more signs.
    let newest = rotate(0, 200).await["key"].as_str().unwrap().to_owned();
    app.send(&a, "order.created", json!({})).await;
    let r = &rx.wait_for_count(2, Duration::from_secs(5)).await[1];
    let (id, ts, sig) = r.signed();
    assert_eq!(sig.split(' ').count(), 6, "{sig}");
    assert!(signature_valid(&newest, id, ts, &r.body, sig));
}

#[tokio::test]
async fn supplied_secret_is_used_and_bad_secret_is_422() {
    let app = TestApp::spawn().await;
    let rx = TestReceiver::start().await;
    let a = app.create_app("x").await;
    let secret = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
    let (_, got) = app
        .create_endpoint(&a, json!({ "url": rx.url, "secret": secret }))
        .await;
    assert_eq!(got, secret);
    let v = app
        .post(
            &format!("/app/{a}/endpoint"),
            json!({ "url": rx.url, "secret": "whsec_nope" }),
            422,
        )
        .await;
    assert_eq!(v["detail"][0]["loc"], json!(["body", "secret"]));
}

#[tokio::test]
async fn event_type_filters_and_channels_route_messages() {
    let app = TestApp::spawn().await;
    let rx = TestReceiver::start().await;
    let a = app.create_app("x").await;
    app.create_event_type("a.one").await;
    app.create_event_type("a.two").await;
    app.create_endpoint(
        &a,
        json!({ "url": format!("{}/one", rx.url), "filterTypes": ["a.one"] }),
    )
    .await;
    app.create_endpoint(&a, json!({ "url": format!("{}/all", rx.url) }))
        .await;
    app.create_endpoint(
        &a,
        json!({ "url": format!("{}/eu", rx.url), "channels": ["eu"] }),
    )
    .await;
    app.send(&a, "a.one", json!({})).await;
    app.send(&a, "a.two", json!({})).await;
    app.post(
        &format!("/app/{a}/msg"),
        json!({ "eventType": "a.two", "payload": {}, "channels": ["eu"] }),
        202,
    )
    .await;
    rx.wait_for_count(5, Duration::from_secs(5)).await;
    app.assert_nothing_due_within(Duration::from_secs(5)).await;
    let mut paths: Vec<String> = rx.received().iter().map(|r| r.path.clone()).collect();
    paths.sort();
    assert_eq!(paths, ["/all", "/all", "/all", "/eu", "/one"]);
    // Unknown event types cannot be subscribed to.
    let v = app
        .post(
            &format!("/app/{a}/endpoint"),
            json!({ "url": rx.url, "filterTypes": ["nope"] }),
            422,
        )
        .await;
    assert!(v["detail"][0]["msg"].as_str().unwrap().contains("nope"));
}

#[tokio::test]
async fn custom_headers_are_sent_and_reserved_ones_refused() {
    let app = TestApp::spawn().await;
    let rx = TestReceiver::start().await;
    let a = app.create_app("x").await;
    let (ep, _) = app
        .create_endpoint(
            &a,
            json!({ "url": rx.url, "headers": { "X-Tenant": "t1" } }),
        )
        .await;
    app.call(
        "PATCH",
        &format!("/app/{a}/endpoint/{ep}/headers"),
        Some(json!({ "headers": { "X-Extra": "e" } })),
        204,
    )
    .await;
    let h = app
        .get(&format!("/app/{a}/endpoint/{ep}/headers"), 200)
        .await;
    assert_eq!(h["headers"], json!({ "X-Extra": "e", "X-Tenant": "t1" }));
    app.send(&a, "x.y", json!({})).await;
    let r = &rx.wait_for_count(1, Duration::from_secs(5)).await[0];
    assert_eq!(r.header("x-tenant"), Some("t1"));
    assert_eq!(r.header("x-extra"), Some("e"));
    let v = app
        .call(
            "PUT",
            &format!("/app/{a}/endpoint/{ep}/headers"),
            Some(json!({ "headers": { "webhook-id": "x" } })),
            422,
        )
        .await;
    assert!(v["detail"][0]["msg"]
        .as_str()
        .unwrap()
        .contains("webhook-id"));
}

#[tokio::test]
async fn resend_makes_one_more_manual_attempt_with_the_same_webhook_id() {
    let app = TestApp::spawn().await;
    let rx = TestReceiver::start().await;
    let (a, ep, _) = setup(&app, &rx).await;
    let msg = app.send(&a, "order.created", json!({})).await;
    app.wait_attempts(&a, &msg, 1, Duration::from_secs(5)).await;
    let v = app
        .post(
            &format!("/app/{a}/msg/{msg}/endpoint/{ep}/resend"),
            json!({}),
            202,
        )
        .await;
    assert_eq!(v, json!({}));
    let attempts = app.wait_attempts(&a, &msg, 2, Duration::from_secs(5)).await;
    assert_eq!(attempts[1]["triggerType"], 1);
    let got = rx.received();
    assert_eq!(got[0].header("webhook-id"), got[1].header("webhook-id"));
    // A resend to a failing receiver is one attempt, not a new schedule.
    rx.set_default(Reply::status(500));
    app.post(
        &format!("/app/{a}/msg/{msg}/endpoint/{ep}/resend"),
        json!({}),
        202,
    )
    .await;
    app.wait_attempts(&a, &msg, 3, Duration::from_secs(5)).await;
    app.assert_nothing_due_within(Duration::from_secs(5)).await;
    assert_eq!(app.attempts(&a, &msg).await.len(), 3);
}

/// A resend sends again what was sent: never a message to an endpoint it was not for (its
/// event types or channels leave it out, or the endpoint came after it), which would hand the
/// endpoint content it is not meant to see.
#[tokio::test]
async fn resend_of_a_message_the_endpoint_was_never_for_is_404_and_sends_nothing() {
    let app = TestApp::spawn().await;
    let rx = TestReceiver::start().await;
    let a = app.create_app("shop").await;
    app.create_event_type("invoice.paid").await;
    let (typed, _) = app
        .create_endpoint(
            &a,
            json!({ "url": format!("{}/typed", rx.url), "filterTypes": ["invoice.paid"] }),
        )
        .await;
    let (channeled, _) = app
        .create_endpoint(
            &a,
            json!({ "url": format!("{}/eu", rx.url), "channels": ["eu"] }),
        )
        .await;
    let msg = app
        .send(&a, "user.created", json!({ "private": "user data" }))
        .await;
    let (later, _) = app
        .create_endpoint(&a, json!({ "url": format!("{}/later", rx.url) }))
        .await;
    for ep in [&typed, &channeled, &later] {
        let (status, body) = app
            .raw(
                "POST",
                &format!("/app/{a}/msg/{msg}/endpoint/{ep}/resend"),
                b"{}".to_vec(),
            )
            .await;
        assert_eq!(status, 404, "{ep}: {body}");
        assert!(body.contains("not_found"), "{body}");
    }
    app.assert_nothing_due_within(Duration::from_secs(2)).await;
    assert_eq!(rx.count(), 0);
    let listed = app.get(&format!("/app/{a}/msg/{msg}/endpoint"), 200).await;
    assert_eq!(listed["data"], json!([]), "{listed}");
}

#[tokio::test]
async fn recover_resends_failed_deliveries() {
    let app = TestApp::spawn_with(|c| c.delivery.retry_schedule = vec![Duration::ZERO]).await;
    let rx = TestReceiver::start().await;
    rx.set_default(Reply::status(500));
    let (a, ep, _) = setup(&app, &rx).await;
    let since = chrono::Utc::now().to_rfc3339();
    let m1 = app.send(&a, "order.created", json!({ "n": 1 })).await;
    let m2 = app.send(&a, "order.created", json!({ "n": 2 })).await;
    for m in [&m1, &m2] {
        assert!(
            wait_for(Duration::from_secs(5), || async {
                delivery_status(&app, &a, m).await["statusText"] == "fail"
            })
            .await
        );
    }
    rx.set_default(Reply::status(200));
    // A disabled endpoint is sent nothing: it is refused, and nothing changes.
    let path = format!("/app/{a}/endpoint/{ep}");
    app.call("PATCH", &path, Some(json!({ "disabled": true })), 200)
        .await;
    for action in ["recover", "replay-missing", "bulk-replay"] {
        let e = app
            .post(&format!("{path}/{action}"), json!({ "since": since }), 409)
            .await;
        assert!(e["detail"].as_str().unwrap().contains("disabled"), "{e}");
    }
    assert_eq!(delivery_status(&app, &a, &m1).await["statusText"], "fail");
    app.call("PATCH", &path, Some(json!({ "disabled": false })), 200)
        .await;
    let v = app
        .post(
            &format!("/app/{a}/endpoint/{ep}/recover"),
            json!({ "since": since }),
            202,
        )
        .await;
    assert_eq!(v["task"], "endpoint.recover");
    for m in [&m1, &m2] {
        assert!(
            wait_for(Duration::from_secs(5), || async {
                delivery_status(&app, &a, m).await["statusText"] == "success"
            })
            .await
        );
    }
    let stats = app.get(&format!("/app/{a}/endpoint/{ep}/stats"), 200).await;
    assert_eq!(
        stats,
        json!({ "success": 2, "pending": 0, "sending": 0, "fail": 0, "canceled": 0, "filtered": 0 })
    );
}

#[tokio::test]
async fn enabling_an_endpoint_can_replay_what_it_missed_while_disabled() {
    let app = TestApp::spawn().await;
    let rx = TestReceiver::start().await;
    let (a, ep, _) = setup(&app, &rx).await;
    let since = (chrono::Utc::now() - chrono::Duration::seconds(1)).to_rfc3339();
    app.call(
        "PATCH",
        &format!("/app/{a}/endpoint/{ep}"),
        Some(json!({ "disabled": true })),
        200,
    )
    .await;
    let m1 = app.send(&a, "order.created", json!({ "n": 1 })).await;
    let m2 = app.send(&a, "order.created", json!({ "n": 2 })).await;
    app.assert_nothing_due_within(Duration::from_secs(5)).await;
    assert_eq!(rx.count(), 0);
    app.call(
        "PATCH",
        &format!("/app/{a}/endpoint/{ep}"),
        Some(json!({ "disabled": false })),
        200,
    )
    .await;
    let v = app
        .post(
            &format!("/app/{a}/endpoint/{ep}/replay-missing"),
            json!({ "since": since }),
            202,
        )
        .await;
    assert_eq!(v["count"], 2);
    let got = rx.wait_for_count(2, Duration::from_secs(5)).await;
    let mut ids: Vec<&str> = got
        .iter()
        .map(|r| r.header("webhook-id").unwrap())
        .collect();
    ids.sort_unstable();
    let mut want = [m1.as_str(), m2.as_str()];
    want.sort_unstable();
    assert_eq!(ids, want);
    // Replaying again sends nothing new: both were delivered.
    let v = app
        .post(
            &format!("/app/{a}/endpoint/{ep}/replay-missing"),
            json!({ "since": since }),
            202,
        )
        .await;
    assert_eq!(v["count"], 0);
}

#[tokio::test]
async fn idempotency_key_and_event_id_never_create_twice() {
    let app = TestApp::spawn().await;
    let rx = TestReceiver::start().await;
    let (a, _, _) = setup(&app, &rx).await;
    let send = |key: &'static str| {
        app.client
            .post(format!("{}/app/{a}/msg", app.base))
            .bearer_auth(&app.token)
            .header("idempotency-key", key)
            .json(&json!({ "eventType": "order.created", "payload": { "k": key } }))
            .send()
    };
    let r1: serde_json::Value = send("k1").await.unwrap().json().await.unwrap();
    let r2 = send("k1").await.unwrap();
    assert_eq!(r2.status(), 202);
    let r2: serde_json::Value = r2.json().await.unwrap();
    assert_eq!(r1["id"], r2["id"]);
    let r3: serde_json::Value = send("k2").await.unwrap().json().await.unwrap();
    assert_ne!(r1["id"], r3["id"]);
    rx.wait_for_count(2, Duration::from_secs(5)).await;
    app.assert_nothing_due_within(Duration::from_secs(5)).await;
    assert_eq!(rx.count(), 2);
    assert_eq!(
        app.get(&format!("/app/{a}/msg"), 200).await["data"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    let body = json!({ "eventType": "order.created", "payload": {}, "eventId": "evt-1" });
    let first = app.post(&format!("/app/{a}/msg"), body.clone(), 202).await;
    let dup = app.post(&format!("/app/{a}/msg"), body, 409).await;
    assert_eq!(dup["code"], "conflict");
    assert_eq!(
        app.get(&format!("/app/{a}/msg/evt-1"), 200).await["id"],
        first["id"]
    );
}

/// Every POST that does something takes an `Idempotency-Key` (the Svix SDKs send one with
/// each, and send it again when they retry): done once, and its answer given again to a
/// repeat. (Resend, recover, replay-missing, bulk replay, the test send and portal links
/// did their work again for every repeat.)
#[tokio::test]
async fn every_post_is_done_once_per_idempotency_key() {
    let app = TestApp::spawn().await;
    let rx = TestReceiver::start().await;
    let (a, ep, _) = setup(&app, &rx).await;
    let m = app.send(&a, "order.created", json!({})).await;
    rx.wait_for_count(1, Duration::from_secs(5)).await;
    let e = format!("/app/{a}/endpoint/{ep}");
    let window = json!({ "since": "2020-01-01T00:00:00Z" });
    let posts = [
        (format!("/app/{a}/msg/{m}/endpoint/{ep}/resend"), json!({})),
        (format!("{e}/recover"), window.clone()),
        (format!("{e}/replay-missing"), window.clone()),
        (format!("{e}/bulk-replay"), window),
        (format!("{e}/test"), json!({ "eventType": "order.created" })),
        (format!("/auth/app-portal-access/{a}"), json!({})),
    ];
    for (n, (path, body)) in posts.iter().enumerate() {
        let key = format!("once-{n}");
        let (status, first) = app.post_keyed(path, body.clone(), &key).await;
        assert!((200..300).contains(&status), "{path}: {status} {first}");
        let (again, repeat) = app.post_keyed(path, body.clone(), &key).await;
        assert_eq!((again, &repeat), (status, &first), "{path}");
        let (_, other) = app
            .post_keyed(path, body.clone(), &format!("{key}-b"))
            .await;
        if first != json!({}) {
            assert_ne!(other, first, "{path}: another key does it again");
        }
    }
    // The message was sent again once per key by the resend and by the bulk replay (the
    // other sends are of messages of their own, or of none: nothing failed or was missed).
    app.settled().await;
    let attempts = app.get(&format!("/app/{a}/attempt/msg/{m}"), 200).await;
    let resent = attempts["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["triggerType"] == 1)
        .count();
    assert_eq!(resent, 4, "{attempts}");

    // Sent together with one key (a retry that overlaps the request it repeats): one
    // application, the same answer to each.
    let made = (0..8).map(|_| app.post_keyed("/app", json!({ "name": "together" }), "k8"));
    let answers = futures_util::future::join_all(made).await;
    for (status, body) in &answers {
        assert_eq!(*status, 201, "{body}");
        assert_eq!(body["id"], answers[0].1["id"], "{answers:?}");
    }
    let listed = app.get("/app?limit=250", 200).await;
    let together = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["name"] == "together")
        .count();
    assert_eq!(together, 1, "{listed}");
}

/// A test send waits for the receiver as long as the endpoint's timeout allows, past
/// `answer_timeout` (which is for a database that does not answer).
#[tokio::test]
async fn a_test_send_waits_for_a_slow_receiver_past_the_answer_timeout() {
    let app = TestApp::spawn_with(|cfg| cfg.answer_timeout = Duration::from_secs(1)).await;
    let rx = TestReceiver::start().await;
    rx.set_default(Reply::status(200).delay(Duration::from_millis(1500)));
    let (a, ep, _) = setup(&app, &rx).await;
    let out = app
        .post(
            &format!("/app/{a}/endpoint/{ep}/test"),
            json!({ "eventType": "order.created" }),
            200,
        )
        .await;
    assert_eq!(out["success"], true, "{out}");
}

/// `before` and `after` on attempt listings are the attempts' times, as Svix documents them
/// ("items created before/after"): a resend made later is after a time its message is
/// before. (They were the message's time, so a listing of the last hour left out new
/// attempts of older messages.)
#[tokio::test]
async fn attempt_listings_take_before_and_after_as_the_attempts_times() {
    let app = TestApp::spawn().await;
    let rx = TestReceiver::start().await;
    let (a, ep, _) = setup(&app, &rx).await;
    let m = app.send(&a, "order.created", json!({})).await;
    rx.wait_for_count(1, Duration::from_secs(5)).await;
    app.settled().await;
    // A millisecond after the first attempt; the resend is sent once the clock has passed it.
    let first = app.get(&format!("/app/{a}/attempt/msg/{m}"), 200).await["data"][0]["timestamp"]
        .as_str()
        .unwrap()
        .parse::<chrono::DateTime<chrono::Utc>>()
        .unwrap();
    let between = first + chrono::Duration::milliseconds(1);
    let passed = wait_for(Duration::from_secs(5), || async {
        chrono::Utc::now() > between + chrono::Duration::milliseconds(1)
    })
    .await;
    assert!(passed);
    let between = between.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    app.post(
        &format!("/app/{a}/msg/{m}/endpoint/{ep}/resend"),
        json!({}),
        202,
    )
    .await;
    rx.wait_for_count(2, Duration::from_secs(5)).await;
    app.settled().await;
    let app = &app;
    let triggers = |path: String| async move {
        let v = app.get(&path, 200).await;
        v["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["triggerType"].as_i64().unwrap())
            .collect::<Vec<_>>()
    };
    // The resend (manual, 1) is after; the first attempt (scheduled, 0) before.
    let by_msg = format!("/app/{a}/attempt/msg/{m}");
    assert_eq!(triggers(format!("{by_msg}?after={between}")).await, [1]);
    assert_eq!(triggers(format!("{by_msg}?before={between}")).await, [0]);
    let by_ep = format!("/app/{a}/attempt/endpoint/{ep}");
    assert_eq!(triggers(format!("{by_ep}?after={between}")).await, [1]);
    assert_eq!(triggers(format!("{by_ep}?before={between}")).await, [0]);
}

#[tokio::test]
async fn deliver_at_in_the_future_waits_until_then() {
    let app = TestApp::spawn().await;
    let rx = TestReceiver::start().await;
    let (a, _, _) = setup(&app, &rx).await;
    let at = chrono::Utc::now() + chrono::Duration::milliseconds(1200);
    let sent = Instant::now();
    app.post(
        &format!("/app/{a}/msg"),
        json!({ "eventType": "order.created", "payload": {}, "deliverAt": at.to_rfc3339() }),
        202,
    )
    .await;
    let got = rx.wait_for_count(1, Duration::from_secs(5)).await;
    assert!(
        got[0].at - sent >= Duration::from_millis(1000),
        "delivered after {:?}",
        got[0].at - sent
    );
}

#[tokio::test]
async fn one_slow_endpoint_does_not_hold_up_another() {
    let app = TestApp::spawn_with(|c| {
        c.delivery.max_in_flight = 8;
        c.delivery.max_in_flight_per_endpoint = Some(2);
    })
    .await;
    let slow = TestReceiver::start().await;
    slow.set_default(Reply::status(200).delay(Duration::from_millis(1500)));
    let fast = TestReceiver::start().await;
    let a = app.create_app("x").await;
    app.create_endpoint(&a, json!({ "url": slow.url })).await;
    app.create_endpoint(&a, json!({ "url": fast.url })).await;
    let started = Instant::now();
    for i in 0..20 {
        app.send(&a, "x.y", json!({ "i": i })).await;
    }
    fast.wait_for_count(20, Duration::from_secs(3)).await;
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "fast endpoint waited {:?}",
        started.elapsed()
    );
    assert!(
        slow.count() <= 2,
        "slow endpoint had {} requests in flight",
        slow.count()
    );
}

#[tokio::test]
async fn deliveries_waiting_for_a_place_are_not_sent_once_the_endpoint_is_disabled() {
    let app = TestApp::spawn_with(|c| {
        c.delivery.max_in_flight_per_endpoint = Some(1);
        c.delivery.request_timeout = Duration::from_secs(10);
    })
    .await;
    let rx = TestReceiver::start().await;
    // Long enough for the endpoint to be disabled while the first request is under way.
    rx.set_default(Reply::status(200).delay(Duration::from_secs(3)));
    let (a, ep, _) = setup(&app, &rx).await;
    let mut sent = Vec::new();
    for i in 0..4 {
        sent.push(app.send(&a, "order.created", json!({ "i": i })).await);
    }
    // One request is in flight; the other three wait for the endpoint's one place.
    rx.wait_for_count(1, Duration::from_secs(5)).await;
    app.call(
        "PATCH",
        &format!("/app/{a}/endpoint/{ep}"),
        Some(json!({ "disabled": true })),
        200,
    )
    .await;
    let first = rx.received()[0].json()["i"].clone();
    for (i, msg) in sent.iter().enumerate() {
        let want = if json!(i) == first {
            "success"
        } else {
            "canceled"
        };
        let done = wait_for(Duration::from_secs(10), || async {
            delivery_status(&app, &a, msg).await["statusText"] == want
        })
        .await;
        assert!(
            done,
            "message {i}: {} (not {want}); the receiver got {}",
            delivery_status(&app, &a, msg).await,
            rx.count()
        );
    }
    assert_eq!(rx.count(), 1, "a disabled endpoint got a request");
}

#[tokio::test]
async fn a_delivery_waiting_for_the_node_s_places_goes_where_its_endpoint_says_when_it_leaves() {
    let app = TestApp::spawn_with(|c| {
        c.delivery.max_in_flight = 1;
        c.delivery.max_in_flight_per_endpoint = Some(1);
        c.delivery.request_timeout = Duration::from_secs(10);
    })
    .await;
    // The node's one place is held by a slow endpoint of another application.
    let slow = TestReceiver::start().await;
    slow.set_default(Reply::status(200).delay(Duration::from_secs(2)));
    let (s, _, _) = setup(&app, &slow).await;
    let old = TestReceiver::start().await;
    let new = TestReceiver::start().await;
    let b = app.create_app("other").await;
    let (ep, _) = app
        .create_endpoint(&b, json!({ "url": format!("{}/hook", old.url) }))
        .await;
    let path = format!("/app/{b}/endpoint/{ep}");

    // Its URL changes while its delivery waits: the request goes to the new one.
    app.send(&s, "order.created", json!({})).await;
    slow.wait_for_count(1, Duration::from_secs(5)).await;
    let moved = app.send(&b, "order.created", json!({ "n": 1 })).await;
    let url = format!("{}/hook", new.url);
    app.call("PATCH", &path, Some(json!({ "url": url })), 200)
        .await;
    new.wait_for_count(1, Duration::from_secs(10)).await;
    app.settled().await;
    assert_eq!(
        delivery_status(&app, &b, &moved).await["statusText"],
        "success"
    );

    // It is disabled while its delivery waits: nothing is sent.
    app.send(&s, "order.created", json!({})).await;
    slow.wait_for_count(2, Duration::from_secs(5)).await;
    let dropped = app.send(&b, "order.created", json!({ "n": 2 })).await;
    app.call("PATCH", &path, Some(json!({ "disabled": true })), 200)
        .await;
    let canceled = wait_for(Duration::from_secs(10), || async {
        delivery_status(&app, &b, &dropped).await["statusText"] == "canceled"
    })
    .await;
    assert!(canceled, "{}", delivery_status(&app, &b, &dropped).await);
    assert_eq!((old.count(), new.count()), (0, 1));
}

#[tokio::test]
async fn deleting_an_endpoint_mid_delivery_leaves_other_results_intact() {
    let app = TestApp::spawn().await;
    let rx = TestReceiver::start().await;
    rx.set_default(Reply::status(200).delay(Duration::from_millis(500)));
    let a = app.create_app("x").await;
    let (doomed, _) = app
        .create_endpoint(&a, json!({ "url": format!("{}/doomed", rx.url) }))
        .await;
    let (kept, _) = app
        .create_endpoint(&a, json!({ "url": format!("{}/kept", rx.url) }))
        .await;
    let msg = app.send(&a, "x.y", json!({})).await;
    rx.wait_for_count(2, Duration::from_secs(5)).await;
    // Both requests are in flight (their results will be recorded together).
    app.call("DELETE", &format!("/app/{a}/endpoint/{doomed}"), None, 204)
        .await;
    let attempts = app.wait_attempts(&a, &msg, 1, Duration::from_secs(5)).await;
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0]["endpointId"], kept.as_str());
    assert_eq!(
        delivery_status(&app, &a, &msg).await["statusText"],
        "success"
    );
}

#[tokio::test]
async fn a_retry_an_hour_away_is_sent_when_the_clock_gets_there_and_not_before() {
    let app = TestApp::spawn_with(|c| {
        c.delivery.retry_schedule = vec![Duration::ZERO, Duration::from_secs(3600)];
    })
    .await;
    let rx = TestReceiver::start().await;
    rx.script([Reply::status(500)]);
    let (a, _, _) = setup(&app, &rx).await;
    let msg = app.send(&a, "order.created", json!({})).await;
    app.wait_attempts(&a, &msg, 1, Duration::from_secs(5)).await;
    app.settled().await;
    // Due in an hour: a step now, or 59 minutes on, finds nothing.
    assert_eq!(app.dispatcher.run_once().await.unwrap(), 0);
    app.clock.advance(Duration::from_secs(59 * 60));
    assert_eq!(app.dispatcher.run_once().await.unwrap(), 0);
    assert_eq!(rx.count(), 1);
    // An hour on, the step sends it (and records the attempt) before it returns.
    app.clock.advance(Duration::from_secs(60));
    assert_eq!(app.dispatcher.run_once().await.unwrap(), 1);
    assert_eq!(rx.count(), 2);
    let attempts = app.attempts(&a, &msg).await;
    assert_eq!(attempts.len(), 2);
    assert_eq!(
        delivery_status(&app, &a, &msg).await["statusText"],
        "success"
    );
}

/// While ingest saturates the HTTP workers (here: from the first message on), deliveries run
/// on the delivery threads, and are sent, signed and recorded as on the workers.
#[tokio::test]
async fn deliveries_run_on_their_own_threads_while_ingest_saturates_the_workers() {
    let app = TestApp::spawn_with(|c| c.delivery.busy_ingest = 0).await;
    let rx = TestReceiver::start().await;
    let (a, _, secret) = setup(&app, &rx).await;
    let mut sent = Vec::new();
    for n in 0..20 {
        sent.push(app.send(&a, "order.created", json!({ "n": n })).await);
    }
    let got = rx.wait_for_count(20, Duration::from_secs(10)).await;
    for r in &got {
        let (id, ts, sig) = r.signed();
        assert!(signature_valid(&secret, id, ts, &r.body, sig));
    }
    app.settled().await;
    for m in &sent {
        let attempts = app.attempts(&a, m).await;
        assert_eq!(attempts.len(), 1, "{attempts:?}");
        assert_eq!(attempts[0]["status"], 0, "{attempts:?}");
        assert_eq!(delivery_status(&app, &a, m).await["status"], 0);
    }
    assert_eq!(app.dispatcher.counters().offloaded.get(), 20);
}

/// Below that, a delivery runs on the worker that took its message: none is offloaded.
#[tokio::test]
async fn deliveries_stay_on_the_workers_while_ingest_leaves_them_time() {
    let app = TestApp::spawn().await;
    let rx = TestReceiver::start().await;
    let (a, _, _) = setup(&app, &rx).await;
    for n in 0..5 {
        app.send(&a, "order.created", json!({ "n": n })).await;
    }
    rx.wait_for_count(5, Duration::from_secs(10)).await;
    assert_eq!(app.dispatcher.counters().offloaded.get(), 0);
}

/// A receiver may answer anything, NUL bytes and invalid UTF-8 included: the attempt keeps a
/// readable excerpt (each such byte replaced by U+FFFD), which every backend can store, and
/// the results written with it are not held up.
#[tokio::test]
async fn a_response_with_nul_bytes_is_kept_readable_and_holds_up_no_result() {
    let app = TestApp::spawn().await;
    let odd = TestReceiver::start().await;
    odd.set_default(Reply::status(200).body("a\0b\0c"));
    let plain = TestReceiver::start().await;
    let a = app.create_app("shop").await;
    app.create_endpoint(&a, json!({ "url": odd.url })).await;
    let m = app.send(&a, "order.created", json!({ "n": 1 })).await;
    odd.wait_for_count(1, Duration::from_secs(5)).await;
    app.settled().await;
    let attempts = app.wait_attempts(&a, &m, 1, Duration::from_secs(5)).await;
    assert_eq!(attempts[0]["response"], "a\u{fffd}b\u{fffd}c");
    assert_eq!(attempts[0]["status"], 0);

    let b = app.create_app("other").await;
    app.create_endpoint(&b, json!({ "url": plain.url })).await;
    let later = app.send(&b, "order.created", json!({ "n": 2 })).await;
    plain.wait_for_count(1, Duration::from_secs(5)).await;
    let attempts = app
        .wait_attempts(&b, &later, 1, Duration::from_secs(5))
        .await;
    assert_eq!(attempts[0]["status"], 0);
}
