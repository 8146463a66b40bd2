//! The PostgreSQL backend, for several nodes sharing one database. What exists so far: the
//! connection pool, the schema migrations (`migrations/postgres/`, applied once per cluster
//! under an advisory lock), ingest, the outbox queue (claims, fenced write-back, heartbeats),
//! notifications and once-per-cluster chores, each tested on a real cluster. The `Store` does
//! not run on it yet.

use super::{DbError, DbResult, Page, PageQuery};
use crate::domain::crypto::MainKey;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
pub use notify::Signal;
use std::sync::Arc;
use tokio_postgres::types::{to_sql_checked, FromSql, IsNull, ToSql, Type};

type BoxError = Box<dyn std::error::Error + Sync + Send>;

use bytes::BytesMut;

macro_rules! keyed_plans {
    () => {
        "SET LOCAL plan_cache_mode = force_generic_plan; SET LOCAL enable_seqscan = off"
    };
}

/// Sent, pipelined with the first statement, by a transaction whose statements all find their
/// rows by key: ingest and the write-back of results, the hot path. Their plans are then made
/// once per connection, and a sequential scan is priced out even while the tables are small
/// (the plan tests check that each row is looked up by key). Left to itself, PostgreSQL plans
/// such a statement again on every call when its arrays are short (a custom plan looks cheaper
/// than the generic one, which assumes ten elements), and keeps a generic plan made while a
/// table was nearly empty (a hash join over all of `deliveries`) until autovacuum next analyzes
/// the table, a minute or more later.
pub(crate) const KEYED_PLANS: &str = keyed_plans!();
/// [`KEYED_PLANS`] opening a transaction by hand (see [`messages::Bracket`]).
pub(crate) const BEGIN_KEYED_PLANS: &str = concat!("BEGIN; ", keyed_plans!());

/// A pooled connection in a transaction opened by hand, whose BEGIN and COMMIT travel with
/// its statements (see [`messages::Bracket`]). Dropped before [`HandTx::done`], its
/// connection is closed rather than returned to the pool, so that no one else gets it inside
/// this transaction; PostgreSQL rolls back what the transaction had not committed (a COMMIT
/// already on its way may still land).
pub(crate) struct HandTx(Option<deadpool_postgres::Object>);

impl HandTx {
    pub(crate) fn new(c: deadpool_postgres::Object) -> HandTx {
        HandTx(Some(c))
    }

    pub(crate) fn client(&self) -> &deadpool_postgres::Client {
        self.0
            .as_ref()
            .expect("a HandTx holds its connection until it ends")
    }

    /// The transaction has ended (committed, or rolled back): the connection goes back to the
    /// pool.
    pub(crate) fn done(mut self) {
        drop(self.0.take());
    }

    /// Rolls back whatever is open, then gives the connection back; if the connection cannot
    /// say it rolled back, it is closed instead.
    pub(crate) async fn rollback(self) {
        if self.client().batch_execute("ROLLBACK").await.is_ok() {
            self.done();
        }
    }
}

impl Drop for HandTx {
    fn drop(&mut self) {
        if let Some(c) = self.0.take() {
            drop(deadpool_postgres::Object::take(c));
        }
    }
}

// Tested against a real cluster; the Store does not call them yet.
pub(crate) mod admin;
pub(crate) mod alerts;
pub(crate) mod apps;
pub(crate) mod attempts;
pub(crate) mod copy;
pub(crate) mod deliveries;
pub(crate) mod endpoints;
pub(crate) mod event_types;
pub(crate) mod group;
pub(crate) mod idempotency;
pub(crate) mod lanes;
pub(crate) mod locks;
pub(crate) mod logins;
pub(crate) mod messages;
pub(crate) mod notify;
pub(crate) mod operational;
pub(crate) mod pacing;
pub(crate) mod portal;
mod queue;
pub(crate) mod stats;
pub mod tasks;
pub(crate) mod tokens;

const MIGRATIONS: &[(&str, &str)] = &[
    (
        "0001_init",
        include_str!("../../../migrations/postgres/0001_init.sql"),
    ),
    (
        "0002_cluster_pacing",
        include_str!("../../../migrations/postgres/0002_cluster_pacing.sql"),
    ),
    (
        "0003_login_throttle",
        include_str!("../../../migrations/postgres/0003_login_throttle.sql"),
    ),
    (
        "0004_alerts",
        include_str!("../../../migrations/postgres/0004_alerts.sql"),
    ),
    (
        "0005_alert_incidents",
        include_str!("../../../migrations/postgres/0005_alert_incidents.sql"),
    ),
    (
        "0006_endpoint_policy",
        include_str!("../../../migrations/postgres/0006_endpoint_policy.sql"),
    ),
    (
        "0007_signature_header",
        include_str!("../../../migrations/postgres/0007_signature_header.sql"),
    ),
    (
        "0008_payload_filter",
        include_str!("../../../migrations/postgres/0008_payload_filter.sql"),
    ),
    (
        "0009_signature_version",
        include_str!("../../../migrations/postgres/0009_signature_version.sql"),
    ),
    (
        "0010_background_tasks",
        include_str!("../../../migrations/postgres/0010_background_tasks.sql"),
    ),
    (
        "0011_ordered_delivery",
        include_str!("../../../migrations/postgres/0011_ordered_delivery.sql"),
    ),
    (
        "0012_ordered_lines",
        include_str!("../../../migrations/postgres/0012_ordered_lines.sql"),
    ),
    (
        "0013_main_key_check",
        include_str!("../../../migrations/postgres/0013_main_key_check.sql"),
    ),
];

/// Whether the database holds hookbox's tables (whatever their version).
pub async fn has_schema(c: &impl deadpool_postgres::GenericClient) -> DbResult<bool> {
    Ok(
        c.query_one("SELECT to_regclass('api_tokens') IS NOT NULL", &[])
            .await?
            .get(0),
    )
}

