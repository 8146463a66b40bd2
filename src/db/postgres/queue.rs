//! The outbox on PostgreSQL, shared by several nodes: claims that never overlap, leases that
//! name their node, results written back only while the lease is still that node's, and the
//! leases of a node that stopped heartbeating freed by the others.

use super::super::{AttemptNotice, AttemptResult, Claimed, DbResult, Notice, Outcome, Recorded};
use crate::domain::alerts::{minute_of, Health};
use crate::domain::delivery::{timed_out, transition, Transition, GONE_REASON};
use crate::domain::model::{DeliveryStatus, Trigger};
use crate::domain::retry::RetrySchedule;
use deadpool_postgres::GenericClient;
use std::sync::Arc;
use tokio_postgres::types::ToSql;

/// Leases up to `limit` deliveries due at `now` to node `owner` until `lease_until`, the
/// oldest due chosen first, none of an endpoint in `busy`; returns them with their messages
/// (in no particular order). Nothing while `owner` is not a registered node (the others
/// took it for dead and freed its leases: it must rejoin under a new name first). The rows are chosen in a materialized CTE with
/// `FOR UPDATE SKIP LOCKED`, so nodes claiming at once get disjoint sets and no claim takes
/// more than `limit` rows.
pub async fn claim_due(
    c: &impl GenericClient,
    owner: &str,
    now: i64,
    limit: i64,
    lease_until: i64,
    busy: &[String],
) -> DbResult<Vec<Claimed>> {
    let stmt = c
        .prepare_cached(
            "WITH due AS MATERIALIZED (\
                 SELECT id FROM deliveries \
                 WHERE status = 1 AND lease_until IS NULL AND next_attempt_at <= $1 \
                   AND endpoint_id <> ALL($5) \
                   AND EXISTS (SELECT 1 FROM nodes WHERE id = $4) \
                 ORDER BY next_attempt_at, id LIMIT $2 \
                 FOR UPDATE SKIP LOCKED), \
             leased AS (\
                 UPDATE deliveries d SET lease_until = $3, lease_owner = $4 \
                 FROM due WHERE d.id = due.id \
                 RETURNING d.id, d.msg_id, d.endpoint_id, d.attempts, d.trigger_type, d.lane) \
             SELECT l.id, l.msg_id, l.endpoint_id, l.attempts, l.trigger_type, m.event_type, \
                 m.payload, l.lane \
             FROM leased l JOIN messages m ON m.id = l.msg_id",
        )
        .await?;
    let rows = c
        .query(&stmt, &[&now, &limit, &lease_until, &owner, &busy])
        .await?;
    let lease: Arc<str> = owner.into();
    Ok(rows
        .iter()
        .map(|r| Claimed {
            delivery_id: r.get(0),
            msg_id: r.get(1),
            endpoint_id: r.get(2),
            attempts: u32::try_from(r.get::<_, i32>(3)).unwrap_or(0),
            manual: r.get::<_, Trigger>(4) == Trigger::Manual,
            event_type: r.get(5),
            payload: Arc::from(r.get::<_, Option<String>>(6).unwrap_or_else(|| "{}".into())),
            owner: Some(lease.clone()),
            lane: r.get(7),
        })
        .collect())
}

#[cfg(test)]
/// Writes an attempt's outcome to a delivery, ending its lease, only while `owner` still
/// holds that lease: a node paused past its lease cannot overwrite what the delivery's new
/// owner does. `false` when the lease was no longer `owner`'s (nothing is written).
pub async fn finish(
    c: &impl GenericClient,
    owner: &str,
    delivery_id: i64,
    status: i16,
    attempts: i32,
    next_attempt_at: Option<i64>,
    now: i64,
) -> DbResult<bool> {
    let n = c
        .execute(
            "UPDATE deliveries SET status = $1, attempts = $2, next_attempt_at = $3, \
                 lease_until = NULL, lease_owner = NULL, trigger_type = 0, updated_at = $4 \
             WHERE id = $5 AND lease_owner = $6 AND lease_until IS NOT NULL",
            &[
                &status,
                &attempts,
                &next_attempt_at,
                &now,
                &delivery_id,
                &owner,
            ],
        )
        .await?;
    Ok(n == 1)
}

