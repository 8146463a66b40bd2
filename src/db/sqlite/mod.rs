//! The SQLite backend: one writer thread (group commit), a pool of readers, and the SQL of
//! each aggregate in its own file.

pub mod admin;
pub mod alerts;
pub mod apps;
pub mod attempts;
pub mod copy;
pub mod deliveries;
pub mod endpoints;
pub mod event_types;
pub mod idempotency;
pub mod lanes;
pub mod logins;
pub mod messages;
mod migrations;
pub mod oneoff;
pub mod operational;
pub mod portal;
mod readers;
pub mod stats;
pub mod tasks;
pub mod tokens;
mod writer;

pub(crate) use super::{filter_col, to_json, DbError, DbOptions, DbResult, Page, PageQuery};
use crate::domain::crypto::MainKey;
use rusqlite::Connection;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use readers::Readers;
pub use writer::{Writer, WriterStats};

/// SQLite's `SQLITE_FULL`.
pub(crate) fn is_full(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::DiskFull)
}

#[derive(Clone)]
pub struct Db {
    pub writer: Writer,
    pub readers: Readers,
    /// Seals and opens endpoint signing secrets (see `endpoints::secrets`).
    pub main_key: Arc<MainKey>,
}

impl Db {
    /// Opens (creating if needed) the database, applies migrations, seals any plaintext
    /// signing secret under `main_key` and starts the writer. Fails with
    /// [`DbError::Undecryptable`] when a stored secret does not open with `main_key`.
    pub fn open(opts: &DbOptions, main_key: MainKey) -> DbResult<Db> {
        // In `full` mode the writer syncs the WAL itself before answering (see writer.rs), so
        // SQLite's own commit need not.
        let durable = !opts.synchronous.eq_ignore_ascii_case("normal");
        let mut conn = open_connection(&opts.path, false, "NORMAL")?;
        migrations::apply(&mut conn)?;
        if opts.max_size_mib > 0 {
            // Past it SQLite answers SQLITE_FULL, as on a full disk.
            let page_size: u64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
            let pages = opts.max_size_mib.saturating_mul(1024 * 1024) / page_size.max(1);
            conn.pragma_update(None, "max_page_count", pages)?;
        }
        let sealed = rewrite_secrets(&mut conn, |tx| {
            endpoints::seal_plaintext_secrets(tx, &main_key)
        })?;
        if sealed > 0 {
            tracing::info!(
                rows = sealed,
                "encrypted endpoint secrets stored in plaintext"
            );
        }
        let wal = durable.then(|| {
            let mut p = opts.path.clone().into_os_string();
            p.push("-wal");
            PathBuf::from(p)
        });
        let writer = Writer::start(conn, opts.max_batch, wal)?;
        let readers = Readers::open(&opts.path, opts.readers.max(1), &opts.synchronous)?;
        Ok(Db {
            writer,
            readers,
            main_key: Arc::new(main_key),
        })
    }

    /// Runs `f` inside the writer's next transaction; returns after it has committed.
    pub async fn write<T, F>(&self, f: F) -> DbResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> DbResult<T> + Send + 'static,
    {
        self.writer.run(f).await
    }

    /// As [`Db::write`], for work that may run more than once and whose only effects are its
    /// writes: it costs less (see [`Writer::run_replayable`]). The hot paths use it.
    pub async fn write_replayable<T, F>(&self, f: F) -> DbResult<T>
    where
        T: Send + 'static,
        F: FnMut(&Connection) -> DbResult<T> + Send + 'static,
    {
        self.writer.run_replayable(f).await
    }

    /// Flushes and stops the writer: every write sent before is committed and synced, the WAL
    /// is checkpointed (and truncated), and the writer and sync threads have ended.
    pub async fn close(&self) {
        self.writer.close().await;
    }

