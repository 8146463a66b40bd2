use actix_web::{HttpResponse, ResponseError};

/// Health check: 204 when the server is up (no token needed); 503 while it cannot store
/// anything because its disk (or database size limit) is full, or cannot reach its database.
#[utoipa::path(
    get,
    path = "/api/v1/health",
    operation_id = "v1.health.get",
    tag = "Health",
    security(()),
    responses(
        (status = 204, description = "The server is up"),
        (status = 503, description = "The server is up but cannot store anything: its disk (or database size limit) is full (`storage_full`), or its database does not answer within 2 seconds (`database_unavailable`)", body = crate::http::error::HttpErrorOut)
    )
)]
pub async fn health(st: crate::http::Data) -> HttpResponse {
    if st
        .store
        .writer_stats()
        .full
        .load(std::sync::atomic::Ordering::Relaxed)
    {
        return crate::http::error::ApiError::Unavailable(
            crate::http::error::FULL_DETAIL.to_owned(),
        )
        .error_response();
    }
    if let Err(e) = st.store.reachable(HEALTH_PATIENCE).await {
        return crate::http::error::ApiError::from(e).error_response();
    }
    HttpResponse::NoContent().finish()
}

/// How long the health check waits for the database to answer.
pub(crate) const HEALTH_PATIENCE: std::time::Duration = std::time::Duration::from_secs(2);

/// Liveness check: 204 while the server runs.
#[utoipa::path(
    get,
    path = "/api/v1/health/ping",
    operation_id = "v1.health.ping",
    tag = "Health",
    security(()),
    responses((status = 204, description = "The server is up (a liveness check: 204 even when storage is full)"))
)]
pub async fn ping() -> HttpResponse {
    HttpResponse::NoContent().finish()
}
