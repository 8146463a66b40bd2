//! Stored responses for `Idempotency-Key` replays.

use super::DbResult;
use rusqlite::{params, Connection, OptionalExtension};

#[derive(Debug, Clone)]
pub struct Key {
    pub token_id: String,
    pub path: String,
    pub key: String,
}

pub fn get(c: &Connection, k: &Key) -> DbResult<Option<(u16, String)>> {
    let mut stmt =
        c.prepare_cached("SELECT status_code, body FROM idempotency_keys WHERE token_id = ? AND path = ? AND key = ?")?;
    Ok(stmt
        .query_row(params![k.token_id, k.path, k.key], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()?)
}

pub fn put(c: &Connection, k: &Key, status: u16, body: &str, now: i64) -> DbResult<()> {
    c.prepare_cached(
        "INSERT OR IGNORE INTO idempotency_keys (token_id, path, key, status_code, body, created_at) \
         VALUES (?,?,?,?,?,?)",
    )?
    .execute(params![k.token_id, k.path, k.key, status, body, now])?;
    Ok(())
}

/// Deletes up to `limit` records created before `cutoff`; returns how many.
pub fn purge(c: &Connection, cutoff: i64, limit: usize) -> DbResult<usize> {
    Ok(c.prepare_cached(
        "DELETE FROM idempotency_keys WHERE rowid IN \
         (SELECT rowid FROM idempotency_keys WHERE created_at < ? LIMIT ?)",
    )?
    .execute(params![cutoff, limit])?)
}
