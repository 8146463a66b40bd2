//! Customer portal links and the sessions they open. Secrets are stored as SHA-256 hashes.

use super::DbResult;
use rusqlite::{params, Connection, OptionalExtension};

/// A link that opens an application's Settings → Webhooks pages for a customer.
#[derive(Debug, Clone)]
pub struct Link {
    pub token_hash: String,
    pub app_id: String,
    pub read_only: bool,
    pub created_at: i64,
    pub expires_at: i64,
}

const LINK_COLS: &str = "token_hash, app_id, read_only, created_at, expires_at";

fn link_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Link> {
    Ok(Link {
        token_hash: r.get(0)?,
        app_id: r.get(1)?,
        read_only: r.get(2)?,
        created_at: r.get(3)?,
        expires_at: r.get(4)?,
    })
}

pub fn insert_link(c: &Connection, l: &Link) -> DbResult<()> {
    c.prepare_cached(
        "INSERT INTO portal_links (token_hash, app_id, read_only, created_at, expires_at) \
         VALUES (?,?,?,?,?)",
    )?
    .execute(params![
        l.token_hash,
        l.app_id,
        l.read_only,
        l.created_at,
        l.expires_at
    ])?;
    Ok(())
}

/// The link with this hash, unless it has expired at `now`.
pub fn link(c: &Connection, token_hash: &str, now: i64) -> DbResult<Option<Link>> {
    Ok(c.prepare_cached(&format!(
        "SELECT {LINK_COLS} FROM portal_links WHERE token_hash = ? AND expires_at > ?"
    ))?
    .query_row(params![token_hash, now], link_from_row)
    .optional()?)
}

/// An application's links that have not expired, newest first.
pub fn live_links(c: &Connection, app_id: &str, now: i64) -> DbResult<Vec<Link>> {
    let mut stmt = c.prepare_cached(&format!(
        "SELECT {LINK_COLS} FROM portal_links \
         WHERE app_id = ? AND expires_at > ? ORDER BY created_at DESC LIMIT 100"
    ))?;
    let rows = stmt.query_map(params![app_id, now], link_from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Revokes a link of this application (its sessions end with it): true when it existed.
pub fn revoke_link(c: &Connection, app_id: &str, token_hash: &str) -> DbResult<bool> {
    Ok(
        c.prepare_cached("DELETE FROM portal_links WHERE app_id = ? AND token_hash = ?")?
            .execute(params![app_id, token_hash])?
            > 0,
    )
}

/// A live portal session: the application it may see and its link's terms.
#[derive(Debug, Clone)]
pub struct Session {
    pub id_hash: String,
    pub app_id: String,
    pub read_only: bool,
    pub csrf: String,
    pub last_seen_at: i64,
    /// When the link that opened it expires; the session never outlives it.
    pub link_expires_at: i64,
}

pub fn insert_session(
    c: &Connection,
    id_hash: &str,
    link_hash: &str,
    csrf: &str,
    now: i64,
    expires_at: i64,
) -> DbResult<()> {
    c.prepare_cached(
        "INSERT INTO portal_sessions (id_hash, link_hash, csrf, created_at, last_seen_at, expires_at) \
         VALUES (?,?,?,?,?,?)",
    )?
    .execute(params![id_hash, link_hash, csrf, now, now, expires_at])?;
    Ok(())
}

/// The session with this hash, unless it or its link has expired at `now`.
pub fn session(c: &Connection, id_hash: &str, now: i64) -> DbResult<Option<Session>> {
    Ok(c.prepare_cached(
        "SELECT s.id_hash, l.app_id, l.read_only, s.csrf, s.last_seen_at, l.expires_at \
         FROM portal_sessions s JOIN portal_links l ON l.token_hash = s.link_hash \
         WHERE s.id_hash = ?1 AND s.expires_at > ?2 AND l.expires_at > ?2",
    )?
    .query_row(params![id_hash, now], |r| {
        Ok(Session {
            id_hash: r.get(0)?,
            app_id: r.get(1)?,
            read_only: r.get(2)?,
            csrf: r.get(3)?,
            last_seen_at: r.get(4)?,
            link_expires_at: r.get(5)?,
        })
    })
    .optional()?)
}

/// Extends an idle session (never past its link); drops expired links and sessions.
pub fn touch_session(c: &Connection, id_hash: &str, now: i64, expires_at: i64) -> DbResult<()> {
    c.prepare_cached(
        "UPDATE portal_sessions SET last_seen_at = ?, expires_at = ? WHERE id_hash = ?",
    )?
    .execute(params![now, expires_at, id_hash])?;
    c.prepare_cached("DELETE FROM portal_sessions WHERE expires_at <= ?")?
        .execute([now])?;
    c.prepare_cached("DELETE FROM portal_links WHERE expires_at <= ?")?
        .execute([now])?;
    Ok(())
}
