//! Login, logout and the first admin's setup link.

use super::{
    admin, cookie, hash_secret, is_https, page, page_with, redirect, safe_next, same, ConsoleError,
    Form, Posted, COOKIE,
};
use crate::domain::password;
use crate::http::Data;
use crate::service::logins;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;

pub use crate::domain::secrets::new_secret;

#[derive(Template)]
#[template(path = "admin/login.html")]
struct LoginPage<'a> {
    username: &'a str,
    error: Option<&'a str>,
    token: &'a str,
    next: &'a str,
}

/// The login form's anti-forgery cookie: a login form posted from another site (which would
/// log the victim into the attacker's account) lacks the matching hidden field.
const LOGIN_COOKIE: &str = "hookbox_login";

/// Marks a browser an admin logged in from (see [`super::console::Console::knows_browser`]):
/// its logins are not slowed down by others' failures for that username.
const KNOWN_COOKIE: &str = "hookbox_known";

/// The login page, with a token in a cookie and in the form (double submit).
fn login_page(
    req: &HttpRequest,
    status: StatusCode,
    username: &str,
    error: Option<&str>,
    next: &str,
) -> Result<HttpResponse, ConsoleError> {
    let token = cookie(req, LOGIN_COOKIE).unwrap_or_else(new_secret);
    let form_value = req
        .app_data::<Data>()
        .map(|st| st.console.login_form_value(&token))
        .unwrap_or_default();
    let mut res = page_with(
        status,
        &LoginPage {
            username,
            error,
            token: &form_value,
            next: safe_next(next),
        },
    )?;
    let mut c =
        format!("{LOGIN_COOKIE}={token}; Path=/admin; HttpOnly; SameSite=Strict; Max-Age=86400");
    if is_https(req) {
        c.push_str("; Secure");
    }
    if let Ok(v) = actix_web::http::header::HeaderValue::from_str(&c) {
        res.headers_mut()
            .append(actix_web::http::header::SET_COOKIE, v);
    }
    Ok(res)
}

/// Hashes or checks a password off the HTTP workers, one per core at a time: each takes
/// 19 MiB and tens of ms of a core, so a burst of logins from many addresses waits its turn
/// rather than taking memory in proportion to its size.
async fn password_work<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ConsoleError> {
    static TURNS: std::sync::LazyLock<tokio::sync::Semaphore> = std::sync::LazyLock::new(|| {
        tokio::sync::Semaphore::new(std::thread::available_parallelism().map_or(2, |n| n.get()))
    });
    let _turn = TURNS
        .acquire()
        .await
        .map_err(|e| ConsoleError::Internal(e.to_string()))?;
    web::block(work)
        .await
        .map_err(|e| ConsoleError::Internal(e.to_string()))
}

pub async fn login_form(st: Data, req: HttpRequest) -> Result<HttpResponse, ConsoleError> {
    let q = crate::http::extract::Query::parse(req.query_string());
    let next = q.str("next").unwrap_or_default().to_owned();
    if admin(&st, &req).await.is_ok() {
        return Ok(redirect(safe_next(&next)));
    }
    login_page(&req, StatusCode::OK, "", None, &next)
}

/// Whether a form was posted from hookbox's own pages, as the browser tells (`Sec-Fetch-Site`,
/// `Origin`): a login form posted from another site, even a sibling subdomain that can plant
/// the form's cookie, is refused. Clients that tell nothing (not browsers) pass.
fn from_own_pages(req: &HttpRequest) -> bool {
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = header("sec-fetch-site") {
        if site != "same-origin" && site != "none" {
            return false;
        }
    }
    let Some(origin) = header("origin") else {
        return true;
    };
    // Host and explicit port only: behind a TLS proxy the scheme seen here may differ.
    let authority = |u: &str| {
        let u = url::Url::parse(u).ok()?;
        Some((u.host_str()?.to_ascii_lowercase(), u.port()))
    };
    let theirs = authority(origin);
    theirs.is_some() && theirs == authority(&crate::http::forwarded::public_base(req))
}

