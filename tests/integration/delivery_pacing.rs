//! Per-endpoint pacing: the rate limit (`throttleRate`) and the slow-down after 429/502/503/504.

use crate::support::receiver::{Received, Reply};
use crate::support::{TestApp, TestReceiver};
use serde_json::json;
use std::time::{Duration, Instant};

/// Receipt times, in order.
fn times(got: &[Received]) -> Vec<Instant> {
    let mut t: Vec<Instant> = got.iter().map(|r| r.at).collect();
    t.sort();
    t
}

#[tokio::test]
async fn rate_limited_endpoint_never_exceeds_its_rate_while_another_gets_everything_at_once() {
    const RATE: f64 = 5.0;
    const MESSAGES: usize = 20;
    let app = TestApp::spawn().await;
    let throttled = TestReceiver::start().await;
    let free = TestReceiver::start().await;
    let a = app.create_app("shop").await;
    app.create_event_type("order.created").await;
    app.create_endpoint(
        &a,
        json!({ "url": format!("{}/throttled", throttled.url), "throttleRate": 5 }),
    )
    .await;
    app.create_endpoint(&a, json!({ "url": format!("{}/free", free.url) }))
        .await;

    let mut msgs = Vec::new();
    for n in 0..MESSAGES {
        msgs.push(app.send(&a, "order.created", json!({ "n": n })).await);
    }
    let sent = Instant::now();

    let free_got = free.wait_for_count(MESSAGES, Duration::from_secs(5)).await;
    let free_done = *times(&free_got).last().unwrap();
    assert!(
        free_done < sent + Duration::from_secs(1),
        "the endpoint without a rate limit took {:?} after the last message",
        free_done - sent
    );
    let throttled_when_free_done = throttled
        .received()
        .iter()
        .filter(|r| r.at <= free_done)
        .count();
    assert!(
        throttled_when_free_done < MESSAGES,
        "the throttled endpoint had everything as soon as the free one"
    );

    // Waiting, never dropping: every message reaches the throttled endpoint too.
    let got = throttled
        .wait_for_count(MESSAGES, Duration::from_secs(15))
        .await;
    let t = times(&got);
    // A token bucket of one second's worth (burst = rate): any window [t_i, t_j] holds at most
    // burst + rate × (t_j − t_i) requests. 100 ms of slack covers the time between admission
    // and receipt.
    for i in 0..t.len() {
        for j in i..t.len() {
            let window = (t[j] - t[i]).as_secs_f64() + 0.1;
            let count = (j - i + 1) as f64;
            assert!(
                count <= RATE + RATE * window,
                "{count} requests within {:?} (requests {i}..={j}): over 5/s with a burst of 5",
                t[j] - t[i]
            );
        }
    }
    // After the burst, the other 15 need at least 3 s at 5/s.
    let span = t[t.len() - 1] - t[0];
    assert!(
        span >= Duration::from_millis(2800),
        "20 requests in {span:?}"
    );
    assert_eq!(got.len(), MESSAGES, "no message is sent twice");
    for m in &msgs {
        let attempts = app.wait_attempts(&a, m, 2, Duration::from_secs(5)).await;
        assert!(attempts.iter().all(|x| x["status"] == 0), "{attempts:#?}");
    }
    // Later too: nothing arrived twice.
    assert_eq!(throttled.count(), MESSAGES, "a message was sent twice");
}

#[tokio::test]
async fn a_changed_rate_limit_takes_effect_for_waiting_deliveries() {
    let app = TestApp::spawn().await;
    let rx = TestReceiver::start().await;
    let a = app.create_app("shop").await;
    app.create_event_type("order.created").await;
    let (ep, _) = app
        .create_endpoint(
            &a,
            json!({ "url": format!("{}/hook", rx.url), "throttleRate": 1 }),
        )
        .await;
    for n in 0..8 {
        app.send(&a, "order.created", json!({ "n": n })).await;
    }
    // At 1/s (burst 1) the first goes at once and the rest wait a second each.
    rx.wait_for_count(1, Duration::from_secs(5)).await;
    assert!(rx.count() < 8, "the limit of 1/s did not hold");
    let raised = Instant::now();
    app.call(
        "PATCH",
        &format!("/app/{a}/endpoint/{ep}"),
        Some(json!({ "throttleRate": 1000 })),
        200,
    )
    .await;
    let got = rx.wait_for_count(8, Duration::from_secs(5)).await;
    let last = *times(&got).last().unwrap();
    // At the old rate the last would come 7 s after the first; the waiting ones look again
    // at once (not after the second the old rate had them wait).
    assert!(
        last < raised + Duration::from_millis(700),
        "the raised limit did not apply: last request {:?} after the change",
        last.saturating_duration_since(raised)
    );
}

