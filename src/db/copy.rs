//! `hookbox copy`: moves a SQLite installation into an empty PostgreSQL database.
//!
//! The SQLite file is read in one read transaction (one snapshot) on a thread of its own,
//! which streams the rows of each table, in batches, to the PostgreSQL side; that side
//! writes them with binary `COPY` inside ONE transaction, which commits only when every
//! table is in, its row count checked against the snapshot's. Anything wrong on the way
//! (a non-empty target, schemas that differ, a row PostgreSQL refuses) rolls everything back.
//!
//! Rows travel in a neutral form ([`Value`]): the SQL stays in `sqlite/copy.rs` (reading)
//! and `postgres/copy.rs` (writing). What changes on the way is decided here: deliveries
//! lose their lease ([`CLEARED`]), so that the nodes send the pending ones, and the columns
//! only PostgreSQL has ([`POSTGRES_ONLY`]) keep their defaults. Endpoint secrets and custom
//! headers are copied as stored, still sealed under the main key: the nodes must use the
//! same key.

use super::{postgres, sqlite, DbError};
use crate::domain::crypto::MainKey;
use crate::domain::model::DeliveryStatus;
use std::collections::BTreeSet;
use std::path::Path;

/// Every table copied, parents before children (PostgreSQL checks each foreign key as the
/// rows arrive). A table added to the schema must be listed here, or the copy refuses to run
/// (and `every_table_of_the_schemas_is_copied` fails).
pub const TABLES: &[&str] = &[
    "applications",
    "event_types",
    "endpoints",
    "endpoint_secrets",
    "messages",
    "deliveries",
    "attempts",
    "api_tokens",
    "idempotency_keys",
    "admin_users",
    "admin_sessions",
    "admin_setup_tokens",
    "portal_links",
    "portal_sessions",
    "login_checks",
    "login_turns",
    "alert_recipients",
    "notifications",
    "endpoint_health",
    "alert_incidents",
    "background_tasks",
];

/// Tables only the PostgreSQL schema has, so not copied: its migrations' bookkeeping (SQLite
/// keeps its version in `user_version`) and the cluster's own state, which a new cluster
/// starts without: its nodes, the pacing of rate-limited endpoints, the chores' turns, and the
/// main key's check value (sealed anew under the key of the copied secrets).
pub const NOT_COPIED: &[&str] = &[
    "schema_migrations",
    "nodes",
    "endpoint_pacing",
    "chores",
    "main_key_check",
];

/// Columns only the PostgreSQL schema has: left to their defaults.
const POSTGRES_ONLY: &[(&str, &str)] = &[("deliveries", "lease_owner")];

/// Columns emptied on the way: a delivery the stopped SQLite server had claimed (its lease
/// outlives a stop) becomes unclaimed, so that the nodes send it.
const CLEARED: &[(&str, &str)] = &[("deliveries", "lease_until")];

/// Rows per batch sent from the reader to the writer, and the bytes of text after which a
/// batch is sent earlier (large payloads).
const BATCH_ROWS: usize = 2000;
const BATCH_BYTES: usize = 8 << 20;
/// Batches in flight between the reader and the writer.
const IN_FLIGHT: usize = 4;

/// One stored value, in a form neither backend owns. SQLite booleans arrive as `Int` (0 or
/// 1); the writer gives each value its column's type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Null,
    Int(i64),
    Text(String),
}

impl Value {
    /// Roughly how many bytes it takes, for sizing batches.
    pub(crate) fn weight(&self) -> usize {
        match self {
            Value::Text(s) => s.len() + 8,
            _ => 8,
        }
    }
}

pub type Row = Vec<Value>;

