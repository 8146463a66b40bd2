//! A database that goes away and comes back (PostgreSQL, behind a proxy that cuts every
//! connection): requests are refused with 503 and a clear reason meanwhile, nothing breaks for
//! good, and everything works again once the database answers; and a node only busy with its
//! database is not taken for one that cannot reach it.

use crate::support::console::Console;
use crate::support::proxy::Proxy;
use crate::support::{test_config, wait_for, TestApp, TestReceiver};
use serde_json::{json, Value};
use std::time::Duration;

/// A server whose database connections go through a proxy the test can cut.
async fn app_behind_proxy() -> (TestApp, Proxy) {
    app_behind_proxy_with(|_| {}).await
}

/// As [`app_behind_proxy`], configured by `tune` too.
async fn app_behind_proxy_with(
    tune: impl FnOnce(&mut hookbox::config::Config),
) -> (TestApp, Proxy) {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = test_config(dir.path());
    tune(&mut cfg);
    let url = cfg.database_url.clone().expect("a database URL");
    let (user, rest) = url.rsplit_once('@').expect("postgres://USER@HOST:PORT/DB");
    let (host_port, db) = rest.split_once('/').expect("…/DB");
    let proxy = Proxy::start(host_port).await;
    cfg.database_url = Some(format!("{user}@{}/{db}", proxy.addr));
    (TestApp::start(cfg, dir).await, proxy)
}

/// Posts one message; returns the status, the `Retry-After` header and the body.
async fn post_message(app: &TestApp, a: &str) -> (u16, Option<String>, Value) {
    let resp = app
        .client
        .post(format!("{}/app/{a}/msg", app.base))
        .bearer_auth(&app.token)
        .json(&json!({ "eventType": "x.y", "payload": { "n": 1 } }))
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let retry_after = resp
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    let body = resp.json().await.unwrap_or(Value::Null);
    (status, retry_after, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_the_database_cannot_be_reached_requests_get_503_and_it_all_works_again_after() {
    crate::postgres_only!("only a database across a network can go away");
    let (app, proxy) = app_behind_proxy().await;
    let rx = TestReceiver::start().await;
    let a = app.create_app("a").await;
    app.create_endpoint(&a, json!({ "url": format!("{}/hook", rx.url) }))
        .await;
    let mut console = Console::first_admin(&app).await;
    assert_eq!(post_message(&app, &a).await.0, 202);
    rx.wait_for_count(1, Duration::from_secs(10)).await;

    proxy.cut().await;
    let (status, retry_after, body) = post_message(&app, &a).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["code"], "database_unavailable", "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("cannot reach its database"),
        "{body}"
    );
    assert_eq!(retry_after.as_deref(), Some("5"));
    assert_eq!(
        app.raw("GET", &format!("/app/{a}/msg"), Vec::new()).await.0,
        503
    );
    let (status, health) = app.raw("GET", "/health", Vec::new()).await;
    assert_eq!(status, 503);
    assert!(health.contains("\"database_unavailable\""), "{health}");
    // The node's own figures can still be scraped; what the database counts is left out.
    let metrics = crate::observability::scrape(&app).await;
    assert_eq!(
        crate::observability::get(&metrics, "hookbox_database_reachable"),
        0.0
    );
    assert_eq!(
        crate::observability::get(&metrics, "hookbox_messages_ingested_total"),
        1.0
    );
    assert!(
        !metrics
            .keys()
            .any(|k| k.starts_with("hookbox_queue_deliveries")),
        "{metrics:?}"
    );
    let page = console.get(&format!("/admin/apps/{a}/webhooks")).await;
    assert_eq!(page.status, 503, "{}", page.body);
    assert!(
        page.body.contains("cannot reach its database"),
        "{}",
        page.body
    );

    proxy.restore();
    assert!(
        wait_for(Duration::from_secs(15), || async {
            post_message(&app, &a).await.0 == 202
        })
        .await,
        "the server takes messages again once the database is back"
    );
    assert_eq!(app.raw("GET", "/health", Vec::new()).await.0, 204);
    let metrics = crate::observability::scrape(&app).await;
    assert_eq!(
        crate::observability::get(&metrics, "hookbox_database_reachable"),
        1.0
    );
    assert_eq!(
        console
            .get(&format!("/admin/apps/{a}/webhooks"))
            .await
            .status,
        200
    );
    // The message taken once it was back is delivered; none of those refused is.
    rx.wait_for_count(2, Duration::from_secs(10)).await;
    app.settled().await;
    assert_eq!(rx.count(), 2);
    let listed = app.get(&format!("/app/{a}/msg"), 200).await;
    assert_eq!(listed["data"].as_array().unwrap().len(), 2, "{listed}");
}

/// A message sent with `key` as its `Idempotency-Key`; the status and the body.
async fn post_keyed(app: &TestApp, a: &str, key: &str) -> (u16, Value) {
    let body = json!({ "eventType": "x.y", "payload": { "key": key } });
    app.post_keyed(&format!("/app/{a}/msg"), body, key).await
}

/// A database server that stops answering while its host still acknowledges every packet (a
/// frozen process: no connection breaks, no TCP timeout fires) holds no request longer than
/// `answer_timeout`: each gets 503 saying that what it asked for may or may not have been
/// done, and a message sent again with the same idempotency key is stored once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_database_holds_no_request_past_the_answer_timeout() {
    crate::postgres_only!("only a database across a network can freeze apart from hookbox");
    let (app, proxy) = app_behind_proxy_with(|cfg| {
        cfg.answer_timeout = Duration::from_secs(2);
    })
    .await;
    let rx = TestReceiver::start().await;
    let a = app.create_app("a").await;
    app.create_endpoint(&a, json!({ "url": format!("{}/hook", rx.url) }))
        .await;
    assert_eq!(post_message(&app, &a).await.0, 202);
    rx.wait_for_count(1, Duration::from_secs(10)).await;

    proxy.freeze();
    let asked = std::time::Instant::now();
    let (status, body) = post_keyed(&app, &a, "frozen-1").await;
    let waited = asked.elapsed();
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["code"], "not_answered", "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("same idempotency key"),
        "{body}"
    );
    assert!(
        waited >= Duration::from_secs(2) && waited < Duration::from_secs(10),
        "{waited:?}"
    );
    let (status, listed) = app.raw("GET", &format!("/app/{a}/msg"), Vec::new()).await;
    assert_eq!(status, 503, "{listed}");

    proxy.thaw();
    // Sent again until it is taken: stored once, whether or not the first one was.
    assert!(
        wait_for(Duration::from_secs(30), || async {
            post_keyed(&app, &a, "frozen-1").await.0 == 202
        })
        .await,
        "the server takes messages again once the database answers"
    );
    rx.wait_for_count(2, Duration::from_secs(15)).await;
    app.settled().await;
    assert_eq!(rx.count(), 2);
    let listed = app.get(&format!("/app/{a}/msg"), 200).await;
    assert_eq!(listed["data"].as_array().unwrap().len(), 2, "{listed}");
}

