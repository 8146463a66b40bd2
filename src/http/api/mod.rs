//! `/api/v1`: Svix-compatible routes and hookbox's own, one file per resource.

mod apps;
mod attempts;
mod endpoints;
mod event_types;
mod health;
mod messages;
mod models;

use super::auth::Caller;
use super::error::ApiError;
use super::extract::{parse_json, read_body, Query};
use super::Data;
use crate::db::{apps as app_db, endpoints as ep_db, idempotency};
use crate::domain::validate::is_valid_uid;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::de::DeserializeOwned;
use std::future::Future;

/// Registers every `/api/v1` route. Paths are matched with the trailing slash trimmed.
pub fn routes(cfg: &mut web::ServiceConfig) {
    use web::{delete, get, patch, post, put};
    let ep = "/app/{app_id}/endpoint/{endpoint_id}";
    cfg.service(
        web::scope("/api/v1")
            .route("/health", get().to(health::health))
            .route("/health/ping", get().to(health::health))
            .route("/app", get().to(apps::list))
            .route("/app", post().to(apps::create))
            .route("/app/{app_id}", get().to(apps::get))
            .route("/app/{app_id}", put().to(apps::put))
            .route("/app/{app_id}", patch().to(apps::patch))
            .route("/app/{app_id}", delete().to(apps::delete))
            .route("/event-type", get().to(event_types::list))
            .route("/event-type", post().to(event_types::create))
            .route("/event-type/{name}", get().to(event_types::get))
            .route("/event-type/{name}", put().to(event_types::put))
            .route("/event-type/{name}", patch().to(event_types::patch))
            .route("/event-type/{name}", delete().to(event_types::delete))
            .route("/app/{app_id}/endpoint", get().to(endpoints::list))
            .route("/app/{app_id}/endpoint", post().to(endpoints::create))
            .route(ep, get().to(endpoints::get))
            .route(ep, put().to(endpoints::put))
            .route(ep, patch().to(endpoints::patch))
            .route(ep, delete().to(endpoints::delete))
            .route(&format!("{ep}/secret"), get().to(endpoints::secret))
            .route(
                &format!("{ep}/secret/rotate"),
                post().to(endpoints::rotate_secret),
            )
            .route(&format!("{ep}/headers"), get().to(endpoints::headers))
            .route(&format!("{ep}/headers"), put().to(endpoints::put_headers))
            .route(
                &format!("{ep}/headers"),
                patch().to(endpoints::patch_headers),
            )
            .route(&format!("{ep}/stats"), get().to(endpoints::stats))
            .route(
                &format!("{ep}/send-example"),
                post().to(endpoints::send_example),
            )
            .route(&format!("{ep}/recover"), post().to(endpoints::recover))
            .route(
                &format!("{ep}/replay-missing"),
                post().to(endpoints::replay_missing),
            )
            .route(&format!("{ep}/msg"), get().to(endpoints::messages))
            .route("/app/{app_id}/msg", get().to(messages::list))
            .route("/app/{app_id}/msg", post().to(messages::create))
            .route("/app/{app_id}/msg/{msg_id}", get().to(messages::get))
            .route(
                "/app/{app_id}/msg/{msg_id}/endpoint",
                get().to(messages::endpoints),
            )
            .route(
                "/app/{app_id}/msg/{msg_id}/attempt/{attempt_id}",
                get().to(attempts::get),
            )
            .route(
                "/app/{app_id}/msg/{msg_id}/endpoint/{endpoint_id}/resend",
                post().to(attempts::resend),
            )
            .route(
                "/app/{app_id}/attempt/endpoint/{endpoint_id}",
                get().to(attempts::by_endpoint),
            )
            .route(
                "/app/{app_id}/attempt/msg/{msg_id}",
                get().to(attempts::by_message),
            )
            .default_service(web::to(not_found)),
    );
}

async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound("route"))
}

/// Authenticates the request's bearer token.
pub(super) async fn caller(st: &Data, req: &HttpRequest) -> Result<Caller, ApiError> {
    let header = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok());
    st.tokens.authenticate(&st.db, header).await
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

/// A path segment that must be an id or uid.
pub(super) fn path_key<'a>(req: &'a HttpRequest, name: &'static str) -> Result<&'a str, ApiError> {
    let v = req.match_info().get(name).unwrap_or_default();
    if is_valid_uid(v) {
        Ok(v)
    } else {
        Err(ApiError::invalid(
            &["path", name],
            "must match [a-zA-Z0-9-_.]{1,256}",
        ))
    }
}

pub(super) async fn find_app(st: &Data, req: &HttpRequest) -> Result<app_db::App, ApiError> {
    let key = path_key(req, "app_id")?.to_owned();
    st.db
        .read(move |c| app_db::get(c, &key))
        .await?
        .ok_or(ApiError::NotFound("application"))
}

pub(super) async fn find_endpoint(
    st: &Data,
    req: &HttpRequest,
) -> Result<(app_db::App, ep_db::Endpoint), ApiError> {
    let app = find_app(st, req).await?;
    let key = path_key(req, "endpoint_id")?.to_owned();
    let app_id = app.id.clone();
    let ep = st
        .db
        .read(move |c| ep_db::get(c, &app_id, &key))
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
) -> Result<Option<idempotency::Key>, ApiError> {
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
    Ok(Some(idempotency::Key {
        token_id: caller.token_id.clone(),
        path: req.path().trim_end_matches('/').to_owned(),
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
    let key = idempotency_key(req, caller)?;
    if let Some(k) = key.clone() {
        if let Some((status, body)) = st.db.read(move |c| idempotency::get(c, &k)).await? {
            return Ok(stored_response(status, body));
        }
    }
    let (status, value) = f().await?;
    let body = value.to_string();
    if let Some(k) = key {
        let stored = body.clone();
        let code = status.as_u16();
        st.db
            .write(move |c| idempotency::put(c, &k, code, &stored, crate::domain::time::now_ms()))
            .await?;
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
