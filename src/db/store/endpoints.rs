//! Endpoints: reads, and each change with the operational event it announces, in the same
//! transaction. Each change that announces something returns whether it did (the caller
//! then wakes the dispatcher).

use super::{Activity, App, Endpoint, Health, Notice, Secret, Store, TestSend};
use crate::db::postgres;
use crate::db::sqlite::{admin, deliveries, endpoints, operational};
use crate::db::{DbError, DbResult, Page, PageQuery};
use crate::domain::operational::Event;

/// An endpoint's attempts in a window, for its health report.
pub struct HealthReport {
    pub health: Health,
    pub activity: Activity,
    pub failing_since: Option<i64>,
}

impl Store {
    /// An endpoint of an application, by id or uid.
    pub async fn endpoint(&self, app_id: &str, key: &str) -> DbResult<Option<Endpoint>> {
        match self {
            Store::Sqlite(db) => {
                let (app_id, key, main_key) =
                    (app_id.to_owned(), key.to_owned(), self.main_key().clone());
                db.read(move |c| endpoints::get(c, &main_key, &app_id, &key))
                    .await
            }
            Store::Postgres(pg) => {
                pg.read(async |c| postgres::endpoints::get(c, &pg.main_key, app_id, key).await)
                    .await
            }
        }
    }

    /// An endpoint with its signing secrets still in use at `now` (for sending).
    pub async fn endpoint_for_sending(
        &self,
        endpoint_id: &str,
        now: i64,
    ) -> DbResult<Option<(Endpoint, Vec<Secret>)>> {
        match self {
            Store::Sqlite(db) => {
                let (id, key) = (endpoint_id.to_owned(), self.main_key().clone());
                db.read(move |c| {
                    let Some(ep) = endpoints::get_by_id(c, &key, &id)? else {
                        return Ok(None);
                    };
                    let secrets = endpoints::secrets(c, &key, &id, now)?;
                    Ok(Some((ep, secrets)))
                })
                .await
            }
            Store::Postgres(pg) => {
                pg.read(async |c| {
                    let key = &pg.main_key;
                    let Some(ep) = postgres::endpoints::get_by_id(c, key, endpoint_id).await?
                    else {
                        return Ok(None);
                    };
                    let secrets = postgres::endpoints::secrets(c, key, endpoint_id, now).await?;
                    Ok(Some((ep, secrets)))
                })
                .await
            }
        }
    }

    pub async fn endpoints(&self, app_id: &str, page: &PageQuery) -> DbResult<Page<Endpoint>> {
        match self {
            Store::Sqlite(db) => {
                let (id, p, key) = (app_id.to_owned(), page.clone(), self.main_key().clone());
                db.read(move |c| endpoints::list(c, &key, &id, &p)).await
            }
            Store::Postgres(pg) => {
                pg.read(async |c| postgres::endpoints::list(c, &pg.main_key, app_id, page).await)
                    .await
            }
        }
    }

    /// The signing secrets of an endpoint still in use at `now`, the current one without an
    /// expiry.
    pub async fn endpoint_secrets(&self, endpoint_id: &str, now: i64) -> DbResult<Vec<Secret>> {
        match self {
            Store::Sqlite(db) => {
                let (id, key) = (endpoint_id.to_owned(), self.main_key().clone());
                db.read(move |c| endpoints::secrets(c, &key, &id, now))
                    .await
            }
            Store::Postgres(pg) => {
                pg.read(async |c| {
                    postgres::endpoints::secrets(c, &pg.main_key, endpoint_id, now).await
                })
                .await
            }
        }
    }

    /// An endpoint's attempts since `since`: counts, activity, and since when it fails.
    pub async fn endpoint_health_report(
        &self,
        endpoint_id: &str,
        since: i64,
    ) -> DbResult<HealthReport> {
        let id = crate::domain::ids::EndpointId::from_string(endpoint_id.to_owned());
        match self {
            Store::Sqlite(db) => {
                db.read(move |c| {
                    let mut h = admin::health(c, std::slice::from_ref(&id), since)?;
                    Ok(HealthReport {
                        health: h.remove(&id).unwrap_or_default(),
                        activity: admin::endpoint_activity(c, &id, since)?,
                        failing_since: endpoints::failing_since(c, &id)?,
                    })
                })
                .await
            }
            Store::Postgres(pg) => {
                pg.read(async |c| {
                    let mut h =
                        postgres::admin::health(c, std::slice::from_ref(&id), since).await?;
                    Ok(HealthReport {
                        health: h.remove(&id).unwrap_or_default(),
                        activity: postgres::admin::endpoint_activity(c, &id, since).await?,
                        failing_since: postgres::endpoints::failing_since(c, &id).await?,
                    })
                })
                .await
            }
        }
    }

