//! Console login checks counted over a sliding window for the whole cluster, and the turns
//! of usernames that keep failing (the rules are `service::logins`).

use super::super::DbResult;
use deadpool_postgres::GenericClient;

/// Forgets the checks made before `since`, then, when every scope has had fewer checks
/// than its limit since then, counts one more in each; whether it did. Nodes counting the
/// same first scope at once take turns (a transaction-scoped advisory lock on it).
pub async fn count_in(
    c: &impl GenericClient,
    scopes: &[(String, usize)],
    since: i64,
    now: i64,
) -> DbResult<bool> {
    if let Some((first, _)) = scopes.first() {
        c.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
            &[first],
        )
        .await?;
    }
    c.execute("DELETE FROM login_checks WHERE at < $1", &[&since])
        .await?;
    for (scope, limit) in scopes {
        let n: i64 = c
            .query_one(
                "SELECT COUNT(*) FROM login_checks WHERE scope = $1",
                &[scope],
            )
            .await?
            .get(0);
        if usize::try_from(n).unwrap_or(usize::MAX) >= *limit {
            return Ok(false);
        }
    }
    for (scope, _) in scopes {
        note(c, scope, now).await?;
    }
    Ok(true)
}

/// Notes a check in `scope` at `now`.
pub async fn note(c: &impl GenericClient, scope: &str, now: i64) -> DbResult<()> {
    c.execute(
        "INSERT INTO login_checks (scope, at) VALUES ($1, $2)",
        &[&scope, &now],
    )
    .await?;
    Ok(())
}

/// Checks in `scope` since `since`.
pub async fn count(c: &impl GenericClient, scope: &str, since: i64) -> DbResult<usize> {
    let n: i64 = c
        .query_one(
            "SELECT COUNT(*) FROM login_checks WHERE scope = $1 AND at >= $2",
            &[&scope, &since],
        )
        .await?
        .get(0);
    Ok(usize::try_from(n).unwrap_or(usize::MAX))
}

/// Forgets every check in `scopes`.
pub async fn forget(c: &impl GenericClient, scopes: &[String]) -> DbResult<()> {
    c.execute("DELETE FROM login_checks WHERE scope = ANY($1)", &[&scopes])
        .await?;
    Ok(())
}

/// Takes `username`'s next turn, unless it is more than `max_wait` ms away (see the SQLite
/// twin).
pub async fn take_turn(
    c: &impl GenericClient,
    username: &str,
    now: i64,
    gap: i64,
    max_wait: i64,
) -> DbResult<Option<i64>> {
    let next: Option<i64> = c
        .query_opt(
            "INSERT INTO login_turns (username, next_at) VALUES ($1, $2::BIGINT + $3::BIGINT) \
             ON CONFLICT (username) DO UPDATE \
                 SET next_at = GREATEST(login_turns.next_at, $2::BIGINT) + $3::BIGINT \
                 WHERE GREATEST(login_turns.next_at, $2::BIGINT) + $3::BIGINT - $2::BIGINT \
                     <= $4::BIGINT \
             RETURNING next_at",
            &[&username, &now, &gap, &max_wait],
        )
        .await?
        .map(|r| r.get(0));
    c.execute(
        "DELETE FROM login_turns WHERE next_at < $1",
        &[&(now - 60_000)],
    )
    .await?;
    Ok(next.map(|n| n - now))
}
