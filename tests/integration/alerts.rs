//! Alerts by email (a real SMTP server: aiosmtpd) and chat webhook (a real receiver): who
//! hears what when an endpoint is disabled, retries while the SMTP server is down, the test
//! notification and the log.

use crate::support::console::Console;
use crate::support::receiver::Reply;
use crate::support::smtp::{free_port, SmtpSink};
use crate::support::{wait_for, TestApp, TestReceiver};
use serde_json::json;
use std::time::Duration;

/// A server whose alerts go to the SMTP server on `port`, with `ops@example.com` as the
/// operator's recipient from configuration.
async fn server(port: u16) -> TestApp {
    server_with(port, |_| {}).await
}

/// [`server`], with `more` set in its configuration too.
async fn server_with(port: u16, more: impl FnOnce(&mut hookbox::config::Config)) -> TestApp {
    TestApp::spawn_with(|cfg| {
        cfg.smtp.host = Some("127.0.0.1".into());
        cfg.smtp.port = Some(port);
        cfg.smtp.tls = "none".into();
        cfg.smtp.from = Some("hookbox <hookbox@example.com>".into());
        cfg.alerts.emails = vec!["ops@example.com".into()];
        more(cfg);
    })
    .await
}

/// An application "Shop" whose endpoint answers `reply`: (app, endpoint, URL).
async fn endpoint_answering(
    app: &TestApp,
    rx: &TestReceiver,
    reply: Reply,
) -> (String, String, String) {
    rx.set_default(reply);
    let a = app.create_app("Shop").await;
    let url = format!("{}/hook", rx.url);
    let (ep, _) = app.create_endpoint(&a, json!({ "url": url })).await;
    (a, ep, url)
}

/// An application whose endpoint answers 410 to its first message: (app, endpoint, URL).
async fn endpoint_that_is_gone(app: &TestApp, rx: &TestReceiver) -> (String, String, String) {
    endpoint_answering(app, rx, Reply::status(410)).await
}

async fn disable_with_a_410(app: &TestApp, a: &str, ep: &str) {
    app.send(a, "order.created", json!({})).await;
    let disabled = wait_for(Duration::from_secs(10), || async {
        app.get(&format!("/app/{a}/endpoint/{ep}"), 200).await["disabled"] == true
    })
    .await;
    assert!(disabled, "the endpoint was not disabled");
}

#[tokio::test]
async fn a_410_emails_the_operator_and_the_application_s_recipient_once_with_a_working_link() {
    let port = free_port();
    let Some(smtp) = SmtpSink::start(port, None) else {
        return;
    };
    let app = server(port).await;
    let rx = TestReceiver::start().await;
    let (a, ep, url) = endpoint_that_is_gone(&app, &rx).await;
    let r = app
        .post(
            &format!("/app/{a}/alert-recipient"),
            json!({ "address": "customer@example.com" }),
            201,
        )
        .await;
    assert_eq!(r["rules"].as_array().unwrap().len(), 5, "every rule: {r}");
    disable_with_a_410(&app, &a, &ep).await;

    let mails = smtp.wait_for(2, Duration::from_secs(10)).await;
    assert_eq!(mails.len(), 2, "{mails:#?}");
    let to = |who: &str| {
        mails
            .iter()
            .find(|m| m.to == [who])
            .unwrap_or_else(|| panic!("nothing to {who}: {mails:#?}"))
    };
    let (ops, customer) = (to("ops@example.com"), to("customer@example.com"));
    for m in [ops, customer] {
        assert_eq!(m.from, "hookbox@example.com");
        assert!(m.subject.contains("Endpoint disabled"), "{}", m.subject);
        assert!(
            m.subject.contains(&url) && m.subject.contains("Shop"),
            "{}",
            m.subject
        );
        assert!(m.text.contains("410 Gone"), "the reason: {}", m.text);
        assert!(m.html.contains("410 Gone"), "{}", m.html);
        // What waited is sent again only when asked to, as the enable page and the API say.
        for body in [&m.text, &m.html] {
            assert!(
                body.contains("Also send the messages it missed")
                    && body.contains("replay-missing"),
                "{body}"
            );
        }
        // No secret, no payload.
        assert!(
            !m.text.contains("whsec_") && !m.text.contains("order.created"),
            "{}",
            m.text
        );
    }
    // The operator's links to the endpoint's console page, where Enable is.
    let link = format!("{}/admin/apps/{a}/endpoints/{ep}", app.root);
    assert!(ops.text.contains(&link), "{}", ops.text);
    assert!(!customer.text.contains("/admin/"), "{}", customer.text);
    let mut console = Console::first_admin(&app).await;
    let page = console.page(&link.replace(&app.root, "")).await;
    assert!(page.contains("Enable"), "{page}");
    // The application's own recipient links to the endpoint's page in the portal.
    let portal_link = format!("{}/portal/apps/{a}/endpoints/{ep}", app.root);
    assert!(customer.text.contains(&portal_link), "{}", customer.text);
    assert!(customer.text.contains("portal session has ended"));
    assert!(!ops.text.contains("portal session"), "{}", ops.text);
    let mut portal = portal_for(&app, &a).await;
    let page = portal.page(&portal_link.replace(&app.root, "")).await;
    assert!(page.contains("Enable"), "{page}");

    // The application's log shows its recipient's alert, sent, with the server's answer
    // (written once the mail server has answered, after it counted the mail).
    let sent = wait_for(Duration::from_secs(10), || async {
        app.get(&format!("/app/{a}/alert"), 200).await["data"][0]["status"] == "sent"
    })
    .await;
    assert!(sent, "the alert is not marked sent");
    let log = app.get(&format!("/app/{a}/alert"), 200).await;
    let log = log["data"].as_array().unwrap();
    assert_eq!(log.len(), 1, "{log:#?}");
    assert_eq!(log[0]["address"], "customer@example.com");
    assert_eq!(log[0]["status"], "sent");
    assert!(
        log[0]["result"].as_str().unwrap().starts_with("250"),
        "{log:#?}"
    );

    // Nothing more is due ten minutes later (past any retry or gathering window; within the
    // lease of an alert whose outcome is still being written).
    app.clock.advance(Duration::from_secs(600));
    assert_eq!(app.notifier.run_once().await.unwrap(), 0);
    assert_eq!(smtp.received().len(), 2);
}

