//! Endpoints: reads, and each change with the operational event it announces, in the same
//! transaction. Each change that announces something returns whether it did (the caller
//! then wakes the dispatcher).

use super::{unported, Activity, App, Endpoint, Health, Notice, Secret, Store, TestSend};
use crate::db::sqlite::{admin, deliveries, endpoints, operational};
use crate::db::{DbResult, Page, PageQuery};
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
        let (app_id, key, main_key) = (app_id.to_owned(), key.to_owned(), self.main_key().clone());
        match self {
            Store::Postgres(_) => unported(),
            Store::Sqlite(db) => {
                db.read(move |c| endpoints::get(c, &main_key, &app_id, &key))
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
        let (id, key) = (endpoint_id.to_owned(), self.main_key().clone());
        match self {
            Store::Postgres(_) => unported(),
            Store::Sqlite(db) => {
                db.read(move |c| {
                    let Some(ep) = endpoints::get_by_id(c, &key, &id)? else {
                        return Ok(None);
                    };
                    let secrets = endpoints::secrets(c, &key, &id, now)?;
                    Ok(Some((ep, secrets)))
                })
                .await
            }
        }
    }

    pub async fn endpoints(&self, app_id: &str, page: &PageQuery) -> DbResult<Page<Endpoint>> {
        let (id, p, key) = (app_id.to_owned(), page.clone(), self.main_key().clone());
        match self {
            Store::Postgres(_) => unported(),
            Store::Sqlite(db) => db.read(move |c| endpoints::list(c, &key, &id, &p)).await,
        }
    }

    /// The signing secrets of an endpoint still in use at `now`, the current one without an
    /// expiry.
    pub async fn endpoint_secrets(&self, endpoint_id: &str, now: i64) -> DbResult<Vec<Secret>> {
        let (id, key) = (endpoint_id.to_owned(), self.main_key().clone());
        match self {
            Store::Postgres(_) => unported(),
            Store::Sqlite(db) => {
                db.read(move |c| endpoints::secrets(c, &key, &id, now))
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
        let id = endpoint_id.to_owned();
        match self {
            Store::Postgres(_) => unported(),
            Store::Sqlite(db) => {
                let id = crate::domain::ids::EndpointId::from_string(id);
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
        }
    }

    /// Stores a new endpoint with its signing secret (sealed) and announces
    /// `endpoint.created`.
    pub async fn create_endpoint(&self, ep: Endpoint, secret: String, now: i64) -> DbResult<bool> {
        let main_key = self.main_key().clone();
        match self {
            Store::Postgres(_) => unported(),
            Store::Sqlite(db) => {
                db.write(move |c| {
                    endpoints::insert(c, &main_key, &ep, &secret)?;
                    operational::endpoint_event(c, Event::EndpointCreated, &ep.id, now)
                })
                .await
            }
        }
    }

    /// Stores a changed endpoint and announces `endpoint.updated`. When `ep.disabled` differs
    /// from what is stored, the endpoint is disabled for `disabled_reason` (with the effects
    /// of [`Store::disable_endpoints`]) or enabled.
    pub async fn update_endpoint(
        &self,
        ep: Endpoint,
        disabled_reason: String,
        now: i64,
    ) -> DbResult<bool> {
        let key = self.main_key().clone();
        match self {
            Store::Postgres(_) => unported(),
            Store::Sqlite(db) => {
                db.write(move |c| {
                    let was_disabled = endpoints::is_disabled(c, &ep.id)?.unwrap_or(ep.disabled);
                    endpoints::update(c, &key, &ep)?;
                    let mut notices = Vec::new();
                    if ep.disabled && !was_disabled {
                        if endpoints::disable(c, &ep.id, &disabled_reason, now)? {
                            notices.push(Notice::Disabled {
                                endpoint_id: ep.id.to_string(),
                                reason: disabled_reason,
                                at: now,
                            });
                        }
                    } else if !ep.disabled && was_disabled {
                        endpoints::enable(c, &ep.id, now)?;
                    }
                    let updated =
                        operational::endpoint_event(c, Event::EndpointUpdated, &ep.id, now)?;
                    Ok(operational::announce(c, &notices, now)? || updated)
                })
                .await
            }
        }
    }

    /// Deletes an endpoint (its deliveries and attempts go with it) and announces
    /// `endpoint.deleted`.
    pub async fn delete_endpoint(&self, app: App, ep: &Endpoint, now: i64) -> DbResult<bool> {
        let (id, uid) = (ep.id.clone(), ep.uid.clone());
        match self {
            Store::Postgres(_) => unported(),
            Store::Sqlite(db) => {
                db.write(move |c| {
                    endpoints::delete(c, &id)?;
                    operational::endpoint_deleted(c, &app, &id, uid.as_deref(), now)
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
            Store::Postgres(_) => unported(),
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
                            });
                        }
                    }
                    Ok((changed, operational::announce(c, &notices, now)?))
                })
                .await
            }
        }
    }

    /// Disables every endpoint failing since before `cutoff`, for `reason(since)`, with the
    /// effects of [`Store::disable_endpoints`] (the notice dated when it began failing).
    /// Returns the endpoints found and whether anything was announced.
    pub async fn disable_failing_endpoints(
        &self,
        cutoff: i64,
        reason: impl Fn(i64) -> String + Send + 'static,
        now: i64,
    ) -> DbResult<(Vec<String>, bool)> {
        match self {
            Store::Postgres(_) => unported(),
            Store::Sqlite(db) => {
                db.write(move |c| {
                    let dead = endpoints::failing_since_before(c, cutoff)?;
                    let mut notices = Vec::with_capacity(dead.len());
                    for (id, since) in &dead {
                        let reason = reason(*since);
                        if endpoints::disable(c, id, &reason, now)? {
                            notices.push(Notice::Disabled {
                                endpoint_id: id.clone(),
                                reason,
                                at: *since,
                            });
                        }
                    }
                    let announced = operational::announce(c, &notices, now)?;
                    Ok((dead.into_iter().map(|(id, _)| id).collect(), announced))
                })
                .await
            }
        }
    }

    /// Enables an endpoint and, with `replay`, queues what it missed while disabled (what was
    /// skipped since then; never messages from before it existed). How many were queued.
    pub async fn enable_endpoint(&self, ep: &Endpoint, replay: bool, now: i64) -> DbResult<usize> {
        let ep = ep.clone();
        match self {
            Store::Postgres(_) => unported(),
            Store::Sqlite(db) => {
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
        let id = endpoint_id.to_owned();
        match self {
            Store::Postgres(_) => unported(),
            Store::Sqlite(db) => {
                db.write(move |c| deliveries::recover(c, &id, since, until, now))
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
        let e = ep.clone();
        match self {
            Store::Postgres(_) => unported(),
            Store::Sqlite(db) => {
                db.write(move |c| deliveries::replay_missing(c, &e, since, until, now))
                    .await
            }
        }
    }

    /// Makes `secret` the endpoint's signing key; the previous one signs until `now +
    /// grace_ms`.
    pub async fn rotate_secret(
        &self,
        endpoint_id: &str,
        secret: String,
        grace_ms: i64,
        now: i64,
    ) -> DbResult<()> {
        let (id, key) = (endpoint_id.to_owned(), self.main_key().clone());
        match self {
            Store::Postgres(_) => unported(),
            Store::Sqlite(db) => {
                db.write(move |c| endpoints::rotate_secret(c, &key, &id, &secret, grace_ms, now))
                    .await
            }
        }
    }

    /// One more attempt of a message at an endpoint, due now (manual trigger).
    pub async fn resend(
        &self,
        msg_id: &str,
        endpoint_id: &str,
        max_attempts: u32,
        now: i64,
    ) -> DbResult<()> {
        let (m, e) = (msg_id.to_owned(), endpoint_id.to_owned());
        match self {
            Store::Postgres(_) => unported(),
            Store::Sqlite(db) => {
                db.write(move |c| deliveries::resend(c, &m, &e, max_attempts, now))
                    .await
            }
        }
    }

    /// Records a test send: its message and its one attempt.
    pub async fn record_test_send(&self, t: TestSend) -> DbResult<()> {
        match self {
            Store::Postgres(_) => unported(),
            Store::Sqlite(db) => db.write(move |c| admin::record_test_send(c, &t)).await,
        }
    }
}