/// The advisory lock that makes one node at a time apply migrations.
const MIGRATION_LOCK: i64 = 0x686f_6f6b_626f_7801;

impl From<tokio_postgres::Error> for DbError {
    fn from(e: tokio_postgres::Error) -> Self {
        use tokio_postgres::error::SqlState;
        match e.code() {
            Some(c)
                if *c == SqlState::CHARACTER_NOT_IN_REPERTOIRE
                    || *c == SqlState::UNTRANSLATABLE_CHARACTER =>
            {
                DbError::Unstorable("text must not contain the NUL character (\\u0000)".into())
            }
            // What the request refers to was deleted (by another request, or on another
            // node) while it ran: the checks before the write had found it.
            Some(c) if *c == SqlState::FOREIGN_KEY_VIOLATION => DbError::Conflict(format!(
                "what this request refers to was deleted while it ran ({}); try again",
                e.as_db_error().map_or("", |d| d.message())
            )),
            Some(c)
                if *c == SqlState::T_R_DEADLOCK_DETECTED
                    || *c == SqlState::T_R_SERIALIZATION_FAILURE =>
            {
                DbError::Contended(
                    e.as_db_error()
                        .map_or_else(|| e.to_string(), |d| d.message().to_owned()),
                )
            }
            _ if unreachable(&e) => DbError::Unreachable(with_causes(&e)),
            _ => DbError::Postgres(match e.as_db_error() {
                Some(db) => format!("{}: {}", db.code().code(), db.message()),
                None => with_causes(&e),
            }),
        }
    }
}

/// `e` and what caused it ("error connecting to server: Connection refused (os error 111)"):
/// the driver's own text leaves the cause out.
fn with_causes(e: &tokio_postgres::Error) -> String {
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        let more = c.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        cause = c.source();
    }
    text
}

/// Whether a [`DbError::Postgres`] message, as `From<tokio_postgres::Error>` writes it
/// ("23514: …"), is of SQLSTATE class 22 (data exception) or 23 (integrity constraint
/// violation): the database refused the data itself.
pub(crate) fn refuses_data(message: &str) -> bool {
    message
        .get(..6)
        .is_some_and(|c| (c.starts_with("22") || c.starts_with("23")) && c.ends_with(':'))
}

/// Whether `e` says the database cannot be reached: no connection, a connection that broke
/// or timed out, or a server that is shutting down or not yet accepting connections.
fn unreachable(e: &tokio_postgres::Error) -> bool {
    use std::io::ErrorKind as K;
    use tokio_postgres::error::SqlState;
    if let Some(c) = e.code() {
        return c.code().starts_with("08")
            || *c == SqlState::ADMIN_SHUTDOWN
            || *c == SqlState::CRASH_SHUTDOWN
            || *c == SqlState::CANNOT_CONNECT_NOW
            || *c == SqlState::TOO_MANY_CONNECTIONS
            // A server that became a standby (after a failover) refuses writes.
            || *c == SqlState::READ_ONLY_SQL_TRANSACTION;
    }
    // Not every I/O error: encoding a query (our own mistake) fails with one too.
    let network = std::error::Error::source(e)
        .and_then(|s| s.downcast_ref::<std::io::Error>())
        .is_some_and(|io| {
            matches!(
                io.kind(),
                K::ConnectionRefused
                    | K::ConnectionReset
                    | K::ConnectionAborted
                    | K::NotConnected
                    | K::BrokenPipe
                    | K::TimedOut
                    | K::UnexpectedEof
                    | K::AddrNotAvailable
                    | K::HostUnreachable
                    | K::NetworkUnreachable
            )
        });
    let text = e.to_string();
    e.is_closed()
        || network
        || text.starts_with("error connecting to server")
        || text.starts_with("timeout waiting for server")
}

impl From<deadpool_postgres::PoolError> for DbError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        use deadpool_postgres::PoolError as P;
        match e {
            P::Backend(e) => e.into(),
            P::Timeout(_) | P::Closed => DbError::Unreachable(e.to_string()),
            other => DbError::Postgres(other.to_string()),
        }
    }
}

/// How every connection to the database at `url` is made: as the URL says, with timeouts
/// that notice a database gone quiet in seconds where the URL sets none.
pub(crate) fn connection_config(url: &str) -> DbResult<tokio_postgres::Config> {
    let mut cfg: tokio_postgres::Config = url
        .parse()
        .map_err(|e| DbError::Postgres(format!("the database URL cannot be read: {e}")))?;
    // A database that stops answering is noticed in seconds, not at the system's TCP
    // timeouts (minutes).
    if cfg.get_connect_timeout().is_none() {
        cfg.connect_timeout(std::time::Duration::from_secs(5));
    }
    cfg.keepalives_idle(std::time::Duration::from_secs(30));
    // A network that silently drops everything is noticed in seconds too: what was sent and
    // not acknowledged for 15 s closes the connection (and the request fails with 503).
    if cfg.get_tcp_user_timeout().is_none() {
        cfg.tcp_user_timeout(std::time::Duration::from_secs(15));
    }
    Ok(cfg)
}

/// A pool of at most `size` connections to the database at `url`
/// (`postgres://USER[:PASS]@HOST:PORT/DB`).
pub fn pool(url: &str, size: usize) -> DbResult<Pool> {
    let cfg = connection_config(url)?;
    let config = ManagerConfig {
        recycling_method: RecyclingMethod::Fast,
    };
    let manager = match tokio::runtime::Handle::try_current() {
        Ok(runtime) => Manager::from_connect(cfg, OnRuntime(runtime), config),
        Err(_) => Manager::from_config(cfg, tokio_postgres::NoTls, config),
    };
    Pool::builder(manager)
        .max_size(size.max(1))
        .runtime(deadpool_postgres::Runtime::Tokio1)
        .create_timeout(Some(std::time::Duration::from_secs(10)))
        .wait_timeout(Some(std::time::Duration::from_secs(30)))
        .build()
        .map_err(|e| DbError::Postgres(e.to_string()))
}

