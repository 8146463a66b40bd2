//! The outbox as the dispatcher and housekeeping see it: claims, results, retention.

use super::{unported, AttemptResult, Claimed, Recorded, Store};
use crate::db::sqlite::{deliveries, idempotency, messages, operational};
use crate::db::DbResult;
use crate::domain::retry::RetrySchedule;
use crate::domain::time::Clock;
use std::sync::Arc;

/// Rows changed per write by the retention purges: each write lock stays short.
const PURGE_BATCH: usize = 500;

impl Store {
    /// Leases up to `limit` deliveries due at `now` until `lease_until`, oldest due first,
    /// none of an endpoint in `busy`.
    pub async fn claim_due(
        &self,
        now: i64,
        limit: usize,
        lease_until: i64,
        busy: Vec<String>,
    ) -> DbResult<Vec<Claimed>> {
        match self {
            Store::Postgres(_) => unported(),
            Store::Sqlite(db) => {
                db.write(move |c| deliveries::claim_due(c, now, limit, lease_until, &busy))
                    .await
            }
        }
    }

    /// When the next delivery falls due, if any is pending.
    pub async fn next_due(&self) -> DbResult<Option<i64>> {
        match self {
            Store::Postgres(_) => unported(),
            Store::Sqlite(db) => db.read(deliveries::next_due).await,
        }
    }

    /// Makes every leased delivery due again (at start: the previous run's leases); how many.
    pub async fn release_all_leases(&self) -> DbResult<usize> {
        match self {
            Store::Postgres(_) => unported(),
            Store::Sqlite(db) => db.write(deliveries::release_all_leases).await,
        }
    }

    /// Writes a batch of results: each attempt recorded and its delivery moved on by
    /// `schedule` (see `domain::delivery::transition`), the `skipped` deliveries marked so,
    /// and what that means for the operator announced. Returns what was recorded and whether
    /// anything was announced.
    pub async fn record_attempts(
        &self,
        attempts: Arc<Vec<AttemptResult>>,
        skipped: Arc<Vec<i64>>,
        schedule: Arc<RetrySchedule>,
        clock: Clock,
    ) -> DbResult<(Recorded, bool)> {
        match self {
            Store::Postgres(_) => unported(),
            Store::Sqlite(db) => {
                db.write(move |c| {
                    let now = clock.now_ms();
                    for id in skipped.iter() {
                        deliveries::skip(c, *id, now)?;
                    }
                    let rec = deliveries::record(c, &attempts, &schedule)?;
                    let announced = operational::announce(c, &rec.notices, now)?;
                    Ok((rec, announced))
                })
                .await
            }
        }
    }

    /// Drops the payloads whose retention ended by `now` (never one still being delivered);
    /// how many.
    pub async fn purge_expired_payloads(&self, now: i64) -> usize {
        match self {
            Store::Postgres(_) => unported().unwrap_or(0),
            Store::Sqlite(db) => {
                let purged = db
                    .write_batches("payload purge", PURGE_BATCH, move |c| {
                        messages::purge_expired(c, now, PURGE_BATCH)
                    })
                    .await;
                if purged > 0 {
                    if let Err(e) = db.write(|c| messages::release_free_pages(c, 2000)).await {
                        tracing::warn!(error = %e, "incremental vacuum failed");
                    }
                }
                purged
            }
        }
    }

    /// Forgets the idempotent responses stored before `cutoff`; how many.
    pub async fn purge_idempotency(&self, cutoff: i64) -> usize {
        match self {
            Store::Postgres(_) => unported().unwrap_or(0),
            Store::Sqlite(db) => {
                db.write_batches("idempotency purge", PURGE_BATCH, move |c| {
                    idempotency::purge(c, cutoff, PURGE_BATCH)
                })
                .await
            }
        }
    }

    /// Creates hookbox's own application when it does not exist yet; returns its id.
    pub async fn ensure_operational_app(&self, now: i64) -> DbResult<String> {
        match self {
            Store::Postgres(_) => unported(),
            Store::Sqlite(db) => db.write(move |c| operational::ensure_app(c, now)).await,
        }
    }
}
