//! `/api/v1`: Svix-compatible routes and hookbox's own, one file per resource.

mod alerts;
mod analytics;
mod apps;
mod attempts;
mod endpoints;
mod event_types;
pub(crate) mod health;
mod line;
mod messages;
mod models;
pub mod openapi;
pub use messages::ingest_without_router;
mod operational;
mod portal;
mod tasks;

use super::auth::Caller;
use super::error::ApiError;
use super::extract::{parse_json, read_body, Query};
use super::Data;
use crate::db::{App, Endpoint, IdempotencyKey};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::de::DeserializeOwned;
use std::future::Future;

/// Registers every `/api/v1` route. Paths are matched with the trailing slash trimmed.
pub fn routes(cfg: &mut web::ServiceConfig) {
    use web::{delete, get, head, patch, post, put, resource};
    let ep = "/app/{app_id}/endpoint/{endpoint_id}";
    // Routes are tried in order: the hot path (message ingest) comes first. A POST with a
    // valid app id does not reach the router at all: see `messages::ingest_without_router`.
    cfg.service(
        web::scope("/api/v1")
            .service(
                resource("/app/{app_id}/msg")
                    .route(post().to(messages::create))
                    .route(get().to(messages::list)),
            )
            .service(
                resource("/health")
                    .route(get().to(health::health))
                    .route(head().to(health::health)),
            )
            .service(resource("/auth/app-portal-access/{app_id}").route(post().to(portal::access)))
            .service(resource("/app/{app_id}/analytics").route(get().to(analytics::analytics)))
            .service(
                resource("/app/{app_id}/alert-recipient")
                    .route(get().to(alerts::list))
                    .route(post().to(alerts::create)),
            )
            .service(
                resource("/app/{app_id}/alert-recipient/{recipient_id}")
                    .route(delete().to(alerts::delete)),
            )
            .service(resource("/app/{app_id}/alert").route(get().to(alerts::sent)))
            .service(
                resource("/health/ping")
                    .route(get().to(health::ping))
                    .route(head().to(health::ping)),
            )
            .service(resource("/openapi.json").route(get().to(openapi::serve_document)))
            .service(
                resource("/app")
                    .route(get().to(apps::list))
                    .route(post().to(apps::create)),
            )
            .service(
                resource("/app/{app_id}")
                    .route(get().to(apps::get))
                    .route(put().to(apps::put))
                    .route(patch().to(apps::patch))
                    .route(delete().to(apps::delete)),
            )
            .service(
                resource("/event-type")
                    .route(get().to(event_types::list))
                    .route(post().to(event_types::create)),
            )
            .service(
                resource("/event-type/{name}")
                    .route(get().to(event_types::get))
                    .route(put().to(event_types::put))
                    .route(patch().to(event_types::patch))
                    .route(delete().to(event_types::delete)),
            )
            .service(
                resource("/app/{app_id}/endpoint")
                    .route(get().to(endpoints::list))
                    .route(post().to(endpoints::create)),
            )
            .service(
                resource(ep)
                    .route(get().to(endpoints::get))
                    .route(put().to(endpoints::put))
                    .route(patch().to(endpoints::patch))
                    .route(delete().to(endpoints::delete)),
            )
            .service(resource(format!("{ep}/secret")).route(get().to(endpoints::secret)))
            .service(
                resource(format!("{ep}/secret/rotate")).route(post().to(endpoints::rotate_secret)),
            )
            .service(
                resource(format!("{ep}/headers"))
                    .route(get().to(endpoints::headers))
                    .route(put().to(endpoints::put_headers))
                    .route(patch().to(endpoints::patch_headers)),
            )
            .service(resource(format!("{ep}/stats")).route(get().to(endpoints::stats)))
            .service(resource(format!("{ep}/health")).route(get().to(endpoints::health)))
            .service(resource(format!("{ep}/test")).route(post().to(endpoints::test)))
            .service(
                resource(format!("{ep}/send-example")).route(post().to(endpoints::send_example)),
            )
            .service(resource(format!("{ep}/recover")).route(post().to(endpoints::recover)))
            .service(
                resource(format!("{ep}/replay-missing"))
                    .route(post().to(endpoints::replay_missing)),
            )
            .service(resource(format!("{ep}/bulk-replay")).route(post().to(tasks::bulk_replay)))
            .service(resource(format!("{ep}/line")).route(get().to(line::get)))
            .service(resource(format!("{ep}/line/skip")).route(post().to(line::skip)))
            .service(resource(format!("{ep}/line/retry")).route(post().to(line::retry)))
            .service(resource("/background-task").route(get().to(tasks::list)))
            .service(resource("/background-task/{task_id}").route(get().to(tasks::get)))
            .service(resource(format!("{ep}/msg")).route(get().to(endpoints::messages)))
            .service(resource("/app/{app_id}/msg/{msg_id}").route(get().to(messages::get)))
            .service(
                resource("/app/{app_id}/msg/{msg_id}/endpoint")
                    .route(get().to(messages::endpoints)),
            )
            .service(
                resource("/app/{app_id}/msg/{msg_id}/attempt/{attempt_id}")
                    .route(get().to(attempts::get)),
            )
            .service(
                resource("/app/{app_id}/msg/{msg_id}/content")
                    .route(delete().to(messages::expunge_content)),
            )
            .service(
                resource("/app/{app_id}/msg/{msg_id}/attempt/{attempt_id}/content")
                    .route(delete().to(attempts::expunge_content)),
            )
            .service(
                resource("/app/{app_id}/msg/{msg_id}/endpoint/{endpoint_id}/resend")
                    .route(post().to(attempts::resend)),
            )
            .service(
                resource("/app/{app_id}/attempt/endpoint/{endpoint_id}")
                    .route(get().to(attempts::by_endpoint)),
            )
            .service(
                resource("/app/{app_id}/attempt/msg/{msg_id}")
                    .route(get().to(attempts::by_message)),
            )
            .default_service(web::to(not_found)),
    );
}

