//! Payload filters: an endpoint takes only the messages its filter expression is true for.

use crate::support::{TestApp, TestReceiver};
use serde_json::{json, Value};
use std::time::Duration;

const BIG_EUR_OR_USD: &str = r#"payload.amount >= 1000 && payload.currency in ["EUR", "USD"]"#;

#[tokio::test]
async fn only_messages_the_filter_takes_are_sent_and_the_others_show_as_filtered() {
    let app = TestApp::spawn().await;
    let filtered_rx = TestReceiver::start().await;
    let plain_rx = TestReceiver::start().await;
    let a = app.create_app("shop").await;
    let (ep, _) = app
        .create_endpoint(
            &a,
            json!({ "url": format!("{}/hook", filtered_rx.url), "filter": BIG_EUR_OR_USD }),
        )
        .await;
    let (plain, _) = app
        .create_endpoint(&a, json!({ "url": format!("{}/hook", plain_rx.url) }))
        .await;
    let shown = app.get(&format!("/app/{a}/endpoint/{ep}"), 200).await;
    assert_eq!(shown["filter"], BIG_EUR_OR_USD);
    let shown = app.get(&format!("/app/{a}/endpoint/{plain}"), 200).await;
    assert_eq!(shown["filter"], Value::Null);

    let small = app
        .send(
            &a,
            "invoice.paid",
            json!({ "amount": 20, "currency": "EUR" }),
        )
        .await;
    let pounds = app
        .send(
            &a,
            "invoice.paid",
            json!({ "amount": 5000, "currency": "GBP" }),
        )
        .await;
    // The filter reads a field this message lacks: it cannot tell, so the message is not
    // sent, and why is recorded with the delivery.
    let no_amount = app
        .send(
            &a,
            "invoice.paid",
            json!({ "total": 5000, "currency": "EUR" }),
        )
        .await;
    let big = app
        .send(
            &a,
            "invoice.paid",
            json!({ "amount": 1000.0, "currency": "USD" }),
        )
        .await;

    // Filtering happens when the message is taken: the deliveries it filtered out are final
    // at once, and have no attempt. They show as canceled (Svix's SDKs know no other status
    // for a message not sent), and say they were filtered.
    for m in [&small, &pounds, &no_amount] {
        let d = app.delivery(&a, m, &ep).await;
        assert_eq!(
            (
                d["status"].clone(),
                d["statusText"].clone(),
                d["filtered"].clone()
            ),
            (json!(4), json!("canceled"), json!(true)),
            "{d}"
        );
        assert_eq!(d["nextAttempt"], Value::Null);
    }
    assert_eq!(app.delivery(&a, &big, &ep).await["filtered"], false);
    assert_eq!(
        app.delivery(&a, &small, &ep).await["filterError"],
        Value::Null
    );
    let why = app.delivery(&a, &no_amount, &ep).await["filterError"].clone();
    assert!(why.as_str().unwrap().contains("amount"), "{why}");

    let got = filtered_rx.wait_for_count(1, Duration::from_secs(5)).await;
    assert_eq!(got[0].header("webhook-id"), Some(big.as_str()));
    plain_rx.wait_for_count(4, Duration::from_secs(5)).await;
    app.wait_attempts(&a, &big, 2, Duration::from_secs(5)).await;
    for m in [&small, &pounds, &no_amount] {
        let attempts = app.attempts(&a, m).await;
        assert!(
            attempts.iter().all(|t| t["endpointId"] == plain),
            "{attempts:?}"
        );
    }
    app.assert_nothing_due_within(Duration::from_secs(3600))
        .await;
    assert_eq!(filtered_rx.count(), 1);

    // Counted, and the endpoint is not held against the filter's errors.
    let stats = app.get(&format!("/app/{a}/endpoint/{ep}/stats"), 200).await;
    assert_eq!(
        (stats["success"].clone(), stats["filtered"].clone()),
        (json!(1), json!(3))
    );
    let shown = app.get(&format!("/app/{a}/endpoint/{ep}"), 200).await;
    assert_eq!(shown["disabled"], false);
    let filtered = app
        .get(&format!("/app/{a}/endpoint/{ep}/msg?status=5"), 200)
        .await;
    assert_eq!(filtered["data"].as_array().unwrap().len(), 3, "{filtered}");
    // Canceled (4) lists them too: they are what the API shows as canceled.
    let canceled = app
        .get(&format!("/app/{a}/endpoint/{ep}/msg?status=4"), 200)
        .await;
    let canceled = canceled["data"].as_array().unwrap();
    assert_eq!(canceled.len(), 3, "{canceled:?}");
    assert!(canceled
        .iter()
        .all(|d| d["filtered"] == true && d["status"] == 4));
}

