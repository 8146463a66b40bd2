//! Figures for `/metrics` that only the database knows, read at scrape time, and the
//! analytics API's counts, on PostgreSQL.

use super::super::DbResult;
use crate::db::{Analytics, Gauges};
use deadpool_postgres::GenericClient;

/// Both delivery counts are answered from the partial index `deliveries_due`, so a scrape
/// costs in proportion to the backlog, not to the history kept. The SQLite version reads
/// nothing SQLite-specific (no page counts or WAL figures), so every gauge has its
/// PostgreSQL equivalent here.
pub async fn gauges(c: &impl GenericClient, now: i64) -> DbResult<Gauges> {
    let stmt = c
        .prepare_cached(
            "SELECT \
               (SELECT COUNT(*) FROM deliveries \
                WHERE status = 1 AND lease_until IS NULL AND next_attempt_at <= $1), \
               (SELECT COUNT(*) FROM deliveries \
                WHERE status = 1 AND lease_until IS NULL AND next_attempt_at > $1), \
               (SELECT COUNT(*) FROM endpoints), \
               (SELECT COUNT(*) FILTER (WHERE disabled) FROM endpoints)",
        )
        .await?;
    let r = c.query_one(&stmt, &[&now]).await?;
    Ok(Gauges {
        due: r.get(0),
        scheduled: r.get(1),
        endpoints: r.get(2),
        endpoints_disabled: r.get(3),
    })
}

/// Counts attempts of `app_id` (optionally one endpoint) with `since <= created_at < until`,
/// in buckets of `bucket_ms` aligned to the Unix epoch. Buckets are BIGINT arithmetic
/// (`created_at / bucket * bucket`, truncating like SQLite's integer division), so they are
/// the same as on SQLite.
pub async fn analytics(
    c: &impl GenericClient,
    app_id: &str,
    endpoint_id: Option<&str>,
    since: i64,
    until: i64,
    bucket_ms: i64,
) -> DbResult<Analytics> {
    use crate::domain::ids;
    let (lower, upper) = (
        ids::lower_bound_at(ids::ATTEMPT, since),
        ids::lower_bound_at(ids::ATTEMPT, until),
    );
    let base = "SELECT a.created_at / $1 * $1 AS b, m.event_type, a.status = 0 AS ok, \
                       a.response_status_code, COUNT(*) \
                FROM attempts a JOIN messages m ON m.id = a.msg_id \
                WHERE a.id >= $2 AND a.id < $3 AND m.app_id = $4";
    let group = "GROUP BY b, m.event_type, ok, a.response_status_code";
    let rows = match endpoint_id {
        Some(ep) => {
            let stmt = c
                .prepare_cached(&format!("{base} AND a.endpoint_id = $5 {group}"))
                .await?;
            c.query(&stmt, &[&bucket_ms, &lower, &upper, &app_id, &ep])
                .await?
        }
        None => {
            let stmt = c.prepare_cached(&format!("{base} {group}")).await?;
            c.query(&stmt, &[&bucket_ms, &lower, &upper, &app_id])
                .await?
        }
    };
    let rows = rows.iter().map(|r| {
        let code: i32 = r.get(3);
        (r.get(0), r.get(1), r.get(2), i64::from(code), r.get(4))
    });
    Ok(Analytics::tally(since, until, bucket_ms, rows))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn delivery_counts_use_the_partial_due_index_and_buckets_match_sqlite() {
        let Some((pool, _)) = super::super::tests::fresh_database().await else {
            return;
        };
        let c = pool.get().await.unwrap();
        assert_eq!(
            gauges(&c, 0).await.unwrap(),
            Gauges {
                due: 0,
                scheduled: 0,
                endpoints: 0,
                endpoints_disabled: 0
            }
        );
        // The planner prefers the partial index once the table is not tiny.
        c.batch_execute(
            "SET enable_seqscan = off; \
             INSERT INTO applications (id, name, created_at, updated_at) VALUES ('app_1', 'a', 0, 0); \
             INSERT INTO endpoints (id, app_id, url, disabled, created_at, updated_at) \
               VALUES ('ep_1', 'app_1', 'http://x', TRUE, 0, 0), ('ep_2', 'app_1', 'http://y', FALSE, 0, 0); \
             INSERT INTO messages (id, app_id, event_type, created_at) \
               VALUES ('msg_1', 'app_1', 'a.b', 0), ('msg_2', 'app_1', 'c.d', 0);",
        )
        .await
        .unwrap();
        for op in ["<=", ">"] {
            let plan: Vec<String> = c
                .query(
                    &format!(
                        "EXPLAIN SELECT COUNT(*) FROM deliveries \
                         WHERE status = 1 AND lease_until IS NULL AND next_attempt_at {op} 0"
                    ),
                    &[],
                )
                .await
                .unwrap()
                .iter()
                .map(|r| r.get(0))
                .collect();
            assert!(
                plan.iter().any(|p| p.contains("deliveries_due")),
                "{op}: {plan:?}"
            );
        }
        let g = gauges(&c, 0).await.unwrap();
        assert_eq!((g.endpoints, g.endpoints_disabled), (2, 1));

        use crate::domain::ids;
        let attempts = [
            (1_000i64, "msg_1", "ep_1", 0i16, 200i32),
            (1_999, "msg_1", "ep_2", 2, 500),
            (2_000, "msg_2", "ep_2", 2, 0),
            (5_500, "msg_2", "ep_2", 0, 204),
        ];
        for (ms, msg, ep, status, code) in attempts {
            let id = ids::lower_bound_at(ids::ATTEMPT, ms);
            c.execute(
                "INSERT INTO attempts (id, msg_id, endpoint_id, url, status, response_status_code, \
                 response_duration_ms, trigger_type, created_at) \
                 VALUES ($1, $2, $3, 'http://x', $4, $5, 1, 0, $6)",
                &[&id, &msg, &ep, &status, &code, &ms],
            )
            .await
            .unwrap();
        }
        let a = analytics(&c, "app_1", None, 500, 6_000, 2_000)
            .await
            .unwrap();
        assert_eq!((a.success, a.fail), (2, 2));
        assert_eq!(
            a.event_types,
            vec![("a.b".into(), 1, 1), ("c.d".into(), 1, 1)]
        );
        assert_eq!(a.status_codes, vec![(0, 1), (200, 1), (204, 1), (500, 1)]);
        assert_eq!(a.buckets, vec![(0, 1, 1), (2_000, 0, 1), (4_000, 1, 0)]);
        let one = analytics(&c, "app_1", Some("ep_1"), 500, 6_000, 2_000)
            .await
            .unwrap();
        assert_eq!((one.success, one.fail), (1, 0));
        assert_eq!(one.buckets, vec![(0, 1, 0), (2_000, 0, 0), (4_000, 0, 0)]);
    }
}
