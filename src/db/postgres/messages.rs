//! Ingest on PostgreSQL: a message, its deliveries and its idempotency record in the caller's
//! transaction, safe when several nodes take the same request at once.

use super::super::outbox::IngestRequest;
use super::super::{DbError, DbResult, Ingested, MessageFilter, Page, PageQuery};
use crate::domain::ids;
use crate::domain::model::{DeliveryStatus, Message};
use deadpool_postgres::GenericClient;
use std::sync::Arc;
use std::task::Poll;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

pub(crate) const COLS: &str =
    "m.id, m.app_id, m.event_type, m.event_id, m.payload, m.channels, m.tags, m.created_at";

/// A message from the first eight columns of `r` (in the order of [`COLS`]).
pub(crate) fn from_row(r: &Row) -> DbResult<Message> {
    from_row_at(r, 0)
}

/// A message from eight columns of `r` starting at `at`.
pub(crate) fn from_row_at(r: &Row, at: usize) -> DbResult<Message> {
    let json = |v: Option<String>| v.and_then(|s| serde_json::from_str(&s).ok());
    Ok(Message {
        id: r.try_get(at)?,
        app_id: r.try_get(at + 1)?,
        event_type: r.try_get(at + 2)?,
        event_id: r.try_get(at + 3)?,
        payload: r.try_get::<_, Option<String>>(at + 4)?.map(Arc::from),
        channels: json(r.try_get(at + 5)?),
        tags: json(r.try_get(at + 6)?),
        created_at: r.try_get(at + 7)?,
    })
}

/// A query parameter owned by the query being built.
pub(crate) type Param = Box<dyn ToSql + Sync + Send>;

/// The SQL conditions on `m` of `f`, their parameters numbered from `$first`.
pub(crate) fn filter_sql(f: &MessageFilter, first: usize) -> (String, Vec<Param>) {
    let mut cond = String::new();
    let mut params: Vec<Param> = Vec::new();
    let next = |params: &Vec<Param>| first + params.len();
    if let Some(ch) = &f.channel {
        let n = next(&params);
        cond.push_str(&format!(
            " AND EXISTS (SELECT 1 FROM json_array_elements_text(m.channels::json) v WHERE v = ${n})"
        ));
        params.push(Box::new(ch.clone()));
    }
    if let Some(tag) = &f.tag {
        let n = next(&params);
        cond.push_str(&format!(
            " AND EXISTS (SELECT 1 FROM json_array_elements_text(m.tags::json) v WHERE v = ${n})"
        ));
        params.push(Box::new(tag.clone()));
    }
    if let Some(types) = &f.event_types {
        let n = next(&params);
        cond.push_str(&format!(" AND m.event_type = ANY(${n})"));
        params.push(Box::new(types.clone()));
    }
    if let Some(b) = f.before {
        let n = next(&params);
        cond.push_str(&format!(" AND m.id < ${n}"));
        params.push(Box::new(ids::lower_bound_at(ids::MESSAGE, b)));
    }
    if let Some(a) = f.after {
        let n = next(&params);
        cond.push_str(&format!(" AND m.id >= ${n}"));
        params.push(Box::new(ids::lower_bound_at(ids::MESSAGE, a + 1)));
    }
    (cond, params)
}

/// By id, or else by eventId, within one application.
pub async fn get(c: &impl GenericClient, app_id: &str, key: &str) -> DbResult<Option<Message>> {
    let stmt = c
        .prepare_cached(&format!(
            "SELECT {COLS} FROM messages m WHERE m.app_id = $1 AND m.id = $2 UNION ALL \
             SELECT {COLS} FROM messages m WHERE m.app_id = $1 AND m.event_id = $2 LIMIT 1"
        ))
        .await?;
    c.query_opt(&stmt, &[&app_id, &key])
        .await?
        .map(|r| from_row(&r))
        .transpose()
}

pub async fn list(
    c: &impl GenericClient,
    app_id: &str,
    filter: &MessageFilter,
    page: &PageQuery,
) -> DbResult<Page<Message>> {
    let (cond, extra) = filter_sql(filter, 2);
    let mut params: Vec<&(dyn ToSql + Sync)> = vec![&app_id];
    params.extend(extra.iter().map(|b| b.as_ref() as &(dyn ToSql + Sync)));
    super::paged(
        c,
        &format!("SELECT {COLS} FROM messages m WHERE m.app_id = $1{cond} AND {{page}}"),
        "m.id",
        &params,
        page,
        from_row,
    )
    .await
}

