use super::{
    deliveries::Claimed, idempotency, is_unique_violation, json_col, paged, to_json, DbError,
    DbResult, Page, PageQuery,
};
use crate::domain::ids;
use rusqlite::{params, Connection, OptionalExtension, Row};
use std::sync::Arc;

pub use crate::domain::model::Message;

pub(crate) const COLS: &str =
    "m.id, m.app_id, m.event_type, m.event_id, m.payload, m.channels, m.tags, m.created_at";

pub(crate) fn from_row(r: &Row<'_>) -> rusqlite::Result<Message> {
    Ok(Message {
        id: r.get(0)?,
        app_id: r.get(1)?,
        event_type: r.get(2)?,
        event_id: r.get(3)?,
        payload: r.get::<_, Option<String>>(4)?.map(Arc::from),
        channels: json_col(r.get(5)?).unwrap_or_default(),
        tags: json_col(r.get(6)?).unwrap_or_default(),
        created_at: r.get(7)?,
    })
}

/// What ingest did.
pub enum Ingested {
    /// The message was stored; these deliveries were claimed for immediate sending.
    Created {
        claimed: Vec<Claimed>,
        unclaimed: usize,
        /// Ordered endpoints whose lines got a delivery that may have to be let go once the
        /// transaction has committed (PostgreSQL; SQLite lets it go in the transaction).
        lines: Vec<String>,
    },
    /// The idempotency key was seen before: answer with the stored response.
    Replayed { status: u16, body: String },
}

pub use crate::db::outbox::IngestRequest;
use crate::domain::model::DeliveryStatus;

