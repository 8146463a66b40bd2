//! Bulk replays: background tasks that send an endpoint the messages of a window again, with
//! their progress, resuming after a restart.

use crate::support::receiver::Reply;
use crate::support::{wait_for, TestApp, TestReceiver};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::time::Duration;

const SINCE: &str = "2000-01-01T00:00:00Z";

async fn task(app: &TestApp, id: &str) -> Value {
    app.get(&format!("/background-task/{id}"), 200).await
}

/// Sends `n` messages to `a`, `parallel` at a time; their ids.
async fn send_many(app: &TestApp, a: &str, n: usize, parallel: usize) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    for chunk in (0..n).collect::<Vec<_>>().chunks(parallel) {
        let sent = futures_util::future::join_all(
            chunk
                .iter()
                .map(|i| app.send(a, "invoice.paid", json!({ "n": i }))),
        )
        .await;
        ids.extend(sent);
    }
    ids
}

#[tokio::test]
async fn a_bulk_replay_of_10000_messages_shows_progress_resumes_after_a_restart_and_sends_each_once(
) {
    let app = TestApp::spawn_with(|cfg| cfg.tasks.run = false).await;
    let rx = TestReceiver::start().await;
    let a = app.create_app("shop").await;
    // Taken before the endpoint existed: none was sent to it.
    let sent = send_many(&app, &a, 10_000, 64).await;
    let (ep, _) = app
        .create_endpoint(&a, json!({ "url": format!("{}/hook", rx.url) }))
        .await;
    let t = app
        .post(
            &format!("/app/{a}/endpoint/{ep}/bulk-replay"),
            json!({ "since": SINCE }),
            202,
        )
        .await;
    assert_eq!(
        (t["status"].clone(), t["task"].clone()),
        (json!("running"), json!("endpoint.replay"))
    );
    assert_eq!(t["data"]["total"], 10_000, "{t}");
    assert_eq!(t["data"]["done"], 0, "{t}");
    let id = t["id"].as_str().unwrap().to_owned();

    // Two steps: a fifth of the way.
    assert_eq!(app.tasks.run_once().await.unwrap(), 1);
    assert_eq!(app.tasks.run_once().await.unwrap(), 1);
    let t = task(&app, &id).await;
    assert_eq!(
        (
            t["data"]["done"].clone(),
            t["data"]["queued"].clone(),
            t["data"]["percent"].clone()
        ),
        (json!(1000), json!(1000), json!(10)),
        "{t}"
    );
    rx.wait_for_count(1000, Duration::from_secs(30)).await;
    let listed = app.get("/background-task", 200).await;
    assert_eq!(listed["data"][0]["id"], id.as_str(), "{listed}");

    // Stopped in the middle, started again: it goes on from where it was.
    let app = app.restart_with(|_| {}).await;
    let finished = wait_for(Duration::from_secs(60), || async {
        task(&app, &id).await["status"] == "finished"
    })
    .await;
    assert!(finished, "{}", task(&app, &id).await);
    let t = task(&app, &id).await;
    assert_eq!(
        (
            t["data"]["done"].clone(),
            t["data"]["queued"].clone(),
            t["data"]["percent"].clone()
        ),
        (json!(10_000), json!(10_000), json!(100)),
        "{t}"
    );
    let got = rx.wait_for_count(10_000, Duration::from_secs(120)).await;
    app.assert_nothing_due_within(Duration::from_secs(3600))
        .await;
    let ids: BTreeSet<String> = got
        .iter()
        .map(|r| r.header("webhook-id").unwrap().to_owned())
        .collect();
    assert_eq!(ids, sent, "every message arrived");
    assert_eq!(rx.count(), 10_000, "each once");
}

