//! Stored responses for `Idempotency-Key` replays.

use super::super::{DbResult, IdempotencyKey as Key};
use deadpool_postgres::GenericClient;

pub async fn get(c: &impl GenericClient, k: &Key) -> DbResult<Option<(u16, String)>> {
    let stmt = c
        .prepare_cached(
            "SELECT status_code, body FROM idempotency_keys \
             WHERE token_id = $1 AND path = $2 AND key = $3",
        )
        .await?;
    Ok(c.query_opt(&stmt, &[&k.token_id, &k.path, &k.key])
        .await?
        .map(|r| {
            let status: i32 = r.get(0);
            (u16::try_from(status).unwrap_or(500), r.get(1))
        }))
}

/// Stored responses sealed under the main key (see `http::api::idempotent_secret`): each
/// row's key and sealed body (the path is `key.path`).
pub async fn sealed(c: &impl GenericClient) -> DbResult<Vec<(Key, String)>> {
    let pattern = format!("{}%", crate::domain::crypto::SEALED_PREFIX);
    let rows = c
        .query(
            "SELECT token_id, path, key, body FROM idempotency_keys WHERE body LIKE $1",
            &[&pattern],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| {
            let k = Key {
                token_id: r.get(0),
                path: r.get(1),
                key: r.get(2),
            };
            (k, r.get(3))
        })
        .collect())
}

pub async fn set_body(c: &impl GenericClient, k: &Key, body: &str) -> DbResult<()> {
    c.execute(
        "UPDATE idempotency_keys SET body = $1 WHERE token_id = $2 AND path = $3 AND key = $4",
        &[&body, &k.token_id, &k.path, &k.key],
    )
    .await?;
    Ok(())
}

pub async fn delete_row(c: &impl GenericClient, k: &Key) -> DbResult<()> {
    c.execute(
        "DELETE FROM idempotency_keys WHERE token_id = $1 AND path = $2 AND key = $3",
        &[&k.token_id, &k.path, &k.key],
    )
    .await?;
    Ok(())
}

pub async fn put(
    c: &impl GenericClient,
    k: &Key,
    status: u16,
    body: &str,
    now: i64,
) -> DbResult<()> {
    let stmt = c
        .prepare_cached(
            "INSERT INTO idempotency_keys (token_id, path, key, status_code, body, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
        )
        .await?;
    c.execute(
        &stmt,
        &[
            &k.token_id,
            &k.path,
            &k.key,
            &i32::from(status),
            &body,
            &now,
        ],
    )
    .await?;
    Ok(())
}

/// Deletes up to `limit` records created before `cutoff`; returns how many.
pub async fn purge(c: &impl GenericClient, cutoff: i64, limit: usize) -> DbResult<usize> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let n = c
        .execute(
            "DELETE FROM idempotency_keys WHERE (token_id, path, key) IN \
             (SELECT token_id, path, key FROM idempotency_keys WHERE created_at < $1 LIMIT $2 \
              FOR UPDATE SKIP LOCKED)",
            &[&cutoff, &limit],
        )
        .await?;
    Ok(usize::try_from(n).unwrap_or(usize::MAX))
}
