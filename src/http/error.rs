//! The one error type at the HTTP boundary, with Svix's error bodies.

use crate::db::DbError;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;

/// One validation error of a 422 answer.
#[derive(Debug, Clone, Serialize, PartialEq, ToSchema)]
#[schema(as = ValidationErrorItem)]
pub struct ValidationItem {
    /// Where: `["body", "url"]`, `["query", "limit"]`, `["path", "app_id"]`…
    pub loc: Vec<String>,
    pub msg: String,
    /// `value_error`, `type_error` or `missing`.
    #[serde(rename = "type")]
    pub kind: String,
}

/// The body of every error answer but 422.
#[derive(Serialize, ToSchema)]
#[schema(title = "HttpError")]
pub struct HttpErrorOut<'a> {
    /// `generic_error`, `authentication_failed`, `not_found`, `conflict`, …
    pub code: &'a str,
    pub detail: &'a str,
}

/// The body of a 422 answer.
#[derive(Serialize, ToSchema)]
#[allow(clippy::upper_case_acronyms)]
pub struct HTTPValidationError<'a> {
    pub detail: &'a [ValidationItem],
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    /// A limit on how often something may be done was reached (Svix's `limit_reached`).
    #[error("{0}")]
    LimitReached(String),
    #[error("authentication failed")]
    Unauthorized(&'static str),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{detail}")]
    Conflict { code: &'static str, detail: String },
    #[error("validation failed")]
    Validation(Vec<ValidationItem>),
    #[error("{0}")]
    PayloadTooLarge(String),
    /// The server cannot store anything right now (the disk is full): try again later.
    #[error("{0}")]
    Unavailable(String),
    /// The database cannot be reached right now (the detail goes to the log): try again soon.
    #[error("{}", DATABASE_AWAY_DETAIL)]
    DatabaseAway(String),
    /// The request was not answered within the answer timeout (its database did not answer
    /// in time): what it asked for may or may not have been done.
    #[error(
        "the request was not answered within {}s (the database did not answer in time); \
         whether what it asked for was done is unknown: send it again (a message with the \
         same idempotency key, so that it is stored once)",
        .0.as_secs()
    )]
    NotAnswered(std::time::Duration),
    #[error("internal error: {0}")]
    Internal(String),
}

/// How long callers are asked to wait when storage is full.
const RETRY_AFTER_FULL_SECS: u32 = 30;

/// How long callers are asked to wait when the database cannot be reached.
const RETRY_AFTER_AWAY_SECS: u32 = 5;

/// Logs that a request was refused because the database cannot be reached: once a second at
/// most, since while it is away every request would say so.
pub(crate) fn warn_database_away(why: &str) {
    static LAST_SECOND: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);
    let second = crate::domain::time::now_ms() / 1000;
    if LAST_SECOND.swap(second, std::sync::atomic::Ordering::Relaxed) != second {
        tracing::warn!(error = %why, "requests refused: the database cannot be reached");
    }
}

/// What callers are told when the database cannot be reached.
pub const DATABASE_AWAY_DETAIL: &str =
    "the server cannot reach its database right now; retry later";

impl ApiError {
    /// One validation error at `loc` (e.g. `["body", "url"]`).
    pub fn invalid(loc: &[&str], msg: impl Into<String>) -> ApiError {
        ApiError::Validation(vec![ValidationItem {
            loc: loc.iter().map(|s| (*s).to_owned()).collect(),
            msg: msg.into(),
            kind: "value_error".into(),
        }])
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "generic_error",
            ApiError::LimitReached(_) => "limit_reached",
            ApiError::Unauthorized(_) => "authentication_failed",
            ApiError::NotFound(_) => "not_found",
            ApiError::Conflict { code, .. } => code,
            ApiError::Validation(_) => "validation",
            ApiError::PayloadTooLarge(_) => "payload_too_large",
            ApiError::Unavailable(_) => "storage_full",
            ApiError::DatabaseAway(_) => "database_unavailable",
            ApiError::NotAnswered(_) => "not_answered",
            ApiError::Internal(_) => "server_error",
        }
    }
}

/// What callers are told when the disk (or the database's size limit) is full.
pub const FULL_DETAIL: &str = "the server cannot store messages right now: its disk (or its \
     database size limit) is full; retry later";