async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound("route"))
}

/// Reads and parses a JSON body within the configured size limit.
pub(super) async fn body<T: DeserializeOwned>(
    st: &Data,
    payload: web::Payload,
) -> Result<T, ApiError> {
    // The payload limit is for the message payload; the envelope around it gets some room.
    let limit = st.cfg.api.max_payload_bytes + 64 * 1024;
    let bytes = read_body(payload, limit).await?;
    parse_json(&bytes)
}

pub(super) fn query(req: &HttpRequest) -> Query {
    Query::parse(req.query_string())
}

/// The application key (id or uid) in the path. hookbox's own application answers as if it
/// did not exist, except on the operational webhook routes (its endpoints).
pub(super) fn app_key(st: &Data, req: &HttpRequest) -> Result<String, ApiError> {
    let key = openapi::AppPath::parse(req)?.app_id;
    let reserved = key == crate::operational::APP_UID || key == st.operational_app_id;
    if reserved
        && !actix_web::HttpMessage::extensions(req).contains::<crate::http::OperationalRoute>()
    {
        return Err(ApiError::NotFound("application"));
    }
    Ok(key.to_owned())
}

pub(super) async fn find_app(st: &Data, req: &HttpRequest) -> Result<App, ApiError> {
    let key = app_key(st, req)?;
    st.store
        .app(&key)
        .await?
        .ok_or(ApiError::NotFound("application"))
}

pub(super) async fn find_endpoint(
    st: &Data,
    req: &HttpRequest,
) -> Result<(App, Endpoint), ApiError> {
    let app = find_app(st, req).await?;
    let key = openapi::EndpointPath::parse(req)?.endpoint_id;
    let ep = st
        .store
        .endpoint(&app.id, &key)
        .await?
        .ok_or(ApiError::NotFound("endpoint"))?;
    Ok((app, ep))
}