#[tokio::test]
async fn a_bulk_replay_takes_only_the_messages_its_filters_name() {
    let app = TestApp::spawn_with(|cfg| cfg.tasks.run = false).await;
    let rx = TestReceiver::start().await;
    let a = app.create_app("shop").await;
    let (ep, _) = app
        .create_endpoint(&a, json!({ "url": format!("{}/hook", rx.url) }))
        .await;
    for i in 0..3 {
        app.send(&a, "invoice.paid", json!({ "i": i })).await;
    }
    let refund = app.send(&a, "invoice.refunded", json!({ "i": 9 })).await;
    rx.wait_for_count(4, Duration::from_secs(5)).await;
    for m in [&refund] {
        app.wait_attempts(&a, m, 1, Duration::from_secs(5)).await;
    }
    app.assert_nothing_due_within(Duration::from_secs(1)).await;
    let replay = |body: Value| {
        let (app, a, ep) = (&app, a.clone(), ep.clone());
        async move {
            let t = app
                .post(&format!("/app/{a}/endpoint/{ep}/bulk-replay"), body, 202)
                .await;
            let id = t["id"].as_str().unwrap().to_owned();
            while app.tasks.run_once().await.unwrap() > 0 {}
            task(app, &id).await["data"].clone()
        }
    };
    let d = replay(json!({ "since": SINCE, "eventTypes": ["invoice.refunded"] })).await;
    assert_eq!(
        (d["total"].clone(), d["queued"].clone()),
        (json!(1), json!(1)),
        "{d}"
    );
    let got = rx.wait_for_count(5, Duration::from_secs(5)).await;
    assert_eq!(got[4].header("webhook-id"), Some(refund.as_str()));
    app.settled().await;
    // All were delivered: none failed, every last answer was a 2xx.
    let d = replay(json!({ "since": SINCE, "status": 2 })).await;
    assert_eq!(d["queued"], 0, "{d}");
    let d = replay(json!({ "since": SINCE, "statusCodeClass": 500 })).await;
    assert_eq!(d["queued"], 0, "{d}");
    let d = replay(json!({ "since": SINCE, "status": 0, "statusCodeClass": 200 })).await;
    assert_eq!(d["queued"], 4, "{d}");
    rx.wait_for_count(9, Duration::from_secs(5)).await;

    for (body, field) in [
        (json!({ "since": SINCE, "status": 1 }), "status"),
        (
            json!({ "since": SINCE, "statusCodeClass": 250 }),
            "statusCodeClass",
        ),
        (json!({ "since": "yesterday" }), "since"),
        (
            json!({ "since": SINCE, "eventTypes": ["no spaces allowed"] }),
            "eventTypes",
        ),
        (
            json!({ "since": SINCE, "eventTypes": (0..101).map(|n| format!("t.{n}")).collect::<Vec<_>>() }),
            "eventTypes",
        ),
    ] {
        let e = app
            .post(&format!("/app/{a}/endpoint/{ep}/bulk-replay"), body, 422)
            .await;
        assert_eq!(e["detail"][0]["loc"][1], field, "{e}");
    }
    // A misspelled filter is refused, not left out (which would replay everything).
    for (body, field) in [
        (
            json!({ "since": SINCE, "eventType": ["order.created"] }),
            "eventType",
        ),
        (json!({ "since": SINCE, "statuscode": 500 }), "statuscode"),
    ] {
        let e = app
            .post(&format!("/app/{a}/endpoint/{ep}/bulk-replay"), body, 422)
            .await;
        assert!(
            e.to_string().contains(&format!("unknown field `{field}`")),
            "{e}"
        );
    }
    // A window that ends where or before it starts is refused, as the analytics refuse it.
    for until in ["2020-01-01T00:00:00Z", "2020-01-02T00:00:00Z"] {
        let window = json!({ "since": "2020-01-02T00:00:00Z", "until": until });
        let e = app
            .post(&format!("/app/{a}/endpoint/{ep}/bulk-replay"), window, 422)
            .await;
        assert_eq!(e["detail"][0]["loc"], json!(["body", "until"]), "{e}");
        assert_eq!(e["detail"][0]["msg"], "must be after since", "{e}");
    }
    app.get("/background-task/qtask_nope", 404).await;
    let listed = app.get("/background-task?limit=2", 200).await;
    assert_eq!(listed["data"].as_array().unwrap().len(), 2, "{listed}");
    assert_eq!(listed["done"], false, "{listed}");
}

