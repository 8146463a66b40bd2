//! The outbox as the dispatcher and housekeeping see it: claims, results, retention.

use super::{AttemptResult, Claimed, Recorded, Store};
use crate::db::postgres;
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
            Store::Sqlite(db) => {
                db.write_replayable(move |c| {
                    deliveries::claim_due(c, now, limit, lease_until, &busy)
                })
                .await
            }
            Store::Postgres(pg) => {
                let max = limit;
                let limit = i64::try_from(limit).unwrap_or(i64::MAX);
                let heads = pg
                    .read(async |c| {
                        postgres::deliveries::claim_due(
                            c,
                            &pg.node(),
                            now,
                            limit,
                            lease_until,
                            &busy,
                        )
                        .await
                    })
                    .await?;
                if heads.iter().all(|d| d.lane.is_none()) {
                    return Ok(heads);
                }
                // The first of an ordered endpoint's line comes with those waiting behind it.
                let mut out = Vec::with_capacity(heads.len());
                let n = heads.len();
                for (i, d) in heads.into_iter().enumerate() {
                    // As many as `limit` leaves room for.
                    let room = deliveries::follower_room(max, out.len(), n, i);
                    let behind = match d.lane {
                        Some(lane) if room > 0 => {
                            let room = i64::try_from(room).unwrap_or(0);
                            let leased = pg
                                .write(async |tx| {
                                    postgres::lanes::lease_followers(
                                        tx,
                                        &d,
                                        lane,
                                        room,
                                        now,
                                        lease_until,
                                    )
                                    .await
                                })
                                .await;
                            // The first is claimed already: it goes alone.
                            leased.unwrap_or_else(|e| {
                                tracing::warn!(error = %e, "cannot claim an ordered line's next deliveries");
                                Vec::new()
                            })
                        }
                        _ => Vec::new(),
                    };
                    out.push(d);
                    out.extend(behind);
                }
                Ok(out)
            }
        }
    }

    /// Whether this server may still send `claimed`, just before it does: always on SQLite;
    /// on PostgreSQL while the lease is still this node's. A node whose heartbeat is
    /// overdue (it may have been paused, and taken for dead) checks in first; one the others
    /// took for dead has rejoined under a new name, and what it claimed before is theirs.
    pub async fn still_holds(&self, claimed: &Claimed) -> DbResult<bool> {
        match self {
            Store::Sqlite(_) => Ok(true),
            Store::Postgres(pg) => {
                let owner = claimed.owner.as_deref().unwrap_or_default();
                match pg.holds(owner) {
                    postgres::Holds::Yes => Ok(true),
                    postgres::Holds::No => Ok(false),
                    postgres::Holds::Unsure => {
                        pg.check_in().await?;
                        Ok(pg.holds(owner) == postgres::Holds::Yes)
                    }
                }
            }
        }
    }

    /// Whether a claimed delivery is still to be sent: its message's content was not deleted
    /// meanwhile, nor the delivery ended otherwise.
    pub async fn still_pending(&self, delivery_id: i64) -> DbResult<bool> {
        match self {
            Store::Sqlite(db) => {
                db.read(move |c| deliveries::still_pending(c, delivery_id))
                    .await
            }
            Store::Postgres(pg) => {
                pg.read(async |c| postgres::deliveries::still_pending(c, delivery_id).await)
                    .await
            }
        }
    }

    /// When the next delivery falls due, if any is pending.
    pub async fn next_due(&self) -> DbResult<Option<i64>> {
        match self {
            Store::Sqlite(db) => db.read(deliveries::next_due).await,
            Store::Postgres(pg) => {
                pg.read(async |c| postgres::deliveries::next_due(c).await)
                    .await
            }
        }
    }

    /// Makes due again the deliveries leased by a previous run of this server; how many. On
    /// SQLite that is every lease (one process owns them all); on PostgreSQL only this node's
    /// own (the leases of other nodes that died are freed by the heartbeat sweep, never at
    /// start, since their owners may be alive).
    pub async fn release_all_leases(&self, now: i64) -> DbResult<usize> {
        match self {
            Store::Sqlite(db) => {
                db.write(move |c| deliveries::release_all_leases(c, now))
                    .await
            }
            // A node's name is new at each start: nothing leased is a previous run's, and
            // what this run leased (ingest may have, already) is in flight. Ordered lines
            // left with no first (copied in, say) go on.
            Store::Postgres(pg) => {
                pg.write(async |tx| postgres::lanes::advance_all(tx, now).await)
                    .await?;
                Ok(0)
            }
        }
    }

    /// Writes a batch of results: each attempt recorded and its delivery moved on by
    /// `schedule` (see `domain::delivery::transition`), the `skipped` deliveries marked so,
    /// the `released` ones (not sent: one before them in their ordered endpoint's line
    /// failed) left to wait their turn again, each ordered line touched moved on from its
    /// first, and what that means for the operator announced. Returns what was recorded
    /// (`next_due` is now when a line moved on) and whether anything was announced.
    pub async fn record_attempts(
        &self,
        attempts: Arc<Vec<AttemptResult>>,
        skipped: Arc<Vec<Claimed>>,
        released: Arc<Vec<Claimed>>,
        schedule: Arc<RetrySchedule>,
        clock: Clock,
    ) -> DbResult<(Recorded, bool)> {
        match self {
            Store::Postgres(pg) => {
                let now = clock.now_ms();
                let (written, announced) = pg
                    .write(async |tx| {
                        // The ordered lines touched are taken first (see `postgres::lanes`).
                        let lines = deliveries::lines_touched(&attempts, &skipped, &released);
                        postgres::lanes::lock(tx, lines.iter().copied()).await?;
                        for d in skipped.iter() {
                            let owner = d.owner.as_deref().unwrap_or_default();
                            postgres::deliveries::skip(tx, owner, d.delivery_id, now).await?;
                        }
                        postgres::deliveries::release(tx, &released).await?;
                        let mut w = postgres::deliveries::record(tx, &attempts, &schedule).await?;
                        for ep in lines {
                            if postgres::lanes::advance(tx, ep, now).await? {
                                w.recorded.next_due = Some(now);
                            }
                        }
                        let announced = postgres::operational::announce(
                            tx,
                            &pg.node(),
                            &w.recorded.notices,
                            now,
                        )
                        .await?;
                        Ok((w, announced))
                    })
                    .await?;
                if written.fenced > 0 {
                    tracing::warn!(
                        results = written.fenced,
                        "results dropped: their deliveries were deleted, or leased to another node, meanwhile"
                    );
                }
                Ok((written.recorded, announced))
            }
            Store::Sqlite(db) => {
                db.write_replayable(move |c| {
                    let now = clock.now_ms();
                    for d in skipped.iter() {
                        deliveries::skip(c, d.delivery_id, now)?;
                    }
                    deliveries::release(c, &released)?;
                    let mut rec = deliveries::record(c, &attempts, &schedule)?;
                    let lines = deliveries::lines_touched(&attempts, &skipped, &released);
                    if deliveries::advance_lanes(c, lines, now)? {
                        rec.next_due = Some(now);
                    }
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
            Store::Postgres(pg) => {
                let mut purged = 0;
                loop {
                    match pg
                        .write(async |tx| {
                            postgres::messages::purge_expired(tx, now, PURGE_BATCH).await
                        })
                        .await
                    {
                        Ok(n) => {
                            purged += n;
                            if n < PURGE_BATCH {
                                return purged;
                            }
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "payload purge failed");
                            return purged;
                        }
                    }
                }
            }
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
            Store::Postgres(pg) => {
                let mut purged = 0;
                loop {
                    match pg
                        .read(async |c| postgres::idempotency::purge(c, cutoff, PURGE_BATCH).await)
                        .await
                    {
                        Ok(n) => {
                            purged += n;
                            if n < PURGE_BATCH {
                                return purged;
                            }
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "idempotency purge failed");
                            return purged;
                        }
                    }
                }
            }
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
            Store::Sqlite(db) => db.write(move |c| operational::ensure_app(c, now)).await,
            Store::Postgres(pg) => {
                // Nodes starting together: one creates it, the others then find it.
                pg.write(async |tx| {
                    postgres::locks::wait(tx, postgres::locks::Chore::Bootstrap).await?;
                    postgres::operational::ensure_app(tx, now).await
                })
                .await
            }
        }
    }
}
