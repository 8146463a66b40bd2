//! Operational webhooks: what they are (`domain::operational`) and how they are stored
//! (in the store, beside the change each tells of), under one name.

pub use crate::db::operational_event_types as event_types;
pub use crate::domain::operational::*;
