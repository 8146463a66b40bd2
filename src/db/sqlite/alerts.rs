//! Alert recipients and the alerts outbox (`notifications`), on SQLite.

use super::DbResult;
use crate::db::outbox::alerts::{failing_data, recovered_data};
use crate::domain::alerts::{
    hears_recovery, minute_of, rules_of, Evaluated, Health, OpenIncident, Rule, Status, Thresholds,
    INCIDENTS_KEPT_MS,
};
use rusqlite::{params, Connection, OptionalExtension, Row};
use std::collections::{BTreeMap, BTreeSet};

/// Who gets alerts: an operator's recipient (`app_id` None: about every application) or an
/// application's own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    pub id: String,
    pub app_id: Option<String>,
    /// `email` or `chat`.
    pub channel: String,
    pub address: String,
    /// The rules it gets, comma-separated names.
    pub rules: String,
    /// `console`, `api`, `portal` or `config`.
    pub source: String,
    pub created_at: i64,
}

/// An alert, pending or sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub id: i64,
    /// The recipient's application (None: an operator's).
    pub app_id: Option<String>,
    pub endpoint_id: Option<String>,
    pub channel: String,
    pub address: String,
    pub rule: String,
    /// The facts the message is written from (JSON).
    pub data: String,
    pub status: Status,
    pub attempts: u32,
    pub next_attempt_at: i64,
    /// The server's last answer, or the last error.
    pub result: Option<String>,
    pub created_at: i64,
    pub sent_at: Option<i64>,
}

/// An incident that alerts told of (or keep quiet about, within a cooldown), as the console
/// lists them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incident {
    pub id: i64,
    pub endpoint_id: String,
    pub app_id: String,
    pub url: String,
    pub rule: String,
    pub opened_at: i64,
    pub alerted_at: Option<i64>,
    pub resolved_at: Option<i64>,
}

/// What became of an attempt to send an alert.
#[derive(Debug, Clone)]
pub enum Sent {
    Delivered {
        answer: String,
    },
    /// Failed; tried again at `next` (or given up when `None`).
    Failed {
        error: String,
        next: Option<i64>,
    },
}

pub const RECIPIENT_COLUMNS: &str = "id, app_id, channel, address, rules, source, created_at";

fn recipient_row(r: &Row) -> rusqlite::Result<Recipient> {
    Ok(Recipient {
        id: r.get(0)?,
        app_id: r.get(1)?,
        channel: r.get(2)?,
        address: r.get(3)?,
        rules: r.get(4)?,
        source: r.get(5)?,
        created_at: r.get(6)?,
    })
}

pub const NOTIFICATION_COLUMNS: &str = "id, app_id, endpoint_id, channel, address, rule, data, \
     status, attempts, next_attempt_at, result, created_at, sent_at";

fn notification_row(r: &Row) -> rusqlite::Result<Notification> {
    Ok(Notification {
        id: r.get(0)?,
        app_id: r.get(1)?,
        endpoint_id: r.get(2)?,
        channel: r.get(3)?,
        address: r.get(4)?,
        rule: r.get(5)?,
        data: r.get(6)?,
        status: Status::from_code(r.get(7)?),
        attempts: r.get(8)?,
        next_attempt_at: r.get(9)?,
        result: r.get(10)?,
        created_at: r.get(11)?,
        sent_at: r.get(12)?,
    })
}

