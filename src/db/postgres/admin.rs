//! The admin console's storage on PostgreSQL: admin users, sessions, setup links, and the
//! read-only aggregates its pages show (dashboard counts, endpoint health).

use super::super::{DbError, DbResult};
use super::is_unique_violation;
use crate::db::Troubled;
use crate::db::{Activity, AdminSession, AdminUser, Failure, Health, TestSend, Times, Totals};
use crate::domain::ids;
use crate::domain::ids::EndpointId;
use deadpool_postgres::GenericClient;
use std::collections::HashMap;

pub async fn count_users(c: &impl GenericClient) -> DbResult<i64> {
    Ok(c.query_one("SELECT COUNT(*) FROM admin_users", &[])
        .await?
        .get(0))
}

/// Creates an admin; a taken username is a conflict.
pub async fn insert_user(
    c: &impl GenericClient,
    username: &str,
    hash: &str,
    now: i64,
) -> DbResult<String> {
    let id = ids::new_id("adm");
    c.execute(
        "INSERT INTO admin_users (id, username, password_hash, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5)",
        &[&id, &username, &hash, &now, &now],
    )
    .await
    .map_err(|e| {
        if is_unique_violation(&e) {
            DbError::Conflict(format!("an admin named `{username}` already exists"))
        } else {
            e.into()
        }
    })?;
    Ok(id)
}

pub async fn user_by_name(c: &impl GenericClient, username: &str) -> DbResult<Option<AdminUser>> {
    let stmt = c
        .prepare_cached("SELECT id, username, password_hash FROM admin_users WHERE username = $1")
        .await?;
    Ok(c.query_opt(&stmt, &[&username]).await?.map(|r| AdminUser {
        id: r.get(0),
        username: r.get(1),
        password_hash: r.get(2),
    }))
}

/// Sets a new password hash and ends every session of that admin; false when no such admin.
// For `hookbox admin reset-password`, which only opens SQLite so far.
pub async fn set_password(
    c: &impl GenericClient,
    username: &str,
    hash: &str,
    now: i64,
) -> DbResult<bool> {
    // One statement finds and updates the admin (no read-then-write window).
    let Some(row) = c
        .query_opt(
            "UPDATE admin_users SET password_hash = $1, updated_at = $2 WHERE username = $3 \
             RETURNING id",
            &[&hash, &now, &username],
        )
        .await?
    else {
        return Ok(false);
    };
    let id: String = row.get(0);
    c.execute("DELETE FROM admin_sessions WHERE user_id = $1", &[&id])
        .await?;
    Ok(true)
}

pub async fn insert_session(
    c: &impl GenericClient,
    id_hash: &str,
    user_id: &str,
    csrf: &str,
    now: i64,
    expires_at: i64,
) -> DbResult<()> {
    c.execute(
        "INSERT INTO admin_sessions (id_hash, user_id, csrf, created_at, last_seen_at, expires_at) \
         VALUES ($1, $2, $3, $4, $4, $5)",
        &[&id_hash, &user_id, &csrf, &now, &expires_at],
    )
    .await?;
    Ok(())
}

/// The session with this hash, unless it has expired at `now`.
pub async fn session(
    c: &impl GenericClient,
    id_hash: &str,
    now: i64,
) -> DbResult<Option<AdminSession>> {
    let stmt = c
        .prepare_cached(
            "SELECT s.id_hash, s.user_id, u.username, s.csrf, s.last_seen_at FROM admin_sessions s \
             JOIN admin_users u ON u.id = s.user_id WHERE s.id_hash = $1 AND s.expires_at > $2",
        )
        .await?;
    Ok(c.query_opt(&stmt, &[&id_hash, &now])
        .await?
        .map(|r| AdminSession {
            id_hash: r.get(0),
            user_id: r.get(1),
            username: r.get(2),
            csrf: r.get(3),
            last_seen_at: r.get(4),
        }))
}

