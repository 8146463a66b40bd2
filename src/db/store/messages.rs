//! Messages, their deliveries' listings, attempts, analytics and idempotent responses.

use super::{
    Analytics, App, Attempt, AttemptFilter, EndpointMessage, IdempotencyKey, Ingested, Message,
    MessageEndpoint, MessageFilter, Stats, Store,
};
use crate::db::postgres;
use crate::db::postgres::messages::GroupOutcome;
use crate::db::sqlite::{apps, attempts, deliveries, idempotency, messages, stats};
use crate::db::{DbResult, Page, PageQuery};

/// A message to store with its deliveries, as the ingest path hands it over.
pub struct NewMessage {
    pub msg: Message,
    /// The application, by id or uid.
    pub app_key: String,
    /// Stored first when no application has `app_key`.
    pub create_app: Option<App>,
    /// Only this endpoint (send-example), regardless of its filters.
    pub only_endpoint: Option<String>,
    /// When the deliveries fall due, if later than now.
    pub deliver_at: Option<i64>,
    /// How long the payload is kept, when the request says.
    pub retention_ms: Option<i64>,
    pub default_retention_ms: i64,
    pub idempotency: Option<IdempotencyKey>,
    /// The answer to store with the idempotency key.
    pub response: (u16, String),
}

/// After ingest has committed: its deliveries to ordered endpoints wait in their lines, and a
/// line with nothing on its way lets its first go. Should that fail, the nodes' heartbeats
/// let waiting lines go.
async fn advance_lines(pg: &postgres::PgStore, stored: &Option<(Ingested, String)>, now: i64) {
    if let Some((Ingested::Created { lines, .. }, _)) = &stored {
        if !lines.is_empty() {
            let moved = pg
                .write(async |tx| postgres::lanes::advance_after_ingest(tx, lines, now).await)
                .await;
            if let Err(e) = moved {
                tracing::warn!(error = %e, "cannot let an ordered line go on; the next heartbeat will");
            }
        }
    }
}

impl NewMessage {
    /// Binds the message to its application, found by the store; returns when its payload
    /// expires (the request's retention, else the application's, else the default).
    fn attach(&mut self, app: &App) -> i64 {
        self.msg.app_id.clone_from(&app.id);
        let keep = self
            .retention_ms
            .or(app.retention_ms)
            .unwrap_or(self.default_retention_ms);
        self.msg.created_at.saturating_add(keep)
    }

    /// What ingest stores; `expires_at` 0 when the store finds the application (and the
    /// payload's retention with it) itself.
    fn request(
        &self,
        lease_until: i64,
        due_at: i64,
        expires_at: i64,
    ) -> crate::db::outbox::IngestRequest<'_> {
        crate::db::outbox::IngestRequest {
            msg: &self.msg,
            only_endpoint: self.only_endpoint.as_deref(),
            idempotency: self.idempotency.as_ref(),
            response: (self.response.0, &self.response.1),
            lease_until,
            due_at,
            expires_at,
            filter_input: Default::default(),
        }
    }
}

impl Store {
    /// Deletes a message's payload (see `sqlite::messages::expunge_content`); how many of its
    /// deliveries were canceled.
    pub async fn expunge_message_content(&self, msg_id: &str, now: i64) -> DbResult<usize> {
        let msg_id = msg_id.to_owned();
        match self {
            Store::Sqlite(db) => {
                db.write(move |c| messages::expunge_content(c, &msg_id, now))
                    .await
            }
            Store::Postgres(pg) => {
                pg.write(async |tx| postgres::messages::expunge_content(tx, &msg_id, now).await)
                    .await
            }
        }
    }

    /// Deletes what the receiver answered to one attempt of a message; whether it had it.
    pub async fn expunge_attempt_content(&self, msg_id: &str, attempt_id: &str) -> DbResult<bool> {
        let (msg_id, attempt_id) = (msg_id.to_owned(), attempt_id.to_owned());
        match self {
            Store::Sqlite(db) => {
                db.write(move |c| messages::expunge_attempt_content(c, &msg_id, &attempt_id))
                    .await
            }
            Store::Postgres(pg) => {
                pg.read(async |c| {
                    postgres::messages::expunge_attempt_content(c, &msg_id, &attempt_id).await
                })
                .await
            }
        }
    }

