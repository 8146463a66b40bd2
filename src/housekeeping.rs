//! Periodic upkeep: expire idempotency records, checkpoint the WAL.

use crate::db::{idempotency, Db};
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