pub async fn login(
    st: Data,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ConsoleError> {
    let form = Form::parse(&body);
    let token = cookie(&req, LOGIN_COOKIE).unwrap_or_default();
    if token.is_empty()
        || !same(form.get("login_csrf"), &st.console.login_form_value(&token))
        || !from_own_pages(&req)
    {
        return Err(ConsoleError::Csrf);
    }
    let username = form.get("username").to_owned();
    let pw = form.raw("password").to_owned();
    let client = crate::http::forwarded::throttle_key(crate::http::forwarded::client_ip(&req));
    // Counted by at most 256 characters of the name: no key grows without bound.
    let name_key: String = username.chars().take(256).collect();
    if !logins::begin(&st.store, client, &name_key, st.now()).await? {
        return Err(ConsoleError::RateLimited);
    }
    let user = st.store.admin_by_name(&username).await?;
    // Others failing for this username (from as many addresses as they like) slow its
    // checks down, and can book them far ahead; not those from a browser it logged in from
    // with its current password.
    let known = user.as_ref().is_some_and(|u| {
        cookie(&req, KNOWN_COOKIE).is_some_and(|v| {
            st.console
                .knows_browser(&v, &name_key, &u.password_hash, st.now())
        })
    });
    if !known {
        match logins::wait_for_turn(&st.store, &name_key, st.now()).await? {
            Some(wait) if !wait.is_zero() => tokio::time::sleep(wait).await,
            Some(_) => {}
            None => return Err(ConsoleError::RateLimited),
        }
    }
    // An unknown user's login verifies against a hash of no one's password: it takes as
    // long as the others.
    let hash = user.as_ref().map(|u| u.password_hash.clone());
    let ok = password_work(move || match hash {
        Some(h) => password::verify(&pw, &h),
        None => password::verify(&pw, password::dummy_hash()),
    })
    .await?;
    let user = match (ok, user) {
        (true, Some(u)) => u,
        _ => {
            logins::failed(&st.store, &name_key, st.now()).await?;
            return login_page(
                &req,
                StatusCode::UNAUTHORIZED,
                &username,
                Some("Wrong username or password."),
                form.get("next"),
            );
        }
    };
    logins::succeeded(&st.store, client, &name_key).await?;
    let known_as = (name_key.as_str(), user.password_hash.as_str());
    start_session(
        &st,
        &req,
        user.id.clone(),
        known_as,
        safe_next(form.get("next")),
    )
    .await
}

/// Creates a session for `user_id` and answers with its cookie and a redirect to `then`; the
/// browser is known for `(username, password hash)` from now on.
async fn start_session(
    st: &Data,
    req: &HttpRequest,
    user_id: String,
    (username, password_hash): (&str, &str),
    then: &str,
) -> Result<HttpResponse, ConsoleError> {
    let sid = crate::service::sessions::start_admin(&st.store, &user_id, st.now())
        .await?
        .id;
    let mut res = redirect(then);
    set_cookie(&mut res, &sid, None, is_https(req));
    let known = st
        .console
        .known_browser_value(username, password_hash, st.now());
    let mut c = format!(
        "{KNOWN_COOKIE}={known}; Path=/admin/login; HttpOnly; SameSite=Strict; Max-Age={}",
        super::console::KNOWN_FOR.as_secs()
    );
    if is_https(req) {
        c.push_str("; Secure");
    }
    if let Ok(v) = actix_web::http::header::HeaderValue::from_str(&c) {
        res.headers_mut()
            .append(actix_web::http::header::SET_COOKIE, v);
    }
    Ok(res)
}

/// Sets (or, with `max_age` 0, removes) the session cookie: HttpOnly, SameSite=Lax, and
/// Secure when the request came over TLS. Without `max_age` it lasts for the browser session;
/// the server ends it after `service::sessions::IDLE` of inactivity anyway.
fn set_cookie(res: &mut HttpResponse, value: &str, max_age: Option<u32>, secure: bool) {
    let mut c = format!("{COOKIE}={value}; Path=/admin; HttpOnly; SameSite=Lax");
    if let Some(age) = max_age {
        c.push_str(&format!("; Max-Age={age}"));
    }
    if secure {
        c.push_str("; Secure");
    }
    if let Ok(v) = actix_web::http::header::HeaderValue::from_str(&c) {
        res.headers_mut()
            .append(actix_web::http::header::SET_COOKIE, v);
    }
}

pub async fn logout(
    st: Data,
    req: HttpRequest,
    Posted { admin, .. }: Posted,
) -> Result<HttpResponse, ConsoleError> {
    crate::service::sessions::end_admin(&st.store, &admin.session_hash).await?;
    let mut res = redirect("/admin/login");
    set_cookie(&mut res, "", Some(0), is_https(&req));
    Ok(res)
}

#[derive(Template)]
#[template(path = "admin/setup.html")]
struct SetupPage<'a> {
    token: &'a str,
    username: &'a str,
    username_error: Option<String>,
    password_error: Option<String>,
}

