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

/// Stored responses sealed under the main key (see `http::api::idempotent_secret`):
/// `(row id, path, sealed body)`.
pub fn sealed(c: &Connection) -> DbResult<Vec<(i64, String, String)>> {
    let pattern = format!("{}%", crate::domain::crypto::SEALED_PREFIX);
    let mut stmt = c.prepare("SELECT rowid, path, body FROM idempotency_keys WHERE body LIKE ?")?;
    let rows = stmt
        .query_map([pattern], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

pub fn set_body(c: &Connection, row_id: i64, body: &str) -> DbResult<()> {
    c.prepare_cached("UPDATE idempotency_keys SET body = ? WHERE rowid = ?")?
        .execute(params![body, row_id])?;
    Ok(())
}

/// Deletes the stored replays of secret rotations kept in plaintext by older versions (the
/// replay is lost; the rotation itself stands); returns how many.
pub fn delete_plaintext_secret_replays(c: &Connection) -> DbResult<usize> {
    let pattern = format!("{}%", crate::domain::crypto::SEALED_PREFIX);
    Ok(c.prepare(
        "DELETE FROM idempotency_keys WHERE path LIKE '%/secret/rotate' AND body NOT LIKE ?",
    )?
    .execute([pattern])?)
}

pub fn delete_row(c: &Connection, row_id: i64) -> DbResult<()> {
    c.prepare_cached("DELETE FROM idempotency_keys WHERE rowid = ?")?
        .execute([row_id])?;
    Ok(())
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
