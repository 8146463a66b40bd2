//! API tokens, stored only as SHA-256 hashes.

use super::DbResult;
use rusqlite::{params, Connection, OptionalExtension};

#[derive(Debug, Clone)]
pub struct Token {
    pub id: String,
    pub name: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

pub fn insert(c: &Connection, id: &str, name: &str, hash: &str, now: i64) -> DbResult<()> {
    c.execute(
        "INSERT INTO api_tokens (id, name, token_hash, created_at) VALUES (?,?,?,?)",
        params![id, name, hash, now],
    )?;
    Ok(())
}

/// The id of the unrevoked token with this hash, and when it was last used.
pub fn find_active(c: &Connection, hash: &str) -> DbResult<Option<(String, Option<i64>)>> {
    let mut stmt = c.prepare_cached(
        "SELECT id, last_used_at FROM api_tokens WHERE token_hash = ? AND revoked_at IS NULL",
    )?;
    Ok(stmt
        .query_row([hash], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?)
}

/// Notes the token's use at `now`, unless one after `since` is noted already.
pub fn touch(c: &Connection, id: &str, now: i64, since: i64) -> DbResult<()> {
    c.prepare_cached(
        "UPDATE api_tokens SET last_used_at = ? \
         WHERE id = ? AND (last_used_at IS NULL OR last_used_at < ?)",
    )?
    .execute(params![now, id, since])?;
    Ok(())
}

pub fn list(c: &Connection) -> DbResult<Vec<Token>> {
    let mut stmt =
        c.prepare("SELECT id, name, created_at, last_used_at, revoked_at FROM api_tokens ORDER BY created_at, id")?;
    let rows = stmt
        .query_map([], |r| {
            Ok(Token {
                id: r.get(0)?,
                name: r.get(1)?,
                created_at: r.get(2)?,
                last_used_at: r.get(3)?,
                revoked_at: r.get(4)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// Revokes by id or name; returns how many tokens were revoked.
/// Revokes the token `id` if it is active; how many (0 or 1).
pub fn revoke(c: &Connection, id: &str, now: i64) -> DbResult<usize> {
    Ok(c.execute(
        "UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
        params![now, id],
    )?)
}

pub fn count_active(c: &Connection) -> DbResult<i64> {
    Ok(c.query_row(
        "SELECT COUNT(*) FROM api_tokens WHERE revoked_at IS NULL",
        [],
        |r| r.get(0),
    )?)
}
