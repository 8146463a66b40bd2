//! Writing a whole database for `hookbox copy` (see `db::copy`): the checks on the target,
//! binary `COPY` of neutral rows, and the identity sequences moved past the copied ids.
//! Everything runs in the caller's transaction.

use super::{BoxError, DbError, DbResult};
use crate::db::copy::{Row, Value};
use bytes::BytesMut;
use deadpool_postgres::Transaction;
use std::collections::BTreeMap;
use std::pin::Pin;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{to_sql_checked, IsNull, ToSql, Type};

/// An identifier, quoted.
fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A text literal.
fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// Locks `tables` against every write but the caller's until its transaction ends (reads go
/// on). Waits at most 30 seconds for the locks.
pub(crate) async fn lock_tables(tx: &Transaction<'_>, tables: &[&str]) -> DbResult<()> {
    let list: Vec<String> = tables.iter().map(|t| quote(t)).collect();
    tx.batch_execute(&format!(
        "SET LOCAL lock_timeout = '30s'; LOCK TABLE {} IN EXCLUSIVE MODE",
        list.join(", ")
    ))
    .await?;
    Ok(())
}

/// Those of `tables` that hold at least one row.
pub(crate) async fn non_empty(tx: &Transaction<'_>, tables: &[&str]) -> DbResult<Vec<String>> {
    let checks: Vec<String> = tables
        .iter()
        .map(|t| {
            format!(
                "SELECT {}::text WHERE EXISTS (SELECT 1 FROM {})",
                literal(t),
                quote(t)
            )
        })
        .collect();
    let rows = tx.query(&checks.join(" UNION ALL "), &[]).await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// The columns of every table of the schema in use, in their order, by table.
pub(crate) async fn columns(tx: &Transaction<'_>) -> DbResult<BTreeMap<String, Vec<String>>> {
    let rows = tx
        .query(
            "SELECT c.table_name::text, c.column_name::text \
             FROM information_schema.columns c \
             JOIN information_schema.tables t \
               ON t.table_schema = c.table_schema AND t.table_name = c.table_name \
             WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE' \
             ORDER BY c.table_name, c.ordinal_position",
            &[],
        )
        .await?;
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in rows {
        out.entry(r.get(0)).or_default().push(r.get(1));
    }
    Ok(out)
}

/// Moves the sequence of every identity column past the largest id its table holds, so
/// that the next row inserted without an id gets a new one; and ordered lines' places past
/// those copied.
pub(crate) async fn advance_identities(tx: &Transaction<'_>) -> DbResult<()> {
    let identities = tx
        .query(
            "SELECT table_name::text, column_name::text FROM information_schema.columns \
             WHERE table_schema = current_schema() AND is_identity = 'YES'",
            &[],
        )
        .await?;
    for r in identities {
        let (table, column): (String, String) = (r.get(0), r.get(1));
        tx.query_one(
            &format!(
                "SELECT setval(pg_get_serial_sequence($1, $2), COALESCE(MAX({}), 0) + 1, false) \
                 FROM {}",
                quote(&column),
                quote(&table)
            ),
            &[&quote(&table), &column],
        )
        .await?;
    }
    // Ordered lines take their places from a sequence too: after those copied.
    tx.query_one(
        "SELECT setval('delivery_lanes', COALESCE(MAX(lane), 0) + 1, false) FROM deliveries",
        &[],
    )
    .await?;
    Ok(())
}

/// One table being filled by binary `COPY`. Identity columns take the ids given, as with
/// `OVERRIDING SYSTEM VALUE` (see [`advance_identities`]).
pub(crate) struct TableCopy {
    table: String,
    writer: Pin<Box<BinaryCopyInWriter>>,
}

impl TableCopy {
    /// Starts copying rows of `columns` (in this order) into `table`.
    pub(crate) async fn start(
        tx: &Transaction<'_>,
        table: &str,
        columns: &[String],
    ) -> DbResult<TableCopy> {
        let cols: Vec<String> = columns.iter().map(|c| quote(c)).collect();
        let cols = cols.join(", ");
        let types: Vec<Type> = tx
            .prepare(&format!("SELECT {cols} FROM {} LIMIT 0", quote(table)))
            .await?
            .columns()
            .iter()
            .map(|c| c.type_().clone())
            .collect();
        let sink = tx
            .copy_in(&format!(
                "COPY {} ({cols}) FROM STDIN (FORMAT binary)",
                quote(table)
            ))
            .await?;
        Ok(TableCopy {
            table: table.to_owned(),
            writer: Box::pin(BinaryCopyInWriter::new(sink, &types)),
        })
    }

    pub(crate) async fn write(&mut self, rows: &[Row]) -> DbResult<()> {
        for row in rows {
            let cells: Vec<Cell<'_>> = row.iter().map(Cell).collect();
            let refs: Vec<&(dyn ToSql + Sync)> =
                cells.iter().map(|c| c as &(dyn ToSql + Sync)).collect();
            let written = self.writer.as_mut().write(&refs).await;
            written.map_err(|e| in_table(&self.table, e))?;
        }
        Ok(())
    }

    /// Ends the copy; how many rows it wrote.
    pub(crate) async fn finish(mut self) -> DbResult<u64> {
        let done = self.writer.as_mut().finish().await;
        done.map_err(|e| in_table(&self.table, e))
    }
}

fn in_table(table: &str, e: tokio_postgres::Error) -> DbError {
    match DbError::from(e) {
        DbError::Postgres(m) => DbError::Postgres(format!("while copying {table}: {m}")),
        DbError::Unstorable(m) => DbError::Unstorable(format!("while copying {table}: {m}")),
        other => other,
    }
}

/// A neutral value as its column's type wants it. Integers fit the column or fail; SQLite's
/// booleans are 0 or 1.
#[derive(Debug)]
struct Cell<'a>(&'a Value);

