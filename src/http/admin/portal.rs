//! Customer portal: expiring links that open one application's Settings → Webhooks pages
//! (the same pages admins use, under `/portal`), and the page where admins make and revoke
//! them. A portal session is bound to its application: any other path answers 404.

use super::apps::{find_app, user_app};
use super::{
    cookie, is_https, page, redirect, when, Admin, Chrome, ConsoleError, Portal, Posted,
    PORTAL_ROOT,
};
use crate::db::App;
use crate::http::Data;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse};
use askama::Template;
use std::time::Duration;

const COOKIE: &str = "hookbox_portal";

/// The portal session of this request, checked against the application in the path.
pub(super) async fn session(st: &Data, req: &HttpRequest) -> Result<Admin, ConsoleError> {
    let expired = || {
        ConsoleError::PortalLogin(
            "Your session has ended. Open the webhooks page again from the application that sent you here.".into(),
        )
    };
    let cookie = cookie(req, COOKIE).ok_or_else(expired)?;
    // One application only: every portal page names it in its path, by id.
    let app_id = req.match_info().get("app_id");
    let (session, app) = crate::service::sessions::portal(&st.store, &cookie, app_id, st.now())
        .await?
        .ok_or_else(expired)?
        .map_err(|()| ConsoleError::NotFound("page"))?;
    Ok(Admin {
        username: app.name,
        csrf: session.csrf,
        session_hash: session.id_hash,
        portal: Some(Portal {
            app_id: session.app_id,
            read_only: session.read_only,
        }),
    })
}

/// `GET /portal/open/{token}`: starts a portal session and opens the application's webhooks.
pub async fn open(st: Data, req: HttpRequest) -> Result<HttpResponse, ConsoleError> {
    let token = req.match_info().get("token").unwrap_or_default();
    let gone = || {
        ConsoleError::Gone(
            "This link is invalid or has expired. Ask the application that sent you here for a new one.".into(),
        )
    };
    if token.is_empty() || token.len() > 100 {
        return Err(gone());
    }
    let (session, link) = crate::service::sessions::open_portal(&st.store, token, st.now())
        .await?
        .ok_or_else(gone)?;
    let sid = session.id;
    let mut res = redirect(&format!("{PORTAL_ROOT}/apps/{}/webhooks", link.app_id));
    // In an iframe on another site the cookie is a third-party one: it needs SameSite=None,
    // which browsers accept only with Secure (so over TLS). Over plain HTTP, Lax.
    let same_site = if is_https(&req) {
        "None; Secure"
    } else {
        "Lax"
    };
    let c = format!("{COOKIE}={sid}; Path={PORTAL_ROOT}; HttpOnly; SameSite={same_site}");
    if let Ok(v) = header::HeaderValue::from_str(&c) {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
    Ok(res)
}

pub struct LinkRow {
    pub id: String,
    pub created: String,
    pub expires: String,
    pub read_only: bool,
}

#[derive(Template)]
#[template(path = "admin/apps/portal.html")]
struct LinksPage {
    chrome: Chrome,
    app: App,
    links: Vec<LinkRow>,
    /// A link just made: shown this once.
    created: Option<String>,
}

/// Short ids for links in the list (the start of the token's hash, enough to revoke by).
fn link_id(hash: &str) -> String {
    hash.chars().take(16).collect()
}

async fn links_page(
    st: &Data,
    req: &HttpRequest,
    admin: &Admin,
    created: Option<String>,
) -> Result<HttpResponse, ConsoleError> {
    let app = find_app(st, req).await?;
    let links = st
        .store
        .live_portal_links(&app.id, st.now())
        .await?
        .into_iter()
        .map(|l| LinkRow {
            id: link_id(&l.token_hash),
            created: when(l.created_at),
            expires: when(l.expires_at),
            read_only: l.read_only,
        })
        .collect();
    page(&LinksPage {
        chrome: admin.chrome_with_notice("apps", req),
        app,
        links,
        created,
    })
}

/// `GET /admin/apps/{app}/portal`: the application's live portal links and a form for a new one.
pub async fn links(st: Data, admin: Admin, req: HttpRequest) -> Result<HttpResponse, ConsoleError> {
    links_page(&st, &req, &admin, None).await
}

/// `POST /admin/apps/{app}/portal`: makes a link and shows it once.
pub async fn create(
    st: Data,
    req: HttpRequest,
    Posted { admin, form }: Posted,
) -> Result<HttpResponse, ConsoleError> {
    let app = user_app(&st, &req).await?;
    let hours: u64 = match form.get("valid_for") {
        "1h" => 1,
        "24h" => 24,
        "7d" => 7 * 24,
        "30d" => 30 * 24,
        _ => {
            return Err(ConsoleError::BadRequest(
                "Choose how long the link stays valid.".into(),
            ))
        }
    };
    let read_only = form.get("read_only") == "1";
    let token = crate::service::portal::create_link(
        &st.store,
        &app.id,
        Duration::from_secs(hours * 3600),
        read_only,
        st.now(),
    )
    .await?;
    links_page(
        &st,
        &req,
        &admin,
        Some(crate::http::forwarded::portal_link_url(&req, &token)),
    )
    .await
}

/// `POST /admin/apps/{app}/portal/{link}/revoke`: ends a link and the sessions it opened.
pub async fn revoke(
    st: Data,
    req: HttpRequest,
    _post: Posted,
) -> Result<HttpResponse, ConsoleError> {
    let app = find_app(&st, &req).await?;
    let short = super::path(&req, "link_id")?.to_owned();
    let found = crate::service::portal::revoke_link(&st.store, &app.id, st.now(), move |h| {
        link_id(h) == short
    })
    .await?;
    if !found {
        return Err(ConsoleError::NotFound("portal link"));
    }
    Ok(redirect(&format!(
        "/admin/apps/{}/portal?ok=portal-revoked",
        app.id
    )))
}
