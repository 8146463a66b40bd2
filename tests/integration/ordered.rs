//! Ordered delivery: an endpoint marked `ordered` gets its messages one at a time, in the
//! order they were accepted; one that keeps failing holds back those after it until it is
//! delivered, fails for good, or is skipped. Other endpoints are never held up.

use crate::support::console::Console;
use crate::support::receiver::Reply;
use crate::support::{wait_for, TestApp, TestReceiver};
use serde_json::{json, Value};
use std::time::Duration;

/// The `webhook-id` of each request a receiver got, in order.
fn ids(rx: &TestReceiver) -> Vec<String> {
    rx.received()
        .iter()
        .map(|r| r.signed().0.to_owned())
        .collect()
}

/// Application "shop" with an ordered endpoint at `rx` (path `/ordered`) retrying by
/// `schedule` (seconds; `null`: the server's): (application, endpoint).
async fn shop_with_ordered_endpoint(
    app: &TestApp,
    rx: &TestReceiver,
    schedule: Value,
) -> (String, String) {
    let a = app.create_app("shop").await;
    let (ep, _) = app
        .create_endpoint(
            &a,
            json!({ "url": format!("{}/ordered", rx.url), "ordered": true,
                    "retrySchedule": schedule }),
        )
        .await;
    (a, ep)
}

/// Sends `n` messages one after the other (each acknowledged before the next is sent).
async fn send_n(app: &TestApp, a: &str, n: usize) -> Vec<String> {
    let mut sent = Vec::new();
    for i in 0..n {
        sent.push(app.send(a, "order.updated", json!({ "seq": i })).await);
    }
    sent
}

/// Deletes a message's content (its deliveries not made yet are canceled).
async fn delete_content(app: &TestApp, a: &str, msg: &str) {
    app.call("DELETE", &format!("/app/{a}/msg/{msg}/content"), None, 204)
        .await;
}

/// Waits until the dispatcher holds nothing, then steps it at the current time: what it
/// finds due (nothing, while the line is held).
async fn due_now(app: &TestApp) -> usize {
    app.settled().await;
    app.dispatcher.run_once().await.unwrap()
}

#[tokio::test]
async fn a_failure_in_the_middle_holds_the_line_until_it_is_delivered_then_order_is_kept() {
    let app = TestApp::spawn().await;
    let ordered_rx = TestReceiver::start().await;
    let other_rx = TestReceiver::start().await;
    let (a, ep) = shop_with_ordered_endpoint(&app, &ordered_rx, json!([60])).await;
    let (other, _) = app
        .create_endpoint(&a, json!({ "url": format!("{}/other", other_rx.url) }))
        .await;
    assert_eq!(
        app.get(&format!("/app/{a}/endpoint/{ep}"), 200).await["ordered"],
        true
    );
    assert_eq!(
        app.get(&format!("/app/{a}/endpoint/{other}"), 200).await["ordered"],
        false
    );
    // The second message fails; the others would succeed.
    ordered_rx.script([Reply::status(200), Reply::status(500)]);
    let sent = send_n(&app, &a, 6).await;

    // The first is delivered, the second fails: nothing after it is sent.
    ordered_rx.wait_for_count(2, Duration::from_secs(10)).await;
    // The other endpoint is not held up: it gets all six.
    other_rx.wait_for_count(6, Duration::from_secs(10)).await;
    assert_eq!(due_now(&app).await, 0, "the line is held");
    assert_eq!(ids(&ordered_rx), sent[..2]);
    for m in &sent[2..] {
        let d = app.delivery(&a, m, &ep).await;
        assert_eq!(d["status"], 1, "{d}");
        assert!(d["nextAttempt"].is_null(), "it waits its turn: {d}");
    }
    let held = app.delivery(&a, &sent[1], &ep).await;
    assert_eq!(held["status"], 1, "{held}");
    assert!(held["nextAttempt"].is_string(), "{held}");

    // Its retry is due: it is delivered, and the rest follow in order.
    app.clock.advance(Duration::from_secs(61));
    app.dispatcher.run_once().await.unwrap();
    let got = ordered_rx.wait_for_count(7, Duration::from_secs(10)).await;
    assert_eq!(got.len(), 7);
    let mut expected = vec![sent[0].clone(), sent[1].clone()];
    expected.extend(sent[1..].iter().cloned());
    assert_eq!(ids(&ordered_rx), expected);
    // Messages accepted later go in order too.
    let later = send_n(&app, &a, 3).await;
    ordered_rx.wait_for_count(10, Duration::from_secs(10)).await;
    assert_eq!(ids(&ordered_rx)[7..], later[..]);
    // Every result is recorded once the dispatcher holds nothing.
    assert_eq!(due_now(&app).await, 0);
    for m in sent.iter().chain(&later) {
        assert_eq!(app.delivery(&a, m, &ep).await["status"], 0);
    }
}

