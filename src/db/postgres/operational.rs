//! Storing operational events (see `domain::operational`) on PostgreSQL: each is a message of
//! the reserved application, written in the same transaction as the change it tells of.

use super::super::outbox::events;
use super::super::{DbError, DbResult};
use super::{apps, endpoints};
use crate::db::{App, Notice};
use crate::domain::ids;
use crate::domain::operational::{Event, APP_UID, KEEP_MS};
use deadpool_postgres::GenericClient;
use serde_json::{json, Value};

/// Creates the reserved application when it does not exist yet.
///
/// Nodes doing so at once: the insert of the second waits for the first to commit, then does
/// nothing (its uid is taken), and both return the application the first created.
pub async fn ensure_app(c: &impl GenericClient, now: i64) -> DbResult<String> {
    if let Some(app) = apps::get(c, APP_UID).await? {
        return Ok(app.id.into());
    }
    let app = App {
        id: ids::AppId::generate(),
        uid: Some(APP_UID.into()),
        name: "Operational webhooks".into(),
        rate_limit: None,
        retention_ms: Some(KEEP_MS),
        metadata: Default::default(),
        created_at: now,
        updated_at: now,
    };
    if apps::insert_if_absent(c, &app).await? {
        return Ok(app.id.into());
    }
    // Another node stored it first.
    apps::get(c, APP_UID)
        .await?
        .map(|a| a.id.into())
        .ok_or_else(|| {
            DbError::Conflict("the operational application was deleted while being created".into())
        })
}

/// The reserved application's id, when it has endpoints to tell (else there is nothing to do).
async fn listening(c: &impl GenericClient) -> DbResult<Option<String>> {
    let Some(app) = apps::get(c, APP_UID).await? else {
        return Ok(None);
    };
    Ok((endpoints::count_in_app(c, &app.id).await? > 0).then_some(app.id.into()))
}

/// Stores an operational event for the operator endpoints of application `ops_app`; the
/// scheduler picks it up (it is due at once); callers wake it. Its deliveries are not
/// leased: `owner` (this node) is only what ingest takes.
async fn emit(
    c: &impl GenericClient,
    owner: &str,
    ops_app: &str,
    event_type: &str,
    data: Value,
    now: i64,
) -> DbResult<()> {
    let msg = events::message(ops_app, event_type, data, now);
    super::messages::ingest(c, &events::request(&msg), owner, &mut |_| false).await?;
    Ok(())
}

/// `endpoint.created` and friends, for an endpoint of a user's application.
pub async fn endpoint_event(
    c: &impl GenericClient,
    owner: &str,
    event: Event,
    endpoint_id: &str,
    now: i64,
) -> DbResult<bool> {
    let Some(ops) = listening(c).await? else {
        return Ok(false);
    };
    let Some(o) = endpoints::owner(c, endpoint_id).await? else {
        return Ok(false);
    };
    if o.app_uid.as_deref() == Some(APP_UID) {
        return Ok(false);
    }
    emit(
        c,
        owner,
        &ops,
        event.name(),
        events::owner_data(&o, endpoint_id),
        now,
    )
    .await?;
    Ok(true)
}

/// `endpoint.deleted`: the endpoint is gone, so its details are passed in.
pub async fn endpoint_deleted(
    c: &impl GenericClient,
    owner: &str,
    app: &App,
    endpoint_id: &str,
    endpoint_uid: Option<&str>,
    now: i64,
) -> DbResult<bool> {
    if app.is_operational() {
        return Ok(false);
    }
    let Some(ops) = listening(c).await? else {
        return Ok(false);
    };
    let data = json!({ "appId": app.id, "appUid": app.uid, "endpointId": endpoint_id, "endpointUid": endpoint_uid });
    emit(c, owner, &ops, Event::EndpointDeleted.name(), data, now).await?;
    Ok(true)
}

/// Turns what recording delivery results noticed into events; returns whether any was stored.
/// Nothing is said about the operator's own endpoints (that could loop).
pub async fn announce(
    c: &impl GenericClient,
    owner: &str,
    notices: &[Notice],
    now: i64,
) -> DbResult<bool> {
    if notices.is_empty() {
        return Ok(false);
    }
    super::alerts::queue_for_notices(c, notices, now).await?;
    // Looked up once per batch; with no operator endpoint nothing else is read.
    let Some(ops) = listening(c).await? else {
        return Ok(false);
    };
    let mut any = false;
    for n in notices {
        let (event_type, endpoint_id) = events::of_notice(n);
        let Some(o) = endpoints::owner(c, endpoint_id).await? else {
            continue;
        };
        if o.app_uid.as_deref() == Some(APP_UID) {
            continue;
        }
        let data = events::notice_data(n, &o, endpoint_id);
        emit(c, owner, &ops, event_type, data, now).await?;
        any = true;
    }
    Ok(any)
}
