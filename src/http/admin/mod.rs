//! The admin console under `/admin`: server-rendered pages (askama), forms that work without
//! JavaScript, server-side sessions, a CSRF token in every form, embedded static files.

mod apps;
mod assets;
mod auth;
mod catalog;
mod dashboard;
mod endpoints;
mod portal;

use super::Data;
use crate::db::admin as admin_db;
use crate::db::DbError;
use crate::domain::time::now_ms;
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use askama::Template;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How session ids, setup links and portal links are stored (as API tokens are).
pub use crate::http::auth::hash_token as hash_secret;
pub use auth::{check_username, new_secret};

const COOKIE: &str = "hookbox_session";
/// A session ends after this long without a request.
pub const SESSION_IDLE: Duration = Duration::from_secs(12 * 3600);
/// How long a first-admin setup link stays valid.
pub const SETUP_LINK_TTL: Duration = Duration::from_secs(24 * 3600);
/// Password checks per client address and username within `LOGIN_WINDOW` (a success clears
/// them); also the failures per username after which its logins are slowed down.
const LOGIN_FAILURES: usize = 5;
/// Password checks per client address, whatever the usernames, within `LOGIN_WINDOW`.
const LOGIN_CHECKS_PER_CLIENT: usize = 20;
const LOGIN_WINDOW: Duration = Duration::from_secs(60);
/// The wait before each password check for a username that keeps failing.
pub(super) const LOGIN_SLOWDOWN: Duration = Duration::from_secs(1);

/// A console page: methods it does not answer get an HTML 405.
fn resource(path: &str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(method_not_allowed))
}

/// An application's Settings → Webhooks pages: served under `/admin` to admins and under
/// `/portal` to a customer's portal session for that application.
fn webhook_pages(scope: actix_web::Scope) -> actix_web::Scope {
    use web::{get, post};
    let ep = "/apps/{app_id}/endpoints/{endpoint_id}";
    scope
        .service(resource("/apps/{app_id}/webhooks").route(get().to(endpoints::list)))
        .service(
            resource("/apps/{app_id}/webhooks/new")
                .route(get().to(endpoints::new_form))
                .route(post().to(endpoints::create)),
        )
        .service(resource(ep).route(get().to(endpoints::overview)))
        .service(resource(&format!("{ep}/logs")).route(get().to(endpoints::logs)))
        .service(
            resource(&format!("{ep}/settings"))
                .route(get().to(endpoints::edit_form))
                .route(post().to(endpoints::update)),
        )
        .service(
            resource(&format!("{ep}/testing"))
                .route(get().to(endpoints::testing))
                .route(post().to(endpoints::send_test)),
        )
        .service(
            resource(&format!("{ep}/attempts/{{msg_id}}/{{attempt_id}}"))
                .route(get().to(endpoints::attempt)),
        )
        .service(
            resource(&format!("{ep}/messages/{{msg_id}}/resend"))
                .route(post().to(endpoints::resend)),
        )
        .service(resource(&format!("{ep}/secret")).route(post().to(endpoints::reveal_secret)))
        .service(
            resource(&format!("{ep}/secret/rotate")).route(post().to(endpoints::rotate_secret)),
        )
        .service(resource(&format!("{ep}/disable")).route(post().to(endpoints::disable)))
        .service(
            resource(&format!("{ep}/delete"))
                .route(get().to(endpoints::confirm_delete))
                .route(post().to(endpoints::delete)),
        )
        .service(
            resource(&format!("{ep}/enable"))
                .route(get().to(endpoints::confirm_enable))
                .route(post().to(endpoints::enable)),
        )
        .default_service(web::to(not_found))
}

