//! The storage seam. A [`Store`] is an enum over backends rather than a trait object: the
//! hot paths (`ingest`, `claim_due`, `record_attempts`) dispatch statically with no boxed
//! futures, and adding a backend makes the compiler list every method that must handle it.
//! Each method is one use case, and each change is one transaction, except the retention
//! purges (`purge_*`), which work in small batches. Some methods take a closure: it is a pure
//! function of the entity (how `put_app`, `put_event_type` and `change_event_type` build the
//! new value, which delivery `ingest` hands to the dispatcher at once, the reason text of
//! `disable_failing_endpoints`), run inside the transaction, never I/O. The entities and read
//! models they return are re-exported here, so callers never name a backend's module.
//!
//! What still has the shape of one SQLite process, for a second backend to revisit: claimed
//! deliveries and skipped results are named by a row id (`Claimed::delivery_id`),
//! `release_all_leases` at start assumes this process owned every lease, and
//! `token_by_hash` notes the token's use with a second, best-effort write.

mod admin;
mod alerts;
mod apps;
mod deliveries;
mod endpoints;
mod event_types;
mod logins;
mod messages;
mod portal;
mod tasks;
mod tokens;

use super::postgres::PgStore;
pub use super::postgres::Signal as PeerSignal;
use super::sqlite::{self, Db};
use super::{DbOptions, DbResult};
use crate::domain::crypto::MainKey;
use std::sync::Arc;

pub use super::sqlite::admin::{
    Activity, AdminUser, Failure, Health, Session as AdminSession, TestSend, Times, Totals,
    Troubled,
};
pub use super::sqlite::apps::App;
pub use super::sqlite::attempts::{Attempt, AttemptFilter};
pub use super::sqlite::deliveries::{
    AttemptNotice, AttemptResult, Claimed, EndpointMessage, MessageEndpoint, Notice, Outcome,
    Recorded, Stats,
};
pub use super::sqlite::endpoints::{Endpoint, Owner, Secret};
pub use super::sqlite::event_types::EventType;
pub use super::sqlite::idempotency::Key as IdempotencyKey;
pub use super::sqlite::lanes::{Head as LaneHead, Unblock};
pub use super::sqlite::messages::{Ingested, Message, MessageFilter};
pub use super::sqlite::portal::{Link as PortalLink, Session as PortalSession};
pub use super::sqlite::stats::{Analytics, Gauges};
pub use super::sqlite::tokens::Token;
pub use super::sqlite::WriterStats;
pub use admin::{Dashboard, EndpointSummary};
pub use alerts::{Incident, Notification, Recipient, Sent};
pub use endpoints::HealthReport;
pub use event_types::operational_event_types;
pub use messages::NewMessage;

/// Where hookbox keeps its state.
#[derive(Clone)]
pub enum Store {
    /// One SQLite file: one writer thread with group commit, a pool of readers.
    Sqlite(Db),
    /// A PostgreSQL database that several nodes share.
    Postgres(PgStore),
}

impl Store {
    /// A SQLite store in `dir` with a new main key and no fsync: for tests.
    #[cfg(test)]
    pub(crate) fn sqlite_for_tests(dir: &std::path::Path) -> Store {
        let opts = DbOptions {
            path: dir.join("hookbox.db"),
            max_size_mib: 0,
            synchronous: "NORMAL".into(),
            readers: 1,
            max_batch: 16,
        };
        Store::open_sqlite(&opts, MainKey::generate()).unwrap()
    }

    /// Opens (creating and migrating if needed) the SQLite database described by `opts`.
    pub fn open_sqlite(opts: &DbOptions, main_key: MainKey) -> DbResult<Store> {
        Ok(Store::Sqlite(Db::open(opts, main_key)?))
    }

    /// Connects to the PostgreSQL database at `url` (migrating it if needed) with a pool of
    /// at most `pool_size` connections.
    pub async fn open_postgres(url: &str, pool_size: usize, main_key: MainKey) -> DbResult<Store> {
        Ok(Store::Postgres(
            PgStore::open(url, pool_size, main_key).await?,
        ))
    }

