//! Ingest: a message, its deliveries (the outbox) and its idempotency record, committed
//! together, then handed to the dispatcher.

use crate::db::messages::{self, IngestRequest, Ingested, Message};
use crate::db::{apps, idempotency, Db, DbResult};
use crate::delivery::Dispatcher;

/// A message to store, with what decides where and when it goes.
pub struct NewMessage {
    /// `app_id` is filled in from `app_key`, resolved inside the transaction.
    pub msg: Message,
    /// The application's id or uid.
    pub app_key: String,
    /// Created when no application has that key.
    pub create_app: Option<apps::App>,
    /// Only this endpoint (send-example), regardless of its filters.
    pub only_endpoint: Option<String>,
    /// When the deliveries fall due (`deliverAt`); at once when `None` or past.
    pub deliver_at: Option<i64>,
    /// How long the payload is kept, when not the application's (else `default_retention_ms`).
    pub retention_ms: Option<i64>,
    pub default_retention_ms: i64,
    /// The caller's `Idempotency-Key`, and the answer to replay for it.
    pub idempotency: Option<idempotency::Key>,
    pub response: (u16, String),
}

/// What ingest did: stored (and `response` is the answer), replayed an earlier answer for the
/// same idempotency key, or found no application (`None`).
pub enum Stored {
    Created { response: String },
    Replayed { status: u16, body: String },
}

/// Commits the message and its deliveries (and the idempotency record) in one transaction,
/// then hands the deliveries claimed with it to the dispatcher and wakes it for the rest.
pub async fn ingest(db: &Db, dispatcher: &Dispatcher, m: NewMessage) -> DbResult<Option<Stored>> {
    let now = m.msg.created_at;
    let lease_until = dispatcher.lease_until(now);
    let due_at = m.deliver_at.filter(|t| *t > now).unwrap_or(now);
    let d = dispatcher.clone();
    let outcome = db
        .write(move |c| {
            let NewMessage {
                mut msg,
                app_key,
                create_app,
                only_endpoint,
                retention_ms,
                default_retention_ms,
                idempotency,
                response,
                ..
            } = m;
            let app = match (apps::get(c, &app_key)?, create_app) {
                (Some(app), _) => app,
                (None, Some(app)) => {
                    apps::insert(c, &app)?;
                    app
                }
                (None, None) => return Ok(None),
            };
            msg.app_id = app.id;
            let keep = retention_ms
                .or(app.retention_ms)
                .unwrap_or(default_retention_ms);
            let req = IngestRequest {
                msg: &msg,
                only_endpoint: only_endpoint.as_deref(),
                idempotency: idempotency.as_ref(),
                response: (response.0, &response.1),
                lease_until,
                due_at,
                expires_at: now.saturating_add(keep),
            };
            let mut room = |ep: &str| due_at <= now && d.has_room(ep);
            messages::ingest(c, &req, &mut room).map(|r| Some((r, response.1)))
        })
        .await?;
    Ok(outcome.map(|(ingested, response)| match ingested {
        Ingested::Created { claimed, unclaimed } => {
            dispatcher.dispatch(claimed);
            if unclaimed > 0 {
                dispatcher.wake();
            }
            Stored::Created { response }
        }
        Ingested::Replayed { status, body } => Stored::Replayed { status, body },
    }))
}