/// Opens connections on the runtime the pool was made on, whichever runtime asks for one. A
/// connection's socket and task belong to the runtime that opened it; the HTTP workers'
/// runtimes stop before the store is closed at shutdown, and connections opened there would
/// die with them, failing the requests and the hand-back still running.
struct OnRuntime(tokio::runtime::Handle);

type Connected =
    Result<(tokio_postgres::Client, tokio::task::JoinHandle<()>), tokio_postgres::Error>;

impl deadpool_postgres::Connect for OnRuntime {
    fn connect(
        &self,
        cfg: &tokio_postgres::Config,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Connected> + Send + '_>> {
        let cfg = cfg.clone();
        Box::pin(async move {
            let opening = cfg.clone();
            let opened = self.0.spawn(async move {
                let (client, connection) = opening.connect(tokio_postgres::NoTls).await?;
                let task = tokio::spawn(async move {
                    if let Err(e) = connection.await {
                        tracing::warn!(error = %e, "a database connection ended");
                    }
                });
                Ok((client, task))
            });
            match opened.await {
                Ok(connected) => connected,
                // That runtime is stopping: open it here instead.
                Err(_) => {
                    let (client, connection) = cfg.connect(tokio_postgres::NoTls).await?;
                    Ok((
                        client,
                        tokio::spawn(async move {
                            let _ = connection.await;
                        }),
                    ))
                }
            }
        })
    }
}

/// Applies every migration the database lacks, in one transaction that holds the migration
/// lock, so nodes starting together apply each once; returns the schema version.
pub async fn migrate(pool: &Pool) -> DbResult<i64> {
    let mut conn = pool.get().await?;
    let tx = conn.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (\
             version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)",
    )
    .await?;
    let current: i64 = tx
        .query_one(
            "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
            &[],
        )
        .await?
        .get(0);
    let mut version = current;
    for (i, (name, sql)) in MIGRATIONS.iter().enumerate() {
        let v = i64::try_from(i).unwrap_or(i64::MAX) + 1;
        if v <= current {
            continue;
        }
        tx.batch_execute(sql).await?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
            &[&v, name, &crate::domain::time::now_ms()],
        )
        .await?;
        version = v;
    }
    tx.commit().await?;
    Ok(version)
}

/// The PostgreSQL backend as the [`Store`](super::Store) holds it: a pool of connections,
/// the key that seals endpoint secrets, and this node's name (the owner of its leases).
#[derive(Clone)]
pub struct PgStore(Arc<Inner>);

pub struct Inner {
    pub pool: Pool,
    pub url: String,
    pub main_key: Arc<MainKey>,
    /// This node's name: leases it takes carry it. A node the others took for dead rejoins
    /// under a new one.
    node: std::sync::RwLock<Arc<str>>,
    /// When this node last heard from the database that it is alive (ms since `started`,
    /// by the monotonic clock).
    alive_at: std::sync::atomic::AtomicU64,
    started: std::time::Instant,
    /// How long a silent node stays a member (`database.node_timeout`), in ms.
    dead_after: std::sync::atomic::AtomicI64,
    /// One check-in at a time: deliveries that find the heartbeat overdue together rename
    /// the node once.
    checking_in: tokio::sync::Mutex<()>,
    /// Names this node left behind when it rejoined, and when: claims that were in flight
    /// then may still commit under them, so their leases are given back at each heartbeat for
    /// a minute.
    retired: std::sync::Mutex<Vec<(Arc<str>, std::time::Instant)>>,
    /// Signals for the other nodes, sent after commit.
    pub outgoing: notify::Outgoing,
    /// Nodes alive at the last heartbeat (this one included).
    pub live_nodes: std::sync::atomic::AtomicUsize,
    /// Kept for `/metrics`, which reports the SQLite writer's figures (zero here).
    pub stats: super::sqlite::WriterStats,
    /// Ingest's group commit, started by the first message.
    grouper: std::sync::OnceLock<group::Grouper>,
    /// The runtime the store was opened on, which outlives the HTTP workers' (whose requests
    /// hand their messages to the grouper until the end).
    runtime: tokio::runtime::Handle,
}

impl std::ops::Deref for PgStore {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl PgStore {
    /// Connects to `url` with a pool of at most `pool_size` connections and brings the
    /// schema up to date.
    pub async fn open(url: &str, pool_size: usize, main_key: MainKey) -> DbResult<PgStore> {
        let pool = pool(url, pool_size)?;
        migrate(&pool).await?;
        let node = new_node_name();
        let mut c = pool.get().await?;
        let started = std::time::Instant::now();
        let tx = c.transaction().await?;
        join(&tx, &main_key, &node).await?;
        tx.commit().await?;
        let (_, live) = queue::free_dead_leases(&mut c, None, i64::MAX / 2).await?;
        drop(c);
        Ok(PgStore(Arc::new(Inner {
            pool,
            url: url.to_owned(),
            main_key: Arc::new(main_key),
            node: std::sync::RwLock::new(node.into()),
            alive_at: std::sync::atomic::AtomicU64::new(0),
            started,
            dead_after: std::sync::atomic::AtomicI64::new(DEFAULT_DEAD_AFTER_MS),
            checking_in: tokio::sync::Mutex::new(()),
            retired: std::sync::Mutex::new(Vec::new()),
            outgoing: notify::Outgoing::default(),
            live_nodes: std::sync::atomic::AtomicUsize::new(live),
            stats: Default::default(),
            grouper: std::sync::OnceLock::new(),
            runtime: tokio::runtime::Handle::current(),
        })))
    }

