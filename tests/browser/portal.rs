//! The customer portal: a link made in the console (or by the API) opens one application's
//! webhooks pages in a browser that has never logged in, and nothing else.

use crate::harness::{Console, WAIT};
use crate::support::receiver::Reply;
use crate::support::wait_for;
use crate::support::TestReceiver;
use fantoccini::Locator;
use serde_json::json;
use sha2::{Digest, Sha256};

/// An application made through the API; returns its id.
async fn app(c: &Console, name: &str, uid: &str) -> String {
    let a = c
        .api
        .post("/app", json!({"name": name, "uid": uid}), 201)
        .await;
    a["id"].as_str().unwrap().to_owned()
}

/// An endpoint made through the API; returns its id.
async fn endpoint(c: &Console, app: &str, url: &str, description: &str) -> String {
    let body = json!({"url": url, "description": description});
    let ep = c.api.post(&format!("/app/{app}/endpoint"), body, 201).await;
    ep["id"].as_str().unwrap().to_owned()
}

/// The URLs of an application's endpoints, as the API lists them.
async fn endpoint_urls(c: &Console, app: &str) -> Vec<String> {
    let list = c.api.get(&format!("/app/{app}/endpoint")).await;
    list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["url"].as_str().unwrap().to_owned())
        .collect()
}

/// Asserts the page is the error page with this status and title.
async fn assert_error_page(c: &Console, status: u16, title: &str) {
    assert_eq!(c.heading().await, title, "{}", c.context().await);
    c.assert_shows(&format!("Error {status}")).await;
}