/// What a batch of results written back by one node changed.
#[derive(Debug, Default)]
pub struct Written {
    pub recorded: Recorded,
    /// Results dropped because their lease was no longer this node's (another node owns the
    /// delivery now, or it was deleted).
    pub fenced: usize,
}

/// Records attempts and moves each delivery on (done, retry later, failed; see
/// `domain::delivery::transition`), in the caller's transaction. A result is written only
/// while the node that claimed the delivery (`Claimed::owner`, under the name it had then)
/// still holds its lease; otherwise it is dropped (counted in `fenced`), attempt row
/// included, so a node paused past its lease changes nothing that the delivery's new owner
/// does.
pub async fn record(
    c: &impl GenericClient,
    results: &[AttemptResult],
    schedule: &RetrySchedule,
) -> DbResult<Written> {
    let mut out = Written::default();
    if results.is_empty() {
        return Ok(out);
    }
    // Every delivery moved on in one statement; the ones still leased to `owner` come back.
    // Each is found by its id: the owner is compared through COALESCE so that the planner
    // cannot take the partial index of leased rows instead (which, between vacuums, also
    // holds an entry for every lease already ended); a result without an owner matches
    // nothing, as before.
    let steps: Vec<Transition> = results
        .iter()
        .map(|r| {
            let schedule = r.schedule.as_deref().unwrap_or(schedule);
            transition(r.delivery.attempts, &r.outcome, schedule, r.at)
        })
        .collect();
    let (mut ids, mut statuses, mut attempts, mut nexts, mut ats, mut owners) = (
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
    );
    for (r, step) in results.iter().zip(&steps) {
        let (status, next) = match step {
            Transition::Delivered { .. } => (DeliveryStatus::Success, None),
            Transition::DisableEndpoint | Transition::Exhausted => (DeliveryStatus::Failed, None),
            Transition::Retry { due, .. } => (DeliveryStatus::Pending, Some(*due)),
        };
        ids.push(r.delivery.delivery_id);
        statuses.push(status);
        attempts.push(i32::try_from(r.delivery.attempts.saturating_add(1)).unwrap_or(i32::MAX));
        nexts.push(next);
        ats.push(r.at);
        owners.push(r.delivery.owner.as_deref().unwrap_or_default());
    }
    let update = c
        .prepare_cached(
            "UPDATE deliveries d SET status = u.status, attempts = u.attempts, \
                 next_attempt_at = u.next, lease_until = NULL, lease_owner = NULL, \
                 trigger_type = 0, updated_at = u.at \
             FROM UNNEST($1::BIGINT[], $2::SMALLINT[], $3::INTEGER[], $4::BIGINT[], $5::BIGINT[], \
                 $6::TEXT[]) AS u(id, status, attempts, next, at, owner) \
             WHERE d.id = u.id AND COALESCE(d.lease_owner, '') = u.owner AND u.owner <> '' \
                 AND d.lease_until IS NOT NULL \
                 AND d.status = 1 \
             RETURNING d.id",
        )
        .await?;
    let params: [&(dyn ToSql + Sync); 6] = [&ids, &statuses, &attempts, &nexts, &ats, &owners];
    // `biased`: the settings are sent first.
    let (_, kept) = tokio::try_join!(
        biased;
        c.batch_execute(super::KEYED_PLANS),
        c.query(&update, &params)
    )?;
    let kept: std::collections::HashSet<i64> = kept.iter().map(|r| r.get(0)).collect();
    out.fenced = results.len() - kept.len();

    // Their attempts, in one statement.
    let mut a = AttemptColumns::default();
    for r in results
        .iter()
        .filter(|r| r.logged && kept.contains(&r.delivery.delivery_id))
    {
        a.push(r);
    }
    if !kept.is_empty() {
        // With the endpoints' health counts (one row per endpoint, minute and node, so that
        // nodes never wait for each other's), which count every kept result, its attempt
        // written or not.
        let mut health: std::collections::BTreeMap<(&str, i64, &str), Health> =
            std::collections::BTreeMap::new();
        for r in results
            .iter()
            .filter(|r| kept.contains(&r.delivery.delivery_id))
        {
            let d = &r.delivery;
            let key = (
                d.endpoint_id.as_str(),
                minute_of(r.at),
                d.owner.as_deref().unwrap_or_default(),
            );
            health.entry(key).or_default().count(
                matches!(r.outcome, Outcome::Success),
                r.status_code,
                timed_out(r.status_code, r.error.as_deref()),
                r.at,
            );
        }
        let mut h = HealthColumns::default();
        for ((endpoint_id, minute, node), counts) in &health {
            h.push(endpoint_id, *minute, node, counts);
        }
        let insert = c
            .prepare_cached(
                "WITH a AS (INSERT INTO attempts (id, msg_id, endpoint_id, url, status, \
                     response_status_code, response, response_duration_ms, error, trigger_type, \
                     created_at, request_headers, response_headers) \
                 SELECT * FROM UNNEST($1::TEXT[], $2::TEXT[], $3::TEXT[], $4::TEXT[], \
                     $5::SMALLINT[], $6::INTEGER[], $7::TEXT[], $8::BIGINT[], $9::TEXT[], \
                     $10::SMALLINT[], $11::BIGINT[], $12::TEXT[], $13::TEXT[])) \
                 INSERT INTO endpoint_health (endpoint_id, minute, node, attempts, failures, \
                     timeouts, rejected, last_success_at, last_failure_at) \
                 SELECT * FROM UNNEST($14::TEXT[], $15::BIGINT[], $16::TEXT[], $17::INTEGER[], \
                     $18::INTEGER[], $19::INTEGER[], $20::INTEGER[], $21::BIGINT[], $22::BIGINT[]) \
                 ON CONFLICT (endpoint_id, minute, node) DO UPDATE SET \
                     attempts = endpoint_health.attempts + EXCLUDED.attempts, \
                     failures = endpoint_health.failures + EXCLUDED.failures, \
                     timeouts = endpoint_health.timeouts + EXCLUDED.timeouts, \
                     rejected = endpoint_health.rejected + EXCLUDED.rejected, \
                     last_success_at = GREATEST(endpoint_health.last_success_at, \
                         EXCLUDED.last_success_at), \
                     last_failure_at = GREATEST(endpoint_health.last_failure_at, \
                         EXCLUDED.last_failure_at)",
            )
            .await?;
        c.execute(
            &insert,
            &[
                &a.id,
                &a.msg_id,
                &a.endpoint_id,
                &a.url,
                &a.status,
                &a.code,
                &a.response,
                &a.duration,
                &a.error,
                &a.trigger,
                &a.at,
                &a.request_headers,
                &a.response_headers,
                &h.endpoint_id,
                &h.minute,
                &h.node,
                &h.attempts,
                &h.failures,
                &h.timeouts,
                &h.rejected,
                &h.last_success_at,
                &h.last_failure_at,
            ],
        )
        .await?;
    }

    let mut failing: std::collections::BTreeMap<&str, Option<i64>> =
        std::collections::BTreeMap::new();
    for (r, step) in results.iter().zip(steps) {
        let d = &r.delivery;
        if !kept.contains(&d.delivery_id) {
            continue;
        }
        let ok = matches!(r.outcome, Outcome::Success);
        failing.insert(d.endpoint_id.as_str(), (!ok).then_some(r.at));
        let notice = || AttemptNotice {
            msg_id: d.msg_id.clone(),
            endpoint_id: d.endpoint_id.clone(),
            attempt_id: r.attempt_id.clone(),
            status_code: r.status_code,
            at: r.at,
        };
        match step {
            Transition::Delivered { recovered: true } => {
                out.recorded.notices.push(Notice::Recovered(notice()));
            }
            Transition::DisableEndpoint => {
                let disabled = c
                    .execute(
                        "UPDATE endpoints SET disabled = TRUE, disabled_reason = $1, \
                         disabled_at = $2, failing_since = NULL, updated_at = GREATEST($2, updated_at + 1) \
                         WHERE id = $3 AND NOT disabled",
                        &[&GONE_REASON, &r.at, &d.endpoint_id],
                    )
                    .await?
                    > 0;
                if disabled {
                    c.execute(
                        "UPDATE deliveries SET status = 5, updated_at = $1 \
                         WHERE endpoint_id = $2 AND status = 1 AND lease_until IS NULL",
                        &[&r.at, &d.endpoint_id],
                    )
                    .await?;
                    out.recorded.disabled.push(d.endpoint_id.clone());
                    out.recorded.notices.push(Notice::Disabled {
                        endpoint_id: d.endpoint_id.clone(),
                        reason: GONE_REASON.into(),
                        at: r.at,
                        automatic: true,
                    });
                }
            }
            Transition::Retry { due, failing } => {
                let next_due = out.recorded.next_due.map_or(due, |n| n.min(due));
                out.recorded.next_due = Some(next_due);
                if failing {
                    out.recorded.notices.push(Notice::Failing(notice()));
                }
            }
            Transition::Exhausted => out.recorded.notices.push(Notice::Exhausted(notice())),
            Transition::Delivered { recovered: false } => {}
        }
    }
    // Each endpoint's latest outcome in this batch starts or ends its run of failures; only
    // rows that change are written.
    let (mut start, mut start_at, mut end) = (Vec::new(), Vec::new(), Vec::new());
    for (endpoint_id, failed_at) in failing {
        match failed_at {
            Some(at) => {
                start.push(endpoint_id);
                start_at.push(at);
            }
            None => end.push(endpoint_id),
        }
    }
    if !start.is_empty() {
        let stmt = c
            .prepare_cached(
                "UPDATE endpoints e SET failing_since = f.at \
                 FROM UNNEST($1::TEXT[], $2::BIGINT[]) AS f(id, at) \
                 WHERE e.id = f.id AND e.failing_since IS NULL",
            )
            .await?;
        c.execute(&stmt, &[&start, &start_at]).await?;
    }
    if !end.is_empty() {
        let stmt = c
            .prepare_cached(
                "UPDATE endpoints SET failing_since = NULL \
                 WHERE id = ANY($1) AND failing_since IS NOT NULL",
            )
            .await?;
        c.execute(&stmt, &[&end]).await?;
    }
    Ok(out)
}

