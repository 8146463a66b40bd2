//! The admin console's storage: admin users, sessions, setup links, and the read-only
//! aggregates its pages show (dashboard counts, endpoint health).

use super::{is_unique_violation, DbError, DbResult};
use crate::domain::ids;
use crate::domain::ids::EndpointId;
use rusqlite::{params, Connection, OptionalExtension};
use std::collections::HashMap;

#[derive(Debug, Clone)]
pub struct AdminUser {
    pub id: String,
    pub username: String,
    pub password_hash: String,
}

pub fn count_users(c: &Connection) -> DbResult<i64> {
    Ok(c.query_row("SELECT COUNT(*) FROM admin_users", [], |r| r.get(0))?)
}

/// Creates an admin; a taken username is a conflict.
pub fn insert_user(c: &Connection, username: &str, hash: &str, now: i64) -> DbResult<String> {
    let id = ids::new_id("adm");
    c.execute(
        "INSERT INTO admin_users (id, username, password_hash, created_at, updated_at) VALUES (?,?,?,?,?)",
        params![id, username, hash, now, now],
    )
    .map_err(|e| {
        if is_unique_violation(&e) {
            DbError::Conflict(format!("an admin named `{username}` already exists"))
        } else {
            e.into()
        }
    })?;
    Ok(id)
}

pub fn user_by_name(c: &Connection, username: &str) -> DbResult<Option<AdminUser>> {
    Ok(
        c.prepare_cached("SELECT id, username, password_hash FROM admin_users WHERE username = ?")?
            .query_row([username], |r| {
                Ok(AdminUser {
                    id: r.get(0)?,
                    username: r.get(1)?,
                    password_hash: r.get(2)?,
                })
            })
            .optional()?,
    )
}

/// Sets a new password hash and ends every session of that admin; false when no such admin.
pub fn set_password(c: &Connection, username: &str, hash: &str, now: i64) -> DbResult<bool> {
    let Some(user) = user_by_name(c, username)? else {
        return Ok(false);
    };
    c.execute(
        "UPDATE admin_users SET password_hash = ?, updated_at = ? WHERE id = ?",
        params![hash, now, user.id],
    )?;
    c.execute("DELETE FROM admin_sessions WHERE user_id = ?", [&user.id])?;
    Ok(true)
}

/// A live session with its admin's name.
#[derive(Debug, Clone)]
pub struct Session {
    pub id_hash: String,
    pub user_id: String,
    pub username: String,
    pub csrf: String,
    pub last_seen_at: i64,
}

pub fn insert_session(
    c: &Connection,
    id_hash: &str,
    user_id: &str,
    csrf: &str,
    now: i64,
    expires_at: i64,
) -> DbResult<()> {
    c.execute(
        "INSERT INTO admin_sessions (id_hash, user_id, csrf, created_at, last_seen_at, expires_at) \
         VALUES (?,?,?,?,?,?)",
        params![id_hash, user_id, csrf, now, now, expires_at],
    )?;
    Ok(())
}

/// The session with this hash, unless it has expired at `now`.
pub fn session(c: &Connection, id_hash: &str, now: i64) -> DbResult<Option<Session>> {
    Ok(c.prepare_cached(
        "SELECT s.id_hash, s.user_id, u.username, s.csrf, s.last_seen_at FROM admin_sessions s \
             JOIN admin_users u ON u.id = s.user_id WHERE s.id_hash = ? AND s.expires_at > ?",
    )?
    .query_row(params![id_hash, now], |r| {
        Ok(Session {
            id_hash: r.get(0)?,
            user_id: r.get(1)?,
            username: r.get(2)?,
            csrf: r.get(3)?,
            last_seen_at: r.get(4)?,
        })
    })
    .optional()?)
}

/// Extends an idle session; also drops sessions that have expired.
pub fn touch_session(c: &Connection, id_hash: &str, now: i64, expires_at: i64) -> DbResult<()> {
    c.prepare_cached(
        "UPDATE admin_sessions SET last_seen_at = ?, expires_at = ? WHERE id_hash = ?",
    )?
    .execute(params![now, expires_at, id_hash])?;
    c.prepare_cached("DELETE FROM admin_sessions WHERE expires_at <= ?")?
        .execute([now])?;
    Ok(())
}

pub fn delete_session(c: &Connection, id_hash: &str) -> DbResult<()> {
    c.execute("DELETE FROM admin_sessions WHERE id_hash = ?", [id_hash])?;
    Ok(())
}

