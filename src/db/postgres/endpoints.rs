//! Endpoints and their signing secrets on PostgreSQL. Secrets and custom headers are sealed
//! and opened with the main key exactly as on SQLite (the same helpers).

use super::super::{filter_col, to_json, DbError, DbResult, Page, PageQuery};
use super::{is_unique_violation, paged};
use crate::db::sqlite::endpoints::{headers_aad, open, open_headers, seal_headers, Stored};
use crate::db::{Endpoint, Owner, Secret};
use crate::domain::crypto::{self, MainKey};
use crate::domain::ids::EndpointId;
use crate::domain::model::DeliveryPolicy;
use crate::domain::signing::SECRET_PREFIX;
use deadpool_postgres::GenericClient;
use std::collections::BTreeMap;
use tokio_postgres::Row;

const COLS: &str =
    "id, app_id, uid, url, description, filter_types, channels, rate_limit, metadata, \
     headers, disabled, disabled_reason, disabled_at, created_at, updated_at, \
     legacy_signature, verify_ssl, retry_schedule, timeout_secs, auto_disable_after_secs, \
     signature_header, filter, signature_version, ordered";

fn from_row(r: &Row) -> Stored {
    let metadata: String = r.get(8);
    let id: String = r.get(0);
    let e = Endpoint {
        app_id: r.get(1),
        uid: r.get(2),
        url: r.get(3),
        description: r.get(4),
        filter_types: filter_col(r.get::<_, Option<&str>>(5), &id),
        channels: filter_col(r.get::<_, Option<&str>>(6), &id),
        rate_limit: r.get(7),
        metadata: serde_json::from_str(&metadata).unwrap_or_default(),
        headers: BTreeMap::new(),
        disabled: r.get(10),
        disabled_reason: r.get(11),
        disabled_at: r.get(12),
        created_at: r.get(13),
        updated_at: r.get(14),
        legacy_signature: r.get(15),
        verify_ssl: r.get(16),
        policy: DeliveryPolicy {
            retry_schedule: DeliveryPolicy::schedule_of(r.get(17)),
            timeout_secs: seconds_of(r.get(18)),
            auto_disable_after_secs: seconds_of(r.get(19)),
        },
        signature_header: r
            .get::<_, Option<&str>>(20)
            .and_then(crate::domain::signing::SignatureHeader::from_stored),
        filter: r.get(21),
        signature_version: crate::db::sqlite::endpoints::version_of(r.get(22)),
        ordered: r.get(23),
        id: EndpointId::from_string(id),
    };
    Stored(e, r.get(9))
}

/// Seconds as stored (`INTEGER`), and back.
fn seconds_of(v: Option<i32>) -> Option<u32> {
    v.and_then(|v| u32::try_from(v).ok())
}

fn stored_seconds(v: Option<u32>) -> Option<i32> {
    v.map(|v| i32::try_from(v).unwrap_or(i32::MAX))
}

fn uid_conflict(e: tokio_postgres::Error) -> DbError {
    if is_unique_violation(&e) {
        DbError::Conflict("an endpoint with this uid already exists in this application".into())
    } else {
        e.into()
    }
}

/// Inserts an endpoint and its first signing secret (stored sealed under `key`).
pub async fn insert(
    c: &impl GenericClient,
    key: &MainKey,
    e: &Endpoint,
    secret: &str,
) -> DbResult<()> {
    let stmt = c
        .prepare_cached(&format!(
            "INSERT INTO endpoints ({COLS}) \
             VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19,$20,$21,$22,$23,$24)"
        ))
        .await?;
    c.execute(
        &stmt,
        &[
            &e.id,
            &e.app_id,
            &e.uid,
            &e.url,
            &e.description,
            &e.filter_types.as_ref().map(to_json),
            &e.channels.as_ref().map(to_json),
            &e.rate_limit,
            &to_json(&e.metadata),
            &seal_headers(key, &e.id, &e.headers),
            &e.disabled,
            &e.disabled_reason,
            &e.disabled_at,
            &e.created_at,
            &e.updated_at,
            &e.legacy_signature,
            &e.verify_ssl,
            &e.policy.stored_schedule(),
            &stored_seconds(e.policy.timeout_secs),
            &stored_seconds(e.policy.auto_disable_after_secs),
            &e.signature_header.as_ref().map(|h| h.stored()),
            &e.filter,
            &e.signature_version.name(),
            &e.ordered,
        ],
    )
    .await
    .map_err(uid_conflict)?;
    let stmt = c
        .prepare_cached(
            "INSERT INTO endpoint_secrets (endpoint_id, secret, created_at) VALUES ($1, $2, $3)",
        )
        .await?;
    c.execute(&stmt, &[&e.id, &key.seal(&e.id, secret), &e.created_at])
        .await?;
    Ok(())
}