/// Extends an idle session; also drops sessions that have expired.
pub async fn touch_session(
    c: &impl GenericClient,
    id_hash: &str,
    now: i64,
    expires_at: i64,
) -> DbResult<()> {
    let touch = c
        .prepare_cached(
            "UPDATE admin_sessions SET last_seen_at = $1, expires_at = $2 WHERE id_hash = $3",
        )
        .await?;
    c.execute(&touch, &[&now, &expires_at, &id_hash]).await?;
    let purge = c
        .prepare_cached("DELETE FROM admin_sessions WHERE expires_at <= $1")
        .await?;
    c.execute(&purge, &[&now]).await?;
    Ok(())
}

pub async fn delete_session(c: &impl GenericClient, id_hash: &str) -> DbResult<()> {
    c.execute("DELETE FROM admin_sessions WHERE id_hash = $1", &[&id_hash])
        .await?;
    Ok(())
}

/// Replaces any earlier setup link with this one.
/// Whether a setup link is still valid at `now`.
pub async fn live_setup_token(c: &impl GenericClient, now: i64) -> DbResult<bool> {
    Ok(c.query_opt(
        "SELECT 1 FROM admin_setup_tokens WHERE expires_at > $1 LIMIT 1",
        &[&now],
    )
    .await?
    .is_some())
}

pub async fn replace_setup_token(
    c: &impl GenericClient,
    hash: &str,
    now: i64,
    expires_at: i64,
) -> DbResult<()> {
    c.execute("DELETE FROM admin_setup_tokens", &[]).await?;
    c.execute(
        "INSERT INTO admin_setup_tokens (token_hash, created_at, expires_at) VALUES ($1, $2, $3) \
         ON CONFLICT (token_hash) DO UPDATE SET created_at = EXCLUDED.created_at, \
         expires_at = EXCLUDED.expires_at",
        &[&hash, &now, &expires_at],
    )
    .await?;
    Ok(())
}

pub async fn setup_token_valid(c: &impl GenericClient, hash: &str, now: i64) -> DbResult<bool> {
    let stmt = c
        .prepare_cached(
            "SELECT 1 FROM admin_setup_tokens WHERE token_hash = $1 AND expires_at > $2",
        )
        .await?;
    Ok(c.query_opt(&stmt, &[&hash, &now]).await?.is_some())
}

/// Uses up a setup link: true when it was valid. All links go once an admin exists.
///
/// The check is the deletion itself (`RETURNING`): of two transactions consuming the same
/// link at once, the second finds the rows gone once the first commits, so only one sees it
/// valid.
pub async fn consume_setup_token(c: &impl GenericClient, hash: &str, now: i64) -> DbResult<bool> {
    let rows = c
        .query(
            "DELETE FROM admin_setup_tokens RETURNING token_hash, expires_at",
            &[],
        )
        .await?;
    Ok(rows
        .iter()
        .any(|r| r.get::<_, &str>(0) == hash && r.get::<_, i64>(1) > now))
}

/// `COUNT(*) FILTER` gives BIGINT (a `SUM` of a BIGINT would be NUMERIC).
const HOURLY: &str = "SELECT created_at / 3600000 * 3600000 AS h, \
       COUNT(*) FILTER (WHERE status = 0), COUNT(*) FILTER (WHERE status <> 0) FROM attempts";

pub async fn activity(c: &impl GenericClient, since: i64) -> DbResult<Activity> {
    let lower = ids::lower_bound_at(ids::ATTEMPT, since);
    let stmt = c
        .prepare_cached(&format!("{HOURLY} WHERE id >= $1 GROUP BY h ORDER BY h"))
        .await?;
    let rows = c.query(&stmt, &[&lower]).await?;
    Ok(collect_activity(&rows))
}

/// Like `activity`, for one endpoint.
pub async fn endpoint_activity(
    c: &impl GenericClient,
    endpoint_id: &str,
    since: i64,
) -> DbResult<Activity> {
    let lower = ids::lower_bound_at(ids::ATTEMPT, since);
    let stmt = c
        .prepare_cached(&format!(
            "{HOURLY} WHERE endpoint_id = $1 AND id >= $2 GROUP BY h ORDER BY h"
        ))
        .await?;
    let rows = c.query(&stmt, &[&endpoint_id, &lower]).await?;
    Ok(collect_activity(&rows))
}

