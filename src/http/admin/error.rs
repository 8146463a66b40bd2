//! What can go wrong on a console page, and the page that says so.

use super::*;

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
    /// The database cannot be reached right now (the detail goes to the log).
    #[error("{}", crate::http::error::DATABASE_AWAY_DETAIL)]
    DatabaseAway(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<crate::service::endpoints::RotateError> for ConsoleError {
    fn from(e: crate::service::endpoints::RotateError) -> Self {
        match e {
            crate::service::endpoints::RotateError::Db(e) => e.into(),
            limit => ConsoleError::BadRequest(format!("Not rotated: {limit}.")),
        }
    }
}

impl From<DbError> for ConsoleError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::Conflict(d) | DbError::Unstorable(d) => ConsoleError::BadRequest(d),
            e @ (DbError::Contended(_) | DbError::Changed) => {
                ConsoleError::BadRequest(e.to_string())
            }
            full if full.is_full() => ConsoleError::StorageFull,
            DbError::Unreachable(why) => ConsoleError::DatabaseAway(why),
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
            E::DatabaseAway(why) => ConsoleError::DatabaseAway(why),
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
pub(super) struct ErrorPage<'a> {
    pub(super) status: u16,
    pub(super) title: &'a str,
    pub(super) message: String,
    /// Where "Back" goes: the console's start, or nowhere in the customer portal.
    pub(super) back: Option<&'a str>,
}

impl ErrorPage<'_> {
    pub(super) fn html(&self) -> String {
        self.render()
            .unwrap_or_else(|_| "<!doctype html><title>Error</title><p>Error</p>".to_owned())
    }
}

/// What an error page said, kept on the response so the portal can show it without the
/// console's links.
#[derive(Clone)]
pub(super) struct Shown {
    pub(super) title: &'static str,
    pub(super) message: String,
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
            ConsoleError::StorageFull | ConsoleError::DatabaseAway(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
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
            ConsoleError::DatabaseAway(why) => {
                crate::http::error::warn_database_away(why);
                ("Database unreachable", "The server cannot reach its database right now. Try again in a few seconds.".to_owned())
            }
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
        if let ConsoleError::RateLimited = self {
            // At most the window a count is kept for.
            res.headers_mut().insert(
                actix_web::http::header::RETRY_AFTER,
                actix_web::http::header::HeaderValue::from_static("60"),
            );
        }
        res.extensions_mut().insert(Shown { title, message });
        res
    }
}
