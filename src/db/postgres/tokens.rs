//! API tokens, stored only as SHA-256 hashes.

use super::super::DbResult;
use crate::db::Token;
use deadpool_postgres::GenericClient;

pub async fn insert(
    c: &impl GenericClient,
    id: &str,
    name: &str,
    hash: &str,
    now: i64,
) -> DbResult<()> {
    c.execute(
        "INSERT INTO api_tokens (id, name, token_hash, created_at) VALUES ($1, $2, $3, $4)",
        &[&id, &name, &hash, &now],
    )
    .await?;
    Ok(())
}

/// The id of the unrevoked token with this hash, and when it was last used.
pub async fn find_active(
    c: &impl GenericClient,
    hash: &str,
) -> DbResult<Option<(String, Option<i64>)>> {
    let stmt = c
        .prepare_cached(
            "SELECT id, last_used_at FROM api_tokens WHERE token_hash = $1 AND revoked_at IS NULL",
        )
        .await?;
    Ok(c.query_opt(&stmt, &[&hash])
        .await?
        .map(|r| (r.get(0), r.get(1))))
}

/// Notes the token's use at `now`, unless one after `since` is noted already (by another
/// node or request meanwhile).
pub async fn touch(c: &impl GenericClient, id: &str, now: i64, since: i64) -> DbResult<()> {
    let stmt = c
        .prepare_cached(
            "UPDATE api_tokens SET last_used_at = $1 \
             WHERE id = $2 AND (last_used_at IS NULL OR last_used_at < $3)",
        )
        .await?;
    c.execute(&stmt, &[&now, &id, &since]).await?;
    Ok(())
}

pub async fn list(c: &impl GenericClient) -> DbResult<Vec<Token>> {
    let rows = c
        .query(
            "SELECT id, name, created_at, last_used_at, revoked_at FROM api_tokens \
             ORDER BY created_at, id",
            &[],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| Token {
            id: r.get(0),
            name: r.get(1),
            created_at: r.get(2),
            last_used_at: r.get(3),
            revoked_at: r.get(4),
        })
        .collect())
}

/// Revokes by id or name; returns how many tokens were revoked.
/// Revokes the token `id` if it is active; how many (0 or 1).
pub async fn revoke(c: &impl GenericClient, id: &str, now: i64) -> DbResult<usize> {
    let n = c
        .execute(
            "UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
            &[&now, &id],
        )
        .await?;
    Ok(usize::try_from(n).unwrap_or(usize::MAX))
}

pub async fn count_active(c: &impl GenericClient) -> DbResult<i64> {
    Ok(c.query_one(
        "SELECT COUNT(*) FROM api_tokens WHERE revoked_at IS NULL",
        &[],
    )
    .await?
    .get(0))
}