/// A broken rule of the service layer, located in the request body.
impl From<crate::service::input::FieldError> for ApiError {
    fn from(e: crate::service::input::FieldError) -> Self {
        let mut loc = vec!["body".to_owned()];
        loc.extend(e.loc);
        ApiError::Validation(vec![ValidationItem {
            loc,
            msg: e.msg,
            kind: "value_error".into(),
        }])
    }
}

impl From<crate::service::input::Rejected> for ApiError {
    fn from(e: crate::service::input::Rejected) -> Self {
        match e {
            crate::service::input::Rejected::Invalid(e) => e.into(),
            crate::service::input::Rejected::Db(e) => e.into(),
        }
    }
}

impl From<crate::service::endpoints::RotateError> for ApiError {
    fn from(e: crate::service::endpoints::RotateError) -> Self {
        match e {
            crate::service::endpoints::RotateError::Db(e) => e.into(),
            limit => ApiError::LimitReached(limit.to_string()),
        }
    }
}

impl From<DbError> for ApiError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::Conflict(detail) => ApiError::Conflict {
                code: "conflict",
                detail,
            },
            DbError::Unstorable(detail) => ApiError::BadRequest(detail),
            e @ (DbError::Contended(_) | DbError::Changed) => ApiError::Conflict {
                code: "conflict",
                detail: e.to_string(),
            },
            full if full.is_full() => ApiError::Unavailable(FULL_DETAIL.to_owned()),
            DbError::Unreachable(why) => ApiError::DatabaseAway(why),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) | ApiError::LimitReached(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Unavailable(_) | ApiError::DatabaseAway(_) | ApiError::NotAnswered(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut res = HttpResponse::build(self.status_code());
        let code = self.code();
        match self {
            ApiError::Validation(items) => res.json(HTTPValidationError { detail: items }),
            ApiError::Internal(detail) => {
                tracing::error!(error = %detail, "request failed");
                res.json(HttpErrorOut {
                    code,
                    detail: "internal server error",
                })
            }
            ApiError::Unauthorized(why) => res.json(HttpErrorOut { code, detail: why }),
            ApiError::Unavailable(detail) => {
                tracing::warn!("request refused: database or disk is full");
                res.insert_header(("retry-after", RETRY_AFTER_FULL_SECS.to_string()))
                    .json(HttpErrorOut { code, detail })
            }
            ApiError::DatabaseAway(why) => {
                warn_database_away(why);
                res.insert_header(("retry-after", RETRY_AFTER_AWAY_SECS.to_string()))
                    .json(HttpErrorOut {
                        code,
                        detail: DATABASE_AWAY_DETAIL,
                    })
            }
            ApiError::NotAnswered(_) => res
                .insert_header(("retry-after", RETRY_AFTER_AWAY_SECS.to_string()))
                .json(HttpErrorOut {
                    code,
                    detail: &self.to_string(),
                }),
            other => res.json(HttpErrorOut {
                code,
                detail: &other.to_string(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_maps_to_its_documented_status_and_code() {
        let cases: Vec<(ApiError, u16, &str)> = vec![
            (ApiError::BadRequest("x".into()), 400, "generic_error"),
            (ApiError::Unauthorized("x"), 401, "authentication_failed"),
            (ApiError::NotFound("application"), 404, "not_found"),
            (
                ApiError::Conflict {
                    code: "event_type_exists",
                    detail: "x".into(),
                },
                409,
                "event_type_exists",
            ),
            (
                ApiError::invalid(&["body", "url"], "bad"),
                422,
                "validation",
            ),
            (
                ApiError::PayloadTooLarge("x".into()),
                413,
                "payload_too_large",
            ),
            (
                ApiError::from(DbError::Unreachable("connection refused".into())),
                503,
                "database_unavailable",
            ),
            (
                ApiError::NotAnswered(std::time::Duration::from_secs(30)),
                503,
                "not_answered",
            ),
            (ApiError::Internal("secret".into()), 500, "server_error"),
        ];
        for (e, status, code) in cases {
            assert_eq!(e.status_code().as_u16(), status, "{e:?}");
            assert_eq!(e.code(), code);
            assert_eq!(e.error_response().status().as_u16(), status);
        }
        assert!(
            ApiError::from(DbError::Conflict("dup".into())).status_code() == StatusCode::CONFLICT
        );
        // A transaction PostgreSQL made give way (a deadlock): the client may try again.
        let contended = ApiError::from(DbError::Contended("deadlock detected".into()));
        assert_eq!(contended.status_code(), StatusCode::CONFLICT);
        assert!(contended.to_string().contains("try again"), "{contended}");
    }
}