/// Adds a recipient; the same channel and address twice in one scope is a conflict.
pub fn insert_recipient(c: &Connection, r: &Recipient) -> DbResult<()> {
    c.execute(
        &format!("INSERT INTO alert_recipients ({RECIPIENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)"),
        params![
            r.id,
            r.app_id,
            r.channel,
            r.address,
            r.rules,
            r.source,
            r.created_at
        ],
    )
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
pub fn recipients(c: &Connection, app_id: Option<&str>) -> DbResult<Vec<Recipient>> {
    let mut stmt = c.prepare_cached(&format!(
        "SELECT {RECIPIENT_COLUMNS} FROM alert_recipients WHERE app_id IS ? ORDER BY created_at, id"
    ))?;
    let rows = stmt
        .query_map([app_id], recipient_row)?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

pub fn recipient(c: &Connection, id: &str) -> DbResult<Option<Recipient>> {
    Ok(c.query_row(
        &format!("SELECT {RECIPIENT_COLUMNS} FROM alert_recipients WHERE id = ?"),
        [id],
        recipient_row,
    )
    .optional()?)
}

pub fn delete_recipient(c: &Connection, id: &str) -> DbResult<bool> {
    Ok(c.execute("DELETE FROM alert_recipients WHERE id = ?", [id])? > 0)
}

/// Replaces the recipients that came from configuration with `current`.
pub fn replace_config_recipients(c: &Connection, current: &[Recipient]) -> DbResult<()> {
    c.execute("DELETE FROM alert_recipients WHERE source = 'config'", [])?;
    for r in current {
        insert_recipient(c, r)?;
    }
    Ok(())
}

/// Queues alert `rule` about application `app_id` for everyone who gets it (its own
/// recipients and the operator's), due at `due`; how many.
pub fn queue(
    c: &Connection,
    rule: &str,
    app_id: &str,
    endpoint_id: Option<&str>,
    data: &str,
    now: i64,
    due: i64,
) -> DbResult<usize> {
    let n = c
        .prepare_cached(
            "INSERT INTO notifications (app_id, endpoint_id, channel, address, rule, data, \
                 status, attempts, next_attempt_at, created_at) \
             SELECT app_id, ?1, channel, address, ?2, ?3, 0, 0, ?6, ?4 FROM alert_recipients \
             WHERE (app_id IS NULL OR app_id = ?5) \
               AND (',' || rules || ',') LIKE ('%,' || ?2 || ',%') \
             ORDER BY created_at, id",
        )?
        .execute(params![endpoint_id, rule, data, now, app_id, due])?;
    Ok(n)
}

/// Counts a message that ran out of retries into the `message.exhausted` alerts of its
/// endpoint that are still gathering (queued less than a window ago, not sent), or queues
/// new ones, due a window from now; how many were queued.
pub fn queue_exhausted(c: &Connection, n: &crate::db::AttemptNotice, now: i64) -> DbResult<usize> {
    use crate::db::outbox::alerts::{add_exhausted, exhausted_data};
    use crate::domain::alerts::GROUP_WINDOW_MS;
    let rule = Rule::MessagesExhausted.name();
    let Some(facts) = endpoint_facts(c, &n.endpoint_id)? else {
        return Ok(0);
    };
    let event_type: String = c
        .query_row(
            "SELECT event_type FROM messages WHERE id = ?",
            [&n.msg_id],
            |r| r.get(0),
        )
        .optional()?
        .unwrap_or_default();
    let gathering: Vec<(i64, String)> = c
        .prepare_cached(
            "SELECT id, data FROM notifications WHERE endpoint_id = ? AND rule = ? \
               AND status = 0 AND attempts = 0 AND lease_until IS NULL AND next_attempt_at > ?",
        )?
        .query_map(params![n.endpoint_id, rule, now], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?
        .collect::<Result<_, _>>()?;
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
        );
    }
    let mut update = c.prepare_cached("UPDATE notifications SET data = ? WHERE id = ?")?;
    for (id, data) in gathering {
        update.execute(params![
            add_exhausted(&data, &event_type, n.status_code, n.at),
            id
        ])?;
    }
    Ok(0)
}

/// Queues one alert to one address (a test notification), leased until `lease_until` to
/// the caller, who sends it; its id.
#[allow(clippy::too_many_arguments)]
pub fn queue_one(
    c: &Connection,
    app_id: Option<&str>,
    channel: &str,
    address: &str,
    rule: &str,
    data: &str,
    now: i64,
    lease_until: i64,
) -> DbResult<i64> {
    c.execute(
        "INSERT INTO notifications (app_id, channel, address, rule, data, status, attempts, \
             next_attempt_at, lease_until, created_at) VALUES (?, ?, ?, ?, ?, 0, 0, ?, ?, ?)",
        params![app_id, channel, address, rule, data, now, lease_until, now],
    )?;
    Ok(c.last_insert_rowid())
}

/// Makes every leased alert due again (at start: a previous process's leases are void).
pub fn release_all_leases(c: &Connection) -> DbResult<usize> {
    Ok(c.execute(
        "UPDATE notifications SET lease_until = NULL WHERE lease_until IS NOT NULL",
        [],
    )?)
}

/// Whether any alert is due at `now` (a read, so that polling costs the writer nothing).
pub fn any_due(c: &Connection, now: i64) -> DbResult<bool> {
    Ok(c.prepare_cached(
        "SELECT EXISTS (SELECT 1 FROM notifications WHERE status = 0 \
                 AND next_attempt_at <= ?1 AND (lease_until IS NULL OR lease_until <= ?1))",
    )?
    .query_row([now], |r| r.get(0))?)
}

/// Leases up to `limit` pending alerts due at `now` until `lease_until`, oldest first.
pub fn claim_due(
    c: &Connection,
    now: i64,
    limit: usize,
    lease_until: i64,
) -> DbResult<Vec<Notification>> {
    let mut stmt = c.prepare_cached(&format!(
        "SELECT {NOTIFICATION_COLUMNS} FROM notifications \
         WHERE status = 0 AND next_attempt_at <= ?1 \
           AND (lease_until IS NULL OR lease_until <= ?1) \
         ORDER BY next_attempt_at, id LIMIT ?2"
    ))?;
    let due: Vec<Notification> = stmt
        .query_map(params![now, limit], notification_row)?
        .collect::<Result<_, _>>()?;
    let mut lease = c.prepare_cached("UPDATE notifications SET lease_until = ? WHERE id = ?")?;
    for n in &due {
        lease.execute(params![lease_until, n.id])?;
    }
    Ok(due)
}

/// Writes what became of an attempt to send alert `id`, ending its lease, while the lease
/// is still the one taken until `lease_until`; `false` when it was not (another round took
/// the alert over meanwhile: nothing is written).
pub fn finish(c: &Connection, id: i64, lease_until: i64, sent: &Sent, now: i64) -> DbResult<bool> {
    let n = match sent {
        Sent::Delivered { answer } => c.execute(
            "UPDATE notifications SET status = 1, attempts = attempts + 1, result = ?, \
                 sent_at = ?, lease_until = NULL WHERE id = ? AND lease_until = ?",
            params![answer, now, id, lease_until],
        )?,
        Sent::Failed { error, next } => {
            let status = if next.is_some() {
                Status::Pending
            } else {
                Status::GaveUp
            };
            c.execute(
                "UPDATE notifications SET status = ?, attempts = attempts + 1, result = ?, \
                     next_attempt_at = COALESCE(?, next_attempt_at), lease_until = NULL \
                 WHERE id = ? AND lease_until = ?",
                params![status.code(), error, next, id, lease_until],
            )?
        }
    };
    Ok(n == 1)
}

/// Alerts newest first, at most `limit`: of application `app_id`'s recipients, or every
/// alert (`None`).
pub fn list(c: &Connection, app_id: Option<&str>, limit: usize) -> DbResult<Vec<Notification>> {
    let mut stmt = c.prepare_cached(&format!(
        "SELECT {NOTIFICATION_COLUMNS} FROM notifications \
         WHERE ?1 IS NULL OR app_id = ?1 ORDER BY id DESC LIMIT ?2"
    ))?;
    let rows = stmt
        .query_map(params![app_id, limit], notification_row)?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

pub fn get(c: &Connection, id: i64) -> DbResult<Option<Notification>> {
    Ok(c.query_row(
        &format!("SELECT {NOTIFICATION_COLUMNS} FROM notifications WHERE id = ?"),
        [id],
        notification_row,
    )
    .optional()?)
}

/// How many messages an endpoint skipped since it was disabled (Enable replays them).
pub fn skipped_since_disabled(c: &Connection, endpoint_id: &str) -> DbResult<i64> {
    Ok(c.prepare_cached(
        "SELECT COUNT(*) FROM deliveries d JOIN endpoints e ON e.id = d.endpoint_id \
         WHERE d.endpoint_id = ?1 AND d.status = 5 AND d.updated_at >= COALESCE(e.disabled_at, 0)",
    )?
    .query_row([endpoint_id], |r| r.get(0))?)
}

/// An endpoint and its application as alerts tell of them. `None` for the operator's own
/// endpoints and endpoints that are gone.
pub fn endpoint_facts(
    c: &Connection,
    endpoint_id: &str,
) -> DbResult<Option<crate::db::outbox::alerts::EndpointFacts>> {
    Ok(c.query_row(
        "SELECT e.url, e.uid, a.id, a.uid, a.name \
         FROM endpoints e JOIN applications a ON a.id = e.app_id WHERE e.id = ?",
        [endpoint_id],
        |r| {
            Ok(crate::db::outbox::alerts::EndpointFacts {
                url: r.get(0)?,
                endpoint_uid: r.get(1)?,
                app_id: r.get(2)?,
                app_uid: r.get(3)?,
                app_name: r.get(4)?,
            })
        },
    )
    .optional()?
    .filter(|f| f.app_uid.as_deref() != Some(crate::domain::operational::APP_UID)))
}

/// Adds a batch's attempts of one endpoint in one minute to its health counts.
pub fn add_health(c: &Connection, endpoint_id: &str, minute: i64, h: &Health) -> DbResult<()> {
    c.prepare_cached(
        "INSERT INTO endpoint_health (endpoint_id, minute, node, attempts, failures, timeouts, \
             rejected, last_success_at, last_failure_at) VALUES (?1, ?2, '', ?3, ?4, ?5, ?6, ?7, ?8) \
         ON CONFLICT (endpoint_id, minute, node) DO UPDATE SET \
             attempts = attempts + excluded.attempts, failures = failures + excluded.failures, \
             timeouts = timeouts + excluded.timeouts, rejected = rejected + excluded.rejected, \
             last_success_at = COALESCE(MAX(last_success_at, excluded.last_success_at), \
                 last_success_at, excluded.last_success_at), \
             last_failure_at = COALESCE(MAX(last_failure_at, excluded.last_failure_at), \
                 last_failure_at, excluded.last_failure_at)",
    )?
    .execute(params![
        endpoint_id,
        minute,
        h.attempts,
        h.failures,
        h.timeouts,
        h.rejected,
        h.last_success_at,
        h.last_failure_at
    ])?;
    Ok(())
}

/// Opens an incident about an endpoint (unless one of the same rule is open); `alerted_at`:
/// when its alert was queued (`None`: quiet). How many were opened (0 or 1).
#[allow(clippy::too_many_arguments)]
pub fn open_incident(
    c: &Connection,
    endpoint_id: &str,
    app_id: &str,
    rule: Rule,
    data: &str,
    opened_at: i64,
    alerted_at: Option<i64>,
) -> DbResult<usize> {
    Ok(c.prepare_cached(
        "INSERT INTO alert_incidents (endpoint_id, app_id, rule, data, opened_at, alerted_at) \
         VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
    )?
    .execute(params![
        endpoint_id,
        app_id,
        rule.name(),
        data,
        opened_at,
        alerted_at
    ])?)
}

/// Looks at every endpoint's attempts over the window at `now`: opens the incidents they
/// call for, ends those that are over, and queues their alerts, in one transaction (see
/// `domain::alerts::plan`).
pub fn evaluate(c: &Connection, now: i64, t: &Thresholds) -> DbResult<Evaluated> {
    // The minutes of the window, the one it starts in too (at most a minute more than the
    // window: whole minutes only would leave a 1-minute window the current minute alone,
    // blind to the end of the one before).
    let since = minute_of(now - t.window_ms);
    c.prepare_cached("DELETE FROM endpoint_health WHERE minute < ?")?
        .execute([since])?;
    c.prepare_cached("DELETE FROM alert_incidents WHERE resolved_at < ?")?
        .execute([now - INCIDENTS_KEPT_MS])?;
    let health: BTreeMap<String, Health> = c
        .prepare_cached(
            "SELECT endpoint_id, SUM(attempts), SUM(failures), SUM(timeouts), SUM(rejected), \
                 MAX(last_success_at), MAX(last_failure_at) \
             FROM endpoint_health WHERE minute >= ? GROUP BY endpoint_id",
        )?
        .query_map([since], |r| {
            Ok((
                r.get(0)?,
                Health {
                    attempts: r.get(1)?,
                    failures: r.get(2)?,
                    timeouts: r.get(3)?,
                    rejected: r.get(4)?,
                    last_success_at: r.get(5)?,
                    last_failure_at: r.get(6)?,
                },
            ))
        })?
        .collect::<Result<_, _>>()?;
    let open: Vec<OpenIncident> = c
        .prepare_cached(
            "SELECT id, endpoint_id, rule, opened_at, alerted_at IS NOT NULL \
             FROM alert_incidents WHERE resolved_at IS NULL",
        )?
        .query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, bool>(4)?,
            ))
        })?
        .filter_map(|row| match row {
            Ok((id, endpoint_id, rule, opened_at, alerted)) => Rule::parse(&rule).map(|rule| {
                Ok(OpenIncident {
                    id,
                    endpoint_id,
                    rule,
                    opened_at,
                    alerted,
                })
            }),
            Err(e) => Some(Err(e)),
        })
        .collect::<Result<_, _>>()?;
    let last_alerted: BTreeMap<(String, String), i64> = c
        .prepare_cached(
            "SELECT endpoint_id, rule, MAX(alerted_at) FROM alert_incidents \
             WHERE alerted_at > ? GROUP BY endpoint_id, rule",
        )?
        .query_map([now - t.cooldown_ms], |r| {
            Ok(((r.get(0)?, r.get(1)?), r.get(2)?))
        })?
        .collect::<Result<_, _>>()?;
    let disabled: BTreeSet<String> = c
        .prepare_cached(
            "SELECT id FROM endpoints WHERE disabled = 1 AND id IN \
                 (SELECT endpoint_id FROM endpoint_health WHERE minute >= ?1 \
                  UNION SELECT endpoint_id FROM alert_incidents WHERE resolved_at IS NULL)",
        )?
        .query_map([since], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let plan = crate::domain::alerts::plan(&health, &open, &disabled, &last_alerted, now, t);

    let mut out = Evaluated::default();
    for (endpoint_id, problem, loud) in &plan.open {
        let (Some(f), Some(h)) = (endpoint_facts(c, endpoint_id)?, health.get(endpoint_id)) else {
            continue;
        };
        let data = failing_data(&f, endpoint_id, *problem, h, t.window_ms, now);
        let rule = problem.rule();
        let alerted_at = loud.then_some(now);
        if open_incident(c, endpoint_id, &f.app_id, rule, &data, now, alerted_at)? == 0 {
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
            )?;
        }
    }
    for id in &plan.alert {
        let row: Option<(String, String, String, String)> = c
            .prepare_cached(
                "UPDATE alert_incidents SET alerted_at = ?1 WHERE id = ?2 AND alerted_at IS NULL \
                 RETURNING endpoint_id, app_id, rule, data",
            )?
            .query_row(params![now, id], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })
            .optional()?;
        if let Some((endpoint_id, app_id, rule, data)) = row {
            out.queued += queue(c, &rule, &app_id, Some(&endpoint_id), &data, now, now)?;
        }
    }
    for (endpoint_id, ended) in &plan.resolve {
        let mut told = Vec::new();
        for (i, alerted) in ended {
            let n = c
                .prepare_cached(
                    "UPDATE alert_incidents SET resolved_at = ? WHERE id = ? AND resolved_at IS NULL",
                )?
                .execute(params![now, i.id])?;
            out.resolved += n;
            if n > 0 && *alerted {
                told.push((i.rule, i.opened_at));
            }
        }
        if told.is_empty() {
            continue;
        }
        let Some(f) = endpoint_facts(c, endpoint_id)? else {
            continue;
        };
        let data = recovered_data(&f, endpoint_id, &told, now);
        let about: Vec<Rule> = told.iter().map(|(r, _)| *r).collect();
        let mut hearing = recipients(c, Some(&f.app_id))?;
        hearing.extend(recipients(c, None)?);
        for r in hearing
            .iter()
            .filter(|r| hears_recovery(&rules_of(&r.rules), &about))
        {
            c.prepare_cached(
                "INSERT INTO notifications (app_id, endpoint_id, channel, address, rule, data, \
                     status, attempts, next_attempt_at, created_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0, 0, ?7, ?7)",
            )?
            .execute(params![
                r.app_id,
                endpoint_id,
                r.channel,
                r.address,
                Rule::EndpointRecovered.name(),
                data,
                now
            ])?;
            out.queued += 1;
        }
    }
    Ok(out)
}

/// Incidents newest first, open ones before, at most `limit`: of application `app_id`, or
/// of every application (`None`).
pub fn incidents(c: &Connection, app_id: Option<&str>, limit: usize) -> DbResult<Vec<Incident>> {
    let mut stmt = c.prepare_cached(
        "SELECT i.id, i.endpoint_id, i.app_id, e.url, i.rule, i.opened_at, i.alerted_at, \
             i.resolved_at \
         FROM alert_incidents i JOIN endpoints e ON e.id = i.endpoint_id \
         WHERE ?1 IS NULL OR i.app_id = ?1 \
         ORDER BY i.resolved_at IS NOT NULL, i.id DESC LIMIT ?2",
    )?;
    let rows = stmt
        .query_map(params![app_id, limit], |r| {
            Ok(Incident {
                id: r.get(0)?,
                endpoint_id: r.get(1)?,
                app_id: r.get(2)?,
                url: r.get(3)?,
                rule: r.get(4)?,
                opened_at: r.get(5)?,
                alerted_at: r.get(6)?,
                resolved_at: r.get(7)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}
