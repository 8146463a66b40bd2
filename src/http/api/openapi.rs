//! The OpenAPI document of `/api/v1`, generated from the handlers' `#[utoipa::path]`
//! attributes and the models' `ToSchema` derives, served at `/api/v1/openapi.json`.
//!
//! A new route: put `#[utoipa::path(...)]` on its handler and add the handler to `paths(...)`
//! below. Its schemas are collected from the attribute.

use super::{
    alerts, analytics, apps, attempts, endpoints, event_types, health, line, messages, operational,
    portal, tasks,
};
use crate::db::{MessageFilter, PageQuery};
use crate::domain::validate::{is_valid_event_type, is_valid_uid};
use crate::http::error::{ApiError, HTTPValidationError, HttpErrorOut};
use crate::http::extract::Query;
use actix_web::{HttpRequest, HttpResponse};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{IntoParams, IntoResponses, Modify, OpenApi, ToSchema};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "hookbox API",
        description = "A Svix-compatible webhook sending API. Authenticate with \
            `Authorization: Bearer <token>` (create one with `hookbox token create`).",
        license(name = "MIT"),
    ),
    paths(
        health::health,
        health::ping,
        serve_document,
        apps::list,
        apps::create,
        apps::get,
        apps::put,
        apps::patch,
        apps::delete,
        analytics::analytics,
        alerts::list,
        alerts::create,
        alerts::delete,
        alerts::sent,
        portal::access,
        event_types::list,
        event_types::create,
        event_types::get,
        event_types::put,
        event_types::patch,
        event_types::delete,
        endpoints::list,
        endpoints::create,
        endpoints::get,
        endpoints::put,
        endpoints::patch,
        endpoints::delete,
        endpoints::secret,
        endpoints::rotate_secret,
        endpoints::headers,
        endpoints::put_headers,
        endpoints::patch_headers,
        endpoints::stats,
        endpoints::health,
        endpoints::test,
        endpoints::send_example,
        endpoints::recover,
        endpoints::replay_missing,
        tasks::bulk_replay,
        line::get,
        line::skip,
        line::retry,
        tasks::list,
        tasks::get,
        endpoints::messages,
        messages::create,
        messages::list,
        messages::get,
        messages::expunge_content,
        messages::endpoints,
        attempts::get,
        attempts::expunge_content,
        attempts::resend,
        attempts::by_endpoint,
        attempts::by_message,
        operational::list,
        operational::create,
        operational::get,
        operational::put,
        operational::patch,
        operational::delete,
        operational::secret,
        operational::rotate_secret,
        operational::headers,
        operational::put_headers,
        operational::patch_headers,
    ),
    components(schemas(HttpErrorOut, HTTPValidationError)),
    modifiers(&BearerAuth),
    security(("HTTPBearer" = [])),
    tags(
        (name = "Health"),
        (name = "Application"),
        (name = "Authentication"),
        (name = "Event Type"),
        (name = "Endpoint"),
        (name = "Message"),
        (name = "Message Attempt"),
        (name = "Background Task", description = "Work done in the background: a bulk replay \
            of an endpoint's messages, and how far it got."),
        (name = "Operational Webhook Endpoint", description = "Endpoints that hookbox itself \
            sends operational events to (endpoint created, disabled, …)."),
        (name = "Alerts", description = "hookbox: who is told, by email or in a chat, when an \
            application's webhooks fail, and what was sent to them."),
    )
)]
pub struct ApiDoc;

/// The `HTTPBearer` scheme (Svix's name): `Authorization: Bearer <token>`.
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        let mut http = Http::new(HttpAuthScheme::Bearer);
        http.description =
            Some("An API token in the `Authorization` header: `Bearer <token>`".to_owned());
        components.add_security_scheme("HTTPBearer", SecurityScheme::Http(http));
    }
}

/// The document as pretty-printed JSON with a trailing newline (as committed in `openapi.json`).
pub fn document_json() -> String {
    let mut text = ApiDoc::openapi()
        .to_pretty_json()
        .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    text.push('\n');
    text
}