    /// Stores a message, its deliveries and its idempotency record in one transaction (the
    /// outbox). Deliveries due now whose endpoint `room` accepts are leased until
    /// `lease_until` and returned for immediate sending. `None` when there is no such
    /// application; with the response stored for `m.response`.
    pub async fn ingest(
        &self,
        m: NewMessage,
        lease_until: i64,
        mut room: impl FnMut(&str) -> bool + Send + 'static,
    ) -> DbResult<Option<(Ingested, String)>> {
        let now = m.msg.created_at;
        let due_at = m.deliver_at.filter(|t| *t > now).unwrap_or(now);
        match self {
            Store::Postgres(pg) if m.idempotency.is_none() && m.create_app.is_none() => {
                // The common case: stored with the messages sent at the same time, in one
                // transaction (see `postgres::group`).
                let response = m.response.1;
                let job = postgres::group::Job {
                    msg: m.msg,
                    app_key: m.app_key,
                    only_endpoint: m.only_endpoint,
                    keep_ms: m.retention_ms,
                    default_keep_ms: m.default_retention_ms,
                    due_at,
                    lease_until,
                    claim: Box::new(move |ep| due_at <= now && room(ep)),
                };
                let stored = match pg.ingest_grouped(job).await? {
                    GroupOutcome::Stored(ingested, _) => Some((ingested, response)),
                    GroupOutcome::NoApp => None,
                    GroupOutcome::Conflict => return Err(postgres::messages::event_id_taken()),
                };
                advance_lines(pg, &stored, now).await;
                Ok(stored)
            }
            Store::Postgres(pg) => {
                let stored = pg
                    .write(async move |tx| {
                        let mut m = m;
                        let mut claim = |ep: &str| due_at <= now && room(ep);
                        if m.idempotency.is_none() {
                            // A message that makes its application when there is none (another
                            // node may make it at the same moment: theirs is as good).
                            let create = m.create_app.take();
                            for attempt in 0..2 {
                                let mut member = [postgres::messages::GroupMember {
                                    app_key: &m.app_key,
                                    req: m.request(lease_until, due_at, 0),
                                    keep_ms: m.retention_ms,
                                    default_keep_ms: m.default_retention_ms,
                                    claim: &mut claim,
                                }];
                                let node = pg.node();
                                match postgres::messages::ingest_group(
                                    tx,
                                    &mut member,
                                    &node,
                                    &mut postgres::messages::Bracket::Caller,
                                )
                                .await?
                                .pop()
                                {
                                    Some(GroupOutcome::Stored(r, _)) => {
                                        return Ok(Some((r, m.response.1)))
                                    }
                                    Some(GroupOutcome::Conflict) => {
                                        return Err(postgres::messages::event_id_taken())
                                    }
                                    _ => {}
                                }
                                match (&create, attempt) {
                                    (Some(app), 0) => {
                                        postgres::apps::insert_if_absent(tx, app).await?;
                                    }
                                    _ => return Ok(None),
                                }
                            }
                            return Ok(None);
                        }
                        let app = match (
                            postgres::apps::get(tx, &m.app_key).await?,
                            m.create_app.take(),
                        ) {
                            (Some(app), _) => app,
                            (None, Some(app)) => {
                                // Another node may create it at the same moment: theirs is as good.
                                postgres::apps::insert_if_absent(tx, &app).await?;
                                match postgres::apps::get(tx, &m.app_key).await? {
                                    Some(app) => app,
                                    None => return Ok(None),
                                }
                            }
                            (None, None) => return Ok(None),
                        };
                        let expires_at = m.attach(&app);
                        let req = m.request(lease_until, due_at, expires_at);
                        let r =
                            postgres::messages::ingest(tx, &req, &pg.node(), &mut claim).await?;
                        Ok(Some((r, m.response.1)))
                    })
                    .await?;
                advance_lines(pg, &stored, now).await;
                Ok(stored)
            }
            Store::Sqlite(db) => {
                let mut m = m;
                // The answer is stored in the transaction only with an idempotency key.
                let response = if m.idempotency.is_some() {
                    m.response.1.clone()
                } else {
                    std::mem::take(&mut m.response.1)
                };
                let create = m.create_app.take();
                // Written so that it can run again (the answer is taken out first, the
                // application cloned): the writer then needs no savepoint of its own for it.
                let ingested = db
                    .write_replayable(move |c| {
                        let app = match (apps::get(c, &m.app_key)?, &create) {
                            (Some(app), _) => app,
                            (None, Some(app)) => {
                                apps::insert(c, app)?;
                                app.clone()
                            }
                            (None, None) => return Ok(None),
                        };
                        let expires_at = m.attach(&app);
                        let req = m.request(lease_until, due_at, expires_at);
                        let mut claim = |ep: &str| due_at <= now && room(ep);
                        messages::ingest(c, &req, &mut claim).map(Some)
                    })
                    .await?;
                Ok(ingested.map(|r| (r, response)))
            }
        }
    }

    /// A message of an application, by id or `eventId`.
    pub async fn message(&self, app_id: &str, key: &str) -> DbResult<Option<Message>> {
        let (app_id, key) = (app_id.to_owned(), key.to_owned());
        match self {
            Store::Sqlite(db) => db.read(move |c| messages::get(c, &app_id, &key)).await,
            Store::Postgres(pg) => {
                pg.read(async |c| postgres::messages::get(c, &app_id, &key).await)
                    .await
            }
        }
    }

    pub async fn messages(
        &self,
        app_id: &str,
        filter: MessageFilter,
        page: &PageQuery,
    ) -> DbResult<Page<Message>> {
        let (app_id, p) = (app_id.to_owned(), page.clone());
        match self {
            Store::Postgres(pg) => {
                pg.read(async |c| postgres::messages::list(c, &app_id, &filter, &p).await)
                    .await
            }
            Store::Sqlite(db) => {
                db.read(move |c| messages::list(c, &app_id, &filter, &p))
                    .await
            }
        }
    }

