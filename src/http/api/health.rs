use actix_web::HttpResponse;

/// Health check: 204 when the server is up (no token needed).
#[utoipa::path(
    get,
    path = "/api/v1/health",
    operation_id = "v1.health.get",
    tag = "Health",
    security(()),
    responses((status = 204, description = "The server is up"))
)]
pub async fn health() -> HttpResponse {
    HttpResponse::NoContent().finish()
}

/// Health check, as `/api/v1/health`.
#[utoipa::path(
    get,
    path = "/api/v1/health/ping",
    operation_id = "v1.health.ping",
    tag = "Health",
    security(()),
    responses((status = 204, description = "The server is up"))
)]
pub async fn ping() -> HttpResponse {
    health().await
}