    /// Stores a new endpoint with its signing secret (sealed) and announces
    /// `endpoint.created`.
    pub async fn create_endpoint(&self, ep: Endpoint, secret: String, now: i64) -> DbResult<bool> {
        match self {
            Store::Sqlite(db) => {
                let main_key = self.main_key().clone();
                db.write(move |c| {
                    endpoints::insert(c, &main_key, &ep, &secret)?;
                    operational::endpoint_event(c, Event::EndpointCreated, &ep.id, now)
                })
                .await
            }
            Store::Postgres(pg) => {
                pg.write(async |tx| {
                    postgres::endpoints::insert(tx, &pg.main_key, &ep, &secret).await?;
                    postgres::operational::endpoint_event(
                        tx,
                        &pg.node(),
                        Event::EndpointCreated,
                        &ep.id,
                        now,
                    )
                    .await
                })
                .await
            }
        }
    }

    /// Stores a changed endpoint and announces `endpoint.updated`. When `ep.disabled` differs
    /// from what is stored, the endpoint is disabled for `disabled_reason` (with the effects
    /// of [`Store::disable_endpoints`]) or enabled. [`DbError::Changed`], and nothing
    /// written, when it changed since it was read as last changed at `as_read`.
    pub async fn update_endpoint(
        &self,
        ep: Endpoint,
        as_read: i64,
        disabled_reason: String,
        now: i64,
    ) -> DbResult<bool> {
        match self {
            Store::Sqlite(db) => {
                let key = self.main_key().clone();
                db.write(move |c| {
                    // Changed, or gone (read again, it is not found).
                    if endpoints::changed_at(c, &ep.id)? != Some(as_read) {
                        return Err(DbError::Changed);
                    }
                    let was_disabled = endpoints::is_disabled(c, &ep.id)?.unwrap_or(ep.disabled);
                    let was_ordered = endpoints::is_ordered(c, &ep.id)?;
                    if ep.ordered != was_ordered {
                        crate::db::sqlite::lanes::reorder(c, &ep.id, ep.ordered, now)?;
                    }
                    let mut notices = Vec::new();
                    if ep.disabled && !was_disabled {
                        if endpoints::disable(c, &ep.id, &disabled_reason, now)? {
                            notices.push(Notice::Disabled {
                                endpoint_id: ep.id.to_string(),
                                reason: disabled_reason,
                                at: now,
                                automatic: false,
                            });
                        }
                    } else if !ep.disabled && was_disabled {
                        endpoints::enable(c, &ep.id, now)?;
                    }
                    // Last, so that the row keeps the change's time (disabling moves it on).
                    endpoints::update(c, &key, &ep)?;
                    let updated =
                        operational::endpoint_event(c, Event::EndpointUpdated, &ep.id, now)?;
                    Ok(operational::announce(c, &notices, now)? || updated)
                })
                .await
            }
            Store::Postgres(pg) => {
                pg.write(async |tx| {
                    // Its ordered line first (see `postgres::lanes`), then its row, which stays
                    // locked until commit: a change from another node waits, then sees this
                    // one's outcome.
                    postgres::lanes::lock(tx, [ep.id.as_str()]).await?;
                    let was_disabled = postgres::endpoints::lock(tx, &ep.id)
                        .await?
                        .unwrap_or(ep.disabled);
                    // Changed, or gone (read again, it is not found).
                    if postgres::endpoints::changed_at(tx, &ep.id).await? != Some(as_read) {
                        return Err(DbError::Changed);
                    }
                    let was_ordered = postgres::endpoints::is_ordered(tx, &ep.id).await?;
                    if ep.ordered != was_ordered {
                        postgres::lanes::reorder(tx, &ep.id, ep.ordered, now).await?;
                    }
                    let mut notices = Vec::new();
                    if ep.disabled && !was_disabled {
                        if postgres::endpoints::disable(tx, &ep.id, &disabled_reason, now).await? {
                            notices.push(Notice::Disabled {
                                endpoint_id: ep.id.to_string(),
                                reason: disabled_reason.clone(),
                                at: now,
                                automatic: false,
                            });
                        }
                    } else if !ep.disabled && was_disabled {
                        postgres::endpoints::enable(tx, &ep.id, now).await?;
                    }
                    // Last, so that the row keeps the change's time (disabling moves it on).
                    postgres::endpoints::update(tx, &pg.main_key, &ep).await?;
                    let updated = postgres::operational::endpoint_event(
                        tx,
                        &pg.node(),
                        Event::EndpointUpdated,
                        &ep.id,
                        now,
                    )
                    .await?;
                    Ok(
                        postgres::operational::announce(tx, &pg.node(), &notices, now).await?
                            || updated,
                    )
                })
                .await
            }
        }
    }