    /// Runs `f` (which changes at most `batch` rows and returns how many) in write after write
    /// until one changes fewer; returns the total. Small batches keep each write lock short.
    /// A failure ends the run, logged as `what`.
    pub async fn write_batches<F>(&self, what: &'static str, batch: usize, f: F) -> usize
    where
        F: Fn(&Connection) -> DbResult<usize> + Send + Sync + Clone + 'static,
    {
        let mut total = 0;
        loop {
            match self.write(f.clone()).await {
                Ok(n) => {
                    total += n;
                    if n < batch {
                        return total;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "{what} failed");
                    return total;
                }
            }
        }
    }

    /// Runs `f` on a read-only connection, off the async threads.
    pub async fn read<T, F>(&self, f: F) -> DbResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> DbResult<T> + Send + 'static,
    {
        self.readers.run(f).await
    }
}

/// Applies migrations to the database at `path` and returns the schema version.
pub fn migrate(path: &Path) -> DbResult<i64> {
    let mut conn = open_connection(path, false, "FULL")?;
    migrations::apply(&mut conn)
}

/// Runs `f` (which rewrites stored secrets) in one transaction with `secure_delete` on, so
/// the values it replaces are zeroed in the database pages; when it changed anything, the
/// WAL (which holds the old page images) is then checkpointed and truncated.
fn rewrite_secrets(
    conn: &mut Connection,
    f: impl FnOnce(&Connection) -> DbResult<usize>,
) -> DbResult<usize> {
    conn.pragma_update(None, "secure_delete", true)?;
    let tx = conn.transaction()?;
    let changed = f(&tx)?;
    tx.commit()?;
    conn.pragma_update(None, "secure_delete", false)?;
    if changed > 0 {
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
    }
    Ok(changed)
}

/// Whether the database at `path` holds any sealed secret (so some main key was used).
pub fn holds_sealed_secrets(path: &Path) -> DbResult<bool> {
    let conn = open_direct(path)?;
    endpoints::any_sealed_secret(&conn)
}

/// Whether every sealed secret in the database at `path` opens with `key`.
pub fn sealed_secrets_open_with(path: &Path, key: &MainKey) -> DbResult<bool> {
    let conn = open_direct(path)?;
    endpoints::sealed_secrets_open_with(&conn, key)
}

/// Re-seals every endpoint secret from `old` to `new` in one transaction; returns how many.
/// When this returns, the change is committed and durable (and the WAL truncated).
pub fn reseal_secrets(path: &Path, old: &MainKey, new: &MainKey) -> DbResult<usize> {
    let mut conn = open_direct(path)?;
    rewrite_secrets(&mut conn, |tx| endpoints::reseal_secrets(tx, old, new))
}

/// Copies the live database to `dest` consistently (`VACUUM INTO`), readable by its owner
/// only.
pub fn backup(path: &Path, dest: &Path) -> DbResult<()> {
    let conn = open_connection(path, true, "FULL")?;
    make_private(dest)?;
    conn.execute("VACUUM INTO ?1", [dest.to_string_lossy()])?;
    Ok(())
}

/// Creates the database file at `path` (empty: a valid empty database) readable and
/// writable by its owner only, and takes those rights from group and others on an existing
/// one and its `-wal` and `-shm` files. SQLite gives the `-wal` and `-shm` files it creates
/// the database file's mode.
fn make_private(path: &Path) -> DbResult<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        let io = |e: std::io::Error| DbError::Io(format!("{}: {e}", path.display()));
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)
            .map_err(io)?;
        for suffix in ["", "-wal", "-shm"] {
            let mut p = path.as_os_str().to_owned();
            p.push(suffix);
            let p = PathBuf::from(p);
            if let Ok(meta) = std::fs::metadata(&p) {
                if meta.permissions().mode() & 0o077 != 0 {
                    if let Err(e) =
                        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600))
                    {
                        tracing::warn!(file = %p.display(), error = %e, "the database file is readable by others and its mode cannot be changed");
                    }
                }
            }
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// A synchronous connection for one-off commands (token management) that may run while a
/// server holds the database: SQLite's locking and the busy timeout serialize them.
pub fn open_direct(path: &Path) -> DbResult<Connection> {
    let mut conn = open_connection(path, false, "FULL")?;
    migrations::apply(&mut conn)?;
    Ok(conn)
}

