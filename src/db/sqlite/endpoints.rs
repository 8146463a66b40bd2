use super::{filter_col, is_unique_violation, paged, to_json, DbError, DbResult, Page, PageQuery};
use crate::domain::crypto::{self, MainKey};
use crate::domain::signing::SECRET_PREFIX;
use rusqlite::{params, Connection, OptionalExtension, Row};
use std::collections::BTreeMap;

pub use crate::domain::model::Endpoint;

const COLS: &str =
    "id, app_id, uid, url, description, filter_types, channels, rate_limit, metadata, \
                    headers, disabled, disabled_reason, disabled_at, created_at, updated_at, \
                    legacy_signature, verify_ssl, retry_schedule, timeout_secs, \
                    auto_disable_after_secs, signature_header, filter, signature_version, ordered";

/// An endpoint as read, its headers still as stored (sealed): see [`Stored::open`].
pub(crate) struct Stored(pub(crate) Endpoint, pub(crate) String);

impl Stored {
    /// The endpoint with its headers opened with `key`.
    pub(crate) fn open(self, key: &MainKey) -> DbResult<Endpoint> {
        let Stored(mut e, stored) = self;
        e.headers = open_headers(key, &e.id, &stored)?;
        Ok(e)
    }
}

/// What seals an endpoint's headers: bound to the endpoint, and to being its headers (a
/// sealed header value copied into a secret's place does not open).
pub(crate) fn headers_aad(endpoint_id: &str) -> String {
    format!("{endpoint_id}#headers")
}

/// Headers as stored: `{}` when there are none, else their JSON sealed under `key`.
pub(crate) fn seal_headers(
    key: &MainKey,
    endpoint_id: &str,
    h: &BTreeMap<String, String>,
) -> String {
    if h.is_empty() {
        "{}".to_owned()
    } else {
        key.seal(&headers_aad(endpoint_id), &to_json(h))
    }
}

/// Opens stored headers: sealed ones with `key`; plaintext JSON (written before headers
/// were sealed, and sealed at start) as it is.
pub(crate) fn open_headers(
    key: &MainKey,
    endpoint_id: &str,
    stored: &str,
) -> DbResult<BTreeMap<String, String>> {
    let plain = if crypto::is_sealed(stored) {
        key.open(&headers_aad(endpoint_id), stored)
            .map_err(|_| DbError::Undecryptable {
                endpoint_id: endpoint_id.to_owned(),
            })?
    } else {
        stored.to_owned()
    };
    serde_json::from_str(&plain)
        .map_err(|e| DbError::Corrupt(format!("headers of endpoint {endpoint_id}: {e}")))
}

fn from_row(r: &Row<'_>) -> rusqlite::Result<Stored> {
    let metadata: String = r.get(8)?;
    let headers: String = r.get(9)?;
    let id: String = r.get(0)?;
    let e = Endpoint {
        app_id: r.get(1)?,
        uid: r.get(2)?,
        url: r.get(3)?,
        description: r.get(4)?,
        filter_types: filter_col(r.get::<_, Option<String>>(5)?.as_deref(), &id),
        channels: filter_col(r.get::<_, Option<String>>(6)?.as_deref(), &id),
        rate_limit: r.get(7)?,
        metadata: serde_json::from_str(&metadata).unwrap_or_default(),
        headers: BTreeMap::new(),
        disabled: r.get(10)?,
        disabled_reason: r.get(11)?,
        disabled_at: r.get(12)?,
        created_at: r.get(13)?,
        updated_at: r.get(14)?,
        legacy_signature: r.get(15)?,
        verify_ssl: r.get(16)?,
        policy: crate::domain::model::DeliveryPolicy {
            retry_schedule: crate::domain::model::DeliveryPolicy::schedule_of(
                r.get::<_, Option<String>>(17)?.as_deref(),
            ),
            timeout_secs: r.get(18)?,
            auto_disable_after_secs: r.get(19)?,
        },
        signature_header: r
            .get::<_, Option<String>>(20)?
            .and_then(|h| crate::domain::signing::SignatureHeader::from_stored(&h)),
        filter: r.get(21)?,
        signature_version: version_of(&r.get::<_, String>(22)?),
        ordered: r.get(23)?,
        id: crate::domain::ids::EndpointId::from_string(id),
    };
    Ok(Stored(e, headers))
}