/// Stores the fields of `e` that its owner edits (its headers sealed under `key`); whether
/// it is enabled changes only through [`disable`] and [`enable`].
pub async fn update(c: &impl GenericClient, key: &MainKey, e: &Endpoint) -> DbResult<()> {
    let stmt = c
        .prepare_cached(
            "UPDATE endpoints SET uid=$1, url=$2, description=$3, filter_types=$4, channels=$5, \
             rate_limit=$6, metadata=$7, headers=$8, updated_at=$9, legacy_signature=$10, \
             verify_ssl=$11, retry_schedule=$12, timeout_secs=$13, auto_disable_after_secs=$14, \
             signature_header=$15, filter=$16, ordered=$17 WHERE id=$18",
        )
        .await?;
    c.execute(
        &stmt,
        &[
            &e.uid,
            &e.url,
            &e.description,
            &e.filter_types.as_ref().map(to_json),
            &e.channels.as_ref().map(to_json),
            &e.rate_limit,
            &to_json(&e.metadata),
            &seal_headers(key, &e.id, &e.headers),
            &e.updated_at,
            &e.legacy_signature,
            &e.verify_ssl,
            &e.policy.stored_schedule(),
            &stored_seconds(e.policy.timeout_secs),
            &stored_seconds(e.policy.auto_disable_after_secs),
            &e.signature_header.as_ref().map(|h| h.stored()),
            &e.filter,
            &e.ordered,
            &e.id,
        ],
    )
    .await
    .map_err(uid_conflict)?;
    Ok(())
}

/// By id, or else by uid (`ep`), within one application; headers opened with `key`.
pub async fn get(
    c: &impl GenericClient,
    key: &MainKey,
    app_id: &str,
    ep: &str,
) -> DbResult<Option<Endpoint>> {
    // PostgreSQL text holds no NUL, so no endpoint has such an id or uid (and the query
    // would fail rather than find nothing).
    if ep.contains('\0') || app_id.contains('\0') {
        return Ok(None);
    }
    let stmt = c
        .prepare_cached(&format!(
            "SELECT {COLS}, 0 AS pick FROM endpoints WHERE app_id = $1 AND id = $2 UNION ALL \
             SELECT {COLS}, 1 AS pick FROM endpoints WHERE app_id = $1 AND uid = $2 \
             ORDER BY pick LIMIT 1"
        ))
        .await?;
    c.query_opt(&stmt, &[&app_id, &ep])
        .await?
        .map(|r| from_row(&r).open(key))
        .transpose()
}

pub async fn get_by_id(
    c: &impl GenericClient,
    key: &MainKey,
    id: &str,
) -> DbResult<Option<Endpoint>> {
    let stmt = c
        .prepare_cached(&format!("SELECT {COLS} FROM endpoints WHERE id = $1"))
        .await?;
    c.query_opt(&stmt, &[&id])
        .await?
        .map(|r| from_row(&r).open(key))
        .transpose()
}

pub async fn list(
    c: &impl GenericClient,
    key: &MainKey,
    app_id: &str,
    page: &PageQuery,
) -> DbResult<Page<Endpoint>> {
    let page = paged(
        c,
        &format!("SELECT {COLS} FROM endpoints WHERE app_id = $1 AND {{page}}"),
        "id",
        &[&app_id],
        page,
        |r| Ok(from_row(r)),
    )
    .await?;
    Ok(Page {
        items: page
            .items
            .into_iter()
            .map(|s| s.open(key))
            .collect::<DbResult<_>>()?,
        done: page.done,
    })
}

