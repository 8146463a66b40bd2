//! The admin console under `/admin`: server-rendered pages (askama), forms that work without
//! JavaScript, server-side sessions, a CSRF token in every form, embedded static files.

mod apps;
mod assets;
mod auth;
mod catalog;
mod console;
mod dashboard;
mod endpoints;
mod error;
mod notifications;
mod portal;
mod routes;
mod tasks;

pub use console::Console;
pub use error::ConsoleError;
use error::{ErrorPage, Shown};
pub use routes::routes;

use super::Data;
use crate::db::DbError;
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use askama::Template;
use std::time::Duration;

/// How session ids, setup links and portal links are stored (as API tokens are).
pub use crate::http::auth::hash_token as hash_secret;
pub use auth::{check_username, new_secret};

const COOKIE: &str = "hookbox_session";
/// How long a first-admin setup link stays valid.
pub const SETUP_LINK_TTL: Duration = Duration::from_secs(24 * 3600);
const ADMIN_CSP: &str =
    "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'";
/// The portal may be framed by any site: its links are handed to the operator's product.
const PORTAL_CSP: &str =
    "default-src 'self'; img-src 'self' data:; frame-ancestors *; form-action 'self'";

/// An HTML response with the console's security headers.
fn html(status: StatusCode, body: String) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::CONTENT_SECURITY_POLICY, ADMIN_CSP))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "same-origin"))
        .body(body)
}

/// Renders a page with status 200.
pub(super) fn page<T: Template>(t: &T) -> Result<HttpResponse, ConsoleError> {
    Ok(html(StatusCode::OK, t.render()?))
}

/// Renders a page with another status (a form with errors: 422).
pub(super) fn page_with<T: Template>(
    status: StatusCode,
    t: &T,
) -> Result<HttpResponse, ConsoleError> {
    Ok(html(status, t.render()?))
}

/// 303 See Other: where a form post goes next.
pub(super) fn redirect(to: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, to))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish()
}

/// What every page's frame shows: who is logged in, the CSRF token, the current section.
pub struct Chrome {
    pub username: String,
    pub csrf: String,
    pub section: &'static str,
    /// A fixed confirmation message after a form post (never user input).
    pub notice: Option<&'static str>,
    /// Where the pages live: `/admin`, or `/portal` for a customer's portal session.
    pub root: &'static str,
    /// A portal session: no admin navigation, one application only.
    pub portal: bool,
    /// A read-only portal session: pages show no controls that change anything.
    pub read_only: bool,
}

/// A customer's portal session: one application, perhaps read-only.
pub struct Portal {
    pub app_id: String,
    pub read_only: bool,
}

/// Who is using the console on this request: an admin, or a customer through a portal link.
pub struct Admin {
    pub username: String,
    pub csrf: String,
    /// The admin session's hash (for logout).
    pub session_hash: String,
    pub portal: Option<Portal>,
}

/// The session of a console or portal page: an extractor that answers with the login page
/// (or the portal's "session ended") unless the request carries a live session for this path.
/// Pages name it in their arguments, so none can forget the check.
impl actix_web::FromRequest for Admin {
    type Error = ConsoleError;
    type Future = futures_util::future::LocalBoxFuture<'static, Result<Admin, ConsoleError>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let st = req
                .app_data::<Data>()
                .cloned()
                .ok_or_else(|| ConsoleError::Internal("no server state".into()))?;
            admin(&st, &req).await
        })
    }
}

impl Admin {
    pub fn chrome(&self, section: &'static str) -> Chrome {
        Chrome {
            username: self.username.clone(),
            csrf: self.csrf.clone(),
            section,
            notice: None,
            root: self.root(),
            portal: self.portal.is_some(),
            read_only: self.read_only(),
        }
    }

    /// A read-only portal session: it may look, not change anything.
    pub fn read_only(&self) -> bool {
        self.portal.as_ref().is_some_and(|p| p.read_only)
    }

    /// Pages that exist only to change something (a form, a confirmation) are refused to a
    /// read-only session, as their posts are.
    pub fn may_change(&self) -> Result<(), ConsoleError> {
        if self.read_only() {
            return Err(ConsoleError::ReadOnly);
        }
        Ok(())
    }

    /// The page chrome with the notice a redirect asked for (`?ok=…`).
    pub fn chrome_with_notice(&self, section: &'static str, req: &HttpRequest) -> Chrome {
        Chrome {
            notice: notice(req),
            ..self.chrome(section)
        }
    }

