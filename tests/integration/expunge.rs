//! Deleting content on request: a message's payload (it is never sent again) and what a
//! receiver answered to an attempt; the counts stay.

use crate::support::receiver::Reply;
use crate::support::{wait_for, TestApp, TestReceiver};
use serde_json::json;
use std::time::Duration;

#[tokio::test]
async fn a_message_s_payload_is_deleted_its_retries_canceled_and_it_cannot_be_resent() {
    let app = TestApp::spawn().await;
    let rx = TestReceiver::start().await;
    rx.set_default(Reply::status(500));
    let a = app.create_app("shop").await;
    // Retried in an hour: the retry is what the deletion must stop.
    let (ep, _) = app
        .create_endpoint(
            &a,
            json!({ "url": format!("{}/hook", rx.url), "retrySchedule": [3600] }),
        )
        .await;
    let m = app
        .send(&a, "user.created", json!({ "email": "jane@example.com" }))
        .await;
    rx.wait_for_count(1, Duration::from_secs(10)).await;
    app.settled().await;
    let path = format!("/app/{a}/msg/{m}/endpoint");
    let dest = || async { app.get(&path, 200).await["data"][0].clone() };
    let d = dest().await;
    assert!(!d["nextAttempt"].is_null(), "a retry is scheduled: {d}");

    app.call("DELETE", &format!("/app/{a}/msg/{m}/content"), None, 204)
        .await;
    let msg = app.get(&format!("/app/{a}/msg/{m}"), 200).await;
    assert_eq!(msg["payload"], json!({}), "{msg}");
    assert!(!msg.to_string().contains("jane@example.com"));
    let d = dest().await;
    assert_eq!(d["status"], 4, "canceled: {d}");
    assert!(d["nextAttempt"].is_null(), "{d}");
    // The attempt made stays, and nothing more is sent, even once the retry was due.
    let attempts = app.get(&format!("/app/{a}/attempt/msg/{m}"), 200).await;
    assert_eq!(attempts["data"].as_array().unwrap().len(), 1);
    app.clock.advance(Duration::from_secs(7200));
    app.assert_nothing_due_within(Duration::from_secs(2)).await;
    assert_eq!(rx.count(), 1);
    // Resending has nothing to send.
    let e = app
        .post(
            &format!("/app/{a}/msg/{m}/endpoint/{ep}/resend"),
            json!({}),
            409,
        )
        .await;
    assert_eq!(e["code"], "message_content_gone", "{e}");
    app.call(
        "DELETE",
        &format!("/app/{a}/msg/msg_nope/content"),
        None,
        404,
    )
    .await;
}

#[tokio::test]
async fn a_payload_deleted_while_its_delivery_waits_for_a_place_is_not_sent() {
    let app = TestApp::spawn_with(|c| {
        c.delivery.max_in_flight_per_endpoint = Some(1);
        c.delivery.request_timeout = Duration::from_secs(10);
    })
    .await;
    let rx = TestReceiver::start().await;
    // The first request holds the endpoint's one place while the second's content goes.
    rx.set_default(Reply::status(200).delay(Duration::from_secs(2)));
    let a = app.create_app("shop").await;
    app.create_endpoint(&a, json!({ "url": format!("{}/hook", rx.url) }))
        .await;
    let first = app.send(&a, "user.created", json!({ "n": 1 })).await;
    rx.wait_for_count(1, Duration::from_secs(5)).await;
    let m = app
        .send(&a, "user.created", json!({ "email": "jane@example.com" }))
        .await;
    app.call("DELETE", &format!("/app/{a}/msg/{m}/content"), None, 204)
        .await;
    app.settled().await;
    let status = |m: String| {
        let path = format!("/app/{a}/msg/{m}/endpoint");
        let app = &app;
        async move { app.get(&path, 200).await["data"][0]["statusText"].clone() }
    };
    assert_eq!(status(first).await, "success");
    assert_eq!(status(m.clone()).await, "canceled");
    assert_eq!(rx.count(), 1);
    assert!(rx
        .received()
        .iter()
        .all(|r| !String::from_utf8_lossy(&r.body).contains("jane@example.com")));
    let attempts = app.get(&format!("/app/{a}/attempt/msg/{m}"), 200).await;
    assert_eq!(attempts["data"], json!([]), "{attempts}");
}