impl ToSql for Cell<'_> {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        match self.0 {
            Value::Null => Ok(IsNull::Yes),
            Value::Int(i) if *ty == Type::INT8 => i.to_sql(ty, out),
            Value::Int(i) if *ty == Type::INT4 => i32::try_from(*i)?.to_sql(ty, out),
            Value::Int(i) if *ty == Type::INT2 => i16::try_from(*i)?.to_sql(ty, out),
            Value::Int(i) if *ty == Type::BOOL => match i {
                0 => false.to_sql(ty, out),
                1 => true.to_sql(ty, out),
                _ => Err(format!("{i} is not a boolean (0 or 1)").into()),
            },
            Value::Text(s) if *ty == Type::TEXT || *ty == Type::VARCHAR => {
                s.as_str().to_sql(ty, out)
            }
            Value::Int(_) => Err(format!("an integer cannot be stored as {ty}").into()),
            Value::Text(_) => Err(format!("text cannot be stored as {ty}").into()),
        }
    }

    fn accepts(ty: &Type) -> bool {
        [
            Type::INT2,
            Type::INT4,
            Type::INT8,
            Type::BOOL,
            Type::TEXT,
            Type::VARCHAR,
        ]
        .contains(ty)
    }

    to_sql_checked!();
}

#[cfg(test)]
mod tests {
    use super::super::tests::fresh_database;
    use crate::db::copy::{sqlite_to_postgres, CopyError, TABLES};
    use crate::domain::crypto::MainKey;

    /// Every table's row count, in [`TABLES`] order.
    async fn counts(c: &deadpool_postgres::Client) -> Vec<(String, i64)> {
        let mut out = Vec::new();
        for t in TABLES {
            let n: i64 = c
                .query_one(&format!("SELECT COUNT(*) FROM {t}"), &[])
                .await
                .unwrap()
                .get(0);
            out.push((t.to_string(), n));
        }
        out
    }