    /// Deletes an endpoint (its deliveries and attempts go with it) and announces
    /// `endpoint.deleted`.
    pub async fn delete_endpoint(&self, app: App, ep: &Endpoint, now: i64) -> DbResult<bool> {
        match self {
            Store::Sqlite(db) => {
                let (id, uid) = (ep.id.clone(), ep.uid.clone());
                db.write(move |c| {
                    endpoints::delete(c, &id)?;
                    operational::endpoint_deleted(c, &app, &id, uid.as_deref(), now)
                })
                .await
            }
            Store::Postgres(pg) => {
                pg.write(async |tx| {
                    // Its ordered line first (see `postgres::lanes`): its deliveries go.
                    postgres::lanes::lock(tx, [ep.id.as_str()]).await?;
                    postgres::endpoints::delete(tx, &ep.id).await?;
                    postgres::operational::endpoint_deleted(
                        tx,
                        &pg.node(),
                        &app,
                        &ep.id,
                        ep.uid.as_deref(),
                        now,
                    )
                    .await
                })
                .await
            }
        }
    }

    /// Disables endpoints for their reasons: reason and time recorded, pending deliveries
    /// skipped (Enable can replay them), `endpoint.disabled` announced. Returns the ids that
    /// were enabled until now and whether anything was announced.
    pub async fn disable_endpoints(
        &self,
        which: Vec<(String, String)>,
        now: i64,
    ) -> DbResult<(Vec<String>, bool)> {
        match self {
            Store::Sqlite(db) => {
                db.write(move |c| {
                    let mut notices = Vec::new();
                    let mut changed = Vec::new();
                    for (id, reason) in which {
                        if endpoints::disable(c, &id, &reason, now)? {
                            changed.push(id.clone());
                            notices.push(Notice::Disabled {
                                endpoint_id: id,
                                reason,
                                at: now,
                                automatic: false,
                            });
                        }
                    }
                    Ok((changed, operational::announce(c, &notices, now)?))
                })
                .await
            }
            Store::Postgres(pg) => {
                pg.write(async |tx| {
                    let mut notices = Vec::new();
                    let mut changed = Vec::new();
                    // Their ordered lines first (see `postgres::lanes`).
                    postgres::lanes::lock(tx, which.iter().map(|(id, _)| id.as_str())).await?;
                    // Only the node whose update changes the row announces it.
                    for (id, reason) in &which {
                        if postgres::endpoints::disable(tx, id, reason, now).await? {
                            changed.push(id.clone());
                            notices.push(Notice::Disabled {
                                endpoint_id: id.clone(),
                                reason: reason.clone(),
                                at: now,
                                automatic: false,
                            });
                        }
                    }
                    let announced =
                        postgres::operational::announce(tx, &pg.node(), &notices, now).await?;
                    Ok((changed, announced))
                })
                .await
            }
        }
    }

    /// Disables every endpoint that has failed for its auto-disable period by `now` (its
    /// own, else `server_ms`), for `reason(since, period)`, with the effects of
    /// [`Store::disable_endpoints`] (the notice dated when it began failing). Returns the
    /// endpoints found and whether anything was announced.
    pub async fn disable_failing_endpoints(
        &self,
        server_ms: i64,
        reason: impl Fn(i64, i64) -> String + Send + 'static,
        now: i64,
    ) -> DbResult<(Vec<String>, bool)> {
        match self {
            Store::Sqlite(db) => {
                db.write(move |c| {
                    let dead = endpoints::failing_too_long(c, now, server_ms)?;
                    let mut notices = Vec::with_capacity(dead.len());
                    for (id, since, after) in &dead {
                        let reason = reason(*since, *after);
                        if endpoints::disable(c, id, &reason, now)? {
                            notices.push(Notice::Disabled {
                                endpoint_id: id.clone(),
                                reason,
                                at: *since,
                                automatic: true,
                            });
                        }
                    }
                    let announced = operational::announce(c, &notices, now)?;
                    Ok((dead.into_iter().map(|(id, ..)| id).collect(), announced))
                })
                .await
            }
            Store::Postgres(pg) => {
                // `reason` is moved in (it need not be `Sync`); only its results cross awaits.
                pg.write(async move |tx| {
                    let dead = postgres::endpoints::failing_too_long(tx, now, server_ms).await?;
                    let mut notices = Vec::with_capacity(dead.len());
                    for (id, since, after) in &dead {
                        let reason = reason(*since, *after);
                        // Another node disabling it at once: only one of them changes it.
                        if postgres::endpoints::disable(tx, id, &reason, now).await? {
                            notices.push(Notice::Disabled {
                                endpoint_id: id.clone(),
                                reason,
                                at: *since,
                                automatic: true,
                            });
                        }
                    }
                    let announced =
                        postgres::operational::announce(tx, &pg.node(), &notices, now).await?;
                    Ok((dead.into_iter().map(|(id, ..)| id).collect(), announced))
                })
                .await
            }
        }
    }