/// What [`sqlite_to_postgres`] copied.
#[derive(Debug, Clone, Default)]
pub struct Copied {
    /// Rows per table, in [`TABLES`] order.
    pub tables: Vec<(&'static str, u64)>,
    /// Deliveries still to be sent (pending), all unclaimed now.
    pub pending: u64,
    /// Of those, how many the SQLite server had claimed (their lease was cleared).
    pub unleased: u64,
    /// Text values that held NUL characters, which PostgreSQL's text cannot: each NUL became
    /// U+FFFD (receivers' answers kept in the attempt log, from before hookbox did so).
    pub nul_replaced: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error("no hookbox database at {0}")]
    NoSource(String),
    #[error(
        "the PostgreSQL database is not empty (rows in {0}); nothing was written. hookbox copy \
         writes only into an empty database: create a new one (CREATE DATABASE …) and copy \
         into it (a hookbox node started on a database fills it: copy before starting any)"
    )]
    NotEmpty(String),
    #[error("the SQLite and PostgreSQL schemas differ ({0}); nothing was written")]
    Schema(String),
    #[error("{0}")]
    Db(#[from] DbError),
}

/// One table to copy: its name, its columns (as the SQLite file has them) and its rows in
/// the snapshot.
#[derive(Debug, Clone)]
struct Planned {
    table: &'static str,
    columns: Vec<String>,
    rows: u64,
}

/// What the reader sends the writer: a batch of the current table's rows, or its end.
enum Batch {
    Rows(Vec<Row>),
    End,
}

/// Copies every table of the SQLite database at `db_path` into the empty PostgreSQL
/// database at `url` (migrated first), in one PostgreSQL transaction. `key` is the SQLite
/// installation's main key: plaintext secrets a very old database may still hold are sealed
/// under it first (as a server start would), and every sealed one must open with it. The
/// caller holds the data dir's lock (no server runs on it).
///
/// Synchronous: runs its own small runtime on a thread (the caller may be inside one).
pub fn sqlite_to_postgres(db_path: &Path, key: &MainKey, url: &str) -> Result<Copied, CopyError> {
    if !db_path.is_file() {
        return Err(CopyError::NoSource(db_path.display().to_string()));
    }
    let source = sqlite::copy::Source::open(db_path, key)?;
    let sqlite_tables = source.tables()?;
    check_tables("the SQLite database", &sqlite_tables, &[])?;
    let mut plan = Vec::with_capacity(TABLES.len());
    for &table in TABLES {
        plan.push(Planned {
            table,
            columns: source.columns(table)?,
            rows: source.count(table)?,
        });
    }

    let (send, recv) = tokio::sync::mpsc::channel::<Batch>(IN_FLIGHT);
    let reader_plan = plan.clone();
    std::thread::scope(|scope| {
        let reader = scope.spawn(move || -> Result<bool, DbError> {
            for (i, p) in reader_plan.iter().enumerate() {
                let mut open = true;
                source.read(p.table, &p.columns, BATCH_ROWS, BATCH_BYTES, |rows| {
                    open = send.blocking_send(Batch::Rows(rows)).is_ok();
                    open
                })?;
                if i + 1 == reader_plan.len() {
                    // The snapshot ends before the last table's end lets the writer commit.
                    source.finish()?;
                }
                if !open || send.blocking_send(Batch::End).is_err() {
                    // The writer stopped (it says why).
                    return Ok(false);
                }
            }
            Ok(true)
        });
        let writer = scope.spawn(move || write(url, key, &plan, recv));
        let read = reader
            .join()
            .unwrap_or_else(|_| Err(DbError::Io("the reading thread panicked".into())));
        let written = writer
            .join()
            .unwrap_or_else(|_| Err(DbError::Io("the writing thread panicked".into()).into()));
        match (read, written) {
            // What the reader met explains why the writer stopped short.
            (Err(e), _) => Err(e.into()),
            (Ok(_), written) => written,
        }
    })
}

