//! Alert recipients and the alerts outbox (`notifications`), on PostgreSQL: any node sends
//! what is due, each alert claimed by one (`FOR UPDATE SKIP LOCKED`).

use super::super::DbResult;
use crate::db::outbox::alerts::EndpointFacts;
use crate::db::sqlite::alerts::{Notification, Recipient, Sent, NOTIFICATION_COLUMNS};
use crate::domain::alerts::Status;
use deadpool_postgres::GenericClient;
use tokio_postgres::Row;

const RECIPIENT_COLUMNS: &str = "id, app_id, channel, address, rules, source, created_at";

fn recipient(r: &Row) -> Recipient {
    Recipient {
        id: r.get(0),
        app_id: r.get(1),
        channel: r.get(2),
        address: r.get(3),
        rules: r.get(4),
        source: r.get(5),
        created_at: r.get(6),
    }
}

fn notification(r: &Row) -> Notification {
    Notification {
        id: r.get(0),
        app_id: r.get(1),
        endpoint_id: r.get(2),
        channel: r.get(3),
        address: r.get(4),
        rule: r.get(5),
        data: r.get(6),
        status: Status::from_code(i64::from(r.get::<_, i16>(7))),
        attempts: u32::try_from(r.get::<_, i32>(8)).unwrap_or(0),
        next_attempt_at: r.get(9),
        result: r.get(10),
        created_at: r.get(11),
        sent_at: r.get(12),
    }
}

pub async fn insert_recipient(c: &impl GenericClient, r: &Recipient) -> DbResult<()> {
    c.execute(
        &format!(
            "INSERT INTO alert_recipients ({RECIPIENT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"
        ),
        &[
            &r.id,
            &r.app_id,
            &r.channel,
            &r.address,
            &r.rules,
            &r.source,
            &r.created_at,
        ],
    )
    .await?;
    Ok(())
}

/// The recipients of application `app_id`, or the operator's (`None`), oldest first.
pub async fn recipients(c: &impl GenericClient, app_id: Option<&str>) -> DbResult<Vec<Recipient>> {
    let rows = c
        .query(
            &format!(
                "SELECT {RECIPIENT_COLUMNS} FROM alert_recipients \
                 WHERE app_id IS NOT DISTINCT FROM $1 ORDER BY created_at, id"
            ),
            &[&app_id],
        )
        .await?;
    Ok(rows.iter().map(recipient).collect())
}

pub async fn recipient_by_id(c: &impl GenericClient, id: &str) -> DbResult<Option<Recipient>> {
    Ok(c.query_opt(
        &format!("SELECT {RECIPIENT_COLUMNS} FROM alert_recipients WHERE id = $1"),
        &[&id],
    )
    .await?
    .as_ref()
    .map(recipient))
}

pub async fn delete_recipient(c: &impl GenericClient, id: &str) -> DbResult<bool> {
    Ok(
        c.execute("DELETE FROM alert_recipients WHERE id = $1", &[&id])
            .await?
            > 0,
    )
}

/// Replaces the recipients that came from configuration with `current` (in the caller's
/// transaction; nodes starting together each leave the same set).
pub async fn replace_config_recipients(
    c: &impl GenericClient,
    current: &[Recipient],
) -> DbResult<()> {
    c.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended('hookbox alert recipients', 0))",
        &[],
    )
    .await?;
    c.execute("DELETE FROM alert_recipients WHERE source = 'config'", &[])
        .await?;
    for r in current {
        insert_recipient(c, r).await?;
    }
    Ok(())
}

/// Queues alert `rule` about application `app_id` for everyone who gets it (its own
/// recipients and the operator's), due at once; how many.
pub async fn queue(
    c: &impl GenericClient,
    rule: &str,
    app_id: &str,
    endpoint_id: Option<&str>,
    data: &str,
    now: i64,
) -> DbResult<usize> {
    let stmt = c
        .prepare_cached(
            "INSERT INTO notifications (app_id, endpoint_id, channel, address, rule, data, \
                 status, attempts, next_attempt_at, created_at) \
             SELECT app_id, $1, channel, address, $2, $3, 0, 0, $4, $4 FROM alert_recipients \
             WHERE (app_id IS NULL OR app_id = $5) \
               AND (',' || rules || ',') LIKE ('%,' || $2 || ',%') \
             ORDER BY created_at, id",
        )
        .await?;
    let n = c
        .execute(&stmt, &[&endpoint_id, &rule, &data, &now, &app_id])
        .await?;
    Ok(usize::try_from(n).unwrap_or(usize::MAX))
}

/// Queues one alert to one address (a test notification); its id.
pub async fn queue_one(
    c: &impl GenericClient,
    app_id: Option<&str>,
    channel: &str,
    address: &str,
    rule: &str,
    data: &str,
    now: i64,
) -> DbResult<i64> {
    Ok(c.query_one(
        "INSERT INTO notifications (app_id, channel, address, rule, data, status, attempts, \
                 next_attempt_at, created_at) VALUES ($1, $2, $3, $4, $5, 0, 0, $6, $6) \
             RETURNING id",
        &[&app_id, &channel, &address, &rule, &data, &now],
    )
    .await?
    .get(0))
}