pub async fn all_in_app(
    c: &impl GenericClient,
    key: &MainKey,
    app_id: &str,
) -> DbResult<Vec<Endpoint>> {
    let stmt = c
        .prepare_cached(&format!("SELECT {COLS} FROM endpoints WHERE app_id = $1"))
        .await?;
    c.query(&stmt, &[&app_id])
        .await?
        .iter()
        .map(|r| from_row(r).open(key))
        .collect()
}

/// The ids of an application's endpoints.
pub async fn ids_in_app(c: &impl GenericClient, app_id: &str) -> DbResult<Vec<String>> {
    let stmt = c
        .prepare_cached("SELECT id FROM endpoints WHERE app_id = $1")
        .await?;
    Ok(c.query(&stmt, &[&app_id])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect())
}

/// Deletes an endpoint and, with it, its deliveries. Its deliveries are locked first, in
/// the order a node recording results locks rows (deliveries, then their endpoint), so that
/// the two wait for each other instead of deadlocking.
pub async fn delete(c: &impl GenericClient, id: &str) -> DbResult<bool> {
    c.execute(
        "SELECT 1 FROM deliveries WHERE endpoint_id = $1 ORDER BY id FOR UPDATE",
        &[&id],
    )
    .await?;
    let stmt = c
        .prepare_cached("DELETE FROM endpoints WHERE id = $1")
        .await?;
    Ok(c.execute(&stmt, &[&id]).await? > 0)
}

/// Disables an endpoint, however that comes about (its owner, a 410, a long run of
/// failures): records why and since when, and marks what it had pending as skipped, so that
/// Enable can replay it. `false` when it was disabled already (then nothing changes). The
/// caller announces `endpoint.disabled` (see `operational::announce`).
///
/// Several nodes disabling the same endpoint at once: the second update waits for the first
/// to commit, then finds it disabled and changes nothing, so only one announces it.
pub async fn disable(c: &impl GenericClient, id: &str, reason: &str, now: i64) -> DbResult<bool> {
    let stmt = c
        .prepare_cached(
            "UPDATE endpoints SET disabled = TRUE, disabled_reason = $1, disabled_at = $2, \
             failing_since = NULL, updated_at = GREATEST($2, updated_at + 1) WHERE id = $3 AND NOT disabled",
        )
        .await?;
    let changed = c.execute(&stmt, &[&reason, &now, &id]).await? > 0;
    if changed {
        super::deliveries::skip_pending(c, id, now).await?;
    }
    Ok(changed)
}

/// Whether an endpoint sends its messages in order (`false` when it does not exist).
pub async fn is_ordered(c: &impl GenericClient, id: &str) -> DbResult<bool> {
    let stmt = c
        .prepare_cached("SELECT ordered FROM endpoints WHERE id = $1")
        .await?;
    Ok(c.query_opt(&stmt, &[&id]).await?.is_some_and(|r| r.get(0)))
}

/// Locks the endpoint's row until the end of the transaction (changes to the endpoint made
/// by other nodes wait for it) and tells whether it is disabled; `None` when there is no
/// such endpoint.
pub async fn lock(c: &impl GenericClient, id: &str) -> DbResult<Option<bool>> {
    let stmt = c
        .prepare_cached("SELECT disabled FROM endpoints WHERE id = $1 FOR UPDATE")
        .await?;
    Ok(c.query_opt(&stmt, &[&id]).await?.map(|r| r.get(0)))
}

/// Enables an endpoint (what it missed while disabled stays skipped unless replayed).
pub async fn enable(c: &impl GenericClient, id: &str, now: i64) -> DbResult<()> {
    let stmt = c
        .prepare_cached(
            "UPDATE endpoints SET disabled = FALSE, disabled_reason = NULL, disabled_at = NULL, \
             failing_since = NULL, updated_at = GREATEST($1, updated_at + 1) WHERE id = $2",
        )
        .await?;
    c.execute(&stmt, &[&now, &id]).await?;
    Ok(())
}

