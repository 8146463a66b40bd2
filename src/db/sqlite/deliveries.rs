//! The outbox: deliveries due, claimed (leased), and their outcomes.
//!
//! About 450 lines of SQL and 170 of tests that run it against a real database file: the
//! queries that move a delivery through its states read best side by side.

use super::{endpoints, lanes, messages, paged, to_json, DbResult, Page, PageQuery};
use crate::domain::model::{DeliveryStatus, Trigger};
use crate::domain::retry::RetrySchedule;
use rusqlite::{params, Connection, OptionalExtension};
use std::sync::Arc;

// The stored codes, as the SQL here compares and writes them.
pub(super) const SUCCESS: i64 = DeliveryStatus::Success.code();
pub(super) const PENDING: i64 = DeliveryStatus::Pending.code();
const FAIL: i64 = DeliveryStatus::Failed.code();

const TRIGGER_SCHEDULED: i64 = Trigger::Scheduled.code();
const TRIGGER_MANUAL: i64 = Trigger::Manual.code();

/// A delivery the dispatcher holds a lease on.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub delivery_id: i64,
    pub msg_id: String,
    pub endpoint_id: String,
    /// Attempts made before this one.
    pub attempts: u32,
    pub manual: bool,
    pub event_type: String,
    pub payload: Arc<str>,
    /// The node whose lease this is, on a store several nodes share (`None` on SQLite): its
    /// result is written back only while the lease is still that node's.
    pub owner: Option<Arc<str>>,
    /// Its place in its ordered endpoint's line (`None`: the endpoint is not ordered).
    pub lane: Option<i64>,
}

/// Most deliveries of an ordered endpoint's line claimed at once, behind its first (sent one
/// after the other, each once the one before was delivered).
pub const LANE_BATCH: usize = 100;

/// How many of its line may come with the `i`th of `heads` claimed firsts when `taken` are
/// claimed already: what `limit` leaves for it and the firsts after it, at most `LANE_BATCH`.
pub fn follower_room(limit: usize, taken: usize, heads: usize, i: usize) -> usize {
    limit.saturating_sub(taken + heads - i).min(LANE_BATCH)
}