#[tokio::test]
async fn deleting_the_content_of_the_message_holding_the_line_lets_the_next_go_at_once() {
    let app = TestApp::spawn().await;
    let rx = TestReceiver::start().await;
    // Its retry is an hour away, and the clock never moves here.
    let (a, ep) = shop_with_ordered_endpoint(&app, &rx, json!([3600])).await;
    rx.script([Reply::status(500)]);
    let sent = send_n(&app, &a, 2).await;
    rx.wait_for_count(1, Duration::from_secs(10)).await;
    assert_eq!(due_now(&app).await, 0, "the line is held");
    delete_content(&app, &a, &sent[0]).await;
    // The one behind it is sent without waiting for the canceled one's retry.
    rx.wait_for_count(2, Duration::from_secs(10)).await;
    assert_eq!(ids(&rx), sent);
    assert_eq!(due_now(&app).await, 0);
    assert_eq!(app.delivery(&a, &sent[1], &ep).await["status"], 0);
}

#[tokio::test]
async fn a_message_that_fails_for_good_lets_the_line_go_on() {
    let app = TestApp::spawn().await;
    let rx = TestReceiver::start().await;
    let (a, ep) = shop_with_ordered_endpoint(&app, &rx, json!([])).await;
    rx.script([Reply::status(500)]);
    let sent = send_n(&app, &a, 3).await;
    rx.wait_for_count(3, Duration::from_secs(10)).await;
    assert_eq!(ids(&rx), sent);
    // The last request has arrived; its result is recorded once the dispatcher holds nothing.
    assert_eq!(due_now(&app).await, 0);
    assert_eq!(app.delivery(&a, &sent[0], &ep).await["status"], 2);
    assert_eq!(app.delivery(&a, &sent[2], &ep).await["status"], 0);
}