/// Replaces any earlier setup link with this one.
pub fn replace_setup_token(c: &Connection, hash: &str, now: i64, expires_at: i64) -> DbResult<()> {
    c.execute("DELETE FROM admin_setup_tokens", [])?;
    c.execute(
        "INSERT INTO admin_setup_tokens (token_hash, created_at, expires_at) VALUES (?,?,?)",
        params![hash, now, expires_at],
    )?;
    Ok(())
}

pub fn setup_token_valid(c: &Connection, hash: &str, now: i64) -> DbResult<bool> {
    Ok(c.prepare_cached(
        "SELECT 1 FROM admin_setup_tokens WHERE token_hash = ? AND expires_at > ?",
    )?
    .exists(params![hash, now])?)
}

/// Uses up a setup link: true when it was valid. All links go once an admin exists.
pub fn consume_setup_token(c: &Connection, hash: &str, now: i64) -> DbResult<bool> {
    let ok = setup_token_valid(c, hash, now)?;
    c.execute("DELETE FROM admin_setup_tokens", [])?;
    Ok(ok)
}

/// Attempts per outcome and per hour since `since` (for the dashboard).
#[derive(Debug, Default, Clone)]
pub struct Activity {
    pub succeeded: i64,
    pub failed: i64,
    /// (hour start in ms, succeeded, failed), oldest first, only hours with attempts.
    pub hourly: Vec<(i64, i64, i64)>,
}

pub fn activity(c: &Connection, since: i64) -> DbResult<Activity> {
    let lower = ids::lower_bound_at(ids::ATTEMPT, since);
    let mut stmt = c.prepare_cached(
        "SELECT created_at / 3600000 * 3600000 AS h, SUM(status = 0), SUM(status <> 0) \
         FROM attempts WHERE id >= ? GROUP BY h ORDER BY h",
    )?;
    let rows = stmt.query_map([lower], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    collect_activity(rows)
}

/// Like `activity`, for one endpoint.
pub fn endpoint_activity(c: &Connection, endpoint_id: &str, since: i64) -> DbResult<Activity> {
    let lower = ids::lower_bound_at(ids::ATTEMPT, since);
    let mut stmt = c.prepare_cached(
        "SELECT created_at / 3600000 * 3600000 AS h, SUM(status = 0), SUM(status <> 0) \
         FROM attempts WHERE endpoint_id = ? AND id >= ? GROUP BY h ORDER BY h",
    )?;
    let rows = stmt.query_map(params![endpoint_id, lower], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
    })?;
    collect_activity(rows)
}

fn collect_activity(
    rows: impl Iterator<Item = rusqlite::Result<(i64, i64, i64)>>,
) -> DbResult<Activity> {
    let mut a = Activity::default();
    for row in rows {
        let (h, ok, bad): (i64, i64, i64) = row?;
        a.succeeded += ok;
        a.failed += bad;
        a.hourly.push((h, ok, bad));
    }
    Ok(a)
}

/// An endpoint that needs attention: disabled, or whose latest attempts failed.
#[derive(Debug, Clone)]
pub struct Troubled {
    pub app_id: String,
    pub app_name: String,
    pub endpoint_id: String,
    pub url: String,
    pub disabled: bool,
    pub disabled_reason: Option<String>,
    /// When it was disabled, or when its run of failures began.
    pub since: Option<i64>,
}