/// Claims up to `limit` due deliveries, skipping `busy` endpoints, by leasing them until
/// `lease_until`.
pub fn claim_due(
    c: &Connection,
    now: i64,
    limit: usize,
    lease_until: i64,
    busy: &[String],
) -> DbResult<Vec<Claimed>> {
    let mut stmt = c.prepare_cached(
        "SELECT d.id, d.msg_id, d.endpoint_id, d.attempts, d.trigger_type, m.event_type, m.payload, \
             d.lane \
         FROM deliveries d JOIN messages m ON m.id = d.msg_id \
         WHERE d.status = 1 AND d.lease_until IS NULL AND d.next_attempt_at <= ? \
           AND d.endpoint_id NOT IN (SELECT value FROM json_each(?)) \
         ORDER BY d.next_attempt_at LIMIT ?",
    )?;
    let rows = stmt
        .query_map(params![now, to_json(&busy), limit], |r| {
            Ok(Claimed {
                delivery_id: r.get(0)?,
                msg_id: r.get(1)?,
                endpoint_id: r.get(2)?,
                attempts: r.get(3)?,
                manual: r.get::<_, i64>(4)? == TRIGGER_MANUAL,
                event_type: r.get(5)?,
                payload: Arc::from(
                    r.get::<_, Option<String>>(6)?
                        .unwrap_or_else(|| "{}".into()),
                ),
                owner: None,
                lane: r.get(7)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let mut lease = c.prepare_cached("UPDATE deliveries SET lease_until = ? WHERE id = ?")?;
    for d in &rows {
        lease.execute(params![lease_until, d.delivery_id])?;
    }
    let mut out = Vec::with_capacity(rows.len());
    let heads = rows.len();
    for (i, d) in rows.into_iter().enumerate() {
        // The first of an ordered endpoint's line comes with those waiting behind it, as many
        // as `limit` leaves room for.
        let room = follower_room(limit, out.len(), heads, i);
        let behind = match d.lane {
            Some(lane) if room > 0 => {
                lanes::lease_followers(c, &d.endpoint_id, lane, room, now, lease_until)?
            }
            _ => Vec::new(),
        };
        out.push(d);
        out.extend(behind);
    }
    Ok(out)
}

/// When the next unclaimed delivery falls due.
pub fn next_due(c: &Connection) -> DbResult<Option<i64>> {
    Ok(c.query_row(
        "SELECT MIN(next_attempt_at) FROM deliveries WHERE status = 1 AND lease_until IS NULL",
        [],
        |r| r.get(0),
    )?)
}

/// Whether delivery `id` is still pending: not canceled meanwhile (its message's content
/// deleted), deleted, nor ended otherwise.
pub fn still_pending(c: &Connection, id: i64) -> DbResult<bool> {
    Ok(
        c.prepare_cached("SELECT 1 FROM deliveries WHERE id = ? AND status = 1")?
            .exists([id])?,
    )
}

/// Makes every leased delivery due again (at start: leases of a previous process are void),
/// and each ordered endpoint's line go on from its first.
pub fn release_all_leases(c: &Connection, now: i64) -> DbResult<usize> {
    let n = c.execute(
        "UPDATE deliveries SET lease_until = NULL WHERE lease_until IS NOT NULL",
        [],
    )?;
    lanes::advance_all(c, now)?;
    Ok(n)
}

/// Ends the leases of claimed deliveries that were not sent (those behind one of an ordered
/// line that failed: they wait their turn again).
pub fn release(c: &Connection, claimed: &[Claimed]) -> DbResult<()> {
    let mut stmt = c.prepare_cached("UPDATE deliveries SET lease_until = NULL WHERE id = ?")?;
    for d in claimed {
        stmt.execute([d.delivery_id])?;
    }
    Ok(())
}

/// The ordered endpoints whose lines a batch of results touched: those of the attempts,
/// skipped and released deliveries that had a place in one, each once and in order.
pub fn lines_touched<'a>(
    attempts: &'a [AttemptResult],
    skipped: &'a [Claimed],
    released: &'a [Claimed],
) -> std::collections::BTreeSet<&'a str> {
    attempts
        .iter()
        .map(|a| &a.delivery)
        .chain(skipped)
        .chain(released)
        .filter(|d| d.lane.is_some())
        .map(|d| d.endpoint_id.as_str())
        .collect()
}

/// Lets each of the `lines` go on from its first (see [`lanes::advance`]); whether one did.
pub fn advance_lanes<'a>(
    c: &Connection,
    lines: impl IntoIterator<Item = &'a str>,
    now: i64,
) -> DbResult<bool> {
    let mut any = false;
    for ep in lines {
        any |= lanes::advance(c, ep, now)?;
    }
    Ok(any)
}

use crate::domain::alerts::{minute_of, Health};
pub use crate::domain::delivery::Outcome;
use crate::domain::delivery::{timed_out, transition, Transition, GONE_REASON};

#[derive(Debug, Clone)]
pub struct AttemptResult {
    pub delivery: Claimed,
    pub attempt_id: String,
    pub url: String,
    pub outcome: Outcome,
    pub status_code: i64,
    pub response: String,
    pub duration_ms: i64,
    pub error: Option<String>,
    pub at: i64,
    pub request_headers: String,
    pub response_headers: String,
    /// The endpoint's own retry schedule, where it has one (else the server's is used).
    pub schedule: Option<Arc<RetrySchedule>>,
    /// Whether the attempt itself is written, as well as what it does to its delivery: not
    /// when the database refused to store it (see the dispatcher's `record_results`).
    pub logged: bool,
}

/// What recording a batch of results changed.
#[derive(Debug, Default)]
pub struct Recorded {
    /// Earliest retry scheduled, if any.
    pub next_due: Option<i64>,
    /// Endpoints that were disabled (410).
    pub disabled: Vec<String>,
    /// What operators are told about (operational webhooks).
    pub notices: Vec<Notice>,
}

/// An event about deliveries that operators are told about.
#[derive(Debug, Clone, PartialEq)]
pub enum Notice {
    /// A message failed its `FAILING_AFTER`-th attempt and will be retried.
    Failing(AttemptNotice),
    /// A message's last attempt failed: no more retries.
    Exhausted(AttemptNotice),
    /// A message that was failing was delivered.
    Recovered(AttemptNotice),
    /// An endpoint was disabled, and why; `automatic` when hookbox did it (a 410, a long run
    /// of failures) rather than its owner.
    Disabled {
        endpoint_id: String,
        reason: String,
        at: i64,
        automatic: bool,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct AttemptNotice {
    pub msg_id: String,
    pub endpoint_id: String,
    pub attempt_id: String,
    pub status_code: i64,
    pub at: i64,
}

/// Records attempts and moves each delivery on: done, retry later, or failed.
pub fn record(
    c: &Connection,
    results: &[AttemptResult],
    schedule: &RetrySchedule,
) -> DbResult<Recorded> {
    let mut out = Recorded::default();
    let mut insert = c.prepare_cached(
        "INSERT INTO attempts (id, msg_id, endpoint_id, url, status, response_status_code, response, \
         response_duration_ms, error, trigger_type, created_at, request_headers, response_headers) \
         VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
    )?;
    // Only a delivery still pending: not deleted with its message, endpoint or application
    // while it was being sent, nor canceled (its message's content was deleted).
    let mut update = c.prepare_cached(
        "UPDATE deliveries SET status = ?, attempts = ?, next_attempt_at = ?, lease_until = NULL, \
         trigger_type = 0, updated_at = ? WHERE id = ? AND status = 1",
    )?;
    let mut failing: std::collections::BTreeMap<&str, Option<i64>> =
        std::collections::BTreeMap::new();
    let mut health: std::collections::BTreeMap<(&str, i64), Health> =
        std::collections::BTreeMap::new();
    for r in results {
        let d = &r.delivery;
        let schedule = r.schedule.as_deref().unwrap_or(schedule);
        let transition = transition(d.attempts, &r.outcome, schedule, r.at);
        let (status, next) = match transition {
            Transition::Delivered { .. } => (SUCCESS, None),
            Transition::DisableEndpoint | Transition::Exhausted => (FAIL, None),
            Transition::Retry { due, .. } => (PENDING, Some(due)),
        };
        let attempts = d.attempts.saturating_add(1);
        if update.execute(params![status, attempts, next, r.at, d.delivery_id])? == 0 {
            continue;
        }
        let ok = matches!(r.outcome, Outcome::Success);
        if r.logged {
            insert.execute(params![
                r.attempt_id,
                d.msg_id,
                d.endpoint_id,
                r.url,
                if ok { SUCCESS } else { FAIL },
                r.status_code,
                r.response,
                r.duration_ms,
                r.error,
                if d.manual {
                    TRIGGER_MANUAL
                } else {
                    TRIGGER_SCHEDULED
                },
                r.at,
                r.request_headers,
                r.response_headers
            ])?;
        }
        let notice = AttemptNotice {
            msg_id: d.msg_id.clone(),
            endpoint_id: d.endpoint_id.clone(),
            attempt_id: r.attempt_id.clone(),
            status_code: r.status_code,
            at: r.at,
        };
        failing.insert(d.endpoint_id.as_str(), (!ok).then_some(r.at));
        health
            .entry((d.endpoint_id.as_str(), minute_of(r.at)))
            .or_default()
            .count(
                ok,
                r.status_code,
                timed_out(r.status_code, r.error.as_deref()),
                r.at,
            );
        match transition {
            Transition::Delivered { recovered } => {
                if recovered {
                    out.notices.push(Notice::Recovered(notice));
                }
            }
            Transition::DisableEndpoint => {
                if endpoints::disable(c, &d.endpoint_id, GONE_REASON, r.at)? {
                    out.disabled.push(d.endpoint_id.clone());
                    out.notices.push(Notice::Disabled {
                        endpoint_id: d.endpoint_id.clone(),
                        reason: GONE_REASON.into(),
                        at: r.at,
                        automatic: true,
                    });
                }
            }
            Transition::Retry { due, failing } => {
                out.next_due = Some(out.next_due.map_or(due, |n| n.min(due)));
                if failing {
                    out.notices.push(Notice::Failing(notice));
                }
            }
            Transition::Exhausted => out.notices.push(Notice::Exhausted(notice)),
        }
    }
    // Each endpoint's latest outcome in this batch starts or ends its run of failures.
    for (endpoint_id, failed_at) in failing {
        endpoints::set_failing(c, endpoint_id, failed_at)?;
    }
    for ((endpoint_id, minute), h) in health {
        super::alerts::add_health(c, endpoint_id, minute, &h)?;
    }
    Ok(out)
}

/// Marks a claimed delivery as skipped (its endpoint is disabled) without an attempt.
pub fn skip(c: &Connection, delivery_id: i64, now: i64) -> DbResult<()> {
    c.prepare_cached(
        "UPDATE deliveries SET status = 5, lease_until = NULL, updated_at = ? WHERE id = ? \
         AND status = 1",
    )?
    .execute(params![now, delivery_id])?;
    Ok(())
}

/// Marks every unclaimed pending delivery of a disabled endpoint as skipped.
pub fn skip_pending(c: &Connection, endpoint_id: &str, now: i64) -> DbResult<usize> {
    Ok(c.prepare_cached(
        "UPDATE deliveries SET status = 5, updated_at = ? WHERE endpoint_id = ? AND status = 1 AND lease_until IS NULL",
    )?
    .execute(params![now, endpoint_id])?)
}

/// Resend: one more manual attempt, now, of the message's delivery to the endpoint (nothing
/// while it is being sent, or when the message's payload is gone). `false` when the message
/// has no delivery to that endpoint: it was never for it.
pub fn resend(
    c: &Connection,
    msg_id: &str,
    endpoint_id: &str,
    max_attempts: u32,
    now: i64,
) -> DbResult<bool> {
    let last = i64::from(max_attempts.saturating_sub(1));
    let id: Option<i64> = c
        .prepare_cached(
            "UPDATE deliveries SET \
               attempts = CASE WHEN status = 1 THEN attempts ELSE ?3 END, \
               lane = CASE WHEN status = 1 THEN lane END, \
               status = 1, next_attempt_at = ?4, trigger_type = 1, updated_at = ?4, filter_error = NULL \
             WHERE msg_id = ?1 AND endpoint_id = ?2 AND lease_until IS NULL \
               AND EXISTS (SELECT 1 FROM messages WHERE id = ?1 AND payload IS NOT NULL) \
             RETURNING id",
        )?
        .query_row(params![msg_id, endpoint_id, last, now], |r| r.get(0))
        .optional()?;
    // On an ordered endpoint it keeps its place in the line, or joins its end.
    if let Some(id) = id {
        if endpoints::is_ordered(c, endpoint_id)? {
            lanes::enqueue(c, endpoint_id, &[id], now)?;
        }
        return Ok(true);
    }
    Ok(
        c.prepare_cached("SELECT 1 FROM deliveries WHERE msg_id = ?1 AND endpoint_id = ?2")?
            .exists(params![msg_id, endpoint_id])?,
    )
}

/// Recover: failed deliveries of an endpoint in a time range get a fresh schedule (those whose
/// message still has its payload).
pub fn recover(
    c: &Connection,
    endpoint_id: &str,
    since: i64,
    until: Option<i64>,
    now: i64,
) -> DbResult<usize> {
    let mut ids = c
        .prepare_cached(
            "UPDATE deliveries SET status = 1, attempts = 0, next_attempt_at = ?4, trigger_type = 1, \
               updated_at = ?4, lane = NULL \
             WHERE endpoint_id = ?1 AND status = 2 AND created_at >= ?2 AND created_at < ?3 \
               AND EXISTS (SELECT 1 FROM messages m WHERE m.id = deliveries.msg_id AND m.payload IS NOT NULL) \
             RETURNING id",
        )?
        .query_map(
            params![endpoint_id, since, until.unwrap_or(i64::MAX), now],
            |r| r.get::<_, i64>(0),
        )?
        .collect::<Result<Vec<_>, _>>()?;
    // In the order they were first queued.
    ids.sort_unstable();
    requeued(c, endpoint_id, ids, now)
}

/// After deliveries `ids` of an endpoint were queued again: on an ordered endpoint they join
/// the end of its line, in the order given. How many.
fn requeued(c: &Connection, endpoint_id: &str, ids: Vec<i64>, now: i64) -> DbResult<usize> {
    if !ids.is_empty() && endpoints::is_ordered(c, endpoint_id)? {
        lanes::enqueue(c, endpoint_id, &ids, now)?;
    }
    Ok(ids.len())
}

/// Replay missing: messages in a time range that this endpoint accepts and never attempted
/// (no delivery row, skipped while it was disabled, or filtered out by its payload filter
/// then, if it takes them now) are queued for it.
pub fn replay_missing(
    c: &Connection,
    ep: &endpoints::Endpoint,
    since: i64,
    until: Option<i64>,
    now: i64,
) -> DbResult<usize> {
    let mut stmt = c.prepare_cached(&format!(
        "SELECT {} FROM messages m LEFT JOIN deliveries d ON d.msg_id = m.id AND d.endpoint_id = ?2 \
         WHERE m.app_id = ?1 AND m.created_at >= ?3 AND m.created_at < ?4 AND (d.id IS NULL OR d.status IN (5, 6)) \
         ORDER BY m.created_at, m.id",
        messages::COLS
    ))?;
    let msgs = stmt
        .query_map(
            params![ep.app_id, ep.id, since, until.unwrap_or(i64::MAX)],
            messages::from_row,
        )?
        .collect::<Result<Vec<_>, _>>()?;
    let mut upsert = c.prepare_cached(
        "INSERT INTO deliveries (msg_id, endpoint_id, status, attempts, next_attempt_at, trigger_type, created_at, updated_at) \
         VALUES (?1, ?2, 1, 0, ?3, 1, ?3, ?3) \
         ON CONFLICT (msg_id, endpoint_id) DO UPDATE SET status = 1, attempts = 0, next_attempt_at = ?3, \
           trigger_type = 1, updated_at = ?3, filter_error = NULL, lane = NULL \
         RETURNING id",
    )?;
    let mut ids = Vec::new();
    // A message whose payload is gone cannot be sent again.
    for m in msgs.iter().filter(|m| m.payload.is_some() && ep.takes(m)) {
        ids.push(upsert.query_row(params![m.id, ep.id, now], |r| r.get(0))?);
    }
    // In the order the messages were accepted (ids are sorted by time).
    requeued(c, &ep.id, ids, now)
}

/// How many messages were skipped while the endpoint was disabled.
pub fn count_skipped(c: &Connection, endpoint_id: &str) -> DbResult<i64> {
    Ok(
        c.prepare_cached("SELECT COUNT(*) FROM deliveries WHERE endpoint_id = ? AND status = 5")?
            .query_row([endpoint_id], |r| r.get(0))?,
    )
}

#[derive(Debug, Default, Clone, Copy)]
pub struct Stats {
    pub success: i64,
    pub pending: i64,
    pub sending: i64,
    pub fail: i64,
    pub canceled: i64,
    /// Not sent: the endpoint's payload filter did not take them.
    pub filtered: i64,
}

impl Stats {
    /// Counts `n` deliveries in `status` (leased or not).
    pub(crate) fn add(&mut self, status: DeliveryStatus, leased: bool, n: i64) {
        match (status, leased) {
            (DeliveryStatus::Success, _) => self.success += n,
            (DeliveryStatus::Pending | DeliveryStatus::Sending, true) => self.sending += n,
            (DeliveryStatus::Pending | DeliveryStatus::Sending, false) => self.pending += n,
            (DeliveryStatus::Failed, _) => self.fail += n,
            (DeliveryStatus::Skipped, _) => self.canceled += n,
            (DeliveryStatus::Filtered, _) => self.filtered += n,
        }
    }
}

pub fn stats(
    c: &Connection,
    endpoint_id: &str,
    since: Option<i64>,
    until: Option<i64>,
) -> DbResult<Stats> {
    let mut stmt = c.prepare_cached(
        "SELECT status, lease_until IS NOT NULL, COUNT(*) FROM deliveries \
         WHERE endpoint_id = ? AND created_at >= ? AND created_at < ? GROUP BY 1, 2",
    )?;
    let mut s = Stats::default();
    let rows = stmt.query_map(
        params![endpoint_id, since.unwrap_or(0), until.unwrap_or(i64::MAX)],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    for row in rows {
        let (status, leased, n) = row?;
        s.add(status, leased, n);
    }
    Ok(s)
}

/// A message as one endpoint saw it.
pub struct EndpointMessage {
    pub msg: messages::Message,
    pub status: crate::domain::model::DeliveryStatus,
    pub next_attempt_at: Option<i64>,
    /// Why the endpoint's filter could not tell, when it filtered the message out so.
    pub filter_error: Option<String>,
}

pub fn list_for_endpoint(
    c: &Connection,
    endpoint_id: &str,
    status: Option<crate::domain::model::DeliveryStatus>,
    filter: &messages::MessageFilter,
    page: &PageQuery,
) -> DbResult<Page<EndpointMessage>> {
    let (cond, extra) = filter.sql();
    let status_cond = if status.is_some() {
        " AND d.status IN (?, ?)"
    } else {
        ""
    };
    let listed = status.map(DeliveryStatus::listed);
    let mut params: Vec<&dyn rusqlite::ToSql> = vec![&endpoint_id];
    if let Some([a, b]) = &listed {
        params.push(a);
        params.push(b);
    }
    params.extend(extra.iter().map(|b| b.as_ref()));
    paged(
        c,
        &format!(
            "SELECT {}, d.status, d.next_attempt_at, d.filter_error FROM deliveries d JOIN messages m ON m.id = d.msg_id \
             WHERE d.endpoint_id = ?{status_cond}{cond} AND {{page}}",
            messages::COLS
        ),
        "m.id",
        &params,
        page,
        |r| {
            Ok(EndpointMessage {
                msg: messages::from_row(r)?,
                status: r.get(8)?,
                next_attempt_at: r.get(9)?,
                filter_error: r.get(10)?,
            })
        },
    )
}

/// An endpoint as one message reached it.
pub struct MessageEndpoint {
    pub endpoint: endpoints::Endpoint,
    pub status: crate::domain::model::DeliveryStatus,
    pub next_attempt_at: Option<i64>,
    /// Why the endpoint's filter could not tell, when it filtered the message out so.
    pub filter_error: Option<String>,
}

pub fn list_for_message(
    c: &Connection,
    key: &crate::domain::crypto::MainKey,
    msg_id: &str,
    page: &PageQuery,
) -> DbResult<Page<MessageEndpoint>> {
    let eps = paged(
        c,
        "SELECT d.endpoint_id, d.status, d.next_attempt_at, d.filter_error FROM deliveries d WHERE d.msg_id = ? AND {page}",
        "d.endpoint_id",
        &[&msg_id],
        page,
        |r| Ok((r.get::<_, String>(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
    )?;
    let mut items = Vec::with_capacity(eps.items.len());
    for (id, status, next_attempt_at, filter_error) in eps.items {
        if let Some(endpoint) = endpoints::get_by_id(c, key, &id)? {
            items.push(MessageEndpoint {
                endpoint,
                status,
                next_attempt_at,
                filter_error,
            });
        }
    }
    Ok(Page {
        items,
        done: eps.done,
    })
}

/// The delivery of one message to one endpoint: (status, attempts, next attempt).
#[cfg(test)]
fn get(
    c: &Connection,
    msg_id: &str,
    endpoint_id: &str,
) -> DbResult<Option<(i64, u32, Option<i64>)>> {
    use rusqlite::OptionalExtension as _;
    Ok(c.prepare_cached("SELECT status, attempts, next_attempt_at FROM deliveries WHERE msg_id = ? AND endpoint_id = ?")?
        .query_row([msg_id, endpoint_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::sqlite::{apps, endpoints, messages};
    use std::time::Duration;

    fn seeded() -> (tempfile::TempDir, Connection, Vec<Claimed>) {
        let dir = tempfile::tempdir().unwrap();
        let c = crate::db::sqlite::open_direct(&dir.path().join("t.db")).unwrap();
        let app = apps::App {
            id: "app_1".into(),
            uid: None,
            name: "a".into(),
            rate_limit: None,
            retention_ms: None,
            metadata: Default::default(),
            created_at: 0,
            updated_at: 0,
        };
        apps::insert(&c, &app).unwrap();
        for id in ["ep_1", "ep_2"] {
            let ep = crate::domain::model::sample_endpoint(id, "app_1");
            let key = crate::domain::crypto::MainKey::generate();
            endpoints::insert(&c, &key, &ep, "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD").unwrap();
        }
        let (claimed, _) = ingest_one(&c, "msg_1");
        (dir, c, claimed)
    }

    /// Ingests a message of type `a.b` into `app_1`: what was claimed, and how many were not.
    fn ingest_one(c: &Connection, id: &str) -> (Vec<Claimed>, usize) {
        let msg = messages::Message {
            id: id.into(),
            app_id: "app_1".into(),
            event_type: "a.b".into(),
            event_id: None,
            payload: Some(Arc::from("{}")),
            channels: None,
            tags: None,
            created_at: 0,
        };
        let req = messages::IngestRequest {
            msg: &msg,
            only_endpoint: None,
            idempotency: None,
            response: (202, "{}"),
            lease_until: 1,
            due_at: 0,
            expires_at: 1,
            filter_input: Default::default(),
        };
        match messages::ingest(c, &req, &mut |_| true).unwrap() {
            messages::Ingested::Created {
                claimed, unclaimed, ..
            } => (claimed, unclaimed),
            messages::Ingested::Replayed { .. } => panic!("created"),
        }
    }

    #[test]
    fn an_endpoint_filter_that_cannot_be_read_matches_nothing_rather_than_everything() {
        let (_dir, c, _) = seeded();
        c.execute(
            "UPDATE endpoints SET filter_types = 'not json', channels = '[' WHERE id = 'ep_2'",
            [],
        )
        .unwrap();
        let (claimed, unclaimed) = ingest_one(&c, "msg_2");
        let to: Vec<&str> = claimed.iter().map(|d| d.endpoint_id.as_str()).collect();
        assert_eq!((to, unclaimed), (vec!["ep_1"], 0));
        let key = crate::domain::crypto::MainKey::generate();
        let ep = endpoints::get_by_id(&c, &key, "ep_2").unwrap().unwrap();
        assert_eq!(ep.filter_types, Some(Vec::new()));
        assert!(!ep.accepts("a.b", None));
    }

    fn result(d: &Claimed, outcome: Outcome) -> AttemptResult {
        AttemptResult {
            delivery: d.clone(),
            attempt_id: crate::domain::ids::new_id("atmpt"),
            url: "http://127.0.0.1/".into(),
            outcome,
            status_code: 200,
            response: String::new(),
            duration_ms: 1,
            error: None,
            at: 10,
            request_headers: String::new(),
            schedule: None,
            response_headers: String::new(),
            logged: true,
        }
    }

    #[test]
    fn results_for_deleted_deliveries_are_dropped_without_failing_the_batch() {
        let (_dir, c, claimed) = seeded();
        assert_eq!(claimed.len(), 2);
        endpoints::delete(&c, &claimed[0].endpoint_id).unwrap();
        let schedule = RetrySchedule {
            delays: vec![Duration::ZERO],
            jitter: 0.0,
        };
        let results: Vec<_> = claimed
            .iter()
            .map(|d| result(d, Outcome::Success))
            .collect();
        record(&c, &results, &schedule).unwrap();
        let status: i64 = c
            .query_row(
                "SELECT status FROM deliveries WHERE id = ?",
                [claimed[1].delivery_id],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(status, SUCCESS);
    }

    #[test]
    fn a_result_for_a_delivery_canceled_while_it_was_sent_is_dropped() {
        let (_dir, c, claimed) = seeded();
        // Its message's content is deleted while it is in flight.
        messages::expunge_content(&c, &claimed[0].msg_id, 5).unwrap();
        let schedule = RetrySchedule {
            delays: vec![Duration::ZERO, Duration::from_secs(60)],
            jitter: 0.0,
        };
        let failed = result(&claimed[0], Outcome::Failure { retry_after: None });
        record(&c, &[failed], &schedule).unwrap();
        let (status, next): (i64, Option<i64>) = c
            .query_row(
                "SELECT status, next_attempt_at FROM deliveries WHERE id = ?",
                [claimed[0].delivery_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!((status, next), (5, None), "still canceled, no retry");
        let logged: i64 = c
            .query_row("SELECT COUNT(*) FROM attempts", [], |r| r.get(0))
            .unwrap();
        assert_eq!(logged, 0, "its attempt is dropped with it");
    }

    #[test]
    fn failures_are_rescheduled_until_the_schedule_ends() {
        let (_dir, c, claimed) = seeded();
        let schedule = RetrySchedule {
            delays: vec![Duration::ZERO, Duration::from_secs(5)],
            jitter: 0.0,
        };
        let failed = |d: &Claimed| result(d, Outcome::Failure { retry_after: None });
        let rec = record(&c, &[failed(&claimed[0])], &schedule).unwrap();
        assert_eq!(rec.next_due, Some(10 + 5000));
        let row = get(&c, "msg_1", &claimed[0].endpoint_id).unwrap().unwrap();
        assert_eq!(row, (PENDING, 1, Some(5010)));
        let again = Claimed {
            attempts: 1,
            ..claimed[0].clone()
        };
        record(&c, &[failed(&again)], &schedule).unwrap();
        assert_eq!(
            get(&c, "msg_1", &claimed[0].endpoint_id)
                .unwrap()
                .unwrap()
                .0,
            FAIL
        );
    }
}
