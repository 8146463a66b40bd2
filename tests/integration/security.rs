//! Promises hookbox makes to an attacker, one test each: nothing it accepts breaks a later
//! read, login throttling cannot be raced or turned against the admin, outbound requests
//! cannot be pointed inward, errors tell callers nothing about internal names, the reserved
//! operational application is not writable, endpoint headers are sealed and redacted, files
//! are private, and a full disk is reported as such.

use crate::observability::{get, scrape};
use crate::support::console::{csrf_in, Console, PASSWORD};
use crate::support::{TestApp, TestReceiver};
use serde_json::{json, Value};
use std::time::Duration;

/// `{"x": [[…1…]]}` nested `levels` deep (the object is level 1).
fn nested(levels: usize) -> String {
    format!(
        "{{\"x\": {}1{}}}",
        "[".repeat(levels - 1),
        "]".repeat(levels - 1)
    )
}

/// POSTs `{"eventType": "deep.event", "payload": <nested(levels)>}` to `path`.
async fn post_nested(app: &TestApp, path: &str, levels: usize) -> (u16, String) {
    let body = format!(
        r#"{{"eventType": "deep.event", "payload": {}}}"#,
        nested(levels)
    );
    app.raw("POST", path, body.into_bytes()).await
}

/// The path (and query) of an absolute URL on the test server.
fn path_of(app: &TestApp, url: &str) -> String {
    url.strip_prefix(&app.root)
        .unwrap_or_else(|| panic!("{url} is not on {}", app.root))
        .to_owned()
}

/// Opens a portal link for `app_id` in a fresh client; returns it and its landing page path.
async fn portal(app: &TestApp, app_id: &str) -> (Console, String) {
    let access = app
        .post(&format!("/auth/app-portal-access/{app_id}"), json!({}), 200)
        .await;
    let mut c = Console::new(app);
    let r = c.get(&path_of(app, access["url"].as_str().unwrap())).await;
    assert_eq!(r.status, 303, "{r:?}");
    (c, r.location.unwrap())
}