/// Asserts the page shows no admin navigation.
async fn assert_no_admin_nav(c: &Console) {
    for link in ["API tokens", "Applications", "Event catalog", "Dashboard"] {
        let shown = c.displayed(Locator::LinkText(link)).await;
        assert!(shown.is_empty(), "a portal page links to `{link}`");
    }
    assert!(c.displayed(Locator::Css("nav.nav")).await.is_empty());
    assert!(c
        .displayed(Locator::Css("nav[aria-label=Application]"))
        .await
        .is_empty());
    let admin_links = c.displayed(Locator::Css("a[href^='/admin']")).await;
    assert!(admin_links.is_empty(), "{}", c.context().await);
    for button in ["Log out"] {
        let xpath = format!("//button[normalize-space()='{button}']");
        assert!(c.displayed(Locator::XPath(&xpath)).await.is_empty());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn portal_link_opens_one_application_until_revoked() {
    let Some(mut c) = Console::start("portal").await else {
        return;
    };
    c.api
        .create_event_type("invoice.paid", "An invoice was paid")
        .await;
    let a = app(&c, "Acme", "acme").await;
    let b = app(&c, "Globex", "globex").await;
    let a_url = format!("{}/hooks/acme", c.receiver.url);
    let b_url = format!("{}/hooks/globex-secret-place", c.receiver.url);
    let a_ep = endpoint(&c, &a, &a_url, "Acme billing").await;
    let b_ep = endpoint(&c, &b, &b_url, "Globex internal ledger").await;

    // The admin makes a link on Acme's Customer portal tab; it is shown once.
    c.open_and_log_in().await;
    c.click_link("Applications").await;
    c.click_link("Acme").await;
    c.click_link("Customer portal").await;
    assert_eq!(c.path().await, format!("/admin/apps/{a}/portal"));
    c.assert_shows("No active links.").await;
    c.select("valid_for", "24h").await;
    c.click_button("Create portal link").await;
    let url = c
        .find(Locator::Id("portal-url"))
        .await
        .prop("value")
        .await
        .unwrap()
        .unwrap_or_default();
    let field = c.find(Locator::Id("portal-url")).await;
    assert_eq!(
        field.attr("readonly").await.unwrap().as_deref(),
        Some("true")
    );
    assert!(
        url.starts_with(&format!("{}/portal/open/", c.root)),
        "{url} {}",
        c.context().await
    );
    c.button("Copy").await;
    let token = url.rsplit('/').next().unwrap().to_owned();
    let short: String = hex::encode(Sha256::digest(token.as_bytes()))
        .chars()
        .take(16)
        .collect();
    let row = c
        .find(Locator::XPath(&format!(
            "//tbody/tr[td[starts-with(normalize-space(), '{short}')]]"
        )))
        .await;
    assert!(row.text().await.unwrap().contains("full"));
    c.screenshot("create-link").await;

    // The API makes links too.
    let made = c
        .api
        .post(&format!("/auth/app-portal-access/{a}"), json!({}), 200)
        .await;
    let api_url = made["url"].as_str().unwrap().to_owned();
    assert!(api_url.ends_with(made["token"].as_str().unwrap()), "{made}");

    // The customer's browser has never logged in to the console.
    let mut other = c.new_browser("customer").await;
    c.swap_browser(&mut other);
    let admin_browser = other;

    // The API's link: Acme's webhooks.
    c.open_url(&api_url).await;
    assert_eq!(c.path().await, format!("/portal/apps/{a}/webhooks"));
    assert_eq!(c.heading().await, "Webhooks", "{}", c.context().await);
    c.assert_shows(&a_url).await;
    assert_no_admin_nav(&c).await;

    // The console's link (this session replaces the API link's one in this browser).
    c.open_url(&url).await;
    assert_eq!(c.path().await, format!("/portal/apps/{a}/webhooks"));
    assert_eq!(c.heading().await, "Webhooks", "{}", c.context().await);
    c.assert_shows(&a_url).await;
    c.assert_shows("Acme billing").await;
    assert_no_admin_nav(&c).await;
    c.screenshot("portal-webhooks").await;
    c.click_link(&a_url).await;
    assert_eq!(c.path().await, format!("/portal/apps/{a}/endpoints/{a_ep}"));
    assert_eq!(c.prop("Endpoint ID").await, a_ep);
    assert_no_admin_nav(&c).await;

    // Nothing of Globex, by any address; the console itself asks for a login.
    c.open(&format!("/portal/apps/{b}/webhooks")).await;
    assert_error_page(&c, 404, "Not found").await;
    let text = c.page_text().await;
    assert!(!text.contains(&b_url) && !text.contains("Globex"), "{text}");
    c.screenshot("not-found").await;
    for path in [
        format!("/portal/apps/{a}/endpoints/{b_ep}"),
        format!("/portal/apps/{b}/endpoints/{b_ep}"),
        "/portal/apps/globex/webhooks".to_owned(),
    ] {
        c.open(&path).await;
        assert_error_page(&c, 404, "Not found").await;
        let text = c.page_text().await;
        assert!(
            !text.contains(&b_url) && !text.contains("Globex internal ledger"),
            "{path}: {text}"
        );
    }
    c.open("/admin/apps").await;
    assert!(
        c.path().await.starts_with("/admin/login"),
        "{}",
        c.context().await
    );
    let source = c.browser.source().await.unwrap();
    assert!(!source.contains(&b_url) && !source.contains("Globex"));

    // The customer adds an endpoint to Acme.
    c.open(&format!("/portal/apps/{a}/webhooks")).await;
    let new_url = format!("{}/hooks/acme-new", c.receiver.url);
    let new_ep = c
        .add_endpoint(&new_url, "From the portal", &["invoice.paid"])
        .await;
    assert!(c
        .path()
        .await
        .starts_with(&format!("/portal/apps/{a}/endpoints/{new_ep}")));
    let ep = c.api.get(&format!("/app/{a}/endpoint/{new_ep}")).await;
    assert_eq!(ep["url"], new_url.as_str());
    assert_eq!(ep["description"], "From the portal");
    assert_eq!(ep["filterTypes"], json!(["invoice.paid"]));
    assert!(endpoint_urls(&c, &a).await.contains(&new_url));
    assert!(!endpoint_urls(&c, &b).await.contains(&new_url));

    // Embedded in another site's page (another port on 127.0.0.1, so the same site).
    let site = TestReceiver::start().await;
    let framing = format!(
        "<!doctype html><title>Customer's product</title><h1>Our product</h1>\
         <iframe src=\"{api_url}\" style=\"width:100%;height:600px\"></iframe>"
    );
    site.set_default(
        Reply::status(200)
            .header("content-type", "text/html; charset=utf-8")
            .body(&framing),
    );
    c.open_url(&format!("{}/settings/webhooks", site.url)).await;
    let frame = c.find(Locator::Css("iframe")).await;
    frame.enter_frame().await.unwrap();
    let framed = wait_for(WAIT, || async { c.page_text().await.contains(&new_url) }).await;
    assert!(
        framed,
        "the portal renders in the frame: {}",
        c.page_text().await
    );
    assert_eq!(c.heading().await, "Webhooks");
    c.browser.enter_parent_frame().await.unwrap();
    assert_eq!(c.heading().await, "Our product");
    c.screenshot("portal-in-iframe").await;
    site.stop().await;

    // Back to the console's link, then the admin revokes it.
    c.open_url(&url).await;
    assert_eq!(c.heading().await, "Webhooks");
    let mut customer = admin_browser;
    c.swap_browser(&mut customer);
    c.click_link("Customer portal").await;
    let xpath = format!("//tbody/tr[td[starts-with(normalize-space(), '{short}')]]//button");
    let revoke = c.find(Locator::XPath(&xpath)).await;
    assert_eq!(revoke.text().await.unwrap().trim(), "Revoke");
    c.click_and_wait(&revoke, "Revoke").await;
    assert!(c.notice().await.starts_with("Portal link revoked."));
    assert!(
        !c.page_text().await.contains(&short),
        "{}",
        c.context().await
    );
    c.screenshot("revoked").await;

    // The customer's next page load says the session ended.
    c.swap_browser(&mut customer);
    c.browser.refresh().await.unwrap();
    assert_error_page(&c, 401, "Session ended").await;
    c.open(&format!("/portal/apps/{a}/webhooks")).await;
    assert_error_page(&c, 401, "Session ended").await;
    // The link itself is dead too; the API's link still works.
    c.open_url(&url).await;
    assert_error_page(&c, 410, "Link no longer valid").await;
    c.open_url(&api_url).await;
    assert_eq!(c.heading().await, "Webhooks", "{}", c.context().await);

    let _ = customer.close().await;
    c.finish().await;
}