/// When the endpoint's current run of failed attempts began, if it is failing.
pub async fn failing_since(c: &impl GenericClient, endpoint_id: &str) -> DbResult<Option<i64>> {
    let stmt = c
        .prepare_cached("SELECT failing_since FROM endpoints WHERE id = $1")
        .await?;
    Ok(c.query_opt(&stmt, &[&endpoint_id])
        .await?
        .and_then(|r| r.get(0)))
}

/// Enabled endpoints whose every attempt has failed for their auto-disable period by `now`
/// (their own, else `server_ms`; 0 never): id, since when, and the period in ms.
pub async fn failing_too_long(
    c: &impl GenericClient,
    now: i64,
    server_ms: i64,
) -> DbResult<Vec<(String, i64, i64)>> {
    let stmt = c
        .prepare_cached(
            "SELECT id, failing_since, after FROM \
                 (SELECT id, failing_since, \
                     COALESCE(auto_disable_after_secs::BIGINT * 1000, $2) AS after \
                  FROM endpoints WHERE NOT disabled AND failing_since IS NOT NULL) AS f \
             WHERE after > 0 AND failing_since <= $1 - after",
        )
        .await?;
    Ok(c.query(&stmt, &[&now, &server_ms])
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect())
}

/// Who an endpoint belongs to.
pub async fn owner(c: &impl GenericClient, endpoint_id: &str) -> DbResult<Option<Owner>> {
    let stmt = c
        .prepare_cached(
            "SELECT e.app_id, a.uid, e.uid FROM endpoints e \
             JOIN applications a ON a.id = e.app_id WHERE e.id = $1",
        )
        .await?;
    Ok(c.query_opt(&stmt, &[&endpoint_id]).await?.map(|r| Owner {
        app_id: r.get(0),
        app_uid: r.get(1),
        endpoint_uid: r.get(2),
    }))
}

pub async fn count_in_app(c: &impl GenericClient, app_id: &str) -> DbResult<i64> {
    let stmt = c
        .prepare_cached("SELECT COUNT(*) FROM endpoints WHERE app_id = $1 AND NOT disabled")
        .await?;
    Ok(c.query_one(&stmt, &[&app_id]).await?.get(0))
}

/// The current secret and every rotated one still in its grace period, current first,
/// decrypted with `key`.
pub async fn secrets(
    c: &impl GenericClient,
    key: &MainKey,
    endpoint_id: &str,
    now: i64,
) -> DbResult<Vec<Secret>> {
    let stmt = c
        .prepare_cached(
            "SELECT secret, expires_at FROM endpoint_secrets WHERE endpoint_id = $1 \
             AND (expires_at IS NULL OR expires_at > $2) \
             ORDER BY expires_at IS NOT NULL, id DESC",
        )
        .await?;
    c.query(&stmt, &[&endpoint_id, &now])
        .await?
        .iter()
        .map(|r| {
            Ok(Secret {
                secret: open(key, endpoint_id, r.get(0))?,
                expires_at: r.get(1),
            })
        })
        .collect()
}

