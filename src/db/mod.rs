//! Storage behind one seam: a [`Store`] whose methods are use cases (`ingest`, `claim_due`,
//! `record_attempts`, `create_endpoint`, …), implemented per backend. Only `src/db` knows
//! which database is underneath; the SQL lives in `sqlite/`.

pub mod commands;
pub mod copy;
mod outbox;
mod postgres;
pub(crate) use postgres::hostname;
#[cfg(test)]
pub(crate) use postgres::tests as pg_tests;
mod sqlite;
mod store;
pub mod tasks;

use std::path::PathBuf;

pub use postgres::migrate_url as migrate_postgres;
pub use sqlite::{backup, holds_sealed_secrets, migrate, reseal_secrets, sealed_secrets_open_with};
pub use store::*;

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("the database writer has stopped")]
    WriterGone,
    /// SQLite's `SQLITE_FULL` (or `ENOSPC` when syncing): no space on the disk, or the
    /// database reached `database.max_size_mib`. Nothing of the failed work was written.
    #[error("database or disk is full")]
    Full,
    /// The transaction holding the work did not commit (or its WAL did not sync): nothing
    /// of it counts as written.
    #[error("the write was not committed: {0}")]
    NotCommitted(String),
    #[error("stored data is malformed: {0}")]
    Corrupt(String),
    #[error("cannot use the database file: {0}")]
    Io(String),
    #[error("postgres: {0}")]
    Postgres(String),
    /// The database cannot be reached (refused, closed or timed out connections, a server
    /// shutting down): nothing of the failed work is known to be written; try again later.
    #[error("the database cannot be reached: {0}")]
    Unreachable(String),
    /// The database made this transaction give way to a concurrent one (a deadlock or a
    /// serialization failure): nothing of it was written.
    #[error("a concurrent change got in the way ({0}); try again")]
    Contended(String),
    /// What a change was made on was changed by another since it was read: nothing was
    /// written; read it again and make the change on what is stored now.
    #[error("changed by another request since it was read; try again")]
    Changed,
    #[error(
        "the main key does not open the endpoint secrets stored in this database: every node \
         must use the key the database was set up with (HOOKBOX_MAIN_KEY, \
         HOOKBOX_MAIN_KEY_FILE or main_key_file)"
    )]
    WrongMainKey,
    /// Input the database cannot store as text (PostgreSQL refuses the NUL character).
    #[error("{0}")]
    Unstorable(String),
    #[error(
        "the signing secret (or custom headers) of endpoint {endpoint_id} does not decrypt with \
         the main key (wrong key, or the database was changed)"
    )]
    Undecryptable { endpoint_id: String },
}

pub type DbResult<T> = Result<T, DbError>;

impl DbError {
    /// Whether the database refused the data itself (a constraint, a value it cannot hold),
    /// rather than being unable to write: the same write would be refused again.
    pub fn refuses_data(&self) -> bool {
        match self {
            DbError::Unstorable(_) | DbError::Conflict(_) => true,
            DbError::Sqlite(e) => matches!(
                e.sqlite_error_code(),
                Some(
                    rusqlite::ErrorCode::ConstraintViolation
                        | rusqlite::ErrorCode::TooBig
                        | rusqlite::ErrorCode::TypeMismatch
                )
            ),
            DbError::Postgres(m) => postgres::refuses_data(m),
            _ => false,
        }
    }

    /// The same error for another caller of a shared failure (one group commit's).
    pub fn again(&self) -> DbError {
        match self {
            DbError::Unreachable(m) => DbError::Unreachable(m.clone()),
            DbError::Full => DbError::Full,
            DbError::Postgres(m) => DbError::Postgres(m.clone()),
            DbError::Conflict(m) => DbError::Conflict(m.clone()),
            DbError::Contended(m) => DbError::Contended(m.clone()),
            DbError::Unstorable(m) => DbError::Unstorable(m.clone()),
            other => DbError::Postgres(other.to_string()),
        }
    }

    /// Whether the disk (or the database's size limit) is full.
    pub fn is_full(&self) -> bool {
        match self {
            DbError::Full => true,
            DbError::Sqlite(e) => sqlite::is_full(e),
            _ => false,
        }
    }
}

#[derive(Debug, Clone)]
pub struct DbOptions {
    pub path: PathBuf,
    /// Largest database size in MiB; 0: no limit.
    pub max_size_mib: u64,
    /// `FULL` (default) or `NORMAL`.
    pub synchronous: String,
    pub readers: usize,
    pub max_batch: usize,
}

/// One page of a listing ordered by a unique key column.
#[derive(Debug, Clone, Default)]
pub struct PageQuery {
    pub limit: usize,
    /// Items after this key, in listing order (`iterator`).
    pub after: Option<String>,
    /// Items before this key, in listing order (`iterator` starting with `-`).
    pub before: Option<String>,
    pub descending: bool,
}

/// Which background tasks a listing holds: each `None` picks all.
#[derive(Debug, Clone, Default)]
pub struct TaskFilter {
    pub app_id: Option<String>,
    pub endpoint_id: Option<String>,
    pub status: Option<crate::domain::tasks::TaskStatus>,
    /// Of these kinds (none: no task).
    pub kinds: Option<Vec<crate::domain::tasks::TaskKind>>,
}

pub struct Page<T> {
    pub items: Vec<T>,
    /// No more items in the direction that was asked for.
    pub done: bool,
}

impl<T> Page<T> {
    /// The key to continue after, when there are more items.
    pub fn next_key(&self, key: impl Fn(&T) -> String) -> Option<String> {
        if self.done {
            None
        } else {
            self.items.last().map(key)
        }
    }
}

/// Decodes an endpoint's filter column (event types or channels): `None` (no filter) only
/// when there is none. One that cannot be read matches nothing (`Some([])`), never
/// everything, and is logged.
pub(crate) fn filter_col(s: Option<&str>, endpoint_id: &str) -> Option<Vec<String>> {
    let s = s?;
    Some(serde_json::from_str(s).unwrap_or_else(|e| {
        tracing::error!(endpoint = endpoint_id, error = %e, "an endpoint filter cannot be read; it matches nothing");
        Vec::new()
    }))
}

pub(crate) fn to_json<T: serde::Serialize>(v: &T) -> String {
    // Serializing plain data (strings, maps, vectors) cannot fail.
    serde_json::to_string(v).expect("plain data serializes")
}