fn collect_activity(rows: &[tokio_postgres::Row]) -> Activity {
    let mut a = Activity::default();
    for r in rows {
        let (h, ok, bad): (i64, i64, i64) = (r.get(0), r.get(1), r.get(2));
        a.succeeded += ok;
        a.failed += bad;
        a.hourly.push((h, ok, bad));
    }
    a
}

/// Up to `limit` endpoints that are disabled or failing (users' applications only), the
/// longest-troubled first.
pub async fn troubled(
    c: &impl GenericClient,
    hidden_uid: &str,
    limit: i64,
) -> DbResult<Vec<Troubled>> {
    // NULLS FIRST: where SQLite puts them in ascending order.
    let stmt = c
        .prepare_cached(
            "SELECT a.id, a.name, e.id, e.url, e.disabled, e.disabled_reason, \
                    CASE WHEN e.disabled THEN e.disabled_at ELSE e.failing_since END AS since \
             FROM endpoints e JOIN applications a ON a.id = e.app_id \
             WHERE a.uid IS DISTINCT FROM $1 AND (e.disabled OR e.failing_since IS NOT NULL) \
             ORDER BY since NULLS FIRST LIMIT $2",
        )
        .await?;
    let rows = c.query(&stmt, &[&hidden_uid, &limit]).await?;
    Ok(rows
        .iter()
        .map(|r| Troubled {
            app_id: r.get(0),
            app_name: r.get(1),
            endpoint_id: r.get(2),
            url: r.get(3),
            disabled: r.get(4),
            disabled_reason: r.get(5),
            since: r.get(6),
        })
        .collect())
}

/// The latest `limit` failed attempts since `since`, newest first.
pub async fn recent_failures(
    c: &impl GenericClient,
    since: i64,
    limit: i64,
) -> DbResult<Vec<Failure>> {
    let lower = ids::lower_bound_at(ids::ATTEMPT, since);
    let stmt = c
        .prepare_cached(
            "SELECT e.app_id, a.endpoint_id, a.url, a.msg_id, a.id, m.event_type, \
                    a.response_status_code, a.error, a.created_at \
             FROM attempts a JOIN endpoints e ON e.id = a.endpoint_id \
             JOIN messages m ON m.id = a.msg_id \
             WHERE a.id >= $1 AND a.status <> 0 ORDER BY a.id DESC LIMIT $2",
        )
        .await?;
    let rows = c.query(&stmt, &[&lower, &limit]).await?;
    Ok(rows
        .iter()
        .map(|r| Failure {
            app_id: r.get(0),
            endpoint_id: r.get(1),
            url: r.get(2),
            msg_id: r.get(3),
            attempt_id: r.get(4),
            event_type: r.get(5),
            status_code: i64::from(r.get::<_, i32>(6)),
            error: r.get(7),
            at: r.get(8),
        })
        .collect())
}

pub async fn endpoint_times(c: &impl GenericClient, endpoint_id: &str) -> DbResult<Times> {
    let stmt = c
        .prepare_cached(
            "SELECT \
               (SELECT created_at FROM attempts WHERE endpoint_id = $1 \
                ORDER BY id DESC LIMIT 1), \
               (SELECT created_at FROM attempts WHERE endpoint_id = $1 AND status = 0 \
                ORDER BY id DESC LIMIT 1), \
               (SELECT failing_since FROM endpoints WHERE id = $1)",
        )
        .await?;
    let r = c.query_one(&stmt, &[&endpoint_id]).await?;
    Ok(Times {
        last_attempt: r.get(0),
        last_success: r.get(1),
        failing_since: r.get(2),
    })
}

/// The dashboard's counts; the application with uid `hidden_uid` (hookbox's own) and its
/// endpoints are left out.
pub async fn totals(c: &impl GenericClient, hidden_uid: &str) -> DbResult<Totals> {
    let r = c
        .query_one(
            "WITH mine AS (SELECT e.* FROM endpoints e JOIN applications a ON a.id = e.app_id \
                           WHERE a.uid IS DISTINCT FROM $1) \
             SELECT (SELECT COUNT(*) FROM applications WHERE uid IS DISTINCT FROM $1), \
             (SELECT COUNT(*) FROM mine), \
             (SELECT COUNT(*) FROM mine WHERE disabled), \
             (SELECT COUNT(*) FROM mine e WHERE NOT e.disabled AND \
                (SELECT a.status FROM attempts a WHERE a.endpoint_id = e.id \
                 ORDER BY a.id DESC LIMIT 1) = 2), \
             (SELECT COUNT(*) FROM deliveries WHERE status = 1)",
            &[&hidden_uid],
        )
        .await?;
    Ok(Totals {
        applications: r.get(0),
        endpoints: r.get(1),
        disabled_endpoints: r.get(2),
        failing_endpoints: r.get(3),
        pending_deliveries: r.get(4),
    })
}

