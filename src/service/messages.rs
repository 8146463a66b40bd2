//! Ingest: a message, its deliveries (the outbox) and its idempotency record, committed
//! together, then handed to the dispatcher.

use crate::db::{DbResult, IdempotencyKey, Ingested, Store};
use crate::delivery::Dispatcher;

pub use crate::db::NewMessage;

/// What ingest did: stored (and `response` is the answer), replayed an earlier answer for the
/// same idempotency key, or found no application (`None`).
pub enum Stored {
    Created { response: String },
    Replayed { status: u16, body: String },
}

/// Commits the message and its deliveries (and the idempotency record) in one transaction,
/// then hands the deliveries claimed with it to the dispatcher and wakes it for the rest.
pub async fn ingest(
    store: &Store,
    dispatcher: &Dispatcher,
    m: NewMessage,
) -> DbResult<Option<Stored>> {
    let _ingesting = dispatcher.ingesting();
    let lease_until = dispatcher.lease_until(m.msg.created_at);
    let expunges = dispatcher.expunges();
    let d = dispatcher.clone();
    let outcome = store
        .ingest(m, lease_until, move |ep| d.has_room(ep))
        .await?;
    Ok(outcome.map(|(ingested, response)| match ingested {
        Ingested::Created {
            claimed, unclaimed, ..
        } => {
            dispatcher.dispatch(claimed, expunges);
            if unclaimed > 0 {
                dispatcher.wake();
            }
            Stored::Created { response }
        }
        Ingested::Replayed { status, body } => Stored::Replayed { status, body },
    }))
}

/// Keeps the answer to a request made with an `Idempotency-Key`, replayed for a retry with
/// the same key (until the key's time to live ends).
pub async fn keep_response(
    store: &Store,
    key: IdempotencyKey,
    status: u16,
    body: String,
) -> DbResult<()> {
    store
        .keep_idempotent_response(key, status, body, crate::domain::time::now_ms())
        .await
}

/// Deletes a message's payload (a person's data, on request): it is never sent again, so
/// its deliveries not made yet are canceled (how many). Its attempts and counts stay. A
/// canceled delivery that held an ordered endpoint's line lets the next one go at once.
pub async fn expunge_content(
    store: &Store,
    dispatcher: &Dispatcher,
    msg_id: &str,
) -> DbResult<usize> {
    let n = store
        .expunge_message_content(msg_id, crate::domain::time::now_ms())
        .await?;
    if n > 0 {
        dispatcher.content_deleted(msg_id);
        dispatcher.wake();
    }
    Ok(n)
}

/// Deletes what the receiver answered to one attempt of a message; whether it had it.
pub async fn expunge_attempt_content(
    store: &Store,
    msg_id: &str,
    attempt_id: &str,
) -> DbResult<bool> {
    store.expunge_attempt_content(msg_id, attempt_id).await
}