    /// Stores a message with the others queued at the same time (see `group`).
    pub async fn ingest_grouped(&self, job: group::Job) -> DbResult<messages::GroupOutcome> {
        let grouper = self.grouper.get_or_init(|| {
            // A quarter of the pool stores groups; the rest serves claims, results and reads.
            let slots = self.pool.status().max_size / 4;
            group::Grouper::start(&self.runtime, Arc::downgrade(&self.0), slots)
        });
        grouper.send(job).await.map_err(|_| DbError::WriterGone)?
    }

    /// Tells the other nodes `s` (coalesced, after the caller's commit).
    pub fn tell_peers(&self, s: Signal) {
        self.outgoing.send(s);
    }

    /// This node's part in the cluster, until `cancel`: a heartbeat every `every`; after
    /// each, the leases of nodes silent for `dead_after` freed (then `on_signal(Wake)`); the
    /// signals queued for the others sent; theirs heard and handed to `on_signal`. When the
    /// listening connection is lost it reconnects and hands over [`Signal::Resync`].
    pub async fn run_node(
        &self,
        every: std::time::Duration,
        dead_after: std::time::Duration,
        on_signal: impl Fn(Signal),
        cancel: tokio_util::sync::CancellationToken,
    ) {
        let dead_after = crate::domain::time::duration_ms(dead_after);
        self.dead_after
            .store(dead_after, std::sync::atomic::Ordering::Relaxed);
        let mut beat = tokio::time::interval(every);
        beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut listener: Option<notify::Listener> = None;
        let mut retry_listen = tokio::time::Instant::now();
        loop {
            if listener.is_none() && tokio::time::Instant::now() >= retry_listen {
                match notify::Listener::start(&self.url).await {
                    Ok(l) => {
                        listener = Some(l);
                        on_signal(Signal::Resync);
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot listen for the other nodes' signals");
                        retry_listen =
                            tokio::time::Instant::now() + std::time::Duration::from_secs(1);
                    }
                }
            }
            let heard = async {
                match listener.as_mut() {
                    Some(l) => l.next().await,
                    None => {
                        tokio::time::sleep_until(retry_listen).await;
                        Some(String::new())
                    }
                }
            };
            tokio::select! {
                () = cancel.cancelled() => return,
                _ = beat.tick() => {
                    match self.beat(dead_after).await {
                        Ok((0, 0)) => {}
                        Ok((0, _lines)) => {
                            // Lines went on: due now, here or on another node.
                            on_signal(Signal::Wake);
                            self.outgoing.send(Signal::Wake);
                        }
                        Ok((freed, _)) => {
                            tracing::warn!(deliveries = freed, "freed the leases of a node that stopped answering");
                            on_signal(Signal::Wake);
                        }
                        Err(e) => tracing::warn!(error = %e, "heartbeat failed"),
                    }
                }
                () = self.outgoing.ready() => {
                    let sent = match self.pool.get().await {
                        Ok(c) => self.outgoing.flush(&c, &self.node()).await,
                        Err(e) => Err(e.into()),
                    };
                    if let Err(e) = sent {
                        tracing::warn!(error = %e, "cannot signal the other nodes");
                        // What was not sent is queued again (and `ready` with it).
                        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                    }
                }
                payload = heard => match payload {
                    Some(p) => {
                        if let Some(s) = notify::heard(&p, &self.node()) {
                            on_signal(s);
                        }
                    }
                    None => {
                        tracing::warn!("lost the connection that hears the other nodes; reconnecting");
                        listener = None;
                    }
                },
            }
        }
    }

    /// One heartbeat, then the sweep of dead nodes' leases and of ordered lines; how many
    /// deliveries it freed, and how many lines went on.
    async fn beat(&self, dead_after: i64) -> DbResult<(u64, usize)> {
        let mut c = self.pool.get().await?;
        let gave_back = self.confirm_alive(&c).await?;
        let retired: Vec<Arc<str>> = {
            let mut r = self
                .retired
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            r.retain(|(_, at)| at.elapsed() < std::time::Duration::from_secs(60));
            r.iter().map(|(n, _)| n.clone()).collect()
        };
        for old in retired {
            deliveries::release_leases_of(&c, &old).await?;
        }
        let (freed, live) = queue::free_dead_leases(&mut c, None, dead_after).await?;
        // Given back before another connection is taken: one held while waiting for another
        // could wait for good on a pool whose other connections wait for it (a small pool, a
        // lock held elsewhere).
        drop(c);
        if gave_back {
            self.outgoing.send(Signal::Wake);
        }
        // Lines whose leases were just given back or freed, and a line left with no first
        // (its ingest's node stopped between the commit and letting it go), go on.
        let lines = self.advance_lines().await?;
        self.live_nodes
            .store(live, std::sync::atomic::Ordering::Relaxed);
        Ok((freed, lines))
    }

