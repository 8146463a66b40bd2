//! The OpenAPI document of `/api/v1`, generated from the handlers' `#[utoipa::path]`
//! attributes and the models' `ToSchema` derives, served at `/api/v1/openapi.json`.
//!
//! A new route: put `#[utoipa::path(...)]` on its handler and add the handler to `paths(...)`
//! below. Its schemas are collected from the attribute.

use super::{
    analytics, apps, attempts, endpoints, event_types, health, messages, operational, portal,
};
use crate::http::error::{HTTPValidationError, HttpErrorOut};
use actix_web::HttpResponse;
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
        endpoints::messages,
        messages::create,
        messages::list,
        messages::get,
        messages::endpoints,
        attempts::get,
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
        (name = "Operational Webhook Endpoint", description = "Endpoints that hookbox itself \
            sends operational events to (endpoint created, disabled, …)."),
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
}

// ---- Parameters shared by several routes -----------------------------------------------------
// Handlers read their parameters themselves; these types only describe them (hence the
// `dead_code` allowances).

#[allow(dead_code)]
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
    app_id: String,
}

#[allow(dead_code)]
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
    endpoint_id: String,
}

#[allow(dead_code)]
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
    msg_id: String,
}

#[allow(dead_code)]
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
    attempt_id: String,
}

#[allow(dead_code)]
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct EventTypePath {
    /// The event type's name.
    #[param(
        max_length = 256,
        pattern = r"^[a-zA-Z0-9\-_.:]+$",
        example = "user.signup"
    )]
    event_type_name: String,
}

/// The order of a listing.
#[allow(dead_code)]
#[derive(ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Ordering {
    Ascending,
    Descending,
}

/// Paging through a listing: pass the `iterator` (or `prevIterator`) of the last answer.
#[allow(dead_code)]
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// How many items to return (default 50).
    #[param(minimum = 1, maximum = 250)]
    limit: Option<u32>,
    /// The `iterator` or `prevIterator` of a previous answer.
    #[param(pattern = r"^-?[\s\S]{0,256}$")]
    iterator: Option<String>,
    /// The listing's natural order when absent.
    #[param(inline)]
    order: Option<Ordering>,
}

/// Filters of message listings.
#[allow(dead_code)]
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MessageFilterParams {
    /// Only messages sent to this channel.
    channel: Option<String>,
    /// Only messages with this tag.
    tag: Option<String>,
    /// Only these event types (repeated, or comma-joined).
    event_types: Option<Vec<String>>,
    /// Only messages created before this time.
    #[param(format = DateTime, pattern = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}")]
    before: Option<String>,
    /// Only messages created after this time.
    #[param(format = DateTime, pattern = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}")]
    after: Option<String>,
}

#[allow(dead_code)]
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WithContent {
    /// `false` leaves message payloads out (`{}`); default `true`.
    with_content: Option<bool>,
}
