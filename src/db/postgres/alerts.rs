//! Alert recipients and the alerts outbox (`notifications`), on PostgreSQL: any node sends
//! what is due, each alert claimed by one (`FOR UPDATE SKIP LOCKED`).

use super::super::DbResult;
use crate::db::outbox::alerts::{failing_data, recovered_data, EndpointFacts};
use crate::db::sqlite::alerts::{
    Incident, Notification, Recipient, Sent, NOTIFICATION_COLUMNS, RECIPIENT_COLUMNS,
};
use crate::domain::alerts::{
    hears_recovery, minute_of, rules_of, Evaluated, Health, OpenIncident, Rule, Status, Thresholds,
    INCIDENTS_KEPT_MS,
};
use deadpool_postgres::GenericClient;
use std::collections::{BTreeMap, BTreeSet};
use tokio_postgres::Row;

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

/// Adds a recipient; the same channel and address twice in one scope is a conflict.
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
    .await
    .map_err(|e| {
        if super::is_unique_violation(&e) {
            crate::db::DbError::Conflict(format!("{} gets alerts already", r.address))
        } else {
            e.into()
        }
    })?;
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
/// recipients and the operator's), due at `due`; how many.
#[allow(clippy::too_many_arguments)]
pub async fn queue(
    c: &impl GenericClient,
    rule: &str,
    app_id: &str,
    endpoint_id: Option<&str>,
    data: &str,
    now: i64,
    due: i64,
) -> DbResult<usize> {
    let stmt = c
        .prepare_cached(
            "INSERT INTO notifications (app_id, endpoint_id, channel, address, rule, data, \
                 status, attempts, next_attempt_at, created_at) \
             SELECT app_id, $1, channel, address, $2, $3, 0, 0, $6, $4 FROM alert_recipients \
             WHERE (app_id IS NULL OR app_id = $5) \
               AND (',' || rules || ',') LIKE ('%,' || $2 || ',%') \
             ORDER BY created_at, id",
        )
        .await?;
    let n = c
        .execute(&stmt, &[&endpoint_id, &rule, &data, &now, &app_id, &due])
        .await?;
    Ok(usize::try_from(n).unwrap_or(usize::MAX))
}

/// Counts a message that ran out of retries into its endpoint's gathering
/// `message.exhausted` alerts, or queues new ones (see the SQLite twin). The endpoint's row
/// is locked first, so nodes recording results for it at once gather into the same alerts.
pub async fn queue_exhausted(
    c: &impl GenericClient,
    n: &crate::db::AttemptNotice,
    now: i64,
) -> DbResult<usize> {
    use crate::db::outbox::alerts::{add_exhausted, exhausted_data};
    use crate::domain::alerts::GROUP_WINDOW_MS;
    let rule = Rule::MessagesExhausted.name();
    // One transaction at a time gathers an endpoint's alerts. NO KEY: rows that only refer
    // to the endpoint (attempts, incidents) are still written meanwhile, and no lock order
    // with them can deadlock.
    c.execute(
        "SELECT 1 FROM endpoints WHERE id = $1 FOR NO KEY UPDATE",
        &[&n.endpoint_id],
    )
    .await?;
    let Some(facts) = endpoint_facts(c, &n.endpoint_id).await? else {
        return Ok(0);
    };
    let event_type: String = c
        .query_opt(
            "SELECT event_type FROM messages WHERE id = $1",
            &[&n.msg_id],
        )
        .await?
        .map(|r| r.get(0))
        .unwrap_or_default();
    let gathering = c
        .query(
            "SELECT id, data FROM notifications WHERE endpoint_id = $1 AND rule = $2 \
               AND status = 0 AND attempts = 0 AND lease_until IS NULL AND next_attempt_at > $3",
            &[&n.endpoint_id, &rule, &now],
        )
        .await?;
    if gathering.is_empty() {
        let data = exhausted_data(&facts, &n.endpoint_id, &event_type, n.status_code, n.at);
        return queue(
            c,
            rule,
            &facts.app_id,
            Some(&n.endpoint_id),
            &data,
            now,
            now + GROUP_WINDOW_MS,
        )
        .await;
    }
    for row in gathering {
        let (id, data): (i64, String) = (row.get(0), row.get(1));
        c.execute(
            "UPDATE notifications SET data = $1 WHERE id = $2",
            &[&add_exhausted(&data, &event_type, n.status_code, n.at), &id],
        )
        .await?;
    }
    Ok(0)
}