/// Health counts, column by column (for one `INSERT … SELECT FROM UNNEST`).
#[derive(Default)]
struct HealthColumns<'a> {
    endpoint_id: Vec<&'a str>,
    minute: Vec<i64>,
    node: Vec<&'a str>,
    attempts: Vec<i32>,
    failures: Vec<i32>,
    timeouts: Vec<i32>,
    rejected: Vec<i32>,
    last_success_at: Vec<Option<i64>>,
    last_failure_at: Vec<Option<i64>>,
}

impl<'a> HealthColumns<'a> {
    fn push(&mut self, endpoint_id: &'a str, minute: i64, node: &'a str, h: &Health) {
        let n = |v: i64| i32::try_from(v).unwrap_or(i32::MAX);
        self.endpoint_id.push(endpoint_id);
        self.minute.push(minute);
        self.node.push(node);
        self.attempts.push(n(h.attempts));
        self.failures.push(n(h.failures));
        self.timeouts.push(n(h.timeouts));
        self.rejected.push(n(h.rejected));
        self.last_success_at.push(h.last_success_at);
        self.last_failure_at.push(h.last_failure_at);
    }
}

/// The attempts of a batch, column by column (for one `INSERT … SELECT FROM UNNEST`).
#[derive(Default)]
struct AttemptColumns<'a> {
    id: Vec<&'a str>,
    msg_id: Vec<&'a str>,
    endpoint_id: Vec<&'a str>,
    url: Vec<&'a str>,
    status: Vec<DeliveryStatus>,
    code: Vec<i32>,
    response: Vec<&'a str>,
    duration: Vec<i64>,
    error: Vec<Option<&'a str>>,
    trigger: Vec<Trigger>,
    at: Vec<i64>,
    request_headers: Vec<&'a str>,
    response_headers: Vec<&'a str>,
}

