use actix_web::HttpResponse;

/// `GET /api/v1/health`: 204 when the server is up. No authentication.
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

/// `GET /api/v1/health/ping`: the same as `/health`.
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
