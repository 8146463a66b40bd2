//! Storing operational events (see `domain::operational`): each is a message of the reserved
//! application, written in the same transaction as the change it tells of.

use super::deliveries::{AttemptNotice, Notice};
use super::messages::{self, IngestRequest, Message};
use super::{apps, endpoints, DbResult};
use crate::domain::operational::{Event, APP_UID, KEEP_MS};
use crate::domain::{ids, time::format_ms};
use rusqlite::Connection;
use serde_json::{json, Value};
use std::sync::Arc;

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
    let payload =
        json!({ "type": event_type, "timestamp": format_ms(now), "data": data }).to_string();
    let msg = Message {
        id: ids::MsgId::generate(),
        app_id: ids::AppId::from_string(ops_app.to_owned()),
        event_type: event_type.to_owned(),
        event_id: None,
        payload: Some(Arc::from(payload)),
        channels: None,
        tags: None,
        created_at: now,
    };
    let req = IngestRequest {
        msg: &msg,
        only_endpoint: None,
        idempotency: None,
        response: (202, ""),
        lease_until: 0,
        due_at: now,
        expires_at: now + KEEP_MS,
    };
    messages::ingest(c, &req, &mut |_| false)?;
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
    emit(c, &ops, event.name(), owner_json(&owner, endpoint_id), now)?;
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
    // Looked up once per batch; with no operator endpoint nothing else is read.
    let Some(ops) = listening(c)? else {
        return Ok(false);
    };
    let mut any = false;
    for n in notices {
        let (event_type, endpoint_id) = match n {
            Notice::Failing(a) => (Event::AttemptFailing, &a.endpoint_id),
            Notice::Exhausted(a) => (Event::AttemptExhausted, &a.endpoint_id),
            Notice::Recovered(a) => (Event::AttemptRecovered, &a.endpoint_id),
            Notice::Disabled { endpoint_id, .. } => (Event::EndpointDisabled, endpoint_id),
        };
        let event_type = event_type.name();
        let Some(owner) = endpoints::owner(c, endpoint_id)? else {
            continue;
        };
        if owner.app_uid.as_deref() == Some(APP_UID) {
            continue;
        }
        let mut data = owner_json(&owner, endpoint_id);
        match n {
            Notice::Failing(a) | Notice::Exhausted(a) | Notice::Recovered(a) => {
                data["msgId"] = a.msg_id.clone().into();
                data["lastAttempt"] = attempt_json(a);
            }
            Notice::Disabled { reason, at, .. } => {
                data["reason"] = reason.clone().into();
                data["failSince"] = format_ms(*at).into();
            }
        }
        emit(c, &ops, event_type, data, now)?;
        any = true;
    }
    Ok(any)
}

fn owner_json(o: &endpoints::Owner, endpoint_id: &str) -> Value {
    json!({ "appId": o.app_id, "appUid": o.app_uid, "endpointId": endpoint_id, "endpointUid": o.endpoint_uid })
}

fn attempt_json(a: &AttemptNotice) -> Value {
    json!({ "id": a.attempt_id, "responseStatusCode": a.status_code, "timestamp": format_ms(a.at) })
}
