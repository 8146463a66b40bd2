//! Console admins, their sessions, and what the console's pages read.

use super::{Activity, AdminSession, AdminUser, Endpoint, Failure, Health, Stats, Store, Times};
use super::{Totals, Troubled};
use crate::db::postgres::{self, locks};
use crate::db::sqlite::{admin, deliveries, endpoints};
use crate::db::DbResult;
use std::collections::HashMap;

/// What the dashboard shows.
pub struct Dashboard {
    pub totals: Totals,
    pub activity: Activity,
    pub troubled: Vec<Troubled>,
    pub failures: Vec<Failure>,
}

/// What an endpoint's overview shows beside its health.
pub struct EndpointSummary {
    pub stats: Stats,
    pub skipped: i64,
    pub activity: Activity,
    pub times: Times,
}

impl Store {
    pub async fn admin_by_name(&self, username: &str) -> DbResult<Option<AdminUser>> {
        let name = username.to_owned();
        match self {
            Store::Sqlite(db) => db.read(move |c| admin::user_by_name(c, &name)).await,
            Store::Postgres(pg) => {
                pg.read(async |c| postgres::admin::user_by_name(c, username).await)
                    .await
            }
        }
    }

    /// Creates the first admin with a setup token: `None` when an admin exists already or the
    /// token is not (any longer) valid; the token is used up either way.
    pub async fn create_first_admin(
        &self,
        setup_hash: &str,
        username: &str,
        password_hash: &str,
        now: i64,
    ) -> DbResult<Option<String>> {
        let (t, u, p) = (
            setup_hash.to_owned(),
            username.to_owned(),
            password_hash.to_owned(),
        );
        match self {
            Store::Sqlite(db) => {
                db.write(move |c| {
                    if admin::count_users(c)? > 0 || !admin::consume_setup_token(c, &t, now)? {
                        return Ok(None);
                    }
                    admin::insert_user(c, &u, &p, now).map(Some)
                })
                .await
            }
            Store::Postgres(pg) => {
                pg.write(async |tx| {
                    // Nodes creating the first admin at once: one at a time, so the second
                    // sees the first's admin (and its used-up link) and creates none.
                    locks::wait(tx, locks::Chore::Bootstrap).await?;
                    if postgres::admin::count_users(tx).await? > 0
                        || !postgres::admin::consume_setup_token(tx, setup_hash, now).await?
                    {
                        return Ok(None);
                    }
                    postgres::admin::insert_user(tx, username, password_hash, now)
                        .await
                        .map(Some)
                })
                .await
            }
        }
    }

    /// Whether a setup link with this hash may still create the first admin.
    pub async fn setup_token_usable(&self, hash: &str, now: i64) -> DbResult<bool> {
        let h = hash.to_owned();
        match self {
            Store::Sqlite(db) => {
                db.read(move |c| {
                    Ok(admin::count_users(c)? == 0 && admin::setup_token_valid(c, &h, now)?)
                })
                .await
            }
            Store::Postgres(pg) => {
                pg.read(async |c| {
                    Ok(postgres::admin::count_users(c).await? == 0
                        && postgres::admin::setup_token_valid(c, hash, now).await?)
                })
                .await
            }
        }
    }

    /// A new setup link (by hash) replacing any earlier one, when there is no admin yet;
    /// `false` (nothing stored) when there is one.
    pub async fn replace_setup_token(&self, hash: &str, now: i64, until: i64) -> DbResult<bool> {
        let h = hash.to_owned();
        match self {
            Store::Sqlite(db) => {
                db.write(move |c| {
                    if admin::count_users(c)? > 0 {
                        return Ok(false);
                    }
                    admin::replace_setup_token(c, &h, now, until).map(|()| true)
                })
                .await
            }
            Store::Postgres(pg) => {
                pg.write(async |tx| {
                    // One node at a time (with `create_first_admin`): no link is stored once
                    // an admin exists, and the link a node printed stays valid while other
                    // nodes start (they print none).
                    locks::wait(tx, locks::Chore::Bootstrap).await?;
                    if postgres::admin::count_users(tx).await? > 0
                        || postgres::admin::live_setup_token(tx, now).await?
                    {
                        return Ok(false);
                    }
                    postgres::admin::replace_setup_token(tx, hash, now, until).await?;
                    Ok(true)
                })
                .await
            }
        }
    }