/// A stored signature version; one hookbox never writes reads as `v1`.
pub(crate) fn version_of(stored: &str) -> crate::domain::signing::SignatureVersion {
    crate::domain::signing::SignatureVersion::parse(stored).unwrap_or_default()
}

fn uid_conflict(e: rusqlite::Error) -> DbError {
    if is_unique_violation(&e) {
        DbError::Conflict("an endpoint with this uid already exists in this application".into())
    } else {
        e.into()
    }
}

/// Inserts an endpoint and its first signing secret (stored sealed under `key`).
pub fn insert(c: &Connection, key: &MainKey, e: &Endpoint, secret: &str) -> DbResult<()> {
    c.prepare_cached(&format!(
        "INSERT INTO endpoints ({COLS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
    ))?
    .execute(params![
        e.id,
        e.app_id,
        e.uid,
        e.url,
        e.description,
        e.filter_types.as_ref().map(to_json),
        e.channels.as_ref().map(to_json),
        e.rate_limit,
        to_json(&e.metadata),
        seal_headers(key, &e.id, &e.headers),
        e.disabled,
        e.disabled_reason,
        e.disabled_at,
        e.created_at,
        e.updated_at,
        e.legacy_signature,
        e.verify_ssl,
        e.policy.stored_schedule(),
        e.policy.timeout_secs,
        e.policy.auto_disable_after_secs,
        e.signature_header.as_ref().map(|h| h.stored()),
        e.filter,
        e.signature_version.name(),
        e.ordered
    ])
    .map_err(uid_conflict)?;
    c.prepare_cached(
        "INSERT INTO endpoint_secrets (endpoint_id, secret, created_at) VALUES (?,?,?)",
    )?
    .execute(params![e.id, key.seal(&e.id, secret), e.created_at])?;
    Ok(())
}

/// Stores the fields of `e` that its owner edits (its headers sealed under `key`); whether
/// it is enabled changes only through [`disable`] and [`enable`].
pub fn update(c: &Connection, key: &MainKey, e: &Endpoint) -> DbResult<()> {
    c.prepare_cached(
        "UPDATE endpoints SET uid=?, url=?, description=?, filter_types=?, channels=?, rate_limit=?, \
         metadata=?, headers=?, updated_at=?, legacy_signature=?, verify_ssl=?, retry_schedule=?, \
         timeout_secs=?, auto_disable_after_secs=?, signature_header=?, filter=?, ordered=? WHERE id=?",
    )?
    .execute(params![
        e.uid,
        e.url,
        e.description,
        e.filter_types.as_ref().map(to_json),
        e.channels.as_ref().map(to_json),
        e.rate_limit,
        to_json(&e.metadata),
        seal_headers(key, &e.id, &e.headers),
        e.updated_at,
        e.legacy_signature,
        e.verify_ssl,
        e.policy.stored_schedule(),
        e.policy.timeout_secs,
        e.policy.auto_disable_after_secs,
        e.signature_header.as_ref().map(|h| h.stored()),
        e.filter,
        e.ordered,
        e.id
    ])
    .map_err(uid_conflict)?;
    Ok(())
}