    /// The path prefix of this user's pages: `/admin` or `/portal`.
    pub fn root(&self) -> &'static str {
        if self.portal.is_some() {
            PORTAL_ROOT
        } else {
            "/admin"
        }
    }
}

/// The path as the router matched it (percent-decoded where that changes nothing, so
/// `/%70ortal/…` is `/portal/…`): every decision about a path is made on this one.
fn routed_path(req: &HttpRequest) -> &str {
    req.match_info().as_str()
}

/// The root of the pages a request is on: `/portal` or `/admin` (`admin()` has checked that
/// the session matches it).
pub(super) fn root_of(req: &HttpRequest) -> &'static str {
    if routed_path(req).starts_with(PORTAL_ROOT) {
        PORTAL_ROOT
    } else {
        "/admin"
    }
}

/// Where a portal session's pages live (the same pages as an admin's, for one application).
pub const PORTAL_ROOT: &str = "/portal";

/// The value of a cookie sent with the request.
fn cookie(req: &HttpRequest, name: &str) -> Option<String> {
    let header = req.headers().get(header::COOKIE)?.to_str().ok()?;
    header.split(';').find_map(|kv| {
        let (k, v) = kv.trim().split_once('=')?;
        (k == name && !v.is_empty()).then(|| v.to_owned())
    })
}

/// The user of this request, or `LoginRequired`. Pages under `/portal` accept only a portal
/// session, and only for the application it was opened for; pages under `/admin` accept only
/// an admin session.
pub(super) async fn admin(st: &Data, req: &HttpRequest) -> Result<Admin, ConsoleError> {
    let path = routed_path(req);
    if path.starts_with(PORTAL_ROOT) {
        return portal::session(st, req).await;
    }
    // A page asked for while logged out is opened again after login (forms are not replayed).
    let login = || ConsoleError::LoginRequired {
        next: (req.method() == actix_web::http::Method::GET && path != "/admin").then(|| match req
            .query_string()
        {
            "" => path.to_owned(),
            q => format!("{path}?{q}"),
        }),
    };
    let cookie = cookie(req, COOKIE).ok_or_else(login)?;
    let session = crate::service::sessions::admin(&st.store, &cookie, st.now())
        .await?
        .ok_or_else(login)?;
    Ok(Admin {
        username: session.username,
        csrf: session.csrf,
        session_hash: session.id_hash,
        portal: None,
    })
}

/// A submitted `application/x-www-form-urlencoded` form; a name may repeat (checkboxes).
pub struct Form {
    fields: Vec<(String, String)>,
}

impl Form {
    pub fn parse(body: &[u8]) -> Form {
        Form {
            fields: url::form_urlencoded::parse(body).into_owned().collect(),
        }
    }

    /// The first value of a field, trimmed ("" when absent).
    pub fn get(&self, name: &str) -> &str {
        self.fields
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.trim())
    }

    /// The raw first value (passwords are not trimmed).
    pub fn raw(&self, name: &str) -> &str {
        self.fields
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    }

    pub fn all(&self, name: &str) -> Vec<String> {
        self.fields
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .collect()
    }
}

fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// A form posted by a logged-in admin (or a portal user allowed to change things) whose CSRF
/// token matches the session's: an extractor, so no form handler can skip the checks.
pub struct Posted {
    pub admin: Admin,
    pub form: Form,
}

impl actix_web::FromRequest for Posted {
    type Error = actix_web::Error;
    type Future = futures_util::future::LocalBoxFuture<'static, Result<Posted, actix_web::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut actix_web::dev::Payload) -> Self::Future {
        let body = web::Bytes::from_request(req, payload);
        let req = req.clone();
        Box::pin(async move {
            let body = body.await?;
            let st = req
                .app_data::<Data>()
                .cloned()
                .ok_or_else(|| ConsoleError::Internal("no server state".into()))?;
            let (admin, form) = admin_post(&st, &req, &body).await?;
            Ok(Posted { admin, form })
        })
    }
}

/// The checks of a form post (see [`Posted`]).
async fn admin_post(
    st: &Data,
    req: &HttpRequest,
    body: &[u8],
) -> Result<(Admin, Form), ConsoleError> {
    let admin = admin(st, req).await?;
    // A read-only session's pages hold no form (nor its anti-forgery token): whatever it
    // posts is refused as such.
    admin.may_change()?;
    let form = Form::parse(body);
    if !same(form.get("csrf"), &admin.csrf) {
        return Err(ConsoleError::Csrf);
    }
    Ok((admin, form))
}