/// Up to `limit` endpoints that are disabled or failing (users' applications only), the
/// longest-troubled first.
pub fn troubled(c: &Connection, hidden_uid: &str, limit: i64) -> DbResult<Vec<Troubled>> {
    let mut stmt = c.prepare_cached(
        "SELECT a.id, a.name, e.id, e.url, e.disabled, e.disabled_reason, \
                CASE WHEN e.disabled THEN e.disabled_at ELSE e.failing_since END AS since \
         FROM endpoints e JOIN applications a ON a.id = e.app_id \
         WHERE a.uid IS NOT ?1 AND (e.disabled OR e.failing_since IS NOT NULL) \
         ORDER BY since LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![hidden_uid, limit], |r| {
        Ok(Troubled {
            app_id: r.get(0)?,
            app_name: r.get(1)?,
            endpoint_id: r.get(2)?,
            url: r.get(3)?,
            disabled: r.get(4)?,
            disabled_reason: r.get(5)?,
            since: r.get(6)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// A failed attempt, for the dashboard's list of recent failures.
#[derive(Debug, Clone)]
pub struct Failure {
    pub app_id: String,
    pub endpoint_id: String,
    pub url: String,
    pub msg_id: String,
    pub attempt_id: String,
    pub event_type: String,
    pub status_code: i64,
    pub error: Option<String>,
    pub at: i64,
}

/// The latest `limit` failed attempts since `since`, newest first.
pub fn recent_failures(c: &Connection, since: i64, limit: i64) -> DbResult<Vec<Failure>> {
    let lower = ids::lower_bound_at(ids::ATTEMPT, since);
    let mut stmt = c.prepare_cached(
        "SELECT e.app_id, a.endpoint_id, a.url, a.msg_id, a.id, m.event_type, \
                a.response_status_code, a.error, a.created_at \
         FROM attempts a JOIN endpoints e ON e.id = a.endpoint_id \
         JOIN messages m ON m.id = a.msg_id \
         WHERE a.id >= ?1 AND a.status <> 0 ORDER BY a.id DESC LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![lower, limit], |r| {
        Ok(Failure {
            app_id: r.get(0)?,
            endpoint_id: r.get(1)?,
            url: r.get(2)?,
            msg_id: r.get(3)?,
            attempt_id: r.get(4)?,
            event_type: r.get(5)?,
            status_code: r.get(6)?,
            error: r.get(7)?,
            at: r.get(8)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// When an endpoint last had an attempt, last succeeded, and began failing (if it is).
#[derive(Debug, Clone, Copy, Default)]
pub struct Times {
    pub last_attempt: Option<i64>,
    pub last_success: Option<i64>,
    pub failing_since: Option<i64>,
}

pub fn endpoint_times(c: &Connection, endpoint_id: &str) -> DbResult<Times> {
    let last = |cond: &str| -> DbResult<Option<i64>> {
        Ok(c.prepare_cached(&format!(
            "SELECT created_at FROM attempts WHERE endpoint_id = ?{cond} ORDER BY id DESC LIMIT 1"
        ))?
        .query_row([endpoint_id], |r| r.get(0))
        .optional()?)
    };
    let failing_since = super::endpoints::failing_since(c, endpoint_id)?;
    Ok(Times {
        last_attempt: last("")?,
        last_success: last(" AND status = 0")?,
        failing_since,
    })
}

/// Counts shown on the dashboard.
#[derive(Debug, Default, Clone, Copy)]
pub struct Totals {
    pub applications: i64,
    pub endpoints: i64,
    pub disabled_endpoints: i64,
    /// Enabled endpoints whose latest attempt failed.
    pub failing_endpoints: i64,
    pub pending_deliveries: i64,
}

/// The dashboard's counts; the application with uid `hidden_uid` (hookbox's own) and its
/// endpoints are left out.
pub fn totals(c: &Connection, hidden_uid: &str) -> DbResult<Totals> {
    Ok(c.query_row(
        "WITH mine AS (SELECT e.* FROM endpoints e JOIN applications a ON a.id = e.app_id \
                       WHERE a.uid IS NOT ?1) \
         SELECT (SELECT COUNT(*) FROM applications WHERE uid IS NOT ?1), (SELECT COUNT(*) FROM mine), \
         (SELECT COUNT(*) FROM mine WHERE disabled), \
         (SELECT COUNT(*) FROM mine e WHERE NOT e.disabled AND \
            (SELECT a.status FROM attempts a WHERE a.endpoint_id = e.id ORDER BY a.id DESC LIMIT 1) = 2), \
         (SELECT COUNT(*) FROM deliveries WHERE status = 1)",
        [hidden_uid],
        |r| {
            Ok(Totals {
                applications: r.get(0)?,
                endpoints: r.get(1)?,
                disabled_endpoints: r.get(2)?,
                failing_endpoints: r.get(3)?,
                pending_deliveries: r.get(4)?,
            })
        },
    )?)
}

/// Recent attempts of one endpoint: how many succeeded and failed since a time, and
/// whether its latest attempt (at any time) failed.
#[derive(Debug, Default, Clone, Copy)]
pub struct Health {
    pub succeeded: i64,
    pub failed: i64,
    pub last_failed: bool,
}

impl Health {
    /// Percentage of successful attempts, or `None` without attempts.
    pub fn success_rate(&self) -> Option<f64> {
        success_rate(self.succeeded, self.failed)
    }
}

pub use crate::domain::delivery::success_rate;

pub fn health(
    c: &Connection,
    endpoint_ids: &[EndpointId],
    since: i64,
) -> DbResult<HashMap<EndpointId, Health>> {
    let lower = ids::lower_bound_at(ids::ATTEMPT, since);
    let mut counts = c.prepare_cached(
        "SELECT COALESCE(SUM(status = 0), 0), COALESCE(SUM(status <> 0), 0) FROM attempts \
         WHERE endpoint_id = ? AND id >= ?",
    )?;
    let mut last = c.prepare_cached(
        "SELECT status FROM attempts WHERE endpoint_id = ? ORDER BY id DESC LIMIT 1",
    )?;
    let mut out = HashMap::new();
    for id in endpoint_ids {
        let (succeeded, failed) =
            counts.query_row(params![id, lower], |r| Ok((r.get(0)?, r.get(1)?)))?;
        let last_status: Option<i64> = last.query_row([id], |r| r.get(0)).optional()?;
        out.insert(
            id.clone(),
            Health {
                succeeded,
                failed,
                last_failed: last_status.is_some_and(|s| s != 0),
            },
        );
    }
    Ok(out)
}

pub fn count_endpoints(c: &Connection, app_id: &str) -> DbResult<i64> {
    Ok(
        c.prepare_cached("SELECT COUNT(*) FROM endpoints WHERE app_id = ?")?
            .query_row([app_id], |r| r.get(0))?,
    )
}

/// When the oldest skipped delivery of an endpoint was created (where a replay starts).
pub fn first_skipped_at(c: &Connection, endpoint_id: &str) -> DbResult<Option<i64>> {
    Ok(c.prepare_cached(
        "SELECT MIN(created_at) FROM deliveries WHERE endpoint_id = ? AND status = 5",
    )?
    .query_row([endpoint_id], |r| r.get(0))?)
}

/// A test event sent from the console: its message and the one attempt it got.
#[derive(Debug, Clone)]
pub struct TestSend {
    pub msg_id: String,
    pub app_id: String,
    pub endpoint_id: String,
    pub event_type: String,
    pub payload: String,
    pub expires_at: i64,
    pub attempt_id: String,
    pub url: String,
    pub succeeded: bool,
    pub status_code: i64,
    pub response: String,
    pub duration_ms: i64,
    pub error: Option<String>,
    pub at: i64,
    pub request_headers: String,
    pub response_headers: String,
}

/// Records a test send: the message (so the attempt log can show it) and its attempt with
/// trigger "test". No delivery row: a test event is never retried.
pub fn record_test_send(c: &Connection, t: &TestSend) -> DbResult<()> {
    c.execute(
        "INSERT INTO messages (id, app_id, event_type, payload, created_at, expires_at) VALUES (?,?,?,?,?,?)",
        params![t.msg_id, t.app_id, t.event_type, t.payload, t.at, t.expires_at],
    )?;
    c.execute(
        "INSERT INTO attempts (id, msg_id, endpoint_id, url, status, response_status_code, response, \
         response_duration_ms, error, trigger_type, created_at, request_headers, response_headers) \
         VALUES (?,?,?,?,?,?,?,?,?,2,?,?,?)",
        params![
            t.attempt_id,
            t.msg_id,
            t.endpoint_id,
            t.url,
            if t.succeeded { 0 } else { 2 },
            t.status_code,
            t.response,
            t.duration_ms,
            t.error,
            t.at,
            t.request_headers,
            t.response_headers
        ],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_expire_and_password_resets_end_them() {
        let dir = tempfile::tempdir().unwrap();
        let c = crate::db::sqlite::open_direct(&dir.path().join("t.db")).unwrap();
        let uid = insert_user(&c, "ada", "h1", 0).unwrap();
        assert!(matches!(
            insert_user(&c, "ada", "h2", 0),
            Err(DbError::Conflict(_))
        ));
        insert_session(&c, "s1", &uid, "csrf", 0, 100).unwrap();
        assert_eq!(session(&c, "s1", 50).unwrap().unwrap().username, "ada");
        assert!(session(&c, "s1", 100).unwrap().is_none());
        touch_session(&c, "s1", 99, 200).unwrap();
        assert!(session(&c, "s1", 150).unwrap().is_some());
        assert!(set_password(&c, "ada", "h3", 160).unwrap());
        assert!(session(&c, "s1", 160).unwrap().is_none());
        assert!(!set_password(&c, "bob", "h", 0).unwrap());
    }

    #[test]
    fn setup_tokens_are_single_use_and_expire() {
        let dir = tempfile::tempdir().unwrap();
        let c = crate::db::sqlite::open_direct(&dir.path().join("t.db")).unwrap();
        replace_setup_token(&c, "t", 0, 100).unwrap();
        assert!(!setup_token_valid(&c, "t", 100).unwrap());
        assert!(setup_token_valid(&c, "t", 99).unwrap());
        assert!(consume_setup_token(&c, "t", 10).unwrap());
        assert!(!consume_setup_token(&c, "t", 10).unwrap());
    }
}