#[tokio::test]
async fn slow_down_answer_pauses_that_endpoint_while_another_proceeds_at_full_speed() {
    const PAUSE: Duration = Duration::from_millis(1500);
    let app = TestApp::spawn_with(|cfg| {
        cfg.delivery.slow_down_pause = PAUSE;
        cfg.delivery.max_slow_down_pause = Duration::from_secs(10);
    })
    .await;
    let busy = TestReceiver::start().await;
    busy.script([Reply::status(503)]);
    let other = TestReceiver::start().await;
    let a = app.create_app("shop").await;
    app.create_event_type("order.created").await;
    app.create_endpoint(&a, json!({ "url": format!("{}/busy", busy.url) }))
        .await;
    app.create_endpoint(&a, json!({ "url": format!("{}/other", other.url) }))
        .await;

    let first = app.send(&a, "order.created", json!({ "n": 0 })).await;
    // The 503 is recorded before more work arrives, so the endpoint is already slowed down.
    let attempts = app
        .wait_attempts(&a, &first, 2, Duration::from_secs(5))
        .await;
    let busy_attempt = attempts
        .iter()
        .find(|x| x["responseStatusCode"] == 503)
        .expect("the busy endpoint answered 503");
    assert_eq!(busy_attempt["status"], 2);
    let refused_at = busy.received()[0].at;
    for n in 1..=10 {
        app.send(&a, "order.created", json!({ "n": n })).await;
    }

    let other_got = other.wait_for_count(11, Duration::from_secs(5)).await;
    let other_done = *times(&other_got).last().unwrap();
    // Ten new messages plus the retry of the first (due 300 ms after its 503).
    let busy_got = busy.wait_for_count(12, Duration::from_secs(10)).await;
    let busy_times = times(&busy_got);
    let resumed = busy_times[1];
    assert!(
        resumed >= refused_at + PAUSE - Duration::from_millis(50),
        "the busy endpoint got its next request {:?} after the 503",
        resumed - refused_at
    );
    assert!(
        other_done < resumed,
        "the other endpoint was held up: done {:?} after the 503, busy resumed after {:?}",
        other_done - refused_at,
        resumed - refused_at
    );
}

/// Sends `n` messages to app `a` at once (eight requests at a time).
async fn send_many(app: &TestApp, a: &str, n: usize) {
    for chunk in (0..n).collect::<Vec<_>>().chunks(8) {
        futures_util::future::join_all(chunk.iter().map(|i| app.send(a, "x.y", json!({ "n": i }))))
            .await;
    }
}

/// Keeps app `a`'s endpoint (at `rx`) busy with one request held throughout, so that the
/// dispatcher keeps its pace in memory, then has it answer `quick` requests at once, so that
/// it is known to answer quickly (or `slow` ones after a second, so that it is known to be
/// slow), each answered before this returns.
async fn known_pace(app: &TestApp, a: &str, rx: &TestReceiver, quick: usize, slow: usize) {
    rx.script(
        std::iter::once(Reply::status(200).delay(Duration::from_secs(60)))
            .chain((0..quick).map(|_| Reply::status(200)))
            .chain((0..slow).map(|_| Reply::status(200).delay(Duration::from_secs(1)))),
    );
    app.send(a, "x.y", json!({})).await;
    rx.wait_for_count(1, Duration::from_secs(5)).await;
    let mut msgs = Vec::new();
    for _ in 0..quick + slow {
        msgs.push(app.send(a, "x.y", json!({})).await);
    }
    for m in &msgs {
        app.wait_attempts(a, m, 1, Duration::from_secs(5)).await;
    }
}