    /// This node's name (its leases carry it).
    pub fn node(&self) -> Arc<str> {
        self.node
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Heartbeats. When the others had taken this node for dead (it was silent for
    /// `node_timeout`: paused, or cut off) its leases are theirs to send now: it gives back any
    /// taken since under its old name and rejoins under a new one, so whatever it still holds
    /// under the old name is never sent (see [`PgStore::holds`]) nor written back.
    ///
    /// `true` when it gave leases back: the ordered lines they were in are then to go on
    /// ([`PgStore::advance_lines`], on another connection once `c` is given back).
    async fn confirm_alive(&self, c: &deadpool_postgres::Client) -> DbResult<bool> {
        let _one_at_a_time = self.checking_in.lock().await;
        let sent = self.started.elapsed();
        let old = self.node();
        let mut gave_back = false;
        if !queue::heartbeat(c, &old, None).await? {
            let new: Arc<str> = new_node_name().into();
            queue::register(c, &new, None).await?;
            let given_back = deliveries::release_leases_of(c, &old).await?;
            *self
                .node
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = new.clone();
            self.retired
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push((old.clone(), std::time::Instant::now()));
            tracing::warn!(
                old = %old,
                new = %new,
                given_back,
                "this node was taken for dead (silent for longer than node_timeout): the other \
                 nodes send what it had claimed; it rejoins under a new name"
            );
            gave_back = given_back > 0;
        }
        self.alive_at.store(
            u64::try_from(sent.as_millis()).unwrap_or(u64::MAX),
            std::sync::atomic::Ordering::Relaxed,
        );
        Ok(gave_back)
    }

    /// Whether this node may still send a delivery it claimed under the name `owner`: `Yes`
    /// while that is its name and it heartbeat recently; `No` once it has rejoined under
    /// another (the others took that delivery over); `Unsure` when its last heartbeat is
    /// more than half of `node_timeout` old (it may have been paused, and taken for dead).
    pub fn holds(&self, owner: &str) -> Holds {
        if *self.node() != *owner {
            return Holds::No;
        }
        if self.beat_recently() {
            Holds::Yes
        } else {
            Holds::Unsure
        }
    }

    /// Whether this node's last heartbeat is less than half of `node_timeout` old.
    fn beat_recently(&self) -> bool {
        let alive_at = self.alive_at.load(std::sync::atomic::Ordering::Relaxed);
        let now = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let dead_after =
            u64::try_from(self.dead_after.load(std::sync::atomic::Ordering::Relaxed)).unwrap_or(0);
        now.saturating_sub(alive_at) < dead_after / 2
    }

    /// Heartbeats now, to settle an `Unsure` [`PgStore::holds`].
    pub async fn check_in(&self) -> DbResult<()> {
        let c = self.pool.get().await?;
        if self.confirm_alive(&c).await? {
            drop(c);
            self.advance_lines().await?;
            self.outgoing.send(Signal::Wake);
        }
        Ok(())
    }

    /// Whether the database answers a trivial query within `within`. A node whose every
    /// connection is at work (a busy node, not one cut off) and whose last heartbeat is
    /// recent counts as reaching it without waiting for one.
    pub async fn reachable(&self, within: std::time::Duration) -> DbResult<()> {
        let pool = self.pool.status();
        if pool.available == 0 && pool.size >= pool.max_size && self.beat_recently() {
            return Ok(());
        }
        tokio::time::timeout(within, async {
            let c = self.pool.get().await?;
            c.simple_query("SELECT 1").await?;
            Ok(())
        })
        .await
        .unwrap_or_else(|_| {
            Err(DbError::Unreachable(format!(
                "no answer within {} ms",
                within.as_millis()
            )))
        })
    }

    /// How many nodes were alive at the last heartbeat.
    pub fn live_nodes(&self) -> usize {
        self.live_nodes.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Leaves the cluster: gives back the leases this node still holds (the deliveries it
    /// did not send; the others send them) and forgets the node.
    pub async fn leave(&self) -> DbResult<usize> {
        let node = self.node();
        let n = {
            let c = self.pool.get().await?;
            let n = deliveries::release_leases_of(&c, &node).await?;
            c.execute("DELETE FROM nodes WHERE id = $1", &[&&*node])
                .await?;
            n
        };
        // On connections taken one after the other (see `beat`).
        if n > 0 {
            self.advance_lines().await?;
            self.outgoing.send(Signal::Wake);
            let c = self.pool.get().await?;
            let _ = self.outgoing.flush(&c, &node).await;
        }
        Ok(n)
    }

    /// After leases were given back: the ordered lines they were part of go on from their
    /// first (see `lanes`).
    async fn advance_lines(&self) -> DbResult<usize> {
        let now = crate::domain::time::now_ms();
        self.write(async |tx| lanes::advance_all(tx, now).await)
            .await
    }

    /// Runs `f` on a pooled connection, outside any transaction.
    pub async fn read<T>(
        &self,
        f: impl AsyncFnOnce(&deadpool_postgres::Client) -> DbResult<T>,
    ) -> DbResult<T> {
        let c = self.pool.get().await?;
        f(&c).await
    }

    /// Runs `f` in one transaction, committed when `f` returns `Ok` (rolled back otherwise).
    pub async fn write<T>(
        &self,
        f: impl AsyncFnOnce(&deadpool_postgres::Transaction<'_>) -> DbResult<T>,
    ) -> DbResult<T> {
        let mut c = self.pool.get().await?;
        let tx = c.transaction().await?;
        let out = f(&tx).await?;
        tx.commit().await?;
        Ok(out)
    }
}

/// Whether a node still holds a lease it took (see [`PgStore::holds`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Holds {
    Yes,
    No,
    Unsure,
}

/// Checks `key` and registers `node`, in the caller's transaction: what is sealed already
/// opens with the key; the first node to start on a database seals the check value, which
/// the key of every later one must open. The node is registered before it claims anything
/// (the others' sweep frees the leases of nodes they do not know to be alive). In one
/// transaction, whose reads hold off `rotate-main-key` (it locks those tables) until the
/// node is registered: the rotation then finds it alive and refuses, or, had it committed
/// first, the key is checked against what it sealed.
async fn join(
    tx: &impl deadpool_postgres::GenericClient,
    key: &MainKey,
    node: &str,
) -> DbResult<()> {
    if !endpoints::sealed_secrets_open_with(tx, key).await?
        || !endpoints::key_check_set(tx, key).await?
    {
        return Err(DbError::WrongMainKey);
    }
    queue::register(tx, node, None).await
}

/// How long a silent node stays a member until `run_node` says otherwise, in ms.
const DEFAULT_DEAD_AFTER_MS: i64 = 20_000;

/// A name for a node joining the cluster: the host's, made unique.
fn new_node_name() -> String {
    format!(
        "{}-{}",
        hostname(),
        ulid::Ulid::new().to_string().to_lowercase()
    )
}

/// The host's name, for naming nodes in logs and leases.
pub(crate) fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "node".into())
}

impl PageQuery {
    /// `(condition, order by, parameter, reverse results)` for key column `col`, the
    /// parameter numbered `$n`.
    pub(crate) fn pg_sql(&self, col: &str, n: usize) -> (String, String, Option<String>, bool) {
        let (asc, desc) = (format!("{col} ASC"), format!("{col} DESC"));
        match (&self.after, &self.before, self.descending) {
            (Some(a), _, false) => (format!("{col} > ${n}"), asc, Some(a.clone()), false),
            (Some(a), _, true) => (format!("{col} < ${n}"), desc, Some(a.clone()), false),
            (None, Some(b), false) => (format!("{col} < ${n}"), desc, Some(b.clone()), true),
            (None, Some(b), true) => (format!("{col} > ${n}"), asc, Some(b.clone()), true),
            (None, None, false) => ("TRUE".into(), asc, None, false),
            (None, None, true) => ("TRUE".into(), desc, None, false),
        }
    }
}

/// Runs a paged query. `base` is a SELECT with a WHERE clause ending in `AND {page}`, its
/// parameters `$1`… given in `params`; the page condition (its cursor the next parameter),
/// order and limit are filled in.
pub(crate) async fn paged<T>(
    c: &impl deadpool_postgres::GenericClient,
    base: &str,
    col: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    page: &PageQuery,
    map: impl FnMut(&tokio_postgres::Row) -> DbResult<T>,
) -> DbResult<Page<T>> {
    let (cond, order, param, reverse) = page.pg_sql(col, params.len() + 1);
    let sql = format!(
        "{} ORDER BY {order} LIMIT {}",
        base.replace("{page}", &cond),
        page.limit + 1
    );
    let mut all: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = params.to_vec();
    if let Some(p) = &param {
        all.push(p);
    }
    let stmt = c.prepare_cached(&sql).await?;
    let rows = c.query(&stmt, &all).await?;
    let mut items = rows.iter().map(map).collect::<DbResult<Vec<_>>>()?;
    let done = items.len() <= page.limit;
    items.truncate(page.limit);
    if reverse {
        items.reverse();
    }
    Ok(Page { items, done })
}

/// Whether `e` is a unique-constraint violation (23505).
pub(crate) fn is_unique_violation(e: &tokio_postgres::Error) -> bool {
    e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION)
}

/// Typed ids are stored as their text.
macro_rules! id_column {
    ($($t:ty),*) => {$(
        impl<'a> FromSql<'a> for $t {
            fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
                Ok(<$t>::from_string(<String as FromSql>::from_sql(ty, raw)?))
            }
            fn accepts(ty: &Type) -> bool {
                <String as FromSql>::accepts(ty)
            }
        }

        impl ToSql for $t {
            fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
                self.as_str().to_sql(ty, out)
            }
            fn accepts(ty: &Type) -> bool {
                <&str as ToSql>::accepts(ty)
            }
            to_sql_checked!();
        }
    )*};
}