/// Registers every console route: `/admin` and the customer portal under `/portal`.
pub fn routes(cfg: &mut web::ServiceConfig) {
    use web::{get, post};
    let admin = web::scope("/admin")
        .service(resource("").route(get().to(dashboard::show)))
        .service(resource("/static/{file:.*}").route(get().to(assets::serve)))
        .service(
            resource("/login")
                .route(get().to(auth::login_form))
                .route(post().to(auth::login)),
        )
        .service(resource("/logout").route(post().to(auth::logout)))
        .service(
            resource("/setup")
                .route(get().to(auth::setup_form))
                .route(post().to(auth::setup)),
        )
        .service(
            resource("/event-types")
                .route(get().to(catalog::event_catalog))
                .route(post().to(catalog::create_event_type)),
        )
        .service(
            resource("/event-types/{name}")
                .route(get().to(catalog::edit_event_type))
                .route(post().to(catalog::update_event_type)),
        )
        .service(
            resource("/event-types/{name}/archive").route(post().to(catalog::archive_event_type)),
        )
        .service(
            resource("/tokens")
                .route(get().to(catalog::api_tokens))
                .route(post().to(catalog::create_token)),
        )
        .service(resource("/tokens/{token_id}/revoke").route(post().to(catalog::revoke_token)))
        .service(
            resource("/apps")
                .route(get().to(apps::list))
                .route(post().to(apps::create)),
        )
        .service(resource("/apps/{app_id}").route(get().to(apps::open)))
        .service(resource("/operational").route(get().to(apps::operational)))
        .service(
            resource("/apps/{app_id}/settings")
                .route(get().to(apps::settings))
                .route(post().to(apps::rename)),
        )
        .service(
            resource("/apps/{app_id}/delete")
                .route(get().to(apps::confirm_delete))
                .route(post().to(apps::delete)),
        )
        .service(
            resource("/apps/{app_id}/portal")
                .route(get().to(portal::links))
                .route(post().to(portal::create)),
        )
        .service(
            resource("/apps/{app_id}/portal/{link_id}/revoke").route(post().to(portal::revoke)),
        );
    let portal = webhook_pages(
        web::scope(PORTAL_ROOT).service(resource("/open/{token}").route(get().to(portal::open))),
    )
    // Portal pages are made to be embedded in the operator's own product.
    .wrap_fn(|req, srv| {
        use actix_web::dev::Service;
        let fut = srv.call(req);
        async {
            let res = fut.await?;
            // Error pages in the portal don't point at the admin console.
            let shown = res.response().extensions().get::<Shown>().cloned();
            let mut res = match shown {
                Some(s) => res.map_body(|head, _| {
                    let page = ErrorPage {
                        status: head.status.as_u16(),
                        title: s.title,
                        message: s.message,
                        back: None,
                    };
                    actix_web::body::EitherBody::right(actix_web::body::BoxBody::new(page.html()))
                }),
                None => res.map_into_left_body(),
            };
            res.headers_mut().insert(
                header::CONTENT_SECURITY_POLICY,
                header::HeaderValue::from_static(PORTAL_CSP),
            );
            Ok(res)
        }
    });
    cfg.service(webhook_pages(admin)).service(portal);
}

async fn method_not_allowed() -> Result<HttpResponse, ConsoleError> {
    Err(ConsoleError::MethodNotAllowed)
}

async fn not_found() -> Result<HttpResponse, ConsoleError> {
    Err(ConsoleError::NotFound("page"))
}

/// The console's own state: login throttling, a hash to verify against for unknown users,
/// and the key that binds login forms to this server.
pub struct Console {
    /// Password checks per client and username within `LOGIN_WINDOW`, counted before the
    /// check (so attempts that arrive at once cannot all be evaluated).
    attempts: Mutex<HashMap<(IpAddr, String), Vec<Instant>>>,
    /// Password checks per client, whatever the username, within `LOGIN_WINDOW`.
    per_client: Mutex<HashMap<IpAddr, Vec<Instant>>>,
    /// Failed logins per username within `LOGIN_WINDOW`, from any client, and the turn its
    /// checks take one at a time once it keeps failing.
    failures: Mutex<HashMap<String, Failures>>,
    dummy_hash: String,
    login_key: [u8; 32],
}

#[derive(Default)]
struct Failures {
    times: Vec<Instant>,
    turn: Arc<tokio::sync::Mutex<()>>,
}

fn locked<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn recent(times: &mut Vec<Instant>) -> usize {
    times.retain(|t| t.elapsed() < LOGIN_WINDOW);
    times.len()
}

/// Drops keys with nothing recent once a map is big.
fn prune<K: std::hash::Hash + Eq, V>(
    map: &mut HashMap<K, V>,
    times: impl Fn(&mut V) -> &mut Vec<Instant>,
) {
    if map.len() > 100_000 {
        map.retain(|_, v| recent(times(v)) > 0);
    }
}

impl Console {
    pub fn new(main_key: &crate::domain::crypto::MainKey) -> Console {
        Console {
            attempts: Mutex::default(),
            per_client: Mutex::default(),
            failures: Mutex::default(),
            // Logins for unknown users verify against this, so they take as long as others.
            dummy_hash: crate::domain::password::hash("not a real password").unwrap_or_default(),
            login_key: main_key.derive("hookbox login form"),
        }
    }

