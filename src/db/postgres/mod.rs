//! The PostgreSQL backend, for several nodes sharing one database. What exists so far: the
//! connection pool, the schema migrations (`migrations/postgres/`, applied once per cluster
//! under an advisory lock), ingest, the outbox queue (claims, fenced write-back, heartbeats),
//! notifications and once-per-cluster chores, each tested on a real cluster. The `Store` does
//! not run on it yet.

use super::{DbError, DbResult};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};

// Tested against a real cluster; the Store does not call them yet.
#[allow(dead_code)]
mod locks;
#[allow(dead_code)]
mod messages;
#[allow(dead_code)]
mod notify;
#[allow(dead_code)]
mod queue;

const MIGRATIONS: &[(&str, &str)] = &[(
    "0001_init",
    include_str!("../../../migrations/postgres/0001_init.sql"),
)];

/// The advisory lock that makes one node at a time apply migrations.
const MIGRATION_LOCK: i64 = 0x686f_6f6b_626f_7801;

impl From<tokio_postgres::Error> for DbError {
    fn from(e: tokio_postgres::Error) -> Self {
        DbError::Postgres(e.to_string())
    }
}

impl From<deadpool_postgres::PoolError> for DbError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        DbError::Postgres(e.to_string())
    }
}

/// A pool of at most `size` connections to the database at `url`
/// (`postgres://USER[:PASS]@HOST:PORT/DB`).
pub fn pool(url: &str, size: usize) -> DbResult<Pool> {
    let cfg: tokio_postgres::Config = url
        .parse()
        .map_err(|e| DbError::Postgres(format!("the database URL cannot be read: {e}")))?;
    let manager = Manager::from_config(
        cfg,
        tokio_postgres::NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(size.max(1))
        .build()
        .map_err(|e| DbError::Postgres(e.to_string()))
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

/// Connects to the database at `url` and brings its schema up to date; returns the version.
pub async fn migrate_url(url: &str) -> DbResult<i64> {
    migrate(&pool(url, 1)?).await
}

#[cfg(test)]
pub(crate) mod tests {
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