/// The PostgreSQL side: one transaction that checks the target, copies each table from
/// `batches` and moves the identity sequences past the copied ids.
fn write(
    url: &str,
    key: &MainKey,
    plan: &[Planned],
    mut batches: tokio::sync::mpsc::Receiver<Batch>,
) -> Result<Copied, CopyError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| DbError::Io(e.to_string()))?;
    rt.block_on(async {
        let pool = postgres::pool(url, 1)?;
        postgres::migrate(&pool).await?;
        let mut client = pool.get().await.map_err(DbError::from)?;
        let tx = client.transaction().await.map_err(DbError::from)?;
        // Nothing may be written beside the copy (a node starting meanwhile waits for it).
        postgres::copy::lock_tables(&tx, TABLES).await?;
        postgres::copy::lock_tables(&tx, &["main_key_check"]).await?;
        let filled = postgres::copy::non_empty(&tx, TABLES).await?;
        if !filled.is_empty() {
            return Err(CopyError::NotEmpty(filled.join(", ")));
        }
        let schema = postgres::copy::columns(&tx).await?;
        let pg_tables: Vec<String> = schema.keys().cloned().collect();
        check_tables("the PostgreSQL database", &pg_tables, NOT_COPIED)?;
        for p in plan {
            check_columns(p, &schema[p.table])?;
        }

        let mut copied = Copied::default();
        for p in plan {
            let at = |name: &str| p.columns.iter().position(|c| c == name);
            let cleared: Vec<usize> = CLEARED
                .iter()
                .filter(|(t, _)| *t == p.table)
                .filter_map(|(_, c)| at(c))
                .collect();
            let status = (p.table == "deliveries").then(|| at("status")).flatten();
            let mut sink = postgres::copy::TableCopy::start(&tx, p.table, &p.columns).await?;
            let mut rows = 0u64;
            loop {
                match batches.recv().await {
                    Some(Batch::Rows(mut batch)) => {
                        for row in &mut batch {
                            let pending = status.is_some_and(|i| {
                                row[i] == Value::Int(DeliveryStatus::Pending.code())
                            });
                            copied.pending += u64::from(pending);
                            for &i in &cleared {
                                let old = std::mem::replace(&mut row[i], Value::Null);
                                copied.unleased += u64::from(pending && old != Value::Null);
                            }
                            for v in row.iter_mut() {
                                if let Value::Text(s) = v {
                                    if let Some(clean) = crate::domain::replace_nul(s) {
                                        *s = clean;
                                        copied.nul_replaced += 1;
                                    }
                                }
                            }
                        }
                        rows += batch.len() as u64;
                        sink.write(&batch).await?;
                    }
                    Some(Batch::End) => break,
                    None => {
                        return Err(DbError::Io(format!(
                            "reading {} stopped before its end",
                            p.table
                        ))
                        .into())
                    }
                }
            }
            let written = sink.finish().await?;
            if written != rows || rows != p.rows {
                return Err(DbError::Corrupt(format!(
                    "{}: {} rows in the snapshot, {rows} read, {written} written",
                    p.table, p.rows
                ))
                .into());
            }
            copied.tables.push((p.table, written));
        }
        postgres::copy::advance_identities(&tx).await?;
        // The nodes started on it must use the key the copied secrets are sealed under.
        postgres::endpoints::reset_key_check(&tx, key).await?;
        tx.commit().await.map_err(DbError::from)?;
        Ok(copied)
    })
}

/// `found` (a database's tables, minus `ignored`) must be exactly [`TABLES`].
fn check_tables(what: &str, found: &[String], ignored: &[&str]) -> Result<(), CopyError> {
    let found: BTreeSet<&str> = found
        .iter()
        .map(String::as_str)
        .filter(|t| !ignored.contains(t))
        .collect();
    let known: BTreeSet<&str> = TABLES.iter().copied().collect();
    let unknown: Vec<&str> = found.difference(&known).copied().collect();
    let missing: Vec<&str> = known.difference(&found).copied().collect();
    let mut problems = Vec::new();
    if !unknown.is_empty() {
        problems.push(format!(
            "{what} has tables this hookbox does not know how to copy: {}",
            unknown.join(", ")
        ));
    }
    if !missing.is_empty() {
        problems.push(format!("{what} lacks tables: {}", missing.join(", ")));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(CopyError::Schema(problems.join("; ")))
    }
}