impl<'a> AttemptColumns<'a> {
    fn push(&mut self, r: &'a AttemptResult) {
        let d = &r.delivery;
        self.id.push(&r.attempt_id);
        self.msg_id.push(&d.msg_id);
        self.endpoint_id.push(&d.endpoint_id);
        self.url.push(&r.url);
        self.status.push(if matches!(r.outcome, Outcome::Success) {
            DeliveryStatus::Success
        } else {
            DeliveryStatus::Failed
        });
        self.code.push(i32::try_from(r.status_code).unwrap_or(0));
        self.response.push(&r.response);
        self.duration.push(r.duration_ms);
        self.error.push(r.error.as_deref());
        self.trigger.push(if d.manual {
            Trigger::Manual
        } else {
            Trigger::Scheduled
        });
        self.at.push(r.at);
        self.request_headers.push(&r.request_headers);
        self.response_headers.push(&r.response_headers);
    }
}

/// Adds node `node` to the cluster, alive at `now`.
pub async fn register(c: &impl GenericClient, node: &str, now: Option<i64>) -> DbResult<()> {
    c.execute(
        "INSERT INTO nodes (id, started_at, heartbeat_at) \
         VALUES ($1, COALESCE($2, (EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT), \
                 COALESCE($2, (EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT)) \
         ON CONFLICT (id) DO UPDATE SET heartbeat_at = EXCLUDED.heartbeat_at",
        &[&node, &now],
    )
    .await?;
    Ok(())
}

