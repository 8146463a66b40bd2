//! Console and portal sessions: server-side, identified by a random id whose hash is stored,
//! ended after `IDLE` without a request (a portal session also when its link expires), and
//! kept alive by at most one write a minute. The first admin is created with the setup link.

use crate::db::{AdminSession, App, DbResult, PortalLink, PortalSession, Store};
use crate::domain::secrets::{hash_secret, new_secret};
use crate::domain::time::duration_ms;
use std::time::Duration;

/// How long a session lasts without a request.
pub const IDLE: Duration = Duration::from_secs(12 * 3600);

/// How often a session in use is extended (each extension is a write).
const TOUCH_EVERY_MS: i64 = 60_000;

/// A session just started: the id for its cookie (shown once, stored only hashed).
pub struct Started {
    pub id: String,
}

/// Starts an admin session for `user_id`.
pub async fn start_admin(store: &Store, user_id: &str, now: i64) -> DbResult<Started> {
    let id = new_secret();
    store
        .create_admin_session(
            &hash_secret(&id),
            user_id,
            &new_secret(),
            now,
            now + duration_ms(IDLE),
        )
        .await?;
    Ok(Started { id })
}

/// The live admin session with this id (from its cookie), extended when in use.
pub async fn admin(store: &Store, id: &str, now: i64) -> DbResult<Option<AdminSession>> {
    let Some(session) = store.admin_session(&hash_secret(id), now).await? else {
        return Ok(None);
    };
    if now - session.last_seen_at > TOUCH_EVERY_MS {
        store
            .touch_admin_session(&session.id_hash, now, now + duration_ms(IDLE))
            .await?;
    }
    Ok(Some(session))
}

/// Ends the admin session with this hash (logging out).
pub async fn end_admin(store: &Store, id_hash: &str) -> DbResult<()> {
    store.end_admin_session(id_hash).await
}

/// Creates the first admin with the setup link's token; `None` when an admin exists already
/// or the link is invalid, expired or used. The token is used up either way.
pub async fn create_first_admin(
    store: &Store,
    setup_token: &str,
    username: &str,
    password_hash: &str,
    now: i64,
) -> DbResult<Option<String>> {
    store
        .create_first_admin(&hash_secret(setup_token), username, password_hash, now)
        .await
}

/// Opens a portal link: a session for its application, ending at the latest with the link.
/// `None` when the link is unknown, expired or revoked.
pub async fn open_portal(
    store: &Store,
    link_token: &str,
    now: i64,
) -> DbResult<Option<(Started, PortalLink)>> {
    let Some(link) = store.portal_link(&hash_secret(link_token), now).await? else {
        return Ok(None);
    };
    let id = new_secret();
    let until = (now + duration_ms(IDLE)).min(link.expires_at);
    store
        .create_portal_session(
            &hash_secret(&id),
            &link.token_hash,
            &new_secret(),
            now,
            until,
        )
        .await?;
    Ok(Some((Started { id }, link)))
}

/// The live portal session with this id, with its application, when it may open pages of
/// `app_id` (its own application only); extended when in use (never past its link's expiry).
/// `Ok(Some(Err(())))`: a live session, but for another application (nothing is extended).
pub async fn portal(
    store: &Store,
    id: &str,
    app_id: Option<&str>,
    now: i64,
) -> DbResult<Option<Result<(PortalSession, App), ()>>> {
    let Some((session, app)) = store.portal_session(&hash_secret(id), now).await? else {
        return Ok(None);
    };
    if app_id != Some(session.app_id.as_str()) {
        return Ok(Some(Err(())));
    }
    if now - session.last_seen_at > TOUCH_EVERY_MS {
        let until = (now + duration_ms(IDLE)).min(session.link_expires_at);
        store
            .touch_portal_session(&session.id_hash, now, until)
            .await?;
    }
    Ok(Some(Ok((session, app))))
}