/// By id, or else by uid (`ep`), within one application; headers opened with `key`.
pub fn get(c: &Connection, key: &MainKey, app_id: &str, ep: &str) -> DbResult<Option<Endpoint>> {
    let mut stmt = c.prepare_cached(&format!(
        "SELECT {COLS} FROM endpoints WHERE app_id = ?1 AND id = ?2 UNION ALL \
         SELECT {COLS} FROM endpoints WHERE app_id = ?1 AND uid = ?2 LIMIT 1"
    ))?;
    stmt.query_row([app_id, ep], from_row)
        .optional()?
        .map(|s| s.open(key))
        .transpose()
}

pub fn get_by_id(c: &Connection, key: &MainKey, id: &str) -> DbResult<Option<Endpoint>> {
    let mut stmt = c.prepare_cached(&format!("SELECT {COLS} FROM endpoints WHERE id = ?"))?;
    stmt.query_row([id], from_row)
        .optional()?
        .map(|s| s.open(key))
        .transpose()
}

pub fn list(
    c: &Connection,
    key: &MainKey,
    app_id: &str,
    page: &PageQuery,
) -> DbResult<Page<Endpoint>> {
    let page = paged(
        c,
        &format!("SELECT {COLS} FROM endpoints WHERE app_id = ? AND {{page}}"),
        "id",
        &[&app_id],
        page,
        from_row,
    )?;
    Ok(Page {
        items: page
            .items
            .into_iter()
            .map(|s| s.open(key))
            .collect::<DbResult<_>>()?,
        done: page.done,
    })
}