/// Purges up to `limit` payloads that expired by `now`, with their attempts' response bodies;
/// Deletes a message's payload at its owner's request: it is never sent again, so its
/// deliveries not made yet are canceled (stored as skipped: the API's "canceled") (how many), leased ones too (their result is then
/// dropped). Its attempts and counts stay.
pub async fn expunge_content(c: &impl GenericClient, msg_id: &str, now: i64) -> DbResult<usize> {
    c.execute(
        "UPDATE messages SET payload = NULL WHERE id = $1",
        &[&msg_id],
    )
    .await?;
    // The lines of every endpoint it went to are taken first (see `lanes`): one of its
    // deliveries may join a line meanwhile (a resend).
    let endpoints: Vec<String> = c
        .query(
            "SELECT endpoint_id FROM deliveries WHERE msg_id = $1",
            &[&msg_id],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    super::lanes::lock(c, endpoints.iter().map(String::as_str)).await?;
    let canceled = c
        .query(
            "UPDATE deliveries SET status = 5, next_attempt_at = NULL, lease_until = NULL, \
                 lease_owner = NULL, updated_at = $2 WHERE msg_id = $1 AND status = 1 \
             RETURNING endpoint_id, lane",
            &[&msg_id, &now],
        )
        .await?;
    // The lines it waited in go on without it.
    for r in canceled
        .iter()
        .filter(|r| r.get::<_, Option<i64>>(1).is_some())
    {
        super::lanes::advance(c, r.get(0), now).await?;
    }
    Ok(canceled.len())
}

/// Deletes an attempt's response body and headers (what the receiver answered); whether
/// the message had that attempt.
pub async fn expunge_attempt_content(
    c: &impl GenericClient,
    msg_id: &str,
    attempt_id: &str,
) -> DbResult<bool> {
    Ok(c.execute(
        "UPDATE attempts SET response = NULL, response_headers = NULL \
         WHERE id = $1 AND msg_id = $2",
        &[&attempt_id, &msg_id],
    )
    .await?
        > 0)
}

/// messages with a delivery still pending keep theirs. Returns how many were purged.
pub async fn purge_expired(c: &impl GenericClient, now: i64, limit: usize) -> DbResult<usize> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let ids: Vec<String> = c
        .query(
            "SELECT id FROM messages m WHERE payload IS NOT NULL AND expires_at <= $1 \
             AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.msg_id = m.id AND d.status = 1) \
             LIMIT $2 FOR UPDATE SKIP LOCKED",
            &[&now, &limit],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    if ids.is_empty() {
        return Ok(0);
    }
    c.execute(
        "UPDATE messages SET payload = NULL WHERE id = ANY($1)",
        &[&ids],
    )
    .await?;
    c.execute(
        "UPDATE attempts SET response = NULL, request_headers = NULL, response_headers = NULL \
         WHERE msg_id = ANY($1) AND response IS NOT NULL",
        &[&ids],
    )
    .await?;
    Ok(ids.len())
}

/// Stores a message and its deliveries (the outbox) and the idempotency record in `tx`.
/// Deliveries that `claim(endpoint_id)` takes are leased to node `owner`.
///
/// The idempotency record is inserted first: a second node with the same key waits on it
/// (PostgreSQL's unique index) and, once the first commits, answers with the stored response
/// instead of storing the message again. The same `eventId` twice is a conflict (409).
pub async fn ingest(
    tx: &impl GenericClient,
    req: &IngestRequest<'_>,
    owner: &str,
    claim: &mut (dyn FnMut(&str) -> bool + Send),
) -> DbResult<Ingested> {
    let m = req.msg;
    if let Some(key) = req.idempotency {
        let status = i32::from(req.response.0);
        let insert = tx
            .prepare_cached(
                "INSERT INTO idempotency_keys (token_id, path, key, status_code, body, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
            )
            .await?;
        let inserted = tx
            .execute(
                &insert,
                &[
                    &key.token_id,
                    &key.path,
                    &key.key,
                    &status,
                    &req.response.1,
                    &m.created_at,
                ],
            )
            .await?;
        if inserted == 0 {
            let row = tx
                .query_one(
                    "SELECT status_code, body FROM idempotency_keys \
                     WHERE token_id = $1 AND path = $2 AND key = $3",
                    &[&key.token_id, &key.path, &key.key],
                )
                .await?;
            let status: i32 = row.get(0);
            return Ok(Ingested::Replayed {
                status: u16::try_from(status).unwrap_or(500),
                body: row.get(1),
            });
        }
    }
    let to_json = |v: &Option<Vec<String>>| v.as_ref().map(super::super::to_json);
    let insert = tx
        .prepare_cached(
            "INSERT INTO messages (id, app_id, event_type, event_id, payload, channels, tags, \
             created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .await?;
    tx.execute(
        &insert,
        &[
            &m.id.as_str(),
            &m.app_id.as_str(),
            &m.event_type,
            &m.event_id,
            &m.payload.as_deref(),
            &to_json(&m.channels),
            &to_json(&m.tags),
            &m.created_at,
            &req.expires_at,
        ],
    )
    .await
    .map_err(event_id_conflict)?;

    let select = tx
        .prepare_cached(
            "SELECT id, filter_types, channels, disabled, filter, ordered FROM endpoints \
             WHERE app_id = $1",
        )
        .await?;
    let endpoints = tx.query(&select, &[&m.app_id.as_str()]).await?;
    let endpoints = endpoints
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5)));
    let planned = vec![(req, plan(req, claim, endpoints))];
    let mut stored = insert_deliveries(tx, planned, owner, &mut Bracket::Caller).await?;
    stored
        .pop()
        .ok_or_else(|| DbError::Postgres("ingest: no outcome".into()))
}

