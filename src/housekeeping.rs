//! Periodic upkeep: disable endpoints that stay dead, purge expired payloads, expire
//! idempotency records.

use crate::config::Config;
use crate::db::{deliveries, endpoints, idempotency, messages, Db};
use crate::delivery::Dispatcher;
use crate::domain::time::{duration_ms, now_ms};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Rows touched per write transaction: small batches keep every write lock short.
const BATCH: usize = 500;

pub async fn run(db: Db, dispatcher: Dispatcher, cfg: &Config, cancel: CancellationToken) {
    let every = cfg.retention.sweep_interval.min(Duration::from_secs(300));
    let idempotency_ttl = duration_ms(cfg.api.idempotency_ttl);
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
        if !cfg.delivery.auto_disable_after.is_zero() {
            disable_dead_endpoints(
                &db,
                &dispatcher,
                duration_ms(cfg.delivery.auto_disable_after),
            )
            .await;
        }
        sweep(&db, idempotency_ttl).await;
    }
}

/// Disables endpoints whose every attempt has failed for `after` ms, says why, skips what
/// they had pending (Enable can replay it) and tells the operator.
pub async fn disable_dead_endpoints(db: &Db, dispatcher: &Dispatcher, after: i64) {
    let result = db
        .write(move |c| {
            let now = now_ms();
            let dead = endpoints::failing_since_before(c, now - after)?;
            let mut notices = Vec::with_capacity(dead.len());
            for (id, since) in &dead {
                let reason = format!(
                    "every delivery failed for {} (since {})",
                    humantime::format_duration(std::time::Duration::from_millis(
                        u64::try_from(after).unwrap_or(0)
                    )),
                    crate::domain::time::format_ms(*since)
                );
                if !endpoints::disable(c, id, &reason, now)? {
                    continue;
                }
                notices.push(deliveries::Notice::Disabled {
                    endpoint_id: id.clone(),
                    reason,
                    at: *since,
                });
            }
            let announced = crate::operational::announce(c, &notices, now)?;
            Ok((dead, announced))
        })
        .await;
    match result {
        Ok((dead, announced)) => {
            for (id, _) in &dead {
                tracing::warn!(endpoint = %id, "endpoint disabled: every delivery failed");
                dispatcher.endpoint_changed(id);
            }
            if announced {
                dispatcher.wake();
            }
        }
        Err(e) => tracing::warn!(error = %e, "auto-disable sweep failed"),
    }
}

/// One pass of every task.
pub async fn sweep(db: &Db, idempotency_ttl: i64) {
    let purged = db
        .write_batches("payload purge", BATCH, |c| {
            messages::purge_expired(c, now_ms(), BATCH)
        })
        .await;
    if purged > 0 {
        tracing::info!(messages = purged, "purged expired payloads");
        if let Err(e) = db.write(|c| messages::release_free_pages(c, 2000)).await {
            tracing::warn!(error = %e, "incremental vacuum failed");
        }
    }
    let cutoff = now_ms() - idempotency_ttl;
    db.write_batches("idempotency purge", BATCH, move |c| {
        idempotency::purge(c, cutoff, BATCH)
    })
    .await;
}
