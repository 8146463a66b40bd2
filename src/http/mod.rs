//! HTTP: the `/api/v1` API (and, later, the console).

pub mod api;
pub mod auth;
pub mod error;
pub mod extract;

use crate::config::Config;
use crate::db::Db;
use crate::delivery::Dispatcher;
use std::sync::Arc;

/// Everything a handler needs, shared by all workers.
pub struct State {
    pub db: Db,
    pub cfg: Arc<Config>,
    pub dispatcher: Dispatcher,
    pub tokens: auth::TokenCache,
}

pub type Data = actix_web::web::Data<State>;

/// Answers `/path/` as `/path` (the SDKs send no trailing slash, Svix's docs show one): the
/// request is rewritten in place, never redirected.
pub fn trim_trailing_slash(
    mut req: actix_web::dev::ServiceRequest,
) -> actix_web::dev::ServiceRequest {
    let path = req.path();
    if path.len() > 1 && path.ends_with('/') {
        let trimmed = path.trim_end_matches('/');
        let trimmed = if trimmed.is_empty() { "/" } else { trimmed };
        let new = match req.query_string() {
            "" => trimmed.to_owned(),
            q => format!("{trimmed}?{q}"),
        };
        if let Ok(uri) = new.parse::<actix_web::http::Uri>() {
            req.match_info_mut().get_mut().update(&uri);
            req.head_mut().uri = uri;
        }
    }
    req
}
