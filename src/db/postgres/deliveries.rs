//! The outbox as the API and console see it (resend, recover, replay, counts, listings), and
//! what the dispatcher needs beside the queue (`super::queue`): the next due time, skips, and
//! giving a stopping node's leases back.

use super::super::{
    DbResult, Endpoint, EndpointMessage, MessageEndpoint, MessageFilter, Page, PageQuery, Stats,
};
use super::messages::{self, filter_sql, from_row_at};
use crate::domain::crypto::MainKey;
use crate::domain::model::DeliveryStatus;
use deadpool_postgres::GenericClient;
use tokio_postgres::types::ToSql;

pub use super::queue::{claim_due, record};

/// When the next unclaimed delivery falls due.
pub async fn next_due(c: &impl GenericClient) -> DbResult<Option<i64>> {
    let stmt = c
        .prepare_cached(
            "SELECT MIN(next_attempt_at) FROM deliveries WHERE status = 1 AND lease_until IS NULL",
        )
        .await?;
    Ok(c.query_one(&stmt, &[]).await?.get(0))
}

/// Whether delivery `id` is still pending: not canceled meanwhile (its message's content
/// deleted), deleted, nor ended otherwise.
pub async fn still_pending(c: &impl GenericClient, id: i64) -> DbResult<bool> {
    let stmt = c
        .prepare_cached("SELECT 1 FROM deliveries WHERE id = $1 AND status = 1")
        .await?;
    Ok(c.query_opt(&stmt, &[&id]).await?.is_some())
}

/// Gives back every lease node `owner` holds (it is stopping, or starting again under the
/// same name); how many.
pub async fn release_leases_of(c: &impl GenericClient, owner: &str) -> DbResult<usize> {
    let n = c
        .execute(
            "UPDATE deliveries SET lease_until = NULL, lease_owner = NULL WHERE lease_owner = $1",
            &[&owner],
        )
        .await?;
    Ok(usize::try_from(n).unwrap_or(usize::MAX))
}

/// Marks a delivery claimed by `owner` as skipped (its endpoint is disabled) without an
/// attempt; nothing when the lease is no longer `owner`'s.
pub async fn skip(c: &impl GenericClient, owner: &str, delivery_id: i64, now: i64) -> DbResult<()> {
    let stmt = c
        .prepare_cached(
            "UPDATE deliveries SET status = 5, lease_until = NULL, lease_owner = NULL, \
             updated_at = $1 WHERE id = $2 AND lease_owner = $3",
        )
        .await?;
    c.execute(&stmt, &[&now, &delivery_id, &owner]).await?;
    Ok(())
}

/// Ends the leases `owner` holds on claimed deliveries that were not sent (those behind one
/// of an ordered line that failed: they wait their turn again).
pub async fn release(c: &impl GenericClient, claimed: &[super::super::Claimed]) -> DbResult<()> {
    let stmt = c
        .prepare_cached(
            "UPDATE deliveries SET lease_until = NULL, lease_owner = NULL \
             WHERE id = $1 AND lease_owner = $2",
        )
        .await?;
    for d in claimed {
        c.execute(
            &stmt,
            &[&d.delivery_id, &d.owner.as_deref().unwrap_or_default()],
        )
        .await?;
    }
    Ok(())
}

/// After deliveries `ids` of an endpoint were queued again: on an ordered endpoint they join
/// the end of its line, in the order given (the caller holds the line's lock). How many.
pub(super) async fn requeued(
    c: &impl GenericClient,
    endpoint_id: &str,
    ids: Vec<i64>,
    now: i64,
) -> DbResult<usize> {
    if !ids.is_empty() && super::endpoints::is_ordered(c, endpoint_id).await? {
        super::lanes::enqueue(c, endpoint_id, &ids, now).await?;
    }
    Ok(ids.len())
}

/// Marks every unclaimed pending delivery of a disabled endpoint as skipped.
pub async fn skip_pending(c: &impl GenericClient, endpoint_id: &str, now: i64) -> DbResult<usize> {
    let n = c
        .execute(
            "UPDATE deliveries SET status = 5, updated_at = $1 \
             WHERE endpoint_id = $2 AND status = 1 AND lease_until IS NULL",
            &[&now, &endpoint_id],
        )
        .await?;
    Ok(usize::try_from(n).unwrap_or(usize::MAX))
}