/// An endpoint as ingest routes to it: id, event type filter, channels (stored JSON), disabled,
/// payload filter, ordered.
type Target<'r> = (
    String,
    Option<&'r str>,
    Option<&'r str>,
    bool,
    Option<&'r str>,
    bool,
);

/// What a second message with the same `eventId` in one application is told (409).
pub fn event_id_taken() -> DbError {
    DbError::Conflict("a message with this eventId already exists in this application".into())
}

/// The same `eventId` twice in one application is a conflict (409).
fn event_id_conflict(e: tokio_postgres::Error) -> DbError {
    if e.code() == Some(&SqlState::UNIQUE_VIOLATION) {
        event_id_taken()
    } else {
        e.into()
    }
}

/// The deliveries a message gets: for each endpoint it goes to, its status, whether it is
/// leased to this node now, why its filter did not take it, and whether it waits in an
/// ordered line; and the lines it joins.
#[derive(Default)]
struct Planned {
    ids: Vec<String>,
    statuses: Vec<i16>,
    leased: Vec<bool>,
    whys: Vec<Option<String>>,
    in_line: Vec<bool>,
    lines: std::collections::BTreeSet<String>,
}

/// Routes the message of `req` to the `endpoints` it goes to (disabled ones as skipped),
/// those `claim` takes to be leased.
fn plan<'r>(
    req: &IngestRequest<'_>,
    claim: &mut (dyn FnMut(&str) -> bool + Send),
    endpoints: impl Iterator<Item = Target<'r>>,
) -> Planned {
    let mut p = Planned::default();
    for (endpoint_id, filter_types, channels, disabled, filter, ordered) in endpoints {
        let route = req.wants(&endpoint_id, filter_types, channels, filter);
        let Some((status, why)) = route.delivery(disabled) else {
            continue;
        };
        // Ordered endpoints: their deliveries join the end of their lines, waiting their turn
        // (a place from the sequence; see `lanes`).
        let lined = status == DeliveryStatus::Pending && ordered;
        if lined {
            p.lines.insert(endpoint_id.clone());
        }
        p.leased
            .push(status == DeliveryStatus::Pending && !ordered && claim(&endpoint_id));
        p.statuses.push(status.code() as i16);
        p.whys.push(why);
        p.in_line.push(lined);
        p.ids.push(endpoint_id);
    }
    p
}

/// What ingest answers once the deliveries are stored: those leased to this node, to send
/// now, and how many wait for the scheduler.
#[derive(Default)]
struct Outcome {
    claimed: Vec<crate::db::Claimed>,
    unclaimed: usize,
}

impl Outcome {
    /// Counts in one stored delivery (`id`, `endpoint_id`, leased, status).
    fn add(&mut self, req: &IngestRequest<'_>, row: &Row, owner: &Arc<str>) {
        if row.get::<_, bool>(2) {
            let owner = owner.clone();
            self.claimed
                .push(req.claimed(row.get(0), row.get(1), Some(owner)));
        } else if row.get::<_, i16>(3) == PENDING {
            self.unclaimed += 1;
        }
    }

    fn ingested(self, lines: std::collections::BTreeSet<String>) -> Ingested {
        // A line with nothing on its way lets its first go once this has committed.
        Ingested::Created {
            claimed: self.claimed,
            unclaimed: self.unclaimed,
            lines: lines.into_iter().collect(),
        }
    }
}