const SETUP_GONE: &str = "This setup link is invalid, has expired or was already used. \
    Restart hookbox for a new one, or create an admin with `hookbox admin create --username NAME`.";

pub async fn setup_form(st: Data, req: HttpRequest) -> Result<HttpResponse, ConsoleError> {
    let q = crate::http::extract::Query::parse(req.query_string());
    let token = q.str("token").unwrap_or_default().to_owned();
    let hash = hash_secret(&token);
    let valid = st.store.setup_token_usable(&hash, st.now()).await?;
    if !valid {
        return Err(ConsoleError::Gone(SETUP_GONE.into()));
    }
    page(&SetupPage {
        token: &token,
        username: "",
        username_error: None,
        password_error: None,
    })
}

/// Why a username is refused, if it is.
pub fn check_username(u: &str) -> Result<(), String> {
    if u.is_empty()
        || u.chars().count() > 64
        || u.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err("use 1 to 64 characters, without spaces or control characters".into());
    }
    Ok(())
}

pub async fn setup(
    st: Data,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ConsoleError> {
    let form = Form::parse(&body);
    let token = form.get("token").to_owned();
    // Before anything else: whoever lacks the link gets no password hashed.
    if !st
        .store
        .setup_token_usable(&hash_secret(&token), st.now())
        .await?
    {
        return Err(ConsoleError::Gone(SETUP_GONE.into()));
    }
    let username = form.get("username").to_owned();
    let pw = form.raw("password").to_owned();
    let username_error = check_username(&username).err();
    let password_error = password::check_new(&pw)
        .err()
        .or_else(|| (pw != form.raw("confirm")).then(|| "the two passwords differ".to_owned()));
    if username_error.is_some() || password_error.is_some() {
        return page_with(
            StatusCode::UNPROCESSABLE_ENTITY,
            &SetupPage {
                token: &token,
                username: &username,
                username_error,
                password_error,
            },
        );
    }
    let hash = password_work(move || password::hash(&pw))
        .await?
        .map_err(ConsoleError::Internal)?;
    let user_id =
        crate::service::sessions::create_first_admin(&st.store, &token, &username, &hash, st.now())
            .await?
            .ok_or_else(|| ConsoleError::Gone(SETUP_GONE.into()))?;
    start_session(&st, &req, user_id, (&username, &hash), "/admin").await
}

#[cfg(test)]
mod tests {
    use super::check_username;

    #[test]
    fn usernames_are_one_to_64_characters_without_blanks_or_control_characters() {
        assert!(check_username("ops-admin@example").is_ok());
        assert!(check_username(&"é".repeat(64)).is_ok());
        for refused in ["", "two words", "tab\there", "nul\u{0}", &"x".repeat(65)] {
            assert!(check_username(refused).is_err(), "{refused:?}");
        }
    }
}
