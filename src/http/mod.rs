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
