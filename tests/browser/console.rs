//! The console clicked through in Chromium: each test starts its own hookbox, browser and
//! receiver, and checks real outcomes (signed requests received, API state changed).
//!
//! A new test: `let Some(mut c) = Console::start("name").await else { return };`, then steps
//! with the harness's helpers (`open` only for a link a person would paste, then
//! `click_link`, `fill`, `check`, `select`, `click_button`, `screenshot`), asserting through
//! `c.api` and `c.receiver` what really happened.

use crate::harness::{Console, WAIT};
use crate::support::receiver::Reply;
use crate::support::{signature_valid, wait_for};
use fantoccini::Locator;
use serde_json::{json, Value};
use std::collections::BTreeSet;

const RECEIVER_SAYS: &str = r#"{"thanks":"from the receiver"}"#;

/// The event catalog every test starts with; endpoints subscribe to the first two.
async fn catalog(c: &Console) {
    c.api
        .create_event_type("invoice.paid", "An invoice was paid")
        .await;
    c.api
        .create_event_type("invoice.failed", "A payment failed")
        .await;
    c.api
        .create_event_type("customer.created", "A customer signed up")
        .await;
}

/// Logged in, with the application `Shop` (uid `shop`) and an endpoint for
/// `invoice.paid` and `invoice.failed` at the receiver; the browser is on its overview.
/// Returns the endpoint id.
async fn shop_with_endpoint(c: &Console) -> String {
    catalog(c).await;
    c.open_and_log_in().await;
    c.create_app("Shop", "shop").await;
    let url = format!("{}/hooks/shop", c.receiver.url);
    c.add_endpoint(&url, "Billing", &["invoice.paid", "invoice.failed"])
        .await
}

