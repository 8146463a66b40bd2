//! Customer portal links and sessions.

use super::{App, PortalLink, PortalSession, Store};
use crate::db::postgres;
use crate::db::sqlite::{apps, portal};
use crate::db::DbResult;

impl Store {
    pub async fn create_portal_link(&self, link: PortalLink) -> DbResult<()> {
        match self {
            Store::Sqlite(db) => db.write(move |c| portal::insert_link(c, &link)).await,
            Store::Postgres(pg) => {
                pg.read(async |c| postgres::portal::insert_link(c, &link).await)
                    .await
            }
        }
    }

    /// The live link with this token hash.
    pub async fn portal_link(&self, token_hash: &str, now: i64) -> DbResult<Option<PortalLink>> {
        let h = token_hash.to_owned();
        match self {
            Store::Sqlite(db) => db.read(move |c| portal::link(c, &h, now)).await,
            Store::Postgres(pg) => {
                pg.read(async |c| postgres::portal::link(c, token_hash, now).await)
                    .await
            }
        }
    }

    /// An application's links that have not expired or been revoked.
    pub async fn live_portal_links(&self, app_id: &str, now: i64) -> DbResult<Vec<PortalLink>> {
        let id = app_id.to_owned();
        match self {
            Store::Sqlite(db) => db.read(move |c| portal::live_links(c, &id, now)).await,
            Store::Postgres(pg) => {
                pg.read(async |c| postgres::portal::live_links(c, app_id, now).await)
                    .await
            }
        }
    }

    /// Revokes the live link of `app_id` whose token hash `matches`; `false` when none does.
    pub async fn revoke_portal_link(
        &self,
        app_id: &str,
        now: i64,
        matches: impl Fn(&str) -> bool + Send + 'static,
    ) -> DbResult<bool> {
        let id = app_id.to_owned();
        match self {
            Store::Sqlite(db) => {
                db.write(move |c| {
                    let hash = portal::live_links(c, &id, now)?
                        .into_iter()
                        .map(|l| l.token_hash)
                        .find(|h| matches(h));
                    match hash {
                        Some(h) => portal::revoke_link(c, &id, &h),
                        None => Ok(false),
                    }
                })
                .await
            }
            // Revoked by two nodes at once: the link goes once, the second finds none.
            Store::Postgres(pg) => {
                pg.write(async |tx| {
                    let hash = postgres::portal::live_links(tx, app_id, now)
                        .await?
                        .into_iter()
                        .map(|l| l.token_hash)
                        .find(|h| matches(h));
                    match hash {
                        Some(h) => postgres::portal::revoke_link(tx, app_id, &h).await,
                        None => Ok(false),
                    }
                })
                .await
            }
        }
    }

    pub async fn create_portal_session(
        &self,
        id_hash: &str,
        link_hash: &str,
        csrf: &str,
        now: i64,
        expires_at: i64,
    ) -> DbResult<()> {
        let (s, l, t) = (id_hash.to_owned(), link_hash.to_owned(), csrf.to_owned());
        match self {
            Store::Sqlite(db) => {
                db.write(move |c| portal::insert_session(c, &s, &l, &t, now, expires_at))
                    .await
            }
            Store::Postgres(pg) => {
                pg.read(async |c| {
                    postgres::portal::insert_session(c, id_hash, link_hash, csrf, now, expires_at)
                        .await
                })
                .await
            }
        }
    }

    /// A live portal session with its application.
    pub async fn portal_session(
        &self,
        id_hash: &str,
        now: i64,
    ) -> DbResult<Option<(PortalSession, App)>> {
        let h = id_hash.to_owned();
        match self {
            Store::Sqlite(db) => {
                db.read(move |c| {
                    let Some(s) = portal::session(c, &h, now)? else {
                        return Ok(None);
                    };
                    Ok(apps::get(c, &s.app_id)?.map(|a| (s, a)))
                })
                .await
            }
            Store::Postgres(pg) => {
                pg.read(async |c| {
                    let Some(s) = postgres::portal::session(c, id_hash, now).await? else {
                        return Ok(None);
                    };
                    Ok(postgres::apps::get(c, &s.app_id).await?.map(|a| (s, a)))
                })
                .await
            }
        }
    }

    pub async fn touch_portal_session(&self, id_hash: &str, now: i64, until: i64) -> DbResult<()> {
        let h = id_hash.to_owned();
        match self {
            Store::Sqlite(db) => {
                db.write(move |c| portal::touch_session(c, &h, now, until))
                    .await
            }
            Store::Postgres(pg) => {
                pg.write(async |tx| postgres::portal::touch_session(tx, id_hash, now, until).await)
                    .await
            }
        }
    }
}
