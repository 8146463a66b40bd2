//! Figures for `/metrics` that only the database knows, read at scrape time.

use super::DbResult;
use rusqlite::Connection;

/// Pending deliveries by where they wait, and endpoints by state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Gauges {
    /// Pending, unclaimed and due now.
    pub due: i64,
    /// Pending, unclaimed, due later (retries, `deliverAt`).
    pub scheduled: i64,
    /// Pending and claimed by the dispatcher (in memory or in flight).
    pub leased: i64,
    pub endpoints: i64,
    pub endpoints_disabled: i64,
}

pub fn gauges(c: &Connection, now: i64) -> DbResult<Gauges> {
    let (due, scheduled, leased) = super::deliveries::queue_depth(c, now)?;
    let (endpoints, endpoints_disabled) = c
        .prepare_cached("SELECT COUNT(*), COALESCE(SUM(disabled != 0), 0) FROM endpoints")?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(Gauges {
        due,
        scheduled,
        leased,
        endpoints,
        endpoints_disabled,
    })
}
