//! The customer portal: links made by the API (`app-portal-access`) and the console open one
//! application's Settings → Webhooks pages, and nothing else.

use crate::support::console::{csrf_in, Console};
use crate::support::{TestApp, TestReceiver};
use serde_json::json;
use std::time::Duration;

/// The path (and query) of an absolute URL on the test server.
fn path_of(app: &TestApp, url: &str) -> String {
    url.strip_prefix(&app.root)
        .unwrap_or_else(|| panic!("{url} is not on {}", app.root))
        .to_owned()
}

/// Opens a portal link in a fresh browser; returns it with the page it landed on.
async fn open_portal(app: &TestApp, url: &str) -> (Console, String) {
    let mut c = Console::new(app);
    let r = c.get(&path_of(app, url)).await;
    assert_eq!(r.status, 303, "{r:?}");
    assert!(
        c.portal_cookie.is_some(),
        "the link starts a portal session"
    );
    let set = c.last_set_cookie.clone().unwrap();
    assert!(
        set.contains("HttpOnly") && set.contains("Path=/portal"),
        "{set}"
    );
    let landing = r.location.unwrap();
    (c, landing)
}

#[tokio::test]
async fn a_portal_link_opens_one_application_and_never_another() {
    let app = TestApp::spawn().await;
    let receiver = TestReceiver::start().await;
    let (a, b) = (
        app.create_app("Acme Corp").await,
        app.create_app("Other Inc").await,
    );
    let (ep_a, _) = app
        .create_endpoint(
            &a,
            json!({ "url": receiver.url, "description": "acme hook" }),
        )
        .await;
    let (ep_b, _) = app
        .create_endpoint(
            &b,
            json!({ "url": "http://127.0.0.1:9/other", "description": "other hook" }),
        )
        .await;

    let access = app
        .post(&format!("/auth/app-portal-access/{a}"), json!({}), 200)
        .await;
    let url = access["url"].as_str().unwrap();
    let token = access["token"].as_str().unwrap();
    assert!(url.ends_with(token), "{access}");
    let (mut c, landing) = open_portal(&app, url).await;
    assert_eq!(landing, format!("/portal/apps/{a}/webhooks"));

    // Its own application: the same pages as the console, without the admin navigation.
    let page = c.page(&landing).await;
    assert!(page.contains("Acme Corp") && page.contains("acme hook"));
    assert!(!page.contains("Other Inc") && !page.contains("other hook"));
    assert!(!page.contains("/admin/apps\"") && !page.contains("API tokens"));
    let overview = c.page(&format!("/portal/apps/{a}/endpoints/{ep_a}")).await;
    assert!(overview.contains("Signing secret"));

    // Another application, by its pages or by mixing its endpoint into this app's path.
    for path in [
        format!("/portal/apps/{b}/webhooks"),
        format!("/portal/apps/{b}/endpoints/{ep_b}"),
        format!("/portal/apps/{b}/endpoints/{ep_b}/logs"),
        format!("/portal/apps/{a}/endpoints/{ep_b}"),
        format!("/portal/apps/{a}/endpoints/{ep_b}/logs"),
    ] {
        let r = c.get(&path).await;
        assert_eq!(r.status, 404, "GET {path}");
        assert!(!r.body.contains("other hook"), "GET {path}");
        assert!(r.body.contains("Not found"), "GET {path}");
        assert!(
            !r.body.contains("/admin\""),
            "GET {path}: no way into the console"
        );
    }
    let csrf = csrf_in(&overview).unwrap();
    for path in [
        format!("/portal/apps/{b}/endpoints/{ep_b}/disable"),
        format!("/portal/apps/{a}/endpoints/{ep_b}/disable"),
        format!("/portal/apps/{b}/endpoints/{ep_b}/secret"),
        format!("/portal/apps/{b}/webhooks/new"),
    ] {
        let r = c
            .post(
                &path,
                &[("csrf", csrf.as_str()), ("url", "http://127.0.0.1:9/x")],
            )
            .await;
        assert_eq!(r.status, 404, "POST {path}");
    }
    let other = app.get(&format!("/app/{b}/endpoint/{ep_b}"), 200).await;
    assert_eq!(
        other["disabled"], false,
        "the other app's endpoint is untouched"
    );
    assert_eq!(
        app.get(&format!("/app/{b}/endpoint"), 200).await["data"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // Admin pages don't know the portal session.
    for path in [
        "/admin",
        "/admin/apps",
        "/admin/tokens",
        &format!("/admin/apps/{a}/webhooks"),
    ] {
        let r = c.get(path).await;
        assert_eq!(r.status, 303, "GET {path}");
        assert!(r.location.unwrap().starts_with("/admin/login"), "{path}");
    }

    // Within its application the customer can act: disable its own endpoint.
    let r = c
        .post(
            &format!("/portal/apps/{a}/endpoints/{ep_a}/disable"),
            &[("csrf", csrf.as_str())],
        )
        .await;
    assert_eq!(r.status, 303, "{r:?}");
    assert!(r.location.unwrap().starts_with("/portal/apps/"));
    let mine = app.get(&format!("/app/{a}/endpoint/{ep_a}"), 200).await;
    assert_eq!(mine["disabled"], true);
    // …and the CSRF token is still required.
    let r = c
        .post(
            &format!("/portal/apps/{a}/endpoints/{ep_a}/enable"),
            &[("csrf", "forged"), ("replay", "0")],
        )
        .await;
    assert_eq!(r.status, 403);

    // Portal pages may be framed by the operator's product; admin pages may not.
    let resp = reqwest::Client::new()
        .get(format!("{}/portal/apps/{a}/webhooks", app.root))
        .header(
            "cookie",
            format!("hookbox_portal={}", c.portal_cookie.clone().unwrap()),
        )
        .send()
        .await
        .unwrap();
    let csp = resp.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("frame-ancestors *"), "{csp}");
    let resp = reqwest::get(format!("{}/admin/login", app.root))
        .await
        .unwrap();
    let csp = resp.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
}

#[tokio::test]
async fn portal_links_are_refused_when_unknown_expired_or_revoked() {
    let app = TestApp::spawn().await;
    let a = app.create_app("Acme").await;
    let mut c = Console::new(&app);
    let r = c.get("/portal/open/not-a-real-token").await;
    assert_eq!(r.status, 410);
    assert!(r.body.contains("invalid or has expired"));
    assert!(c.portal_cookie.is_none());
    // Without a session a portal page says so (there is no login page to go to).
    let r = c.get(&format!("/portal/apps/{a}/webhooks")).await;
    assert_eq!(r.status, 401);

    // Expiry out of range, unknown application, hookbox's own application.
    for body in [
        json!({ "expiry": 0 }),
        json!({ "expiry": 10_000_000_000u64 }),
        json!({ "expiry": "soon" }),
    ] {
        let (status, text) = app
            .raw(
                "POST",
                &format!("/auth/app-portal-access/{a}"),
                body.to_string().into_bytes(),
            )
            .await;
        assert_eq!(status, 422, "{body}: {text}");
    }
    app.post("/auth/app-portal-access/app_nope", json!({}), 404)
        .await;
    app.post(
        "/auth/app-portal-access/_hookbox_operational",
        json!({}),
        404,
    )
    .await;
    // Without a token, refused.
    let resp = reqwest::Client::new()
        .post(format!("{}/auth/app-portal-access/{a}", app.base))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);

    // A link made in the console, used, then revoked there: its session ends with it.
    let mut admin = Console::first_admin(&app).await;
    let r = admin
        .submit(&format!("/admin/apps/{a}/portal"), &[("valid_for", "1h")])
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    let marker = "id=\"portal-url\" value=\"";
    let at = r.body.find(marker).unwrap() + marker.len();
    let url = r.body[at..at + r.body[at..].find('"').unwrap()].to_owned();
    let (mut customer, landing) = open_portal(&app, &url).await;
    customer.page(&landing).await;
    let list = admin.page(&format!("/admin/apps/{a}/portal")).await;
    let marker = "/portal/";
    let revoke_at = list.find("/revoke\"").unwrap();
    let start = list[..revoke_at].rfind(marker).unwrap() + marker.len();
    let link_id = &list[start..revoke_at];
    let r = admin
        .submit(&format!("/admin/apps/{a}/portal/{link_id}/revoke"), &[])
        .await;
    assert_eq!(r.status, 303, "{r:?}");
    assert_eq!(customer.get(&landing).await.status, 401);
    assert_eq!(
        Console::new(&app).get(&path_of(&app, &url)).await.status,
        410
    );
}