/// This OpenAPI document (no token needed).
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    operation_id = "v1.openapi.get",
    tag = "Health",
    security(()),
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json", body = Object))
)]
pub async fn serve_document() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(document_json())
}

/// Errors of a request without a body.
#[derive(IntoResponses)]
pub enum ReadErrors<'a> {
    #[response(status = 401, description = "Missing or unknown API token")]
    Unauthorized(HttpErrorOut<'a>),
    #[response(status = 404, description = "Not found")]
    NotFound(HttpErrorOut<'a>),
    #[response(status = 422, description = "Invalid path or query parameter")]
    Invalid(HTTPValidationError<'a>),
    #[response(
        status = 503,
        description = "Unavailable for now, with `Retry-After`: the database cannot be reached (`database_unavailable`), did not answer within `answer_timeout` (`not_answered`), or its disk is full (`storage_full`)"
    )]
    Unavailable(HttpErrorOut<'a>),
}

/// Errors of a request with a JSON body.
#[derive(IntoResponses)]
pub enum WriteErrors<'a> {
    #[response(status = 400, description = "The body is not JSON")]
    BadRequest(HttpErrorOut<'a>),
    #[response(status = 401, description = "Missing or unknown API token")]
    Unauthorized(HttpErrorOut<'a>),
    #[response(status = 404, description = "Not found")]
    NotFound(HttpErrorOut<'a>),
    #[response(status = 413, description = "The body is too large")]
    TooLarge(HttpErrorOut<'a>),
    #[response(status = 422, description = "Invalid body, path or query parameter")]
    Invalid(HTTPValidationError<'a>),
    #[response(
        status = 503,
        description = "Unavailable for now, with `Retry-After`: the database cannot be reached (`database_unavailable`), did not answer within `answer_timeout` (`not_answered`), or its disk is full (`storage_full`)"
    )]
    Unavailable(HttpErrorOut<'a>),
}

// ---- Parameters shared by several routes -----------------------------------------------------
// The path types both describe their parameter in the document and parse it (`parse`, or as
// an extractor), so the two cannot drift apart.

#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct AppPath {
    /// The application's id or uid.
    #[param(
        min_length = 1,
        max_length = 256,
        pattern = r"^[a-zA-Z0-9\-_.]+$",
        example = "app_1srOrx2ZWZBpBUvZwXKQmoEYga2"
    )]
    pub app_id: String,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct RecipientPath {
    /// The alert recipient's id.
    #[param(
        min_length = 1,
        max_length = 256,
        pattern = r"^[a-zA-Z0-9\-_.]+$",
        example = "arcpt_01M8FR88EZRGJH995TQJTRVTDD"
    )]
    pub recipient_id: String,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct EndpointPath {
    /// The endpoint's id or uid.
    #[param(
        min_length = 1,
        max_length = 256,
        pattern = r"^[a-zA-Z0-9\-_.]+$",
        example = "ep_1srOrx2ZWZBpBUvZwXKQmoEYga2"
    )]
    pub endpoint_id: String,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct MsgPath {
    /// The message's id or `eventId`.
    #[param(
        min_length = 1,
        max_length = 256,
        pattern = r"^[a-zA-Z0-9\-_.]+$",
        example = "msg_1srOrx2ZWZBpBUvZwXKQmoEYga2"
    )]
    pub msg_id: String,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct AttemptPath {
    /// The attempt's id.
    #[param(
        min_length = 1,
        max_length = 256,
        pattern = r"^[a-zA-Z0-9\-_.]+$",
        example = "atmpt_1srOrx2ZWZBpBUvZwXKQmoEYga2"
    )]
    pub attempt_id: String,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct EventTypePath {
    /// The event type's name.
    #[param(
        max_length = 256,
        pattern = r"^[a-zA-Z0-9\-_.:]+$",
        example = "user.signup"
    )]
    pub event_type_name: String,
}

