//! Console pages against a real server: applications, endpoints, logs, resend, secrets,
//! enable/disable with replay, CSRF on every form, and escaping of hostile strings.

use crate::support::console::Console;
use crate::support::{signature_valid, wait_for, TestApp, TestReceiver};
use serde_json::json;
use std::time::Duration;

const HOSTILE: &str = "<script>alert(1)</script>";
const ESCAPED: &str = "&lt;script&gt;alert(1)&lt;/script&gt;";

fn assert_escaped(page: &str, what: &str) {
    assert!(!page.contains(HOSTILE), "{what}: raw markup in the page");
    assert!(
        page.contains(ESCAPED),
        "{what}: the escaped text is missing"
    );
}

/// The id at the end of a redirect's path (before any query).
fn id_in(location: &str, after: &str) -> String {
    let rest = &location[location.find(after).unwrap() + after.len()..];
    rest.split(['/', '?']).next().unwrap().to_owned()
}

/// An endpoint added through the console form; returns its page's path.
async fn add_endpoint(c: &mut Console, app: &str, form: &[(&str, &str)]) -> String {
    let r = c
        .submit(&format!("/admin/apps/{app}/webhooks/new"), form)
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let loc = r.location.unwrap();
    assert!(loc.ends_with("?ok=endpoint-created"), "{loc}");
    loc.trim_end_matches("?ok=endpoint-created").to_owned()
}

#[tokio::test]
async fn applications_are_created_listed_and_deleted_after_confirmation() {
    let app = TestApp::spawn().await;
    let mut c = Console::first_admin(&app).await;
    assert!(c.page("/admin/apps").await.contains("No applications yet"));
    let r = c.submit("/admin/apps", &[("name", "  ")]).await;
    assert_eq!(r.status, 422);
    assert!(
        r.body.contains("name must be 1 to 256 characters"),
        "{}",
        r.body
    );
    let r = c
        .submit("/admin/apps", &[("name", "Acme"), ("uid", "bad uid")])
        .await;
    assert_eq!(r.status, 422);
    assert!(r.body.contains("uid must match"), "{}", r.body);
    assert!(r.body.contains("value=\"Acme\""), "input is kept");
    let r = c
        .submit("/admin/apps", &[("name", "Acme"), ("uid", "acme")])
        .await;
    assert_eq!(r.status, 303);
    let id = id_in(r.location.as_deref().unwrap(), "/admin/apps/");
    let webhooks = c
        .page(&format!("/admin/apps/{id}/webhooks?ok=app-created"))
        .await;
    assert!(webhooks.contains("Application created.") && webhooks.contains("No endpoints yet"));
    // A uid in use is refused next to its field.
    let r = c
        .submit("/admin/apps", &[("name", "Other"), ("uid", "acme")])
        .await;
    assert_eq!(r.status, 422);
    assert!(r.body.contains("already exists"));
    let list = c.page("/admin/apps").await;
    assert!(list.contains("Acme") && list.contains(&id));
    // The uid opens it too.
    assert_eq!(
        c.get("/admin/apps/acme").await.location.unwrap(),
        format!("/admin/apps/{id}/webhooks")
    );
    let confirm = c.page(&format!("/admin/apps/{id}/delete")).await;
    assert!(confirm.contains("Delete “Acme”?"));
    // Without the CSRF token nothing is deleted.
    let r = c.post(&format!("/admin/apps/{id}/delete"), &[]).await;
    assert_eq!(r.status, 403);
    app.get(&format!("/app/{id}"), 200).await;
    let r = c.submit(&format!("/admin/apps/{id}/delete"), &[]).await;
    assert_eq!(r.location.as_deref(), Some("/admin/apps?ok=app-deleted"));
    app.get(&format!("/app/{id}"), 404).await;
    let r = c.get(&format!("/admin/apps/{id}/webhooks")).await;
    assert_eq!(r.status, 404);
    assert!(r.body.contains("This application does not exist"));
}

#[tokio::test]
async fn forms_without_a_valid_csrf_token_change_nothing() {
    let app = TestApp::spawn().await;
    let a = app.create_app("Acme").await;
    let (ep, _) = app
        .create_endpoint(&a, json!({ "url": "http://127.0.0.1:9/hook" }))
        .await;
    let mut c = Console::first_admin(&app).await;
    let base = format!("/admin/apps/{a}/endpoints/{ep}");
    for (path, form) in [
        ("/admin/apps".to_owned(), vec![("name", "Sneaky")]),
        (
            format!("/admin/apps/{a}/webhooks/new"),
            vec![("url", "https://evil.example/")],
        ),
        (format!("{base}/disable"), vec![]),
        (format!("{base}/secret/rotate"), vec![]),
        (format!("{base}/secret"), vec![]),
    ] {
        for csrf in [None, Some("wrong")] {
            let mut f = form.clone();
            if let Some(t) = csrf {
                f.push(("csrf", t));
            }
            let r = c.post(&path, &f).await;
            assert_eq!(r.status, 403, "POST {path} with {csrf:?}");
            assert!(
                !r.body.contains("whsec_"),
                "a rejected reveal shows no secret"
            );
        }
    }
    assert_eq!(
        app.get("/app", 200).await["data"].as_array().unwrap().len(),
        1
    );
    let eps = app.get(&format!("/app/{a}/endpoint"), 200).await;
    assert_eq!(eps["data"].as_array().unwrap().len(), 1);
    assert_eq!(eps["data"][0]["disabled"], false);
}

