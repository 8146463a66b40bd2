//! Alert recipients and the alerts outbox. The rules are `service::alerts`; alerts about
//! state changes are queued by the backends in the transactions of those changes.

use super::Store;
use crate::db::postgres;
use crate::db::sqlite::alerts;
use crate::db::DbResult;

pub use crate::db::sqlite::alerts::{Incident, Notification, Recipient, Sent};
use crate::domain::alerts::{Evaluated, Thresholds};

impl Store {
    pub async fn add_alert_recipient(&self, r: Recipient) -> DbResult<()> {
        match self {
            Store::Sqlite(db) => db.write(move |c| alerts::insert_recipient(c, &r)).await,
            Store::Postgres(pg) => {
                pg.read(async |c| postgres::alerts::insert_recipient(c, &r).await)
                    .await
            }
        }
    }

    /// The recipients of application `app_id`, or the operator's (`None`).
    pub async fn alert_recipients(&self, app_id: Option<String>) -> DbResult<Vec<Recipient>> {
        match self {
            Store::Sqlite(db) => {
                db.read(move |c| alerts::recipients(c, app_id.as_deref()))
                    .await
            }
            Store::Postgres(pg) => {
                pg.read(async |c| postgres::alerts::recipients(c, app_id.as_deref()).await)
                    .await
            }
        }
    }

    pub async fn alert_recipient(&self, id: &str) -> DbResult<Option<Recipient>> {
        let id = id.to_owned();
        match self {
            Store::Sqlite(db) => db.read(move |c| alerts::recipient(c, &id)).await,
            Store::Postgres(pg) => {
                pg.read(async |c| postgres::alerts::recipient_by_id(c, &id).await)
                    .await
            }
        }
    }

    pub async fn delete_alert_recipient(&self, id: &str) -> DbResult<bool> {
        let id = id.to_owned();
        match self {
            Store::Sqlite(db) => db.write(move |c| alerts::delete_recipient(c, &id)).await,
            Store::Postgres(pg) => {
                pg.read(async |c| postgres::alerts::delete_recipient(c, &id).await)
                    .await
            }
        }
    }

    /// Replaces the recipients that came from configuration with `current`, at once.
    pub async fn replace_config_alert_recipients(&self, current: Vec<Recipient>) -> DbResult<()> {
        match self {
            Store::Sqlite(db) => {
                db.write(move |c| alerts::replace_config_recipients(c, &current))
                    .await
            }
            Store::Postgres(pg) => {
                pg.write(async |tx| postgres::alerts::replace_config_recipients(tx, &current).await)
                    .await
            }
        }
    }

    /// Queues one alert to one address, leased to the caller until `lease_until`; its id.
    #[allow(clippy::too_many_arguments)]
    pub async fn queue_notification(
        &self,
        app_id: Option<String>,
        channel: &str,
        address: &str,
        rule: &str,
        data: String,
        now: i64,
        lease_until: i64,
    ) -> DbResult<i64> {
        let (channel, address, rule) = (channel.to_owned(), address.to_owned(), rule.to_owned());
        match self {
            Store::Sqlite(db) => {
                db.write(move |c| {
                    alerts::queue_one(
                        c,
                        app_id.as_deref(),
                        &channel,
                        &address,
                        &rule,
                        &data,
                        now,
                        lease_until,
                    )
                })
                .await
            }
            Store::Postgres(pg) => {
                pg.read(async |c| {
                    postgres::alerts::queue_one(
                        c,
                        app_id.as_deref(),
                        &channel,
                        &address,
                        &rule,
                        &data,
                        now,
                        lease_until,
                    )
                    .await
                })
                .await
            }
        }
    }

    /// Makes the alerts a previous run of this server was sending due again; how many. On
    /// SQLite that is every lease (one process owns them all); on PostgreSQL none (a lease
    /// ends by itself, and another node may hold it now).
    pub async fn release_alert_leases(&self) -> DbResult<usize> {
        match self {
            Store::Sqlite(db) => db.write(alerts::release_all_leases).await,
            Store::Postgres(_) => Ok(0),
        }
    }

    /// Leases up to `limit` alerts due at `now` until `lease_until`.
    pub async fn claim_notifications(
        &self,
        now: i64,
        limit: usize,
        lease_until: i64,
    ) -> DbResult<Vec<Notification>> {
        match self {
            Store::Sqlite(db) => {
                if !db.read(move |c| alerts::any_due(c, now)).await? {
                    return Ok(Vec::new());
                }
                db.write(move |c| alerts::claim_due(c, now, limit, lease_until))
                    .await
            }
            Store::Postgres(pg) => {
                let limit = i64::try_from(limit).unwrap_or(i64::MAX);
                pg.read(async |c| postgres::alerts::claim_due(c, now, limit, lease_until).await)
                    .await
            }
        }
    }

    /// Writes what became of an attempt to send alert `id`, leased until `lease_until`;
    /// `false` when that lease had ended (another round took the alert over).
    pub async fn finish_notification(
        &self,
        id: i64,
        lease_until: i64,
        sent: Sent,
        now: i64,
    ) -> DbResult<bool> {
        match self {
            Store::Sqlite(db) => {
                db.write(move |c| alerts::finish(c, id, lease_until, &sent, now))
                    .await
            }
            Store::Postgres(pg) => {
                pg.read(async |c| postgres::alerts::finish(c, id, lease_until, &sent, now).await)
                    .await
            }
        }
    }

    /// Alerts newest first: of application `app_id`'s recipients, or all (`None`).
    pub async fn notifications(
        &self,
        app_id: Option<String>,
        limit: usize,
    ) -> DbResult<Vec<Notification>> {
        match self {
            Store::Sqlite(db) => {
                db.read(move |c| alerts::list(c, app_id.as_deref(), limit))
                    .await
            }
            Store::Postgres(pg) => {
                let limit = i64::try_from(limit).unwrap_or(i64::MAX);
                pg.read(async |c| postgres::alerts::list(c, app_id.as_deref(), limit).await)
                    .await
            }
        }
    }

    pub async fn notification(&self, id: i64) -> DbResult<Option<Notification>> {
        match self {
            Store::Sqlite(db) => db.read(move |c| alerts::get(c, id)).await,
            Store::Postgres(pg) => pg.read(async |c| postgres::alerts::get(c, id).await).await,
        }
    }

    /// Looks at the endpoints' attempts over the alerts' window at `now`: opens and ends
    /// incidents and queues their alerts (see `domain::alerts::plan`).
    pub async fn evaluate_alerts(&self, now: i64, t: Thresholds) -> DbResult<Evaluated> {
        match self {
            Store::Sqlite(db) => db.write(move |c| alerts::evaluate(c, now, &t)).await,
            Store::Postgres(pg) => {
                pg.write(async |tx| postgres::alerts::evaluate(tx, now, &t).await)
                    .await
            }
        }
    }

    /// Incidents, open ones first, then newest first: of application `app_id`, or all.
    pub async fn alert_incidents(
        &self,
        app_id: Option<String>,
        limit: usize,
    ) -> DbResult<Vec<Incident>> {
        match self {
            Store::Sqlite(db) => {
                db.read(move |c| alerts::incidents(c, app_id.as_deref(), limit))
                    .await
            }
            Store::Postgres(pg) => {
                pg.read(async |c| postgres::alerts::incidents(c, app_id.as_deref(), limit).await)
                    .await
            }
        }
    }
}
