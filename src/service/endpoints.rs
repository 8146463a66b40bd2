//! Endpoints: what changes their state.

use crate::db::apps::App;
use crate::db::endpoints::{self, Endpoint};
use crate::db::{admin::TestSend, deliveries::Notice, event_types::EventType, Db, DbResult};
use crate::delivery::Dispatcher;
use crate::domain::ids;
use crate::domain::signing::SigningKey;
use crate::domain::time::now_ms;
use crate::operational;
use std::sync::Arc;
use std::time::Duration;

/// Stores a new endpoint with its (encrypted) signing key and announces `endpoint.created`.
pub async fn create(
    db: &Db,
    dispatcher: &Dispatcher,
    ep: Endpoint,
    key: SigningKey,
) -> DbResult<()> {
    let main_key = db.main_key.clone();
    let announced = db
        .write(move |c| {
            endpoints::insert(c, &main_key, &ep, &key.to_secret_string())?;
            operational::endpoint_event(c, "endpoint.created", &ep.id, now_ms())
        })
        .await?;
    if announced {
        dispatcher.wake();
    }
    Ok(())
}

/// Why an endpoint disabled through [`update`] without a reason of its own is.
pub const API_DISABLED: &str = "disabled through the API";

/// Stores a changed endpoint and announces `endpoint.updated`. When `ep.disabled` differs
/// from what is stored, the endpoint is disabled (with the effects of every other way of
/// disabling: reason and time recorded, pending deliveries skipped, `endpoint.disabled`
/// announced) or enabled.
pub async fn update(db: &Db, dispatcher: &Dispatcher, ep: Endpoint) -> DbResult<()> {
    let (id, key) = (ep.id.clone(), db.main_key.clone());
    let announced = db
        .write(move |c| {
            let now = now_ms();
            let was_disabled = endpoints::is_disabled(c, &ep.id)?.unwrap_or(ep.disabled);
            endpoints::update(c, &key, &ep)?;
            let mut notices = Vec::new();
            if ep.disabled && !was_disabled {
                let reason = ep
                    .disabled_reason
                    .clone()
                    .unwrap_or_else(|| API_DISABLED.to_owned());
                if endpoints::disable(c, &ep.id, &reason, now)? {
                    notices.push(Notice::Disabled {
                        endpoint_id: ep.id.clone(),
                        reason,
                        at: now,
                    });
                }
            } else if !ep.disabled && was_disabled {
                endpoints::enable(c, &ep.id, now)?;
            }
            let updated = operational::endpoint_event(c, "endpoint.updated", &ep.id, now)?;
            Ok(operational::announce(c, &notices, now)? || updated)
        })
        .await?;
    settle(dispatcher, &id, true, announced);
    Ok(())
}

/// Deletes an endpoint (its deliveries and attempts go with it) and announces
/// `endpoint.deleted`.
pub async fn delete(db: &Db, dispatcher: &Dispatcher, app: App, ep: &Endpoint) -> DbResult<()> {
    let (id, uid) = (ep.id.clone(), ep.uid.clone());
    let announced = db
        .write(move |c| {
            endpoints::delete(c, &id)?;
            operational::endpoint_deleted(c, &app, &id, uid.as_deref(), now_ms())
        })
        .await?;
    settle(dispatcher, &ep.id, true, announced);
    Ok(())
}

/// What a synchronous test send got back.
pub struct TestOutcome {
    pub record: TestSend,
    /// Why the destination was refused, for the operator's eyes only.
    pub refused_detail: Option<String>,
}

/// Sends `payload` as an event of type `event_type` to the endpoint now, through the
/// dispatcher's client (signing and the SSRF guard included), waits for the answer and records
/// the attempt (trigger "test"), kept as long as the application's payloads (else
/// `default_retention`). `None` when the endpoint is gone.
pub async fn send_test(
    db: &Db,
    dispatcher: &Dispatcher,
    default_retention: Duration,
    app: &App,
    ep: &Endpoint,
    event_type: &str,
    payload: Arc<str>,
) -> DbResult<Option<TestOutcome>> {
    let msg_id = ids::new_id(ids::MESSAGE);
    let now = now_ms();
    let Some((url, sent)) = dispatcher.send_now(&ep.id, &msg_id, &payload, now).await? else {
        return Ok(None);
    };
    let keep = app
        .retention_ms
        .unwrap_or_else(|| crate::domain::time::duration_ms(default_retention));
    let refused_detail = sent.refused_detail.clone();
    let record = TestSend {
        msg_id,
        app_id: app.id.clone(),
        endpoint_id: ep.id.clone(),
        event_type: event_type.to_owned(),
        payload: payload.to_string(),
        expires_at: now.saturating_add(keep),
        attempt_id: ids::new_id(ids::ATTEMPT),
        url,
        succeeded: sent.is_success(),
        status_code: sent.status.map_or(0, i64::from),
        response: sent.body,
        request_headers: sent.request_headers,
        response_headers: sent.response_headers,
        duration_ms: crate::domain::time::duration_ms(sent.duration),
        error: sent.error,
        at: now,
    };
    let stored = record.clone();
    db.write(move |c| crate::db::admin::record_test_send(c, &stored))
        .await?;
    Ok(Some(TestOutcome {
        record,
        refused_detail,
    }))
}

