//! Endpoints: what changes their state.

use crate::db::{App, DbResult, Endpoint, EventType, Health, Store, TestSend};
use crate::delivery::Dispatcher;
use crate::domain::ids;
use crate::domain::signing::SigningKey;
use crate::domain::tasks::{ReplaySpec, Task, TaskKind, TaskStatus};
use crate::domain::time::now_ms;
use std::sync::Arc;
use std::time::Duration;

/// Stores a new endpoint with its (encrypted) signing key and announces `endpoint.created`.
pub async fn create(
    store: &Store,
    dispatcher: &Dispatcher,
    ep: Endpoint,
    key: SigningKey,
) -> DbResult<()> {
    let announced = store
        .create_endpoint(ep, key.to_secret_string(), now_ms())
        .await?;
    if announced {
        dispatcher.wake();
    }
    Ok(())
}

/// Why an endpoint disabled through [`update`] without a reason of its own is.
pub const API_DISABLED: &str = "disabled through the API";

/// How many times [`edit`] reads an endpoint again that others keep changing.
const EDIT_TRIES: usize = 20;

/// Changes endpoint `endpoint_id` of `app_id` as `change` says and announces
/// `endpoint.updated`; the endpoint as stored then, or `None` when there is no such endpoint.
/// `change` is made on the endpoint as stored: should another change land between the read
/// and the write, it is read and changed again, so that neither change is lost. When
/// `change` sets `disabled` otherwise than stored, the endpoint is disabled (with the
/// effects of every other way of disabling: reason and time recorded, pending deliveries
/// skipped, `endpoint.disabled` announced) or enabled.
pub async fn edit<E: From<crate::db::DbError>>(
    store: &Store,
    dispatcher: &Dispatcher,
    app_id: &str,
    endpoint_id: &str,
    mut change: impl FnMut(&mut Endpoint) -> Result<(), E>,
) -> Result<Option<Endpoint>, E> {
    let _turn = super::turn(format!("endpoint {app_id} {endpoint_id}")).await;
    for _ in 0..EDIT_TRIES {
        let Some(mut ep) = store.endpoint(app_id, endpoint_id).await? else {
            return Ok(None);
        };
        let as_read = ep.updated_at;
        change(&mut ep)?;
        // Strictly later than what it changes, so that a change made meanwhile is seen.
        ep.updated_at = now_ms().max(as_read + 1);
        let reason = ep
            .disabled_reason
            .clone()
            .unwrap_or_else(|| API_DISABLED.to_owned());
        match store
            .update_endpoint(ep.clone(), as_read, reason, now_ms())
            .await
        {
            Err(crate::db::DbError::Changed) => continue,
            done => done?,
        };
        // What was stored to announce, or deliveries that fell due (an endpoint no longer
        // ordered sends what waited in its line).
        settle(dispatcher, &ep.id, true, true);
        return Ok(Some(ep));
    }
    Err(crate::db::DbError::Contended(
        "the endpoint kept changing while this change was made".into(),
    )
    .into())
}

/// Skips, or retries now, the message that holds an ordered endpoint's line (`msg_id`, as
/// the console showed it); `false` when it no longer does (delivered, being sent, or
/// skipped meanwhile).
pub async fn unblock(
    store: &Store,
    dispatcher: &Dispatcher,
    endpoint_id: &str,
    msg_id: &str,
    what: crate::db::Unblock,
) -> DbResult<bool> {
    let done = store
        .unblock_lane(endpoint_id, msg_id, what, now_ms())
        .await?;
    if done {
        dispatcher.wake();
    }
    Ok(done)
}

/// Deletes an endpoint (its deliveries and attempts go with it) and announces
/// `endpoint.deleted`.
pub async fn delete(
    store: &Store,
    dispatcher: &Dispatcher,
    app: App,
    ep: &Endpoint,
) -> DbResult<()> {
    let announced = store.delete_endpoint(app, ep, now_ms()).await?;
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
    store: &Store,
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
        app_id: app.id.to_string(),
        endpoint_id: ep.id.to_string(),
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
    store.record_test_send(record.clone()).await?;
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
    store: &Store,
    dispatcher: &Dispatcher,
    endpoint_id: &str,
    reason: String,
) -> DbResult<bool> {
    let (changed, announced) = store
        .disable_endpoints(vec![(endpoint_id.to_owned(), reason)], now_ms())
        .await?;
    let changed = !changed.is_empty();
    settle(dispatcher, endpoint_id, changed, announced);
    Ok(changed)
}