/// Makes `new_secret` current; the previous one keeps signing until `now + grace_ms`.
///
/// The endpoint's row is locked first, so rotations of the same endpoint on several nodes
/// run one after the other: each sees the secret the previous one made current and gives it
/// its grace period (without the lock, two rotations could each leave a current secret).
pub async fn rotate_secret(
    c: &impl GenericClient,
    key: &MainKey,
    endpoint_id: &str,
    new_secret: &str,
    grace_ms: i64,
    max_old: i64,
    now: i64,
) -> DbResult<Option<i64>> {
    lock(c, endpoint_id).await?;
    // Keys it replaced that still sign: at most `max_old` (each adds a signature to every
    // request), the one it replaces now included.
    let row = c
        .query_one(
            "SELECT count(*), min(expires_at) FROM endpoint_secrets \
             WHERE endpoint_id = $1 AND expires_at > $2",
            &[&endpoint_id, &now],
        )
        .await?;
    let (signing, first_end): (i64, Option<i64>) = (row.get(0), row.get(1));
    if grace_ms > 0 && signing + 1 > max_old {
        return Ok(Some(first_end.unwrap_or(now)));
    }
    let stmt = c
        .prepare_cached(
            "UPDATE endpoint_secrets SET expires_at = $1 \
             WHERE endpoint_id = $2 AND expires_at IS NULL",
        )
        .await?;
    c.execute(&stmt, &[&(now + grace_ms), &endpoint_id]).await?;
    let stmt = c
        .prepare_cached("DELETE FROM endpoint_secrets WHERE endpoint_id = $1 AND expires_at <= $2")
        .await?;
    c.execute(&stmt, &[&endpoint_id, &now]).await?;
    let stmt = c
        .prepare_cached(
            "INSERT INTO endpoint_secrets (endpoint_id, secret, created_at) VALUES ($1, $2, $3)",
        )
        .await?;
    c.execute(
        &stmt,
        &[&endpoint_id, &key.seal(endpoint_id, new_secret), &now],
    )
    .await?;
    let stmt = c
        .prepare_cached(
            "UPDATE endpoints SET updated_at = GREATEST($1, updated_at + 1) WHERE id = $2",
        )
        .await?;
    c.execute(&stmt, &[&now, &endpoint_id]).await?;
    Ok(None)
}

// What follows checks, at a node's start, that the main key opens the stored secrets, and
// re-seals them under a new key (`rotate-main-key`).

/// Every stored secret row: `(row id, endpoint id, stored value)`.
async fn all_secret_rows(c: &impl GenericClient) -> DbResult<Vec<(i64, String, String)>> {
    Ok(c.query(
        "SELECT id, endpoint_id, secret FROM endpoint_secrets ORDER BY id",
        &[],
    )
    .await?
    .iter()
    .map(|r| (r.get(0), r.get(1), r.get(2)))
    .collect())
}

async fn store_secret(c: &impl GenericClient, row_id: i64, stored: &str) -> DbResult<()> {
    let stmt = c
        .prepare_cached("UPDATE endpoint_secrets SET secret = $1 WHERE id = $2")
        .await?;
    c.execute(&stmt, &[&stored, &row_id]).await?;
    Ok(())
}

async fn store_headers(c: &impl GenericClient, endpoint_id: &str, stored: &str) -> DbResult<()> {
    let stmt = c
        .prepare_cached("UPDATE endpoints SET headers = $1 WHERE id = $2")
        .await?;
    c.execute(&stmt, &[&stored, &endpoint_id]).await?;
    Ok(())
}

/// Re-seals every secret, every endpoint's custom headers and every replayable response
/// that carries a secret from `old` to `new`; returns how many secrets. Run inside one
/// transaction.
pub async fn reseal_secrets(
    c: &impl GenericClient,
    old: &MainKey,
    new: &MainKey,
) -> DbResult<usize> {
    let rows = all_secret_rows(c).await?;
    for (row, endpoint_id, stored) in &rows {
        let plain = if stored.starts_with(SECRET_PREFIX) {
            stored.clone()
        } else {
            open(old, endpoint_id, stored)?
        };
        store_secret(c, *row, &new.seal(endpoint_id, &plain)).await?;
    }
    for (endpoint_id, stored) in all_header_rows(c).await? {
        let headers = open_headers(old, &endpoint_id, &stored)?;
        store_headers(c, &endpoint_id, &seal_headers(new, &endpoint_id, &headers)).await?;
    }
    // A replay that no longer opens (its key is long gone) is only a replay lost: dropped.
    for (k, body) in super::idempotency::sealed(c).await? {
        match old.open(&k.path, &body) {
            Ok(plain) => super::idempotency::set_body(c, &k, &new.seal(&k.path, &plain)).await?,
            Err(_) => super::idempotency::delete_row(c, &k).await?,
        }
    }
    reset_key_check(c, new).await?;
    Ok(rows.len())
}