#[tokio::test]
async fn an_endpoint_its_owner_disables_alerts_nobody() {
    let port = free_port();
    let Some(smtp) = SmtpSink::start(port, None) else {
        return;
    };
    let app = server(port).await;
    let rx = TestReceiver::start().await;
    let (a, ep, _) = endpoint_that_is_gone(&app, &rx).await;
    app.call(
        "PATCH",
        &format!("/app/{a}/endpoint/{ep}"),
        Some(json!({ "disabled": true })),
        200,
    )
    .await;
    // An alert would have been queued in the transaction of the change: the log (which
    // lists pending alerts too) is empty, and nothing was sent.
    let mut c = Console::first_admin(&app).await;
    let page = c.page("/admin/notifications").await;
    assert!(page.contains("Nothing sent yet."), "{page}");
    assert_eq!(app.notifier.run_once().await.unwrap(), 0);
    assert!(smtp.received().is_empty());
}

#[tokio::test]
async fn an_alert_waits_while_the_smtp_server_is_down_and_arrives_once_when_it_is_back() {
    let port = free_port();
    let app = TestApp::spawn_with(|cfg| {
        cfg.smtp.host = Some("127.0.0.1".into());
        cfg.smtp.port = Some(port);
        cfg.smtp.tls = "none".into();
        cfg.smtp.from = Some("hookbox@example.com".into());
        cfg.smtp.timeout = Duration::from_secs(2);
    })
    .await;
    let rx = TestReceiver::start().await;
    let (a, ep, _) = endpoint_that_is_gone(&app, &rx).await;
    app.post(
        &format!("/app/{a}/alert-recipient"),
        json!({ "address": "customer@example.com" }),
        201,
    )
    .await;
    disable_with_a_410(&app, &a, &ep).await;
    // Tried, refused (nothing listens), kept for later.
    let tried = wait_for(Duration::from_secs(10), || async {
        let log = app.get(&format!("/app/{a}/alert"), 200).await;
        log["data"][0]["attempts"] == 1
    })
    .await;
    assert!(tried, "the alert was not tried");
    let log = app.get(&format!("/app/{a}/alert"), 200).await;
    assert_eq!(log["data"][0]["status"], "pending", "{log}");
    assert!(
        log["data"][0]["result"].as_str().unwrap().contains("SMTP"),
        "{log}"
    );

    let Some(smtp) = SmtpSink::start(port, None) else {
        return;
    };
    // Not before its retry is due; then once.
    assert_eq!(app.notifier.run_once().await.unwrap(), 0);
    app.clock.advance(Duration::from_secs(31));
    let sent = wait_for(Duration::from_secs(10), || async {
        app.get(&format!("/app/{a}/alert"), 200).await["data"][0]["status"] == "sent"
    })
    .await;
    assert!(sent, "the alert was not sent once the server was back");
    assert_eq!(smtp.wait_for(1, Duration::from_secs(5)).await.len(), 1);
    app.clock.advance(Duration::from_secs(3600));
    assert_eq!(app.notifier.run_once().await.unwrap(), 0);
    assert_eq!(smtp.received().len(), 1);
    let log = app.get(&format!("/app/{a}/alert"), 200).await;
    assert_eq!(log["data"][0]["attempts"], 2);
}