/// A node whose every connection is at work (here: waiting on a lock another session holds)
/// is busy, not cut off: its health check answers 204 at once rather than waiting for a free
/// connection and calling the database unreachable, which would take a loaded node out of its
/// load balancer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_whose_every_connection_is_at_work_is_still_healthy() {
    crate::postgres_only!("only PostgreSQL has a pool of connections");
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = test_config(dir.path());
    cfg.database.pool_size = 2;
    // A heartbeat a second, recent for half a minute: however slow the machine, the node
    // counts as busy (not cut off) while the test holds every connection.
    cfg.database.heartbeat_interval = Duration::from_secs(1);
    cfg.database.node_timeout = Duration::from_secs(60);
    let url = cfg.database_url.clone().expect("a database URL");
    let app = TestApp::start(cfg, dir).await;
    let a = app.create_app("a").await;
    assert_eq!(app.raw("GET", "/health", Vec::new()).await.0, 204);

    let (other, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    other
        .batch_execute("BEGIN; LOCK TABLE messages IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    // Two listings, one per connection, each waiting on the lock.
    let listings: Vec<_> = (0..2)
        .map(|_| {
            let (client, url, token) = (
                app.client.clone(),
                format!("{}/app/{a}/msg", app.base),
                app.token.clone(),
            );
            tokio::spawn(async move {
                let resp = client.get(url).bearer_auth(token).send().await.unwrap();
                resp.status().as_u16()
            })
        })
        .collect();
    let waiting = || async {
        let rows = other
            .query(
                "SELECT count(*) FROM pg_stat_activity
                 WHERE datname = current_database() AND wait_event_type = 'Lock'",
                &[],
            )
            .await
            .unwrap();
        rows[0].get::<_, i64>(0) == 2
    };
    assert!(
        wait_for(Duration::from_secs(10), waiting).await,
        "both connections wait on the lock"
    );

    let (status, body) = app.raw("GET", "/health", Vec::new()).await;
    assert_eq!(status, 204, "{body}");

    other.batch_execute("COMMIT").await.unwrap();
    for listing in listings {
        assert_eq!(listing.await.unwrap(), 200);
    }
}