/// Stores a message and its deliveries (the outbox) and the idempotency record, in the
/// caller's transaction. `claim(endpoint_id)` says whether the dispatcher takes a delivery
/// now (it is then leased) or leaves it for the scheduler.
pub fn ingest(
    c: &Connection,
    req: &IngestRequest<'_>,
    claim: &mut dyn FnMut(&str) -> bool,
) -> DbResult<Ingested> {
    let m = req.msg;
    if let Some(key) = req.idempotency {
        if let Some((status, body)) = idempotency::get(c, key)? {
            return Ok(Ingested::Replayed { status, body });
        }
    }
    c.prepare_cached(
        "INSERT INTO messages (id, app_id, event_type, event_id, payload, channels, tags, created_at, \
         expires_at) VALUES (?,?,?,?,?,?,?,?,?)",
    )?
    .execute(params![
        m.id,
        m.app_id,
        m.event_type,
        m.event_id,
        m.payload.as_deref(),
        m.channels.as_ref().map(to_json),
        m.tags.as_ref().map(to_json),
        m.created_at,
        req.expires_at
    ])
    .map_err(|e| {
        if is_unique_violation(&e) {
            DbError::Conflict("a message with this eventId already exists in this application".into())
        } else {
            e.into()
        }
    })?;

    let mut targets = c.prepare_cached(
        "SELECT id, filter_types, channels, disabled, filter, ordered FROM endpoints WHERE app_id = ?",
    )?;
    let rows = targets
        .query_map([&m.app_id], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, Option<String>>(1)?,
                r.get::<_, Option<String>>(2)?,
                r.get::<_, bool>(3)?,
                r.get::<_, Option<String>>(4)?,
                r.get::<_, bool>(5)?,
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let mut insert = c.prepare_cached(
        "INSERT INTO deliveries (msg_id, endpoint_id, status, next_attempt_at, lease_until, \
             filter_error, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)",
    )?;
    let mut claimed = Vec::new();
    let mut unclaimed = 0;
    for (endpoint_id, filter_types, channels, disabled, filter, ordered) in rows {
        let route = req.wants(
            &endpoint_id,
            filter_types.as_deref(),
            channels.as_deref(),
            filter.as_deref(),
        );
        let Some((status, why)) = route.delivery(disabled) else {
            continue;
        };
        let pending = status == DeliveryStatus::Pending;
        if pending && ordered {
            // It joins the end of the endpoint's line; the scheduler sends it in its turn.
            let lane = super::lanes::last(c, &endpoint_id)? + 1;
            c.prepare_cached(
                "INSERT INTO deliveries (msg_id, endpoint_id, status, lane, parked_due, \
                     created_at, updated_at) VALUES (?1, ?2, 1, ?3, ?4, ?5, ?5)",
            )?
            .execute(params![
                m.id,
                endpoint_id,
                lane,
                (req.due_at > m.created_at).then_some(req.due_at),
                m.created_at
            ])?;
            super::lanes::advance(c, &endpoint_id, m.created_at)?;
            unclaimed += 1;
            continue;
        }
        let take = pending && claim(&endpoint_id);
        let lease = take.then_some(req.lease_until);
        insert.execute(params![
            m.id,
            endpoint_id,
            status.code(),
            req.due_at,
            lease,
            why,
            m.created_at
        ])?;
        if take {
            claimed.push(req.claimed(c.last_insert_rowid(), endpoint_id, None));
        } else if pending {
            unclaimed += 1;
        }
    }
    if let Some(key) = req.idempotency {
        idempotency::put(c, key, req.response.0, req.response.1, m.created_at)?;
    }
    Ok(Ingested::Created {
        claimed,
        unclaimed,
        lines: Vec::new(),
    })
}

/// By id, or else by eventId, within one application.
pub fn get(c: &Connection, app_id: &str, key: &str) -> DbResult<Option<Message>> {
    let mut stmt = c.prepare_cached(&format!(
        "SELECT {COLS} FROM messages m WHERE m.app_id = ?1 AND m.id = ?2 UNION ALL \
         SELECT {COLS} FROM messages m WHERE m.app_id = ?1 AND m.event_id = ?2 LIMIT 1"
    ))?;
    Ok(stmt.query_row([app_id, key], from_row).optional()?)
}

#[derive(Debug, Default, Clone)]
pub struct MessageFilter {
    pub channel: Option<String>,
    pub tag: Option<String>,
    pub event_types: Option<Vec<String>>,
    pub before: Option<i64>,
    pub after: Option<i64>,
}

impl MessageFilter {
    /// SQL conditions on `m` and their parameters.
    pub(crate) fn sql(&self) -> (String, Vec<Box<dyn rusqlite::ToSql>>) {
        let mut cond = String::new();
        let mut params: Vec<Box<dyn rusqlite::ToSql>> = Vec::new();
        if let Some(ch) = &self.channel {
            cond.push_str(" AND EXISTS (SELECT 1 FROM json_each(m.channels) WHERE value = ?)");
            params.push(Box::new(ch.clone()));
        }
        if let Some(tag) = &self.tag {
            cond.push_str(" AND EXISTS (SELECT 1 FROM json_each(m.tags) WHERE value = ?)");
            params.push(Box::new(tag.clone()));
        }
        if let Some(types) = &self.event_types {
            cond.push_str(" AND m.event_type IN (SELECT value FROM json_each(?))");
            params.push(Box::new(to_json(types)));
        }
        if let Some(b) = self.before {
            cond.push_str(" AND m.id < ?");
            params.push(Box::new(ids::lower_bound_at(ids::MESSAGE, b)));
        }
        if let Some(a) = self.after {
            cond.push_str(" AND m.id >= ?");
            params.push(Box::new(ids::lower_bound_at(ids::MESSAGE, a + 1)));
        }
        (cond, params)
    }
}

pub fn list(
    c: &Connection,
    app_id: &str,
    filter: &MessageFilter,
    page: &PageQuery,
) -> DbResult<Page<Message>> {
    let (cond, extra) = filter.sql();
    let mut params: Vec<&dyn rusqlite::ToSql> = vec![&app_id];
    params.extend(extra.iter().map(|b| b.as_ref()));
    paged(
        c,
        &format!("SELECT {COLS} FROM messages m WHERE m.app_id = ?{cond} AND {{page}}"),
        "m.id",
        &params,
        page,
        from_row,
    )
}

/// Purges up to `limit` payloads that expired by `now`, with their attempts' response bodies;
/// messages with a delivery still pending keep theirs. Returns how many were purged.
pub fn purge_expired(c: &Connection, now: i64, limit: usize) -> DbResult<usize> {
    let mut select = c.prepare_cached(
        "SELECT id FROM messages m WHERE payload IS NOT NULL AND expires_at <= ?1 \
         AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.msg_id = m.id AND d.status = 1) LIMIT ?2",
    )?;
    let ids = select
        .query_map(params![now, limit], |r| r.get::<_, String>(0))?
        .collect::<Result<Vec<_>, _>>()?;
    let mut clear = c.prepare_cached("UPDATE messages SET payload = NULL WHERE id = ?")?;
    let mut clear_attempts = c.prepare_cached(
        "UPDATE attempts SET response = NULL, request_headers = NULL, response_headers = NULL \
         WHERE msg_id = ? AND response IS NOT NULL",
    )?;
    for id in &ids {
        clear.execute([id])?;
        clear_attempts.execute([id])?;
    }
    Ok(ids.len())
}

/// Deletes a message's payload at its owner's request: it is never sent again, so its
/// deliveries not made yet are canceled (stored as skipped: the API's "canceled") (how many). Its attempts and counts stay.
pub fn expunge_content(c: &Connection, msg_id: &str, now: i64) -> DbResult<usize> {
    c.prepare_cached("UPDATE messages SET payload = NULL WHERE id = ?")?
        .execute([msg_id])?;
    let canceled = c
        .prepare_cached(
            "UPDATE deliveries SET status = 5, next_attempt_at = NULL, lease_until = NULL, \
                 updated_at = ?2 WHERE msg_id = ?1 AND status = 1 RETURNING endpoint_id, lane",
        )?
        .query_map(params![msg_id, now], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, Option<i64>>(1)?))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    // The lines it waited in go on without it.
    for (endpoint_id, _) in canceled.iter().filter(|(_, lane)| lane.is_some()) {
        super::lanes::advance(c, endpoint_id, now)?;
    }
    Ok(canceled.len())
}

/// Deletes an attempt's response body and headers (what the receiver answered); whether
/// the message had that attempt.
pub fn expunge_attempt_content(c: &Connection, msg_id: &str, attempt_id: &str) -> DbResult<bool> {
    Ok(c.prepare_cached(
        "UPDATE attempts SET response = NULL, response_headers = NULL WHERE id = ? AND msg_id = ?",
    )?
    .execute([attempt_id, msg_id])?
        > 0)
}

/// Gives up to `pages` free pages back to the file system.
pub fn release_free_pages(c: &Connection, pages: u32) -> DbResult<()> {
    c.execute_batch(&format!("PRAGMA incremental_vacuum({pages})"))?;
    Ok(())
}
