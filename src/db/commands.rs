//! One-off commands (`hookbox migrate`, `token …`, `admin …`) on whichever database the
//! configuration names, which may run while servers use it. Synchronous: the command line
//! has no runtime of its own; PostgreSQL's work runs on a small one made here.

use super::{postgres, sqlite, DbError, DbResult, Token};
use crate::config::Config;
use crate::domain::ids;
use std::path::PathBuf;

/// The database a configuration names.
#[derive(Debug, Clone)]
pub enum Database {
    Sqlite(PathBuf),
    Postgres(String),
}

impl Database {
    pub fn of(cfg: &Config) -> Database {
        match &cfg.database_url {
            Some(url) => Database::Postgres(url.clone()),
            None => Database::Sqlite(cfg.db_path()),
        }
    }
}

/// Runs `f` on a connection to the (migrated) database at `url`, on a thread and runtime of
/// its own (the caller may be inside a runtime already).
fn on_postgres<T: Send>(
    url: &str,
    f: impl AsyncFnOnce(&deadpool_postgres::Client) -> DbResult<T> + Send,
) -> DbResult<T> {
    run_on_postgres(url, true, f)
}

/// [`on_postgres`] for a command that only reads or changes what is there (listing or
/// revoking tokens): the schema is neither made nor upgraded (an older node may still use
/// it), and a database without hookbox's tables is refused, as the URL is then likely wrong.
fn on_existing_postgres<T: Send>(
    url: &str,
    f: impl AsyncFnOnce(&deadpool_postgres::Client) -> DbResult<T> + Send,
) -> DbResult<T> {
    run_on_postgres(url, false, f)
}

fn run_on_postgres<T: Send>(
    url: &str,
    migrate: bool,
    f: impl AsyncFnOnce(&deadpool_postgres::Client) -> DbResult<T> + Send,
) -> DbResult<T> {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| DbError::Io(e.to_string()))?;
                rt.block_on(async {
                    let pool = postgres::pool(url, 1)?;
                    if migrate {
                        postgres::migrate(&pool).await?;
                    }
                    let c = pool.get().await?;
                    if !migrate && !postgres::has_schema(&c).await? {
                        return Err(DbError::Postgres(
                            "this database holds no hookbox tables: check the URL (its database \
                             name), or run `hookbox migrate --database-url URL` first"
                                .into(),
                        ));
                    }
                    f(&c).await
                })
            })
            .join()
            .unwrap_or_else(|_| Err(DbError::Io("the command's thread panicked".into())))
    })
}

/// Creates or upgrades the schema; returns its version.
pub fn migrate(db: &Database) -> DbResult<i64> {
    match db {
        Database::Sqlite(path) => sqlite::migrate(path),
        Database::Postgres(url) => on_postgres(url, async |c| postgres::schema_version(c).await),
    }
}

/// Stores a new API token (by its hash); returns its id.
pub fn create_token(db: &Database, name: &str, hash: &str, now: i64) -> DbResult<String> {
    match db {
        Database::Sqlite(path) => sqlite::oneoff::create_token(path, name, hash, now),
        Database::Postgres(url) => on_postgres(url, async |c| {
            let id = ids::new_id(ids::TOKEN);
            postgres::tokens::insert(c, &id, name, hash, now).await?;
            Ok(id)
        }),
    }
}

pub fn list_tokens(db: &Database) -> DbResult<Vec<Token>> {
    match db {
        Database::Sqlite(path) => sqlite::oneoff::list_tokens(path),
        Database::Postgres(url) => {
            on_existing_postgres(url, async |c| postgres::tokens::list(c).await)
        }
    }
}

/// Revokes the active tokens with this id or name; how many. Running servers stop accepting
/// them within seconds (on PostgreSQL every node is told at once).
/// Revokes the token `id` if it is active; how many (0 or 1).
pub fn revoke_token(db: &Database, id: &str, now: i64) -> DbResult<usize> {
    match db {
        Database::Sqlite(path) => sqlite::oneoff::revoke_token(path, id, now),
        Database::Postgres(url) => on_existing_postgres(url, async |c| {
            let n = postgres::tokens::revoke(c, id, now).await?;
            if n > 0 {
                let out = postgres::notify::Outgoing::default();
                out.send(postgres::Signal::Tokens);
                out.flush(c, "cli").await?;
            }
            Ok(n)
        }),
    }
}

/// Creates a console admin; a taken name is a conflict.
pub fn create_admin(db: &Database, username: &str, hash: &str, now: i64) -> DbResult<String> {
    match db {
        Database::Sqlite(path) => sqlite::oneoff::create_admin(path, username, hash, now),
        Database::Postgres(url) => on_postgres(url, async |c| {
            postgres::admin::insert_user(c, username, hash, now).await
        }),
    }
}

/// Sets an admin's password and ends their sessions; `false` when there is no such admin.
pub fn set_admin_password(db: &Database, username: &str, hash: &str, now: i64) -> DbResult<bool> {
    match db {
        Database::Sqlite(path) => sqlite::oneoff::set_admin_password(path, username, hash, now),
        Database::Postgres(url) => on_postgres(url, async |c| {
            postgres::admin::set_password(c, username, hash, now).await
        }),
    }
}

/// What re-sealing a PostgreSQL database's secrets under a new main key came to.
#[derive(Debug, PartialEq, Eq)]
pub enum Resealed {
    /// Every secret re-sealed (this many), in one transaction.
    Done(usize),
    /// Nothing changed: this many nodes have heartbeat within `node_timeout` (they use the
    /// old key, and would stop opening the secrets).
    NodesRunning(usize),
    /// Nothing changed: the stored secrets do not open with the old key.
    WrongKey,
}

/// Re-seals every endpoint secret, header set and replayable secret response in the
/// PostgreSQL database at `url` from `old` to `new`, in one transaction, while no node runs
/// (none has heartbeat within `node_timeout_ms`, and none can start meanwhile: a starting
/// node's check of its key waits for the transaction). `announce(new)` is called once the
/// checks have passed, before the commit, so that the key is shown before it is needed.
pub fn reseal_postgres(
    url: &str,
    old: &crate::domain::crypto::MainKey,
    new: &crate::domain::crypto::MainKey,
    node_timeout_ms: i64,
    announce: impl FnOnce() + Send,
) -> DbResult<Resealed> {
    on_postgres(url, async |c| {
        postgres::endpoints::reseal_with_no_node_running(c, old, new, node_timeout_ms, announce)
            .await
    })
}