/// `rotate-main-key` on PostgreSQL (see `db::commands::reseal_postgres`): in one
/// transaction that locks out starting nodes, unless a node has heartbeat within
/// `node_timeout_ms` or `old` does not open the secrets, re-seals them under `new`, calls
/// `announce` and commits.
pub async fn reseal_with_no_node_running(
    c: &deadpool_postgres::Client,
    old: &MainKey,
    new: &MainKey,
    node_timeout_ms: i64,
    announce: impl FnOnce(),
) -> DbResult<crate::db::commands::Resealed> {
    use crate::db::commands::Resealed;
    c.batch_execute(
        "BEGIN; LOCK TABLE nodes, endpoints, endpoint_secrets, idempotency_keys, main_key_check \
         IN ACCESS EXCLUSIVE MODE",
    )
    .await?;
    let running: i64 = c
        .query_one(
            "SELECT COUNT(*) FROM nodes WHERE heartbeat_at >= \
             (EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT - $1",
            &[&node_timeout_ms],
        )
        .await?
        .get(0);
    let outcome = if running > 0 {
        Resealed::NodesRunning(usize::try_from(running).unwrap_or(usize::MAX))
    } else if !sealed_secrets_open_with(c, old).await? {
        Resealed::WrongKey
    } else {
        let n = reseal_secrets(c, old, new).await?;
        announce();
        Resealed::Done(n)
    };
    let end = match outcome {
        Resealed::Done(_) => "COMMIT",
        _ => "ROLLBACK",
    };
    c.batch_execute(end).await?;
    Ok(outcome)
}

/// Whether every sealed secret (and sealed headers) opens with `key` (true when there is
/// none).
pub async fn sealed_secrets_open_with(c: &impl GenericClient, key: &MainKey) -> DbResult<bool> {
    if let Some(sealed) = key_check(c).await? {
        if key.open(KEY_CHECK_AAD, &sealed).is_err() {
            return Ok(false);
        }
    }
    for (_, endpoint_id, stored) in all_secret_rows(c).await? {
        if crypto::is_sealed(&stored) && key.open(&endpoint_id, &stored).is_err() {
            return Ok(false);
        }
    }
    for (endpoint_id, stored) in all_header_rows(c).await? {
        if crypto::is_sealed(&stored) && key.open(&headers_aad(&endpoint_id), &stored).is_err() {
            return Ok(false);
        }
    }
    Ok(true)
}

/// When the endpoint was last changed (`None` when there is no such endpoint).
pub async fn changed_at(c: &impl GenericClient, id: &str) -> DbResult<Option<i64>> {
    Ok(
        c.query_opt("SELECT updated_at FROM endpoints WHERE id = $1", &[&id])
            .await?
            .map(|r| r.get(0)),
    )
}

/// What the main key's check value is sealed for, and what it holds.
const KEY_CHECK_AAD: &str = "hookbox main key check";
const KEY_CHECK_PLAIN: &str = "hookbox";

/// The stored check value, sealed under the main key (none before a node first started).
async fn key_check(c: &impl GenericClient) -> DbResult<Option<String>> {
    Ok(
        c.query_opt("SELECT sealed FROM main_key_check WHERE id = 1", &[])
            .await?
            .map(|r| r.get(0)),
    )
}

/// Seals the check value under `key` unless one is stored (another node's, first), and says
/// whether the stored one opens with `key`.
pub async fn key_check_set(c: &impl GenericClient, key: &MainKey) -> DbResult<bool> {
    c.execute(
        "INSERT INTO main_key_check (id, sealed) VALUES (1, $1) ON CONFLICT (id) DO NOTHING",
        &[&key.seal(KEY_CHECK_AAD, KEY_CHECK_PLAIN)],
    )
    .await?;
    Ok(key_check(c)
        .await?
        .is_some_and(|sealed| key.open(KEY_CHECK_AAD, &sealed).is_ok()))
}

/// Seals the check value under `key` in place of any stored one (a copy, a new main key).
pub async fn reset_key_check(c: &impl GenericClient, key: &MainKey) -> DbResult<()> {
    c.execute(
        "INSERT INTO main_key_check (id, sealed) VALUES (1, $1) \
         ON CONFLICT (id) DO UPDATE SET sealed = EXCLUDED.sealed",
        &[&key.seal(KEY_CHECK_AAD, KEY_CHECK_PLAIN)],
    )
    .await?;
    Ok(())
}