/// Notes that node `node` is alive at `now`; `false` when the cluster no longer knows it
/// (the others took it for dead and freed its leases), which registers nothing.
pub async fn heartbeat(c: &impl GenericClient, node: &str, now: Option<i64>) -> DbResult<bool> {
    let n = c
        .execute(
            "UPDATE nodes SET heartbeat_at = \
                 COALESCE($2, (EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT) \
             WHERE id = $1",
            &[&node, &now],
        )
        .await?;
    Ok(n == 1)
}

/// Forgets the nodes whose last heartbeat is older than `dead_after` ms and makes due again
/// the deliveries they had leased, in one transaction; how many deliveries freed, and how
/// many nodes are alive. A live node's leases are never touched, so a node starting next to
/// running ones frees nothing of theirs; a node forgotten here finds out at its next
/// heartbeat and rejoins under a new name (its old leases stay fenced off). Leases whose
/// owner is unknown (left by a node forgotten between a claim and its next heartbeat) are
/// freed once they expire. Times are the database's clock (`now: None`, what nodes use:
/// their own clocks may differ) or `now` (tests).
pub async fn free_dead_leases(
    c: &mut deadpool_postgres::Client,
    now: Option<i64>,
    dead_after: i64,
) -> DbResult<(u64, usize)> {
    let tx = c.transaction().await?;
    let now: i64 = tx
        .query_one(
            "SELECT COALESCE($1, (EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT)",
            &[&now],
        )
        .await?
        .get(0);
    let cutoff = now.saturating_sub(dead_after);
    let dead: Vec<String> = tx
        .query(
            "DELETE FROM nodes WHERE heartbeat_at < $1 RETURNING id",
            &[&cutoff],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    // A claim the dead node made while this runs is freed too: the update waits for it and
    // sees the new owner.
    let freed = tx
        .execute(
            "UPDATE deliveries SET lease_until = NULL, lease_owner = NULL \
             WHERE lease_owner = ANY($1) \
                OR (lease_owner IS NOT NULL AND lease_until < $2 \
                    AND lease_owner NOT IN (SELECT id FROM nodes))",
            &[&dead, &now],
        )
        .await?;
    let live: i64 = tx
        .query_one("SELECT COUNT(*) FROM nodes", &[])
        .await?
        .get(0);
    // What was freed of ordered lines waits again: the heartbeat that called this lets
    // each line go on from its first.
    tx.commit().await?;
    Ok((freed, usize::try_from(live).unwrap_or(1).max(1)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// A fresh, migrated database with one endpoint and `n` messages due at 1000; `None`
    /// without a test cluster.
    async fn outbox(n: usize) -> Option<deadpool_postgres::Pool> {
        let pool = super::super::tests::database_with_endpoint().await?;
        let c = pool.get().await.unwrap();
        for i in 0..n {
            let msg = format!("msg_{i:04}");
            super::super::tests::insert_message(&c, &msg).await;
            c.execute(
                "INSERT INTO deliveries (msg_id, endpoint_id, status, next_attempt_at, created_at, updated_at) \
                 VALUES ($1, 'ep_1', 1, 1000, 0, 0)",
                &[&msg],
            )
            .await
            .unwrap();
        }
        Some(pool)
    }

    #[tokio::test]
    async fn nodes_claiming_at_once_get_disjoint_batches_of_at_most_their_limit() {
        let Some(pool) = outbox(100).await else {
            return;
        };
        let claims: Vec<_> = (0..4)
            .map(|node| {
                let pool = pool.clone();
                tokio::spawn(async move {
                    let c = pool.get().await.unwrap();
                    register(&c, &format!("node_{node}"), None).await.unwrap();
                    let mut mine = Vec::new();
                    loop {
                        let batch = claim_due(&c, &format!("node_{node}"), 2000, 7, 60_000, &[])
                            .await
                            .unwrap();
                        assert!(batch.len() <= 7);
                        if batch.is_empty() {
                            return mine;
                        }
                        mine.extend(batch.into_iter().map(|l| l.delivery_id));
                    }
                })
            })
            .collect();
        let mut all = BTreeSet::new();
        let mut total = 0;
        for claim in claims {
            let mine = claim.await.unwrap();
            total += mine.len();
            all.extend(mine);
        }
        assert_eq!(total, 100, "every due delivery claimed once");
        assert_eq!(all.len(), 100, "no delivery claimed twice");
        let c = pool.get().await.unwrap();
        let unowned: i64 = c
            .query_one(
                "SELECT COUNT(*) FROM deliveries WHERE lease_owner IS NULL",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(unowned, 0);
        register(&c, "node_9", None).await.unwrap();
        assert!(claim_due(&c, "node_9", 2000, 7, 60_000, &[])
            .await
            .unwrap()
            .is_empty());
    }

    #[tokio::test]
    async fn nothing_is_claimed_before_it_is_due() {
        let Some(pool) = outbox(3).await else { return };
        let c = pool.get().await.unwrap();
        register(&c, "a", None).await.unwrap();
        assert!(claim_due(&c, "a", 999, 10, 5000, &[])
            .await
            .unwrap()
            .is_empty());
        assert_eq!(
            claim_due(&c, "a", 1000, 10, 5000, &[]).await.unwrap().len(),
            3
        );
    }

    #[tokio::test]
    async fn a_paused_node_cannot_write_over_the_new_owner_of_its_lease() {
        let Some(pool) = outbox(1).await else { return };
        let mut c = pool.get().await.unwrap();
        register(&c, "a", Some(1000)).await.unwrap();
        register(&c, "b", Some(1000)).await.unwrap();
        let first = claim_due(&c, "a", 1000, 1, 31_000, &[]).await.unwrap();
        assert_eq!(first.len(), 1);
        // Node a stops heartbeating (paused); b keeps going and frees a's lease.
        assert!(heartbeat(&c, "b", Some(40_000)).await.unwrap());
        assert_eq!(
            free_dead_leases(&mut c, Some(40_000), 30_000)
                .await
                .unwrap()
                .0,
            1
        );
        let second = claim_due(&c, "b", 40_000, 1, 70_000, &[]).await.unwrap();
        assert_eq!(second[0].delivery_id, first[0].delivery_id);
        // a wakes up and reports its (late) result: refused; b's result is written.
        assert!(
            !finish(&c, "a", first[0].delivery_id, 2, 1, Some(90_000), 41_000)
                .await
                .unwrap()
        );
        assert!(finish(&c, "b", second[0].delivery_id, 0, 1, None, 41_000)
            .await
            .unwrap());
        let status: i16 = c
            .query_one(
                "SELECT status FROM deliveries WHERE id = $1",
                &[&second[0].delivery_id],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(status, 0);
        // Once finished, the lease is gone: a second report by b changes nothing either.
        assert!(!finish(&c, "b", second[0].delivery_id, 2, 2, None, 42_000)
            .await
            .unwrap());
    }

    #[tokio::test]
    async fn a_forgotten_node_claims_nothing_until_it_rejoins_and_its_old_results_stay_fenced() {
        let Some(pool) = outbox(1).await else { return };
        let mut c = pool.get().await.unwrap();
        register(&c, "a", Some(1000)).await.unwrap();
        register(&c, "b", Some(1000)).await.unwrap();
        let old = claim_due(&c, "a", 1000, 1, 31_000, &[]).await.unwrap();
        assert_eq!(old[0].owner.as_deref(), Some("a"));
        assert!(heartbeat(&c, "b", Some(40_000)).await.unwrap());
        free_dead_leases(&mut c, Some(40_000), 30_000)
            .await
            .unwrap();
        // Node a, back, hears that it was forgotten; under that name it claims nothing.
        assert!(!heartbeat(&c, "a", Some(41_000)).await.unwrap());
        assert!(claim_due(&c, "a", 41_000, 1, 71_000, &[])
            .await
            .unwrap()
            .is_empty());
        // Rejoined as a2, it claims the same delivery again; the result it got under its old
        // name is dropped, the new one written.
        register(&c, "a2", Some(41_000)).await.unwrap();
        let new = claim_due(&c, "a2", 41_000, 1, 71_000, &[]).await.unwrap();
        assert_eq!(new[0].delivery_id, old[0].delivery_id);
        let schedule = every_5s();
        let tx = c.transaction().await.unwrap();
        let late = record(
            &tx,
            &[result(&old[0], Outcome::Success, 200, 41_500)],
            &schedule,
        )
        .await
        .unwrap();
        let fresh = record(
            &tx,
            &[result(
                &new[0],
                Outcome::Failure { retry_after: None },
                500,
                42_000,
            )],
            &schedule,
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
        assert_eq!((late.fenced, fresh.fenced), (1, 0));
        let row = c
            .query_one("SELECT status, attempts, lease_owner FROM deliveries", &[])
            .await
            .unwrap();
        let row: (i16, i32, Option<String>) = (row.get(0), row.get(1), row.get(2));
        assert_eq!(row, (1, 1, None), "a2's failure, not a's success");
    }

    #[tokio::test]
    async fn leases_of_an_unknown_owner_are_freed_once_they_expire() {
        let Some(pool) = outbox(1).await else { return };
        let mut c = pool.get().await.unwrap();
        register(&c, "a", Some(1000)).await.unwrap();
        claim_due(&c, "a", 1000, 1, 50_000, &[]).await.unwrap();
        c.execute("DELETE FROM nodes", &[]).await.unwrap();
        register(&c, "b", Some(40_000)).await.unwrap();
        assert_eq!(
            free_dead_leases(&mut c, Some(40_000), 30_000)
                .await
                .unwrap(),
            (0, 1)
        );
        assert_eq!(
            free_dead_leases(&mut c, Some(50_001), 30_000)
                .await
                .unwrap(),
            (1, 1)
        );
    }

    #[tokio::test]
    async fn only_the_leases_of_nodes_that_stopped_heartbeating_are_freed() {
        let Some(pool) = outbox(4).await else { return };
        let mut c = pool.get().await.unwrap();
        register(&c, "live", Some(1000)).await.unwrap();
        register(&c, "dead", Some(1000)).await.unwrap();
        assert_eq!(
            claim_due(&c, "live", 1000, 2, 99_000, &[])
                .await
                .unwrap()
                .len(),
            2
        );
        assert_eq!(
            claim_due(&c, "dead", 1000, 2, 99_000, &[])
                .await
                .unwrap()
                .len(),
            2
        );
        // A node starting now, with both others within their heartbeat window, frees nothing.
        register(&c, "new", Some(20_000)).await.unwrap();
        assert_eq!(
            free_dead_leases(&mut c, Some(20_000), 30_000)
                .await
                .unwrap()
                .0,
            0
        );
        // Later only "live" keeps beating: the dead node's two deliveries are due again.
        assert!(heartbeat(&c, "live", Some(35_000)).await.unwrap());
        assert!(heartbeat(&c, "new", Some(35_000)).await.unwrap());
        assert_eq!(
            free_dead_leases(&mut c, Some(35_000), 30_000)
                .await
                .unwrap()
                .0,
            2
        );
        let owners: Vec<Option<String>> = c
            .query("SELECT lease_owner FROM deliveries ORDER BY id", &[])
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        assert_eq!(
            owners
                .iter()
                .filter(|o| o.as_deref() == Some("live"))
                .count(),
            2
        );
        assert_eq!(owners.iter().filter(|o| o.is_none()).count(), 2);
    }

    /// Three retries, 5 s apart, without jitter.
    fn every_5s() -> RetrySchedule {
        RetrySchedule {
            delays: vec![std::time::Duration::from_secs(5); 3],
            jitter: 0.0,
        }
    }

    fn result(l: &Claimed, outcome: Outcome, code: i64, at: i64) -> AttemptResult {
        AttemptResult {
            delivery: l.clone(),
            attempt_id: crate::domain::ids::AttemptId::generate().into(),
            url: "http://127.0.0.1:9/".into(),
            outcome,
            status_code: code,
            response: String::new(),
            duration_ms: 1,
            error: None,
            at,
            request_headers: String::new(),
            schedule: None,
            response_headers: String::new(),
            logged: true,
        }
    }

    #[tokio::test]
    async fn the_results_statement_is_planned_once_and_finds_deliveries_by_key() {
        // Planned while `deliveries` holds a few rows, as on a new database: without
        // KEYED_PLANS the plan kept is a hash join over the whole table.
        let Some(pool) = outbox(8).await else { return };
        let mut c = pool.get().await.unwrap();
        register(&c, "a", None).await.unwrap();
        let schedule = every_5s();
        for _ in 0..8 {
            let mine = claim_due(&c, "a", 1000, 1, 31_000, &[]).await.unwrap();
            let tx = c.transaction().await.unwrap();
            let written = record(
                &tx,
                &[result(&mine[0], Outcome::Success, 200, 2000)],
                &schedule,
            )
            .await
            .unwrap();
            tx.commit().await.unwrap();
            assert_eq!(written.fenced, 0);
        }
        let (generic, custom, plan) = super::super::tests::keyed_plan(
            &mut c,
            "UPDATE deliveries d SET status",
            "'{1}', '{2}', '{1}', '{NULL}', '{0}', '{a}'",
        )
        .await;
        assert_eq!((generic, custom), (8, 0), "one plan, made once and kept");
        // A lookup per result, not a join over the whole primary key.
        assert!(
            plan.contains("Index Scan using deliveries_pkey on deliveries")
                && plan.contains("Index Cond: (id = u.id)"),
            "{plan}"
        );
        assert!(!plan.contains("Seq Scan"), "{plan}");
    }

    #[tokio::test]
    async fn results_move_deliveries_on_and_a_late_node_s_results_are_dropped() {
        let Some(pool) = outbox(3).await else { return };
        let mut c = pool.get().await.unwrap();
        let schedule = every_5s();
        register(&c, "a", None).await.unwrap();
        let mut mine = claim_due(&c, "a", 1000, 3, 31_000, &[]).await.unwrap();
        mine.sort_by_key(|l| l.delivery_id);
        // The third delivery's lease goes to node b while a is paused.
        c.execute(
            "UPDATE deliveries SET lease_owner = 'b' WHERE id = $1",
            &[&mine[2].delivery_id],
        )
        .await
        .unwrap();
        let tx = c.transaction().await.unwrap();
        let written = record(
            &tx,
            &[
                result(&mine[0], Outcome::Success, 200, 2000),
                result(&mine[1], Outcome::Failure { retry_after: None }, 500, 2000),
                result(&mine[2], Outcome::Success, 200, 2000),
            ],
            &schedule,
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
        assert_eq!(written.fenced, 1);
        assert_eq!(written.recorded.next_due, Some(7000));
        let rows: Vec<(i16, i32, Option<String>)> = c
            .query(
                "SELECT status, attempts, lease_owner FROM deliveries ORDER BY id",
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect();
        assert_eq!(
            rows,
            [(0, 1, None), (1, 1, None), (1, 0, Some("b".into()))],
            "done, retrying, and b's untouched"
        );
        let attempts: i64 = c
            .query_one("SELECT COUNT(*) FROM attempts", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(attempts, 2, "the dropped result left no attempt");
        let failing: Option<i64> = c
            .query_one("SELECT failing_since FROM endpoints", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(failing, Some(2000));
    }
}