/// A path segment (ids and uids only).
pub(super) fn path<'a>(req: &'a HttpRequest, name: &str) -> Result<&'a str, ConsoleError> {
    let v = req.match_info().get(name).unwrap_or_default();
    if crate::domain::validate::is_valid_uid(v) {
        Ok(v)
    } else {
        Err(ConsoleError::NotFound("page"))
    }
}

/// The fixed confirmation a redirect asked for (`?ok=…`); unknown codes show nothing.
pub(super) fn notice(req: &HttpRequest) -> Option<&'static str> {
    let q = crate::http::extract::Query::parse(req.query_string());
    Some(match q.str("ok")? {
        "app-created" => "Application created.",
        "app-deleted" => "Application deleted.",
        "app-saved" => "Application saved.",
        "portal-revoked" => "Portal link revoked. Pages opened with it stop working at once.",
        "type-created" => "Event type created.",
        "type-saved" => "Event type saved.",
        "type-archived" => "Event type archived. Endpoints keep it; new messages of it are still accepted.",
        "type-restored" => "Event type restored.",
        "endpoint-created" => "Endpoint added.",
        "endpoint-saved" => "Endpoint saved.",
        "replay-started" => "Replay started: its progress shows below.",
        "endpoint-deleted" => "Endpoint deleted.",
        "resent" => "The message is being sent again.",
        "skipped" => "Message skipped: the next one in line is being sent.",
        "retrying" => "The message is being sent again now.",
        "line-moved" => "That message no longer holds the line (it was delivered, is being sent, or was skipped meanwhile).",
        "rotated" => "Signing secret rotated. The previous secret keeps signing during the grace period.",
        "disabled" => "Endpoint disabled. Messages that arrive now are kept and can be replayed when you enable it.",
        "enabled" => "Endpoint enabled.",
        "token-revoked" => "Token revoked. Requests using it are refused within a few seconds.",
        "recipient-added" => "Recipient added.",
        "recipient-removed" => "Recipient removed.",
        "replayed" => "Endpoint enabled; the messages it missed are being sent.",
        _ => return None,
    })
}

/// Where to go after login: a console path from `next`, never another site.
pub(super) fn safe_next(next: &str) -> &str {
    let ok = (next.starts_with("/admin/") || next.starts_with("/admin?"))
        && !next.starts_with("/admin/login")
        && !next.contains(['\\', '\r', '\n'])
        && !next.contains("//");
    if ok {
        next
    } else {
        "/admin"
    }
}

/// Whether the request reached us over TLS (directly or through a proxy that says so).
fn is_https(req: &HttpRequest) -> bool {
    crate::http::forwarded::is_https(req)
}

/// Formats a time for people: `2026-01-02 15:04:05 UTC`.
pub fn when(ms: i64) -> String {
    use chrono::TimeZone;
    match chrono::Utc.timestamp_millis_opt(ms) {
        chrono::LocalResult::Single(t) => t.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
        _ => "—".to_owned(),
    }
}

/// `98.5 %`, or `—` without data.
pub fn percent(rate: Option<f64>) -> String {
    rate.map_or_else(|| "—".to_owned(), |r| format!("{r:.1} %"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_keep_repeated_fields_and_decode() {
        let f = Form::parse(b"a=1&t=x.y&t=z%3Aw&name=%3Cb%3E+c&empty=");
        assert_eq!(f.get("a"), "1");
        assert_eq!(f.all("t"), vec!["x.y", "z:w"]);
        assert_eq!(f.get("name"), "<b> c");
        assert_eq!(f.get("missing"), "");
        assert!(same("abc", "abc") && !same("abc", "abd") && !same("abc", "ab"));
    }

    #[test]
    fn login_returns_only_to_console_paths() {
        assert_eq!(safe_next("/admin/apps?after=x"), "/admin/apps?after=x");
        for bad in [
            "https://evil.example",
            "//evil.example",
            "/admin//evil",
            "/adminx/../x",
            "/admin/login",
            "",
            "/\\evil",
        ] {
            let got = safe_next(bad);
            assert_eq!(got, "/admin", "{bad}");
        }
    }
}
