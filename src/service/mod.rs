//! Use cases, one function each, shared by the API and the console: each applies its own
//! effects (waking the dispatcher, dropping cached endpoint details, operational events), so
//! no handler has to remember them.

pub mod alerts;
pub mod apps;
pub mod endpoint_input;
pub mod endpoints;
pub mod event_types;
pub mod input;
pub mod logins;
pub mod messages;
pub mod portal;
pub mod sessions;
pub mod tasks;
pub mod tokens;
