//! Customer portal links and the sessions they open. Secrets are stored as SHA-256 hashes.

use super::super::DbResult;
use crate::db::{PortalLink as Link, PortalSession as Session};
use deadpool_postgres::GenericClient;
use tokio_postgres::Row;

const LINK_COLS: &str = "token_hash, app_id, read_only, created_at, expires_at";

fn link_from_row(r: &Row) -> DbResult<Link> {
    Ok(Link {
        token_hash: r.try_get(0)?,
        app_id: r.try_get(1)?,
        read_only: r.try_get(2)?,
        created_at: r.try_get(3)?,
        expires_at: r.try_get(4)?,
    })
}

pub async fn insert_link(c: &impl GenericClient, l: &Link) -> DbResult<()> {
    let stmt = c
        .prepare_cached(
            "INSERT INTO portal_links (token_hash, app_id, read_only, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .await?;
    c.execute(
        &stmt,
        &[
            &l.token_hash,
            &l.app_id,
            &l.read_only,
            &l.created_at,
            &l.expires_at,
        ],
    )
    .await?;
    Ok(())
}

/// The link with this hash, unless it has expired at `now`.
pub async fn link(c: &impl GenericClient, token_hash: &str, now: i64) -> DbResult<Option<Link>> {
    let stmt = c
        .prepare_cached(&format!(
            "SELECT {LINK_COLS} FROM portal_links WHERE token_hash = $1 AND expires_at > $2"
        ))
        .await?;
    c.query_opt(&stmt, &[&token_hash, &now])
        .await?
        .as_ref()
        .map(link_from_row)
        .transpose()
}

/// An application's links that have not expired, newest first.
pub async fn live_links(c: &impl GenericClient, app_id: &str, now: i64) -> DbResult<Vec<Link>> {
    let stmt = c
        .prepare_cached(&format!(
            "SELECT {LINK_COLS} FROM portal_links \
             WHERE app_id = $1 AND expires_at > $2 ORDER BY created_at DESC LIMIT 100"
        ))
        .await?;
    c.query(&stmt, &[&app_id, &now])
        .await?
        .iter()
        .map(link_from_row)
        .collect()
}

/// Revokes a link of this application (its sessions end with it): true when it existed.
pub async fn revoke_link(c: &impl GenericClient, app_id: &str, token_hash: &str) -> DbResult<bool> {
    let stmt = c
        .prepare_cached("DELETE FROM portal_links WHERE app_id = $1 AND token_hash = $2")
        .await?;
    Ok(c.execute(&stmt, &[&app_id, &token_hash]).await? > 0)
}

pub async fn insert_session(
    c: &impl GenericClient,
    id_hash: &str,
    link_hash: &str,
    csrf: &str,
    now: i64,
    expires_at: i64,
) -> DbResult<()> {
    let stmt = c
        .prepare_cached(
            "INSERT INTO portal_sessions (id_hash, link_hash, csrf, created_at, last_seen_at, \
             expires_at) VALUES ($1, $2, $3, $4, $4, $5)",
        )
        .await?;
    c.execute(&stmt, &[&id_hash, &link_hash, &csrf, &now, &expires_at])
        .await?;
    Ok(())
}

/// The session with this hash, unless it or its link has expired at `now`.
pub async fn session(c: &impl GenericClient, id_hash: &str, now: i64) -> DbResult<Option<Session>> {
    let stmt = c
        .prepare_cached(
            "SELECT s.id_hash, l.app_id, l.read_only, s.csrf, s.last_seen_at, l.expires_at \
             FROM portal_sessions s JOIN portal_links l ON l.token_hash = s.link_hash \
             WHERE s.id_hash = $1 AND s.expires_at > $2 AND l.expires_at > $2",
        )
        .await?;
    c.query_opt(&stmt, &[&id_hash, &now])
        .await?
        .map(|r| {
            Ok(Session {
                id_hash: r.try_get(0)?,
                app_id: r.try_get(1)?,
                read_only: r.try_get(2)?,
                csrf: r.try_get(3)?,
                last_seen_at: r.try_get(4)?,
                link_expires_at: r.try_get(5)?,
            })
        })
        .transpose()
}

/// Extends an idle session (never past its link); drops expired links and sessions. Rows
/// another node is dropping at the same time are left to it (`SKIP LOCKED`), so nodes
/// cleaning up together neither wait on nor deadlock with each other.
pub async fn touch_session(
    c: &impl GenericClient,
    id_hash: &str,
    now: i64,
    expires_at: i64,
) -> DbResult<()> {
    let stmt = c
        .prepare_cached(
            "UPDATE portal_sessions SET last_seen_at = $1, expires_at = $2 WHERE id_hash = $3",
        )
        .await?;
    c.execute(&stmt, &[&now, &expires_at, &id_hash]).await?;
    let stmt = c
        .prepare_cached(
            "DELETE FROM portal_sessions WHERE id_hash IN (SELECT id_hash FROM portal_sessions \
             WHERE expires_at <= $1 FOR UPDATE SKIP LOCKED)",
        )
        .await?;
    c.execute(&stmt, &[&now]).await?;
    let stmt = c
        .prepare_cached(
            "DELETE FROM portal_links WHERE token_hash IN (SELECT token_hash FROM portal_links \
             WHERE expires_at <= $1 FOR UPDATE SKIP LOCKED)",
        )
        .await?;
    c.execute(&stmt, &[&now]).await?;
    Ok(())
}