/// An application whose alerts go to the chat webhook at `chat`, and whose endpoint (at
/// `rx`) has just been disabled by a 410: (application, the endpoint's URL).
async fn chat_told_of_a_disabled_endpoint(
    app: &TestApp,
    rx: &TestReceiver,
    chat: &TestReceiver,
) -> (String, String) {
    let (a, ep, url) = endpoint_that_is_gone(app, rx).await;
    app.post(
        &format!("/app/{a}/alert-recipient"),
        json!({ "address": format!("{}/slack", chat.url) }),
        201,
    )
    .await;
    disable_with_a_410(app, &a, &ep).await;
    (a, url)
}

#[tokio::test]
async fn a_chat_webhook_gets_the_alert_as_slack_compatible_text() {
    let app = TestApp::spawn().await;
    let rx = TestReceiver::start().await;
    let chat = TestReceiver::start().await;
    let (_, url) = chat_told_of_a_disabled_endpoint(&app, &rx, &chat).await;
    let got = chat.wait_for_count(1, Duration::from_secs(10)).await;
    let text = got[0].json()["text"].as_str().unwrap().to_owned();
    assert!(
        text.contains("Endpoint disabled") && text.contains(&url),
        "{text}"
    );
    assert!(text.contains("410 Gone"), "{text}");
}

/// A chat webhook that can never take the alert (a destination hookbox refuses to send to, a
/// webhook its chat server no longer knows) is given up at once, not tried for a day.
#[tokio::test]
async fn a_chat_webhook_that_can_never_take_the_alert_is_given_up_at_once() {
    let app = TestApp::spawn().await;
    let rx = TestReceiver::start().await;
    let chat = TestReceiver::start().await;
    chat.set_default(Reply::status(404).body("no_service"));
    let (a, ep, _) = endpoint_that_is_gone(&app, &rx).await;
    for address in [
        "http://10.0.0.1/slack".to_owned(),
        format!("{}/slack", chat.url),
    ] {
        app.post(
            &format!("/app/{a}/alert-recipient"),
            json!({ "address": address }),
            201,
        )
        .await;
    }
    disable_with_a_410(&app, &a, &ep).await;
    let given_up = wait_for(Duration::from_secs(10), || async {
        app.notifier.run_once().await.unwrap();
        let log = app.get(&format!("/app/{a}/alert"), 200).await;
        let data = log["data"].as_array().unwrap().clone();
        data.len() == 2 && data.iter().all(|n| n["status"] == "failed")
    })
    .await;
    let log = app.get(&format!("/app/{a}/alert"), 200).await;
    assert!(given_up, "{log}");
    for n in log["data"].as_array().unwrap() {
        assert_eq!(n["attempts"], 1, "{n}");
    }
    assert!(log.to_string().contains("destination refused"), "{log}");
    assert!(
        log.to_string().contains("answered 404: no_service"),
        "{log}"
    );
}

/// A chat server's answer may hold NUL bytes: the log keeps it readable (U+FFFD), and the
/// alert is marked sent on every backend.
#[tokio::test]
async fn a_chat_webhook_answer_with_nul_bytes_is_logged_and_the_alert_marked_sent() {
    let app = TestApp::spawn().await;
    let rx = TestReceiver::start().await;
    let chat = TestReceiver::start().await;
    chat.set_default(Reply::status(200).body("ok\0"));
    let (a, _) = chat_told_of_a_disabled_endpoint(&app, &rx, &chat).await;
    chat.wait_for_count(1, Duration::from_secs(10)).await;
    let sent = wait_for(Duration::from_secs(10), || async {
        app.get(&format!("/app/{a}/alert"), 200).await["data"][0]["status"] == "sent"
    })
    .await;
    assert!(sent, "the alert is not marked sent");
    let log = app.get(&format!("/app/{a}/alert"), 200).await;
    assert!(
        log["data"][0]["result"]
            .as_str()
            .unwrap()
            .contains("ok\u{fffd}"),
        "{log:#?}"
    );
}