/// Each endpoint's attempts since `since` by outcome, and whether its latest attempt failed;
/// every endpoint asked about is in the map (zeros without attempts). Two statements for the
/// whole list rather than two per endpoint.
pub async fn health(
    c: &impl GenericClient,
    endpoint_ids: &[EndpointId],
    since: i64,
) -> DbResult<HashMap<EndpointId, Health>> {
    let lower = ids::lower_bound_at(ids::ATTEMPT, since);
    let ids: Vec<&str> = endpoint_ids.iter().map(|id| id.as_str()).collect();
    let counts = c
        .prepare_cached(
            "SELECT endpoint_id, COUNT(*) FILTER (WHERE status = 0), \
                    COUNT(*) FILTER (WHERE status <> 0) \
             FROM attempts WHERE endpoint_id = ANY($1) AND id >= $2 GROUP BY endpoint_id",
        )
        .await?;
    let last = c
        .prepare_cached(
            "SELECT e.id, (SELECT a.status FROM attempts a WHERE a.endpoint_id = e.id \
                           ORDER BY a.id DESC LIMIT 1) \
             FROM unnest($1::text[]) AS e(id)",
        )
        .await?;
    let mut out: HashMap<EndpointId, Health> = endpoint_ids
        .iter()
        .map(|id| (id.clone(), Health::default()))
        .collect();
    for r in c.query(&counts, &[&ids, &lower]).await? {
        if let Some(h) = out.get_mut(&EndpointId::from_string(r.get(0))) {
            h.succeeded = r.get(1);
            h.failed = r.get(2);
        }
    }
    for r in c.query(&last, &[&ids]).await? {
        let status: Option<i16> = r.get(1);
        if let Some(h) = out.get_mut(&EndpointId::from_string(r.get(0))) {
            h.last_failed = status.is_some_and(|s| s != 0);
        }
    }
    Ok(out)
}

pub async fn count_endpoints(c: &impl GenericClient, app_id: &str) -> DbResult<i64> {
    let stmt = c
        .prepare_cached("SELECT COUNT(*) FROM endpoints WHERE app_id = $1")
        .await?;
    Ok(c.query_one(&stmt, &[&app_id]).await?.get(0))
}

/// When the oldest skipped delivery of an endpoint was created (where a replay starts).
pub async fn first_skipped_at(c: &impl GenericClient, endpoint_id: &str) -> DbResult<Option<i64>> {
    let stmt = c
        .prepare_cached(
            "SELECT MIN(created_at) FROM deliveries WHERE endpoint_id = $1 AND status = 5",
        )
        .await?;
    Ok(c.query_one(&stmt, &[&endpoint_id]).await?.get(0))
}