    /// Counts a password check by `client` for `username`; `false` (and not counted) when
    /// the client has had `LOGIN_FAILURES` checks for that username, or `LOGIN_CHECKS_PER_CLIENT`
    /// in all, within the window.
    fn begin_login(&self, client: IpAddr, username: &str) -> bool {
        let mut attempts = locked(&self.attempts);
        let mut per_client = locked(&self.per_client);
        prune(&mut attempts, |v| v);
        prune(&mut per_client, |v| v);
        let mine = attempts.entry((client, username.to_owned())).or_default();
        let all = per_client.entry(client).or_default();
        if recent(mine) >= LOGIN_FAILURES || recent(all) >= LOGIN_CHECKS_PER_CLIENT {
            return false;
        }
        mine.push(Instant::now());
        all.push(Instant::now());
        true
    }

    /// The turn to wait for before checking a password for `username`: none, unless it has
    /// failed `LOGIN_FAILURES` times within the window (from anywhere); then its checks run
    /// one at a time, each after `LOGIN_SLOWDOWN`. Slowed down, never refused: others'
    /// failures must not lock the user out.
    fn turn(&self, username: &str) -> Option<Arc<tokio::sync::Mutex<()>>> {
        let mut map = locked(&self.failures);
        let f = map.get_mut(username)?;
        (recent(&mut f.times) >= LOGIN_FAILURES).then(|| f.turn.clone())
    }

    fn failed(&self, username: &str) {
        let mut map = locked(&self.failures);
        prune(&mut map, |f| &mut f.times);
        map.entry(username.to_owned())
            .or_default()
            .times
            .push(Instant::now());
    }

    fn succeeded(&self, client: IpAddr, username: &str) {
        locked(&self.attempts).remove(&(client, username.to_owned()));
        if let Some(f) = locked(&self.failures).get_mut(username) {
            f.times.clear();
        }
    }

    /// The login form's hidden value for the anti-forgery cookie `token`: a MAC under a
    /// server key, so that whoever can plant the cookie still cannot make a matching form.
    fn login_form_value(&self, token: &str) -> String {
        use hmac::Mac;
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&self.login_key)
            .expect("HMAC takes any key length");
        mac.update(token.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }
}

/// What can go wrong on a console page; each renders as a page (or a redirect to login).
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    /// Redirects to the login page, which returns to `next` (a console path) afterwards.
    #[error("please log in")]
    LoginRequired { next: Option<String> },
    #[error("the form has expired or did not come from this console")]
    Csrf,
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("too many failed logins; wait a minute and try again")]
    RateLimited,
    #[error("{0}")]
    Gone(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("this portal link is read-only")]
    ReadOnly,
    /// A portal page without a live portal session (there is no login page to send it to).
    #[error("{0}")]
    PortalLogin(String),
    #[error("this page does not answer that method")]
    MethodNotAllowed,
    /// Nothing can be stored right now (the disk is full).
    #[error("{}", crate::http::error::FULL_DETAIL)]
    StorageFull,
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<DbError> for ConsoleError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::Conflict(d) => ConsoleError::BadRequest(d),
            full if full.is_full() => ConsoleError::StorageFull,
            other => ConsoleError::Internal(other.to_string()),
        }
    }
}

impl From<crate::http::error::ApiError> for ConsoleError {
    fn from(e: crate::http::error::ApiError) -> Self {
        use crate::http::error::ApiError as E;
        match e {
            E::NotFound(what) => ConsoleError::NotFound(what),
            E::Unavailable(_) => ConsoleError::StorageFull,
            E::Internal(detail) => ConsoleError::Internal(detail),
            other => ConsoleError::BadRequest(other.to_string()),
        }
    }
}

impl From<askama::Error> for ConsoleError {
    fn from(e: askama::Error) -> Self {
        ConsoleError::Internal(format!("template: {e}"))
    }
}

#[derive(Template)]
#[template(path = "admin/error.html")]
struct ErrorPage<'a> {
    status: u16,
    title: &'a str,
    message: String,
    /// Where "Back" goes: the console's start, or nowhere in the customer portal.
    back: Option<&'a str>,
}

impl ErrorPage<'_> {
    fn html(&self) -> String {
        self.render()
            .unwrap_or_else(|_| "<!doctype html><title>Error</title><p>Error</p>".to_owned())
    }
}

/// What an error page said, kept on the response so the portal can show it without the
/// console's links.
#[derive(Clone)]
struct Shown {
    title: &'static str,
    message: String,
}

