//! The line an ordered endpoint's messages wait in (migration 0017): its pending deliveries
//! by `lane`; only the first has a due time, the others wait with `next_attempt_at` NULL
//! (and `parked_due`, a `deliverAt` still ahead). Every change to a line ends with
//! [`advance`], which lets the first go when it is waiting.

use super::DbResult;
use rusqlite::{params, Connection, OptionalExtension};

/// The last place taken in an endpoint's line (0 when it is empty).
pub fn last(c: &Connection, endpoint_id: &str) -> DbResult<i64> {
    Ok(c.prepare_cached(
        "SELECT COALESCE(MAX(lane), 0) FROM deliveries \
             WHERE endpoint_id = ? AND status = 1 AND lane IS NOT NULL",
    )?
    .query_row([endpoint_id], |r| r.get(0))?)
}

/// Puts the pending deliveries `ids` of ordered endpoint `endpoint_id` at the end of its
/// line, in the order given (one already in the line keeps its place), each waiting its turn
/// (a due time still ahead is kept for then); then lets the first of the line go. Leased
/// ones (being sent) are left alone. Whether one became due.
pub fn enqueue(c: &Connection, endpoint_id: &str, ids: &[i64], now: i64) -> DbResult<bool> {
    let mut last = last(c, endpoint_id)?;
    let mut park = c.prepare_cached(
        "UPDATE deliveries SET lane = COALESCE(lane, ?1), \
             parked_due = CASE WHEN next_attempt_at IS NULL THEN parked_due \
                 WHEN next_attempt_at > ?2 THEN next_attempt_at END, \
             next_attempt_at = NULL \
         WHERE id = ?3 AND endpoint_id = ?4 AND status = 1 AND lease_until IS NULL RETURNING lane",
    )?;
    for id in ids {
        let lane: Option<i64> = park
            .query_row(params![last + 1, now, id, endpoint_id], |r| r.get(0))
            .optional()?;
        last = last.max(lane.unwrap_or(0));
    }
    advance(c, endpoint_id, now)
}

/// Lets the first of an endpoint's line go when it is waiting (at once, or at its
/// `deliverAt`); whether it did.
pub fn advance(c: &Connection, endpoint_id: &str, now: i64) -> DbResult<bool> {
    Ok(c.prepare_cached(
        "UPDATE deliveries SET next_attempt_at = COALESCE(parked_due, ?2), parked_due = NULL \
         WHERE id = (SELECT id FROM deliveries WHERE endpoint_id = ?1 AND status = 1 \
                         AND lane IS NOT NULL ORDER BY lane LIMIT 1) \
           AND status = 1 AND next_attempt_at IS NULL AND lease_until IS NULL",
    )?
    .execute(params![endpoint_id, now])?
        > 0)
}

/// [`advance`] for every ordered endpoint (after leases were released at start).
pub fn advance_all(c: &Connection, now: i64) -> DbResult<usize> {
    let ids = c
        .prepare_cached("SELECT id FROM endpoints WHERE ordered")?
        .query_map([], |r| r.get::<_, String>(0))?
        .collect::<Result<Vec<_>, _>>()?;
    let mut n = 0;
    for id in ids {
        n += usize::from(advance(c, &id, now)?);
    }
    Ok(n)
}

/// After an endpoint became ordered, or stopped being: its pending deliveries (those not
/// being sent) join a line in the order they were queued, or all fall due as they would
/// have.
pub fn reorder(c: &Connection, endpoint_id: &str, ordered: bool, now: i64) -> DbResult<bool> {
    if ordered {
        let ids = c
            .prepare_cached(
                "SELECT id FROM deliveries WHERE endpoint_id = ? AND status = 1 \
                 AND lane IS NULL AND lease_until IS NULL ORDER BY id",
            )?
            .query_map([endpoint_id], |r| r.get::<_, i64>(0))?
            .collect::<Result<Vec<_>, _>>()?;
        enqueue(c, endpoint_id, &ids, now)
    } else {
        Ok(c.prepare_cached(
            "UPDATE deliveries SET lane = NULL, \
                 next_attempt_at = COALESCE(next_attempt_at, parked_due, ?2), parked_due = NULL \
             WHERE endpoint_id = ?1 AND status = 1 AND lane IS NOT NULL",
        )?
        .execute(params![endpoint_id, now])?
            > 0)
    }
}

/// The first of an ordered endpoint's line, and how many wait in it (itself included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub msg_id: String,
    /// Attempts made: more than 0 means it is failing and holds the line.
    pub attempts: u32,
    pub next_attempt_at: Option<i64>,
    /// Being sent now.
    pub sending: bool,
    /// When its first attempt was made.
    pub since: Option<i64>,
    pub waiting: i64,
}

