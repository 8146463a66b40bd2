use actix_web::HttpResponse;

/// `GET /api/v1/health`: 204 when the server is up. No authentication.
pub async fn health() -> HttpResponse {
    HttpResponse::NoContent().finish()
}