#[tokio::test]
async fn recipients_are_checked_and_belong_to_their_application() {
    let app = TestApp::spawn().await;
    let a = app.create_app("a").await;
    let b = app.create_app("b").await;
    for (body, field) in [
        (json!({ "address": "not an address" }), "address"),
        (json!({ "address": "https://" }), "address"),
        (json!({ "address": "x@example.com", "rules": [] }), "rules"),
    ] {
        let e = app
            .post(&format!("/app/{a}/alert-recipient"), body.clone(), 422)
            .await;
        assert_eq!(e["detail"][0]["loc"], json!(["body", field]), "{body}: {e}");
    }
    for body in [
        json!({ "channel": "email", "address": "x@example.com" }),
        json!({ "address": "x@example.com", "rules": ["no.such.rule"] }),
    ] {
        let e = app
            .post(&format!("/app/{a}/alert-recipient"), body.clone(), 422)
            .await;
        assert_eq!(e["detail"][0]["loc"][0], "body", "{body}: {e}");
    }
    let r = app
        .post(
            &format!("/app/{a}/alert-recipient"),
            json!({ "address": "x@example.com" }),
            201,
        )
        .await;
    let id = r["id"].as_str().unwrap();
    // The same address twice: refused.
    app.post(
        &format!("/app/{a}/alert-recipient"),
        json!({ "address": "X@example.com" }),
        409,
    )
    .await;
    // Another application neither sees nor removes it.
    assert_eq!(
        app.get(&format!("/app/{b}/alert-recipient"), 200).await["data"],
        json!([])
    );
    app.call(
        "DELETE",
        &format!("/app/{b}/alert-recipient/{id}"),
        None,
        404,
    )
    .await;
    app.call(
        "DELETE",
        &format!("/app/{a}/alert-recipient/{id}"),
        None,
        204,
    )
    .await;
    assert_eq!(
        app.get(&format!("/app/{a}/alert-recipient"), 200).await["data"],
        json!([])
    );
}

#[tokio::test]
async fn the_console_sends_a_test_notification_and_shows_the_server_s_answer_and_the_log() {
    let port = free_port();
    let Some(smtp) = SmtpSink::start(port, None) else {
        return;
    };
    let app = server(port).await;
    let mut c = Console::first_admin(&app).await;
    let page = c.page("/admin/notifications").await;
    assert!(
        page.contains("127.0.0.1:"),
        "the SMTP server is shown: {page}"
    );
    assert!(page.contains("ops@example.com") && page.contains("from configuration"));
    let r = c
        .submit(
            "/admin/notifications/test",
            &[("test_address", "me@example.com")],
        )
        .await;
    assert_eq!(r.status, 200);
    assert!(
        r.body.contains("Sent. The server answered: <code>250"),
        "{}",
        r.body
    );
    let mails = smtp.wait_for(1, Duration::from_secs(5)).await;
    assert_eq!(mails[0].to, ["me@example.com"]);
    assert!(mails[0].subject.contains("Test notification"));
    let page = c.page("/admin/notifications").await;
    assert!(
        page.contains("me@example.com") && page.contains(">sent<"),
        "{page}"
    );

    // Recipients added in the console get alerts; a bad address is refused next to the field.
    let r = c
        .submit(
            "/admin/notifications/recipients",
            &[("address", "nope"), ("rule:endpoint.disabled", "on")],
        )
        .await;
    assert_eq!(r.status, 422);
    assert!(r.body.contains("not an email address"), "{}", r.body);
    let r = c
        .submit(
            "/admin/notifications/recipients",
            &[
                ("address", "oncall@example.com"),
                ("rule:endpoint.disabled", "on"),
            ],
        )
        .await;
    assert_eq!(
        r.location.as_deref(),
        Some("/admin/notifications?ok=recipient-added")
    );
    assert!(c
        .page("/admin/notifications")
        .await
        .contains("oncall@example.com"));
}

#[tokio::test]
async fn without_an_smtp_server_the_page_and_the_test_say_why() {
    let app = TestApp::spawn().await;
    let mut c = Console::first_admin(&app).await;
    let page = c.page("/admin/notifications").await;
    assert!(page.contains("no SMTP server is configured"), "{page}");
    let r = c
        .submit(
            "/admin/notifications/test",
            &[("test_address", "me@example.com")],
        )
        .await;
    assert_eq!(r.status, 200);
    assert!(
        r.body.contains("Not sent: no SMTP server is configured"),
        "{}",
        r.body
    );
}

