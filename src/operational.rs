//! Operational webhooks: what they are (`domain::operational`) and how they are stored
//! (`db::operational`), under one name.

pub use crate::db::operational::*;
pub use crate::domain::operational::*;
