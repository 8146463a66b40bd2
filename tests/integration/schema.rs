//! The PostgreSQL schema keeps the SQLite schema's tables and columns (plus what only several
//! nodes need), and its migrations apply once however many nodes start together. Runs on the
//! throwaway cluster `scripts/test` starts (`HOOKBOX_TEST_PG_URL`).

use std::collections::{BTreeMap, BTreeSet};

/// Only in the PostgreSQL schema, because only several nodes need them.
const POSTGRES_ONLY: &[(&str, &str)] = &[
    ("deliveries", "lease_owner"),
    ("nodes", "id"),
    ("nodes", "started_at"),
    ("nodes", "heartbeat_at"),
    ("schema_migrations", "version"),
    ("schema_migrations", "name"),
    ("schema_migrations", "applied_at"),
    ("endpoint_pacing", "endpoint_id"),
    ("endpoint_pacing", "tat_us"),
    ("chores", "name"),
    ("chores", "last_run"),
    ("main_key_check", "id"),
    ("main_key_check", "sealed"),
];

/// The test cluster's superuser URL (`scripts/test` starts one). Without one the test fails,
/// unless `HOOKBOX_TEST_SKIP_POSTGRES=1` asks to skip it (`None`).
fn admin_url() -> Option<String> {
    match std::env::var("HOOKBOX_TEST_PG_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var("HOOKBOX_TEST_SKIP_POSTGRES").as_deref() == Ok("1") => None,
        _ => panic!(
            "HOOKBOX_TEST_PG_URL is not set: run the tests with scripts/test \
             (or skip the PostgreSQL tests with HOOKBOX_TEST_SKIP_POSTGRES=1)"
        ),
    }
}

async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("the test cluster accepts connections");
    tokio::spawn(conn);
    client
}

/// A new, empty database on the test cluster; its URL.
async fn fresh_database(admin: &str) -> String {
    let name = format!("hookbox_{}", ulid::Ulid::new().to_string().to_lowercase());
    connect(admin)
        .await
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap();
    let (base, _) = admin.rsplit_once('/').unwrap();
    format!("{base}/{name}")
}

/// How many PostgreSQL migrations there are: the `.sql` files under `migrations/postgres`.
fn postgres_migrations() -> i64 {
    std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/postgres"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension() == Some("sql".as_ref()))
        .count() as i64
}

#[tokio::test]
async fn the_postgres_schema_has_every_table_and_column_of_the_sqlite_one() {
    let Some(admin) = admin_url() else { return };
    let url = fresh_database(&admin).await;
    assert_eq!(
        hookbox::db::migrate_postgres(&url).await.unwrap(),
        postgres_migrations()
    );
    let mut postgres: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for row in connect(&url)
        .await
        .query(
            "SELECT table_name::text, column_name::text FROM information_schema.columns \
             WHERE table_schema = 'public'",
            &[],
        )
        .await
        .unwrap()
    {
        postgres.entry(row.get(0)).or_default().insert(row.get(1));
    }

    // The SQLite schema as a new installation gets it (about the file itself: read directly).
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hookbox.db");
    hookbox::db::migrate(&file).unwrap();
    let c = rusqlite::Connection::open(&file).unwrap();
    let tables: Vec<String> = c
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut sqlite: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for t in tables {
        let columns: Vec<String> = c
            .prepare(&format!("SELECT name FROM pragma_table_info('{t}')"))
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        sqlite.insert(t, columns.into_iter().collect());
    }
    assert!(sqlite.len() >= 14, "{sqlite:?}");

    for (table, column) in POSTGRES_ONLY {
        let cols = postgres.get_mut(*table).expect(table);
        assert!(cols.remove(*column), "{table}.{column} missing");
        if cols.is_empty() {
            postgres.remove(*table);
        }
    }
    assert_eq!(postgres, sqlite);
}

#[tokio::test]
async fn nodes_starting_together_apply_each_migration_once() {
    let Some(admin) = admin_url() else { return };
    let url = fresh_database(&admin).await;
    let runs: Vec<_> = (0..4)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move { hookbox::db::migrate_postgres(&url).await })
        })
        .collect();
    for run in runs {
        assert_eq!(run.await.unwrap().unwrap(), postgres_migrations());
    }
    let applied: i64 = connect(&url)
        .await
        .query_one("SELECT COUNT(*) FROM schema_migrations", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(applied, postgres_migrations());
    assert_eq!(
        hookbox::db::migrate_postgres(&url).await.unwrap(),
        postgres_migrations()
    );
}