pub fn all_in_app(c: &Connection, key: &MainKey, app_id: &str) -> DbResult<Vec<Endpoint>> {
    let mut stmt = c.prepare_cached(&format!("SELECT {COLS} FROM endpoints WHERE app_id = ?"))?;
    let rows = stmt
        .query_map([app_id], from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    rows.into_iter().map(|s| s.open(key)).collect()
}

/// The ids of an application's endpoints.
pub fn ids_in_app(c: &Connection, app_id: &str) -> DbResult<Vec<String>> {
    Ok(
        c.prepare_cached("SELECT id FROM endpoints WHERE app_id = ?")?
            .query_map([app_id], |r| r.get(0))?
            .collect::<Result<_, _>>()?,
    )
}

pub fn delete(c: &Connection, id: &str) -> DbResult<bool> {
    Ok(c.prepare_cached("DELETE FROM endpoints WHERE id = ?")?
        .execute([id])?
        > 0)
}

/// Disables an endpoint, however that comes about (its owner, a 410, a long run of
/// failures): records why and since when, and marks what it had pending as skipped, so that
/// Enable can replay it. `false` when it was disabled already (then nothing changes). The
/// caller announces `endpoint.disabled` (see `operational::announce`).
pub fn disable(c: &Connection, id: &str, reason: &str, now: i64) -> DbResult<bool> {
    let changed = c
        .prepare_cached(
            "UPDATE endpoints SET disabled=1, disabled_reason=?1, disabled_at=?2, \
             failing_since=NULL, updated_at=max(?2, updated_at + 1) WHERE id=?3 AND disabled=0",
        )?
        .execute(params![reason, now, id])?
        > 0;
    if changed {
        super::deliveries::skip_pending(c, id, now)?;
    }
    Ok(changed)
}

/// When the endpoint was last changed (`None` when there is no such endpoint): a change made
/// on what was read at that time may be stored.
pub fn changed_at(c: &Connection, id: &str) -> DbResult<Option<i64>> {
    Ok(
        c.prepare_cached("SELECT updated_at FROM endpoints WHERE id = ?")?
            .query_row([id], |r| r.get(0))
            .optional()?,
    )
}

/// Whether an endpoint sends its messages in order (`false` when it does not exist).
pub fn is_ordered(c: &Connection, id: &str) -> DbResult<bool> {
    Ok(
        c.prepare_cached("SELECT ordered FROM endpoints WHERE id = ?")?
            .query_row([id], |r| r.get(0))
            .optional()?
            .unwrap_or(false),
    )
}

/// Whether the endpoint is disabled; `None` when there is no such endpoint.
pub fn is_disabled(c: &Connection, id: &str) -> DbResult<Option<bool>> {
    Ok(
        c.prepare_cached("SELECT disabled FROM endpoints WHERE id = ?")?
            .query_row([id], |r| r.get(0))
            .optional()?,
    )
}

/// Enables an endpoint (what it missed while disabled stays skipped unless replayed).
pub fn enable(c: &Connection, id: &str, now: i64) -> DbResult<()> {
    c.prepare_cached(
        "UPDATE endpoints SET disabled=0, disabled_reason=NULL, disabled_at=NULL, \
         failing_since=NULL, updated_at=max(?1, updated_at + 1) WHERE id=?2",
    )?
    .execute(params![now, id])?;
    Ok(())
}

/// Starts (`Some(at)`, unless already failing) or ends (`None`) an endpoint's run of failures.
pub fn set_failing(c: &Connection, endpoint_id: &str, failed_at: Option<i64>) -> DbResult<()> {
    match failed_at {
        Some(at) => c
            .prepare_cached("UPDATE endpoints SET failing_since = ? WHERE id = ? AND failing_since IS NULL")?
            .execute(params![at, endpoint_id])?,
        None => c
            .prepare_cached("UPDATE endpoints SET failing_since = NULL WHERE id = ? AND failing_since IS NOT NULL")?
            .execute([endpoint_id])?,
    };
    Ok(())
}

/// When the endpoint's current run of failed attempts began, if it is failing.
pub fn failing_since(c: &Connection, endpoint_id: &str) -> DbResult<Option<i64>> {
    Ok(
        c.prepare_cached("SELECT failing_since FROM endpoints WHERE id = ?")?
            .query_row([endpoint_id], |r| r.get(0))
            .optional()?
            .flatten(),
    )
}

/// Enabled endpoints whose every attempt has failed for their auto-disable period by `now`
/// (their own, else `server_ms`; 0 never): id, since when, and the period in ms.
pub fn failing_too_long(
    c: &Connection,
    now: i64,
    server_ms: i64,
) -> DbResult<Vec<(String, i64, i64)>> {
    let mut stmt = c.prepare_cached(
        "SELECT id, failing_since, after FROM \
             (SELECT id, failing_since, COALESCE(auto_disable_after_secs * 1000, ?2) AS after \
              FROM endpoints WHERE disabled = 0 AND failing_since IS NOT NULL) \
         WHERE after > 0 AND failing_since <= ?1 - after",
    )?;
    let rows = stmt
        .query_map(params![now, server_ms], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// Who an endpoint belongs to.
#[derive(Debug, Clone)]
pub struct Owner {
    pub app_id: String,
    pub app_uid: Option<String>,
    pub endpoint_uid: Option<String>,
}

pub fn owner(c: &Connection, endpoint_id: &str) -> DbResult<Option<Owner>> {
    Ok(c.prepare_cached(
        "SELECT e.app_id, a.uid, e.uid FROM endpoints e JOIN applications a ON a.id = e.app_id WHERE e.id = ?",
    )?
    .query_row([endpoint_id], |r| Ok(Owner { app_id: r.get(0)?, app_uid: r.get(1)?, endpoint_uid: r.get(2)? }))
    .optional()?)
}

pub fn count_in_app(c: &Connection, app_id: &str) -> DbResult<i64> {
    Ok(
        c.prepare_cached("SELECT COUNT(*) FROM endpoints WHERE app_id = ? AND disabled = 0")?
            .query_row([app_id], |r| r.get(0))?,
    )
}

/// A signing secret (decrypted) and, for a rotated one, when it stops signing.
#[derive(Clone)]
pub struct Secret {
    pub secret: String,
    pub expires_at: Option<i64>,
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secret")
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// The current secret and every rotated one still in its grace period, current first,
/// decrypted with `key`.
pub fn secrets(
    c: &Connection,
    key: &MainKey,
    endpoint_id: &str,
    now: i64,
) -> DbResult<Vec<Secret>> {
    let mut stmt = c.prepare_cached(
        "SELECT secret, expires_at FROM endpoint_secrets WHERE endpoint_id = ? \
         AND (expires_at IS NULL OR expires_at > ?) ORDER BY expires_at IS NOT NULL, id DESC",
    )?;
    let rows = stmt
        .query_map(params![endpoint_id, now], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, Option<i64>>(1)?))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    rows.into_iter()
        .map(|(stored, expires_at)| {
            Ok(Secret {
                secret: open(key, endpoint_id, &stored)?,
                expires_at,
            })
        })
        .collect()
}

/// Makes `new_secret` current; the previous one keeps signing until `now + grace_ms`.
pub fn rotate_secret(
    c: &Connection,
    key: &MainKey,
    endpoint_id: &str,
    new_secret: &str,
    grace_ms: i64,
    max_old: i64,
    now: i64,
) -> DbResult<Option<i64>> {
    // Keys it replaced that still sign: at most `max_old` (each adds a signature to every
    // request), the one it replaces now included.
    let (signing, first_end): (i64, Option<i64>) = c
        .prepare_cached(
            "SELECT count(*), min(expires_at) FROM endpoint_secrets \
             WHERE endpoint_id = ? AND expires_at > ?",
        )?
        .query_row(params![endpoint_id, now], |r| Ok((r.get(0)?, r.get(1)?)))?;
    if grace_ms > 0 && signing + 1 > max_old {
        return Ok(Some(first_end.unwrap_or(now)));
    }
    c.prepare_cached(
        "UPDATE endpoint_secrets SET expires_at = ? WHERE endpoint_id = ? AND expires_at IS NULL",
    )?
    .execute(params![now + grace_ms, endpoint_id])?;
    c.prepare_cached("DELETE FROM endpoint_secrets WHERE endpoint_id = ? AND expires_at <= ?")?
        .execute(params![endpoint_id, now])?;
    c.prepare_cached(
        "INSERT INTO endpoint_secrets (endpoint_id, secret, created_at) VALUES (?,?,?)",
    )?
    .execute(params![endpoint_id, key.seal(endpoint_id, new_secret), now])?;
    c.prepare_cached("UPDATE endpoints SET updated_at = max(?, updated_at + 1) WHERE id = ?")?
        .execute(params![now, endpoint_id])?;
    Ok(None)
}

/// Decrypts a stored secret; a legacy plaintext one (`whsec_…`) is not accepted here: it is
/// sealed at start (see [`seal_plaintext_secrets`]) before anything reads secrets.
pub(crate) fn open(key: &MainKey, endpoint_id: &str, stored: &str) -> DbResult<String> {
    key.open(endpoint_id, stored).map_err(|e| match e {
        crypto::CryptoError::Undecryptable => DbError::Undecryptable {
            endpoint_id: endpoint_id.to_owned(),
        },
        other => DbError::Corrupt(format!("secret of endpoint {endpoint_id}: {other}")),
    })
}

/// Every stored secret row: `(row id, endpoint id, stored value)`.
fn all_secret_rows(c: &Connection) -> DbResult<Vec<(i64, String, String)>> {
    let mut stmt = c.prepare("SELECT id, endpoint_id, secret FROM endpoint_secrets ORDER BY id")?;
    let rows = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

fn store_secret(c: &Connection, row_id: i64, stored: &str) -> DbResult<()> {
    c.prepare_cached("UPDATE endpoint_secrets SET secret = ? WHERE id = ?")?
        .execute(params![stored, row_id])?;
    Ok(())
}

/// Seals every plaintext (`whsec_…`) secret under `key` and checks that every sealed one
/// opens with it; returns how many rows changed. Older versions also kept rotation responses
/// (which carry the new secret) in plaintext for `Idempotency-Key` replays: those are
/// dropped. Run inside one transaction: either every secret ends up sealed, or nothing
/// changes. Idempotent.
pub fn seal_plaintext_secrets(c: &Connection, key: &MainKey) -> DbResult<usize> {
    let mut sealed = super::idempotency::delete_plaintext_secret_replays(c)?;
    for (endpoint_id, stored) in all_header_rows(c)? {
        if !crypto::is_sealed(&stored) {
            let headers = open_headers(key, &endpoint_id, &stored)?;
            store_headers(c, &endpoint_id, &seal_headers(key, &endpoint_id, &headers))?;
            sealed += 1;
        }
    }
    for (row, endpoint_id, stored) in all_secret_rows(c)? {
        if stored.starts_with(SECRET_PREFIX) {
            store_secret(c, row, &key.seal(&endpoint_id, &stored))?;
            sealed += 1;
        } else {
            open(key, &endpoint_id, &stored)?;
        }
    }
    Ok(sealed)
}

/// Whether any secret is stored sealed (so a main key exists somewhere).
pub fn any_sealed_secret(c: &Connection) -> DbResult<bool> {
    let pattern = format!("{}%", crypto::SEALED_PREFIX);
    Ok(
        c.prepare_cached("SELECT EXISTS (SELECT 1 FROM endpoint_secrets WHERE secret LIKE ?)")?
            .query_row([pattern], |r| r.get(0))?,
    )
}

/// Whether every sealed secret (and sealed headers) opens with `key` (true when there is
/// none).
pub fn sealed_secrets_open_with(c: &Connection, key: &MainKey) -> DbResult<bool> {
    for (_, endpoint_id, stored) in all_secret_rows(c)? {
        if crypto::is_sealed(&stored) && key.open(&endpoint_id, &stored).is_err() {
            return Ok(false);
        }
    }
    for (endpoint_id, stored) in all_header_rows(c)? {
        if crypto::is_sealed(&stored) && key.open(&headers_aad(&endpoint_id), &stored).is_err() {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Every endpoint's stored headers that are not empty: `(endpoint id, stored value)`.
fn all_header_rows(c: &Connection) -> DbResult<Vec<(String, String)>> {
    let mut stmt =
        c.prepare("SELECT id, headers FROM endpoints WHERE headers != '{}' ORDER BY id")?;
    let rows = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

fn store_headers(c: &Connection, endpoint_id: &str, stored: &str) -> DbResult<()> {
    c.prepare_cached("UPDATE endpoints SET headers = ? WHERE id = ?")?
        .execute(params![stored, endpoint_id])?;
    Ok(())
}

/// Re-seals every secret from `old` to `new` (plaintext ones are sealed too); returns how
/// many. Run inside one transaction.
pub fn reseal_secrets(c: &Connection, old: &MainKey, new: &MainKey) -> DbResult<usize> {
    let rows = all_secret_rows(c)?;
    for (row, endpoint_id, stored) in &rows {
        let plain = if stored.starts_with(SECRET_PREFIX) {
            stored.clone()
        } else {
            open(old, endpoint_id, stored)?
        };
        store_secret(c, *row, &new.seal(endpoint_id, &plain))?;
    }
    for (endpoint_id, stored) in all_header_rows(c)? {
        let headers = open_headers(old, &endpoint_id, &stored)?;
        store_headers(c, &endpoint_id, &seal_headers(new, &endpoint_id, &headers))?;
    }
    // Replayable responses that carry a secret are sealed too; one that no longer opens
    // (its key is long gone) is only a replay lost, so it is dropped.
    let replays = super::idempotency::sealed(c)?;
    for (row, path, body) in &replays {
        match old.open(path, body) {
            Ok(plain) => super::idempotency::set_body(c, *row, &new.seal(path, &plain))?,
            Err(_) => super::idempotency::delete_row(c, *row)?,
        }
    }
    Ok(rows.len())
}