id_column!(
    crate::domain::ids::AppId,
    crate::domain::ids::EndpointId,
    crate::domain::ids::MsgId,
    crate::domain::ids::AttemptId
);

/// Delivery states and triggers are stored as their codes (`SMALLINT`). A status code
/// hookbox never writes reads as skipped, as on SQLite.
impl<'a> FromSql<'a> for crate::domain::model::DeliveryStatus {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        let code = i16::from_sql(ty, raw)?;
        Ok(Self::from_code(i64::from(code)).unwrap_or(Self::Skipped))
    }
    fn accepts(ty: &Type) -> bool {
        <i16 as FromSql>::accepts(ty)
    }
}

impl ToSql for crate::domain::model::DeliveryStatus {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        i16::try_from(self.code())?.to_sql(ty, out)
    }
    fn accepts(ty: &Type) -> bool {
        <i16 as ToSql>::accepts(ty)
    }
    to_sql_checked!();
}

impl<'a> FromSql<'a> for crate::domain::model::Trigger {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        Ok(Self::from_code(i64::from(i16::from_sql(ty, raw)?)))
    }
    fn accepts(ty: &Type) -> bool {
        <i16 as FromSql>::accepts(ty)
    }
}

impl ToSql for crate::domain::model::Trigger {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        i16::try_from(self.code())?.to_sql(ty, out)
    }
    fn accepts(ty: &Type) -> bool {
        <i16 as ToSql>::accepts(ty)
    }
    to_sql_checked!();
}

/// The schema version of a migrated database.
pub async fn schema_version(c: &impl deadpool_postgres::GenericClient) -> DbResult<i64> {
    Ok(
        c.query_one("SELECT MAX(version) FROM schema_migrations", &[])
            .await?
            .get(0),
    )
}

/// Connects to the database at `url` and brings its schema up to date; returns the version.
pub async fn migrate_url(url: &str) -> DbResult<i64> {
    migrate(&pool(url, 1)?).await
}