/// kill -9 while an alert is being sent (its SMTP server never answers): after the restart
/// the alert arrives, once.
#[cfg(unix)]
#[tokio::test]
async fn an_alert_being_sent_when_the_server_is_killed_arrives_after_the_restart() {
    crate::sqlite_only!(
        "one process's leases; on PostgreSQL another node takes an alert over once its lease ends"
    );
    use crate::support::server::{create_token, Server};
    let data = tempfile::tempdir().unwrap();
    let dir = data.path();
    // An SMTP server that accepts the connection and never says a word.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_port = silent.local_addr().unwrap().port().to_string();
    let (accepted_tx, accepted) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in silent.incoming().map_while(Result::ok) {
            held.push(conn);
            let _ = accepted_tx.send(());
        }
    });
    let env = |port: &str| {
        vec![
            ("HOOKBOX_SMTP_HOST", "127.0.0.1".to_owned()),
            ("HOOKBOX_SMTP_PORT", port.to_owned()),
            ("HOOKBOX_SMTP_TLS", "none".to_owned()),
            ("HOOKBOX_SMTP_FROM", "hookbox@example.com".to_owned()),
            (
                "HOOKBOX_ALERT_EMAILS",
                "ops@example.com, oncall@example.com".to_owned(),
            ),
        ]
    };
    let token = create_token(dir);
    let rx = TestReceiver::start().await;
    rx.set_default(Reply::status(410));
    let vars = env(&silent_port);
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let server = Server::start_with_env(dir, dir.join("1.log"), &vars).await;
    let client = reqwest::Client::new();
    let call = |method: &str, path: &str, body: serde_json::Value| {
        client
            .request(method.parse().unwrap(), format!("{}{path}", server.api))
            .bearer_auth(&token)
            .json(&body)
            .send()
    };
    let a: serde_json::Value = call("POST", "/app", json!({ "name": "Shop" }))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let a = a["id"].as_str().unwrap().to_owned();
    call(
        "POST",
        &format!("/app/{a}/endpoint"),
        json!({ "url": format!("{}/hook", rx.url) }),
    )
    .await
    .unwrap();
    call(
        "POST",
        &format!("/app/{a}/msg"),
        json!({ "eventType": "order.created", "payload": {} }),
    )
    .await
    .unwrap();
    // The alert is being sent: its SMTP connection is open, unanswered.
    tokio::task::spawn_blocking(move || accepted.recv_timeout(Duration::from_secs(15)))
        .await
        .unwrap()
        .expect("the alert's SMTP connection");
    server.kill_9();

    let port = free_port();
    let Some(smtp) = SmtpSink::start(port, None) else {
        return;
    };
    let vars = env(&port.to_string());
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let server = Server::start_with_env(dir, dir.join("2.log"), &vars).await;
    let mails = smtp.wait_for(2, Duration::from_secs(15)).await;
    let mut to: Vec<_> = mails.iter().map(|m| m.to.join(",")).collect();
    to.sort();
    assert_eq!(
        to,
        ["oncall@example.com", "ops@example.com"],
        "{}",
        server.stderr()
    );
    assert!(mails
        .iter()
        .all(|m| m.subject.contains("Endpoint disabled")));
    drop(server);
}

#[tokio::test]
async fn thirty_messages_that_run_out_of_retries_make_one_email_per_recipient() {
    let port = free_port();
    let Some(smtp) = SmtpSink::start(port, None) else {
        return;
    };
    let app = server(port).await;
    let rx = TestReceiver::start().await;
    let (a, _, url) = endpoint_answering(&app, &rx, Reply::status(500)).await;
    for i in 0..30 {
        let t = if i % 3 == 0 {
            "order.paid"
        } else {
            "order.created"
        };
        app.send(&a, t, json!({ "i": i })).await;
    }
    // Three attempts each (the test schedule), then no more.
    rx.wait_for_count(90, Duration::from_secs(20)).await;
    app.settled().await;
    // Gathered for five minutes, then sent as one.
    assert_eq!(app.notifier.run_once().await.unwrap(), 0);
    assert!(smtp.received().is_empty());
    app.clock.advance(Duration::from_secs(301));
    let mails = smtp.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(mails.len(), 1, "{mails:#?}");
    let m = &mails[0];
    assert_eq!(m.to, ["ops@example.com"]);
    assert!(
        m.subject.contains("30 messages ran out of retries"),
        "{}",
        m.subject
    );
    assert!(m.subject.contains(&url), "{}", m.subject);
    assert!(
        m.text.contains("order.created (20), order.paid (10)"),
        "{}",
        m.text
    );
    assert!(m.text.contains("HTTP 500"), "{}", m.text);
    assert!(
        m.text
            .contains(&format!("{}/admin/apps/{a}/endpoints/", app.root)),
        "{}",
        m.text
    );
    // No second alert ten minutes later (two gathering windows; within the lease of the
    // alert whose outcome may still be being written).
    app.clock.advance(Duration::from_secs(600));
    assert_eq!(app.notifier.run_once().await.unwrap(), 0);
    assert_eq!(smtp.received().len(), 1);
}

/// Opens a portal link for application `app_id`; the browser, logged in to the portal.
async fn portal_for(app: &TestApp, app_id: &str) -> Console {
    let access = app
        .post(&format!("/auth/app-portal-access/{app_id}"), json!({}), 200)
        .await;
    let url = access["url"].as_str().unwrap();
    let mut c = Console::new(app);
    let r = c.get(url.strip_prefix(&app.root).unwrap()).await;
    assert_eq!(r.status, 303, "{r:?}");
    c
}

