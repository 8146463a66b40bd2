//! The outbox on PostgreSQL, shared by several nodes: claims that never overlap, leases that
//! name their node, results written back only while the lease is still that node's, and the
//! leases of a node that stopped heartbeating freed by the others.

use super::super::DbResult;
use tokio_postgres::GenericClient;

/// A delivery leased to a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leased {
    pub delivery_id: i64,
    pub msg_id: String,
    pub endpoint_id: String,
    pub attempts: i32,
}

/// Leases up to `limit` deliveries due at `now` to node `owner` until `lease_until`, oldest
/// due first. The rows are chosen in a materialized CTE with `FOR UPDATE SKIP LOCKED`, so
/// nodes claiming at once get disjoint sets and no claim takes more than `limit` rows.
pub async fn claim_due(
    c: &impl GenericClient,
    owner: &str,
    now: i64,
    limit: i64,
    lease_until: i64,
) -> DbResult<Vec<Leased>> {
    let rows = c
        .query(
            "WITH due AS MATERIALIZED (\
                 SELECT id FROM deliveries \
                 WHERE status = 1 AND lease_until IS NULL AND next_attempt_at <= $1 \
                 ORDER BY next_attempt_at, id LIMIT $2 \
                 FOR UPDATE SKIP LOCKED) \
             UPDATE deliveries d SET lease_until = $3, lease_owner = $4 \
             FROM due WHERE d.id = due.id \
             RETURNING d.id, d.msg_id, d.endpoint_id, d.attempts",
            &[&now, &limit, &lease_until, &owner],
        )
        .await?;
    let mut leased: Vec<Leased> = rows
        .iter()
        .map(|r| Leased {
            delivery_id: r.get(0),
            msg_id: r.get(1),
            endpoint_id: r.get(2),
            attempts: r.get(3),
        })
        .collect();
    leased.sort_by_key(|l| l.delivery_id);
    Ok(leased)
}

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

/// Notes that node `node` is alive at `now` (registering it on its first beat).
pub async fn heartbeat(c: &impl GenericClient, node: &str, now: i64) -> DbResult<()> {
    c.execute(
        "INSERT INTO nodes (id, started_at, heartbeat_at) VALUES ($1, $2, $2) \
         ON CONFLICT (id) DO UPDATE SET heartbeat_at = EXCLUDED.heartbeat_at",
        &[&node, &now],
    )
    .await?;
    Ok(())
}

/// Makes due again the deliveries leased to nodes whose last heartbeat is older than
/// `dead_after` ms (or that never registered), and forgets those nodes; how many deliveries.
/// A live node's leases are never touched, so a node starting next to running ones frees
/// nothing of theirs.
pub async fn free_dead_leases(c: &impl GenericClient, now: i64, dead_after: i64) -> DbResult<u64> {
    let cutoff = now - dead_after;
    let freed = c
        .execute(
            "UPDATE deliveries SET lease_until = NULL, lease_owner = NULL \
             WHERE lease_owner IS NOT NULL AND lease_owner NOT IN \
                 (SELECT id FROM nodes WHERE heartbeat_at >= $1)",
            &[&cutoff],
        )
        .await?;
    c.execute("DELETE FROM nodes WHERE heartbeat_at < $1", &[&cutoff])
        .await?;
    Ok(freed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// A fresh, migrated database with one endpoint and `n` messages due at 1000; `None`
    /// without a test cluster.
    async fn outbox(n: usize) -> Option<deadpool_postgres::Pool> {
        let (pool, _) = super::super::tests::fresh_database().await?;
        let c = pool.get().await.unwrap();
        c.batch_execute(
            "INSERT INTO applications (id, name, created_at, updated_at) VALUES ('app_1', 'a', 0, 0); \
             INSERT INTO endpoints (id, app_id, url, created_at, updated_at) \
                 VALUES ('ep_1', 'app_1', 'http://127.0.0.1:9/', 0, 0);",
        )
        .await
        .unwrap();
        for i in 0..n {
            let msg = format!("msg_{i:04}");
            c.execute(
                "INSERT INTO messages (id, app_id, event_type, payload, created_at) \
                 VALUES ($1, 'app_1', 'a.b', '{}', 0)",
                &[&msg],
            )
            .await
            .unwrap();
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
                    let mut mine = Vec::new();
                    loop {
                        let batch = claim_due(&**c, &format!("node_{node}"), 2000, 7, 60_000)
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
        assert!(claim_due(&**c, "node_9", 2000, 7, 60_000)
            .await
            .unwrap()
            .is_empty());
    }

    #[tokio::test]
    async fn nothing_is_claimed_before_it_is_due() {
        let Some(pool) = outbox(3).await else { return };
        let c = pool.get().await.unwrap();
        assert!(claim_due(&**c, "a", 999, 10, 5000)
            .await
            .unwrap()
            .is_empty());
        assert_eq!(claim_due(&**c, "a", 1000, 10, 5000).await.unwrap().len(), 3);
    }

    #[tokio::test]
    async fn a_paused_node_cannot_write_over_the_new_owner_of_its_lease() {
        let Some(pool) = outbox(1).await else { return };
        let c = pool.get().await.unwrap();
        heartbeat(&**c, "a", 1000).await.unwrap();
        heartbeat(&**c, "b", 1000).await.unwrap();
        let first = claim_due(&**c, "a", 1000, 1, 31_000).await.unwrap();
        assert_eq!(first.len(), 1);
        // Node a stops heartbeating (paused); b keeps going and frees a's lease.
        heartbeat(&**c, "b", 40_000).await.unwrap();
        assert_eq!(free_dead_leases(&**c, 40_000, 30_000).await.unwrap(), 1);
        let second = claim_due(&**c, "b", 40_000, 1, 70_000).await.unwrap();
        assert_eq!(second[0].delivery_id, first[0].delivery_id);
        // a wakes up and reports its (late) result: refused; b's result is written.
        assert!(
            !finish(&**c, "a", first[0].delivery_id, 2, 1, Some(90_000), 41_000)
                .await
                .unwrap()
        );
        assert!(finish(&**c, "b", second[0].delivery_id, 0, 1, None, 41_000)
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
        assert!(
            !finish(&**c, "b", second[0].delivery_id, 2, 2, None, 42_000)
                .await
                .unwrap()
        );
    }

    #[tokio::test]
    async fn only_the_leases_of_nodes_that_stopped_heartbeating_are_freed() {
        let Some(pool) = outbox(4).await else { return };
        let c = pool.get().await.unwrap();
        heartbeat(&**c, "live", 1000).await.unwrap();
        heartbeat(&**c, "dead", 1000).await.unwrap();
        assert_eq!(
            claim_due(&**c, "live", 1000, 2, 99_000)
                .await
                .unwrap()
                .len(),
            2
        );
        assert_eq!(
            claim_due(&**c, "dead", 1000, 2, 99_000)
                .await
                .unwrap()
                .len(),
            2
        );
        // A node starting now, with both others within their heartbeat window, frees nothing.
        heartbeat(&**c, "new", 20_000).await.unwrap();
        assert_eq!(free_dead_leases(&**c, 20_000, 30_000).await.unwrap(), 0);
        // Later only "live" keeps beating: the dead node's two deliveries are due again.
        heartbeat(&**c, "live", 35_000).await.unwrap();
        heartbeat(&**c, "new", 35_000).await.unwrap();
        assert_eq!(free_dead_leases(&**c, 35_000, 30_000).await.unwrap(), 2);
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
}