#[tokio::test]
async fn what_a_receiver_answered_to_an_attempt_is_deleted_and_the_attempt_stays() {
    let app = TestApp::spawn().await;
    let rx = TestReceiver::start().await;
    rx.set_default(Reply::status(200).body("{\"token\":\"tok_private_123\"}"));
    let a = app.create_app("shop").await;
    app.create_endpoint(&a, json!({ "url": format!("{}/hook", rx.url) }))
        .await;
    let m = app.send(&a, "user.created", json!({})).await;
    rx.wait_for_count(1, Duration::from_secs(10)).await;
    let list = format!("/app/{a}/attempt/msg/{m}");
    let stored = wait_for(Duration::from_secs(10), || async {
        app.get(&list, 200).await["data"][0]["response"]
            .as_str()
            .is_some_and(|r| r.contains("tok_private_123"))
    })
    .await;
    assert!(stored, "the answer is kept first");
    let attempt = app.get(&list, 200).await["data"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.call(
        "DELETE",
        &format!("/app/{a}/msg/{m}/attempt/{attempt}/content"),
        None,
        204,
    )
    .await;
    let got = app
        .get(&format!("/app/{a}/msg/{m}/attempt/{attempt}"), 200)
        .await;
    assert!(!got.to_string().contains("tok_private_123"), "{got}");
    assert_eq!(got["responseStatusCode"], 200);
    assert_eq!(got["status"], 0);
    // Another message's attempt is not this message's to delete.
    let other = app.send(&a, "user.created", json!({})).await;
    app.call(
        "DELETE",
        &format!("/app/{a}/msg/{other}/attempt/{attempt}/content"),
        None,
        404,
    )
    .await;
}

#[tokio::test]
async fn recovering_an_endpoint_leaves_out_messages_whose_payload_was_deleted() {
    let app = TestApp::spawn().await;
    let rx = TestReceiver::start().await;
    rx.set_default(Reply::status(500));
    let a = app.create_app("shop").await;
    let (ep, _) = app
        .create_endpoint(
            &a,
            json!({ "url": format!("{}/hook", rx.url), "retrySchedule": [] }),
        )
        .await;
    let gone = app.send(&a, "user.created", json!({ "n": 1 })).await;
    app.send(&a, "user.created", json!({ "n": 2 })).await;
    rx.wait_for_count(2, Duration::from_secs(10)).await;
    app.settled().await;
    app.call("DELETE", &format!("/app/{a}/msg/{gone}/content"), None, 204)
        .await;
    rx.set_default(Reply::status(200));
    app.post(
        &format!("/app/{a}/endpoint/{ep}/recover"),
        json!({ "since": "2000-01-01T00:00:00Z" }),
        202,
    )
    .await;
    rx.wait_for_count(3, Duration::from_secs(10)).await;
    app.assert_nothing_due_within(Duration::from_secs(3600))
        .await;
    let got = rx.received();
    assert_eq!(
        got.len(),
        3,
        "only the message with its payload is sent again"
    );
    assert_eq!(got[2].json()["n"], 2);
}

/// An answer kept for an `Idempotency-Key` gives the message's payload as it is stored now:
/// once deleted (or past retention) a repeat of the POST gets `{}`, not the deleted payload.
#[tokio::test]
async fn a_repeated_post_does_not_give_back_a_deleted_payload() {
    let app = TestApp::spawn().await;
    let a = app.create_app("shop").await;
    let post = || async {
        let resp = app
            .client
            .post(format!("{}/app/{a}/msg", app.base))
            .bearer_auth(&app.token)
            .header("idempotency-key", "pii-1")
            .json(&json!({ "eventType": "a.b", "payload": { "email": "alice@example.com" } }))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 202);
        resp.json::<serde_json::Value>().await.unwrap()
    };
    let first = post().await;
    assert_eq!(first["payload"]["email"], "alice@example.com");
    // Before the deletion a repeat is the first answer, byte for byte.
    assert_eq!(post().await, first);
    let id = first["id"].as_str().unwrap();
    app.call("DELETE", &format!("/app/{a}/msg/{id}/content"), None, 204)
        .await;
    let again = post().await;
    assert_eq!(again["id"], first["id"]);
    assert_eq!(again["payload"], json!({}), "{again}");
    assert_eq!(again["eventType"], "a.b");
    assert_eq!(again["timestamp"], first["timestamp"]);
}
