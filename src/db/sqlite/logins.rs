//! Console login checks counted over a sliding window, and the turns of usernames that keep
//! failing (the rules are `service::logins`).

use super::DbResult;
use rusqlite::{params, Connection, OptionalExtension};

/// Forgets the checks made before `since`, then, when every scope has had fewer checks
/// than its limit since then, counts one more in each; whether it did.
pub fn count_in(
    c: &Connection,
    scopes: &[(String, usize)],
    since: i64,
    now: i64,
) -> DbResult<bool> {
    c.execute("DELETE FROM login_checks WHERE at < ?", [since])?;
    let mut count = c.prepare_cached("SELECT COUNT(*) FROM login_checks WHERE scope = ?")?;
    for (scope, limit) in scopes {
        let n: i64 = count.query_row([scope], |r| r.get(0))?;
        if usize::try_from(n).unwrap_or(usize::MAX) >= *limit {
            return Ok(false);
        }
    }
    let mut add = c.prepare_cached("INSERT INTO login_checks (scope, at) VALUES (?, ?)")?;
    for (scope, _) in scopes {
        add.execute(params![scope, now])?;
    }
    Ok(true)
}

/// Notes a check in `scope` at `now`.
pub fn note(c: &Connection, scope: &str, now: i64) -> DbResult<()> {
    c.prepare_cached("INSERT INTO login_checks (scope, at) VALUES (?, ?)")?
        .execute(params![scope, now])?;
    Ok(())
}

/// Checks in `scope` since `since`.
pub fn count(c: &Connection, scope: &str, since: i64) -> DbResult<usize> {
    let n: i64 = c
        .prepare_cached("SELECT COUNT(*) FROM login_checks WHERE scope = ? AND at >= ?")?
        .query_row(params![scope, since], |r| r.get(0))?;
    Ok(usize::try_from(n).unwrap_or(usize::MAX))
}

/// Forgets every check in `scopes`.
pub fn forget(c: &Connection, scopes: &[String]) -> DbResult<()> {
    let mut stmt = c.prepare_cached("DELETE FROM login_checks WHERE scope = ?")?;
    for s in scopes {
        stmt.execute([s])?;
    }
    Ok(())
}

/// Takes `username`'s next turn, `gap` ms after the last one taken (or `gap` from `now`),
/// unless that is more than `max_wait` ms away; how long until it comes, or `None` (no turn
/// taken: the username's checks are booked that far ahead).
pub fn take_turn(
    c: &Connection,
    username: &str,
    now: i64,
    gap: i64,
    max_wait: i64,
) -> DbResult<Option<i64>> {
    let next: Option<i64> = c
        .prepare_cached(
            "INSERT INTO login_turns (username, next_at) VALUES (?1, ?2 + ?3) \
             ON CONFLICT (username) DO UPDATE SET next_at = MAX(next_at, ?2) + ?3 \
                 WHERE MAX(next_at, ?2) + ?3 - ?2 <= ?4 \
             RETURNING next_at",
        )?
        .query_row(params![username, now, gap, max_wait], |r| r.get(0))
        .optional()?;
    c.execute("DELETE FROM login_turns WHERE next_at < ?", [now - 60_000])?;
    Ok(next.map(|n| n - now))
}