#[cfg(test)]
pub(crate) mod tests {
    #[test]
    fn connections_give_up_on_a_silent_database_in_seconds_unless_the_url_says_otherwise() {
        use std::time::Duration;
        let cfg = super::connection_config("postgres://u@127.0.0.1:5432/db").unwrap();
        assert_eq!(cfg.get_connect_timeout(), Some(&Duration::from_secs(5)));
        assert_eq!(cfg.get_tcp_user_timeout(), Some(&Duration::from_secs(15)));
        assert_eq!(cfg.get_keepalives_idle(), Duration::from_secs(30));
        let cfg = super::connection_config(
            "postgres://u@127.0.0.1:5432/db?connect_timeout=9&tcp_user_timeout=60",
        )
        .unwrap();
        assert_eq!(cfg.get_connect_timeout(), Some(&Duration::from_secs(9)));
        assert_eq!(cfg.get_tcp_user_timeout(), Some(&Duration::from_secs(60)));
        assert!(super::connection_config("postgres://u@h:notaport/db").is_err());
    }

    /// `n` stores on the database at `url`, as `n` nodes would open it (each with its own
    /// pool, all with one main key).
    pub(crate) async fn nodes(url: &str, n: usize) -> Vec<crate::db::Store> {
        let key = crate::domain::crypto::MainKey::generate();
        let mut nodes = Vec::new();
        for _ in 0..n {
            nodes.push(
                crate::db::Store::open_postgres(url, 4, key.clone())
                    .await
                    .unwrap(),
            );
        }
        nodes
    }