#[tokio::test]
async fn a_filter_that_does_not_compile_is_a_422_saying_where_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let rx = TestReceiver::start().await;
    let a = app.create_app("shop").await;
    let url = format!("{}/hook", rx.url);

    let e = app
        .post(
            &format!("/app/{a}/endpoint"),
            json!({ "url": url, "filter": "payload.amount >= " }),
            422,
        )
        .await;
    let detail = &e["detail"][0];
    assert_eq!(detail["loc"], json!(["body", "filter"]), "{e}");
    assert!(
        detail["msg"]
            .as_str()
            .unwrap()
            .starts_with("line 1, column "),
        "{e}"
    );
    let e = app
        .post(
            &format!("/app/{a}/endpoint"),
            json!({ "url": url, "filter": "payload.a == 1 &&\n  amount > 3" }),
            422,
        )
        .await;
    let msg = e["detail"][0]["msg"].as_str().unwrap();
    assert!(
        msg.starts_with("line 2, column 3: unknown name `amount`"),
        "{msg}"
    );
    let nested = json!({ "url": url, "filter": "payload.a.all(x, x.exists(y, y == 1))" });
    app.post(&format!("/app/{a}/endpoint"), nested, 422).await;
    let list = app.get(&format!("/app/{a}/endpoint"), 200).await;
    assert_eq!(
        list["data"].as_array().unwrap().len(),
        0,
        "nothing was created"
    );

    let (ep, _) = app
        .create_endpoint(&a, json!({ "url": url, "filter": "payload.n == 1" }))
        .await;
    let path = format!("/app/{a}/endpoint/{ep}");
    let e = app
        .call(
            "PATCH",
            &path,
            Some(json!({ "description": "changed", "filter": "payload.n ==" })),
            422,
        )
        .await;
    assert_eq!(e["detail"][0]["loc"], json!(["body", "filter"]), "{e}");
    let put = json!({ "url": url, "description": "changed", "filter": "(" });
    app.call("PUT", &path, Some(put), 422).await;
    let shown = app.get(&path, 200).await;
    assert_eq!(
        (shown["filter"].clone(), shown["description"].clone()),
        (json!("payload.n == 1"), json!(""))
    );

    // A new filter applies to the next message; null (or blank) removes it.
    app.call(
        "PATCH",
        &path,
        Some(json!({ "filter": "payload.n == 2" })),
        200,
    )
    .await;
    let one = app.send(&a, "a.b", json!({ "n": 1 })).await;
    let two = app.send(&a, "a.b", json!({ "n": 2 })).await;
    assert_eq!(app.delivery(&a, &one, &ep).await["filtered"], true);
    assert_eq!(app.delivery(&a, &two, &ep).await["filtered"], false);
    let shown = app
        .call("PATCH", &path, Some(json!({ "filter": null })), 200)
        .await;
    assert_eq!(shown["filter"], Value::Null);
    let again = app.send(&a, "a.b", json!({ "n": 1 })).await;
    assert_eq!(app.delivery(&a, &again, &ep).await["filtered"], false);
    let shown = app
        .call("PATCH", &path, Some(json!({ "filter": "  " })), 200)
        .await;
    assert_eq!(shown["filter"], Value::Null);
}

