//! Customer portal links: expiring links that open one application's webhook pages.

use crate::db::{DbResult, PortalLink, Store};
use crate::domain::secrets::{hash_secret, new_secret};
use std::time::Duration;

/// The longest a link may live.
pub const MAX_TTL: Duration = Duration::from_secs(365 * 24 * 3600);

/// Where a link's token is opened, under the server's public address.
pub const OPEN_PATH: &str = "/portal/open/";

/// A new link for `app_id`, valid for `ttl` (at most [`MAX_TTL`]): the secret token, which is
/// stored only hashed.
pub async fn create_link(
    store: &Store,
    app_id: &str,
    ttl: Duration,
    read_only: bool,
    now: i64,
) -> DbResult<String> {
    let token = new_secret();
    let ttl_ms = crate::domain::time::duration_ms(ttl.min(MAX_TTL));
    let link = PortalLink {
        token_hash: hash_secret(&token),
        app_id: app_id.to_owned(),
        read_only,
        created_at: now,
        expires_at: now + ttl_ms,
    };
    store.create_portal_link(link).await?;
    Ok(token)
}

/// Revokes the live link of an application whose token hash `matches`; `false` when none does.
pub async fn revoke_link(
    store: &Store,
    app_id: &str,
    now: i64,
    matches: impl Fn(&str) -> bool + Send + 'static,
) -> DbResult<bool> {
    store.revoke_portal_link(app_id, now, matches).await
}