/// Every SQLite column of `p` must exist in PostgreSQL, and every PostgreSQL column in SQLite
/// unless [`POSTGRES_ONLY`] lists it.
fn check_columns(p: &Planned, pg_columns: &[String]) -> Result<(), CopyError> {
    let sqlite: BTreeSet<&str> = p.columns.iter().map(String::as_str).collect();
    let pg: BTreeSet<&str> = pg_columns.iter().map(String::as_str).collect();
    let mut problems = Vec::new();
    for c in sqlite.difference(&pg) {
        problems.push(format!("PostgreSQL lacks {}.{c}", p.table));
    }
    for c in pg.difference(&sqlite) {
        if !POSTGRES_ONLY.contains(&(p.table, c)) {
            problems.push(format!("SQLite lacks {}.{c}", p.table));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(CopyError::Schema(problems.join(", ")))
    }
}

/// The tables of each schema, read from the migration files: `CREATE TABLE name` minus
/// `DROP TABLE name`, in file order.
#[cfg(test)]
pub(crate) fn tables_in_migrations(dir: &str) -> BTreeSet<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(dir);
    let mut files: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "sql"))
        .collect();
    files.sort();
    let mut tables = BTreeSet::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let words: Vec<String> = text
            .lines()
            .map(|l| l.split("--").next().unwrap_or_default())
            .flat_map(|l| l.split(|c: char| c.is_whitespace() || c == '(' || c == ';'))
            .filter(|w| !w.is_empty())
            .map(|w| w.trim_matches('"').to_ascii_lowercase())
            .collect();
        for i in 0..words.len().saturating_sub(2) {
            let name = |mut at: usize| {
                // `IF NOT EXISTS` / `IF EXISTS`
                while matches!(
                    words.get(at).map(String::as_str),
                    Some("if" | "not" | "exists")
                ) {
                    at += 1;
                }
                words.get(at).cloned().unwrap_or_default()
            };
            match (words[i].as_str(), words[i + 1].as_str()) {
                ("create", "table") => {
                    tables.insert(name(i + 2));
                }
                ("drop", "table") => {
                    tables.remove(&name(i + 2));
                }
                _ => {}
            }
        }
    }
    tables
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_table_of_the_schemas_is_copied() {
        let copied: BTreeSet<String> = TABLES.iter().map(|t| t.to_string()).collect();
        assert_eq!(copied.len(), TABLES.len(), "a table is listed twice");
        let mut postgres = tables_in_migrations("postgres");
        // Created by the migration runner itself, not by a migration file.
        assert!(!postgres.contains("schema_migrations"));
        for t in NOT_COPIED.iter().filter(|t| **t != "schema_migrations") {
            assert!(
                postgres.remove(*t),
                "NOT_COPIED names {t}, not in the schema"
            );
        }
        assert_eq!(
            copied, postgres,
            "db::copy::TABLES must list every table of the PostgreSQL schema but {NOT_COPIED:?}"
        );
        assert_eq!(
            copied,
            tables_in_migrations("sqlite"),
            "db::copy::TABLES must list every table of the SQLite schema"
        );
    }

    #[test]
    fn parents_come_before_their_children() {
        let at = |t: &str| TABLES.iter().position(|x| *x == t).unwrap();
        for (child, parent) in [
            ("endpoints", "applications"),
            ("endpoint_secrets", "endpoints"),
            ("messages", "applications"),
            ("deliveries", "messages"),
            ("deliveries", "endpoints"),
            ("attempts", "messages"),
            ("attempts", "endpoints"),
            ("admin_sessions", "admin_users"),
            ("portal_links", "applications"),
            ("portal_sessions", "portal_links"),
        ] {
            assert!(at(parent) < at(child), "{parent} must come before {child}");
        }
    }

    #[test]
    fn tables_and_columns_that_differ_are_named() {
        let found: Vec<String> = TABLES
            .iter()
            .map(|t| t.to_string())
            .chain(["extra".to_string()])
            .filter(|t| t != "attempts")
            .collect();
        let err = check_tables("X", &found, &[]).unwrap_err().to_string();
        assert!(err.contains("does not know how to copy: extra"), "{err}");
        assert!(err.contains("lacks tables: attempts"), "{err}");
        let p = Planned {
            table: "deliveries",
            columns: vec!["id".into(), "lease_until".into(), "old".into()],
            rows: 0,
        };
        let pg = ["id", "lease_until", "lease_owner", "new"].map(String::from);
        let err = check_columns(&p, &pg).unwrap_err().to_string();
        assert!(err.contains("PostgreSQL lacks deliveries.old"), "{err}");
        assert!(err.contains("SQLite lacks deliveries.new"), "{err}");
        assert!(!err.contains("lease_owner"), "{err}");
    }
}