    #[tokio::test]
    async fn nul_characters_postgresql_cannot_store_are_replaced_and_counted() {
        let Some((pool, url)) = fresh_database().await else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hookbox.db");
        let key = MainKey::generate();
        crate::db::sqlite::copy::fill(&path, &key, 3);
        rusqlite::Connection::open(&path)
            .unwrap()
            .execute(
                "UPDATE attempts SET response = 'a' || char(0) || 'b' \
                 WHERE rowid = (SELECT MIN(rowid) FROM attempts)",
                [],
            )
            .unwrap();
        let (p, u) = (path.clone(), url.clone());
        let copied = tokio::task::spawn_blocking(move || sqlite_to_postgres(&p, &key, &u))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(copied.nul_replaced, 1);
        let c = pool.get().await.unwrap();
        let kept: Vec<String> = c
            .query(
                "SELECT response FROM attempts WHERE response LIKE 'a%b'",
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        assert_eq!(kept, ["a\u{fffd}b"]);
    }

    #[tokio::test]
    async fn a_sqlite_database_is_copied_whole_and_only_into_an_empty_one() {
        let Some((pool, url)) = fresh_database().await else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hookbox.db");
        let key = MainKey::generate();
        // More rows than a batch holds.
        let n = 5000;
        crate::db::sqlite::copy::fill(&path, &key, n);
        // A node with another key started on the database before (and left nothing else).
        let other = MainKey::generate();
        super::super::endpoints::reset_key_check(&pool.get().await.unwrap(), &other)
            .await
            .unwrap();

        let (p, u, k) = (path.clone(), url.clone(), key.clone());
        let started = std::time::Instant::now();
        let copied = tokio::task::spawn_blocking(move || sqlite_to_postgres(&p, &k, &u))
            .await
            .unwrap()
            .unwrap();
        eprintln!("copied {n} messages in {:?}", started.elapsed());
        let got: Vec<(&str, u64)> = copied.tables.clone();
        let want = |t: &str| match t {
            "messages" | "deliveries" | "attempts" => n as u64,
            "endpoint_secrets" => 2,
            _ => 1,
        };
        assert_eq!(
            got,
            TABLES.iter().map(|t| (*t, want(t))).collect::<Vec<_>>()
        );
        let pending = n.div_ceil(3) as u64;
        assert_eq!(copied.pending, pending);
        assert_eq!(copied.unleased, pending.div_ceil(2));

        let c = pool.get().await.unwrap();
        // Payloads byte for byte; no lease is left; ids kept.
        let r = c
            .query_one(
                "SELECT payload FROM messages WHERE id = 'msg_00000299'",
                &[],
            )
            .await
            .unwrap();
        let payload: String = r.get(0);
        assert_eq!(
            payload,
            format!("{{\"n\": 299, \"s\": \"é\\u00e9 {}\"}}", "x".repeat(299))
        );
        let r = c
            .query_one(
                "SELECT COUNT(*) FILTER (WHERE lease_until IS NOT NULL OR lease_owner IS NOT NULL), \
                 COUNT(*) FILTER (WHERE status = 1), MAX(id) FROM deliveries",
                &[],
            )
            .await
            .unwrap();
        assert_eq!(r.get::<_, i64>(0), 0);
        assert_eq!(r.get::<_, i64>(1), pending as i64);
        assert_eq!(r.get::<_, i64>(2), ((n - 1) * 2 + 10) as i64);
        // Booleans, secrets and headers as stored; they open with the key.
        let r = c
            .query_one(
                "SELECT legacy_signature, verify_ssl, disabled FROM endpoints",
                &[],
            )
            .await
            .unwrap();
        assert_eq!(
            (
                r.get::<_, bool>(0),
                r.get::<_, bool>(1),
                r.get::<_, bool>(2)
            ),
            (true, false, false)
        );
        assert!(super::super::endpoints::sealed_secrets_open_with(&c, &key)
            .await
            .unwrap());
        // Nodes must now use the copied secrets' key, not the one of the node before.
        assert!(super::super::endpoints::key_check_set(&c, &key)
            .await
            .unwrap());
        assert!(
            !super::super::endpoints::sealed_secrets_open_with(&c, &other)
                .await
                .unwrap()
        );
        // The identity sequences continue after the copied ids.
        let next: i64 = c
            .query_one(
                "INSERT INTO endpoint_secrets (endpoint_id, secret, created_at) \
                 VALUES ('ep_1', 'x', 1) RETURNING id",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(next, 8);
        let next: i64 = c
            .query_one(
                "INSERT INTO deliveries (msg_id, endpoint_id, status, created_at, updated_at) \
                 VALUES ('msg_00000000', 'ep_1', 1, 1, 1) \
                 ON CONFLICT (msg_id, endpoint_id) DO UPDATE SET status = 1 RETURNING id",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(next, 10, "the existing row was found");
        c.execute("DELETE FROM endpoint_secrets WHERE id = 8", &[])
            .await
            .unwrap();

        // A second copy is refused and writes nothing.
        let before = counts(&c).await;
        let (p, u, k) = (path.clone(), url.clone(), key.clone());
        let err = tokio::task::spawn_blocking(move || sqlite_to_postgres(&p, &k, &u))
            .await
            .unwrap()
            .unwrap_err();
        assert!(matches!(err, CopyError::NotEmpty(_)), "{err}");
        assert!(err.to_string().contains("not empty"), "{err}");
        assert_eq!(counts(&c).await, before);

        // A wrong key is refused before anything is read.
        let (p, u) = (path.clone(), url.clone());
        let err =
            tokio::task::spawn_blocking(move || sqlite_to_postgres(&p, &MainKey::generate(), &u))
                .await
                .unwrap()
                .unwrap_err();
        assert!(
            matches!(
                err,
                CopyError::Db(
                    crate::db::DbError::WrongMainKey | crate::db::DbError::Undecryptable { .. }
                )
            ),
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_row_postgres_refuses_rolls_the_whole_copy_back() {
        let Some((pool, url)) = fresh_database().await else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hookbox.db");
        let key = MainKey::generate();
        crate::db::sqlite::copy::fill(&path, &key, 10);
        // A delivery of a message that does not exist (foreign keys off, as an old file may
        // have been written): every table before it was copied, then this row fails.
        {
            let c = crate::db::sqlite::open_direct(&path).unwrap();
            c.execute_batch(
                "PRAGMA foreign_keys = OFF; \
                 INSERT INTO deliveries (msg_id, endpoint_id, status, created_at, updated_at) \
                 VALUES ('msg_gone', 'ep_1', 1, 1, 1);",
            )
            .unwrap();
        }
        let (p, u) = (path.clone(), url.clone());
        let err = tokio::task::spawn_blocking(move || sqlite_to_postgres(&p, &key, &u))
            .await
            .unwrap()
            .unwrap_err();
        assert!(err.to_string().contains("deliveries"), "{err}");
        let c = pool.get().await.unwrap();
        assert!(counts(&c).await.iter().all(|(_, n)| *n == 0));
    }
}