#[tokio::test]
async fn recoveries_and_replays_of_missing_messages_are_tasks_to_look_up_and_filter_by() {
    let app = TestApp::spawn_with(|cfg| {
        cfg.tasks.run = false;
        cfg.delivery.retry_schedule = vec![Duration::ZERO];
    })
    .await;
    let rx = TestReceiver::start().await;
    rx.set_default(Reply::status(500));
    let a = app.create_app("shop").await;
    let url = format!("{}/hook", rx.url);
    let (failing, _) = app.create_endpoint(&a, json!({ "url": url })).await;
    let sent = [
        app.send(&a, "invoice.paid", json!({ "i": 1 })).await,
        app.send(&a, "invoice.paid", json!({ "i": 2 })).await,
    ];
    for m in &sent {
        app.wait_attempts(&a, m, 1, Duration::from_secs(5)).await;
    }
    app.assert_nothing_due_within(Duration::from_secs(1)).await;
    rx.set_default(Reply::status(200));
    let ep_path = |ep: &str| format!("/app/{a}/endpoint/{ep}");
    let window = json!({ "since": SINCE });
    let recovered = app
        .post(
            &format!("{}/recover", ep_path(&failing)),
            window.clone(),
            202,
        )
        .await;
    assert_eq!(recovered["count"], 2, "{recovered}");
    let (late, _) = app.create_endpoint(&a, json!({ "url": url })).await;
    let missed = app
        .post(
            &format!("{}/replay-missing", ep_path(&late)),
            window.clone(),
            202,
        )
        .await;
    assert_eq!(missed["count"], 2, "{missed}");
    let bulk = app
        .post(&format!("{}/bulk-replay", ep_path(&late)), window, 202)
        .await;

    // Each answer's id is a task that can be looked up afterwards.
    for (answer, kind, ep) in [
        (&recovered, "endpoint.recover", &failing),
        (&missed, "endpoint.replay", &late),
    ] {
        let t = task(&app, answer["id"].as_str().unwrap()).await;
        assert_eq!(
            (&t["task"], &t["status"], &t["id"]),
            (&json!(kind), &json!("finished"), &answer["id"]),
            "{t}"
        );
        assert_eq!(t["data"]["endpointId"], json!(ep), "{t}");
        assert_eq!(t["data"]["queued"], 2, "{t}");
        assert_eq!(t["data"]["percent"], 100, "{t}");
    }
    let ids = |v: Value| -> Vec<String> {
        v["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let id = |v: &Value| v["id"].as_str().unwrap().to_owned();
    assert_eq!(
        ids(app.get("/background-task", 200).await),
        [id(&bulk), id(&missed), id(&recovered)],
        "newest first"
    );
    assert_eq!(
        ids(app.get("/background-task?task=endpoint.recover", 200).await),
        [id(&recovered)]
    );
    assert_eq!(
        ids(app.get("/background-task?task=endpoint.replay", 200).await),
        [id(&bulk), id(&missed)]
    );
    assert_eq!(
        ids(app.get("/background-task?status=running", 200).await),
        [id(&bulk)]
    );
    assert_eq!(
        ids(app
            .get("/background-task?status=finished&task=endpoint.replay", 200)
            .await),
        [id(&missed)]
    );
    assert!(ids(app
        .get("/background-task?task=application.stats", 200)
        .await)
    .is_empty());
    let e = app.get("/background-task?status=stuck", 422).await;
    assert_eq!(e["detail"][0]["loc"], json!(["query", "status"]), "{e}");
    // The console lists them beside the bulk replays, saying which is which.
    let mut c = crate::support::console::Console::first_admin(&app).await;
    let page = c.page("/admin/tasks").await;
    for said in [
        "Failed deliveries retried: ",
        "Missed messages sent: ",
        "2 of 2 · finished",
    ] {
        assert!(page.contains(said), "{said}: {page}");
    }
}

#[tokio::test]
async fn the_console_starts_a_replay_and_lists_it_with_its_progress() {
    let app = TestApp::spawn_with(|cfg| cfg.tasks.run = false).await;
    let rx = TestReceiver::start().await;
    let a = app.create_app("shop").await;
    send_many(&app, &a, 3, 3).await;
    let (ep, _) = app
        .create_endpoint(&a, json!({ "url": format!("{}/hook", rx.url) }))
        .await;
    let mut c = crate::support::console::Console::first_admin(&app).await;
    let tab = format!("/admin/apps/{a}/endpoints/{ep}/replay");
    let form = c.page(&tab).await;
    assert!(form.contains("No replay yet."), "{form}");
    let r = c.submit(&tab, &[("since", "yesterday")]).await;
    assert_eq!(r.status, 422);
    assert!(
        r.body.contains("Give the time to replay from"),
        "{}",
        r.body
    );
    let backwards = [("since", "2026-01-02T00:00"), ("until", "2026-01-01T00:00")];
    let r = c.submit(&tab, &backwards).await;
    assert_eq!(r.status, 422);
    assert!(r.body.contains("until: must be after since"), "{}", r.body);
    // A disabled endpoint is told so next to the form, and nothing starts.
    let path = format!("/app/{a}/endpoint/{ep}");
    app.call("PATCH", &path, Some(json!({ "disabled": true })), 200)
        .await;
    let window = [("since", "2000-01-01T00:00"), ("outcome", "")];
    let r = c.submit(&tab, &window).await;
    assert_eq!(r.status, 422);
    assert!(r.body.contains("endpoint is disabled"), "{}", r.body);
    assert!(r.body.contains("No replay yet."), "{}", r.body);
    app.call("PATCH", &path, Some(json!({ "disabled": false })), 200)
        .await;
    let r = c.submit(&tab, &window).await;
    assert_eq!(r.status, 303, "{}", r.body);
    let page = c.page(&tab).await;
    assert!(page.contains("0 of 3 · running"), "{page}");
    while app.tasks.run_once().await.unwrap() > 0 {}
    let page = c.page(&tab).await;
    assert!(page.contains("3 of 3 · finished"), "{page}");
    assert!(page.contains(r#"<progress value="3" max="3""#), "{page}");
    rx.wait_for_count(3, Duration::from_secs(5)).await;
    let all = c.page("/admin/tasks").await;
    assert!(
        all.contains(&ep) && all.contains("3 of 3 · finished"),
        "{all}"
    );
}