/// How the transaction around a sequence of statements is opened and closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bracket {
    /// By the caller (the sequence runs in its `Transaction`).
    Caller,
    /// By the sequence itself, on a connection outside any transaction: BEGIN is sent with its
    /// first statement and COMMIT with its last, two round trips fewer than a `Transaction`.
    /// How far it got tells the caller what an error means.
    Own(Progress),
}

/// How far a sequence that owns its transaction got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// Not committed: after an error the transaction may still be open, for the caller to
    /// roll back (or to close the connection, see [`super::HandTx`]).
    Open,
    /// Committed: an error now comes from reading what was written, which stays written.
    Committed,
    /// The COMMIT failed: the transaction has ended, and whether it committed is unknown if
    /// the connection broke.
    CommitFailed,
}

impl Bracket {
    /// What is sent with the first statement of a hot-path sequence.
    fn opening(&self) -> &'static str {
        match self {
            Bracket::Caller => super::KEYED_PLANS,
            Bracket::Own(_) => super::BEGIN_KEYED_PLANS,
        }
    }

    /// Runs `last`, the sequence's last statement (prepared: its query goes out at once), and
    /// with [`Bracket::Own`] the COMMIT. COMMIT is sent only once `last` is on its way: a
    /// statement that fails before it is sent (its parameters cannot be encoded) leaves the
    /// transaction open for the caller to roll back, rather than committing what came before
    /// it. Sent together, a `last` that fails makes PostgreSQL answer the COMMIT with a
    /// rollback.
    async fn query_last(
        &mut self,
        c: &impl GenericClient,
        last: &tokio_postgres::Statement,
        params: &[&(dyn ToSql + Sync)],
    ) -> DbResult<Vec<Row>> {
        let Bracket::Own(progress) = self else {
            return Ok(c.query(last, params).await?);
        };
        use std::future::Future as _;
        let mut query = std::pin::pin!(c.query(last, params));
        let first = std::future::poll_fn(|cx| Poll::Ready(query.as_mut().poll(cx))).await;
        let (rows, commit) = match first {
            // Failed before it was sent: the COMMIT is not sent either.
            Poll::Ready(Err(e)) => return Err(e.into()),
            Poll::Ready(Ok(rows)) => (rows, c.batch_execute("COMMIT").await),
            Poll::Pending => {
                let (rows, commit) = tokio::join!(query, c.batch_execute("COMMIT"));
                (rows?, commit)
            }
        };
        progress.committed(commit)?;
        Ok(rows)
    }

    /// Commits a sequence whose last statement was not sent (it had nothing to write).
    async fn close(&mut self, c: &impl GenericClient) -> DbResult<()> {
        if let Bracket::Own(progress) = self {
            progress.committed(c.batch_execute("COMMIT").await)?;
        }
        Ok(())
    }
}

impl Progress {
    /// Notes how the COMMIT ended.
    fn committed(&mut self, commit: Result<(), tokio_postgres::Error>) -> DbResult<()> {
        *self = match commit {
            Ok(()) => Progress::Committed,
            Err(_) => Progress::CommitFailed,
        };
        Ok(commit?)
    }
}

