//! Embedded migrations, applied in order at start. Never edit an applied one: add a file.

use super::DbResult;
use rusqlite::Connection;

const MIGRATIONS: &[(&str, &str)] = &[
    (
        "0001_init",
        include_str!("../../../migrations/sqlite/0001_init.sql"),
    ),
    (
        "0002_retention",
        include_str!("../../../migrations/sqlite/0002_retention.sql"),
    ),
    (
        "0003_endpoint_delivery_options",
        include_str!("../../../migrations/sqlite/0003_endpoint_delivery_options.sql"),
    ),
    (
        "0004_endpoint_health",
        include_str!("../../../migrations/sqlite/0004_endpoint_health.sql"),
    ),
    (
        "0005_console",
        include_str!("../../../migrations/sqlite/0005_console.sql"),
    ),
    (
        "0006_portal",
        include_str!("../../../migrations/sqlite/0006_portal.sql"),
    ),
    (
        "0007_attempt_headers",
        include_str!("../../../migrations/sqlite/0007_attempt_headers.sql"),
    ),
    (
        "0008_refused_errors",
        include_str!("../../../migrations/sqlite/0008_refused_errors.sql"),
    ),
    (
        "0009_login_throttle",
        include_str!("../../../migrations/sqlite/0009_login_throttle.sql"),
    ),
    (
        "0010_alerts",
        include_str!("../../../migrations/sqlite/0010_alerts.sql"),
    ),
    (
        "0011_alert_incidents",
        include_str!("../../../migrations/sqlite/0011_alert_incidents.sql"),
    ),
    (
        "0012_endpoint_policy",
        include_str!("../../../migrations/sqlite/0012_endpoint_policy.sql"),
    ),
    (
        "0013_signature_header",
        include_str!("../../../migrations/sqlite/0013_signature_header.sql"),
    ),
    (
        "0014_payload_filter",
        include_str!("../../../migrations/sqlite/0014_payload_filter.sql"),
    ),
    (
        "0015_signature_version",
        include_str!("../../../migrations/sqlite/0015_signature_version.sql"),
    ),
    (
        "0016_background_tasks",
        include_str!("../../../migrations/sqlite/0016_background_tasks.sql"),
    ),
    (
        "0017_ordered_delivery",
        include_str!("../../../migrations/sqlite/0017_ordered_delivery.sql"),
    ),
];

/// Applies every migration newer than the database's `user_version`; returns the version.
pub fn apply(conn: &mut Connection) -> DbResult<i64> {
    let current: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if current == 0 {
        // Must be chosen before the first table exists: lets purged space be given back.
        conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")?;
    }
    for (i, (_name, sql)) in MIGRATIONS.iter().enumerate() {
        let version = i64::try_from(i).unwrap_or(i64::MAX) + 1;
        if version <= current {
            continue;
        }
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", version)?;
        tx.commit()?;
    }
    Ok(conn.pragma_query_value(None, "user_version", |r| r.get(0))?)
}