impl Head {
    /// It failed and holds the others back (rather than being on its way).
    pub fn held(&self) -> bool {
        self.attempts > 0 && !self.sending
    }
}

pub fn head(c: &Connection, endpoint_id: &str) -> DbResult<Option<Head>> {
    let first = c
        .prepare_cached(
            "SELECT msg_id, attempts, next_attempt_at, lease_until IS NOT NULL FROM deliveries \
             WHERE endpoint_id = ? AND status = 1 AND lane IS NOT NULL ORDER BY lane LIMIT 1",
        )?
        .query_row([endpoint_id], |r| {
            Ok((r.get::<_, String>(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })
        .optional()?;
    let Some((msg_id, attempts, next_attempt_at, sending)) = first else {
        return Ok(None);
    };
    let since = c
        .prepare_cached(
            "SELECT MIN(created_at) FROM attempts WHERE msg_id = ? AND endpoint_id = ?",
        )?
        .query_row([&msg_id, endpoint_id], |r| r.get(0))?;
    let waiting = c
        .prepare_cached(
            "SELECT COUNT(*) FROM deliveries WHERE endpoint_id = ? AND status = 1 \
             AND lane IS NOT NULL",
        )?
        .query_row([endpoint_id], |r| r.get(0))?;
    Ok(Some(Head {
        msg_id,
        attempts,
        next_attempt_at,
        sending,
        since,
        waiting,
    }))
}

/// What the owner of an ordered endpoint does about the message that holds its line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unblock {
    /// Give it up (it counts as failed; it can be resent later, at the end of the line).
    Skip,
    /// Try it again now.
    RetryNow,
}

/// Skips, or retries now, message `msg_id` when it is first in the endpoint's line and not
/// being sent; whether it was.
pub fn unblock(
    c: &Connection,
    endpoint_id: &str,
    msg_id: &str,
    what: Unblock,
    now: i64,
) -> DbResult<bool> {
    let set = match what {
        Unblock::Skip => "status = 2, lane = NULL, next_attempt_at = NULL, parked_due = NULL",
        Unblock::RetryNow => "next_attempt_at = ?3, parked_due = NULL, trigger_type = 1",
    };
    let done = c
        .prepare_cached(&format!(
            "UPDATE deliveries SET {set}, updated_at = ?3 \
             WHERE endpoint_id = ?1 AND msg_id = ?2 AND status = 1 AND lease_until IS NULL \
               AND lane = (SELECT MIN(lane) FROM deliveries WHERE endpoint_id = ?1 \
                           AND status = 1 AND lane IS NOT NULL)"
        ))?
        .execute(params![endpoint_id, msg_id, now])?
        > 0;
    advance(c, endpoint_id, now)?;
    Ok(done)
}

/// Up to `limit` deliveries that wait right behind `lane` in an endpoint's line and may go
/// by `now`, leased until `lease_until` (sent one after the other once the first is
/// delivered).
pub(super) fn lease_followers(
    c: &Connection,
    endpoint_id: &str,
    lane: i64,
    limit: usize,
    now: i64,
    lease_until: i64,
) -> DbResult<Vec<super::deliveries::Claimed>> {
    let mut stmt = c.prepare_cached(
        "SELECT d.id, d.msg_id, d.attempts, d.trigger_type, m.event_type, m.payload, d.lane, \
             d.parked_due, d.lease_until \
         FROM deliveries d JOIN messages m ON m.id = d.msg_id \
         WHERE d.endpoint_id = ?1 AND d.status = 1 AND d.lane IS NOT NULL AND d.lane > ?2 \
         ORDER BY d.lane LIMIT ?3",
    )?;
    let rows = stmt.query_map(params![endpoint_id, lane, limit], |r| {
        Ok((
            super::deliveries::Claimed {
                delivery_id: r.get(0)?,
                msg_id: r.get(1)?,
                endpoint_id: endpoint_id.to_owned(),
                attempts: r.get(2)?,
                manual: r.get::<_, i64>(3)? == crate::domain::model::Trigger::Manual.code(),
                event_type: r.get(4)?,
                payload: std::sync::Arc::from(
                    r.get::<_, Option<String>>(5)?
                        .unwrap_or_else(|| "{}".into()),
                ),
                owner: None,
                lane: r.get(6)?,
            },
            r.get::<_, Option<i64>>(7)?,
            r.get::<_, Option<i64>>(8)?,
        ))
    })?;
    let mut out = Vec::new();
    let mut lease = c.prepare_cached("UPDATE deliveries SET lease_until = ? WHERE id = ?")?;
    for row in rows {
        let (d, parked_due, leased) = row?;
        // The line goes on only while the next one is free and may go now.
        if leased.is_some() || parked_due.is_some_and(|t| t > now) {
            break;
        }
        lease.execute(params![lease_until, d.delivery_id])?;
        out.push(d);
    }
    Ok(out)
}