/// Stores the planned deliveries of one or more messages (those planned as leased, leased to
/// node `owner`) in one statement; what ingest answers for each message, in order. With
/// [`Bracket::Own`], that statement carries the COMMIT.
async fn insert_deliveries(
    tx: &impl GenericClient,
    planned: Vec<(&IngestRequest<'_>, Planned)>,
    owner: &str,
    bracket: &mut Bracket,
) -> DbResult<Vec<Ingested>> {
    let (mut msg_ids, mut eps, mut statuses, mut leased, mut whys, mut lined) = (
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
    );
    let (mut dues, mut leases, mut at, mut lines) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut reqs = Vec::with_capacity(planned.len());
    for (req, mut p) in planned {
        for _ in 0..p.ids.len() {
            msg_ids.push(req.msg.id.as_str());
            dues.push(req.due_at);
            leases.push(req.lease_until);
            at.push(req.msg.created_at);
        }
        eps.append(&mut p.ids);
        statuses.append(&mut p.statuses);
        leased.append(&mut p.leased);
        whys.append(&mut p.whys);
        lined.append(&mut p.in_line);
        lines.push(p.lines);
        reqs.push(req);
    }
    let mut outcomes: Vec<Outcome> = reqs.iter().map(|_| Outcome::default()).collect();
    if !msg_ids.is_empty() {
        let insert = tx
            .prepare_cached(
                "INSERT INTO deliveries (msg_id, endpoint_id, status, next_attempt_at, \
                     lease_until, lease_owner, filter_error, created_at, updated_at, lane, \
                     parked_due) \
                 SELECT e.msg_id, e.id, e.status, CASE WHEN NOT e.lined THEN e.due END, \
                     CASE WHEN e.leased THEN e.lease END, CASE WHEN e.leased THEN $1 END, \
                     e.why, e.at, e.at, CASE WHEN e.lined THEN nextval('delivery_lanes') END, \
                     CASE WHEN e.lined AND e.due > e.at THEN e.due END \
                 FROM UNNEST($2::TEXT[], $3::TEXT[], $4::SMALLINT[], $5::BOOLEAN[], \
                     $6::TEXT[], $7::BOOLEAN[], $8::BIGINT[], $9::BIGINT[], $10::BIGINT[]) \
                     AS e(msg_id, id, status, leased, why, lined, due, lease, at) \
                 RETURNING id, endpoint_id, lease_owner IS NOT NULL, status, msg_id",
            )
            .await?;
        let rows = bracket
            .query_last(
                tx,
                &insert,
                &[
                    &owner, &msg_ids, &eps, &statuses, &leased, &whys, &lined, &dues, &leases, &at,
                ],
            )
            .await?;
        let index: std::collections::HashMap<&str, usize> = reqs
            .iter()
            .enumerate()
            .map(|(i, r)| (r.msg.id.as_str(), i))
            .collect();
        let lease: Arc<str> = owner.into();
        for row in &rows {
            let msg_id: &str = row.get(4);
            let Some(&i) = index.get(msg_id) else {
                return Err(DbError::Postgres(format!(
                    "ingest: a delivery of {msg_id}, which was not being stored"
                )));
            };
            outcomes[i].add(reqs[i], row, &lease);
        }
    } else {
        bracket.close(tx).await?;
    }
    Ok(outcomes
        .into_iter()
        .zip(lines)
        .map(|(o, lines)| o.ingested(lines))
        .collect())
}

/// One message of a group stored together by [`ingest_group`]: its application by id or uid,
/// how long its payload is kept when the request says (else the application's retention,
/// else `default_keep_ms`), and which of its deliveries this node takes now.
pub struct GroupMember<'a> {
    pub app_key: &'a str,
    pub req: IngestRequest<'a>,
    pub keep_ms: Option<i64>,
    pub default_keep_ms: i64,
    pub claim: &'a mut (dyn FnMut(&str) -> bool + Send),
}

/// What became of one message of a group.
pub enum GroupOutcome {
    Stored(Ingested, crate::domain::ids::AppId),
    /// No application has its `app_key`: nothing stored.
    NoApp,
    /// Its application has a message with its `eventId` (stored before, or earlier in the
    /// group): nothing stored.
    Conflict,
}