/// What a portal page offers that would change something: its forms that post and its
/// links to pages that exist only to change something.
fn controls(page: &str) -> Vec<&'static str> {
    [
        "method=\"post\"",
        "/webhooks/new\"",
        "/alerts\"",
        "/enable\"",
        "/settings\"",
        "/testing\"",
        "/delete\"",
    ]
    .into_iter()
    .filter(|c| page.contains(c))
    .collect()
}

/// A portal session on application `a`, read-only or not.
async fn portal_of(app: &TestApp, a: &str, read_only: bool) -> (Console, String) {
    let access = app
        .post(
            &format!("/auth/app-portal-access/{a}"),
            json!({ "readOnly": read_only, "expiry": 3600 }),
            200,
        )
        .await;
    open_portal(app, access["url"].as_str().unwrap()).await
}

#[tokio::test]
async fn a_read_only_link_shows_everything_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let rx = TestReceiver::start().await;
    let a = app.create_app("Acme").await;
    let (ep, _) = app.create_endpoint(&a, json!({ "url": rx.url })).await;
    let m = app.send(&a, "a.b", json!({})).await;
    let at = app.wait_attempts(&a, &m, 1, Duration::from_secs(5)).await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let base = format!("/portal/apps/{a}/endpoints/{ep}");
    let pages = [
        format!("/portal/apps/{a}/webhooks"),
        base.clone(),
        format!("{base}/logs"),
        format!("{base}/replay"),
        format!("{base}/attempts/{m}/{at}"),
    ];
    // A full-access session is offered controls on these pages (all but enabling, for an
    // endpoint that is enabled, and deleting, on the settings page)…
    let (mut full, _) = portal_of(&app, &a, false).await;
    let mut offered = std::collections::BTreeSet::new();
    for p in &pages {
        offered.extend(controls(&full.page(p).await));
    }
    assert_eq!(offered.len(), 5, "{offered:?}");
    // …a read-only one none of them: it is told so, and shown what there is.
    let (mut c, landing) = portal_of(&app, &a, true).await;
    c.page(&landing).await;
    for p in &pages {
        let page = c.page(p).await;
        assert!(controls(&page).is_empty(), "{p}: {:?}", controls(&page));
        assert!(page.contains("Read-only access"), "{p}");
    }
    let overview = c.page(&base).await;
    assert!(overview.contains(&rx.url) && overview.contains("secret-read-only"));
    // A disabled endpoint: enabling it is offered to full access only.
    let path = format!("/app/{a}/endpoint/{ep}");
    app.call("PATCH", &path, Some(json!({ "disabled": true })), 200)
        .await;
    assert_eq!(
        controls(&full.page(&base).await)[..2],
        ["method=\"post\"", "/enable\""]
    );
    let overview = c.page(&base).await;
    assert!(controls(&overview).is_empty(), "{:?}", controls(&overview));
    assert!(c.get(&format!("{base}/enable")).await.status == 403);
    app.call("PATCH", &path, Some(json!({ "disabled": false })), 200)
        .await;
    // The pages that exist only to change something are refused as their posts are.
    for p in [
        format!("/portal/apps/{a}/webhooks/new"),
        format!("/portal/apps/{a}/alerts"),
        format!("{base}/settings"),
        format!("{base}/testing"),
        format!("{base}/delete"),
    ] {
        let r = c.get(&p).await;
        assert_eq!(r.status, 403, "{p}");
        assert!(r.body.contains("not change them"), "{p}: {}", r.body);
    }
    // Posted anyway (a stale page, a forged form): refused, nothing changed.
    let r = c
        .post(&format!("{base}/disable"), &[("csrf", "whatever")])
        .await;
    assert_eq!(r.status, 403);
    assert!(r.body.contains("not change them"), "{}", r.body);
    assert_eq!(
        app.get(&format!("/app/{a}/endpoint/{ep}"), 200).await["disabled"],
        false
    );
}

#[tokio::test]
async fn app_portal_access_can_create_the_application() {
    let app = TestApp::spawn().await;
    let access = app
        .post(
            "/auth/app-portal-access/customer-42",
            json!({ "application": { "name": "Customer 42" } }),
            200,
        )
        .await;
    let created = app.get("/app/customer-42", 200).await;
    assert_eq!(created["name"], "Customer 42");
    let (mut c, landing) = open_portal(&app, access["url"].as_str().unwrap()).await;
    assert!(landing.contains(created["id"].as_str().unwrap()));
    assert!(c.page(&landing).await.contains("Customer 42"));
    // A bad application is refused before anything is written.
    app.post(
        "/auth/app-portal-access/customer-43",
        json!({ "application": { "name": "" } }),
        422,
    )
    .await;
    app.get("/app/customer-43", 404).await;
}