#[tokio::test]
async fn replaying_missed_messages_sends_only_those_the_filter_takes() {
    let app = TestApp::spawn().await;
    let rx = TestReceiver::start().await;
    let a = app.create_app("shop").await;
    let since = "2000-01-01T00:00:00Z";
    let wanted = app
        .send(&a, "order.created", json!({ "country": "FR" }))
        .await;
    app.send(&a, "order.created", json!({ "country": "US" }))
        .await;
    app.send(&a, "order.created", json!({ "region": "EU" }))
        .await;
    let (ep, _) = app
        .create_endpoint(
            &a,
            json!({ "url": format!("{}/hook", rx.url), "filter": r#"payload.country == "FR""# }),
        )
        .await;
    let v = app
        .post(
            &format!("/app/{a}/endpoint/{ep}/replay-missing"),
            json!({ "since": since }),
            202,
        )
        .await;
    assert_eq!(v["count"], 1);
    let got = rx.wait_for_count(1, Duration::from_secs(5)).await;
    assert_eq!(got[0].header("webhook-id"), Some(wanted.as_str()));

    // Filtered out while the filter could not tell; once the filter is mended, replaying
    // sends it (and the one from before the endpoint that it now takes), and its error goes.
    let eu = app
        .send(&a, "order.created", json!({ "region": "EU" }))
        .await;
    assert!(app.delivery(&a, &eu, &ep).await["filterError"].is_string());
    let mended = json!({ "filter": r#"has(payload.region) || payload.country == "FR""# });
    app.call(
        "PATCH",
        &format!("/app/{a}/endpoint/{ep}"),
        Some(mended),
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
    rx.wait_for_count(3, Duration::from_secs(5)).await;
    app.wait_attempts(&a, &eu, 1, Duration::from_secs(5)).await;
    let d = app.delivery(&a, &eu, &ep).await;
    assert_eq!(
        (d["statusText"].clone(), d["filterError"].clone()),
        (json!("success"), Value::Null),
        "{d}"
    );
    app.assert_nothing_due_within(Duration::from_secs(3600))
        .await;
    assert_eq!(rx.count(), 3);
}

#[tokio::test]
async fn the_console_tests_a_filter_without_saving_it_then_saves_it_and_lists_what_it_filtered() {
    let app = TestApp::spawn().await;
    let a = app.create_app("shop").await;
    let (ep, _) = app
        .create_endpoint(&a, json!({ "url": "http://127.0.0.1:9/" }))
        .await;
    let recent = app
        .send(
            &a,
            "invoice.paid",
            json!({ "amount": 50, "currency": "EUR" }),
        )
        .await;
    let mut c = crate::support::console::Console::first_admin(&app).await;
    let settings = format!("/admin/apps/{a}/endpoints/{ep}/settings");
    let form = c.page(&settings).await;
    assert!(
        form.contains(&recent),
        "recent messages are offered: {form}"
    );
    let base = [
        ("url", "http://127.0.0.1:9/"),
        ("all_events", "1"),
        ("filter", BIG_EUR_OR_USD),
        ("filter_event_type", "invoice.paid"),
    ];
    let test = |example: &'static str, message: &'static str| {
        [
            base.as_slice(),
            &[
                ("filter_example", example),
                ("filter_message", message),
                ("action", "test-filter"),
            ],
        ]
        .concat()
    };
    let r = c
        .submit(
            &settings,
            &test(r#"{"amount": 1200, "currency": "USD"}"#, ""),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.body.contains("Sent: the filter takes this message."),
        "{}",
        r.body
    );
    let r = c.submit(&settings, &test(r#"{"amount": 1200}"#, "")).await;
    assert!(r.body.contains("the filter cannot tell"), "{}", r.body);
    let r = c.submit(&settings, &test("{not json", "")).await;
    assert!(
        r.body.contains("The example payload is not JSON"),
        "{}",
        r.body
    );
    // Against the recent message (50 EUR), whatever the example says.
    let with_recent = [
        &test(r#"{"amount": 1200, "currency": "USD"}"#, "")[..4],
        &[
            ("filter_example", r#"{"amount": 1200, "currency": "USD"}"#),
            ("filter_message", recent.as_str()),
            ("action", "test-filter"),
        ],
    ]
    .concat();
    let r = c.submit(&settings, &with_recent).await;
    assert!(
        r.body.contains("Filtered out: the filter does not take"),
        "{}",
        r.body
    );
    let bad = [
        ("url", "http://127.0.0.1:9/"),
        ("all_events", "1"),
        ("filter", "payload.amount >="),
        ("filter_example", "{}"),
        ("action", "test-filter"),
    ];
    let r = c.submit(&settings, &bad).await;
    assert!(
        r.body.contains("The filter does not compile."),
        "{}",
        r.body
    );
    assert!(r.body.contains("line 1, column"), "{}", r.body);
    // Testing saved nothing.
    let v = app.get(&format!("/app/{a}/endpoint/{ep}"), 200).await;
    assert_eq!(v["filter"], Value::Null);

    // Saving a filter that does not compile is refused next to the field; a good one is
    // saved and shown.
    let r = c.submit(&settings, &bad[..3]).await;
    assert_eq!(r.status, 422);
    assert!(r.body.contains("line 1, column"), "{}", r.body);
    let r = c.submit(&settings, &base).await;
    assert_eq!(r.status, 303, "{}", r.body);
    let v = app.get(&format!("/app/{a}/endpoint/{ep}"), 200).await;
    assert_eq!(v["filter"], BIG_EUR_OR_USD);
    let overview = c.page(&format!("/admin/apps/{a}/endpoints/{ep}")).await;
    assert!(overview.contains("payload.amount &gt;= 1000"), "{overview}");

    let small = app
        .send(
            &a,
            "invoice.paid",
            json!({ "amount": 3, "currency": "EUR" }),
        )
        .await;
    let missing = app.send(&a, "invoice.paid", json!({ "n": 1 })).await;
    let logs = c
        .page(&format!(
            "/admin/apps/{a}/endpoints/{ep}/logs?status=filtered"
        ))
        .await;
    assert!(logs.contains(&small) && logs.contains(&missing), "{logs}");
    assert!(logs.contains("the filter does not take it"), "{logs}");
    assert!(logs.contains("the filter cannot tell"), "{logs}");
    assert!(!logs.contains(&recent), "sent before the filter: {logs}");
}