/// Stores several messages (none with an `Idempotency-Key`) and their deliveries in `tx`, in
/// two statements whatever their number: ingest's common case, grouped so that concurrent
/// requests share one transaction and one commit. Answers one outcome per member, in order.
/// A message whose `eventId` its application already has is left out (not an error, so that
/// the others stand); any error is the whole group's.
pub async fn ingest_group(
    tx: &impl GenericClient,
    members: &mut [GroupMember<'_>],
    owner: &str,
    bracket: &mut Bracket,
) -> DbResult<Vec<GroupOutcome>> {
    let to_json = |v: &Option<Vec<String>>| v.as_ref().map(super::super::to_json);
    let n = members.len();
    // One array per column, a message per element.
    let keys: Vec<&str> = members.iter().map(|g| g.app_key).collect();
    let ids: Vec<&str> = members.iter().map(|g| g.req.msg.id.as_str()).collect();
    let types: Vec<&str> = members
        .iter()
        .map(|g| g.req.msg.event_type.as_str())
        .collect();
    let event_ids: Vec<Option<&str>> = members
        .iter()
        .map(|g| g.req.msg.event_id.as_deref())
        .collect();
    let payloads: Vec<Option<&str>> = members
        .iter()
        .map(|g| g.req.msg.payload.as_deref())
        .collect();
    let channels: Vec<Option<String>> = members
        .iter()
        .map(|g| to_json(&g.req.msg.channels))
        .collect();
    let tags: Vec<Option<String>> = members.iter().map(|g| to_json(&g.req.msg.tags)).collect();
    let created: Vec<i64> = members.iter().map(|g| g.req.msg.created_at).collect();
    let keeps: Vec<Option<i64>> = members.iter().map(|g| g.keep_ms).collect();
    let default_keeps: Vec<i64> = members.iter().map(|g| g.default_keep_ms).collect();
    // Each message's application found by id or uid, the messages stored (in the order of
    // their event ids, so that groups on other connections take the unique index's entries in
    // the same order and never wait on each other in a cycle), and the endpoints of each
    // stored message read, in one statement.
    let stmt = tx
        .prepare_cached(
            "WITH input AS MATERIALIZED (\
                 SELECT * FROM UNNEST($1::TEXT[], $2::TEXT[], $3::TEXT[], $4::TEXT[], \
                     $5::TEXT[], $6::TEXT[], $7::TEXT[], $8::BIGINT[], $9::BIGINT[], \
                     $10::BIGINT[]) WITH ORDINALITY \
                 AS i(app_key, id, event_type, event_id, payload, channels, tags, created_at, \
                     keep_ms, default_keep, n)), \
             app AS MATERIALIZED (\
                 SELECT i.n, a.id AS app_id, a.retention_ms FROM input i CROSS JOIN LATERAL (\
                     (SELECT id, retention_ms FROM applications WHERE id = i.app_key) UNION ALL \
                     (SELECT id, retention_ms FROM applications WHERE uid = i.app_key) LIMIT 1) a), \
             msg AS (\
                 INSERT INTO messages (id, app_id, event_type, event_id, payload, channels, \
                     tags, created_at, expires_at) \
                 SELECT i.id, app.app_id, i.event_type, i.event_id, i.payload, i.channels, \
                     i.tags, i.created_at, i.created_at + LEAST(\
                         COALESCE(i.keep_ms, app.retention_ms, i.default_keep), \
                         9223372036854775807 - i.created_at) \
                 FROM input i JOIN app ON app.n = i.n \
                 ORDER BY app.app_id, i.event_id, i.n \
                 ON CONFLICT (app_id, event_id) WHERE event_id IS NOT NULL DO NOTHING \
                 RETURNING id, expires_at) \
             SELECT i.n, app.app_id, msg.id IS NOT NULL, msg.expires_at, e.id, e.filter_types, \
                 e.channels, e.disabled, e.filter, e.ordered \
             FROM input i LEFT JOIN app ON app.n = i.n LEFT JOIN msg ON msg.id = i.id \
                 LEFT JOIN endpoints e ON msg.id IS NOT NULL AND e.app_id = app.app_id \
             ORDER BY i.n",
        )
        .await?;
    let params: [&(dyn ToSql + Sync); 10] = [
        &keys,
        &ids,
        &types,
        &event_ids,
        &payloads,
        &channels,
        &tags,
        &created,
        &keeps,
        &default_keeps,
    ];
    // `biased`: the settings (and BEGIN) are sent first.
    let (_, rows) = tokio::try_join!(
        biased;
        tx.batch_execute(bracket.opening()),
        tx.query(&stmt, &params)
    )?;
    // Every stored member's deliveries, planned member by member, then stored together.
    let mut stored = Vec::with_capacity(n);
    let mut planned = Vec::with_capacity(n);
    let mut rows = rows.iter().peekable();
    for (i, g) in members.iter_mut().enumerate() {
        let place = i as i64 + 1;
        let mine: Vec<&Row> =
            std::iter::from_fn(|| rows.next_if(|r| r.get::<_, i64>(0) == place)).collect();
        let Some(first) = mine.first() else {
            return Err(DbError::Postgres(format!(
                "ingest group: no row for message {place}"
            )));
        };
        let app_id: Option<crate::domain::ids::AppId> = first.get(1);
        stored.push(match app_id {
            None => Err(GroupOutcome::NoApp),
            Some(_) if !first.get::<_, bool>(2) => Err(GroupOutcome::Conflict),
            Some(app_id) => {
                g.req.expires_at = first.get(3);
                let endpoints = mine.iter().filter_map(|r| {
                    let id = r.get::<_, Option<String>>(4)?;
                    Some((id, r.get(5), r.get(6), r.get(7), r.get(8), r.get(9)))
                });
                planned.push(plan(&g.req, g.claim, endpoints));
                Ok(app_id)
            }
        });
    }
    let reqs = members.iter().zip(&stored).filter(|(_, s)| s.is_ok());
    let planned = reqs.map(|(g, _)| &g.req).zip(planned).collect();
    let mut ingested = insert_deliveries(tx, planned, owner, bracket)
        .await?
        .into_iter();
    stored
        .into_iter()
        .map(|s| match s {
            Ok(app_id) => ingested
                .next()
                .map(|i| GroupOutcome::Stored(i, app_id))
                .ok_or_else(|| DbError::Postgres("ingest group: no outcome".into())),
            Err(other) => Ok(other),
        })
        .collect()
}

// The stored code of a delivery waiting to be sent.
const PENDING: i16 = DeliveryStatus::Pending.code() as i16;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::IdempotencyKey;
    use crate::domain::model::{AppId, Message, MsgId};
    use std::sync::Arc;

    /// A fresh, migrated database on the test cluster with application `app_1` and `eps`
    /// endpoints (`ep_0`… ; `ep_0` disabled when `first_disabled`); `None` without a cluster.
    async fn database(eps: usize, first_disabled: bool) -> Option<deadpool_postgres::Pool> {
        let (pool, _) = super::super::tests::fresh_database().await?;
        let c = pool.get().await.unwrap();
        c.batch_execute(
            "INSERT INTO applications (id, name, created_at, updated_at) VALUES ('app_1', 'a', 0, 0)",
        )
        .await
        .unwrap();
        for i in 0..eps {
            let disabled = first_disabled && i == 0;
            c.execute(
                "INSERT INTO endpoints (id, app_id, url, disabled, created_at, updated_at) \
                 VALUES ($1, 'app_1', 'http://127.0.0.1:9/', $2, 0, 0)",
                &[&format!("ep_{i}"), &disabled],
            )
            .await
            .unwrap();
        }
        Some(pool)
    }

    fn message(event_id: Option<&str>) -> Message {
        Message {
            id: MsgId::generate(),
            app_id: AppId::from("app_1"),
            event_type: "a.b".into(),
            event_id: event_id.map(str::to_owned),
            payload: Some(Arc::from(r#"{"n": 1.50, "s": "é"}"#)),
            channels: None,
            tags: None,
            created_at: 1000,
        }
    }

    async fn ingest_one(
        pool: &deadpool_postgres::Pool,
        msg: &Message,
        key: Option<&IdempotencyKey>,
        take: bool,
    ) -> DbResult<Ingested> {
        let mut c = pool.get().await.unwrap();
        let tx = c.transaction().await?;
        let body = format!("{{\"id\":\"{}\"}}", msg.id);
        let req = IngestRequest {
            msg,
            only_endpoint: None,
            idempotency: key,
            response: (202, &body),
            lease_until: 31_000,
            due_at: 1000,
            expires_at: 99_000,
            filter_input: Default::default(),
        };
        let out = ingest(&tx, &req, "node_a", &mut |_| take).await?;
        tx.commit().await?;
        Ok(out)
    }

    /// Whether application `id` is there, seen from connection `c`.
    async fn app_is_there(c: &deadpool_postgres::Client, id: &str) -> bool {
        c.query_opt("SELECT 1 FROM applications WHERE id = $1", &[&id])
            .await
            .unwrap()
            .is_some()
    }

    #[tokio::test]
    async fn a_sequence_that_owns_its_transaction_commits_with_its_last_statement_only_once_it_ran()
    {
        let Some(pool) = database(0, false).await else {
            return;
        };
        let (c, other) = (pool.get().await.unwrap(), pool.get().await.unwrap());
        let open = "BEGIN; INSERT INTO applications (id, name, created_at, updated_at) \
                    VALUES ('app_2', 'b', 0, 0)";
        let divide = c.prepare("SELECT 1 / $1::INT").await.unwrap();
        let own = || Bracket::Own(Progress::Open);

        // The last statement fails in PostgreSQL: the COMMIT sent with it rolls back.
        c.batch_execute(open).await.unwrap();
        let mut b = own();
        assert!(b.query_last(&c, &divide, &[&0i32]).await.is_err());
        assert_eq!(b, own(), "the error is the statement's: not committed");
        assert_eq!(super::super::tests::open_xact(&c).await, None);
        assert!(!app_is_there(&other, "app_2").await);

        // Its parameters cannot be encoded, so it is never sent: no COMMIT either, and the
        // transaction is still open for the caller to roll back.
        c.batch_execute(open).await.unwrap();
        let mut b = own();
        assert!(b.query_last(&c, &divide, &[&"zero"]).await.is_err());
        assert!(super::super::tests::open_xact(&c).await.is_some());
        assert!(!app_is_there(&other, "app_2").await);
        c.batch_execute("ROLLBACK").await.unwrap();
        assert!(!app_is_there(&other, "app_2").await);

        // It runs: committed with it.
        c.batch_execute(open).await.unwrap();
        let mut b = own();
        let rows = b.query_last(&c, &divide, &[&1i32]).await.unwrap();
        assert_eq!(rows[0].get::<_, i32>(0), 1);
        assert_eq!(b, Bracket::Own(Progress::Committed));
        assert_eq!(super::super::tests::open_xact(&c).await, None);
        assert!(app_is_there(&other, "app_2").await);

        // Nothing left to send: the COMMIT goes alone.
        c.batch_execute(&open.replace("app_2", "app_4"))
            .await
            .unwrap();
        let mut b = own();
        b.close(&c).await.unwrap();
        assert_eq!(b, Bracket::Own(Progress::Committed));
        assert!(app_is_there(&other, "app_4").await);

        // With the caller's transaction, nothing is committed here.
        let mut c = c;
        let tx = c.transaction().await.unwrap();
        tx.batch_execute(
            "INSERT INTO applications (id, name, created_at, updated_at) \
                          VALUES ('app_3', 'c', 0, 0)",
        )
        .await
        .unwrap();
        let mut b = Bracket::Caller;
        b.query_last(&tx, &divide, &[&1i32]).await.unwrap();
        assert!(!app_is_there(&other, "app_3").await);
        tx.commit().await.unwrap();
        assert!(app_is_there(&other, "app_3").await);
    }

    #[tokio::test]
    async fn the_same_idempotency_key_sent_to_several_nodes_at_once_stores_one_message() {
        let Some(pool) = database(1, false).await else {
            return;
        };
        let key = IdempotencyKey {
            token_id: "tok_1".into(),
            path: "/api/v1/app/app_1/msg".into(),
            key: "k-1".into(),
        };
        let runs: Vec<_> = (0..4)
            .map(|_| {
                let (pool, key) = (pool.clone(), key.clone());
                tokio::spawn(
                    async move { ingest_one(&pool, &message(None), Some(&key), false).await },
                )
            })
            .collect();
        let mut created = Vec::new();
        let mut replayed = Vec::new();
        for run in runs {
            match run.await.unwrap().unwrap() {
                Ingested::Created { .. } => created.push(()),
                Ingested::Replayed { status, body } => replayed.push((status, body)),
            }
        }
        assert_eq!((created.len(), replayed.len()), (1, 3));
        let c = pool.get().await.unwrap();
        let stored: String = c
            .query_one("SELECT id FROM messages", &[])
            .await
            .unwrap()
            .get(0);
        for (status, body) in replayed {
            assert_eq!(status, 202);
            assert_eq!(
                body,
                format!("{{\"id\":\"{stored}\"}}"),
                "the first answer, replayed"
            );
        }
    }

    #[tokio::test]
    async fn the_same_event_id_twice_is_a_conflict_and_payloads_stay_byte_exact() {
        let Some(pool) = database(1, false).await else {
            return;
        };
        ingest_one(&pool, &message(Some("evt-1")), None, false)
            .await
            .unwrap();
        let again = ingest_one(&pool, &message(Some("evt-1")), None, false).await;
        assert!(matches!(again, Err(DbError::Conflict(_))));
        let c = pool.get().await.unwrap();
        let payload: String = c
            .query_one("SELECT payload FROM messages", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(payload, r#"{"n": 1.50, "s": "é"}"#);
    }

    #[tokio::test]
    async fn claimed_deliveries_are_leased_to_the_node_and_disabled_endpoints_skipped() {
        let Some(pool) = database(3, true).await else {
            return;
        };
        let Ingested::Created {
            claimed, unclaimed, ..
        } = ingest_one(&pool, &message(None), None, true).await.unwrap()
        else {
            panic!("not created")
        };
        assert_eq!((claimed.len(), unclaimed), (2, 0));
        let c = pool.get().await.unwrap();
        let rows: Vec<(String, i16, Option<String>)> = c
            .query(
                "SELECT endpoint_id, status, lease_owner FROM deliveries ORDER BY endpoint_id",
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect();
        assert_eq!(
            rows,
            [
                ("ep_0".into(), DeliveryStatus::Skipped.code() as i16, None),
                ("ep_1".into(), PENDING, Some("node_a".into())),
                ("ep_2".into(), PENDING, Some("node_a".into())),
            ]
        );
    }
}