impl ResponseError for ConsoleError {
    fn status_code(&self) -> StatusCode {
        match self {
            ConsoleError::LoginRequired { .. } => StatusCode::SEE_OTHER,
            ConsoleError::Csrf | ConsoleError::ReadOnly => StatusCode::FORBIDDEN,
            ConsoleError::NotFound(_) => StatusCode::NOT_FOUND,
            ConsoleError::PortalLogin(_) => StatusCode::UNAUTHORIZED,
            ConsoleError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ConsoleError::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            ConsoleError::Gone(_) => StatusCode::GONE,
            ConsoleError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ConsoleError::StorageFull => StatusCode::SERVICE_UNAVAILABLE,
            ConsoleError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let ConsoleError::LoginRequired { next } = self {
            return match next {
                Some(n) => redirect(&format!(
                    "/admin/login?next={}",
                    url::form_urlencoded::byte_serialize(n.as_bytes()).collect::<String>()
                )),
                None => redirect("/admin/login"),
            };
        }
        let status = self.status_code();
        let (title, message) = match self {
            ConsoleError::Csrf => (
                "Form rejected",
                "This form has expired or did not come from this console. Go back, reload the page and try again.".to_owned(),
            ),
            ConsoleError::NotFound(what) => ("Not found", format!("This {what} does not exist, or has been deleted.")),
            ConsoleError::RateLimited => ("Too many attempts", self.to_string()),
            ConsoleError::PortalLogin(m) => ("Session ended", m.clone()),
            ConsoleError::MethodNotAllowed => ("Not allowed", "This page cannot be used that way. Go back and use the page's buttons and forms.".to_owned()),
            ConsoleError::ReadOnly => (
                "Read-only access",
                "This link lets you look at your webhooks but not change them. Ask for a link with full access.".to_owned(),
            ),
            ConsoleError::Gone(m) => ("Link no longer valid", m.clone()),
            ConsoleError::BadRequest(m) => ("Something is wrong with this request", m.clone()),
            ConsoleError::StorageFull => ("Storage is full", "The server cannot store anything right now: its disk (or its database size limit) is full. Try again once space is freed.".to_owned()),
            ConsoleError::Internal(detail) => {
                tracing::error!(error = %detail, "console request failed");
                ("Something went wrong", "The server could not complete this request. The details are in its log.".to_owned())
            }
            ConsoleError::LoginRequired { .. } => ("", String::new()),
        };
        let page = ErrorPage {
            status: status.as_u16(),
            title,
            message: message.clone(),
            back: Some("/admin"),
        };
        let mut res = html(status, page.html());
        res.extensions_mut().insert(Shown { title, message });
        res
    }
}

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

impl Admin {
    pub fn chrome(&self, section: &'static str) -> Chrome {
        Chrome {
            username: self.username.clone(),
            csrf: self.csrf.clone(),
            section,
            notice: None,
            root: self.root(),
            portal: self.portal.is_some(),
        }
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

fn idle_ms() -> i64 {
    crate::domain::time::duration_ms(SESSION_IDLE)
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
    let hash = hash_secret(&cookie);
    let now = now_ms();
    let session = st
        .db
        .read(move |c| admin_db::session(c, &hash, now))
        .await?
        .ok_or_else(login)?;
    // Extending the idle timeout costs a write: once a minute is precise enough.
    if now - session.last_seen_at > 60_000 {
        let h = session.id_hash.clone();
        st.db
            .write(move |c| admin_db::touch_session(c, &h, now, now + idle_ms()))
            .await?;
    }
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

/// A form post from a logged-in admin whose CSRF token matches the session's.
pub(super) async fn admin_post(
    st: &Data,
    req: &HttpRequest,
    body: &[u8],
) -> Result<(Admin, Form), ConsoleError> {
    let admin = admin(st, req).await?;
    let form = Form::parse(body);
    if !same(form.get("csrf"), &admin.csrf) {
        return Err(ConsoleError::Csrf);
    }
    if admin.portal.as_ref().is_some_and(|p| p.read_only) {
        return Err(ConsoleError::ReadOnly);
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
        "endpoint-deleted" => "Endpoint deleted.",
        "resent" => "The message is being sent again.",
        "rotated" => "Signing secret rotated. The previous secret keeps signing during the grace period.",
        "disabled" => "Endpoint disabled. Messages that arrive now are kept and can be replayed when you enable it.",
        "enabled" => "Endpoint enabled.",
        "token-revoked" => "Token revoked. Requests using it are refused within a few seconds.",
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