/// The example payload of an event type: its schema's `examples[index]`, or a small stand-in.
pub fn example_payload(et: &EventType, index: usize) -> String {
    let from_schema = et.schemas.as_ref().and_then(|s| {
        s.as_object()?.values().find_map(|schema| {
            schema
                .get("examples")?
                .get(index)
                .filter(|v| v.is_object())
                .cloned()
        })
    });
    let v = from_schema.unwrap_or_else(
        || serde_json::json!({ "type": et.name, "example": true, "description": et.description }),
    );
    v.to_string()
}

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

/// Enables an endpoint and, with `replay`, queues what it missed while disabled (what was
/// skipped since then; never messages from before it existed). Returns how many were queued.
pub async fn enable(
    db: &Db,
    dispatcher: &Dispatcher,
    ep: &Endpoint,
    replay: bool,
) -> DbResult<usize> {
    let mut ep = ep.clone();
    let id = ep.id.clone();
    let replayed = db
        .write(move |c| {
            let now = now_ms();
            let since = crate::db::admin::first_skipped_at(c, &ep.id)?
                .into_iter()
                .chain(ep.disabled_at)
                .min()
                .unwrap_or(now)
                .max(ep.created_at);
            endpoints::enable(c, &ep.id, now)?;
            ep.disabled = false;
            if replay {
                crate::db::deliveries::replay_missing(c, &ep, since, None, now)
            } else {
                Ok(0)
            }
        })
        .await?;
    settle(dispatcher, &id, true, replayed > 0);
    Ok(replayed)
}

/// Failed deliveries of an endpoint in a time window get a fresh retry schedule; how many.
pub async fn recover(
    db: &Db,
    dispatcher: &Dispatcher,
    endpoint_id: &str,
    since: i64,
    until: Option<i64>,
) -> DbResult<usize> {
    let id = endpoint_id.to_owned();
    let n = db
        .write(move |c| crate::db::deliveries::recover(c, &id, since, until, now_ms()))
        .await?;
    settle(dispatcher, endpoint_id, false, n > 0);
    Ok(n)
}

/// Queues the messages of a time window that the endpoint never got (it was disabled, or
/// did not exist yet); how many.
pub async fn replay_missing(
    db: &Db,
    dispatcher: &Dispatcher,
    ep: &Endpoint,
    since: i64,
    until: Option<i64>,
) -> DbResult<usize> {
    let e = ep.clone();
    let n = db
        .write(move |c| crate::db::deliveries::replay_missing(c, &e, since, until, now_ms()))
        .await?;
    settle(dispatcher, &ep.id, false, n > 0);
    Ok(n)
}

/// How an endpoint is doing, as the API's health route and the console's badges say it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Disabled,
    /// Its last attempt failed.
    Failing,
    Healthy,
    /// No attempt in the window looked at.
    Unknown,
}

/// The one rule for an endpoint's status, from its attempts in a window.
pub fn status(ep: &Endpoint, h: &crate::db::admin::Health) -> Status {
    if ep.disabled {
        Status::Disabled
    } else if h.last_failed {
        Status::Failing
    } else if h.succeeded + h.failed == 0 {
        Status::Unknown
    } else {
        Status::Healthy
    }
}

/// Longest time a rotated-out signing key keeps signing.
pub const MAX_ROTATION_GRACE: Duration = Duration::from_secs(7 * 24 * 3600);

/// Makes `secret` the endpoint's signing key; the previous one keeps signing for `grace`.
pub async fn rotate_secret(
    db: &Db,
    dispatcher: &Dispatcher,
    endpoint_id: &str,
    secret: String,
    grace: Duration,
) -> DbResult<()> {
    let (id, main_key) = (endpoint_id.to_owned(), db.main_key.clone());
    let grace_ms = crate::domain::time::duration_ms(grace.min(MAX_ROTATION_GRACE));
    db.write(move |c| endpoints::rotate_secret(c, &main_key, &id, &secret, grace_ms, now_ms()))
        .await?;
    settle(dispatcher, endpoint_id, true, false);
    Ok(())
}

/// Why a message cannot be resent.
#[derive(Debug)]
pub enum ResendError {
    /// The endpoint is disabled: enable it first.
    Disabled,
    Db(crate::db::DbError),
}

impl From<crate::db::DbError> for ResendError {
    fn from(e: crate::db::DbError) -> Self {
        ResendError::Db(e)
    }
}

/// One more attempt of a message at an endpoint, now (manual trigger; a failure does not
/// start a new retry schedule).
pub async fn resend(
    db: &Db,
    dispatcher: &Dispatcher,
    max_attempts: u32,
    msg_id: &str,
    ep: &Endpoint,
) -> Result<(), ResendError> {
    if ep.disabled {
        return Err(ResendError::Disabled);
    }
    let (msg, id) = (msg_id.to_owned(), ep.id.clone());
    db.write(move |c| crate::db::deliveries::resend(c, &msg, &id, max_attempts, now_ms()))
        .await?;
    dispatcher.wake();
    Ok(())
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
