//! Reading a whole SQLite database for `hookbox copy` (see `db::copy`): every table, as
//! neutral rows, from one read transaction (one snapshot).

use super::{endpoints, open_direct, rewrite_secrets, DbError, DbResult};
use crate::db::copy::{Row, Value};
use crate::domain::crypto::MainKey;
use rusqlite::types::ValueRef;
use rusqlite::Connection;
use std::path::Path;

/// An identifier, quoted.
fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The database being copied, inside its read transaction.
pub struct Source {
    conn: Connection,
}

impl Source {
    /// Opens the database at `path` (bringing its schema up to date, as a server start
    /// would), seals any plaintext secret under `key` (as a server start would), then begins
    /// the read transaction every later read shares. Fails with [`DbError::WrongMainKey`] when
    /// a sealed secret or sealed headers do not open with `key`.
    pub fn open(path: &Path, key: &MainKey) -> DbResult<Source> {
        let mut conn = open_direct(path)?;
        let sealed = rewrite_secrets(&mut conn, |tx| endpoints::seal_plaintext_secrets(tx, key))?;
        if sealed > 0 {
            tracing::info!(
                rows = sealed,
                "encrypted endpoint secrets stored in plaintext"
            );
        }
        // Deferred: the snapshot is taken by the first read, the check just below.
        conn.execute_batch("BEGIN")?;
        if !endpoints::sealed_secrets_open_with(&conn, key)? {
            return Err(DbError::WrongMainKey);
        }
        Ok(Source { conn })
    }

    /// Every table of the database (SQLite's own aside).
    pub fn tables(&self) -> DbResult<Vec<String>> {
        let mut stmt = self.conn.prepare(
            "SELECT name FROM sqlite_master WHERE type = 'table' \
             AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name",
        )?;
        let names = stmt
            .query_map([], |r| r.get(0))?
            .collect::<Result<Vec<String>, _>>()?;
        Ok(names)
    }

    /// The columns of `table`, in their order; an error when there is no such table.
    pub fn columns(&self, table: &str) -> DbResult<Vec<String>> {
        let mut stmt = self
            .conn
            .prepare("SELECT name FROM pragma_table_info(?1) ORDER BY cid")?;
        let names = stmt
            .query_map([table], |r| r.get(0))?
            .collect::<Result<Vec<String>, _>>()?;
        if names.is_empty() {
            return Err(DbError::Corrupt(format!("no table {table}")));
        }
        Ok(names)
    }

    /// How many rows `table` has.
    pub fn count(&self, table: &str) -> DbResult<u64> {
        let n: i64 =
            self.conn
                .query_row(&format!("SELECT COUNT(*) FROM {}", quote(table)), [], |r| {
                    r.get(0)
                })?;
        Ok(u64::try_from(n).unwrap_or_default())
    }

    /// Reads `columns` of every row of `table`, handing them to `batch` in batches of at most
    /// `rows` rows (fewer once they hold `bytes` bytes of text) until it answers `false`;
    /// returns how many rows were read.
    pub fn read(
        &self,
        table: &str,
        columns: &[String],
        rows: usize,
        bytes: usize,
        mut batch: impl FnMut(Vec<Row>) -> bool,
    ) -> DbResult<u64> {
        let cols: Vec<String> = columns.iter().map(|c| quote(c)).collect();
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {} FROM {} ORDER BY rowid",
            cols.join(", "),
            quote(table)
        ))?;
        let mut cursor = stmt.query([])?;
        let (mut read, mut size) = (0u64, 0usize);
        let mut pending: Vec<Row> = Vec::with_capacity(rows);
        while let Some(r) = cursor.next()? {
            let mut row = Vec::with_capacity(columns.len());
            for (i, col) in columns.iter().enumerate() {
                let v = value(r.get_ref(i)?)
                    .map_err(|what| DbError::Corrupt(format!("{table}.{col}: {what}")))?;
                size += v.weight();
                row.push(v);
            }
            pending.push(row);
            read += 1;
            if pending.len() >= rows || size >= bytes {
                size = 0;
                if !batch(std::mem::replace(&mut pending, Vec::with_capacity(rows))) {
                    return Ok(read);
                }
            }
        }
        if !pending.is_empty() {
            batch(pending);
        }
        Ok(read)
    }

    /// Ends the read transaction.
    pub fn finish(&self) -> DbResult<()> {
        self.conn.execute_batch("COMMIT")?;
        Ok(())
    }
}

/// A stored value as a neutral one. hookbox stores integers and text only; text must be
/// UTF-8 (PostgreSQL refuses anything else).
fn value(v: ValueRef<'_>) -> Result<Value, &'static str> {
    Ok(match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::Int(i),
        ValueRef::Real(_) => return Err("a real number, where hookbox stores integers or text"),
        ValueRef::Text(b) | ValueRef::Blob(b) => Value::Text(
            std::str::from_utf8(b)
                .map_err(|_| "text that is not UTF-8")?
                .to_owned(),
        ),
    })
}