/// Disables every endpoint whose every attempt has failed for its auto-disable period by
/// `now` (its own, else the server's `after` ms; 0: never) (the auto-disable rule), with the
/// effects of [`disable`]; returns their ids.
pub async fn disable_failing(
    store: &Store,
    dispatcher: &Dispatcher,
    after: i64,
    now: i64,
) -> DbResult<Vec<String>> {
    let reason = move |since: i64, period: i64| {
        let period = Duration::from_millis(u64::try_from(period).unwrap_or(0));
        format!(
            "every delivery failed for {} (since {})",
            humantime::format_duration(period),
            crate::domain::time::format_ms(since)
        )
    };
    let (dead, announced) = store.disable_failing_endpoints(after, reason, now).await?;
    for id in &dead {
        dispatcher.endpoint_changed(id);
    }
    if announced {
        dispatcher.wake();
    }
    Ok(dead)
}

/// Enables an endpoint and, with `replay`, queues what it missed while disabled (what was
/// skipped since then; never messages from before it existed). Returns how many were queued.
pub async fn enable(
    store: &Store,
    dispatcher: &Dispatcher,
    ep: &Endpoint,
    replay: bool,
) -> DbResult<usize> {
    let replayed = store.enable_endpoint(ep, replay, now_ms()).await?;
    settle(dispatcher, &ep.id, true, replayed > 0);
    Ok(replayed)
}

/// Gives the endpoint's failed deliveries in a time window a fresh retry schedule; the
/// finished task that says how many.
pub async fn recover(
    store: &Store,
    dispatcher: &Dispatcher,
    ep: &Endpoint,
    since: i64,
    until: Option<i64>,
) -> DbResult<Task> {
    sends_now(ep)?;
    let now = now_ms();
    let n = store.recover_endpoint(&ep.id, since, until, now).await?;
    settle(dispatcher, &ep.id, false, n > 0);
    record(store, TaskKind::Recover, ep, since, until, n, now).await
}

/// Queues the messages of a time window that the endpoint never got (it was disabled, or
/// did not exist yet); the finished task that says how many.
pub async fn replay_missing(
    store: &Store,
    dispatcher: &Dispatcher,
    ep: &Endpoint,
    since: i64,
    until: Option<i64>,
) -> DbResult<Task> {
    sends_now(ep)?;
    let now = now_ms();
    let n = store.replay_missing(ep, since, until, now).await?;
    settle(dispatcher, &ep.id, false, n > 0);
    record(store, TaskKind::ReplayMissing, ep, since, until, n, now).await
}

/// A disabled endpoint is sent nothing: what would be queued for it would be skipped at once.
pub fn sends_now(ep: &Endpoint) -> DbResult<()> {
    if ep.disabled {
        return Err(crate::db::DbError::Conflict(
            "the endpoint is disabled: enable it first (enabling can replay what it missed)".into(),
        ));
    }
    Ok(())
}

