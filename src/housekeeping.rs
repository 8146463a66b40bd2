//! Periodic upkeep: disable endpoints that stay dead, purge expired payloads, expire
//! idempotency records.

use crate::config::Config;
use crate::db::Store;
use crate::delivery::Dispatcher;
use crate::domain::time::{duration_ms, now_ms};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub async fn run(store: Store, dispatcher: Dispatcher, cfg: &Config, cancel: CancellationToken) {
    let every = cfg.retention.sweep_interval.min(Duration::from_secs(300));
    let idempotency_ttl = duration_ms(cfg.api.idempotency_ttl);
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
        // Among several nodes, one does each round.
        match store.take_turn("housekeeping", duration_ms(every)).await {
            Ok(true) => {}
            Ok(false) => continue,
            Err(e) => {
                tracing::warn!(error = %e, "cannot take the housekeeping round");
                continue;
            }
        }
        // Endpoints may have their own period, even when the server's is off.
        disable_dead_endpoints(
            &store,
            &dispatcher,
            duration_ms(cfg.delivery.auto_disable_after),
            cfg.delivery.clock.now_ms(),
        )
        .await;
        sweep(&store, idempotency_ttl).await;
    }
}

/// Disables endpoints whose every attempt has failed for their auto-disable period (else the
/// server's `after` ms) by `now`, says why, skips what they had pending (Enable can replay
/// it) and tells the operator.
pub async fn disable_dead_endpoints(store: &Store, dispatcher: &Dispatcher, after: i64, now: i64) {
    match crate::service::endpoints::disable_failing(store, dispatcher, after, now).await {
        Ok(dead) => {
            for id in &dead {
                tracing::warn!(endpoint = %id, "endpoint disabled: every delivery failed");
            }
        }
        Err(e) => tracing::warn!(error = %e, "auto-disable sweep failed"),
    }
}

/// One pass of every task.
pub async fn sweep(store: &Store, idempotency_ttl: i64) {
    let purged = store.purge_expired_payloads(now_ms()).await;
    if purged > 0 {
        tracing::info!(messages = purged, "purged expired payloads");
    }
    store.purge_idempotency(now_ms() - idempotency_ttl).await;
}
