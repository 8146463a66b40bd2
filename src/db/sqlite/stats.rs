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
        let c = crate::db::sqlite::open_direct(&dir.path().join("t.db")).unwrap();
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

/// Attempts of one application in a window, counted by outcome, event type, response code
/// and time bucket (for the analytics API). Counts come from the attempt log and the
/// messages' event types, which outlive payload retention.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Analytics {
    pub success: i64,
    pub fail: i64,
    /// (event type, succeeded, failed), by name.
    pub event_types: Vec<(String, i64, i64)>,
    /// (response code, count), 0 when no response came, by code.
    pub status_codes: Vec<(i64, i64)>,
    /// (bucket start in ms, succeeded, failed) for every bucket of the window, oldest first.
    pub buckets: Vec<(i64, i64, i64)>,
}

/// Counts attempts of `app_id` (optionally one endpoint) with `since <= created_at < until`,
/// in buckets of `bucket_ms` aligned to the Unix epoch.
pub fn analytics(
    c: &Connection,
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
    let mut stmt = c.prepare_cached(
        "SELECT a.created_at / ?1 * ?1 AS b, m.event_type, a.status = 0, a.response_status_code, \
                COUNT(*) \
         FROM attempts a JOIN messages m ON m.id = a.msg_id \
         WHERE a.id >= ?2 AND a.id < ?3 AND m.app_id = ?4 \
           AND (?5 IS NULL OR a.endpoint_id = ?5) \
         GROUP BY b, m.event_type, a.status = 0, a.response_status_code",
    )?;
    let rows = stmt.query_map(
        rusqlite::params![bucket_ms, lower, upper, app_id, endpoint_id],
        |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, bool>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, i64>(4)?,
            ))
        },
    )?;
    let rows = rows.collect::<Result<Vec<_>, _>>()?;
    Ok(Analytics::tally(since, until, bucket_ms, rows))
}

impl Analytics {
    /// Totals from counted rows `(bucket, event type, succeeded, status code, count)`, with
    /// every bucket of `[since, until)` present (empty ones as zeros).
    pub(crate) fn tally(
        since: i64,
        until: i64,
        bucket_ms: i64,
        rows: impl IntoIterator<Item = (i64, String, bool, i64, i64)>,
    ) -> Analytics {
        use std::collections::BTreeMap;
        let mut out = Analytics::default();
        let mut types: BTreeMap<String, (i64, i64)> = BTreeMap::new();
        let mut codes: BTreeMap<i64, i64> = BTreeMap::new();
        let mut buckets: BTreeMap<i64, (i64, i64)> = BTreeMap::new();
        let mut b = since.div_euclid(bucket_ms) * bucket_ms;
        while b < until {
            buckets.insert(b, (0, 0));
            b += bucket_ms;
        }
        for (bucket, event_type, ok, code, n) in rows {
            let add = |pair: &mut (i64, i64)| {
                if ok {
                    pair.0 += n;
                } else {
                    pair.1 += n;
                }
            };
            if ok {
                out.success += n;
            } else {
                out.fail += n;
            }
            add(types.entry(event_type).or_default());
            *codes.entry(code).or_default() += n;
            add(buckets.entry(bucket).or_default());
        }
        out.event_types = types.into_iter().map(|(t, (s, f))| (t, s, f)).collect();
        out.status_codes = codes.into_iter().collect();
        out.buckets = buckets.into_iter().map(|(b, (s, f))| (b, s, f)).collect();
        out
    }
}
