//! Periodic upkeep: expire idempotency records, checkpoint the WAL.

use crate::db::{deliveries, idempotency, Db};
use crate::domain::time::now_ms;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const EVERY: Duration = Duration::from_secs(300);
const BATCH: usize = 5000;

pub async fn run(db: Db, idempotency_ttl: Duration, cancel: CancellationToken) {
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(EVERY) => {}
        }
        // A lease outlives any wait in memory; one that expired belongs to work that was lost
        // (a failed write of its result), so it is made due again.
        match db
            .write(|c| deliveries::release_expired_leases(c, now_ms()))
            .await
        {
            Ok(n) if n > 0 => tracing::warn!(deliveries = n, "released expired delivery leases"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "releasing expired leases failed"),
        }
        let cutoff = now_ms() - i64::try_from(idempotency_ttl.as_millis()).unwrap_or(i64::MAX / 4);
        // Small batches keep each write transaction short.
        loop {
            match db
                .write(move |c| idempotency::purge(c, cutoff, BATCH))
                .await
            {
                Ok(n) if n == BATCH => continue,
                Ok(_) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "idempotency purge failed");
                    break;
                }
            }
        }
    }
}