#[tokio::test]
async fn a_quick_endpoint_borrows_beyond_its_share_and_leaves_a_share_for_the_others() {
    // Default caps: 256 requests in flight in all, a share of 64 per endpoint.
    const HELD: Duration = Duration::from_secs(4);
    let app = TestApp::spawn_with(|c| c.delivery.request_timeout = Duration::from_secs(120)).await;
    let busy = TestReceiver::start().await;
    let other = TestReceiver::start().await;
    let a = app.create_app("busy").await;
    let b = app.create_app("other").await;
    app.create_endpoint(&a, json!({ "url": busy.url })).await;
    app.create_endpoint(&b, json!({ "url": other.url })).await;
    known_pace(&app, &a, &busy, 4, 0).await;
    // Every answer is held from now on: what arrives before the first answer was in flight
    // at once.
    busy.set_default(Reply::status(200).delay(HELD));
    send_many(&app, &a, 240).await;
    let got = busy.wait_for_count(5 + 100, HELD).await;
    let first = times(&got[5..])[0];
    send_many(&app, &b, 20).await;
    let others = other.wait_for_count(20, HELD).await;
    assert!(
        times(&others).last().unwrap() < &(first + HELD),
        "the other endpoint waited for the busy one"
    );
    // The rest go as answers come back, each once.
    let got = busy.wait_for_count(5 + 240, 3 * HELD).await;
    let ids: std::collections::HashSet<_> = got[5..]
        .iter()
        .filter_map(|r| r.header("webhook-id"))
        .collect();
    assert_eq!(ids.len(), 240, "each message once");
    // With the request held throughout, about 256 - 64 = 192 in flight: the node keeps the
    // share of 64 free for the others (one more where two deliveries lend at once).
    let in_flight = got[5..].iter().filter(|r| r.at < first + HELD).count();
    assert!(
        (100..=192).contains(&in_flight),
        "{in_flight} requests in flight to the busy endpoint"
    );
}

#[tokio::test]
async fn an_endpoint_that_turns_quick_borrows_for_the_deliveries_already_waiting() {
    const ANSWER: Duration = Duration::from_millis(250);
    let app = TestApp::spawn_with(|c| c.delivery.request_timeout = Duration::from_secs(120)).await;
    let rx = TestReceiver::start().await;
    let a = app.create_app("x").await;
    app.create_endpoint(&a, json!({ "url": rx.url })).await;
    // Known to be slow (answers after a second), the endpoint keeps to its share: the next
    // 63 held three seconds take it (with the request held throughout), and the rest wait,
    // however quickly they are sent. Then its answers show it quick.
    known_pace(&app, &a, &rx, 0, 4).await;
    rx.script((0..63).map(|_| Reply::status(200).delay(Duration::from_secs(3))));
    rx.set_default(Reply::status(200).delay(ANSWER));
    send_many(&app, &a, 300).await;
    let got = rx.wait_for_count(5 + 300, Duration::from_secs(30)).await;
    // Each of the rest is held 250 ms: those that arrived within 250 ms of each other were
    // in flight together. Answers of 250 ms are quick, so the endpoint is lent places for
    // the deliveries waiting as its answers come back.
    let t = times(&got[5 + 63..]);
    let most = (0..t.len())
        .map(|i| t[i..].iter().take_while(|x| **x - t[i] < ANSWER).count())
        .max()
        .unwrap();
    assert!(most > 80, "at most {most} requests in flight together");
}

#[tokio::test]
async fn a_rate_limited_endpoint_keeps_its_rate_after_waiting_for_the_node_s_places() {
    const RATE: f64 = 1.0;
    const MESSAGES: usize = 3;
    let app = TestApp::spawn_with(|c| {
        c.delivery.max_in_flight = 2;
        c.delivery.request_timeout = Duration::from_secs(10);
    })
    .await;
    // Two slow requests hold both of the node's places for 2 s.
    let slow = TestReceiver::start().await;
    slow.set_default(Reply::status(200).delay(Duration::from_secs(2)));
    let s = app.create_app("slow").await;
    app.create_endpoint(&s, json!({ "url": format!("{}/hook", slow.url) }))
        .await;
    for n in 0..2 {
        app.send(&s, "x.y", json!({ "n": n })).await;
    }
    slow.wait_for_count(2, Duration::from_secs(5)).await;
    let throttled = TestReceiver::start().await;
    let r = app.create_app("throttled").await;
    app.create_endpoint(
        &r,
        json!({ "url": format!("{}/hook", throttled.url), "throttleRate": 1 }),
    )
    .await;
    for n in 0..MESSAGES {
        app.send(&r, "x.y", json!({ "n": n })).await;
    }
    let got = throttled
        .wait_for_count(MESSAGES, Duration::from_secs(10))
        .await;
    // What waited for a place is sent at the endpoint's rate once places free up, not at once
    // (100 ms of slack for the time between admission and receipt).
    let t = times(&got);
    for pair in t.windows(2) {
        let gap = (pair[1] - pair[0]).as_secs_f64();
        assert!(
            gap + 0.1 >= 1.0 / RATE,
            "requests {gap:.3} s apart at a rate of 1/s: {t:?}"
        );
    }
}