    pub async fn create_admin_session(
        &self,
        id_hash: &str,
        user_id: &str,
        csrf: &str,
        now: i64,
        expires_at: i64,
    ) -> DbResult<()> {
        let (h, u, t) = (id_hash.to_owned(), user_id.to_owned(), csrf.to_owned());
        match self {
            Store::Sqlite(db) => {
                db.write(move |c| admin::insert_session(c, &h, &u, &t, now, expires_at))
                    .await
            }
            Store::Postgres(pg) => {
                pg.read(async |c| {
                    postgres::admin::insert_session(c, id_hash, user_id, csrf, now, expires_at)
                        .await
                })
                .await
            }
        }
    }

    pub async fn admin_session(&self, id_hash: &str, now: i64) -> DbResult<Option<AdminSession>> {
        let h = id_hash.to_owned();
        match self {
            Store::Sqlite(db) => db.read(move |c| admin::session(c, &h, now)).await,
            Store::Postgres(pg) => {
                pg.read(async |c| postgres::admin::session(c, id_hash, now).await)
                    .await
            }
        }
    }

    pub async fn touch_admin_session(&self, id_hash: &str, now: i64, until: i64) -> DbResult<()> {
        let h = id_hash.to_owned();
        match self {
            Store::Sqlite(db) => {
                db.write(move |c| admin::touch_session(c, &h, now, until))
                    .await
            }
            Store::Postgres(pg) => {
                pg.write(async |tx| postgres::admin::touch_session(tx, id_hash, now, until).await)
                    .await
            }
        }
    }

    pub async fn end_admin_session(&self, id_hash: &str) -> DbResult<()> {
        let h = id_hash.to_owned();
        match self {
            Store::Sqlite(db) => db.write(move |c| admin::delete_session(c, &h)).await,
            Store::Postgres(pg) => {
                pg.read(async |c| postgres::admin::delete_session(c, id_hash).await)
                    .await
            }
        }
    }

    /// The dashboard's figures: totals, the last day's activity since `since`, endpoints that
    /// need attention and the latest failed attempts (`hidden_uid`'s application left out).
    pub async fn dashboard(&self, hidden_uid: &'static str, since: i64) -> DbResult<Dashboard> {
        match self {
            Store::Sqlite(db) => {
                db.read(move |c| {
                    Ok(Dashboard {
                        totals: admin::totals(c, hidden_uid)?,
                        activity: admin::activity(c, since)?,
                        troubled: admin::troubled(c, hidden_uid, 20)?,
                        failures: admin::recent_failures(c, since, 10)?,
                    })
                })
                .await
            }
            Store::Postgres(pg) => {
                pg.read(async |c| {
                    Ok(Dashboard {
                        totals: postgres::admin::totals(c, hidden_uid).await?,
                        activity: postgres::admin::activity(c, since).await?,
                        troubled: postgres::admin::troubled(c, hidden_uid, 20).await?,
                        failures: postgres::admin::recent_failures(c, since, 10).await?,
                    })
                })
                .await
            }
        }
    }

    /// The endpoints of an application (ordered by id) with their health since `since`.
    pub async fn endpoints_with_health(
        &self,
        app_id: &str,
        since: i64,
    ) -> DbResult<(
        Vec<Endpoint>,
        HashMap<crate::domain::ids::EndpointId, Health>,
    )> {
        let (id, key) = (app_id.to_owned(), self.main_key().clone());
        match self {
            Store::Sqlite(db) => {
                db.read(move |c| {
                    let mut eps = endpoints::all_in_app(c, &key, &id)?;
                    eps.sort_by(|a, b| a.id.cmp(&b.id));
                    let ids: Vec<_> = eps.iter().map(|e| e.id.clone()).collect();
                    Ok((eps, admin::health(c, &ids, since)?))
                })
                .await
            }
            Store::Postgres(pg) => {
                pg.read(async |c| {
                    let mut eps = postgres::endpoints::all_in_app(c, &pg.main_key, app_id).await?;
                    eps.sort_by(|a, b| a.id.cmp(&b.id));
                    let ids: Vec<_> = eps.iter().map(|e| e.id.clone()).collect();
                    let health = postgres::admin::health(c, &ids, since).await?;
                    Ok((eps, health))
                })
                .await
            }
        }
    }