    /// A database that cannot be reached is reported with why (the driver's own text says
    /// only "error connecting to server").
    #[tokio::test]
    async fn an_unreachable_database_is_reported_with_its_cause() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = closed.local_addr().unwrap().port();
        drop(closed);
        let url = format!("postgres://u@127.0.0.1:{port}/db");
        let e = super::connection_config(&url)
            .unwrap()
            .connect(tokio_postgres::NoTls)
            .await
            .err()
            .expect("nothing listens there");
        match crate::db::DbError::from(e) {
            crate::db::DbError::Unreachable(why) => {
                assert!(why.contains("Connection refused"), "{why}");
            }
            other => panic!("{other:?}"),
        }
    }

    /// A node started with another main key than the first node's is refused, whether or not
    /// an endpoint secret is stored yet; once `rotate-main-key` has run, only the new key is
    /// taken.
    #[tokio::test]
    async fn a_node_with_another_main_key_than_the_first_node_s_is_refused() {
        use crate::domain::crypto::MainKey;
        let Some((pool, url)) = fresh_database().await else {
            return;
        };
        let (a, b) = (MainKey::generate(), MainKey::generate());
        let first = super::PgStore::open(&url, 2, a.clone()).await.unwrap();
        assert!(matches!(
            super::PgStore::open(&url, 2, b.clone()).await,
            Err(crate::db::DbError::WrongMainKey)
        ));
        // The same key is taken, by as many nodes as start.
        super::PgStore::open(&url, 2, a.clone()).await.unwrap();
        drop(first);
        let c = pool.get().await.unwrap();
        c.batch_execute("DELETE FROM nodes").await.unwrap();
        let done = super::endpoints::reseal_with_no_node_running(&c, &a, &b, 30_000, || {})
            .await
            .unwrap();
        assert!(matches!(done, crate::db::commands::Resealed::Done(0)));
        super::PgStore::open(&url, 2, b).await.unwrap();
        assert!(matches!(
            super::PgStore::open(&url, 2, a).await,
            Err(crate::db::DbError::WrongMainKey)
        ));
    }

    /// A heartbeat takes one connection at a time: with every other connection of the pool
    /// in use, it still goes through. (It had held its first while taking a second to move
    /// ordered lines on, and with a pool of two and one connection waiting on a lock held
    /// elsewhere, it waited for good, holding its first.)
    #[tokio::test]
    async fn a_heartbeat_needs_only_one_free_connection() {
        let Some((_, url)) = fresh_database().await else {
            return;
        };
        let store = super::PgStore::open(&url, 2, crate::domain::crypto::MainKey::generate())
            .await
            .unwrap();
        let _busy = store.0.pool.get().await.unwrap();
        let beat = tokio::time::timeout(std::time::Duration::from_secs(10), store.beat(60_000))
            .await
            .expect("the heartbeat went through on the one free connection");
        beat.unwrap();
    }

    /// A node joining (its key checked, not yet committed) while `rotate-main-key` starts:
    /// the rotation waits for the join, then finds the node alive and changes nothing. (The
    /// key had been checked and the node registered in two transactions: a rotation between
    /// them left a node running with a key that no longer opened the secrets.)
    #[tokio::test]
    async fn a_rotation_waits_for_a_joining_node_then_finds_it_alive() {
        use crate::domain::crypto::MainKey;
        let Some((pool, _)) = fresh_database().await else {
            return;
        };
        let (old, new) = (MainKey::generate(), MainKey::generate());
        let mut joining = pool.get().await.unwrap();
        let tx = joining.transaction().await.unwrap();
        super::join(&tx, &old, "joining-node").await.unwrap();
        let rotating = pool.get().await.unwrap();
        let rotation = tokio::spawn(async move {
            super::endpoints::reseal_with_no_node_running(&rotating, &old, &new, 30_000, || {})
                .await
                .unwrap()
        });
        let observer = pool.get().await.unwrap();
        let waits = || async {
            let rows = observer
                .query(
                    "SELECT count(*) FROM pg_stat_activity
                     WHERE datname = current_database() AND wait_event_type = 'Lock'",
                    &[],
                )
                .await
                .unwrap();
            rows[0].get::<_, i64>(0) == 1
        };
        let mut waiting = false;
        for _ in 0..200 {
            if waits().await {
                waiting = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert!(waiting, "the rotation waits for the joining node");
        tx.commit().await.unwrap();
        assert!(matches!(
            rotation.await.unwrap(),
            crate::db::commands::Resealed::NodesRunning(1)
        ));
    }

    /// [`fresh_database`] with application `app_1` and its endpoint `ep_1` (at a closed
    /// port), for tests of the outbox.
    pub(crate) async fn database_with_endpoint() -> Option<deadpool_postgres::Pool> {
        let (pool, _) = fresh_database().await?;
        pool.get()
            .await
            .unwrap()
            .batch_execute(
                "INSERT INTO applications (id, name, created_at, updated_at) \
                     VALUES ('app_1', 'a', 0, 0); \
                 INSERT INTO endpoints (id, app_id, url, created_at, updated_at) \
                     VALUES ('ep_1', 'app_1', 'http://127.0.0.1:9/', 0, 0);",
            )
            .await
            .unwrap();
        Some(pool)
    }

    /// Message `id` of `app_1`, payload `{}`.
    pub(crate) async fn insert_message(c: &impl deadpool_postgres::GenericClient, id: &str) {
        c.execute(
            "INSERT INTO messages (id, app_id, event_type, payload, created_at) \
             VALUES ($1, 'app_1', 'a.b', '{}', 0)",
            &[&id],
        )
        .await
        .unwrap();
    }

    /// How connection `c` plans its prepared statement that begins with `start`: its counts
    /// of generic and of custom plans, and the plan a transaction that sent
    /// [`super::KEYED_PLANS`] uses, as `EXPLAIN EXECUTE` shows it with `args`.
    pub(crate) async fn keyed_plan(
        c: &mut deadpool_postgres::Object,
        start: &str,
        args: &str,
    ) -> (i64, i64, String) {
        let row = c
            .query_one(
                "SELECT name, generic_plans, custom_plans FROM pg_prepared_statements \
                 WHERE starts_with(statement, $1)",
                &[&start],
            )
            .await
            .unwrap();
        let (name, generic, custom): (String, i64, i64) = (row.get(0), row.get(1), row.get(2));
        let tx = c.transaction().await.unwrap();
        tx.batch_execute(super::KEYED_PLANS).await.unwrap();
        let plan = tx
            .query(&format!("EXPLAIN EXECUTE {name}({args})"), &[])
            .await
            .unwrap()
            .iter()
            .map(|r| r.get::<_, String>(0))
            .collect::<Vec<_>>()
            .join("\n");
        (generic, custom, plan)
    }

    /// The transaction connection `c` is in, once it has written something (`None` outside
    /// a transaction).
    pub(crate) async fn open_xact(c: &deadpool_postgres::Client) -> Option<String> {
        c.query_one("SELECT pg_current_xact_id_if_assigned()::TEXT", &[])
            .await
            .unwrap()
            .get(0)
    }

    async fn backend(c: &deadpool_postgres::Client) -> i32 {
        c.query_one("SELECT pg_backend_pid()", &[])
            .await
            .unwrap()
            .get(0)
    }

    #[tokio::test]
    async fn a_hand_opened_transaction_never_reaches_the_pool_still_open() {
        let Some((_, url)) = fresh_database().await else {
            return;
        };
        let pool = super::pool(&url, 1).unwrap();
        let write = "BEGIN; CREATE TABLE scratch (n INT)";
        let scratch = "SELECT to_regclass('scratch')::TEXT";

        // Rolled back: the connection goes back to the pool, outside any transaction.
        let c = super::HandTx::new(pool.get().await.unwrap());
        let first = backend(c.client()).await;
        c.client().batch_execute(write).await.unwrap();
        assert!(open_xact(c.client()).await.is_some());
        c.rollback().await;
        let c = pool.get().await.unwrap();
        assert_eq!(backend(&c).await, first, "the same connection, kept");
        assert_eq!(open_xact(&c).await, None);

        // Dropped before it ended: that connection is closed, never handed out again.
        let c = super::HandTx::new(c);
        c.client().batch_execute(write).await.unwrap();
        let dropped = backend(c.client()).await;
        drop(c);
        let c = pool.get().await.unwrap();
        assert_ne!(backend(&c).await, dropped, "a new connection");
        // The dropped one ends (its transaction with it).
        let mut ended = false;
        for _ in 0..250 {
            let row = c
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity WHERE pid = $1",
                    &[&dropped],
                )
                .await
                .unwrap();
            if row.get::<_, i64>(0) == 0 {
                ended = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert!(ended, "the dropped connection is closed");
        let table: Option<String> = c.query_one(scratch, &[]).await.unwrap().get(0);
        assert_eq!(
            table, None,
            "what the dropped transaction wrote is not kept"
        );

        // Done: the connection goes back as it is.
        let second = backend(&c).await;
        super::HandTx::new(c).done();
        assert_eq!(backend(&pool.get().await.unwrap()).await, second);
    }

    /// A new, migrated database on the test cluster (`HOOKBOX_TEST_PG_URL`, which
    /// `scripts/test` sets), with its URL. Without a cluster the test fails, unless
    /// `HOOKBOX_TEST_SKIP_POSTGRES=1` asks to skip it (`None`).
    pub(crate) async fn fresh_database() -> Option<(deadpool_postgres::Pool, String)> {
        let admin = match std::env::var("HOOKBOX_TEST_PG_URL") {
            Ok(url) if !url.is_empty() => url,
            _ if std::env::var("HOOKBOX_TEST_SKIP_POSTGRES").as_deref() == Ok("1") => return None,
            _ => panic!(
                "HOOKBOX_TEST_PG_URL is not set: run the tests with scripts/test \
                 (or skip the PostgreSQL tests with HOOKBOX_TEST_SKIP_POSTGRES=1)"
            ),
        };
        let name = format!("hookbox_{}", ulid::Ulid::new().to_string().to_lowercase());
        super::pool(&admin, 1)
            .unwrap()
            .get()
            .await
            .unwrap()
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap();
        let (base, _) = admin.rsplit_once('/').unwrap();
        let url = format!("{base}/{name}");
        let pool = super::pool(&url, 8).unwrap();
        super::migrate(&pool).await.unwrap();
        Some((pool, url))
    }
}
