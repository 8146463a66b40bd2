//! What a test server stored, read behind its back, on whichever backend the suite runs:
//! the SQLite file in the data dir, or the PostgreSQL database named in it.

use super::Backend;
use std::path::Path;

/// The URL of the PostgreSQL database of the test whose data dir is `dir`, when the suite
/// runs on PostgreSQL.
pub fn postgres_url(dir: &Path) -> Option<String> {
    (Backend::from_env() == Backend::Postgres).then(|| super::pg_database_for(dir))
}

type Query = (String, std::sync::mpsc::Sender<Vec<tokio_postgres::Row>>);

/// Runs `sql` on the PostgreSQL database at `url` (from any thread or runtime), on a
/// connection kept open per database by a thread of its own.
pub fn pg_query(url: &str, sql: &str) -> Vec<tokio_postgres::Row> {
    static WORKERS: std::sync::OnceLock<
        std::sync::Mutex<std::collections::HashMap<String, std::sync::mpsc::Sender<Query>>>,
    > = std::sync::OnceLock::new();
    let worker = WORKERS
        .get_or_init(Default::default)
        .lock()
        .unwrap()
        .entry(url.to_owned())
        .or_insert_with(|| {
            let (tx, rx) = std::sync::mpsc::channel::<Query>();
            let url = url.to_owned();
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async {
                    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                        .await
                        .unwrap();
                    tokio::spawn(conn);
                    while let Ok((sql, reply)) = rx.recv() {
                        let _ = reply.send(client.query(&sql, &[]).await.unwrap());
                    }
                });
            });
            tx
        })
        .clone();
    let (reply, answer) = std::sync::mpsc::channel();
    worker.send((sql.to_owned(), reply)).unwrap();
    answer.recv().expect("the query ran")
}

/// Every table's row count, by table name.
pub fn table_counts(dir: &Path) -> Vec<(String, i64)> {
    if let Some(url) = postgres_url(dir) {
        // One statement: each table counted in the same snapshot.
        let tables: Vec<String> = pg_query(
            &url,
            "SELECT table_name::text FROM information_schema.tables \
             WHERE table_schema = 'public' ORDER BY 1",
        )
        .iter()
        .map(|r| r.get(0))
        .collect();
        let counts = tables
            .iter()
            .map(|t| format!("(SELECT COUNT(*) FROM \"{t}\")"))
            .collect::<Vec<_>>()
            .join(", ");
        let row = &pg_query(&url, &format!("SELECT {counts}"))[0];
        return tables
            .into_iter()
            .enumerate()
            .map(|(i, t)| (t, row.get(i)))
            .collect();
    }
    let c = rusqlite::Connection::open_with_flags(
        dir.join("hookbox.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let tables: Vec<String> = c
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    tables
        .into_iter()
        .map(|t| {
            let n = c
                .query_row(&format!("SELECT COUNT(*) FROM \"{t}\""), [], |r| r.get(0))
                .unwrap();
            (t, n)
        })
        .collect()
}

/// Everything stored, as bytes: the SQLite file and its WAL, or a data-only `pg_dump` of the
/// PostgreSQL database.
pub fn stored_bytes(dir: &Path) -> Vec<u8> {
    if let Some(url) = postgres_url(dir) {
        let out = std::process::Command::new(pg_dump())
            .args(["--data-only", "--dbname", &url])
            .output()
            .expect("pg_dump runs");
        assert!(
            out.status.success(),
            "pg_dump: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        return out.stdout;
    }
    let mut bytes = std::fs::read(dir.join("hookbox.db")).unwrap();
    if let Ok(wal) = std::fs::read(dir.join("hookbox.db-wal")) {
        bytes.extend(wal);
    }
    bytes
}

/// Debian's `pg_dump` (the newest version installed), else the one on the PATH.
fn pg_dump() -> std::path::PathBuf {
    let mut found: Vec<_> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin/pg_dump"))
        .filter(|p| p.exists())
        .collect();
    found.sort();
    found.pop().unwrap_or_else(|| "pg_dump".into())
}

/// Skips the rest of a test that is about SQLite itself (its file, its key file, its disk),
/// saying so, when the suite runs on PostgreSQL.
#[macro_export]
macro_rules! sqlite_only {
    ($why:expr) => {
        if $crate::support::Backend::from_env() == $crate::support::Backend::Postgres {
            eprintln!("not run on PostgreSQL: {}", $why);
            return;
        }
    };
}

/// Skips a test that needs several nodes on PostgreSQL, saying so, when the suite runs on
/// SQLite.
#[macro_export]
macro_rules! postgres_only {
    ($why:expr) => {
        if $crate::support::Backend::from_env() != $crate::support::Backend::Postgres {
            eprintln!("{}", $why);
            return;
        }
    };
}