    /// The endpoints a message went to, with its delivery at each.
    pub async fn message_endpoints(
        &self,
        msg_id: &str,
        page: &PageQuery,
    ) -> DbResult<Page<MessageEndpoint>> {
        let (id, p, key) = (msg_id.to_owned(), page.clone(), self.main_key().clone());
        match self {
            Store::Postgres(pg) => {
                pg.read(async |c| postgres::deliveries::list_for_message(c, &key, &id, &p).await)
                    .await
            }
            Store::Sqlite(db) => {
                db.read(move |c| deliveries::list_for_message(c, &key, &id, &p))
                    .await
            }
        }
    }

    /// The messages sent to an endpoint, with their delivery there (of `status`, if given).
    pub async fn endpoint_messages(
        &self,
        endpoint_id: &str,
        status: Option<crate::domain::model::DeliveryStatus>,
        filter: MessageFilter,
        page: &PageQuery,
    ) -> DbResult<Page<EndpointMessage>> {
        let (id, p) = (endpoint_id.to_owned(), page.clone());
        match self {
            Store::Postgres(pg) => {
                pg.read(async |c| {
                    postgres::deliveries::list_for_endpoint(c, &id, status, &filter, &p).await
                })
                .await
            }
            Store::Sqlite(db) => {
                db.read(move |c| deliveries::list_for_endpoint(c, &id, status, &filter, &p))
                    .await
            }
        }
    }

    /// Counts of an endpoint's deliveries by state, created in a window.
    pub async fn delivery_stats(
        &self,
        endpoint_id: &str,
        since: Option<i64>,
        until: Option<i64>,
    ) -> DbResult<Stats> {
        let id = endpoint_id.to_owned();
        match self {
            Store::Postgres(pg) => {
                pg.read(async |c| postgres::deliveries::stats(c, &id, since, until).await)
                    .await
            }
            Store::Sqlite(db) => {
                db.read(move |c| deliveries::stats(c, &id, since, until))
                    .await
            }
        }
    }

    pub async fn attempts(
        &self,
        filter: AttemptFilter,
        page: &PageQuery,
    ) -> DbResult<Page<Attempt>> {
        let p = page.clone();
        match self {
            Store::Sqlite(db) => db.read(move |c| attempts::list(c, &filter, &p)).await,
            Store::Postgres(pg) => {
                pg.read(async |c| postgres::attempts::list(c, &filter, &p).await)
                    .await
            }
        }
    }

    pub async fn attempt(&self, msg_id: &str, attempt_id: &str) -> DbResult<Option<Attempt>> {
        let (m, a) = (msg_id.to_owned(), attempt_id.to_owned());
        match self {
            Store::Sqlite(db) => db.read(move |c| attempts::get(c, &m, &a)).await,
            Store::Postgres(pg) => {
                pg.read(async |c| postgres::attempts::get(c, &m, &a).await)
                    .await
            }
        }
    }

    /// Attempts of an application (or one endpoint) in `[since, until)`, counted by outcome,
    /// event type, response code and `bucket_ms` bucket.
    pub async fn analytics(
        &self,
        app_id: &str,
        endpoint_id: Option<crate::domain::ids::EndpointId>,
        since: i64,
        until: i64,
        bucket_ms: i64,
    ) -> DbResult<Analytics> {
        let app_id = app_id.to_owned();
        match self {
            Store::Sqlite(db) => {
                db.read(move |c| {
                    stats::analytics(c, &app_id, endpoint_id.as_deref(), since, until, bucket_ms)
                })
                .await
            }
            Store::Postgres(pg) => {
                pg.read(async |c| {
                    crate::db::postgres::stats::analytics(
                        c,
                        &app_id,
                        endpoint_id.as_deref(),
                        since,
                        until,
                        bucket_ms,
                    )
                    .await
                })
                .await
            }
        }
    }

    /// The response stored for an idempotency key: status and body.
    pub async fn idempotent_response(
        &self,
        key: &IdempotencyKey,
    ) -> DbResult<Option<(u16, String)>> {
        let k = key.clone();
        match self {
            Store::Sqlite(db) => db.read(move |c| idempotency::get(c, &k)).await,
            Store::Postgres(pg) => {
                pg.read(async |c| postgres::idempotency::get(c, &k).await)
                    .await
            }
        }
    }

    pub async fn keep_idempotent_response(
        &self,
        key: IdempotencyKey,
        status: u16,
        body: String,
        now: i64,
    ) -> DbResult<()> {
        match self {
            Store::Postgres(pg) => {
                pg.read(async |c| postgres::idempotency::put(c, &key, status, &body, now).await)
                    .await
            }
            Store::Sqlite(db) => {
                db.write(move |c| idempotency::put(c, &key, status, &body, now))
                    .await
            }
        }
    }
}