pub(super) fn json(status: StatusCode, v: &impl serde::Serialize) -> HttpResponse {
    HttpResponse::build(status).json(v)
}

/// The `Idempotency-Key` of a request, scoped to its token and path.
pub(super) fn idempotency_key(
    req: &HttpRequest,
    caller: &Caller,
) -> Result<Option<IdempotencyKey>, ApiError> {
    let Some(v) = req.headers().get("idempotency-key") else {
        return Ok(None);
    };
    let key = v
        .to_str()
        .map_err(|_| ApiError::invalid(&["header", "idempotency-key"], "must be ASCII"))?;
    if key.is_empty() || key.len() > 256 {
        return Err(ApiError::invalid(
            &["header", "idempotency-key"],
            "must be 1 to 256 characters",
        ));
    }
    Ok(Some(IdempotencyKey {
        token_id: caller.token_id.clone(),
        // As routed, so that `%`-spellings of one path share its keys.
        path: req.match_info().as_str().trim_end_matches('/').to_owned(),
        key: key.to_owned(),
    }))
}

/// Runs a POST once per `Idempotency-Key`: a repeat gets the first 2xx response again.
pub(super) async fn idempotent<F, Fut>(
    st: &Data,
    req: &HttpRequest,
    caller: &Caller,
    f: F,
) -> Result<HttpResponse, ApiError>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<(StatusCode, serde_json::Value), ApiError>>,
{
    run_idempotent(st, req, caller, false, f).await
}

/// [`idempotent`] for a response that carries a signing secret: the copy kept for replays
/// is sealed under the main key (bound to the request path), like the secrets themselves.
pub(super) async fn idempotent_secret<F, Fut>(
    st: &Data,
    req: &HttpRequest,
    caller: &Caller,
    f: F,
) -> Result<HttpResponse, ApiError>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<(StatusCode, serde_json::Value), ApiError>>,
{
    run_idempotent(st, req, caller, true, f).await
}

async fn run_idempotent<F, Fut>(
    st: &Data,
    req: &HttpRequest,
    caller: &Caller,
    sealed: bool,
    f: F,
) -> Result<HttpResponse, ApiError>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<(StatusCode, serde_json::Value), ApiError>>,
{
    let key = idempotency_key(req, caller)?;
    // Requests with one key take turns (on this node): a retry that overlaps the request it
    // repeats waits for its answer rather than doing the work again.
    let _turn = match &key {
        Some(k) => Some(
            crate::service::turn(format!("idempotency {} {} {}", k.token_id, k.path, k.key)).await,
        ),
        None => None,
    };
    if let Some(k) = key.clone() {
        let path = k.path.clone();
        if let Some((status, body)) = st.store.idempotent_response(&k).await? {
            let body = if sealed {
                st.store.main_key().open(&path, &body).map_err(|e| {
                    ApiError::Internal(format!("stored idempotent response for {path}: {e}"))
                })?
            } else {
                body
            };
            return Ok(stored_response(status, body));
        }
    }
    let (status, value) = f().await?;
    let body = value.to_string();
    if let Some(k) = key {
        let stored = if sealed {
            st.store.main_key().seal(&k.path, &body)
        } else {
            body.clone()
        };
        let code = status.as_u16();
        // The work is done and stored: if only remembering the answer fails (a full disk,
        // say), the caller still gets it; a retry with the key would then repeat the work.
        if let Err(e) = crate::service::messages::keep_response(&st.store, k, code, stored).await {
            tracing::warn!(error = %e, "could not keep the response for its Idempotency-Key");
        }
    }
    Ok(stored_response(status.as_u16(), body))
}

pub(super) fn stored_response(status: u16, body: String) -> HttpResponse {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    if status == StatusCode::NO_CONTENT {
        return HttpResponse::NoContent().finish();
    }
    HttpResponse::build(status)
        .content_type("application/json")
        .body(body)
}