/// Leases up to `limit` pending alerts due at `now` until `lease_until`, oldest first; nodes
/// claiming at once get disjoint sets.
pub async fn claim_due(
    c: &impl GenericClient,
    now: i64,
    limit: i64,
    lease_until: i64,
) -> DbResult<Vec<Notification>> {
    let returning = NOTIFICATION_COLUMNS
        .split(',')
        .map(|col| format!("n.{}", col.trim()))
        .collect::<Vec<_>>()
        .join(", ");
    let rows = c
        .query(
            &format!(
                "WITH due AS MATERIALIZED (\
                     SELECT id FROM notifications \
                     WHERE status = 0 AND next_attempt_at <= $1 \
                       AND (lease_until IS NULL OR lease_until <= $1) \
                     ORDER BY next_attempt_at, id LIMIT $2 FOR UPDATE SKIP LOCKED) \
                 UPDATE notifications n SET lease_until = $3 FROM due WHERE n.id = due.id \
                 RETURNING {returning}"
            ),
            &[&now, &limit, &lease_until],
        )
        .await?;
    let mut due: Vec<Notification> = rows.iter().map(notification).collect();
    due.sort_by_key(|n| (n.next_attempt_at, n.id));
    Ok(due)
}

/// Writes what became of an attempt to send alert `id`, ending its lease.
pub async fn finish(c: &impl GenericClient, id: i64, sent: &Sent, now: i64) -> DbResult<()> {
    match sent {
        Sent::Delivered { answer } => {
            c.execute(
                "UPDATE notifications SET status = 1, attempts = attempts + 1, result = $1, \
                     sent_at = $2, lease_until = NULL WHERE id = $3",
                &[answer, &now, &id],
            )
            .await?
        }
        Sent::Failed { error, next } => {
            let status = i16::try_from(
                if next.is_some() {
                    Status::Pending
                } else {
                    Status::GaveUp
                }
                .code(),
            )
            .unwrap_or(0);
            c.execute(
                "UPDATE notifications SET status = $1, attempts = attempts + 1, result = $2, \
                     next_attempt_at = COALESCE($3, next_attempt_at), lease_until = NULL \
                 WHERE id = $4",
                &[&status, error, next, &id],
            )
            .await?
        }
    };
    Ok(())
}

/// Alerts newest first, at most `limit`: of application `app_id`'s recipients, or every
/// alert (`None`).
pub async fn list(
    c: &impl GenericClient,
    app_id: Option<&str>,
    limit: i64,
) -> DbResult<Vec<Notification>> {
    let rows = c
        .query(
            &format!(
                "SELECT {NOTIFICATION_COLUMNS} FROM notifications \
                 WHERE $1::TEXT IS NULL OR app_id = $1 ORDER BY id DESC LIMIT $2"
            ),
            &[&app_id, &limit],
        )
        .await?;
    Ok(rows.iter().map(notification).collect())
}

pub async fn get(c: &impl GenericClient, id: i64) -> DbResult<Option<Notification>> {
    Ok(c.query_opt(
        &format!("SELECT {NOTIFICATION_COLUMNS} FROM notifications WHERE id = $1"),
        &[&id],
    )
    .await?
    .as_ref()
    .map(notification))
}

/// What an alert about a disabled endpoint tells (see the SQLite twin).
pub async fn disabled_facts(
    c: &impl GenericClient,
    endpoint_id: &str,
) -> DbResult<Option<EndpointFacts>> {
    let row = c
        .query_opt(
            "SELECT e.url, e.uid, a.id, a.uid, a.name, \
                 (SELECT COUNT(*) FROM deliveries d WHERE d.endpoint_id = e.id AND d.status = 5) \
             FROM endpoints e JOIN applications a ON a.id = e.app_id WHERE e.id = $1",
            &[&endpoint_id],
        )
        .await?;
    Ok(row
        .map(|r| EndpointFacts {
            url: r.get(0),
            endpoint_uid: r.get(1),
            app_id: r.get(2),
            app_uid: r.get(3),
            app_name: r.get(4),
            skipped: r.get(5),
        })
        .filter(|f| f.app_uid.as_deref() != Some(crate::domain::operational::APP_UID)))
}

/// Queues the alerts that `notices` call for, in the caller's transaction; how many.
pub async fn queue_for_notices(
    c: &impl GenericClient,
    notices: &[crate::db::Notice],
    now: i64,
) -> DbResult<usize> {
    let mut queued = 0;
    for n in notices {
        if let crate::db::Notice::Disabled {
            endpoint_id,
            reason,
            at,
            automatic: true,
        } = n
        {
            let Some(facts) = disabled_facts(c, endpoint_id).await? else {
                continue;
            };
            let data = crate::db::outbox::alerts::disabled_data(&facts, endpoint_id, reason, *at);
            queued += queue(
                c,
                crate::domain::alerts::Rule::EndpointDisabled.name(),
                &facts.app_id,
                Some(endpoint_id),
                &data,
                now,
            )
            .await?;
        }
    }
    Ok(queued)
}