/// The order of a listing.
#[derive(ToSchema, Clone, Copy)]
#[serde(rename_all = "lowercase")]
pub enum Ordering {
    Ascending,
    Descending,
}

/// The key an iterator names, and whether it pages backwards (a leading `-`, unless that is
/// all there is).
fn iterator_key(it: &str) -> (&str, bool) {
    match it.strip_prefix('-').filter(|k| !k.is_empty()) {
        Some(key) => (key, true),
        None => (it, false),
    }
}

/// Paging through a listing: pass the `iterator` (or `prevIterator`) of the last answer.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// How many items to return (default 50).
    #[param(minimum = 1, maximum = 250)]
    pub limit: Option<u32>,
    /// The `iterator` or `prevIterator` of a previous answer.
    #[param(pattern = r"^(-?[a-zA-Z0-9\-_.:]{1,256})?$")]
    pub iterator: Option<String>,
    /// The listing's natural order when absent.
    #[param(inline)]
    pub order: Option<Ordering>,
}

impl ListParams {
    pub fn parse(q: &Query) -> Result<ListParams, ApiError> {
        let limit = match q.int("limit")? {
            None => None,
            Some(n) if (1..=250).contains(&n) => u32::try_from(n).ok(),
            Some(_) => {
                return Err(ApiError::invalid(
                    &["query", "limit"],
                    "limit must be between 1 and 250",
                ))
            }
        };
        let order = match q.str("order") {
            None => None,
            Some("ascending") => Some(Ordering::Ascending),
            Some("descending") => Some(Ordering::Descending),
            Some(v) => {
                return Err(ApiError::invalid(
                    &["query", "order"],
                    format!("`{v}` is not `ascending` or `descending`"),
                ))
            }
        };
        let iterator = q.str("iterator").filter(|s| !s.is_empty());
        if let Some((key, _)) = iterator.map(iterator_key) {
            if key.chars().count() > 256 {
                return Err(ApiError::invalid(
                    &["query", "iterator"],
                    "iterator is too long",
                ));
            }
            // Every listing's iterator is an id or a name: nothing else is one it gave.
            if !crate::domain::validate::is_valid_event_type(key) {
                return Err(ApiError::invalid(
                    &["query", "iterator"],
                    "not an iterator of this listing (pass the iterator or prevIterator of a \
                     previous answer)",
                ));
            }
        }
        Ok(ListParams {
            limit,
            iterator: iterator.map(str::to_owned),
            order,
        })
    }

    /// The page asked for; `default_desc` is the listing's natural order.
    pub fn page(self, default_desc: bool) -> PageQuery {
        let (after, before) = match self.iterator {
            None => (None, None),
            Some(it) => match iterator_key(&it) {
                (key, true) => (None, Some(key.to_owned())),
                (_, false) => (Some(it), None),
            },
        };
        PageQuery {
            limit: self
                .limit
                .and_then(|n| usize::try_from(n).ok())
                .unwrap_or(50),
            after,
            before,
            descending: match self.order {
                None => default_desc,
                Some(o) => matches!(o, Ordering::Descending),
            },
        }
    }
}

/// Filters of message listings.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MessageFilterParams {
    /// Only messages sent to this channel.
    channel: Option<String>,
    /// Only messages with this tag.
    tag: Option<String>,
    /// Only these event types (repeated, or comma-joined).
    event_types: Option<Vec<String>>,
    /// Only items created before this time: messages, or attempts on attempt listings.
    #[param(value_type = Option<String>, format = DateTime, pattern = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}")]
    before: Option<i64>,
    /// Only items created after this time: messages, or attempts on attempt listings.
    #[param(value_type = Option<String>, format = DateTime, pattern = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}")]
    after: Option<i64>,
}

impl MessageFilterParams {
    /// The filters of this query, as the store applies them.
    pub fn parse(q: &Query) -> Result<MessageFilter, ApiError> {
        let p = MessageFilterParams {
            channel: q.str("channel").map(str::to_owned),
            tag: q.str("tag").map(str::to_owned),
            event_types: q.list("event_types"),
            before: q.datetime("before")?,
            after: q.datetime("after")?,
        };
        Ok(MessageFilter {
            channel: p.channel,
            tag: p.tag,
            event_types: p.event_types,
            before: p.before,
            after: p.after,
        })
    }
}

