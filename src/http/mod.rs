//! HTTP: the `/api/v1` API and the `/admin` console.

pub mod admin;
pub mod api;
pub mod auth;
pub mod error;
pub mod extract;
pub mod forwarded;
pub mod metrics;
pub mod request_id;

use crate::config::Config;
use crate::db::Store;
use crate::delivery::Dispatcher;
use std::sync::Arc;

/// Everything a handler needs, shared by all workers.
pub struct State {
    pub store: Store,
    pub cfg: Arc<Config>,
    pub dispatcher: Dispatcher,
    pub tokens: auth::TokenCache,
    pub metrics: metrics::HttpMetrics,
    pub console: admin::Console,
    /// Sends alerts (and test notifications).
    pub notifier: crate::alerts::Notifier,
    /// Works through background tasks (bulk replays).
    pub tasks: crate::tasks::Tasks,
    /// The id of hookbox's own application (operational webhooks), made at start.
    pub operational_app_id: String,
}

impl State {
    /// Now, by the server's clock (which tests may move forward).
    pub fn now(&self) -> i64 {
        self.cfg.delivery.clock.now_ms()
    }
}

pub type Data = actix_web::web::Data<State>;

/// Marks a request that came in as `/api/v1/operational-webhook/endpoint…`: the only way to
/// reach hookbox's reserved application through the API.
#[derive(Clone, Copy)]
pub struct OperationalRoute;

/// What of the reserved application the operational webhook routes reach: its endpoints,
/// their secrets and headers (as Svix's operational webhook API), nothing else.
fn operational_route(rest: &str) -> bool {
    let mut parts = rest.split('/');
    matches!(
        (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next()
        ),
        (Some("endpoint"), None | Some(_), None, None, None)
            | (
                Some("endpoint"),
                Some(_),
                Some("secret" | "headers"),
                None,
                None
            )
            | (
                Some("endpoint"),
                Some(_),
                Some("secret"),
                Some("rotate"),
                None
            )
    )
}

/// Answers `HEAD` as `GET` (RFC 9110 §9.3.2): the same status and headers, `Content-Length`
/// included; the server sends no body for a request that came as `HEAD` (actix-http knows
/// the method it read off the wire).
pub fn head_as_get(mut req: actix_web::dev::ServiceRequest) -> actix_web::dev::ServiceRequest {
    if req.method() == actix_web::http::Method::HEAD {
        req.head_mut().method = actix_web::http::Method::GET;
    }
    req
}

/// Answers `/path/` as `/path` (the SDKs send no trailing slash, Svix's docs show one): the
/// request is rewritten in place, never redirected.
pub fn trim_trailing_slash(
    mut req: actix_web::dev::ServiceRequest,
) -> actix_web::dev::ServiceRequest {
    const OPS: &str = "/api/v1/operational-webhook/";
    let path = req.path();
    let ops = path.starts_with(OPS);
    if ops || (path.len() > 1 && path.ends_with('/')) {
        let trimmed = path.trim_end_matches('/');
        let trimmed = if trimmed.is_empty() { "/" } else { trimmed };
        // Operational webhook endpoints are the endpoints of a reserved application.
        let (trimmed, operational) = match trimmed.strip_prefix(OPS) {
            Some(rest) if operational_route(rest) => (
                format!("/api/v1/app/{}/{rest}", crate::operational::APP_UID),
                true,
            ),
            _ => (trimmed.to_owned(), false),
        };
        if operational {
            actix_web::HttpMessage::extensions_mut(&req).insert(OperationalRoute);
        }
        let new = match req.query_string() {
            "" => trimmed,
            q => format!("{trimmed}?{q}"),
        };
        if let Ok(uri) = new.parse::<actix_web::http::Uri>() {
            req.match_info_mut().get_mut().update(&uri);
            req.head_mut().uri = uri;
        }
    }
    req
}

/// A middleware (for `App::wrap_fn`) that answers a request its handler has not answered
/// within `limit` with 503 `not_answered`, rather than holding the client while its database
/// does not answer (a frozen server, whose kernel still acknowledges every packet). The
/// handler is dropped: a write it had handed to the database may still be made. The answer
/// is made by actix from the error (the request was moved into the handler), so it carries
/// no `x-request-id`; the log line does, in the request's span. Test sends, which wait for a
/// receiver or a mail server by design (as long as their own timeouts), have no deadline.
pub fn answer_within<S, B>(
    limit: std::time::Duration,
    req: actix_web::dev::ServiceRequest,
    srv: &S,
) -> impl std::future::Future<Output = Result<actix_web::dev::ServiceResponse<B>, actix_web::Error>>
where
    S: actix_web::dev::Service<
        actix_web::dev::ServiceRequest,
        Response = actix_web::dev::ServiceResponse<B>,
        Error = actix_web::Error,
    >,
{
    let path = req.path();
    let sends_now = path.ends_with("/test")
        || path.ends_with("/testing")
        || path.ends_with("/notifications/test");
    let limit = if sends_now {
        std::time::Duration::MAX
    } else {
        limit
    };
    let answer = srv.call(req);
    async move {
        tokio::time::timeout(limit, answer)
            .await
            .unwrap_or_else(|_| {
                tracing::warn!(
                    after_secs = limit.as_secs(),
                    "request not answered in time (the database did not answer); answered 503"
                );
                Err(error::ApiError::NotAnswered(limit).into())
            })
    }
}

/// A JSON body for 405 answers (actix sends them empty); console pages answer with their own
/// HTML page.
pub fn method_not_allowed<B>(
    res: actix_web::dev::ServiceResponse<B>,
) -> actix_web::Result<actix_web::middleware::ErrorHandlerResponse<B>> {
    if res
        .headers()
        .contains_key(actix_web::http::header::CONTENT_TYPE)
    {
        return Ok(actix_web::middleware::ErrorHandlerResponse::Response(
            res.map_into_left_body(),
        ));
    }
    let (req, res) = res.into_parts();
    let detail = format!("method {} is not allowed on {}", req.method(), req.path());
    let body = serde_json::json!({ "code": "method_not_allowed", "detail": detail }).to_string();
    let res = res.set_body(body).map_into_boxed_body();
    let mut res = actix_web::dev::ServiceResponse::new(req, res).map_into_right_body();
    res.headers_mut().insert(
        actix_web::http::header::CONTENT_TYPE,
        actix_web::http::header::HeaderValue::from_static("application/json"),
    );
    Ok(actix_web::middleware::ErrorHandlerResponse::Response(res))
}