/// Resend: one more manual attempt, now, of the message's delivery to the endpoint (nothing
/// while it is being sent, or when the message's payload is gone). `false` when the message
/// has no delivery to that endpoint: it was never for it.
pub async fn resend(
    c: &impl GenericClient,
    msg_id: &str,
    endpoint_id: &str,
    max_attempts: u32,
    now: i64,
) -> DbResult<bool> {
    let last = i32::try_from(max_attempts.saturating_sub(1)).unwrap_or(i32::MAX);
    super::lanes::lock(c, [endpoint_id]).await?;
    let ids: Vec<i64> = c
        .query(
            "UPDATE deliveries SET \
               attempts = CASE WHEN status = 1 THEN attempts ELSE $3 END, \
               lane = CASE WHEN status = 1 THEN lane END, \
               status = 1, next_attempt_at = $4, trigger_type = 1, updated_at = $4, filter_error = NULL \
             WHERE msg_id = $1 AND endpoint_id = $2 AND lease_until IS NULL \
               AND EXISTS (SELECT 1 FROM messages WHERE id = $1 AND payload IS NOT NULL) \
             RETURNING id",
            &[&msg_id, &endpoint_id, &last, &now],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    if !ids.is_empty() {
        // On an ordered endpoint it keeps its place in the line, or joins its end.
        requeued(c, endpoint_id, ids, now).await?;
        return Ok(true);
    }
    Ok(c.query_opt(
        "SELECT 1 FROM deliveries WHERE msg_id = $1 AND endpoint_id = $2",
        &[&msg_id, &endpoint_id],
    )
    .await?
    .is_some())
}

/// Recover: failed deliveries of an endpoint in a time range get a fresh schedule (those whose
/// message still has its payload).
pub async fn recover(
    c: &impl GenericClient,
    endpoint_id: &str,
    since: i64,
    until: Option<i64>,
    now: i64,
) -> DbResult<usize> {
    super::lanes::lock(c, [endpoint_id]).await?;
    let mut ids: Vec<i64> = c
        .query(
            "UPDATE deliveries SET status = 1, attempts = 0, next_attempt_at = $4, \
                 trigger_type = 1, updated_at = $4, lane = NULL \
             WHERE endpoint_id = $1 AND status = 2 AND created_at >= $2 AND created_at < $3 \
               AND EXISTS (SELECT 1 FROM messages m WHERE m.id = deliveries.msg_id \
                   AND m.payload IS NOT NULL) \
             RETURNING id",
            &[&endpoint_id, &since, &until.unwrap_or(i64::MAX), &now],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    ids.sort_unstable();
    requeued(c, endpoint_id, ids, now).await
}

/// Replay missing: messages in a time range that this endpoint accepts and never attempted
/// (no delivery row, skipped while it was disabled, or filtered out by its payload filter
/// then, if it takes them now) are queued for it.
pub async fn replay_missing(
    c: &impl GenericClient,
    ep: &Endpoint,
    since: i64,
    until: Option<i64>,
    now: i64,
) -> DbResult<usize> {
    let rows = c
        .query(
            &format!(
                "SELECT {} FROM messages m \
                 LEFT JOIN deliveries d ON d.msg_id = m.id AND d.endpoint_id = $2 \
                 WHERE m.app_id = $1 AND m.created_at >= $3 AND m.created_at < $4 \
                   AND (d.id IS NULL OR d.status IN (5, 6)) \
                 ORDER BY m.created_at, m.id",
                messages::COLS
            ),
            &[&ep.app_id, &ep.id, &since, &until.unwrap_or(i64::MAX)],
        )
        .await?;
    let upsert = c
        .prepare_cached(
            "INSERT INTO deliveries (msg_id, endpoint_id, status, attempts, next_attempt_at, \
                 trigger_type, created_at, updated_at) \
             VALUES ($1, $2, 1, 0, $3, 1, $3, $3) \
             ON CONFLICT (msg_id, endpoint_id) DO UPDATE SET status = 1, attempts = 0, \
               next_attempt_at = $3, trigger_type = 1, updated_at = $3, filter_error = NULL, \
               lane = NULL \
             RETURNING id",
        )
        .await?;
    super::lanes::lock(c, [ep.id.as_str()]).await?;
    let mut ids = Vec::new();
    for r in &rows {
        let m = messages::from_row(r)?;
        // A message whose payload is gone cannot be sent again.
        if m.payload.is_some() && ep.takes(&m) {
            ids.push(c.query_one(&upsert, &[&m.id, &ep.id, &now]).await?.get(0));
        }
    }
    // In the order the messages were accepted.
    requeued(c, &ep.id, ids, now).await
}

/// How many messages were skipped while the endpoint was disabled.
pub async fn count_skipped(c: &impl GenericClient, endpoint_id: &str) -> DbResult<i64> {
    let stmt = c
        .prepare_cached("SELECT COUNT(*) FROM deliveries WHERE endpoint_id = $1 AND status = 5")
        .await?;
    Ok(c.query_one(&stmt, &[&endpoint_id]).await?.get(0))
}

pub async fn stats(
    c: &impl GenericClient,
    endpoint_id: &str,
    since: Option<i64>,
    until: Option<i64>,
) -> DbResult<Stats> {
    let rows = c
        .query(
            "SELECT status, lease_until IS NOT NULL, COUNT(*) FROM deliveries \
             WHERE endpoint_id = $1 AND created_at >= $2 AND created_at < $3 GROUP BY 1, 2",
            &[
                &endpoint_id,
                &since.unwrap_or(0),
                &until.unwrap_or(i64::MAX),
            ],
        )
        .await?;
    let mut s = Stats::default();
    for r in rows {
        s.add(r.get(0), r.get(1), r.get(2));
    }
    Ok(s)
}

pub async fn list_for_endpoint(
    c: &impl GenericClient,
    endpoint_id: &str,
    status: Option<DeliveryStatus>,
    filter: &MessageFilter,
    page: &PageQuery,
) -> DbResult<Page<EndpointMessage>> {
    let mut params: Vec<&(dyn ToSql + Sync)> = vec![&endpoint_id];
    let listed = status.map(DeliveryStatus::listed);
    let status_cond = if let Some([a, b]) = &listed {
        params.push(a);
        params.push(b);
        " AND d.status IN ($2, $3)"
    } else {
        ""
    };
    let (cond, extra) = filter_sql(filter, params.len() + 1);
    params.extend(extra.iter().map(|b| b.as_ref() as &(dyn ToSql + Sync)));
    super::paged(
        c,
        &format!(
            "SELECT {}, d.status, d.next_attempt_at, d.filter_error FROM deliveries d \
             JOIN messages m ON m.id = d.msg_id \
             WHERE d.endpoint_id = $1{status_cond}{cond} AND {{page}}",
            messages::COLS
        ),
        "m.id",
        &params,
        page,
        |r| {
            Ok(EndpointMessage {
                msg: from_row_at(r, 0)?,
                status: r.try_get(8)?,
                next_attempt_at: r.try_get(9)?,
                filter_error: r.try_get(10)?,
            })
        },
    )
    .await
}

pub async fn list_for_message(
    c: &impl GenericClient,
    key: &MainKey,
    msg_id: &str,
    page: &PageQuery,
) -> DbResult<Page<MessageEndpoint>> {
    let eps = super::paged(
        c,
        "SELECT d.endpoint_id, d.status, d.next_attempt_at, d.filter_error FROM deliveries d \
         WHERE d.msg_id = $1 AND {page}",
        "d.endpoint_id",
        &[&msg_id],
        page,
        |r| {
            Ok((
                r.try_get::<_, String>(0)?,
                r.try_get::<_, DeliveryStatus>(1)?,
                r.try_get::<_, Option<i64>>(2)?,
                r.try_get::<_, Option<String>>(3)?,
            ))
        },
    )
    .await?;
    let mut items = Vec::with_capacity(eps.items.len());
    for (id, status, next_attempt_at, filter_error) in eps.items {
        if let Some(endpoint) = super::endpoints::get_by_id(c, key, &id).await? {
            items.push(MessageEndpoint {
                endpoint,
                status,
                next_attempt_at,
                filter_error,
            });
        }
    }
    Ok(Page {
        items,
        done: eps.done,
    })
}