    /// Enables an endpoint and, with `replay`, queues what it missed while disabled (what was
    /// skipped since then; never messages from before it existed). How many were queued.
    pub async fn enable_endpoint(&self, ep: &Endpoint, replay: bool, now: i64) -> DbResult<usize> {
        match self {
            Store::Sqlite(db) => {
                let ep = ep.clone();
                db.write(move |c| {
                    let since = admin::first_skipped_at(c, &ep.id)?
                        .into_iter()
                        .chain(ep.disabled_at)
                        .min()
                        .unwrap_or(now)
                        .max(ep.created_at);
                    endpoints::enable(c, &ep.id, now)?;
                    if replay {
                        deliveries::replay_missing(c, &ep, since, None, now)
                    } else {
                        Ok(0)
                    }
                })
                .await
            }
            Store::Postgres(pg) => {
                pg.write(async |tx| {
                    // Enables of the same endpoint on several nodes run one after the other
                    // (the second finds nothing left to replay). Its ordered line is taken
                    // first, as every change to a line does (see `postgres::lanes`).
                    postgres::lanes::lock(tx, [ep.id.as_str()]).await?;
                    postgres::endpoints::lock(tx, &ep.id).await?;
                    let since = postgres::admin::first_skipped_at(tx, &ep.id)
                        .await?
                        .into_iter()
                        .chain(ep.disabled_at)
                        .min()
                        .unwrap_or(now)
                        .max(ep.created_at);
                    postgres::endpoints::enable(tx, &ep.id, now).await?;
                    if replay {
                        postgres::deliveries::replay_missing(tx, ep, since, None, now).await
                    } else {
                        Ok(0)
                    }
                })
                .await
            }
        }
    }

    /// Failed deliveries of an endpoint created in a window get a fresh retry schedule.
    pub async fn recover_endpoint(
        &self,
        endpoint_id: &str,
        since: i64,
        until: Option<i64>,
        now: i64,
    ) -> DbResult<usize> {
        match self {
            Store::Sqlite(db) => {
                let id = endpoint_id.to_owned();
                db.write(move |c| deliveries::recover(c, &id, since, until, now))
                    .await
            }
            Store::Postgres(pg) => {
                pg.write(async |tx| {
                    postgres::deliveries::recover(tx, endpoint_id, since, until, now).await
                })
                .await
            }
        }
    }

    /// Queues the messages of a window that the endpoint never got.
    pub async fn replay_missing(
        &self,
        ep: &Endpoint,
        since: i64,
        until: Option<i64>,
        now: i64,
    ) -> DbResult<usize> {
        match self {
            Store::Sqlite(db) => {
                let e = ep.clone();
                db.write(move |c| deliveries::replay_missing(c, &e, since, until, now))
                    .await
            }
            Store::Postgres(pg) => {
                pg.write(async |tx| {
                    postgres::deliveries::replay_missing(tx, ep, since, until, now).await
                })
                .await
            }
        }
    }