    /// The key that seals endpoint secrets at rest.
    pub fn main_key(&self) -> &Arc<MainKey> {
        match self {
            Store::Sqlite(db) => &db.main_key,
            Store::Postgres(pg) => &pg.main_key,
        }
    }

    /// Flushes and closes: every acknowledged write is durable when this returns.
    pub async fn close(&self) {
        match self {
            Store::Sqlite(db) => db.close().await,
            Store::Postgres(pg) => {
                match pg.leave().await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(
                        deliveries = n,
                        "gave back unsent deliveries to the other nodes"
                    ),
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot give back this node's leases; the others free them once it is taken for dead")
                    }
                }
                pg.pool.close();
            }
        }
    }

    /// Tells the other nodes sharing the database (none on SQLite).
    pub fn tell_peers(&self, s: PeerSignal) {
        match self {
            Store::Sqlite(_) => {}
            Store::Postgres(pg) => pg.tell_peers(s),
        }
    }

    /// This node's part in a cluster until `cancel` (heartbeats, freeing dead nodes' leases,
    /// signals to and from the others; see `PgStore::run_node`), handing what it hears to
    /// `on_signal`. Returns at once on SQLite, which has no other nodes.
    pub async fn run_node(
        &self,
        every: std::time::Duration,
        dead_after: std::time::Duration,
        on_signal: impl Fn(PeerSignal),
        cancel: tokio_util::sync::CancellationToken,
    ) {
        match self {
            Store::Sqlite(_) => {}
            Store::Postgres(pg) => pg.run_node(every, dead_after, on_signal, cancel).await,
        }
    }

    /// Reserves a send to a rate-limited endpoint among every node sharing the store; returns
    /// how long to wait before it goes. One server paces its endpoints alone: `None`.
    pub async fn reserve_send(
        &self,
        endpoint_id: &str,
        rate: u32,
    ) -> DbResult<Option<std::time::Duration>> {
        match self {
            Store::Sqlite(_) => Ok(None),
            Store::Postgres(pg) => pg
                .read(async |c| {
                    super::postgres::pacing::reserve_send(c, endpoint_id, rate, None).await
                })
                .await
                .map(|us| {
                    Some(std::time::Duration::from_micros(
                        u64::try_from(us).unwrap_or(0),
                    ))
                }),
        }
    }

    /// Whether this server does this round of the periodic chore `name` (due every
    /// `every_ms`): always alone; among nodes, the one that takes the round.
    pub async fn take_turn(&self, name: &str, every_ms: i64) -> DbResult<bool> {
        match self {
            Store::Sqlite(_) => Ok(true),
            Store::Postgres(pg) => {
                pg.read(async |c| {
                    // A little early, so that the node whose timer fires first takes it.
                    // On the database's clock: the nodes' own may differ.
                    super::postgres::pacing::take_turn(c, name, None, every_ms * 9 / 10).await
                })
                .await
            }
        }
    }

    /// Whether the database answers a trivial query within `within` (a file on SQLite: always).
    pub async fn reachable(&self, within: std::time::Duration) -> DbResult<()> {
        match self {
            Store::Sqlite(_) => Ok(()),
            Store::Postgres(pg) => pg.reachable(within).await,
        }
    }

    /// How many nodes share the store (1 on SQLite), as of the last heartbeat.
    pub fn live_nodes(&self) -> usize {
        match self {
            Store::Sqlite(_) => 1,
            Store::Postgres(pg) => pg.live_nodes(),
        }
    }

    /// Whether other nodes may share this store.
    pub fn is_shared(&self) -> bool {
        matches!(self, Store::Postgres(_))
    }

    /// The writer's counters, for `/metrics`.
    pub fn writer_stats(&self) -> &WriterStats {
        match self {
            Store::Sqlite(db) => db.writer.stats(),
            Store::Postgres(pg) => &pg.stats,
        }
    }

    /// Figures read at scrape time, for `/metrics`.
    pub async fn gauges(&self, now: i64) -> DbResult<Gauges> {
        match self {
            Store::Sqlite(db) => db.read(move |c| sqlite::stats::gauges(c, now)).await,
            Store::Postgres(pg) => {
                pg.read(async |c| super::postgres::stats::gauges(c, now).await)
                    .await
            }
        }
    }
}