#[tokio::test]
async fn add_endpoint_form_groups_event_types_and_shows_errors_next_to_fields() {
    let app = TestApp::spawn().await;
    for t in ["invoice.paid", "invoice.failed", "user:created"] {
        app.create_event_type(t).await;
    }
    let a = app.create_app("Acme").await;
    let mut c = Console::first_admin(&app).await;
    let form = c.page(&format!("/admin/apps/{a}/webhooks/new")).await;
    for s in [
        "All events",
        "invoice.paid",
        "invoice.failed",
        "user:created",
        ">invoice<",
        ">user<",
    ] {
        assert!(form.contains(s), "{s} missing");
    }
    let r = c
        .submit(
            &format!("/admin/apps/{a}/webhooks/new"),
            &[
                ("url", "ftp://x"),
                ("description", "kept"),
                ("events", "invoice.paid"),
                ("rate_limit", "abc"),
                ("channels", "bad channel!"),
            ],
        )
        .await;
    assert_eq!(r.status, 422);
    assert!(
        r.body.contains("URL scheme must be http or https"),
        "{}",
        r.body
    );
    assert!(r.body.contains("a whole number of messages per second"));
    assert!(r.body.contains("value=\"kept\""), "input is kept");
    assert!(
        r.body.contains("value=\"invoice.paid\" checked"),
        "choices are kept"
    );
    assert_eq!(
        app.get(&format!("/app/{a}/endpoint"), 200).await["data"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    let r = c
        .submit(
            &format!("/admin/apps/{a}/webhooks/new"),
            &[
                ("url", "http://127.0.0.1:9/hook"),
                ("channels", "bad channel!"),
            ],
        )
        .await;
    assert_eq!(r.status, 422);
    assert!(r.body.contains("invalid channel"), "{}", r.body);
    // Chosen types, channels and a rate limit are saved as the API would save them.
    let page = add_endpoint(
        &mut c,
        &a,
        &[
            ("url", "http://127.0.0.1:9/hook"),
            ("events", "invoice.paid"),
            ("events", "user:created"),
            ("channels", "eu, us"),
            ("rate_limit", "5"),
        ],
    )
    .await;
    let ep = page.rsplit('/').next().unwrap();
    let v = app.get(&format!("/app/{a}/endpoint/{ep}"), 200).await;
    assert_eq!(v["filterTypes"], json!(["invoice.paid", "user:created"]));
    assert_eq!(v["channels"], json!(["eu", "us"]));
    assert_eq!(v["rateLimit"], 5);
    let overview = c.page(&page).await;
    assert!(overview.contains("invoice.paid") && overview.contains("5 per second"));
    let list = c.page(&format!("/admin/apps/{a}/webhooks")).await;
    assert!(list.contains("http://127.0.0.1:9/hook") && list.contains("No recent attempts"));
}

#[tokio::test]
async fn add_endpoint_then_message_logs_then_resend_delivers_again() {
    let app = TestApp::spawn().await;
    let rx = TestReceiver::start().await;
    app.create_event_type("invoice.paid").await;
    let a = app.create_app("Acme").await;
    let mut c = Console::first_admin(&app).await;
    let url = format!("{}/hook", rx.url);
    let page = add_endpoint(
        &mut c,
        &a,
        &[
            ("url", &url),
            ("description", "billing"),
            ("all_events", "1"),
        ],
    )
    .await;
    rx.script([crate::support::receiver::Reply::status(200)
        .header("x-receiver", "<b>seen</b>")
        .body("ok")]);
    let msg = app
        .send(&a, "invoice.paid", json!({ "invoice": "in_1" }))
        .await;
    let sent = rx.wait_for_count(1, Duration::from_secs(5)).await;
    let logs_path = format!("{page}/logs");
    app.settled().await;
    let logs = c.page(&logs_path).await;
    assert!(
        logs.contains("invoice.paid") && logs.contains(">200<"),
        "{logs}"
    );
    assert!(c
        .page(&format!("{logs_path}?status=failed"))
        .await
        .contains("No delivery attempts matching these filters"));
    // The attempt's detail page shows what was sent and what came back.
    let at = logs.find("/attempts/").unwrap();
    let link = &logs[logs[..at].rfind('"').unwrap() + 1..at + logs[at..].find('"').unwrap()];
    let detail = c.page(link).await;
    assert!(
        detail.contains(&msg) && detail.contains("in_1") && detail.contains("ok"),
        "{detail}"
    );
    // The headers exactly as sent (signature included), and those that came back, escaped.
    let (_, ts, sig) = sent[0].signed();
    for line in [
        format!("webhook-id: {msg}"),
        format!("webhook-timestamp: {ts}"),
        format!("webhook-signature: {sig}"),
        "content-type: application/json".to_owned(),
    ] {
        assert!(detail.contains(&line), "{line} in {detail}");
    }
    assert!(
        detail.contains("x-receiver: &lt;b&gt;seen&lt;/b&gt;"),
        "{detail}"
    );
    let list = c.page(&format!("/admin/apps/{a}/webhooks")).await;
    assert!(
        list.contains("Healthy") && list.contains("100.0 %"),
        "{list}"
    );
    // Resend: one more request, recorded as a manual attempt.
    let r = c
        .submit(&format!("{page}/messages/{msg}/resend"), &[])
        .await;
    assert_eq!(r.location, Some(format!("{logs_path}?ok=resent")));
    let got = rx.wait_for_count(2, Duration::from_secs(5)).await;
    assert_eq!(got[1].json()["invoice"], "in_1");
    app.wait_attempts(&a, &msg, 2, Duration::from_secs(5)).await;
    let logs = c.page(&logs_path).await;
    assert!(logs.contains("manual"), "{logs}");
    assert!(c.page(&page).await.contains("<svg class=\"chart\""));
    let dash = c.page("/admin").await;
    assert!(
        dash.contains("<svg") && dash.contains("id=\"stat-succeeded\">2<"),
        "{dash}"
    ); // hookbox's own application (operational webhooks) is not one of the user's.
    assert!(
        dash.contains("Applications</span><span class=\"stat-value\">1<"),
        "{dash}"
    );
}

#[tokio::test]
async fn disable_then_send_then_enable_with_replay_delivers_the_missed_message() {
    let app = TestApp::spawn().await;
    let rx = TestReceiver::start().await;
    let a = app.create_app("Acme").await;
    let mut c = Console::first_admin(&app).await;
    let page = add_endpoint(&mut c, &a, &[("url", &format!("{}/hook", rx.url))]).await;
    let r = c.submit(&format!("{page}/disable"), &[]).await;
    assert_eq!(r.location, Some(format!("{page}?ok=disabled")));
    let overview = c.page(&page).await;
    assert!(
        overview.contains("This endpoint is disabled")
            && overview.contains("disabled in the console by admin")
    );
    let before = app.send(&a, "order.created", json!({ "n": 1 })).await;
    let enable_path = format!("{page}/enable");
    assert!(
        wait_for(Duration::from_secs(5), || {
            let mut c2 = c.clone();
            let p = enable_path.clone();
            async move { c2.page(&p).await.contains("id=\"skipped-count\">1<") }
        })
        .await,
        "the enable page offers to replay the missed message"
    );
    assert_eq!(rx.count(), 0);
    let r = c.submit(&enable_path, &[("replay", "1")]).await;
    assert_eq!(r.location, Some(format!("{page}?ok=replayed")));
    let got = rx.wait_for_count(1, Duration::from_secs(5)).await;
    assert_eq!(got[0].header("webhook-id"), Some(before.as_str()));
    assert!(!c.page(&page).await.contains("This endpoint is disabled"));
    // An enabled endpoint's enable page just leads back to it.
    assert_eq!(c.get(&enable_path).await.location, Some(page.clone()));
}

#[tokio::test]
async fn enable_without_replay_sends_nothing_old() {
    let app = TestApp::spawn().await;
    let rx = TestReceiver::start().await;
    let a = app.create_app("Acme").await;
    let mut c = Console::first_admin(&app).await;
    let page = add_endpoint(&mut c, &a, &[("url", &format!("{}/hook", rx.url))]).await;
    let r = c.submit(&format!("{page}/disable"), &[]).await;
    assert_eq!(r.location, Some(format!("{page}?ok=disabled")));
    app.send(&a, "order.created", json!({ "n": 1 })).await;
    let r = c.submit(&format!("{page}/enable"), &[]).await;
    assert_eq!(r.location, Some(format!("{page}?ok=enabled")));
    let after = app.send(&a, "order.created", json!({ "n": 2 })).await;
    let got = rx.wait_for_count(1, Duration::from_secs(5)).await;
    assert_eq!(got[0].header("webhook-id"), Some(after.as_str()));
    app.assert_nothing_due_within(Duration::from_secs(5)).await;
    assert_eq!(rx.count(), 1, "the missed message was not sent");
}

/// Sends a message to the endpoint behind `rx`; returns which of `keys` signed its delivery,
/// after checking that no other key did.
async fn signed_by(app: &TestApp, rx: &TestReceiver, a: &str, keys: &[&str]) -> Vec<bool> {
    let n = rx.count();
    app.send(a, "order.created", json!({})).await;
    let r = &rx.wait_for_count(n + 1, Duration::from_secs(5)).await[n];
    let (id, ts, sig) = r.signed();
    let signed: Vec<bool> = keys
        .iter()
        .map(|k| signature_valid(k, id, ts, &r.body, sig))
        .collect();
    assert_eq!(
        sig.split(' ').count(),
        signed.iter().filter(|s| **s).count(),
        "a key not listed signed: {sig}"
    );
    signed
}

/// Moves the delivery clock forward to `at` (Unix milliseconds).
fn move_clock_to(app: &TestApp, at: i64) {
    let ahead = u64::try_from(at - app.clock.now_ms()).expect("the clock is already past it");
    app.clock.advance(Duration::from_millis(ahead));
}

#[tokio::test]
async fn signing_secret_is_hidden_until_revealed_and_rotates() {
    let app = TestApp::spawn().await;
    let rx = TestReceiver::start().await;
    let a = app.create_app("Acme").await;
    let (ep, secret) = app
        .create_endpoint(&a, json!({ "url": format!("{}/hook", rx.url) }))
        .await;
    let mut c = Console::first_admin(&app).await;
    let page = format!("/admin/apps/{a}/endpoints/{ep}");
    assert!(!c.page(&page).await.contains(&secret));
    let r = c.submit(&format!("{page}/secret"), &[]).await;
    assert_eq!(r.status, 200);
    assert!(r.body.contains(&secret));
    let r = c.submit(&format!("{page}/secret/rotate"), &[]).await;
    assert_eq!(r.location, Some(format!("{page}?ok=rotated")));
    let day = chrono::Utc::now().timestamp_millis() + 24 * 3_600_000;
    let current = || async {
        app.get(&format!("/app/{a}/endpoint/{ep}/secret"), 200)
            .await["key"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let new = current().await;
    assert_ne!(new, secret);
    let r = c.submit(&format!("{page}/secret"), &[]).await;
    assert!(r.body.contains(&new) && !r.body.contains(&secret));

    // The grace period is chosen: the secrets that still sign, and until when, show in the
    // signatures of deliveries. (The first secret is in its 24-hour default grace from the
    // rotation above.)
    assert_eq!(
        signed_by(&app, &rx, &a, &[&secret, &new]).await,
        [true, true]
    );
    let r = c
        .submit(&format!("{page}/secret/rotate"), &[("grace", "0")])
        .await;
    assert_eq!(r.status, 303);
    let third = current().await;
    assert_eq!(
        signed_by(&app, &rx, &a, &[&secret, &new, &third]).await,
        [true, false, true],
        "no grace: the replaced secret stops at once"
    );
    let before = chrono::Utc::now().timestamp_millis();
    let r = c
        .submit(&format!("{page}/secret/rotate"), &[("grace", "1h")])
        .await;
    assert_eq!(r.status, 303);
    let fourth = current().await;
    let keys = [secret.as_str(), &third, &fourth];
    assert_eq!(signed_by(&app, &rx, &a, &keys).await, [true, true, true]);
    let r = c
        .submit(&format!("{page}/secret/rotate"), &[("grace", "forever")])
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(current().await, fourth, "refused: nothing rotated");
    assert_eq!(
        signed_by(&app, &rx, &a, &keys).await,
        [true, true, true],
        "refused: nothing rotated"
    );

    // The hour's grace ends an hour after the rotation (within 10 seconds), the default
    // one a day after the first rotation (within a minute).
    move_clock_to(&app, before + 3_590_000);
    assert_eq!(signed_by(&app, &rx, &a, &keys).await, [true, true, true]);
    move_clock_to(&app, before + 3_610_000);
    assert_eq!(signed_by(&app, &rx, &a, &keys).await, [true, false, true]);
    move_clock_to(&app, day - 60_000);
    assert_eq!(signed_by(&app, &rx, &a, &keys).await, [true, false, true]);
    move_clock_to(&app, day + 60_000);
    assert_eq!(signed_by(&app, &rx, &a, &keys).await, [false, false, true]);
}

#[tokio::test]
async fn hostile_strings_are_escaped_on_every_page_that_shows_them() {
    let app = TestApp::spawn().await;
    let rx = TestReceiver::start().await;
    let mut c = Console::first_admin(&app).await;
    let r = c.submit("/admin/apps", &[("name", HOSTILE)]).await;
    let a = id_in(r.location.as_deref().unwrap(), "/admin/apps/");
    let page = add_endpoint(
        &mut c,
        &a,
        &[
            ("url", &format!("{}/hook", rx.url)),
            ("description", HOSTILE),
        ],
    )
    .await;
    app.send(&a, "order.created", json!({ "note": HOSTILE }))
        .await;
    rx.wait_for_count(1, Duration::from_secs(5)).await;
    let logs_path = format!("{page}/logs");
    assert!(
        wait_for(Duration::from_secs(5), || {
            let mut c2 = c.clone();
            let p = logs_path.clone();
            async move { c2.page(&p).await.contains("/attempts/") }
        })
        .await
    );
    for path in [
        "/admin/apps".to_owned(),
        format!("/admin/apps/{a}/delete"),
        format!("/admin/apps/{a}/webhooks"),
        format!("/admin/apps/{a}/webhooks/new"),
        page.clone(),
        format!("{page}/settings"),
        logs_path.clone(),
    ] {
        assert_escaped(&c.page(&path).await, &path);
    }
    let logs = c.page(&logs_path).await;
    let at = logs.find("/attempts/").unwrap();
    let link = &logs[logs[..at].rfind('"').unwrap() + 1..at + logs[at..].find('"').unwrap()];
    assert_escaped(&c.page(link).await, "attempt detail");
    // A rejected form echoes the input escaped too.
    let r = c
        .submit(
            &format!("/admin/apps/{a}/webhooks/new"),
            &[("url", HOSTILE), ("description", HOSTILE)],
        )
        .await;
    assert_eq!(r.status, 422);
    assert_escaped(&r.body, "add endpoint errors");
    let r = Console::new(&app).login(HOSTILE, "wrong password!").await;
    assert_escaped(&r.body, "login error");
}

#[tokio::test]
async fn send_test_event_shows_the_response_inline_and_records_the_attempt() {
    use crate::support::receiver::Reply;
    let app = TestApp::spawn().await;
    let rx = TestReceiver::start().await;
    let a = app.create_app("Acme").await;
    let mut c = Console::first_admin(&app).await;
    let page = add_endpoint(&mut c, &a, &[("url", &format!("{}/hook", rx.url))]).await;
    let testing = format!("{page}/testing");
    assert!(c
        .page(&testing)
        .await
        .contains("No event types are defined yet"));
    let r = c.submit(&testing, &[("event_type", "invoice.paid")]).await;
    assert_eq!(r.status, 422);
    assert!(r.body.contains("Choose an event type"));
    app.create_event_type("invoice.paid").await;
    rx.script([Reply::status(201).body(HOSTILE)]);
    let r = c.submit(&testing, &[("event_type", "invoice.paid")]).await;
    assert_eq!(r.status, 200);
    assert!(r.body.contains("id=\"test-code\">201<"), "{}", r.body);
    assert!(
        r.body.contains(">Healthy<"),
        "the badge counts the test attempt"
    );
    assert_escaped(&r.body, "test response body");
    // Sent signed, through the delivery client, once.
    let got = rx.received();
    assert_eq!(got.len(), 1);
    let ep = page.rsplit('/').next().unwrap();
    let secret = app
        .get(&format!("/app/{a}/endpoint/{ep}/secret"), 200)
        .await["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let (id, ts, sig) = got[0].signed();
    assert!(crate::support::signature_valid(
        &secret,
        id,
        ts,
        &got[0].body,
        sig
    ));
    assert_eq!(got[0].json()["type"], "invoice.paid");
    // Recorded as a test attempt, and not retried.
    let logs = c.page(&format!("{page}/logs")).await;
    assert!(logs.contains("test") && logs.contains(">201<"), "{logs}");
    rx.set_default(Reply::status(500).body("down"));
    let r = c.submit(&testing, &[("event_type", "invoice.paid")]).await;
    assert!(r.body.contains("id=\"test-code\">500<") && r.body.contains("Failed"));
    assert_eq!(rx.count(), 2);
    // An edited payload is sent as written; a broken one is refused next to the field.
    let r = c
        .submit(
            &testing,
            &[("event_type", "invoice.paid"), ("payload", "{\"id\": 1,")],
        )
        .await;
    assert_eq!(r.status, 422);
    assert!(r.body.contains("This is not valid JSON"), "{}", r.body);
    let r = c
        .submit(
            &testing,
            &[("event_type", "invoice.paid"), ("payload", "[1]")],
        )
        .await;
    assert_eq!(r.status, 422);
    assert!(r.body.contains("must be a JSON object"));
    assert_eq!(rx.count(), 2, "nothing sent for refused payloads");
    let custom = r#"{"id": "inv_9", "big": 12345678901234567890}"#;
    let r = c
        .submit(
            &testing,
            &[("event_type", "invoice.paid"), ("payload", custom)],
        )
        .await;
    assert_eq!(r.status, 200);
    let got = rx.received();
    assert_eq!(got.len(), 3);
    assert_eq!(got[2].body, custom.as_bytes(), "sent byte for byte");
    // Payloads as large as the API takes (1 MiB), whose form encoding is larger still.
    let large = format!(r#"{{"text": "{}"}}"#, "\\\"{}".repeat(240_000));
    assert!(large.len() > 900_000 && large.len() < 1024 * 1024);
    let r = c
        .submit(
            &testing,
            &[("event_type", "invoice.paid"), ("payload", &large)],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(rx.received()[3].body, large.as_bytes());
    let larger = format!(r#"{{"text": "{}"}}"#, "x".repeat(1024 * 1024));
    let r = c
        .submit(
            &testing,
            &[("event_type", "invoice.paid"), ("payload", &larger)],
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(
        r.body.contains("The payload is larger than 1048576 bytes"),
        "{}",
        r.body
    );
    assert_eq!(rx.count(), 4);
}

#[tokio::test]
async fn event_catalog_lists_event_types_by_group() {
    let app = TestApp::spawn().await;
    let mut c = Console::first_admin(&app).await;
    assert!(c
        .page("/admin/event-types")
        .await
        .contains("No event types yet"));
    app.create_event_type("invoice.paid").await;
    app.post(
        "/event-type",
        json!({ "name": "user:created", "description": HOSTILE }),
        201,
    )
    .await;
    let page = c.page("/admin/event-types").await;
    assert!(page.contains("invoice.paid") && page.contains(">invoice<") && page.contains(">user<"));
    assert_escaped(&page, "event catalog");
}

#[tokio::test]
async fn api_tokens_are_shown_once_listed_and_revoked() {
    let app = TestApp::spawn().await;
    let mut c = Console::first_admin(&app).await;
    let page = c.page("/admin/tokens").await;
    assert!(page.contains("bootstrap"));
    for (refused, why) in [("", "1 to 128 characters"), ("a\u{0}b", "NUL character")] {
        let r = c.submit("/admin/tokens", &[("name", refused)]).await;
        assert_eq!(r.status, 422, "{refused:?}");
        assert!(r.body.contains(why), "{refused:?}: {}", r.body);
    }
    let r = c.submit("/admin/tokens", &[("name", HOSTILE)]).await;
    assert_eq!(r.status, 200);
    assert_escaped(&r.body, "tokens page");
    let at = r.body.find("id=\"token-value\">").unwrap() + "id=\"token-value\">".len();
    let token = r.body[at..at + r.body[at..].find('<').unwrap()].to_owned();
    assert!(token.starts_with("hbx_"));
    let client = reqwest::Client::new();
    let call = |t: String| {
        let (client, base) = (client.clone(), app.base.clone());
        async move {
            client
                .get(format!("{base}/app"))
                .bearer_auth(t)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(call(token.clone()).await, 200);
    // The list never shows it again.
    let list = c.page("/admin/tokens").await;
    assert!(!list.contains(&token));
    let at = list.find("/admin/tokens/tok_").unwrap() + "/admin/tokens/".len();
    let id = list[at..at + list[at..].find('/').unwrap()].to_owned();
    // The newest token comes first; revoke it (not without the CSRF token).
    assert_eq!(
        c.post(&format!("/admin/tokens/{id}/revoke"), &[])
            .await
            .status,
        403
    );
    assert_eq!(call(token.clone()).await, 200);
    let r = c.submit(&format!("/admin/tokens/{id}/revoke"), &[]).await;
    assert_eq!(
        r.location.as_deref(),
        Some("/admin/tokens?ok=token-revoked")
    );
    assert!(
        wait_for(Duration::from_secs(10), || {
            let f = call(token.clone());
            async move { f.await == 401 }
        })
        .await
    );
    assert!(c.page("/admin/tokens").await.contains("revoked"));
}

#[tokio::test]
async fn endpoint_settings_change_url_events_and_rate_limit_but_keep_the_secret() {
    let app = TestApp::spawn().await;
    for t in ["invoice.paid", "user:created"] {
        app.create_event_type(t).await;
    }
    let a = app.create_app("Acme").await;
    let (ep, secret) = app
        .create_endpoint(
            &a,
            json!({ "url": "http://127.0.0.1:9/old", "filterTypes": ["invoice.paid"] }),
        )
        .await;
    let mut c = Console::first_admin(&app).await;
    let settings = format!("/admin/apps/{a}/endpoints/{ep}/settings");
    let form = c.page(&settings).await;
    assert!(form.contains("value=\"invoice.paid\" checked"), "{form}");
    assert!(!form.contains("name=\"all_events\" value=\"1\" checked"));
    assert!(form.contains("value=\"http://127.0.0.1:9/old\""));
    assert!(form.contains("name=\"verify_ssl\" value=\"1\" checked"));
    assert!(!form.contains("name=\"legacy_signature\" value=\"1\" checked"));
    let r = c
        .submit(&settings, &[("url", "nope"), ("events", "user:created")])
        .await;
    assert_eq!(r.status, 422);
    assert!(r.body.contains("not a valid URL"));
    assert_eq!(
        app.get(&format!("/app/{a}/endpoint/{ep}"), 200).await["url"],
        "http://127.0.0.1:9/old"
    );
    let r = c
        .submit(
            &settings,
            &[
                ("url", "http://127.0.0.1:9/new"),
                ("description", "d"),
                ("events", "user:created"),
                ("rate_limit", "3"),
                ("headers", "X-Team: billing\n\nX-Env: prod"),
                ("legacy_signature", "1"),
            ],
        )
        .await;
    assert_eq!(
        r.location,
        Some(format!("/admin/apps/{a}/endpoints/{ep}?ok=endpoint-saved"))
    );
    let v = app.get(&format!("/app/{a}/endpoint/{ep}"), 200).await;
    assert_eq!(v["url"], "http://127.0.0.1:9/new");
    assert_eq!(v["filterTypes"], json!(["user:created"]));
    assert_eq!(v["rateLimit"], 3);
    assert_eq!(v["description"], "d");
    assert_eq!(v["legacySignature"], true);
    assert_eq!(
        v["verifySsl"], false,
        "unchecked box: certificates not verified"
    );
    let overview = c.page(&format!("/admin/apps/{a}/endpoints/{ep}")).await;
    assert!(overview.contains("Not verified") && overview.contains("X-Webhook-Signature-256"));
    let h = app
        .get(&format!("/app/{a}/endpoint/{ep}/headers"), 200)
        .await;
    assert_eq!(
        h["headers"],
        json!({ "X-Env": "prod", "X-Team": "billing" })
    );
    assert!(c
        .page(&settings)
        .await
        .contains("X-Env: prod\nX-Team: billing"));
    // Headers hookbox sets itself, and lines that are not headers, are refused.
    for (bad, why) in [
        ("webhook-id: x", "cannot be overridden"),
        ("no colon", "is not `Name: value`"),
    ] {
        let r = c
            .submit(
                &settings,
                &[("url", "http://127.0.0.1:9/new"), ("headers", bad)],
            )
            .await;
        assert_eq!(r.status, 422);
        assert!(r.body.contains(why), "{}", r.body);
    }
    let kept = app
        .get(&format!("/app/{a}/endpoint/{ep}/secret"), 200)
        .await;
    assert_eq!(kept["key"], secret.as_str());
    // Deleting takes a confirmation, and the CSRF token.
    let delete = format!("/admin/apps/{a}/endpoints/{ep}/delete");
    assert!(c.page(&delete).await.contains("Delete this endpoint?"));
    assert_eq!(c.post(&delete, &[]).await.status, 403);
    app.get(&format!("/app/{a}/endpoint/{ep}"), 200).await;
    // "All events" clears the filter.
    c.submit(
        &settings,
        &[
            ("url", "http://127.0.0.1:9/new"),
            ("all_events", "1"),
            ("events", "user:created"),
        ],
    )
    .await;
    let v = app.get(&format!("/app/{a}/endpoint/{ep}"), 200).await;
    assert!(v["filterTypes"].is_null(), "{v}");
    let r = c.submit(&delete, &[]).await;
    assert_eq!(
        r.location,
        Some(format!("/admin/apps/{a}/webhooks?ok=endpoint-deleted"))
    );
    app.get(&format!("/app/{a}/endpoint/{ep}"), 404).await;
    assert_eq!(c.get(&settings).await.status, 404);
}

#[tokio::test]
async fn message_logs_are_newest_first_filtered_by_status_and_paginated() {
    use crate::support::receiver::Reply;
    let app = TestApp::spawn_with(|cfg| {
        cfg.delivery.retry_schedule = vec![Duration::ZERO];
    })
    .await;
    let rx = TestReceiver::start().await;
    let a = app.create_app("Acme").await;
    let (ep, _) = app
        .create_endpoint(&a, json!({ "url": format!("{}/hook", rx.url) }))
        .await;
    rx.script([Reply::status(500).body("boom")]);
    let mut ids = Vec::new();
    for n in 0..27 {
        ids.push(
            app.send(&a, &format!("order.n{n}"), json!({ "n": n }))
                .await,
        );
        rx.wait_for_count(n + 1, Duration::from_secs(5)).await;
    }
    app.wait_attempts(&a, &ids[26], 1, Duration::from_secs(5))
        .await;
    let mut c = Console::first_admin(&app).await;
    let logs = format!("/admin/apps/{a}/endpoints/{ep}/logs");
    let first = c.page(&logs).await;
    // Newest first: the last message is on the first page, the first is not.
    assert!(
        first.contains(">order.n26<") && !first.contains(">order.n0<"),
        "{first}"
    );
    assert!(first.find(">order.n26<").unwrap() < first.find(">order.n25<").unwrap());
    let at = first.find("after=").unwrap();
    let next = &first[first[..at].rfind('"').unwrap() + 1..at + first[at..].find('"').unwrap()];
    let next = next.replace("&amp;", "&");
    let second = c.page(&next).await;
    assert!(
        second.contains(">order.n0<") && !second.contains(">order.n26<"),
        "{second}"
    );
    assert!(second.contains("← Newest"));
    let failed = c.page(&format!("{logs}?status=failed")).await;
    assert!(failed.contains(">order.n0<") && failed.contains(">500<"));
    assert!(!failed.contains(">order.n1<"));
    let ok = c.page(&format!("{logs}?status=succeeded")).await;
    assert!(!ok.contains(">order.n0<") && ok.contains(">order.n26<"));
    // By event type, alone and with a status; the status links keep the event type.
    let one = c.page(&format!("{logs}?event_type=order.n5")).await;
    assert!(
        one.contains(">order.n5<") && !one.contains(">order.n6<"),
        "{one}"
    );
    assert!(
        one.contains("status=failed&amp;event_type=order.n5"),
        "{one}"
    );
    let none = c
        .page(&format!("{logs}?status=failed&event_type=order.n5"))
        .await;
    assert!(none.contains("No delivery attempts matching these filters"));
    let both = c
        .page(&format!("{logs}?status=failed&event_type=order.n0"))
        .await;
    assert!(both.contains(">order.n0<") && both.contains(">500<"));
}

#[tokio::test]
async fn event_types_are_created_edited_and_archived_in_the_console() {
    let app = TestApp::spawn().await;
    let mut c = Console::first_admin(&app).await;
    // Errors are shown next to their field and nothing is written.
    let r = c
        .submit(
            "/admin/event-types",
            &[("name", "bad name!"), ("example", "{not json")],
        )
        .await;
    assert_eq!(r.status, 422);
    assert!(r.body.contains("Use 1 to 256 letters"), "{}", r.body);
    assert!(r.body.contains("This is not valid JSON"), "{}", r.body);
    assert!(r.body.contains("{not json"), "input is kept");
    let r = c
        .submit("/admin/event-types", &[("name", "a.b"), ("example", "[1]")])
        .await;
    assert_eq!(r.status, 422);
    assert!(r.body.contains("must be a JSON object"));
    // A name of dots only would make links that browsers send elsewhere.
    let r = c.submit("/admin/event-types", &[("name", "..")]).await;
    assert_eq!(r.status, 422);
    assert!(r.body.contains("dots only"), "{}", r.body);
    assert_eq!(
        app.get("/event-type?include_archived=true", 200).await["data"],
        json!([])
    );

    let r = c
        .submit(
            "/admin/event-types",
            &[
                ("name", "invoice.paid"),
                ("description", HOSTILE),
                ("group", "billing"),
                ("example", r#"{"id": "inv_1", "amount": 4200}"#),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let t = app.get("/event-type/invoice.paid", 200).await;
    assert_eq!(t["description"], HOSTILE);
    assert_eq!(t["groupName"], "billing");
    assert_eq!(
        t["schemas"]["1"]["examples"][0],
        json!({"id": "inv_1", "amount": 4200})
    );
    let page = c.page("/admin/event-types").await;
    assert!(page.contains(">billing<"));
    assert_escaped(&page, "catalog");
    let r = c
        .submit("/admin/event-types", &[("name", "invoice.paid")])
        .await;
    assert_eq!(r.status, 422);
    assert!(r.body.contains("already exists"));

    // Send Test Event sends the example edited here.
    let edit = c.page("/admin/event-types/invoice.paid").await;
    assert_escaped(&edit, "event type page");
    assert!(edit.contains("inv_1"));
    let r = c
        .submit(
            "/admin/event-types/invoice.paid",
            &[
                ("description", "Paid"),
                ("group", ""),
                ("example", r#"{"id": "inv_2"}"#),
                ("deprecated", "1"),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let t = app.get("/event-type/invoice.paid", 200).await;
    assert_eq!(t["description"], "Paid");
    assert_eq!(t["groupName"], json!(null));
    assert_eq!(t["deprecated"], true);
    assert_eq!(t["schemas"]["1"]["examples"][0], json!({"id": "inv_2"}));
    let r = c
        .submit("/admin/event-types/invoice.paid", &[("example", "")])
        .await;
    assert_eq!(r.status, 303);
    assert_eq!(
        app.get("/event-type/invoice.paid", 200).await["schemas"],
        json!(null)
    );

    // Archive, then restore.
    let r = c
        .submit(
            "/admin/event-types/invoice.paid/archive",
            &[("archive", "1")],
        )
        .await;
    assert_eq!(r.status, 303);
    assert_eq!(
        app.get("/event-type/invoice.paid", 200).await["archived"],
        true
    );
    let a = app.create_app("Acme").await;
    let form = c.page(&format!("/admin/apps/{a}/webhooks/new")).await;
    assert!(
        !form.contains("invoice.paid"),
        "archived types are not offered"
    );
    let r = c
        .submit(
            "/admin/event-types/invoice.paid/archive",
            &[("archive", "0")],
        )
        .await;
    assert_eq!(r.status, 303);
    assert_eq!(
        app.get("/event-type/invoice.paid", 200).await["archived"],
        false
    );
    assert_eq!(c.get("/admin/event-types/nope").await.status, 404);
}

#[tokio::test]
async fn applications_are_renamed_in_their_settings() {
    let app = TestApp::spawn().await;
    let mut c = Console::first_admin(&app).await;
    let a = app.create_app("Acme").await;
    let path = format!("/admin/apps/{a}/settings");
    assert!(c.page(&path).await.contains("value=\"Acme\""));
    let r = c.submit(&path, &[("name", ""), ("uid", "acme")]).await;
    assert_eq!(r.status, 422);
    assert!(r.body.contains("name must be 1 to 256 characters"));
    let r = c
        .submit(&path, &[("name", "Acme"), ("retention", "0")])
        .await;
    assert_eq!(r.status, 422);
    assert!(r.body.contains("1 to 3650"), "{}", r.body);
    let r = c
        .submit(
            &path,
            &[("name", HOSTILE), ("uid", "acme-2"), ("retention", "7")],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let got = app.get(&format!("/app/{a}"), 200).await;
    assert_eq!(got["name"], HOSTILE);
    assert_eq!(got["uid"], "acme-2");
    assert_escaped(&c.page(&path).await, "application settings");
    assert_escaped(&c.page("/admin/apps").await, "applications");
    // A uid another application has is refused.
    app.post("/app", json!({ "name": "B", "uid": "taken" }), 201)
        .await;
    let r = c.submit(&path, &[("name", "X"), ("uid", "taken")]).await;
    assert_eq!(r.status, 422);
    assert_eq!(app.get(&format!("/app/{a}"), 200).await["uid"], "acme-2");
}

#[tokio::test]
async fn console_urls_answer_wrong_methods_with_an_html_405() {
    let app = TestApp::spawn().await;
    let mut c = Console::first_admin(&app).await;
    let a = app.create_app("Acme").await;
    let client = reqwest::Client::new();
    for (method, path) in [
        ("DELETE", "/admin/apps".to_owned()),
        ("PUT", format!("/admin/apps/{a}/webhooks")),
        ("POST", "/admin/event-types/x.y/archive/".to_owned()),
        ("PATCH", "/admin/login".to_owned()),
        ("GET", "/admin/logout".to_owned()),
    ] {
        let resp = client
            .request(method.parse().unwrap(), format!("{}{path}", app.root))
            .header(
                "cookie",
                format!("hookbox_session={}", c.cookie.clone().unwrap()),
            )
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let ct = resp.headers()["content-type"].to_str().unwrap().to_owned();
        let body = resp.text().await.unwrap();
        if path.ends_with('/') {
            // A trailing slash is the same page.
            assert_ne!(status, 500, "{method} {path}");
            continue;
        }
        assert_eq!(status, 405, "{method} {path}");
        assert!(ct.starts_with("text/html"), "{method} {path}: {ct}");
        assert!(body.contains("cannot be used that way"), "{method} {path}");
    }
    assert_eq!(c.get("/admin/nowhere").await.status, 404);
}

#[tokio::test]
async fn dashboard_lists_troubled_endpoints_and_recent_failures() {
    use crate::support::receiver::Reply;
    let app = TestApp::spawn_with(|cfg| cfg.delivery.retry_schedule = vec![Duration::ZERO]).await;
    let rx = TestReceiver::start().await;
    rx.set_default(Reply::status(500).body("down"));
    let a = app.create_app("Acme").await;
    let (ep, _) = app
        .create_endpoint(&a, json!({ "url": format!("{}/{HOSTILE}", rx.url) }))
        .await;
    let mut c = Console::first_admin(&app).await;
    let dash = c.page("/admin").await;
    assert!(dash.contains("None: no endpoint is failing or disabled."));
    assert!(dash.contains("No failed attempts in the last 24 hours."));
    let msg = app.send(&a, "invoice.paid", json!({})).await;
    app.wait_attempts(&a, &msg, 1, Duration::from_secs(5)).await;
    let dash = c.page("/admin").await;
    let overview = format!("/admin/apps/{a}/endpoints/{ep}");
    assert!(dash.contains(&format!("href=\"{overview}\"")), "{dash}");
    assert!(
        dash.contains(">Failing<") && dash.contains("HTTP 500"),
        "{dash}"
    );
    assert!(
        dash.contains(&format!("{overview}/attempts/{msg}/")),
        "{dash}"
    );
    assert!(!dash.contains(HOSTILE), "the URL is escaped");
    let page = c.page(&overview).await;
    assert!(page.contains("<strong>Failing</strong> since"), "{page}");
    assert!(page.contains("id=\"last-success\">never<"));
    assert!(!page.contains("id=\"last-attempt\">never<"));
    // Disabled: listed with its reason.
    app.call(
        "PATCH",
        &format!("/app/{a}/endpoint/{ep}"),
        Some(json!({ "disabled": true })),
        200,
    )
    .await;
    let dash = c.page("/admin").await;
    assert!(dash.contains(">Disabled<"), "{dash}");
    // A later success clears "failing" (the list shows only the disabled state now).
    rx.set_default(Reply::status(200));
    app.call(
        "PATCH",
        &format!("/app/{a}/endpoint/{ep}"),
        Some(json!({ "disabled": false })),
        200,
    )
    .await;
    let msg = app.send(&a, "invoice.paid", json!({})).await;
    app.wait_attempts(&a, &msg, 1, Duration::from_secs(5)).await;
    let page = c.page(&overview).await;
    assert!(!page.contains("<strong>Failing</strong>"), "{page}");
    assert!(!page.contains("id=\"last-success\">never<"));
    assert!(c
        .page("/admin")
        .await
        .contains("None: no endpoint is failing or disabled."));
}

#[tokio::test]
async fn the_api_and_the_console_apply_the_same_event_type_rules() {
    let app = TestApp::spawn().await;
    let mut c = Console::first_admin(&app).await;
    // 8192 characters is the limit, however many bytes they take.
    let long = "é".repeat(8192);
    app.post(
        "/event-type",
        json!({ "name": "api.long", "description": long }),
        201,
    )
    .await;
    let r = c
        .submit(
            "/admin/event-types",
            &[("name", "console.long"), ("description", &long)],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    // A group name past 256 characters is refused by both.
    let group = "g".repeat(257);
    let v = app
        .post(
            "/event-type",
            json!({ "name": "api.group", "description": "d", "groupName": group }),
            422,
        )
        .await;
    assert_eq!(v["detail"][0]["loc"], json!(["body", "groupName"]), "{v}");
    let r = c
        .submit(
            "/admin/event-types",
            &[
                ("name", "console.group"),
                ("description", "d"),
                ("group", &group),
            ],
        )
        .await;
    assert_eq!(r.status, 422);
    assert!(r.body.contains("longer than 256 characters"), "{}", r.body);
}