    /// An endpoint of an application (by id or uid) with its health since `since`.
    pub async fn endpoint_with_health(
        &self,
        app_id: &str,
        key: &str,
        since: i64,
    ) -> DbResult<Option<(Endpoint, Health)>> {
        let (app_id, key, main_key) = (app_id.to_owned(), key.to_owned(), self.main_key().clone());
        match self {
            Store::Sqlite(db) => {
                db.read(move |c| {
                    let Some(ep) = endpoints::get(c, &main_key, &app_id, &key)? else {
                        return Ok(None);
                    };
                    let h = admin::health(c, std::slice::from_ref(&ep.id), since)?
                        .remove(&ep.id)
                        .unwrap_or_default();
                    Ok(Some((ep, h)))
                })
                .await
            }
            Store::Postgres(pg) => {
                pg.read(async |c| {
                    let Some(ep) = postgres::endpoints::get(c, &pg.main_key, &app_id, &key).await?
                    else {
                        return Ok(None);
                    };
                    let h = postgres::admin::health(c, std::slice::from_ref(&ep.id), since)
                        .await?
                        .remove(&ep.id)
                        .unwrap_or_default();
                    Ok(Some((ep, h)))
                })
                .await
            }
        }
    }

    /// An endpoint's health since `since`.
    pub async fn endpoint_health(&self, endpoint_id: &str, since: i64) -> DbResult<Health> {
        let id = endpoint_id.to_owned();
        match self {
            Store::Sqlite(db) => {
                let id = crate::domain::ids::EndpointId::from_string(id);
                db.read(move |c| {
                    Ok(admin::health(c, std::slice::from_ref(&id), since)?
                        .remove(&id)
                        .unwrap_or_default())
                })
                .await
            }
            Store::Postgres(pg) => {
                let id = crate::domain::ids::EndpointId::from_string(id);
                pg.read(async |c| {
                    Ok(postgres::admin::health(c, std::slice::from_ref(&id), since)
                        .await?
                        .remove(&id)
                        .unwrap_or_default())
                })
                .await
            }
        }
    }

    /// An endpoint's delivery counts, skipped deliveries, activity since `since` and times.
    pub async fn endpoint_summary(
        &self,
        endpoint_id: &str,
        since: i64,
    ) -> DbResult<EndpointSummary> {
        let id = endpoint_id.to_owned();
        match self {
            Store::Sqlite(db) => {
                db.read(move |c| {
                    Ok(EndpointSummary {
                        stats: deliveries::stats(c, &id, None, None)?,
                        skipped: deliveries::count_skipped(c, &id)?,
                        activity: admin::endpoint_activity(c, &id, since)?,
                        times: admin::endpoint_times(c, &id)?,
                    })
                })
                .await
            }
            Store::Postgres(pg) => {
                pg.read(async |c| {
                    Ok(EndpointSummary {
                        stats: postgres::deliveries::stats(c, endpoint_id, None, None).await?,
                        skipped: postgres::deliveries::count_skipped(c, endpoint_id).await?,
                        activity: postgres::admin::endpoint_activity(c, endpoint_id, since).await?,
                        times: postgres::admin::endpoint_times(c, endpoint_id).await?,
                    })
                })
                .await
            }
        }
    }

    /// How many deliveries to an endpoint were skipped (while it was disabled).
    pub async fn count_skipped(&self, endpoint_id: &str) -> DbResult<i64> {
        let id = endpoint_id.to_owned();
        match self {
            Store::Sqlite(db) => db.read(move |c| deliveries::count_skipped(c, &id)).await,
            Store::Postgres(pg) => {
                pg.read(async |c| postgres::deliveries::count_skipped(c, endpoint_id).await)
                    .await
            }
        }
    }
}