#[tokio::test]
async fn skip_and_retry_now_in_the_console_move_a_held_line() {
    let app = TestApp::spawn().await;
    let rx = TestReceiver::start().await;
    rx.set_default(Reply::status(503));
    let (a, ep) = shop_with_ordered_endpoint(&app, &rx, json!([3600, 3600])).await;
    let sent = send_n(&app, &a, 4).await;
    rx.wait_for_count(1, Duration::from_secs(10)).await;
    assert_eq!(due_now(&app).await, 0);

    let mut c = Console::first_admin(&app).await;
    let overview = format!("/admin/apps/{a}/endpoints/{ep}");
    let page = c.page(&overview).await;
    assert!(page.contains("Waiting on"), "{page}");
    assert!(
        page.contains(&format!("id=\"line-head\">{}</span>", sent[0])),
        "{page}"
    );
    assert!(page.contains("3 message(s) wait behind it"), "{page}");

    // Retry now: one more attempt at once, without moving the clock (it fails again).
    let r = c
        .submit(
            &format!("{overview}/line"),
            &[("msg_id", sent[0].as_str()), ("action", "retry")],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    rx.wait_for_count(2, Duration::from_secs(10)).await;
    assert_eq!(due_now(&app).await, 0, "held again");
    assert_eq!(ids(&rx), [sent[0].clone(), sent[0].clone()]);

    // Skip: it counts as failed, and the next ones go, in order.
    rx.set_default(Reply::status(200));
    let r = c
        .submit(
            &format!("{overview}/line"),
            &[("msg_id", sent[0].as_str()), ("action", "skip")],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(r.location.unwrap().ends_with("?ok=skipped"));
    rx.wait_for_count(5, Duration::from_secs(10)).await;
    assert_eq!(ids(&rx)[2..], sent[1..]);
    assert_eq!(due_now(&app).await, 0);
    assert_eq!(app.delivery(&a, &sent[0], &ep).await["status"], 2);
    // A skip of what no longer holds the line changes nothing.
    let r = c
        .submit(
            &format!("{overview}/line"),
            &[("msg_id", sent[0].as_str()), ("action", "skip")],
        )
        .await;
    assert!(r.location.unwrap().ends_with("?ok=line-moved"));
    let page = c.page(&overview).await;
    assert!(!page.contains("id=\"ordered-line\""), "empty line: {page}");
    assert!(page.contains("Ordered: one message at a time"), "{page}");
    // The skipped one can be resent: it joins the end of the line and is delivered.
    app.post(
        &format!("/app/{a}/msg/{}/endpoint/{ep}/resend", sent[0]),
        json!({}),
        202,
    )
    .await;
    rx.wait_for_count(6, Duration::from_secs(10)).await;
    assert_eq!(ids(&rx)[5], sent[0]);
}

#[tokio::test]
async fn a_held_line_holds_across_a_restart_and_turning_ordering_off_releases_it() {
    let app = TestApp::spawn().await;
    let rx = TestReceiver::start().await;
    rx.set_default(Reply::status(500));
    let (a, ep) = shop_with_ordered_endpoint(&app, &rx, json!([3600])).await;
    let sent = send_n(&app, &a, 4).await;
    rx.wait_for_count(1, Duration::from_secs(10)).await;
    assert_eq!(due_now(&app).await, 0);

    let app = app.restart_with(|_| {}).await;
    assert_eq!(due_now(&app).await, 0, "still held after a restart");
    assert_eq!(rx.count(), 1);

    // No longer ordered: what waited goes at once, the held one keeps its retry time.
    rx.set_default(Reply::status(200));
    let v = app
        .call(
            "PATCH",
            &format!("/app/{a}/endpoint/{ep}"),
            Some(json!({ "ordered": false })),
            200,
        )
        .await;
    assert_eq!(v["ordered"], false);
    let got = rx.wait_for_count(4, Duration::from_secs(10)).await;
    let mut rest: Vec<String> = got[1..].iter().map(|r| r.signed().0.to_owned()).collect();
    rest.sort();
    let mut expected = sent[1..].to_vec();
    expected.sort();
    assert_eq!(rest, expected);
    assert_eq!(app.delivery(&a, &sent[0], &ep).await["status"], 1);
    assert_eq!(due_now(&app).await, 0);
}

#[tokio::test]
async fn turning_ordering_on_lines_up_what_is_queued_and_deleting_the_first_s_content_moves_on() {
    let app = TestApp::spawn().await;
    let rx = TestReceiver::start().await;
    rx.set_default(Reply::status(500));
    let a = app.create_app("shop").await;
    let (ep, _) = app
        .create_endpoint(
            &a,
            json!({ "url": format!("{}/plain", rx.url), "retrySchedule": [3600] }),
        )
        .await;
    let sent = send_n(&app, &a, 3).await;
    rx.wait_for_count(3, Duration::from_secs(10)).await;
    assert_eq!(due_now(&app).await, 0);
    // All three wait for their retries; once ordered, they form a line in the order they
    // were accepted, and only the first keeps its retry time.
    app.call(
        "PATCH",
        &format!("/app/{a}/endpoint/{ep}"),
        Some(json!({ "ordered": true })),
        200,
    )
    .await;
    assert!(app.delivery(&a, &sent[0], &ep).await["nextAttempt"].is_string());
    for m in &sent[1..] {
        assert!(app.delivery(&a, m, &ep).await["nextAttempt"].is_null());
    }
    // The first's content is deleted: it is canceled, and the next one is first, at its own
    // retry time.
    rx.set_default(Reply::status(200));
    delete_content(&app, &a, &sent[0]).await;
    assert!(app.delivery(&a, &sent[1], &ep).await["nextAttempt"].is_string());
    assert!(app.delivery(&a, &sent[2], &ep).await["nextAttempt"].is_null());
    app.clock.advance(Duration::from_secs(3601));
    app.dispatcher.run_once().await.unwrap();
    let got = rx.wait_for_count(5, Duration::from_secs(10)).await;
    let tail: Vec<&str> = got[3..].iter().map(|r| r.signed().0).collect();
    assert_eq!(tail, [sent[1].as_str(), sent[2].as_str()]);
}

#[tokio::test]
async fn the_api_shows_what_the_line_waits_on_and_skips_or_retries_it() {
    let app = TestApp::spawn().await;
    let rx = TestReceiver::start().await;
    rx.set_default(Reply::status(500));
    let (a, ep) = shop_with_ordered_endpoint(&app, &rx, json!([3600, 3600])).await;
    // The plain endpoint retries only when the clock moves (never here), so every request
    // counted below after its first three is the ordered endpoint's.
    let (plain, _) = app
        .create_endpoint(
            &a,
            json!({ "url": format!("{}/plain", rx.url), "retrySchedule": [3600] }),
        )
        .await;
    let line = format!("/app/{a}/endpoint/{ep}/line");
    let empty = app.get(&line, 200).await;
    assert_eq!(
        empty,
        json!({ "ordered": true, "waiting": 0, "first": null })
    );
    // The first is named by its eventId below.
    let first =
        json!({ "eventType": "order.updated", "payload": { "seq": -1 }, "eventId": "order-0" });
    let first = app.post(&format!("/app/{a}/msg"), first, 202).await;
    let mut sent = vec![first["id"].as_str().unwrap().to_owned()];
    sent.extend(send_n(&app, &a, 2).await);
    // Both endpoints got the first (the plain one all three) and failed.
    rx.wait_for_count(4, Duration::from_secs(10)).await;
    assert_eq!(due_now(&app).await, 0);
    let v = app.get(&line, 200).await;
    assert_eq!(v["waiting"], 3, "{v}");
    assert_eq!(v["first"]["msgId"], sent[0].as_str(), "{v}");
    assert_eq!(v["first"]["held"], true, "{v}");
    assert_eq!(v["first"]["attempts"], 1, "{v}");
    assert!(v["first"]["nextAttempt"].is_string(), "{v}");

    // Only the first can be moved on; the request must name it.
    let e = app
        .post(&format!("{line}/skip"), json!({ "msgId": sent[1] }), 409)
        .await;
    assert_eq!(e["code"], "not_first_in_line", "{e}");
    let e = app
        .post(
            &format!("{line}/skip"),
            json!({ "msgId": "msg\u{0}x" }),
            422,
        )
        .await;
    assert_eq!(e["detail"][0]["loc"], json!(["body", "msgId"]), "{e}");
    app.post(&format!("{line}/skip"), json!({}), 422).await;
    let e = app
        .post(
            &format!("/app/{a}/endpoint/{plain}/line/retry"),
            json!({ "msgId": sent[0] }),
            409,
        )
        .await;
    assert_eq!(e["code"], "endpoint_not_ordered", "{e}");
    assert_eq!(
        app.get(&format!("/app/{a}/endpoint/{plain}/line"), 200)
            .await,
        json!({ "ordered": false, "waiting": 0, "first": null })
    );

    let e = app
        .post(&format!("{line}/retry"), json!({ "msgId": "order-9" }), 404)
        .await;
    assert_eq!(e["code"], "not_found", "{e}");

    // Retry now (the message named by its eventId, as paths may): one more attempt at once
    // (it fails again); then skip it.
    app.post(&format!("{line}/retry"), json!({ "msgId": "order-0" }), 200)
        .await;
    rx.wait_for_count(5, Duration::from_secs(10)).await;
    assert_eq!(due_now(&app).await, 0);
    assert_eq!(app.get(&line, 200).await["first"]["attempts"], 2);
    rx.set_default(Reply::status(200));
    let v = app
        .post(&format!("{line}/skip"), json!({ "msgId": sent[0] }), 200)
        .await;
    // The answer shows the line as it stands: the dispatcher, woken by the skip, may already
    // be sending the next ones.
    assert!(v["waiting"].as_u64().is_some_and(|w| w <= 2), "{v}");
    assert_ne!(v["first"]["msgId"], sent[0].as_str(), "{v}");
    // The two behind it, counted at the ordered endpoint alone (the plain one's retries may
    // come in between).
    let ordered_count = || {
        rx.received()
            .iter()
            .filter(|r| r.path == "/ordered")
            .count()
    };
    let both = wait_for(Duration::from_secs(10), || async { ordered_count() >= 4 }).await;
    assert!(both, "{:?}", rx.received());
    let to_ordered: Vec<String> = rx
        .received()
        .iter()
        .filter(|r| r.path == "/ordered")
        .map(|r| r.signed().0.to_owned())
        .collect();
    assert_eq!(
        to_ordered,
        [&sent[0], &sent[0], &sent[1], &sent[2]].map(|s| s.to_owned())
    );
    // The receiver counts a delivery before its result is written: wait for that.
    assert_eq!(due_now(&app).await, 0);
    assert_eq!(app.get(&line, 200).await["waiting"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ordered_endpoint_changed_while_messages_pour_in_answers_every_request() {
    let app = std::sync::Arc::new(TestApp::spawn().await);
    let rx = TestReceiver::start().await;
    let (a, ep) = shop_with_ordered_endpoint(&app, &rx, Value::Null).await;
    // Messages accepted while the endpoint is edited (and so locked) again and again: no
    // request may fail (on PostgreSQL, one waiting for the other's locks in the opposite
    // order would be a deadlock, and a 500).
    let producers: Vec<_> = (0..4)
        .map(|_| {
            let (app, a) = (app.clone(), a.clone());
            tokio::spawn(async move { send_n(&app, &a, 50).await })
        })
        .collect();
    for i in 0..40 {
        app.call(
            "PATCH",
            &format!("/app/{a}/endpoint/{ep}"),
            Some(json!({ "description": format!("edit {i}") })),
            200,
        )
        .await;
    }
    let mut sent = 0;
    for p in producers {
        sent += p.await.unwrap().len();
    }
    rx.wait_for_count(sent, Duration::from_secs(30)).await;
}

#[tokio::test]
async fn on_postgresql_a_line_left_with_no_first_goes_on_at_the_next_heartbeat() {
    crate::postgres_only!("the heartbeat's sweep of ordered lines is PostgreSQL's");
    let app =
        TestApp::spawn_with(|c| c.database.heartbeat_interval = Duration::from_millis(200)).await;
    let rx = TestReceiver::start().await;
    rx.set_default(Reply::status(500));
    let (a, ep) = shop_with_ordered_endpoint(&app, &rx, json!([3600])).await;
    let sent = send_n(&app, &a, 2).await;
    app.wait_attempts(&a, &sent[0], 1, Duration::from_secs(10))
        .await;
    assert_eq!(due_now(&app).await, 0, "held: its retry is an hour away");
    // As if the node that accepted the first had stopped between its commit and letting the
    // line go: the first waits with the others, nothing of the line on its way.
    rx.set_default(Reply::status(200));
    let url = crate::support::storage::postgres_url(app.dir.path()).unwrap();
    crate::support::storage::pg_query(
        &url,
        &format!(
            "UPDATE deliveries SET next_attempt_at = NULL, lease_until = NULL \
             WHERE endpoint_id = '{ep}' AND msg_id = '{}'",
            sent[0]
        ),
    );
    // A heartbeat lets it go (due at once: its retry time was lost with it), then the next.
    let got = rx.wait_for_count(3, Duration::from_secs(10)).await;
    let ids: Vec<&str> = got.iter().map(|r| r.signed().0).collect();
    assert_eq!(ids, [sent[0].as_str(), sent[0].as_str(), sent[1].as_str()]);
}