/// A database at `path` (created and migrated) filled through SQL with `messages` messages
/// (each with a delivery, every third one pending, half of those claimed), and a bit of
/// every other table; for the copy's tests.
#[cfg(test)]
pub(crate) fn fill(path: &Path, key: &MainKey, messages: usize) {
    use rusqlite::params;
    let mut conn = open_direct(path).unwrap();
    let tx = conn.transaction().unwrap();
    tx.execute_batch(
        "INSERT INTO applications (id, uid, name, created_at, updated_at, retention_ms) \
             VALUES ('app_1', 'one', 'One', 1, 2, 3600000);
         INSERT INTO event_types (name, description, archived, deprecated, created_at, updated_at) \
             VALUES ('a.b', 'A', 0, 1, 1, 1);
         INSERT INTO api_tokens (id, name, token_hash, created_at, revoked_at) \
             VALUES ('tok_1', 't', 'hash', 1, NULL);
         INSERT INTO idempotency_keys (token_id, path, key, status_code, body, created_at) \
             VALUES ('tok_1', '/x', 'k', 201, '{}', 1);
         INSERT INTO admin_users (id, username, password_hash, created_at, updated_at) \
             VALUES ('adm_1', 'ops', 'h', 1, 1);
         INSERT INTO admin_sessions (id_hash, user_id, csrf, created_at, last_seen_at, expires_at) \
             VALUES ('s', 'adm_1', 'c', 1, 1, 9);
         INSERT INTO admin_setup_tokens (token_hash, created_at, expires_at) VALUES ('st', 1, 9);
         INSERT INTO portal_links (token_hash, app_id, read_only, created_at, expires_at) \
             VALUES ('pl', 'app_1', 1, 1, 9);
         INSERT INTO portal_sessions (id_hash, link_hash, csrf, created_at, last_seen_at, expires_at) \
             VALUES ('ps', 'pl', 'c', 1, 1, 9); \
         INSERT INTO login_checks (scope, at) VALUES ('failed admin', 1); \
         INSERT INTO login_turns (username, next_at) VALUES ('admin', 2); \
         INSERT INTO alert_recipients (id, app_id, channel, address, rules, source, created_at) \
             VALUES ('arcpt_1', 'app_1', 'email', 'a@example.com', 'endpoint.disabled', 'api', 1); \
         INSERT INTO notifications (app_id, endpoint_id, channel, address, rule, data, status, \
             attempts, next_attempt_at, created_at) \
             VALUES ('app_1', 'ep_1', 'email', 'a@example.com', 'endpoint.disabled', '{}', 0, 0, 1, 1);",
    )
    .unwrap();
    let headers = key.seal(&endpoints::headers_aad("ep_1"), "{\"X-Custom\":\"yes\"}");
    tx.execute(
        "INSERT INTO endpoints (id, app_id, url, headers, disabled, created_at, updated_at, \
         legacy_signature, verify_ssl) VALUES ('ep_1', 'app_1', 'http://x/', ?1, 0, 1, 1, 1, 0)",
        [&headers],
    )
    .unwrap();
    tx.execute_batch(
        "INSERT INTO endpoint_health (endpoint_id, minute, node, attempts, failures, timeouts, \
             rejected, last_success_at, last_failure_at) VALUES ('ep_1', 60000, '', 3, 2, 1, 1, 1, 2); \
         INSERT INTO alert_incidents (endpoint_id, app_id, rule, data, opened_at, alerted_at) \
             VALUES ('ep_1', 'app_1', 'endpoint.failing', '{}', 1, 1); \
         INSERT INTO background_tasks (id, kind, app_id, endpoint_id, status, spec, total, done, \
             queued, cursor_at, cursor_id, created_at, updated_at) VALUES ('qtask_1', \
             'endpoint.replay', 'app_1', 'ep_1', 'running', '{\"since\":0}', 9, 4, 3, 5, 'msg_4', \
             1, 2);",
    )
    .unwrap();
    // Row ids with a gap, as rotations and deletions leave them.
    for (id, secret) in [(3, "whsec_AAAA"), (7, "whsec_BBBB")] {
        tx.execute(
            "INSERT INTO endpoint_secrets (id, endpoint_id, secret, created_at) \
             VALUES (?1, 'ep_1', ?2, 1)",
            params![id, key.seal("ep_1", secret)],
        )
        .unwrap();
    }
    {
        let mut msg = tx
            .prepare(
                "INSERT INTO messages (id, app_id, event_type, payload, created_at) \
                 VALUES (?1, 'app_1', 'a.b', ?2, ?3)",
            )
            .unwrap();
        let mut del = tx
            .prepare(
                "INSERT INTO deliveries (id, msg_id, endpoint_id, status, attempts, \
                 next_attempt_at, lease_until, created_at, updated_at) \
                 VALUES (?1, ?2, 'ep_1', ?3, 1, 5, ?4, 1, 1)",
            )
            .unwrap();
        let mut att = tx
            .prepare(
                "INSERT INTO attempts (id, msg_id, endpoint_id, url, status, \
                 response_status_code, response, response_duration_ms, trigger_type, created_at) \
                 VALUES (?1, ?2, 'ep_1', 'http://x/', 2, 503, 'down', 12, 0, 1)",
            )
            .unwrap();
        for i in 0..messages {
            let id = format!("msg_{i:08}");
            let payload = format!(
                "{{\"n\": {i}, \"s\": \"é\\u00e9 {}\"}}",
                "x".repeat(i % 300)
            );
            msg.execute(params![id, payload, i as i64]).unwrap();
            let (status, lease) = match i % 3 {
                0 => (1, (i % 2 == 0).then_some(99_i64)),
                1 => (0, None),
                _ => (2, None),
            };
            del.execute(params![(i * 2 + 10) as i64, id, status, lease])
                .unwrap();
            att.execute(params![format!("atmpt_{i:08}"), id]).unwrap();
        }
    }
    tx.commit().unwrap();
}