/// Stores a task done when it was asked for, so that it can be looked up and listed like a
/// bulk replay.
async fn record(
    store: &Store,
    kind: TaskKind,
    ep: &Endpoint,
    since: i64,
    until: Option<i64>,
    n: usize,
    now: i64,
) -> DbResult<Task> {
    let n = i64::try_from(n).unwrap_or(i64::MAX);
    let t = Task {
        id: ids::new_id(ids::TASK),
        kind,
        app_id: ep.app_id.to_string(),
        endpoint_id: ep.id.to_string(),
        status: TaskStatus::Finished,
        spec: ReplaySpec {
            since,
            until,
            ..ReplaySpec::default()
        },
        total: n,
        done: n,
        queued: n,
        created_at: now,
        updated_at: now,
    };
    store.record_task(t.clone()).await?;
    Ok(t)
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
pub fn status(ep: &Endpoint, h: &Health) -> Status {
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

/// Most keys an endpoint's secret replaced that may still sign (each adds a signature to
/// every request's `webhook-signature`), as Svix allows.
pub const MAX_OLD_SECRETS: i64 = 5;

/// Why a secret was not rotated.
#[derive(Debug)]
pub enum RotateError {
    /// [`MAX_OLD_SECRETS`] keys it replaced still sign; the first stops at `next_free` (ms).
    LimitReached {
        next_free: i64,
    },
    Db(crate::db::DbError),
}

impl From<crate::db::DbError> for RotateError {
    fn from(e: crate::db::DbError) -> Self {
        RotateError::Db(e)
    }
}

impl std::fmt::Display for RotateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RotateError::LimitReached { next_free } => write!(
                f,
                "the secret can be rotated {MAX_OLD_SECRETS} times while the keys it replaced \
                 still sign; the first of them stops signing at {} (a rotation with a grace \
                 period of 0 is always taken)",
                crate::domain::time::format_ms(*next_free)
            ),
            RotateError::Db(e) => e.fmt(f),
        }
    }
}

/// Makes `secret` the endpoint's signing key; the previous one keeps signing for `grace`.
pub async fn rotate_secret(
    store: &Store,
    dispatcher: &Dispatcher,
    endpoint_id: &str,
    secret: String,
    grace: Duration,
) -> Result<(), RotateError> {
    let grace_ms = crate::domain::time::duration_ms(grace.min(MAX_ROTATION_GRACE));
    if let Some(next_free) = store
        .rotate_secret(endpoint_id, secret, grace_ms, MAX_OLD_SECRETS, now_ms())
        .await?
    {
        return Err(RotateError::LimitReached { next_free });
    }
    settle(dispatcher, endpoint_id, true, false);
    Ok(())
}

/// A stored secret as users see it: a `whsec_…` secret as it is, a `whsk_…` secret key as
/// its `whpk_…` public key (the secret key is never shown).
pub fn shown_secret(stored: &str) -> String {
    SigningKey::parse(stored).map_or_else(|_| stored.to_owned(), |k| k.to_shown_string())
}

/// Why a message cannot be resent.
#[derive(Debug)]
pub enum ResendError {
    /// The endpoint is disabled: enable it first.
    Disabled,
    /// The message was never for this endpoint (its event types, channels or the endpoint's
    /// creation after it): use replay to send what it missed.
    NotFor,
    /// The message's payload was deleted, or has expired: there is nothing to send.
    ContentGone,
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
    store: &Store,
    dispatcher: &Dispatcher,
    server: &crate::domain::retry::RetrySchedule,
    msg: &crate::db::Message,
    ep: &Endpoint,
) -> Result<(), ResendError> {
    if ep.disabled {
        return Err(ResendError::Disabled);
    }
    if msg.payload.is_none() {
        return Err(ResendError::ContentGone);
    }
    // Its last attempt by the schedule it is recorded with: a failure ends it.
    let max_attempts = ep
        .policy
        .retry_schedule(server)
        .map_or(server.max_attempts(), |s| s.max_attempts());
    if !store
        .resend(&msg.id, &ep.id, max_attempts, now_ms())
        .await?
    {
        return Err(ResendError::NotFor);
    }
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

/// What `filter` does with a message of `event_type` carrying `payload` (JSON text), in
/// `channels` with `tags` ("Test this filter"): as ingest would decide. A blank filter takes
/// everything.
pub fn test_filter(
    filter: &str,
    event_type: &str,
    payload: &str,
    channels: Option<&[String]>,
    tags: Option<&[String]>,
) -> crate::domain::filter::Verdict {
    if filter.trim().is_empty() {
        return crate::domain::filter::Verdict::Takes;
    }
    let input = crate::domain::filter::Input::new(event_type, payload, channels, tags);
    crate::domain::filter::verdict(filter, &input)
}