#[tokio::test]
async fn portal_users_set_their_own_address_and_see_only_their_application_s_alerts() {
    let port = free_port();
    let Some(smtp) = SmtpSink::start(port, None) else {
        return;
    };
    let app = server(port).await;
    let rx = TestReceiver::start().await;
    let (a, ep, _) = endpoint_that_is_gone(&app, &rx).await;
    let b = app.create_app("Other Inc").await;
    app.post(
        &format!("/app/{b}/alert-recipient"),
        json!({ "address": "other@example.com" }),
        201,
    )
    .await;

    let mut c = portal_for(&app, &a).await;
    let webhooks = c.page(&format!("/portal/apps/{a}/webhooks")).await;
    assert!(
        webhooks.contains("Email me when an endpoint fails"),
        "{webhooks}"
    );
    let form = c.page(&format!("/portal/apps/{a}/alerts")).await;
    let csrf = crate::support::console::csrf_in(&form).unwrap();
    let r = c
        .post(
            &format!("/portal/apps/{a}/alerts"),
            &[
                ("csrf", csrf.as_str()),
                ("address", "dev@customer.example"),
                ("rule:endpoint.disabled", "on"),
            ],
        )
        .await;
    assert_eq!(
        r.location.as_deref(),
        Some(format!("/portal/apps/{a}/alerts?ok=recipient-added").as_str())
    );
    let listed = app.get(&format!("/app/{a}/alert-recipient"), 200).await;
    assert_eq!(listed["data"][0]["address"], "dev@customer.example");
    assert_eq!(listed["data"][0]["rules"], json!(["endpoint.disabled"]));

    disable_with_a_410(&app, &a, &ep).await;
    let mails = smtp.wait_for(2, Duration::from_secs(10)).await;
    let mut to: Vec<_> = mails.iter().map(|m| m.to.join(",")).collect();
    to.sort();
    assert_eq!(to, ["dev@customer.example", "ops@example.com"]);

    // The portal shows its own recipient's alert, not the operator's, nor another app's
    // (marked sent once the mail server has answered, after it counted the mail).
    let alerts = format!("/portal/apps/{a}/alerts");
    let sent = wait_for(Duration::from_secs(10), || {
        let mut c2 = c.clone();
        let p = alerts.clone();
        async move { c2.page(&p).await.contains(">sent<") }
    })
    .await;
    assert!(sent, "the portal's alert is not marked sent");
    let page = c.page(&alerts).await;
    assert!(
        page.contains("dev@customer.example") && page.contains(">sent<"),
        "{page}"
    );
    assert!(
        !page.contains("ops@example.com") && !page.contains("other@example.com"),
        "{page}"
    );
    assert_eq!(c.get(&format!("/portal/apps/{b}/alerts")).await.status, 404);
    let other = app.get(&format!("/app/{b}/alert-recipient"), 200).await;
    let id = other["data"][0]["id"].as_str().unwrap();
    let csrf = crate::support::console::csrf_in(&page).unwrap();
    for path in [
        format!("/portal/apps/{b}/alerts/{id}/remove"),
        format!("/portal/apps/{a}/alerts/{id}/remove"),
    ] {
        let r = c.post(&path, &[("csrf", csrf.as_str())]).await;
        assert_eq!(r.status, 404, "POST {path}");
    }
    assert_eq!(
        app.get(&format!("/app/{b}/alert-recipient"), 200).await["data"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

/// The emails received so far whose subject has `about`.
fn mails_about(smtp: &SmtpSink, about: &str) -> Vec<crate::support::smtp::Mail> {
    smtp.received()
        .into_iter()
        .filter(|m| m.subject.contains(about))
        .collect()
}

/// Looks at the endpoints' health until `n` emails whose subject has `about` have arrived;
/// those emails.
async fn evaluate_until_mailed(
    app: &TestApp,
    smtp: &SmtpSink,
    about: &str,
    n: usize,
) -> Vec<crate::support::smtp::Mail> {
    let arrived = wait_for(Duration::from_secs(10), || async {
        app.notifier.evaluate().await.unwrap();
        app.notifier.run_once().await.unwrap();
        mails_about(smtp, about).len() >= n
    })
    .await;
    assert!(arrived, "no email about {about}: {:#?}", smtp.received());
    mails_about(smtp, about)
}

/// With the shortest window (a minute), failures late in a minute still count at the next
/// look, early in the next minute: the window takes in the minute it starts in (it had
/// taken whole minutes only, which for a 1-minute window left the current one alone).
#[tokio::test]
async fn with_a_one_minute_window_failures_late_in_a_minute_alert_early_in_the_next() {
    let port = free_port();
    let Some(smtp) = SmtpSink::start(port, None) else {
        return;
    };
    let app = server_with(port, |cfg| cfg.alerts.window = Duration::from_secs(60)).await;
    // 50 s into a minute of the server's clock.
    let into = app.clock.now_ms().rem_euclid(60_000);
    app.clock.advance(Duration::from_millis(
        u64::try_from((50_000 - into).rem_euclid(60_000)).unwrap(),
    ));
    let rx = TestReceiver::start().await;
    let (a, _, _) = endpoint_answering(&app, &rx, Reply::status(500)).await;
    for _ in 0..4 {
        app.send(&a, "order.created", json!({})).await;
    }
    rx.wait_for_count(12, Duration::from_secs(20)).await;
    app.settled().await;
    // 20 s later: 10 s into the next minute.
    app.clock.advance(Duration::from_secs(20));
    let failing = evaluate_until_mailed(&app, &smtp, "Endpoint failing", 1).await;
    assert!(
        failing[0].text.contains("12 of 12 in the last minute."),
        "{}",
        failing[0].text
    );
}

#[tokio::test]
async fn an_error_rate_over_the_threshold_alerts_once_then_once_more_when_it_recovers() {
    let port = free_port();
    let Some(smtp) = SmtpSink::start(port, None) else {
        return;
    };
    let app = server(port).await;
    let rx = TestReceiver::start().await;
    let (a, ep, url) = endpoint_answering(&app, &rx, Reply::status(500)).await;
    // Four messages, three attempts each: 12 failed attempts, over the 10 needed.
    for _ in 0..4 {
        app.send(&a, "order.created", json!({})).await;
    }
    rx.wait_for_count(12, Duration::from_secs(20)).await;
    app.settled().await;

    let failing = evaluate_until_mailed(&app, &smtp, "Endpoint failing", 1).await;
    assert_eq!(failing.len(), 1, "{failing:#?}");
    let m = &failing[0];
    assert_eq!(m.to, ["ops@example.com"]);
    assert!(
        m.subject.contains(&url) && m.subject.contains("Shop"),
        "{}",
        m.subject
    );
    assert!(
        m.text.contains("12 of 12 in the last 15 minutes"),
        "{}",
        m.text
    );
    let link = format!("{}/admin/apps/{a}/endpoints/{ep}", app.root);
    assert!(m.text.contains(&link), "{}", m.text);
    // Still failing: no second alert.
    app.notifier.evaluate().await.unwrap();
    app.notifier.run_once().await.unwrap();
    assert_eq!(mails_about(&smtp, "Endpoint failing").len(), 1);
    assert!(mails_about(&smtp, "recovered").is_empty());

    // Fixed; past the window of the failures, a message is delivered: recovered, once.
    rx.set_default(Reply::status(200));
    app.clock.advance(Duration::from_secs(16 * 60));
    app.send(&a, "order.created", json!({})).await;
    rx.wait_for_count(13, Duration::from_secs(20)).await;
    let recovered = evaluate_until_mailed(&app, &smtp, "Endpoint recovered", 1).await;
    assert_eq!(recovered.len(), 1, "{recovered:#?}");
    let m = &recovered[0];
    assert!(m.subject.contains(&url), "{}", m.subject);
    assert!(m.text.contains("Was:         failing since"), "{}", m.text);
    assert!(m.text.contains("Resolved:"), "{}", m.text);
    // The console shows the incident ended.
    let mut console = Console::first_admin(&app).await;
    let page = console.page("/admin/notifications").await;
    let incidents = &page[page.find("id=\"incidents\"").unwrap()..];
    assert!(
        incidents.contains("failing") && !incidents.contains(">open<"),
        "{incidents}"
    );
    app.notifier.evaluate().await.unwrap();
    app.notifier.run_once().await.unwrap();
    assert_eq!(mails_about(&smtp, "Endpoint failing").len(), 1);
    assert_eq!(mails_about(&smtp, "recovered").len(), 1);

    // Failing again within the hour of the first alert (the cooldown): kept quiet…
    rx.set_default(Reply::status(500));
    for _ in 0..4 {
        app.send(&a, "order.created", json!({})).await;
    }
    rx.wait_for_count(25, Duration::from_secs(20)).await;
    app.settled().await;
    app.notifier.evaluate().await.unwrap();
    app.notifier.run_once().await.unwrap();
    assert_eq!(mails_about(&smtp, "Endpoint failing").len(), 1);
    // …and told once the cooldown is over, if it is still failing then.
    app.clock.advance(Duration::from_secs(45 * 60));
    app.notifier.evaluate().await.unwrap();
    app.notifier.run_once().await.unwrap();
    assert_eq!(
        mails_about(&smtp, "Endpoint failing").len(),
        1,
        "no attempts lately"
    );
    for _ in 0..4 {
        app.send(&a, "order.created", json!({})).await;
    }
    rx.wait_for_count(37, Duration::from_secs(20)).await;
    app.settled().await;
    let failing = evaluate_until_mailed(&app, &smtp, "Endpoint failing", 2).await;
    assert_eq!(failing.len(), 2, "{failing:#?}");
}

#[tokio::test]
async fn an_endpoint_that_keeps_answering_401_gets_the_signature_hint() {
    let port = free_port();
    let Some(smtp) = SmtpSink::start(port, None) else {
        return;
    };
    let app = server(port).await;
    let rx = TestReceiver::start().await;
    let (a, _, url) = endpoint_answering(&app, &rx, Reply::status(401)).await;
    app.post(
        &format!("/app/{a}/alert-recipient"),
        json!({ "address": "customer@example.com", "rules": ["endpoint.unauthorized"] }),
        201,
    )
    .await;
    // One message, three attempts, each answered 401.
    app.send(&a, "order.created", json!({})).await;
    rx.wait_for_count(3, Duration::from_secs(20)).await;
    app.settled().await;
    evaluate_until_mailed(&app, &smtp, "check the signing secret", 1).await;
    let got = smtp.wait_for(2, Duration::from_secs(10)).await;
    let hinted: Vec<_> = got
        .iter()
        .filter(|m| m.subject.contains("401/403"))
        .collect();
    assert_eq!(hinted.len(), 2, "{got:#?}");
    for m in &hinted {
        assert!(m.text.contains("rejecting the signature"), "{}", m.text);
        assert!(m.text.contains("3 of 3 attempts"), "{}", m.text);
    }
    // Not also "failing": one incident per endpoint.
    assert!(mails_about(&smtp, "Endpoint failing").is_empty());

    // The console lists the open incident; the portal of another application does not.
    let mut console = Console::first_admin(&app).await;
    let page = console.page("/admin/notifications").await;
    let incidents = &page[page.find("id=\"incidents\"").unwrap()..];
    assert!(
        incidents.contains("answering 401/403") && incidents.contains(">open<"),
        "{incidents}"
    );
    assert!(incidents.contains(&url), "{incidents}");
    let other = app.create_app("Other").await;
    let mut portal = portal_for(&app, &other).await;
    let page = portal.page(&format!("/portal/apps/{other}/alerts")).await;
    assert!(!page.contains(&url), "{page}");
    assert!(page.contains("No endpoint has failed"), "{page}");
    let mut portal = portal_for(&app, &a).await;
    let page = portal.page(&format!("/portal/apps/{a}/alerts")).await;
    assert!(page.contains(&url) && page.contains(">open<"), "{page}");
}

#[tokio::test]
async fn attempts_that_time_out_are_told_as_such() {
    let port = free_port();
    let Some(smtp) = SmtpSink::start(port, None) else {
        return;
    };
    let app = server_with(port, |cfg| {
        cfg.alerts.min_attempts = 3;
        cfg.delivery.request_timeout = Duration::from_millis(300);
    })
    .await;
    let rx = TestReceiver::start().await;
    let delayed = Reply::status(200).delay(Duration::from_secs(2));
    let (a, _, _) = endpoint_answering(&app, &rx, delayed).await;
    app.send(&a, "order.created", json!({})).await;
    rx.wait_for_count(3, Duration::from_secs(20)).await;
    app.settled().await;
    let m = evaluate_until_mailed(&app, &smtp, "Endpoint timing out", 1).await;
    assert!(
        m[0].text.contains("3 of 3 in the last 15 minutes"),
        "{}",
        m[0].text
    );
    assert!(m[0].text.contains("answers too slowly"), "{}", m[0].text);
}

#[tokio::test]
async fn a_disabled_endpoint_that_is_enabled_and_delivers_again_has_recovered() {
    let port = free_port();
    let Some(smtp) = SmtpSink::start(port, None) else {
        return;
    };
    let app = server(port).await;
    let rx = TestReceiver::start().await;
    let (a, ep, _) = endpoint_that_is_gone(&app, &rx).await;
    disable_with_a_410(&app, &a, &ep).await;
    smtp.wait_for(1, Duration::from_secs(10)).await;
    // Enabled, not delivered yet: not recovered.
    rx.set_default(Reply::status(200));
    app.call(
        "PATCH",
        &format!("/app/{a}/endpoint/{ep}"),
        Some(json!({ "disabled": false })),
        200,
    )
    .await;
    app.notifier.evaluate().await.unwrap();
    app.notifier.run_once().await.unwrap();
    assert!(mails_about(&smtp, "recovered").is_empty());
    app.send(&a, "order.created", json!({})).await;
    let m = evaluate_until_mailed(&app, &smtp, "Endpoint recovered", 1).await;
    assert!(m[0].text.contains("disabled since"), "{}", m[0].text);
}

#[tokio::test]
async fn every_rule_can_be_chosen_through_the_api() {
    let app = TestApp::spawn().await;
    let a = app.create_app("a").await;
    let all = [
        "endpoint.disabled",
        "message.exhausted",
        "endpoint.failing",
        "endpoint.unauthorized",
        "endpoint.recovered",
    ];
    let r = app
        .post(
            &format!("/app/{a}/alert-recipient"),
            json!({ "address": "all@example.com" }),
            201,
        )
        .await;
    assert_eq!(r["rules"], json!(all));
    for (i, rule) in all.iter().enumerate() {
        let r = app
            .post(
                &format!("/app/{a}/alert-recipient"),
                json!({ "address": format!("r{i}@example.com"), "rules": [rule] }),
                201,
            )
            .await;
        assert_eq!(r["rules"], json!([rule]));
    }
}
