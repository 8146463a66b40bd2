//! Endpoints: what changes their state.

use crate::db::{deliveries::Notice, endpoints, Db, DbResult};
use crate::delivery::Dispatcher;
use crate::domain::time::now_ms;

/// Disables an endpoint for `reason`, with the effects every way of disabling shares (its
/// owner in the API, console or portal, a 410, a long run of failures): the reason and time
/// recorded, its pending deliveries skipped (Enable can replay them), `endpoint.disabled`
/// announced, its cached sending details dropped. `false` when it was disabled already.
pub async fn disable(
    db: &Db,
    dispatcher: &Dispatcher,
    endpoint_id: &str,
    reason: String,
) -> DbResult<bool> {
    let id = endpoint_id.to_owned();
    let (changed, announced) = db
        .write(move |c| {
            let now = now_ms();
            if !endpoints::disable(c, &id, &reason, now)? {
                return Ok((false, false));
            }
            let notice = Notice::Disabled {
                endpoint_id: id,
                reason,
                at: now,
            };
            Ok((true, crate::operational::announce(c, &[notice], now)?))
        })
        .await?;
    settle(dispatcher, endpoint_id, changed, announced);
    Ok(changed)
}

/// What follows a change of an endpoint's state: its cached details go, and the scheduler
/// wakes for what was stored to announce.
pub fn settle(dispatcher: &Dispatcher, endpoint_id: &str, changed: bool, announced: bool) {
    if changed {
        dispatcher.endpoint_changed(endpoint_id);
    }
    if announced {
        dispatcher.wake();
    }
}