    /// Makes `secret` the endpoint's signing key; the previous one signs until `now +
    /// grace_ms`. Refused, with when the first of them stops signing, while `max_old` keys it
    /// replaced still sign (a rotation with no grace period is never refused).
    pub async fn rotate_secret(
        &self,
        endpoint_id: &str,
        secret: String,
        grace_ms: i64,
        max_old: i64,
        now: i64,
    ) -> DbResult<Option<i64>> {
        match self {
            Store::Sqlite(db) => {
                let (id, key) = (endpoint_id.to_owned(), self.main_key().clone());
                db.write(move |c| {
                    endpoints::rotate_secret(c, &key, &id, &secret, grace_ms, max_old, now)
                })
                .await
            }
            Store::Postgres(pg) => {
                // Locks the endpoint's row: concurrent rotations run one after the other.
                pg.write(async |tx| {
                    postgres::endpoints::rotate_secret(
                        tx,
                        &pg.main_key,
                        endpoint_id,
                        &secret,
                        grace_ms,
                        max_old,
                        now,
                    )
                    .await
                })
                .await
            }
        }
    }

    /// One more attempt of a message at an endpoint, due now (manual trigger); `false` when
    /// the message has no delivery to that endpoint (it was never for it).
    pub async fn resend(
        &self,
        msg_id: &str,
        endpoint_id: &str,
        max_attempts: u32,
        now: i64,
    ) -> DbResult<bool> {
        match self {
            Store::Sqlite(db) => {
                let (m, e) = (msg_id.to_owned(), endpoint_id.to_owned());
                db.write(move |c| deliveries::resend(c, &m, &e, max_attempts, now))
                    .await
            }
            Store::Postgres(pg) => {
                pg.write(async |tx| {
                    postgres::deliveries::resend(tx, msg_id, endpoint_id, max_attempts, now).await
                })
                .await
            }
        }
    }

    /// The first of an ordered endpoint's line and how many wait in it; `None` when none
    /// waits.
    pub async fn lane_head(&self, endpoint_id: &str) -> DbResult<Option<super::LaneHead>> {
        match self {
            Store::Sqlite(db) => {
                let id = endpoint_id.to_owned();
                db.read(move |c| crate::db::sqlite::lanes::head(c, &id))
                    .await
            }
            Store::Postgres(pg) => {
                pg.read(async |c| postgres::lanes::head(c, endpoint_id).await)
                    .await
            }
        }
    }

    /// Skips, or retries now, message `msg_id` when it is first in the endpoint's line and
    /// not being sent; whether it was.
    pub async fn unblock_lane(
        &self,
        endpoint_id: &str,
        msg_id: &str,
        what: super::Unblock,
        now: i64,
    ) -> DbResult<bool> {
        match self {
            Store::Sqlite(db) => {
                let (e, m) = (endpoint_id.to_owned(), msg_id.to_owned());
                db.write(move |c| crate::db::sqlite::lanes::unblock(c, &e, &m, what, now))
                    .await
            }
            Store::Postgres(pg) => {
                pg.write(async |tx| {
                    postgres::lanes::unblock(tx, endpoint_id, msg_id, what, now).await
                })
                .await
            }
        }
    }

    /// Records a test send: its message and its one attempt.
    pub async fn record_test_send(&self, t: TestSend) -> DbResult<()> {
        match self {
            Store::Sqlite(db) => db.write(move |c| admin::record_test_send(c, &t)).await,
            Store::Postgres(pg) => {
                pg.write(async |tx| postgres::admin::record_test_send(tx, &t).await)
                    .await
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::db::{App, DbError, Store};
    use crate::domain::ids::AppId;

    /// A change is stored only on the endpoint as it was read: not once another change landed,
    /// nor once the endpoint is gone (read again, it is then not found).
    #[tokio::test]
    async fn an_endpoint_changed_or_deleted_since_it_was_read_is_not_written() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::sqlite_for_tests(dir.path());
        let app = App {
            id: AppId::from("app_1"),
            uid: None,
            name: "a".into(),
            rate_limit: None,
            retention_ms: None,
            metadata: Default::default(),
            created_at: 1,
            updated_at: 1,
        };
        store.create_app(app.clone()).await.unwrap();
        let ep = crate::domain::model::sample_endpoint("ep_1", "app_1");
        store
            .create_endpoint(
                ep.clone(),
                "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD".into(),
                1,
            )
            .await
            .unwrap();
        let write = |as_read| {
            let mut changed = ep.clone();
            changed.description = "changed".into();
            changed.updated_at = 10;
            store.update_endpoint(changed, as_read, String::new(), 10)
        };
        assert!(matches!(write(0).await, Err(DbError::Changed)));
        write(1).await.unwrap();
        assert!(
            matches!(write(1).await, Err(DbError::Changed)),
            "written since"
        );
        store.delete_endpoint(app, &ep, 20).await.unwrap();
        assert!(matches!(write(10).await, Err(DbError::Changed)), "gone");
    }
}
