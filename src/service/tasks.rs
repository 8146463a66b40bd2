//! Background tasks: a bulk replay of an endpoint's messages, checked and started.

use super::input::FieldError;
use crate::db::{DbResult, Endpoint, Store};
use crate::domain::ids;
use crate::domain::tasks::{ReplaySpec, Task, TaskKind, TaskStatus};
use crate::domain::validate::{is_valid_channel, is_valid_event_type};

/// The most event types one replay may name.
pub const MAX_EVENT_TYPES: usize = 100;

/// The rules a replay must keep: a window that ends after it starts, at most
/// [`MAX_EVENT_TYPES`] valid event types, a valid channel, a status code class of 0 (no
/// answer) or 100 to 500.
pub fn check_replay(spec: &ReplaySpec) -> Result<(), FieldError> {
    super::input::check_window(spec.since, spec.until)?;
    if spec
        .event_types
        .as_ref()
        .is_some_and(|t| t.len() > MAX_EVENT_TYPES)
    {
        return Err(FieldError::new(
            &["eventTypes"],
            format!("at most {MAX_EVENT_TYPES} event types"),
        ));
    }
    if let Some(bad) = spec
        .event_types
        .iter()
        .flatten()
        .find(|t| !is_valid_event_type(t))
    {
        return Err(FieldError::new(
            &["eventTypes"],
            format!("invalid event type `{bad}`"),
        ));
    }
    if spec
        .channel
        .as_deref()
        .is_some_and(|c| !is_valid_channel(c))
    {
        return Err(FieldError::new(&["channel"], "invalid channel"));
    }
    if spec.status_code_class.is_some_and(|c| c > 5) {
        return Err(FieldError::new(
            &["statusCodeClass"],
            "0 (no answer), 100, 200, 300, 400 or 500",
        ));
    }
    Ok(())
}

/// Starts replaying to `ep` the messages `spec` names, up to now (later ones reach it
/// anyway): the task is stored running, with its count, and `tasks` is woken for it.
pub async fn bulk_replay(
    store: &Store,
    tasks: &crate::tasks::Tasks,
    ep: &Endpoint,
    mut spec: ReplaySpec,
    now: i64,
) -> DbResult<Task> {
    super::endpoints::sends_now(ep)?;
    spec.until = Some(spec.until.map_or(now, |u| u.min(now)).max(spec.since));
    let t = store
        .create_task(Task {
            id: ids::new_id(ids::TASK),
            kind: TaskKind::Replay,
            app_id: ep.app_id.to_string(),
            endpoint_id: ep.id.to_string(),
            status: TaskStatus::Running,
            spec,
            total: 0,
            done: 0,
            queued: 0,
            created_at: now,
            updated_at: now,
        })
        .await?;
    tasks.wake();
    Ok(t)
}