/// Every endpoint's stored headers that are not empty: `(endpoint id, stored value)`.
async fn all_header_rows(c: &impl GenericClient) -> DbResult<Vec<(String, String)>> {
    Ok(c.query(
        "SELECT id, headers FROM endpoints WHERE headers != '{}' ORDER BY id",
        &[],
    )
    .await?
    .iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh database with application `app_1` and endpoint `ep_1` (uid `one`, custom
    /// headers) whose secret is `whsec_first`; `None` without a cluster.
    async fn database(key: &MainKey) -> Option<deadpool_postgres::Pool> {
        let (pool, _) = super::super::tests::fresh_database().await?;
        let c = pool.get().await.unwrap();
        c.batch_execute(
            "INSERT INTO applications (id, name, created_at, updated_at) VALUES ('app_1', 'a', 0, 0)",
        )
        .await
        .unwrap();
        insert(&c, key, &endpoint("ep_1", Some("one")), "whsec_first")
            .await
            .unwrap();
        Some(pool)
    }

    fn endpoint(id: &str, uid: Option<&str>) -> Endpoint {
        Endpoint {
            uid: uid.map(str::to_owned),
            filter_types: Some(vec!["a.b".into()]),
            rate_limit: Some(5),
            headers: BTreeMap::from([("X-Custom".to_owned(), "v".to_owned())]),
            ..crate::domain::model::sample_endpoint(id, "app_1")
        }
    }

    #[tokio::test]
    async fn endpoints_are_found_by_id_before_uid_and_their_headers_open() {
        let key = MainKey::generate();
        let Some(pool) = database(&key).await else {
            return;
        };
        let c = pool.get().await.unwrap();
        // An endpoint whose uid is the other's id.
        insert(&c, &key, &endpoint("ep_2", Some("ep_1")), "whsec_x")
            .await
            .unwrap();
        let by_id = get(&c, &key, "app_1", "ep_1").await.unwrap().unwrap();
        assert_eq!(by_id.id.as_str(), "ep_1");
        assert_eq!(by_id.headers["X-Custom"], "v");
        assert_eq!(by_id.filter_types, Some(vec!["a.b".to_owned()]));
        let by_uid = get(&c, &key, "app_1", "one").await.unwrap().unwrap();
        assert_eq!(by_uid.id.as_str(), "ep_1");
        assert!(get(&c, &key, "app_2", "ep_1").await.unwrap().is_none());
        assert!(get(&c, &key, "app_1", "a\0b").await.unwrap().is_none());
        let again = insert(&c, &key, &endpoint("ep_3", Some("one")), "whsec_x").await;
        assert!(matches!(again, Err(DbError::Conflict(_))));
        let stored: String = c
            .query_one("SELECT headers FROM endpoints WHERE id = 'ep_1'", &[])
            .await
            .unwrap()
            .get(0);
        assert!(crypto::is_sealed(&stored), "headers are stored sealed");
    }

    #[tokio::test]
    async fn concurrent_rotations_each_leave_the_previous_secret_its_grace_period() {
        let key = std::sync::Arc::new(MainKey::generate());
        let Some(pool) = database(&key).await else {
            return;
        };
        let runs: Vec<_> = (0..6)
            .map(|i| {
                let (pool, key) = (pool.clone(), key.clone());
                tokio::spawn(async move {
                    let mut c = pool.get().await.unwrap();
                    let tx = c.transaction().await.unwrap();
                    let secret = format!("whsec_{i}");
                    rotate_secret(&tx, &key, "ep_1", &secret, 60_000, 100, 10).await?;
                    tx.commit().await?;
                    DbResult::Ok(())
                })
            })
            .collect();
        for run in runs {
            run.await.unwrap().unwrap();
        }
        let c = pool.get().await.unwrap();
        let all = secrets(&c, &key, "ep_1", 10).await.unwrap();
        assert_eq!(all.len(), 7, "every secret is kept");
        assert_eq!(
            all.iter().filter(|s| s.expires_at.is_none()).count(),
            1,
            "one current secret"
        );
        assert!(all[0].expires_at.is_none(), "the current one first");
    }

    #[tokio::test]
    async fn an_endpoint_disabled_by_several_nodes_at_once_changes_once() {
        let key = MainKey::generate();
        let Some(pool) = database(&key).await else {
            return;
        };
        let runs: Vec<_> = (0..4)
            .map(|_| {
                let pool = pool.clone();
                tokio::spawn(async move {
                    let mut c = pool.get().await.unwrap();
                    let tx = c.transaction().await.unwrap();
                    let changed = disable(&tx, "ep_1", "gone", 5).await?;
                    tx.commit().await?;
                    DbResult::Ok(changed)
                })
            })
            .collect();
        let mut changed = 0;
        for run in runs {
            changed += usize::from(run.await.unwrap().unwrap());
        }
        assert_eq!(changed, 1);
        let c = pool.get().await.unwrap();
        assert_eq!(lock(&c, "ep_1").await.unwrap(), Some(true));
        assert_eq!(count_in_app(&c, "app_1").await.unwrap(), 0);
        enable(&c, "ep_1", 6).await.unwrap();
        assert_eq!(lock(&c, "ep_1").await.unwrap(), Some(false));
    }

    #[tokio::test]
    async fn deleting_an_endpoint_waits_for_results_being_recorded_instead_of_deadlocking() {
        let key = MainKey::generate();
        let Some(pool) = database(&key).await else {
            return;
        };
        let c = pool.get().await.unwrap();
        c.batch_execute(
            "INSERT INTO messages (id, app_id, event_type, payload, created_at) \
                 VALUES ('msg_1', 'app_1', 'a.b', '{}', 0); \
             INSERT INTO deliveries (msg_id, endpoint_id, status, next_attempt_at, lease_until, \
                 lease_owner, created_at, updated_at) \
                 VALUES ('msg_1', 'ep_1', 1, 0, 99, 'n', 0, 0);",
        )
        .await
        .unwrap();
        // A node records a result: the delivery first, its endpoint afterwards.
        let mut rec = pool.get().await.unwrap();
        let rec = rec.transaction().await.unwrap();
        rec.execute(
            "UPDATE deliveries SET status = 0 WHERE msg_id = 'msg_1'",
            &[],
        )
        .await
        .unwrap();
        // Meanwhile the endpoint is deleted; it waits for the recording to end.
        let deleting = tokio::spawn({
            let pool = pool.clone();
            async move {
                let mut c = pool.get().await.unwrap();
                let tx = c.transaction().await.unwrap();
                let deleted = delete(&tx, "ep_1").await?;
                tx.commit().await?;
                DbResult::Ok(deleted)
            }
        });
        let mut waiting = false;
        for _ in 0..500 {
            let n: i64 = c
                .query_one(
                    "SELECT COUNT(*) FROM pg_stat_activity \
                     WHERE datname = current_database() AND wait_event_type = 'Lock'",
                    &[],
                )
                .await
                .unwrap()
                .get(0);
            if n > 0 {
                waiting = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert!(waiting, "the delete never waited for the recording");
        rec.execute(
            "UPDATE endpoints SET failing_since = NULL WHERE id = 'ep_1'",
            &[],
        )
        .await
        .expect("recording goes on: no deadlock");
        rec.commit().await.unwrap();
        assert!(deleting.await.unwrap().unwrap());
        let left: i64 = c
            .query_one("SELECT COUNT(*) FROM deliveries", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(left, 0);
    }

    #[tokio::test]
    async fn stored_secrets_open_only_with_the_key_that_sealed_them() {
        let key = MainKey::generate();
        let Some(pool) = database(&key).await else {
            return;
        };
        let c = pool.get().await.unwrap();
        assert!(sealed_secrets_open_with(&c, &key).await.unwrap());
        let other = MainKey::generate();
        assert!(!sealed_secrets_open_with(&c, &other).await.unwrap());
        let e = get_by_id(&c, &key, "ep_1").await.unwrap().unwrap();
        assert_eq!(e.headers["X-Custom"], "v");
        assert!(matches!(
            get_by_id(&c, &other, "ep_1").await,
            Err(DbError::Undecryptable { .. })
        ));
    }
}