/// The signing secret, revealed on the endpoint's overview.
async fn reveal(c: &Console) -> String {
    c.click_button("Reveal").await;
    let secret = c.text_of("secret-value").await;
    assert!(secret.starts_with("whsec_"), "{secret}");
    secret
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoint_added_in_the_console_receives_a_signed_test_event() {
    let Some(mut c) = Console::start("endpoint").await else {
        return;
    };
    catalog(&c).await;
    c.receiver.set_default(
        Reply::status(200)
            .header("content-type", "application/json")
            .body(RECEIVER_SAYS),
    );

    // Log in: the console sends a visitor without a session to the login form.
    c.open("/admin").await;
    assert!(
        c.path().await.starts_with("/admin/login"),
        "{}",
        c.path().await
    );
    c.screenshot("login").await;
    c.log_in().await;
    c.screenshot("dashboard").await;

    // The browser refuses to send the form while the required name is empty.
    c.click_link("Applications").await;
    c.button("Create application").await.click().await.unwrap();
    let hint = c
        .field("name")
        .await
        .prop("validationMessage")
        .await
        .unwrap();
    assert!(hint.is_some_and(|h| !h.is_empty()), "no validation message");
    assert_eq!(c.path().await, "/admin/apps");
    c.assert_shows("No applications yet").await;

    c.create_app("Shop", "shop").await;
    assert_eq!(c.api.get("/app/shop").await["name"], "Shop");

    // Add Endpoint, for two of the three event types.
    let url = format!("{}/hooks/shop", c.receiver.url);
    c.click_link("Add Endpoint").await;
    c.fill_endpoint_form(&url, "Billing", &["invoice.paid", "invoice.failed"])
        .await;
    assert!(!c.is_checked("events", "customer.created").await);
    c.screenshot("add-endpoint").await;
    c.click_button("Create").await;
    assert_eq!(c.notice().await, "Endpoint added.", "{}", c.context().await);
    let ep = c.prop("Endpoint ID").await;
    let events = c.prop("Events").await;
    assert!(events.contains("invoice.paid") && events.contains("invoice.failed"));
    assert!(!events.contains("customer.created"), "{events}");
    c.screenshot("endpoint-overview").await;
    let api_ep = c.api.get(&format!("/app/shop/endpoint/{ep}")).await;
    assert_eq!(api_ep["url"], url.as_str());
    assert_eq!(api_ep["description"], "Billing");
    let types: BTreeSet<&str> = api_ep["filterTypes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert_eq!(types, BTreeSet::from(["invoice.failed", "invoice.paid"]));

    // The signing secret, as a person would copy it from the page.
    let secret = reveal(&c).await;
    let copy = c.button("Copy").await;
    copy.click().await.unwrap();
    let copied = wait_for(WAIT, || async {
        copy.text().await.is_ok_and(|t| t.trim() == "Copied")
    })
    .await;
    assert!(copied, "the Copy button confirms {}", c.context().await);
    let api_secret = c.api.get(&format!("/app/shop/endpoint/{ep}/secret")).await;
    assert_eq!(api_secret["key"], secret.as_str());

    // Send Test Event: the payload box shows the chosen type's example (the page's script
    // fills it in) until it is edited; the receiver's answer is shown inline.
    c.click_link("Testing").await;
    c.select("event_type", "invoice.paid").await;
    let example = c.field("payload").await.prop("value").await.unwrap();
    assert!(
        example.is_some_and(|e| e.contains("\"invoice.paid\"")),
        "the payload box shows invoice.paid's example"
    );
    c.fill("payload", r#"{"invoice": "inv_42", "amount": 1200}"#)
        .await;
    c.click_button("Send Test Event").await;
    assert_eq!(c.text_of("test-code").await, "200", "{}", c.context().await);
    assert!(c.text_of("test-body").await.contains("from the receiver"));
    c.screenshot("testing-result").await;
    let got = c.receiver.wait_for_count(1, WAIT).await;
    let test = &got[0];
    assert_eq!(test.path, "/hooks/shop");
    assert_eq!(test.json(), json!({"invoice": "inv_42", "amount": 1200}));
    let (msg_id, ts, sig) = test.signed();
    assert!(
        signature_valid(&secret, msg_id, ts, &test.body, sig),
        "the test event is signed with the revealed secret"
    );

    // Message Logs show the attempt; its detail shows what was sent and answered.
    c.click_link("Message Logs").await;
    let row = c
        .find(Locator::XPath(
            "//tbody/tr[td[normalize-space()='invoice.paid']]",
        ))
        .await;
    let row_text = row.text().await.unwrap();
    assert!(
        row_text.contains("Succeeded") && row_text.contains("200"),
        "{row_text}"
    );
    c.screenshot("message-logs").await;
    c.click_link("Details").await;
    assert_eq!(c.prop("Message ID").await, msg_id);
    assert_eq!(c.prop("Event type").await, "invoice.paid");
    assert_eq!(c.prop("Sent to").await, url);
    assert!(c.prop("Response code").await.contains("200"));
    let shown: Value = serde_json::from_str(&c.text_of("request-body").await).unwrap();
    assert_eq!(
        shown,
        test.json(),
        "the request body shown is the one received"
    );
    assert!(c
        .text_of("response-body")
        .await
        .contains("from the receiver"));
    c.screenshot("attempt-detail").await;

    // The two chosen event types reach the endpoint; the third does not.
    let skipped = c
        .api
        .send("shop", "customer.created", json!({"n": 1}))
        .await;
    let failed = c.api.send("shop", "invoice.failed", json!({"n": 2})).await;
    c.receiver.wait_for_count(2, WAIT).await;
    // The unchosen type made no delivery at all, so nothing is left to send it later.
    let to = c
        .api
        .get(&format!("/app/shop/msg/{skipped}/endpoint"))
        .await;
    assert_eq!(to["data"], json!([]), "{to}");
    let ids: Vec<String> = c
        .receiver
        .received()
        .iter()
        .map(|r| r.signed().0.to_owned())
        .collect();
    assert_eq!(ids.len(), 2, "{ids:?}");
    assert!(ids.contains(&failed) && !ids.contains(&skipped), "{ids:?}");

    c.click_link("Event catalog").await;
    for t in ["invoice.paid", "invoice.failed", "customer.created"] {
        c.assert_shows(t).await;
    }
    c.screenshot("event-catalog").await;

    c.click_link("Applications").await;
    let row = c
        .find(Locator::XPath("//tbody/tr[td[normalize-space()='Shop']]"))
        .await;
    assert!(row.text().await.unwrap().contains("shop"));
    c.screenshot("applications").await;
    c.click_link("Shop").await;
    assert_eq!(c.heading().await, "Webhooks");
    c.assert_shows(&url).await;
    c.screenshot("webhooks").await;

    // The dashboard counts the two deliveries (the test send and `invoice.failed`).
    c.click_link("Dashboard").await;
    assert_eq!(
        c.text_of("stat-succeeded").await,
        "2",
        "{}",
        c.context().await
    );
    assert_eq!(c.text_of("stat-failed").await, "0");
    c.screenshot("dashboard-activity").await;
    c.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_secret_is_revealed_and_rotated() {
    let Some(mut c) = Console::start("secret").await else {
        return;
    };
    let ep = shop_with_endpoint(&c).await;
    let old = reveal(&c).await;
    c.screenshot("secret-revealed").await;

    c.expand("Rotate the secret").await;
    c.click_button("Rotate secret").await;
    assert!(
        c.notice().await.starts_with("Signing secret rotated."),
        "{}",
        c.context().await
    );
    assert!(c.displayed(Locator::Id("secret-value")).await.is_empty());
    let new = reveal(&c).await;
    assert_ne!(new, old, "rotating made a new secret");
    let api_secret = c.api.get(&format!("/app/shop/endpoint/{ep}/secret")).await;
    assert_eq!(api_secret["key"], new.as_str());

    // Deliveries are signed with the new secret, and with the old one during the grace
    // period.
    c.api
        .send("shop", "invoice.paid", json!({"after": "rotation"}))
        .await;
    let got = c.receiver.wait_for_count(1, WAIT).await;
    let (id, ts, sig) = got[0].signed();
    assert!(signature_valid(&new, id, ts, &got[0].body, sig), "{sig}");
    assert!(signature_valid(&old, id, ts, &got[0].body, sig), "{sig}");
    c.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabled_endpoint_replays_what_it_missed_when_enabled() {
    let Some(mut c) = Console::start("disable").await else {
        return;
    };
    let ep = shop_with_endpoint(&c).await;
    let ep_path = format!("/app/shop/endpoint/{ep}");

    c.click_button("Disable").await;
    assert!(c.notice().await.starts_with("Endpoint disabled."));
    assert_eq!(c.api.get(&ep_path).await["disabled"], true);

    let sent = BTreeSet::from([
        c.api
            .send("shop", "invoice.paid", json!({"while": "off"}))
            .await,
        c.api
            .send("shop", "invoice.failed", json!({"while": "off"}))
            .await,
    ]);
    // The overview tells what arrived meanwhile (reloading until both are counted).
    let counted = wait_for(WAIT, || async {
        c.browser.refresh().await.unwrap();
        c.page_text()
            .await
            .contains("2 message(s) arrived meanwhile")
    })
    .await;
    assert!(counted, "{}", c.context().await);
    assert_eq!(c.receiver.count(), 0, "nothing is sent while disabled");

    c.click_link("Enable").await;
    assert_eq!(c.text_of("skipped-count").await, "2");
    assert!(c.is_checked("replay", "1").await, "replay is offered");
    c.screenshot("enable-with-replay").await;
    c.click_button("Enable endpoint").await;
    assert_eq!(
        c.notice().await,
        "Endpoint enabled; the messages it missed are being sent."
    );
    assert_eq!(c.api.get(&ep_path).await["disabled"], false);

    let secret = c.api.get(&format!("{ep_path}/secret")).await["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let got = c.receiver.wait_for_count(2, WAIT).await;
    let mut ids = BTreeSet::new();
    for r in &got {
        let (id, ts, sig) = r.signed();
        assert!(signature_valid(&secret, id, ts, &r.body, sig));
        assert_eq!(r.json()["while"], "off");
        ids.insert(id.to_owned());
    }
    assert_eq!(ids, sent, "the missed messages were replayed");
    c.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_token_made_in_the_console_works_until_revoked() {
    let Some(mut c) = Console::start("tokens").await else {
        return;
    };
    c.open_and_log_in().await;
    c.click_link("API tokens").await;
    c.fill("name", "deploy-bot").await;
    c.click_button("Create token").await;
    let token = c.text_of("token-value").await;
    c.screenshot("tokens").await;
    let (status, body) = c.api.call_as(&token, "GET", "/app", None).await;
    assert_eq!(status, 200, "the new token works: {body}");

    // Shown once: the tokens page does not show it again.
    c.click_link("API tokens").await;
    assert!(c.displayed(Locator::Id("token-value")).await.is_empty());
    assert!(!c.page_text().await.contains(&token));

    c.expand_at(
        "//tr[td[normalize-space()='deploy-bot']]//summary",
        "Revoke deploy-bot",
    )
    .await;
    c.click_button("Revoke token").await;
    assert!(c.notice().await.starts_with("Token revoked."));
    let row = c
        .find(Locator::XPath("//tr[td[normalize-space()='deploy-bot']]"))
        .await;
    assert!(row.text().await.unwrap().contains("revoked"));
    let refused = wait_for(WAIT, || async {
        c.api.call_as(&token, "GET", "/app", None).await.0 == 401
    })
    .await;
    assert!(refused, "the revoked token is still accepted");
    let (status, _) = c.api.call_as(&c.api.token, "GET", "/app", None).await;
    assert_eq!(status, 200, "other tokens keep working");
    c.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_type_made_in_the_catalog_is_edited_archived_and_sent_as_a_test() {
    let Some(mut c) = Console::start("catalog").await else {
        return;
    };
    let path = "/event-type/order.shipped";
    c.open_and_log_in().await;
    c.click_link("Event catalog").await;
    c.assert_shows("No event types yet").await;

    // A broken example is refused inline, with what was typed kept.
    c.fill("name", "order.shipped").await;
    c.fill("description", "An order left the warehouse").await;
    c.fill("group", "Orders").await;
    c.fill("example", r#"{"order": "ord_1", "items": 2"#).await;
    c.check("deprecated", "1", true).await;
    c.click_button("Create event type").await;
    let error = c.find(Locator::Css(".field-error")).await;
    let error = error.text().await.unwrap();
    assert!(
        error.starts_with("This is not valid JSON"),
        "{error} {}",
        c.context().await
    );
    assert!(c.is_checked("deprecated", "1").await);
    let kept = c.field("name").await.prop("value").await.unwrap();
    assert_eq!(kept.as_deref(), Some("order.shipped"));
    c.screenshot("invalid-example").await;
    let (status, _) = c.api.call_as(&c.api.token, "GET", path, None).await;
    assert_eq!(status, 404, "nothing was created");

    // Keys in sorted order, as the example is stored and shown.
    let example = json!({"items": 2, "order": "ord_1", "rush": false});
    c.fill("example", &example.to_string()).await;
    c.click_button("Create event type").await;
    assert_eq!(
        c.notice().await,
        "Event type created.",
        "{}",
        c.context().await
    );
    // Listed under its group (shown in capitals by the style sheet), marked deprecated.
    let group = c.find(Locator::Css("h2.group-name")).await;
    let group = group.prop("textContent").await.unwrap();
    assert_eq!(group.as_deref(), Some("Orders"));
    let row = c
        .find(Locator::XPath(
            "//tbody/tr[td[normalize-space()='order.shipped']]",
        ))
        .await;
    assert!(row.text().await.unwrap().contains("deprecated"));
    c.screenshot("created").await;
    let t = c.api.get(path).await;
    assert_eq!(t["description"], "An order left the warehouse");
    assert_eq!(t["groupName"], "Orders");
    assert_eq!(t["deprecated"], true);
    assert_eq!(t["archived"], false);
    assert_eq!(t["schemas"]["1"]["examples"][0], example, "{t}");

    // Edit.
    c.click_link("order.shipped").await;
    assert_eq!(c.heading().await, "order.shipped");
    c.fill("description", "An order was shipped").await;
    c.check("deprecated", "1", false).await;
    c.click_button("Save").await;
    assert_eq!(
        c.notice().await,
        "Event type saved.",
        "{}",
        c.context().await
    );
    let t = c.api.get(path).await;
    assert_eq!(t["description"], "An order was shipped");
    assert_eq!(t["deprecated"], false);
    assert_eq!(t["schemas"]["1"]["examples"][0], example, "{t}");

    // Archive, then restore.
    c.click_button("Archive").await;
    assert!(
        c.notice().await.starts_with("Event type archived."),
        "{}",
        c.context().await
    );
    assert_eq!(c.api.get(path).await["archived"], true);
    c.screenshot("archived").await;
    c.click_button("Restore").await;
    assert_eq!(c.notice().await, "Event type restored.");
    assert_eq!(c.api.get(path).await["archived"], false);
    c.button("Archive").await;

    // The Testing tab offers its example; that is what the endpoint receives.
    c.api
        .create_event_type("invoice.paid", "An invoice was paid")
        .await;
    c.api
        .post("/app", json!({"name": "Shop", "uid": "shop"}), 201)
        .await;
    let url = format!("{}/hooks/orders", c.receiver.url);
    let body = json!({"url": url, "filterTypes": ["order.shipped"]});
    c.api.post("/app/shop/endpoint", body, 201).await;
    c.click_link("Applications").await;
    c.click_link("Shop").await;
    c.click_link(&url).await;
    c.click_link("Testing").await;
    c.select("event_type", "order.shipped").await;
    let shown = c
        .browser
        .execute("return document.getElementById('payload').value;", vec![])
        .await
        .unwrap();
    let shown = shown.as_str().unwrap_or_default().to_owned();
    assert_eq!(shown, serde_json::to_string_pretty(&example).unwrap());
    c.screenshot("testing-example").await;
    c.click_button("Send Test Event").await;
    assert_eq!(c.text_of("test-code").await, "200", "{}", c.context().await);
    let got = c.receiver.wait_for_count(1, WAIT).await;
    assert_eq!(got[0].path, "/hooks/orders");
    // Byte for byte what the box showed (the browser posts its line breaks as CRLF).
    assert_eq!(String::from_utf8_lossy(&got[0].body), shown);
    assert_eq!(got[0].json(), example);
    c.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn application_is_renamed_on_its_settings_tab() {
    let Some(mut c) = Console::start("app-settings").await else {
        return;
    };
    c.api
        .post("/app", json!({"name": "Other", "uid": "taken"}), 201)
        .await;
    c.open_and_log_in().await;
    c.create_app("Shop", "shop").await;
    let id = c.api.get("/app/shop").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    c.click_link("Application settings").await;
    assert_eq!(c.path().await, format!("/admin/apps/{id}/settings"));
    assert_eq!(c.heading().await, "Shop");

    // A uid another application has is refused on its field.
    c.fill("uid", "taken").await;
    c.click_button("Save").await;
    let error = c.find(Locator::Css(".field-error")).await;
    assert!(!error.text().await.unwrap().is_empty());
    assert_eq!(c.api.get(&format!("/app/{id}")).await["uid"], "shop");

    c.fill("name", "Shop Europe").await;
    c.fill("uid", "shop-eu").await;
    c.fill("retention", "30").await;
    c.click_button("Save").await;
    assert_eq!(
        c.notice().await,
        "Application saved.",
        "{}",
        c.context().await
    );
    assert_eq!(c.heading().await, "Shop Europe");
    c.screenshot("saved").await;
    let app = c.api.get(&format!("/app/{id}")).await;
    assert_eq!(app["name"], "Shop Europe");
    assert_eq!(app["uid"], "shop-eu");
    assert_eq!(app["payloadRetentionPeriod"], 30);
    assert_eq!(c.api.get("/app/shop-eu").await["id"], id.as_str());
    let (status, _) = c.api.call_as(&c.api.token, "GET", "/app/shop", None).await;
    assert_eq!(status, 404, "the old uid is gone");

    // The new name is what the Applications list shows.
    c.click_link("Applications").await;
    c.find(Locator::XPath(
        "//tbody/tr[td[normalize-space()='Shop Europe']]",
    ))
    .await;
    c.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_test_notification_is_sent_through_the_configured_smtp_server_and_logged() {
    use crate::support::smtp::{free_port, SmtpSink};
    let port = free_port();
    let Some(smtp) = SmtpSink::start(port, None) else {
        return;
    };
    let port = port.to_string();
    let env = [
        ("HOOKBOX_SMTP_HOST", "127.0.0.1"),
        ("HOOKBOX_SMTP_PORT", port.as_str()),
        ("HOOKBOX_SMTP_TLS", "none"),
        ("HOOKBOX_SMTP_FROM", "hookbox@example.com"),
    ];
    let Some(mut c) = Console::start_with_env("notifications", &env).await else {
        return;
    };
    c.open_and_log_in().await;
    c.click_link("Notifications").await;
    c.assert_shows(&format!("127.0.0.1:{port}")).await;
    c.fill("test_address", "me@example.com").await;
    c.click_button("Send test notification").await;
    let result = c.text_of("test-result").await;
    assert!(
        result.starts_with("Sent. The server answered: 250"),
        "{result}"
    );
    let mails = smtp.wait_for(1, WAIT).await;
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].to, ["me@example.com"]);
    let row = c
        .find(Locator::XPath(
            "//section[@id='log']//tr[td[contains(., 'me@example.com')]]",
        ))
        .await;
    assert!(row.text().await.unwrap().contains("sent"));

    c.fill("address", "oncall@example.com").await;
    c.click_button("Add recipient").await;
    assert_eq!(c.notice().await, "Recipient added.");
    c.find(Locator::XPath(
        "//section[@id='recipients']//td[normalize-space()='oncall@example.com']",
    ))
    .await;
    c.screenshot("notifications").await;
    c.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payload_filter_is_written_tested_and_saved_then_shows_what_it_filtered() {
    let Some(mut c) = Console::start("filter").await else {
        return;
    };
    let ep = shop_with_endpoint(&c).await;
    c.click_link("Settings").await;
    c.expand("Payload filter").await;
    c.fill(
        "filter",
        r#"payload.amount >= 1000 && payload.currency == "EUR""#,
    )
    .await;
    c.fill("filter_event_type", "invoice.paid").await;
    c.fill("filter_example", r#"{"amount": 2500, "currency": "EUR"}"#)
        .await;
    c.click_button("Test this filter").await;
    assert_eq!(
        c.text_of("filter-result").await,
        "Sent: the filter takes this message."
    );
    // Testing kept what was typed and saved nothing.
    assert_eq!(
        c.field("filter_example")
            .await
            .prop("value")
            .await
            .unwrap()
            .unwrap(),
        r#"{"amount": 2500, "currency": "EUR"}"#
    );
    let ep_path = format!("/app/shop/endpoint/{ep}");
    assert_eq!(c.api.get(&ep_path).await["filter"], Value::Null);
    c.fill("filter_example", r#"{"amount": 2500}"#).await;
    c.click_button("Test this filter").await;
    let said = c.text_of("filter-result").await;
    assert!(
        said.starts_with("Filtered out: the filter cannot tell"),
        "{said}"
    );
    c.screenshot("filter-tested").await;

    // Enter in a field saves the form (it does not test the filter).
    c.press_enter_in("description").await;
    assert_eq!(c.notice().await, "Endpoint saved.", "{}", c.context().await);
    assert_eq!(
        c.api.get(&ep_path).await["filter"],
        r#"payload.amount >= 1000 && payload.currency == "EUR""#
    );

    let small = c
        .api
        .send(
            "shop",
            "invoice.paid",
            json!({"amount": 10, "currency": "EUR"}),
        )
        .await;
    let big = c
        .api
        .send(
            "shop",
            "invoice.paid",
            json!({"amount": 5000, "currency": "EUR"}),
        )
        .await;
    let got = c.receiver.wait_for_count(1, WAIT).await;
    assert_eq!(got[0].signed().0, big);
    c.click_link("Message Logs").await;
    c.click_link("Filtered").await;
    let text = c.page_text().await;
    assert!(text.contains(&small) && !text.contains(&big), "{text}");
    assert!(text.contains("the filter does not take it"), "{text}");
    c.screenshot("filtered-logs").await;
    c.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bulk_replay_started_from_the_replay_tab_shows_its_progress_until_it_finishes() {
    let Some(mut c) = Console::start("replay").await else {
        return;
    };
    shop_with_endpoint(&c).await;
    // More than one batch of messages, all delivered once.
    let mut sent = BTreeSet::new();
    for i in 0..600 {
        sent.insert(c.api.send("shop", "invoice.paid", json!({ "i": i })).await);
    }
    c.receiver.wait_for_count(600, WAIT).await;

    c.click_link("Replay").await;
    // A date-time field is typed into by parts, differently per locale: set as a user's
    // choice in the picker would.
    c.browser
        .execute(
            "document.getElementById('since').value = '2000-01-01T00:00';",
            vec![],
        )
        .await
        .unwrap();
    c.select("event_type", "invoice.paid").await;
    c.click_button("Start replay").await;
    assert_eq!(
        c.notice().await,
        "Replay started: its progress shows below.",
        "{}",
        c.context().await
    );
    assert!(
        c.page_text().await.contains("of 600"),
        "{}",
        c.context().await
    );
    let finished = wait_for(WAIT, || async {
        c.browser.refresh().await.unwrap();
        c.page_text().await.contains("600 of 600 · finished")
    })
    .await;
    assert!(finished, "{}", c.context().await);
    let bar = c.find(Locator::Css("tr[data-task] progress")).await;
    assert_eq!(bar.attr("value").await.unwrap().as_deref(), Some("600"));
    c.screenshot("replay-finished").await;
    let got = c.receiver.wait_for_count(1200, WAIT).await;
    let again: BTreeSet<String> = got[600..].iter().map(|r| r.signed().0.to_owned()).collect();
    assert_eq!(again, sent, "each message once more");

    c.click_link("Tasks").await;
    assert!(c.page_text().await.contains("600 of 600 · finished"));
    c.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ordered_endpoint_shows_the_message_it_waits_on_and_skip_lets_the_rest_go_in_order() {
    // A failed message's retry is an hour away: the line stays held until it is skipped.
    let Some(mut c) =
        Console::start_with_env("ordered", &[("HOOKBOX_RETRY_SCHEDULE", "0s,1h")]).await
    else {
        return;
    };
    let ep = shop_with_endpoint(&c).await;
    c.click_link("Settings").await;
    c.expand("Advanced").await;
    c.check("ordered", "1", true).await;
    c.press_enter_in("description").await;
    assert_eq!(c.notice().await, "Endpoint saved.", "{}", c.context().await);
    assert_eq!(
        c.api.get(&format!("/app/shop/endpoint/{ep}")).await["ordered"],
        true
    );
    c.click_link("Overview").await;
    assert!(
        c.page_text()
            .await
            .contains("Ordered: one message at a time, in the order accepted"),
        "{}",
        c.context().await
    );

    c.receiver.script([Reply::status(500)]);
    let mut sent = Vec::new();
    for i in 0..3 {
        sent.push(c.api.send("shop", "invoice.paid", json!({ "i": i })).await);
    }
    c.receiver.wait_for_count(1, WAIT).await;
    // The attempt is shown once its result is written (after the receiver counted it).
    let failed = wait_for(WAIT, || async {
        c.browser.refresh().await.unwrap();
        c.page_text().await.contains("failed 1 time(s)")
    })
    .await;
    assert!(failed, "{}", c.context().await);
    assert_eq!(c.text_of("line-head").await, sent[0]);
    let line = c.text_of("ordered-line").await;
    assert!(
        line.starts_with(&format!("Waiting on {}", sent[0]))
            && line.contains("failed 1 time(s)")
            && line.contains("2 message(s) wait behind it"),
        "{line}"
    );
    c.screenshot("ordered-waiting").await;

    c.click_button("Skip").await;
    // (The line's own status may follow, as it stands when the page is made.)
    assert!(
        c.notice()
            .await
            .starts_with("Message skipped: the next one in line is being sent."),
        "{}",
        c.context().await
    );
    let got = c.receiver.wait_for_count(3, WAIT).await;
    let ids: Vec<&str> = got.iter().map(|r| r.signed().0).collect();
    assert_eq!(ids, [sent[0].as_str(), sent[1].as_str(), sent[2].as_str()]);
    let skipped = c
        .api
        .get(&format!("/app/shop/msg/{}/endpoint", sent[0]))
        .await;
    assert_eq!(skipped["data"][0]["statusText"], "fail", "{skipped}");
    c.browser.refresh().await.unwrap();
    assert!(
        !c.page_text().await.contains("Waiting on"),
        "{}",
        c.context().await
    );
    c.finish().await;
}
