//! Figures for `/metrics` that only the database knows, read at scrape time.

use super::DbResult;
use rusqlite::Connection;

/// Pending deliveries waiting in the database, and endpoints by state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Gauges {
    /// Pending, unclaimed and due now.
    pub due: i64,
    /// Pending, unclaimed, due later (retries, `deliverAt`).
    pub scheduled: i64,
    pub endpoints: i64,
    pub endpoints_disabled: i64,
}

/// Both delivery counts are answered from the partial index `deliveries_due`, so a scrape
/// costs in proportion to the backlog, not to the history kept.
pub fn gauges(c: &Connection, now: i64) -> DbResult<Gauges> {
    let count = |op: &str| -> DbResult<i64> {
        Ok(c.prepare_cached(&format!(
            "SELECT COUNT(*) FROM deliveries \
             WHERE status = 1 AND lease_until IS NULL AND next_attempt_at {op} ?"
        ))?
        .query_row([now], |r| r.get(0))?)
    };
    let (endpoints, endpoints_disabled) = c
        .prepare_cached("SELECT COUNT(*), COALESCE(SUM(disabled != 0), 0) FROM endpoints")?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(Gauges {
        due: count("<=")?,
        scheduled: count(">")?,
        endpoints,
        endpoints_disabled,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivery_counts_use_the_partial_due_index() {
        let dir = tempfile::tempdir().unwrap();
        let c = crate::db::open_direct(&dir.path().join("t.db")).unwrap();
        for op in ["<=", ">"] {
            let plan: Vec<String> = c
                .prepare(&format!(
                    "EXPLAIN QUERY PLAN SELECT COUNT(*) FROM deliveries \
                     WHERE status = 1 AND lease_until IS NULL AND next_attempt_at {op} ?"
                ))
                .unwrap()
                .query_map([0], |r| r.get::<_, String>(3))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            assert!(
                plan.iter().any(|p| p.contains("deliveries_due")),
                "{op}: {plan:?}"
            );
        }
        assert_eq!(
            gauges(&c, 0).unwrap(),
            Gauges {
                due: 0,
                scheduled: 0,
                endpoints: 0,
                endpoints_disabled: 0
            }
        );
    }
}