/// Records a test send: the message (so the attempt log can show it) and its attempt with
/// trigger "test". No delivery row: a test event is never retried.
pub async fn record_test_send(c: &impl GenericClient, t: &TestSend) -> DbResult<()> {
    c.execute(
        "INSERT INTO messages (id, app_id, event_type, payload, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
        &[
            &t.msg_id,
            &t.app_id,
            &t.event_type,
            &t.payload,
            &t.at,
            &t.expires_at,
        ],
    )
    .await?;
    let status: i16 = if t.succeeded { 0 } else { 2 };
    let code = i32::try_from(t.status_code)
        .map_err(|_| DbError::Corrupt(format!("response status {}", t.status_code)))?;
    c.execute(
        "INSERT INTO attempts (id, msg_id, endpoint_id, url, status, response_status_code, \
         response, response_duration_ms, error, trigger_type, created_at, request_headers, \
         response_headers) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 2, $10, $11, $12)",
        &[
            &t.attempt_id,
            &t.msg_id,
            &t.endpoint_id,
            &t.url,
            &status,
            &code,
            &t.response,
            &t.duration_ms,
            &t.error,
            &t.at,
            &t.request_headers,
            &t.response_headers,
        ],
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sessions_expire_and_password_resets_end_them() {
        let Some((pool, _)) = super::super::tests::fresh_database().await else {
            return;
        };
        let c = pool.get().await.unwrap();
        let uid = insert_user(&c, "ada", "h1", 0).await.unwrap();
        assert!(matches!(
            insert_user(&c, "ada", "h2", 0).await,
            Err(DbError::Conflict(_))
        ));
        insert_session(&c, "s1", &uid, "csrf", 0, 100)
            .await
            .unwrap();
        assert_eq!(
            session(&c, "s1", 50).await.unwrap().unwrap().username,
            "ada"
        );
        assert!(session(&c, "s1", 100).await.unwrap().is_none());
        touch_session(&c, "s1", 99, 200).await.unwrap();
        assert!(session(&c, "s1", 150).await.unwrap().is_some());
        assert!(set_password(&c, "ada", "h3", 160).await.unwrap());
        assert!(session(&c, "s1", 160).await.unwrap().is_none());
        assert!(!set_password(&c, "bob", "h", 0).await.unwrap());
        assert_eq!(count_users(&c).await.unwrap(), 1);
    }

    #[tokio::test]
    async fn setup_tokens_are_single_use_and_expire() {
        let Some((pool, _)) = super::super::tests::fresh_database().await else {
            return;
        };
        let c = pool.get().await.unwrap();
        replace_setup_token(&c, "t", 0, 100).await.unwrap();
        assert!(!setup_token_valid(&c, "t", 100).await.unwrap());
        assert!(setup_token_valid(&c, "t", 99).await.unwrap());
        assert!(consume_setup_token(&c, "t", 10).await.unwrap());
        assert!(!consume_setup_token(&c, "t", 10).await.unwrap());
    }

    #[tokio::test]
    async fn health_covers_every_endpoint_asked_about() {
        let Some((pool, _)) = super::super::tests::fresh_database().await else {
            return;
        };
        let c = pool.get().await.unwrap();
        c.batch_execute(
            "INSERT INTO applications (id, name, created_at, updated_at) VALUES ('app_1', 'a', 0, 0); \
             INSERT INTO endpoints (id, app_id, url, created_at, updated_at) \
               VALUES ('ep_1', 'app_1', 'http://x', 0, 0), ('ep_2', 'app_1', 'http://y', 0, 0); \
             INSERT INTO messages (id, app_id, event_type, created_at) VALUES ('msg_1', 'app_1', 't', 0);",
        )
        .await
        .unwrap();
        let at = |ms: i64| ids::lower_bound_at(ids::ATTEMPT, ms);
        for (id, status, ms) in [(at(10), 0i16, 10i64), (at(20), 2, 20)] {
            c.execute(
                "INSERT INTO attempts (id, msg_id, endpoint_id, url, status, response_status_code, \
                 response_duration_ms, trigger_type, created_at) \
                 VALUES ($1, 'msg_1', 'ep_1', 'http://x', $2, 500, 1, 0, $3)",
                &[&id, &status, &ms],
            )
            .await
            .unwrap();
        }
        let (e1, e2) = (
            EndpointId::from_string("ep_1".into()),
            EndpointId::from_string("ep_2".into()),
        );
        let h = health(&c, &[e1.clone(), e2.clone()], 0).await.unwrap();
        assert_eq!(
            (h[&e1].succeeded, h[&e1].failed, h[&e1].last_failed),
            (1, 1, true)
        );
        assert_eq!(
            (h[&e2].succeeded, h[&e2].failed, h[&e2].last_failed),
            (0, 0, false)
        );
        let a = endpoint_activity(&c, "ep_1", 0).await.unwrap();
        assert_eq!((a.succeeded, a.failed, a.hourly), (1, 1, vec![(0, 1, 1)]));
        let t = endpoint_times(&c, "ep_1").await.unwrap();
        assert_eq!(
            (t.last_attempt, t.last_success, t.failing_since),
            (Some(20), Some(10), None)
        );
    }
}
