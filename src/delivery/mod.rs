//! Delivery: the dispatcher that claims due work and the HTTP client that sends it.

pub mod client;
pub mod dispatcher;
mod expunges;
pub mod pacing;
pub mod ssrf;
pub mod targets;

pub use dispatcher::Dispatcher;