#[tokio::test]
async fn deeply_nested_payloads_are_refused_where_they_enter_and_the_deepest_allowed_reads_back() {
    let app = TestApp::spawn().await;
    let receiver = TestReceiver::start().await;
    let app_id = app.create_app("Nest").await;
    app.create_event_type("deep.event").await;
    let (ep, _) = app
        .create_endpoint(&app_id, json!({ "url": receiver.url }))
        .await;

    // The API: a message payload 200 levels deep is a 422 naming the field.
    let (status, text) = post_nested(&app, &format!("/app/{app_id}/msg"), 200).await;
    assert_eq!(status, 422, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["detail"][0]["loc"], json!(["body", "payload"]), "{v}");
    assert!(text.contains("64 levels"), "{text}");
    // 65 is one too many; 64 is accepted.
    let (status, _) = post_nested(&app, &format!("/app/{app_id}/msg"), 65).await;
    assert_eq!(status, 422);
    let deepest: Value = serde_json::from_str(&nested(64)).unwrap();
    let msg = app.send(&app_id, "deep.event", deepest.clone()).await;
    // Every read of it answers, with the payload as sent.
    assert_eq!(
        app.get(&format!("/app/{app_id}/msg/{msg}"), 200).await["payload"],
        deepest
    );
    let list = app.get(&format!("/app/{app_id}/msg"), 200).await;
    assert_eq!(list["data"][0]["payload"], deepest);
    let list = app
        .get(&format!("/app/{app_id}/endpoint/{ep}/msg"), 200)
        .await;
    assert_eq!(list["data"][0]["payload"], deepest);
    app.wait_attempts(&app_id, &msg, 1, Duration::from_secs(10))
        .await;
    let attempts = app
        .get(
            &format!("/app/{app_id}/attempt/msg/{msg}?with_msg=true"),
            200,
        )
        .await;
    assert_eq!(attempts["data"][0]["msg"]["payload"], deepest, "{attempts}");

    // Event type schemas (where examples live).
    let schemas = format!(r#"{{"1": {}}}"#, nested(70));
    let body = format!(r#"{{"name": "deep.schema", "description": "d", "schemas": {schemas}}}"#);
    let (status, text) = app.raw("POST", "/event-type", body.into_bytes()).await;
    assert_eq!(status, 422, "{text}");
    assert!(text.contains(r#""loc":["body","schemas"]"#), "{text}");

    // The API's test send.
    let (status, text) = post_nested(&app, &format!("/app/{app_id}/endpoint/{ep}/test"), 100).await;
    assert_eq!(status, 422, "{text}");

    // The console's catalog and Testing tab, and the portal's Testing tab.
    let mut admin = Console::first_admin(&app).await;
    let r = admin
        .submit(
            "/admin/event-types",
            &[
                ("name", "deep.console"),
                ("description", "d"),
                ("example", &nested(100)),
            ],
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(r.body.contains("64 levels"), "{}", r.body);
    let testing = format!("/admin/apps/{app_id}/endpoints/{ep}/testing");
    let r = admin
        .submit(
            &testing,
            &[("event_type", "deep.event"), ("payload", &nested(100))],
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(r.body.contains("64 levels"), "{}", r.body);
    let (mut customer, _) = portal(&app, &app_id).await;
    let testing = format!("/portal/apps/{app_id}/endpoints/{ep}/testing");
    let csrf = csrf_in(&customer.page(&testing).await).unwrap();
    let r = customer
        .post(
            &testing,
            &[
                ("csrf", &csrf),
                ("event_type", "deep.event"),
                ("payload", &nested(100)),
            ],
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(r.body.contains("64 levels"), "{}", r.body);
    assert_eq!(
        app.get(&format!("/app/{app_id}/msg"), 200).await["data"]
            .as_array()
            .unwrap()
            .len(),
        1,
        "nothing refused was stored"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_passwords_sent_at_once_are_evaluated_at_most_the_allowed_number_of_times() {
    let app = TestApp::spawn().await;
    Console::first_admin(&app).await;
    let mut c = Console::new(&app);
    let token = c.login_token().await;
    let mut tries = tokio::task::JoinSet::new();
    for _ in 0..30 {
        let mut c = c.clone();
        let token = token.clone();
        tries.spawn(async move {
            c.post(
                "/admin/login",
                &[
                    ("login_csrf", token.as_str()),
                    ("username", "admin"),
                    ("password", "wrong password!"),
                ],
            )
            .await
            .status
        });
    }
    let statuses = tries.join_all().await;
    let evaluated = statuses.iter().filter(|s| **s == 401).count();
    let refused = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!(evaluated + refused, 30, "{statuses:?}");
    assert!(
        evaluated <= 5,
        "{evaluated} wrong passwords were checked: {statuses:?}"
    );
}

#[tokio::test]
async fn behind_a_trusted_proxy_a_client_that_failed_cannot_lock_out_another() {
    let app =
        TestApp::spawn_with(|cfg| cfg.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()])
            .await;
    Console::first_admin(&app).await;
    let login = |c: &mut Console, from: &'static str, password: &'static str| {
        let mut c = c.clone();
        async move {
            c.login_with_headers("admin", password, &[("x-forwarded-for", from)])
                .await
                .status
        }
    };
    let mut attacker = Console::new(&app);
    for _ in 0..5 {
        assert_eq!(login(&mut attacker, "203.0.113.9", "guess").await, 401);
    }
    assert_eq!(login(&mut attacker, "203.0.113.9", "guess").await, 429);
    // The admin, from elsewhere, still gets in with the right password.
    let mut admin = Console::new(&app);
    assert_eq!(login(&mut admin, "198.51.100.7", PASSWORD).await, 303);
    // The attacker's address stays throttled, whatever it sends.
    assert_eq!(login(&mut attacker, "203.0.113.9", PASSWORD).await, 429);
}

#[tokio::test]
async fn forwarded_headers_from_an_untrusted_peer_are_ignored() {
    let app = TestApp::spawn().await;
    Console::first_admin(&app).await;
    let mut c = Console::new(&app);
    // Each try claims another address; without trusted proxies the peer's address counts.
    for n in 0..5 {
        let from = format!("203.0.113.{n}");
        let r = c
            .login_with_headers("admin", "guess", &[("x-forwarded-for", &from)])
            .await;
        assert_eq!(r.status, 401);
    }
    let r = c
        .login_with_headers("admin", "guess", &[("x-forwarded-for", "198.51.100.99")])
        .await;
    assert_eq!(r.status, 429);
    // A portal link is built on the host the request came to, not on a forwarded one.
    let app_id = app.create_app("Fwd").await;
    let resp = app
        .client
        .post(format!("{}/auth/app-portal-access/{app_id}", app.base))
        .bearer_auth(&app.token)
        .header("x-forwarded-host", "evil.example")
        .header("forwarded", "host=evil.example;proto=https")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    let v: Value = resp.json().await.unwrap();
    let url = v["url"].as_str().unwrap();
    assert!(url.starts_with(&app.root), "{url}");
}

#[tokio::test]
async fn portal_links_are_built_on_the_public_url() {
    let app = TestApp::spawn_with(|cfg| {
        cfg.public_url = Some("https://hooks.example.com/".into());
    })
    .await;
    let app_id = app.create_app("Pub").await;
    let v = app
        .post(&format!("/auth/app-portal-access/{app_id}"), json!({}), 200)
        .await;
    let token = v["token"].as_str().unwrap();
    assert_eq!(
        v["url"].as_str().unwrap(),
        format!("https://hooks.example.com/portal/open/{token}")
    );
}

#[tokio::test]
async fn refused_destinations_do_not_tell_api_or_portal_users_what_a_name_resolves_to() {
    let app = TestApp::spawn_with(|cfg| cfg.allow_destinations.clear()).await;
    let app_id = app.create_app("Oracle").await;
    app.create_event_type("probe").await;
    let (ep, _) = app
        .create_endpoint(&app_id, json!({ "url": "http://localhost:9/internal" }))
        .await;
    let out = app
        .post(
            &format!("/app/{app_id}/endpoint/{ep}/test"),
            json!({ "eventType": "probe", "payload": {} }),
            200,
        )
        .await;
    let error = out["error"].as_str().unwrap();
    assert_eq!(error, "destination refused: private or reserved address");
    let attempts = app
        .get(&format!("/app/{app_id}/attempt/endpoint/{ep}"), 200)
        .await
        .to_string();
    assert!(
        !attempts.contains("127.0.0.1") && !attempts.contains("loopback"),
        "{attempts}"
    );

    let (mut customer, _) = portal(&app, &app_id).await;
    let testing = format!("/portal/apps/{app_id}/endpoints/{ep}/testing");
    let csrf = csrf_in(&customer.page(&testing).await).unwrap();
    let r = customer
        .post(
            &testing,
            &[("csrf", &csrf), ("event_type", "probe"), ("payload", "{}")],
        )
        .await;
    assert!(r.body.contains("destination refused"), "{}", r.body);
    assert!(!r.body.contains("127.0.0.1") && !r.body.contains("loopback"));
    let logs = customer
        .page(&format!("/portal/apps/{app_id}/endpoints/{ep}/logs"))
        .await;
    assert!(!logs.contains("127.0.0.1") && !logs.contains("loopback"));

    // The operator's console says what happened.
    let mut admin = Console::first_admin(&app).await;
    let r = admin
        .submit(
            &format!("/admin/apps/{app_id}/endpoints/{ep}/testing"),
            &[("event_type", "probe"), ("payload", "{}")],
        )
        .await;
    assert!(
        r.body.contains("localhost is a loopback address"),
        "{}",
        r.body
    );
}

#[tokio::test]
async fn the_operational_application_is_not_reachable_through_the_application_routes() {
    let app = TestApp::spawn().await;
    let ops = "_hookbox_operational";
    // Its endpoints are managed where they belong.
    let (receiver, _) = crate::operational::operator(&app).await;
    let operator_endpoints = || async {
        app.get("/operational-webhook/endpoint", 200).await["data"]
            .as_array()
            .unwrap()
            .len()
    };
    assert_eq!(operator_endpoints().await, 1);
    // Nothing else of it is reachable, by uid or by id.
    let listed = app.get("/app?limit=250", 200).await;
    assert!(!listed.to_string().contains(ops), "{listed}");
    app.get(&format!("/app/{ops}"), 404).await;
    app.call(
        "PATCH",
        &format!("/app/{ops}"),
        Some(json!({ "uid": "mine" })),
        404,
    )
    .await;
    let (status, _) = app
        .raw(
            "PUT",
            &format!("/app/{ops}"),
            br#"{"name": "mine"}"#.to_vec(),
        )
        .await;
    assert!(status == 404 || status == 409, "PUT answered {status}");
    app.post(
        &format!("/app/{ops}/msg"),
        json!({ "eventType": "endpoint.disabled", "payload": { "forged": true } }),
        404,
    )
    .await;
    app.post(&format!("/auth/app-portal-access/{ops}"), json!({}), 404)
        .await;
    app.post(
        "/operational-webhook/msg",
        json!({ "eventType": "endpoint.disabled", "payload": {} }),
        404,
    )
    .await;
    app.call("DELETE", &format!("/app/{ops}"), None, 404).await;
    // Its uid cannot be taken either.
    app.post("/app", json!({ "name": "x", "uid": ops }), 422)
        .await;
    assert_eq!(receiver.count(), 0, "no forged operational event was sent");
    assert_eq!(operator_endpoints().await, 1);
}

/// Every byte the database files hold, main file and WAL.
fn database_bytes(app: &TestApp) -> Vec<u8> {
    let mut all = Vec::new();
    for name in ["hookbox.db", "hookbox.db-wal"] {
        if let Ok(b) = std::fs::read(app.dir.path().join(name)) {
            all.extend(b);
        }
    }
    all
}

fn holds(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[tokio::test]
async fn endpoint_headers_are_sealed_at_rest_capped_and_redacted_in_attempt_logs() {
    let app = TestApp::spawn().await;
    let receiver = TestReceiver::start().await;
    let app_id = app.create_app("Headers").await;
    app.create_event_type("h.event").await;
    let secret = "Bearer s3cr3t-t0ken-1234567890";
    let (ep, _) = app
        .create_endpoint(
            &app_id,
            json!({ "url": receiver.url, "headers": { "Authorization": secret, "X-Tenant": "acme" } }),
        )
        .await;
    // Too much header is refused, and nothing of it is stored.
    app.call(
        "PUT",
        &format!("/app/{app_id}/endpoint/{ep}/headers"),
        Some(json!({ "headers": { "X-Big": "a".repeat(9000) } })),
        422,
    )
    .await;
    app.post(
        &format!("/app/{app_id}/endpoint"),
        json!({ "url": receiver.url, "headers": { "X-Big": "b".repeat(5000), "X-Big2": "b".repeat(5000) } }),
        422,
    )
    .await;

    let msg = app.send(&app_id, "h.event", json!({ "n": 1 })).await;
    let got = receiver.wait_for_count(1, Duration::from_secs(10)).await;
    assert_eq!(got[0].header("authorization"), Some(secret));
    assert_eq!(got[0].header("x-tenant"), Some("acme"));

    // Looked for once the attempt (with the request's headers) is written.
    app.settled().await;
    assert!(
        !holds(&database_bytes(&app), "s3cr3t-t0ken"),
        "the header's value is stored in plaintext"
    );
    // The API shows which headers are sensitive and does not return their values.
    let h = app
        .get(&format!("/app/{app_id}/endpoint/{ep}/headers"), 200)
        .await;
    assert_eq!(h["sensitive"], json!(["Authorization"]), "{h}");
    assert_eq!(h["headers"], json!({ "X-Tenant": "acme" }), "{h}");
    // A patch of another header keeps the sensitive one.
    app.call(
        "PATCH",
        &format!("/app/{app_id}/endpoint/{ep}/headers"),
        Some(json!({ "headers": { "X-Tenant": "globex" } })),
        204,
    )
    .await;
    app.send(&app_id, "h.event", json!({ "n": 2 })).await;
    let got = receiver.wait_for_count(2, Duration::from_secs(10)).await;
    assert_eq!(got[1].header("authorization"), Some(secret));
    assert_eq!(got[1].header("x-tenant"), Some("globex"));

    // The attempt log keeps a redacted copy.
    let attempts = app
        .wait_attempts(&app_id, &msg, 1, Duration::from_secs(10))
        .await;
    let attempt_id = attempts[0]["id"].as_str().unwrap();
    let mut admin = Console::first_admin(&app).await;
    let page = admin
        .page(&format!(
            "/admin/apps/{app_id}/endpoints/{ep}/attempts/{msg}/{attempt_id}"
        ))
        .await;
    assert!(page.contains("Authorization: Bearer ***"), "{page}");
    assert!(page.contains("X-Tenant: acme"), "{page}");
    assert!(!page.contains("s3cr3t"), "{page}");
    let settings = admin
        .page(&format!("/admin/apps/{app_id}/endpoints/{ep}/settings"))
        .await;
    assert!(!settings.contains("s3cr3t"), "{settings}");
    let (mut customer, _) = portal(&app, &app_id).await;
    let page = customer
        .page(&format!(
            "/portal/apps/{app_id}/endpoints/{ep}/attempts/{msg}/{attempt_id}"
        ))
        .await;
    assert!(page.contains("Authorization: Bearer ***") && !page.contains("s3cr3t"));
    assert!(!holds(&database_bytes(&app), "s3cr3t-t0ken"));
}

#[cfg(unix)]
#[tokio::test]
async fn the_data_dir_and_database_files_are_readable_by_their_owner_only() {
    crate::sqlite_only!("the permissions of the SQLite files");
    use std::os::unix::fs::PermissionsExt;
    // A data dir that hookbox makes itself, under the usual umask.
    let app = TestApp::spawn_with(|cfg| cfg.data_dir = cfg.data_dir.join("made/here")).await;
    app.create_app("Private").await;
    let data = app.dir.path().join("made/here");
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&data), 0o700);
    for name in [
        "hookbox.db",
        "hookbox.db-wal",
        "hookbox.db-shm",
        "hookbox.key",
    ] {
        assert_eq!(mode(&data.join(name)), 0o600, "{name}");
    }
}

#[tokio::test]
async fn console_paths_are_checked_as_the_router_reads_them() {
    let app = TestApp::spawn().await;
    let app_id = app.create_app("Paths").await;
    let mut admin = Console::first_admin(&app).await;
    // `/%70ortal/…` is routed as `/portal/…`: it must take a portal session, not an admin's.
    let r = admin
        .get(&format!("/%70ortal/apps/{app_id}/webhooks"))
        .await;
    assert_ne!(r.status, 200, "{r:?}");
    assert!(r.body.contains("session has ended"), "{r:?}");
    // And `/%61dmin/…` is an admin page, which a portal session does not open.
    let (mut customer, _) = portal(&app, &app_id).await;
    customer.cookie = customer.portal_cookie.clone();
    let r = customer
        .get(&format!("/%61dmin/apps/{app_id}/webhooks"))
        .await;
    assert_ne!(r.status, 200, "{r:?}");
}

async fn health_status(app: &TestApp) -> u16 {
    let resp = app.client.get(format!("{}/health", app.base)).send().await;
    resp.unwrap().status().as_u16()
}

#[tokio::test]
async fn opening_the_operational_webhooks_page_writes_nothing() {
    let app = TestApp::spawn().await;
    let mut admin = Console::first_admin(&app).await;
    let metrics = || async { get(&scrape(&app).await, "hookbox_db_transactions_total") };
    admin.page("/admin").await;
    let before = metrics().await;
    let r = admin.get("/admin/operational").await;
    assert_eq!(r.status, 303, "{r:?}");
    assert!(r.location.unwrap().ends_with("/webhooks"));
    assert_eq!(metrics().await, before);
}

#[tokio::test]
async fn a_login_form_token_not_issued_by_the_server_is_refused() {
    let app = TestApp::spawn().await;
    Console::first_admin(&app).await;
    let mut c = Console::new(&app);
    // An attacker who can plant a cookie (a sibling subdomain, say) picks both halves.
    c.login_cookie = Some("forgedforgedforgedforged".into());
    let r = c
        .post(
            "/admin/login",
            &[
                ("login_csrf", "forgedforgedforgedforged"),
                ("username", "admin"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(r.status, 403, "{r:?}");
    assert!(c.cookie.is_none());
    // A form posted from another site is refused even with a pair the server issued (which
    // anyone can fetch), as browsers say where a form came from.
    for (name, value) in [
        ("origin", "https://evil.example"),
        ("sec-fetch-site", "same-site"),
    ] {
        let mut c = Console::new(&app);
        let r = c
            .login_with_headers("admin", PASSWORD, &[(name, value)])
            .await;
        assert_eq!(r.status, 403, "{name}: {r:?}");
        assert!(c.cookie.is_none());
    }
    // The token the server issued, posted from its own page, works.
    let mut c = Console::new(&app);
    let own = app.root.clone();
    let r = c
        .login_with_headers(
            "admin",
            PASSWORD,
            &[("origin", &own), ("sec-fetch-site", "same-origin")],
        )
        .await;
    assert_eq!(r.status, 303, "{r:?}");
}

#[tokio::test]
async fn a_full_database_answers_503_with_retry_after_loses_nothing_and_recovers() {
    crate::sqlite_only!("the size limit of the SQLite file");
    let app = TestApp::spawn_with(|cfg| cfg.database.max_size_mib = 1).await;
    let receiver = TestReceiver::start().await;
    let (keep, filler) = (app.create_app("Keep").await, app.create_app("Filler").await);
    app.create_event_type("big").await;
    app.create_endpoint(&keep, json!({ "url": receiver.url }))
        .await;
    let kept = app.send(&keep, "big", json!({ "small": true })).await;
    let blob = "x".repeat(60_000);
    let mut accepted = 0;
    let full = loop {
        let resp = app
            .client
            .post(format!("{}/app/{filler}/msg", app.base))
            .bearer_auth(&app.token)
            .json(&json!({ "eventType": "big", "payload": { "blob": blob } }))
            .send()
            .await
            .unwrap();
        match resp.status().as_u16() {
            202 => accepted += 1,
            _ => break resp,
        }
        assert!(
            accepted < 100,
            "a 1 MiB database took {accepted} 60 KB messages"
        );
    };
    assert_eq!(full.status().as_u16(), 503);
    assert!(full.headers().get("retry-after").is_some());
    let v: Value = full.json().await.unwrap();
    assert_eq!(v["code"], "storage_full", "{v}");
    assert!(
        v["detail"].as_str().unwrap().contains("cannot store"),
        "{v}"
    );
    assert_eq!(health_status(&app).await, 503);
    let m = scrape(&app).await;
    assert_eq!(get(&m, "hookbox_db_full"), 1.0);
    assert!(get(&m, "hookbox_db_full_errors_total") >= 1.0);

    // Space is freed: the filler application goes, and writes work again.
    app.call("DELETE", &format!("/app/{filler}"), None, 204)
        .await;
    let after = app.send(&keep, "big", json!({ "small": 2 })).await;
    assert_eq!(health_status(&app).await, 204);
    // Nothing acknowledged was lost.
    let got = receiver.wait_for_count(2, Duration::from_secs(10)).await;
    let ids: Vec<_> = got
        .iter()
        .map(|r| r.header("webhook-id").unwrap())
        .collect();
    assert!(ids.contains(&kept.as_str()) && ids.contains(&after.as_str()));
}

#[cfg(unix)]
mod real_binary {
    use super::*;
    use crate::support::server::{create_token, Server};

    /// The real binary, with no destination allowed and `env` set, and a token for it.
    struct Remote {
        server: Server,
        token: String,
    }

    impl Remote {
        async fn start(dir: &std::path::Path, env: &[(&str, &str)]) -> Remote {
            let token = create_token(dir);
            let server = Server::start_with_args(dir, dir.join("serve.log"), env, &[]).await;
            Remote { server, token }
        }

        async fn api(&self, method: &str, path: &str, body: Value) -> (u16, Value) {
            let resp = reqwest::Client::new()
                .request(
                    method.parse().unwrap(),
                    format!("{}{path}", self.server.api),
                )
                .bearer_auth(&self.token)
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = resp.status().as_u16();
            (status, resp.json().await.unwrap_or(Value::Null))
        }

        /// A new application (and the event type `e`); its id.
        async fn app(&self) -> String {
            let (_, app) = self.api("POST", "/app", json!({ "name": "p" })).await;
            self.api(
                "POST",
                "/event-type",
                json!({ "name": "e", "description": "e" }),
            )
            .await;
            app["id"].as_str().unwrap().to_owned()
        }

        /// Adds an endpoint at `url` to `app` and test-sends to it: the test send's answer.
        async fn test_send(&self, app: &str, url: &str) -> Value {
            let (status, ep) = self
                .api(
                    "POST",
                    &format!("/app/{app}/endpoint"),
                    json!({ "url": url }),
                )
                .await;
            assert_eq!(status, 201, "{ep}");
            let ep = ep["id"].as_str().unwrap();
            let (status, out) = self
                .api(
                    "POST",
                    &format!("/app/{app}/endpoint/{ep}/test"),
                    json!({ "eventType": "e", "payload": { "via": "proxy" } }),
                )
                .await;
            assert_eq!(status, 200, "{out}");
            out
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn proxy_variables_in_the_environment_do_not_open_a_way_around_the_guard() {
        let dir = tempfile::tempdir().unwrap();
        let proxy = TestReceiver::start().await;
        let inside = TestReceiver::start().await;
        let remote = Remote::start(
            dir.path(),
            &[
                ("HTTP_PROXY", &proxy.url),
                ("http_proxy", &proxy.url),
                ("HTTPS_PROXY", &proxy.url),
                ("ALL_PROXY", &proxy.url),
            ],
        )
        .await;
        let app = remote.app().await;
        let port = inside.url.rsplit(':').next().unwrap();
        for url in [
            format!("http://localhost:{port}/in"),
            "http://metadata.google.internal/computeMetadata/v1/".to_owned(),
        ] {
            let out = remote.test_send(&app, &url).await;
            assert_eq!(out["success"], false, "{url}: {out}");
        }
        assert_eq!(
            proxy.count(),
            0,
            "a request went to the environment's proxy"
        );
        assert_eq!(inside.count(), 0);
        assert!(remote.server.stderr().contains("do not use it"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_configured_proxy_carries_deliveries_but_private_literal_addresses_stay_refused() {
        let dir = tempfile::tempdir().unwrap();
        let proxy = TestReceiver::start().await;
        let remote = Remote::start(dir.path(), &[("HOOKBOX_PROXY_ADDR", &proxy.url)]).await;
        let app = remote.app().await;
        // A name goes to the proxy, which decides where it leads (here: it answers itself).
        let out = remote.test_send(&app, "http://hooks.example.test/in").await;
        assert_eq!(out["success"], true, "{out}");
        let got = proxy.received();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].header("host"), Some("hooks.example.test"));
        assert_eq!(got[0].json()["via"], "proxy");
        // Private literal addresses and localhost never reach it.
        for url in [
            "http://127.0.0.1:9/x",
            "http://[::1]:9/x",
            "http://10.0.0.1/x",
            "http://localhost:9/x",
            "http://localhost.:9/x",
        ] {
            let out = remote.test_send(&app, url).await;
            assert_eq!(out["success"], false, "{url}: {out}");
            assert_eq!(
                out["error"], "destination refused: private or reserved address",
                "{url}"
            );
        }
        assert_eq!(proxy.count(), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn portal_link_tokens_are_kept_out_of_the_logs() {
        let dir = tempfile::tempdir().unwrap();
        let remote = Remote::start(dir.path(), &[("HOOKBOX_LOG", "debug")]).await;
        let app = remote.app().await;
        let (_, link) = remote
            .api("POST", &format!("/auth/app-portal-access/{app}"), json!({}))
            .await;
        let link_token = link["token"].as_str().unwrap();
        let root = remote.server.api.trim_end_matches("/api/v1");
        let resp = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
            .get(format!("{root}/portal/open/{link_token}"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 303);
        let log = remote.server.stderr();
        assert!(
            log.contains("/portal/open/"),
            "the request is logged:\n{log}"
        );
        assert!(!log.contains(link_token), "{log}");
    }
}