fn open_connection(path: &Path, read_only: bool, synchronous: &str) -> DbResult<Connection> {
    use rusqlite::OpenFlags;
    let flags = if read_only {
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX
    } else {
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
    };
    if !read_only {
        make_private(path)?;
    }
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    let sync = if synchronous.eq_ignore_ascii_case("normal") {
        "NORMAL"
    } else {
        "FULL"
    };
    if !read_only {
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // Checkpoint every ~40 MB of WAL rather than every 4 MB: pages written by many
        // transactions are copied to the database once, and the writer pauses less often.
        conn.pragma_update(None, "wal_autocheckpoint", 10_000)?;
    }
    conn.execute_batch(&format!(
        "PRAGMA synchronous = {sync}; PRAGMA foreign_keys = ON; PRAGMA cache_size = -16000; \
         PRAGMA temp_store = MEMORY;"
    ))?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

/// `true` when `e` is a UNIQUE or PRIMARY KEY violation.
pub(crate) fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(
        e,
        rusqlite::Error::SqliteFailure(f, _)
            if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                || f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
    )
}

/// Decodes an optional JSON column.
pub(crate) fn json_col<T: serde::de::DeserializeOwned>(s: Option<String>) -> DbResult<Option<T>> {
    s.map(|s| serde_json::from_str(&s).map_err(|e| DbError::Corrupt(e.to_string())))
        .transpose()
}

impl PageQuery {
    /// `(condition, order by, parameter, reverse results)` for key column `col`.
    pub(crate) fn sql(&self, col: &str) -> (String, String, Option<String>, bool) {
        let (asc, desc) = (format!("{col} ASC"), format!("{col} DESC"));
        match (&self.after, &self.before, self.descending) {
            (Some(a), _, false) => (format!("{col} > ?"), asc, Some(a.clone()), false),
            (Some(a), _, true) => (format!("{col} < ?"), desc, Some(a.clone()), false),
            (None, Some(b), false) => (format!("{col} < ?"), desc, Some(b.clone()), true),
            (None, Some(b), true) => (format!("{col} > ?"), asc, Some(b.clone()), true),
            (None, None, false) => ("1".into(), asc, None, false),
            (None, None, true) => ("1".into(), desc, None, false),
        }
    }
}

/// Runs a paged query. `base` is a SELECT with a WHERE clause ending in `AND {page}`;
/// the page condition, order and limit are filled in.
pub(crate) fn paged<T>(
    conn: &Connection,
    base: &str,
    col: &str,
    params: &[&dyn rusqlite::ToSql],
    page: &PageQuery,
    map: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> DbResult<Page<T>> {
    let (cond, order, param, reverse) = page.sql(col);
    let sql = format!(
        "{} ORDER BY {order} LIMIT {}",
        base.replace("{page}", &cond),
        page.limit + 1
    );
    let mut all: Vec<&dyn rusqlite::ToSql> = params.to_vec();
    if let Some(p) = &param {
        all.push(p);
    }
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut items = stmt
        .query_map(all.as_slice(), map)?
        .collect::<Result<Vec<_>, _>>()?;
    let done = items.len() <= page.limit;
    items.truncate(page.limit);
    if reverse {
        items.reverse();
    }
    Ok(Page { items, done })
}

/// A delivery's status column. A code hookbox never writes reads as skipped (the API shows
/// it as canceled).
impl rusqlite::types::FromSql for crate::domain::model::DeliveryStatus {
    fn column_result(v: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
        Ok(Self::from_code(v.as_i64()?).unwrap_or(Self::Skipped))
    }
}

impl rusqlite::ToSql for crate::domain::model::DeliveryStatus {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        Ok(self.code().into())
    }
}

impl rusqlite::types::FromSql for crate::domain::model::Trigger {
    fn column_result(v: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
        Ok(Self::from_code(v.as_i64()?))
    }
}

impl rusqlite::ToSql for crate::domain::model::Trigger {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        Ok(self.code().into())
    }
}

/// Typed ids are stored as their text.
macro_rules! id_column {
    ($($t:ty),*) => {$(
        impl rusqlite::types::FromSql for $t {
            fn column_result(v: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
                Ok(<$t>::from_string(String::column_result(v)?))
            }
        }

        impl rusqlite::ToSql for $t {
            fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
                Ok(self.as_str().into())
            }
        }
    )*};
}

id_column!(
    crate::domain::ids::AppId,
    crate::domain::ids::EndpointId,
    crate::domain::ids::MsgId,
    crate::domain::ids::AttemptId
);
