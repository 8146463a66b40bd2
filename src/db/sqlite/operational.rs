//! Storing operational events (see `domain::operational`): each is a message of the reserved
//! application, written in the same transaction as the change it tells of.

use super::deliveries::Notice;
use super::messages;
use super::{alerts, apps, endpoints, DbResult};
use crate::db::outbox::events;
use crate::domain::ids;
use crate::domain::operational::{Event, APP_UID, KEEP_MS};
use rusqlite::Connection;
use serde_json::{json, Value};

/// Creates the reserved application when it does not exist yet.
pub fn ensure_app(c: &Connection, now: i64) -> DbResult<String> {
    if let Some(app) = apps::get(c, APP_UID)? {
        return Ok(app.id.into());
    }
    let app = apps::App {
        id: ids::AppId::generate(),
        uid: Some(APP_UID.into()),
        name: "Operational webhooks".into(),
        rate_limit: None,
        retention_ms: Some(KEEP_MS),
        metadata: Default::default(),
        created_at: now,
        updated_at: now,
    };
    apps::insert(c, &app)?;
    Ok(app.id.into())
}

/// The reserved application's id, when it has endpoints to tell (else there is nothing to do).
fn listening(c: &Connection) -> DbResult<Option<String>> {
    let Some(app) = apps::get(c, APP_UID)? else {
        return Ok(None);
    };
    Ok((endpoints::count_in_app(c, &app.id)? > 0).then_some(app.id.into()))
}

/// Stores an operational event for the operator endpoints of application `ops_app`; the
/// scheduler picks it up (it is due at once); callers wake it.
fn emit(c: &Connection, ops_app: &str, event_type: &str, data: Value, now: i64) -> DbResult<()> {
    let msg = events::message(ops_app, event_type, data, now);
    messages::ingest(c, &events::request(&msg), &mut |_| false)?;
    Ok(())
}

/// `endpoint.created` and friends, for an endpoint of a user's application.
pub fn endpoint_event(c: &Connection, event: Event, endpoint_id: &str, now: i64) -> DbResult<bool> {
    let Some(ops) = listening(c)? else {
        return Ok(false);
    };
    let Some(owner) = endpoints::owner(c, endpoint_id)? else {
        return Ok(false);
    };
    if owner.app_uid.as_deref() == Some(APP_UID) {
        return Ok(false);
    }
    emit(
        c,
        &ops,
        event.name(),
        events::owner_data(&owner, endpoint_id),
        now,
    )?;
    Ok(true)
}

/// `endpoint.deleted`: the endpoint is gone, so its details are passed in.
pub fn endpoint_deleted(
    c: &Connection,
    app: &apps::App,
    endpoint_id: &str,
    endpoint_uid: Option<&str>,
    now: i64,
) -> DbResult<bool> {
    if app.is_operational() {
        return Ok(false);
    }
    let Some(ops) = listening(c)? else {
        return Ok(false);
    };
    let data = json!({ "appId": app.id, "appUid": app.uid, "endpointId": endpoint_id, "endpointUid": endpoint_uid });
    emit(c, &ops, Event::EndpointDeleted.name(), data, now)?;
    Ok(true)
}

/// Turns what recording delivery results noticed into events; returns whether any was stored.
/// Nothing is said about the operator's own endpoints (that could loop).
pub fn announce(c: &Connection, notices: &[Notice], now: i64) -> DbResult<bool> {
    if notices.is_empty() {
        return Ok(false);
    }
    queue_alerts(c, notices, now)?;
    // Looked up once per batch; with no operator endpoint nothing else is read.
    let Some(ops) = listening(c)? else {
        return Ok(false);
    };
    let mut any = false;
    for n in notices {
        let (event_type, endpoint_id) = events::of_notice(n);
        let Some(owner) = endpoints::owner(c, endpoint_id)? else {
            continue;
        };
        if owner.app_uid.as_deref() == Some(APP_UID) {
            continue;
        }
        let data = events::notice_data(n, &owner, endpoint_id);
        emit(c, &ops, event_type, data, now)?;
        any = true;
    }
    Ok(any)
}

/// Queues the alerts that `notices` call for, in the caller's transaction (so an alert is
/// committed with the change it tells of); how many.
fn queue_alerts(c: &Connection, notices: &[Notice], now: i64) -> DbResult<usize> {
    let mut queued = 0;
    for n in notices {
        match n {
            Notice::Disabled {
                endpoint_id,
                reason,
                at,
                automatic: true,
            } => {
                let Some(facts) = alerts::endpoint_facts(c, endpoint_id)? else {
                    continue;
                };
                let data = crate::db::outbox::alerts::disabled_data(
                    &facts,
                    endpoint_id,
                    reason,
                    *at,
                    alerts::skipped_since_disabled(c, endpoint_id)?,
                );
                let rule = crate::domain::alerts::Rule::EndpointDisabled;
                // The incident ends when the endpoint, enabled again, delivers.
                alerts::open_incident(c, endpoint_id, &facts.app_id, rule, &data, *at, Some(now))?;
                queued += alerts::queue(
                    c,
                    rule.name(),
                    &facts.app_id,
                    Some(endpoint_id),
                    &data,
                    now,
                    now,
                )?;
            }
            Notice::Exhausted(a) => queued += alerts::queue_exhausted(c, a, now)?,
            _ => {}
        }
    }
    Ok(queued)
}