#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WithContent {
    /// `false` leaves message payloads out (`{}`); default `true`.
    #[param(required = false, value_type = Option<bool>)]
    pub with_content: bool,
}

impl WithContent {
    pub fn parse(q: &Query) -> Result<WithContent, ApiError> {
        Ok(WithContent {
            with_content: q.bool("with_content", true)?,
        })
    }
}

/// A path parameter that is an id or uid: 1 to 256 of `[a-zA-Z0-9-_.]`, else a 422 naming it.
fn uid_param(req: &HttpRequest, route_name: &str, name: &'static str) -> Result<String, ApiError> {
    let v = req.match_info().get(route_name).unwrap_or_default();
    if is_valid_uid(v) {
        Ok(v.to_owned())
    } else {
        Err(ApiError::invalid(
            &["path", name],
            "must match [a-zA-Z0-9-_.]{1,256}",
        ))
    }
}

macro_rules! path_param {
    ($t:ident { $field:ident } from $route:literal, $check:expr) => {
        impl $t {
            /// The parameter of this request's path, checked.
            pub fn parse(req: &HttpRequest) -> Result<$t, ApiError> {
                Ok($t {
                    $field: $check(req, $route, stringify!($field))?,
                })
            }
        }

        impl actix_web::FromRequest for $t {
            type Error = ApiError;
            type Future = std::future::Ready<Result<$t, ApiError>>;

            fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
                std::future::ready($t::parse(req))
            }
        }
    };
}

path_param!(AppPath { app_id } from "app_id", uid_param);
path_param!(EndpointPath { endpoint_id } from "endpoint_id", uid_param);
path_param!(MsgPath { msg_id } from "msg_id", uid_param);
path_param!(AttemptPath { attempt_id } from "attempt_id", uid_param);
path_param!(RecipientPath { recipient_id } from "recipient_id", uid_param);
path_param!(
    EventTypePath { event_type_name } from "name",
    |req: &HttpRequest, route: &str, name: &'static str| {
        let v = req.match_info().get(route).unwrap_or_default();
        if is_valid_event_type(v) {
            Ok(v.to_owned())
        } else {
            Err(ApiError::invalid(
                &["path", name],
                "must match [a-zA-Z0-9-_.:]{1,256}",
            ))
        }
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_params_parse_limits_orders_and_iterators() {
        let p = ListParams::parse(&Query::parse("iterator=-msg_1&limit=10"))
            .unwrap()
            .page(true);
        assert_eq!(p.before.as_deref(), Some("msg_1"));
        assert_eq!(p.limit, 10);
        assert!(p.descending);
        let p = ListParams::parse(&Query::parse("order=ascending&iterator=msg_2"))
            .unwrap()
            .page(true);
        assert_eq!(
            (p.after.as_deref(), p.descending, p.limit),
            (Some("msg_2"), false, 50)
        );
        // An iterator is an id or a name, or one that follows a `-`.
        for bad in [
            "limit=0",
            "limit=251",
            "order=sideways",
            "iterator=%27%20OR%201%3D1%20--",
            "iterator=msg%2F1",
        ] {
            assert!(ListParams::parse(&Query::parse(bad)).is_err(), "{bad}");
        }
        for good in [
            "iterator=--x",
            "iterator=invoice.paid",
            "iterator=-ep_01J:x",
            "iterator=-",
        ] {
            assert!(ListParams::parse(&Query::parse(good)).is_ok(), "{good}");
        }
        let long = format!("iterator=-{}", "x".repeat(257));
        assert!(ListParams::parse(&Query::parse(&long)).is_err());
        let fits = format!("iterator=-{}", "x".repeat(256));
        assert!(ListParams::parse(&Query::parse(&fits)).is_ok());
    }
}