/// Queues one alert to one address (a test notification), leased until `lease_until` to
/// the caller, who sends it; its id.
#[allow(clippy::too_many_arguments)]
pub async fn queue_one(
    c: &impl GenericClient,
    app_id: Option<&str>,
    channel: &str,
    address: &str,
    rule: &str,
    data: &str,
    now: i64,
    lease_until: i64,
) -> DbResult<i64> {
    Ok(c.query_one(
        "INSERT INTO notifications (app_id, channel, address, rule, data, status, attempts, \
                 next_attempt_at, lease_until, created_at) \
             VALUES ($1, $2, $3, $4, $5, 0, 0, $6, $7, $6) RETURNING id",
        &[
            &app_id,
            &channel,
            &address,
            &rule,
            &data,
            &now,
            &lease_until,
        ],
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
    let stmt = c
        .prepare_cached(
            "WITH due AS MATERIALIZED (\
                 SELECT id FROM notifications \
                 WHERE status = 0 AND next_attempt_at <= $1 \
                   AND (lease_until IS NULL OR lease_until <= $1) \
                 ORDER BY next_attempt_at, id LIMIT $2 FOR UPDATE SKIP LOCKED) \
             UPDATE notifications n SET lease_until = $3 FROM due WHERE n.id = due.id \
             RETURNING n.id, n.app_id, n.endpoint_id, n.channel, n.address, n.rule, n.data, \
                 n.status, n.attempts, n.next_attempt_at, n.result, n.created_at, n.sent_at",
        )
        .await?;
    let rows = c.query(&stmt, &[&now, &limit, &lease_until]).await?;
    let mut due: Vec<Notification> = rows.iter().map(notification).collect();
    due.sort_by_key(|n| (n.next_attempt_at, n.id));
    Ok(due)
}

/// Writes what became of an attempt to send alert `id`, while its lease is still the one
/// taken until `lease_until` (see the SQLite twin).
pub async fn finish(
    c: &impl GenericClient,
    id: i64,
    lease_until: i64,
    sent: &Sent,
    now: i64,
) -> DbResult<bool> {
    let n = match sent {
        Sent::Delivered { answer } => {
            c.execute(
                "UPDATE notifications SET status = 1, attempts = attempts + 1, result = $1, \
                     sent_at = $2, lease_until = NULL WHERE id = $3 AND lease_until = $4",
                &[answer, &now, &id, &lease_until],
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
                 WHERE id = $4 AND lease_until = $5",
                &[&status, error, next, &id, &lease_until],
            )
            .await?
        }
    };
    Ok(n == 1)
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

/// How many messages an endpoint skipped since it was disabled (Enable replays them).
pub async fn skipped_since_disabled(c: &impl GenericClient, endpoint_id: &str) -> DbResult<i64> {
    Ok(c.query_one(
        "SELECT COUNT(*) FROM deliveries d JOIN endpoints e ON e.id = d.endpoint_id \
         WHERE d.endpoint_id = $1 AND d.status = 5 AND d.updated_at >= COALESCE(e.disabled_at, 0)",
        &[&endpoint_id],
    )
    .await?
    .get(0))
}

/// An endpoint and its application as alerts tell of them (see the SQLite twin).
pub async fn endpoint_facts(
    c: &impl GenericClient,
    endpoint_id: &str,
) -> DbResult<Option<EndpointFacts>> {
    let row = c
        .query_opt(
            "SELECT e.url, e.uid, a.id, a.uid, a.name \
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
        match n {
            crate::db::Notice::Disabled {
                endpoint_id,
                reason,
                at,
                automatic: true,
            } => {
                let Some(facts) = endpoint_facts(c, endpoint_id).await? else {
                    continue;
                };
                let data = crate::db::outbox::alerts::disabled_data(
                    &facts,
                    endpoint_id,
                    reason,
                    *at,
                    skipped_since_disabled(c, endpoint_id).await?,
                );
                let rule = Rule::EndpointDisabled;
                // The incident ends when the endpoint, enabled again, delivers.
                open_incident(c, endpoint_id, &facts.app_id, rule, &data, *at, Some(now)).await?;
                queued += queue(
                    c,
                    rule.name(),
                    &facts.app_id,
                    Some(endpoint_id),
                    &data,
                    now,
                    now,
                )
                .await?;
            }
            crate::db::Notice::Exhausted(a) => queued += queue_exhausted(c, a, now).await?,
            _ => {}
        }
    }
    Ok(queued)
}

/// Opens an incident about an endpoint (unless one of the same rule is open); `alerted_at`:
/// when its alert was queued (`None`: quiet). How many were opened (0 or 1).
#[allow(clippy::too_many_arguments)]
pub async fn open_incident(
    c: &impl GenericClient,
    endpoint_id: &str,
    app_id: &str,
    rule: Rule,
    data: &str,
    opened_at: i64,
    alerted_at: Option<i64>,
) -> DbResult<usize> {
    let stmt = c
        .prepare_cached(
            "INSERT INTO alert_incidents (endpoint_id, app_id, rule, data, opened_at, alerted_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
        )
        .await?;
    let n = c
        .execute(
            &stmt,
            &[
                &endpoint_id,
                &app_id,
                &rule.name(),
                &data,
                &opened_at,
                &alerted_at,
            ],
        )
        .await?;
    Ok(usize::try_from(n).unwrap_or(0))
}

/// Looks at every endpoint's attempts over the window at `now`: opens the incidents they
/// call for, ends those that are over, and queues their alerts, in the caller's transaction
/// (one node at a time: see `domain::alerts::plan`).
pub async fn evaluate(c: &impl GenericClient, now: i64, t: &Thresholds) -> DbResult<Evaluated> {
    // The minutes of the window, the one it starts in too (at most a minute more than the
    // window: whole minutes only would leave a 1-minute window the current minute alone,
    // blind to the end of the one before).
    let since = minute_of(now - t.window_ms);
    c.execute("DELETE FROM endpoint_health WHERE minute < $1", &[&since])
        .await?;
    c.execute(
        "DELETE FROM alert_incidents WHERE resolved_at < $1",
        &[&(now - INCIDENTS_KEPT_MS)],
    )
    .await?;
    let health: BTreeMap<String, Health> = c
        .query(
            "SELECT endpoint_id, SUM(attempts)::BIGINT, SUM(failures)::BIGINT, \
                 SUM(timeouts)::BIGINT, SUM(rejected)::BIGINT, MAX(last_success_at), \
                 MAX(last_failure_at) \
             FROM endpoint_health WHERE minute >= $1 GROUP BY endpoint_id",
            &[&since],
        )
        .await?
        .iter()
        .map(|r| {
            (
                r.get(0),
                Health {
                    attempts: r.get(1),
                    failures: r.get(2),
                    timeouts: r.get(3),
                    rejected: r.get(4),
                    last_success_at: r.get(5),
                    last_failure_at: r.get(6),
                },
            )
        })
        .collect();
    let open: Vec<OpenIncident> = c
        .query(
            "SELECT id, endpoint_id, rule, opened_at, alerted_at IS NOT NULL \
             FROM alert_incidents WHERE resolved_at IS NULL",
            &[],
        )
        .await?
        .iter()
        .filter_map(|r| {
            Rule::parse(r.get(2)).map(|rule| OpenIncident {
                id: r.get(0),
                endpoint_id: r.get(1),
                rule,
                opened_at: r.get(3),
                alerted: r.get(4),
            })
        })
        .collect();
    let last_alerted: BTreeMap<(String, String), i64> = c
        .query(
            "SELECT endpoint_id, rule, MAX(alerted_at) FROM alert_incidents \
             WHERE alerted_at > $1 GROUP BY endpoint_id, rule",
            &[&(now - t.cooldown_ms)],
        )
        .await?
        .iter()
        .map(|r| ((r.get(0), r.get(1)), r.get(2)))
        .collect();
    let disabled: BTreeSet<String> = c
        .query(
            "SELECT id FROM endpoints WHERE disabled AND id IN \
                 (SELECT endpoint_id FROM endpoint_health WHERE minute >= $1 \
                  UNION SELECT endpoint_id FROM alert_incidents WHERE resolved_at IS NULL)",
            &[&since],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let plan = crate::domain::alerts::plan(&health, &open, &disabled, &last_alerted, now, t);

    let mut out = Evaluated::default();
    for (endpoint_id, problem, loud) in &plan.open {
        let (Some(f), Some(h)) = (
            endpoint_facts(c, endpoint_id).await?,
            health.get(endpoint_id),
        ) else {
            continue;
        };
        let data = failing_data(&f, endpoint_id, *problem, h, t.window_ms, now);
        let rule = problem.rule();
        let alerted_at = loud.then_some(now);
        if open_incident(c, endpoint_id, &f.app_id, rule, &data, now, alerted_at).await? == 0 {
            continue;
        }
        out.opened += 1;
        if *loud {
            out.queued += queue(
                c,
                rule.name(),
                &f.app_id,
                Some(endpoint_id),
                &data,
                now,
                now,
            )
            .await?;
        }
    }
    for id in &plan.alert {
        let row = c
            .query_opt(
                "UPDATE alert_incidents SET alerted_at = $1 WHERE id = $2 AND alerted_at IS NULL \
                 RETURNING endpoint_id, app_id, rule, data",
                &[&now, id],
            )
            .await?;
        if let Some(r) = row {
            let (endpoint_id, app_id, rule, data): (String, String, String, String) =
                (r.get(0), r.get(1), r.get(2), r.get(3));
            out.queued += queue(c, &rule, &app_id, Some(&endpoint_id), &data, now, now).await?;
        }
    }
    for (endpoint_id, ended) in &plan.resolve {
        let mut told = Vec::new();
        for (i, alerted) in ended {
            let n = c
                .execute(
                    "UPDATE alert_incidents SET resolved_at = $1 WHERE id = $2 \
                     AND resolved_at IS NULL",
                    &[&now, &i.id],
                )
                .await?;
            out.resolved += usize::try_from(n).unwrap_or(0);
            if n > 0 && *alerted {
                told.push((i.rule, i.opened_at));
            }
        }
        if told.is_empty() {
            continue;
        }
        let Some(f) = endpoint_facts(c, endpoint_id).await? else {
            continue;
        };
        let data = recovered_data(&f, endpoint_id, &told, now);
        let about: Vec<Rule> = told.iter().map(|(r, _)| *r).collect();
        let mut hearing = recipients(c, Some(&f.app_id)).await?;
        hearing.extend(recipients(c, None).await?);
        for r in hearing
            .iter()
            .filter(|r| hears_recovery(&rules_of(&r.rules), &about))
        {
            c.execute(
                "INSERT INTO notifications (app_id, endpoint_id, channel, address, rule, data, \
                     status, attempts, next_attempt_at, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, 0, 0, $7, $7)",
                &[
                    &r.app_id,
                    endpoint_id,
                    &r.channel,
                    &r.address,
                    &Rule::EndpointRecovered.name(),
                    &data,
                    &now,
                ],
            )
            .await?;
            out.queued += 1;
        }
    }
    Ok(out)
}

/// Incidents newest first, open ones before, at most `limit`: of application `app_id`, or
/// of every application (`None`).
pub async fn incidents(
    c: &impl GenericClient,
    app_id: Option<&str>,
    limit: usize,
) -> DbResult<Vec<Incident>> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    Ok(c.query(
        "SELECT i.id, i.endpoint_id, i.app_id, e.url, i.rule, i.opened_at, i.alerted_at, \
                 i.resolved_at \
             FROM alert_incidents i JOIN endpoints e ON e.id = i.endpoint_id \
             WHERE $1::TEXT IS NULL OR i.app_id = $1 \
             ORDER BY i.resolved_at IS NOT NULL, i.id DESC LIMIT $2",
        &[&app_id, &limit],
    )
    .await?
    .iter()
    .map(|r| Incident {
        id: r.get(0),
        endpoint_id: r.get(1),
        app_id: r.get(2),
        url: r.get(3),
        rule: r.get(4),
        opened_at: r.get(5),
        alerted_at: r.get(6),
        resolved_at: r.get(7),
    })
    .collect())
}
