//! Runs background tasks (bulk replays): steps each running one a batch at a time until
//! none is left, then waits to be woken (a task was created) or for the next look. On
//! several nodes each may step a task; a step locks its row, so batches never overlap.

use crate::db::Store;
use crate::delivery::Dispatcher;
use crate::domain::tasks::Task;
use crate::domain::time::now_ms;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// How often a node looks for tasks it was not woken for (another node's, or one left
/// running by a stop).
const LOOK_EVERY: Duration = Duration::from_secs(5);

#[derive(Clone)]
pub struct Tasks {
    store: Store,
    dispatcher: Dispatcher,
    wake: Arc<Notify>,
}

impl Tasks {
    pub fn new(store: Store, dispatcher: Dispatcher) -> Tasks {
        Tasks {
            store,
            dispatcher,
            wake: Arc::new(Notify::new()),
        }
    }

    /// A task was created: step it now.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Steps tasks until none is running, woken by [`wake`](Self::wake) or every few
    /// seconds.
    pub async fn run(self, cancel: CancellationToken) {
        loop {
            loop {
                match self.run_once().await {
                    Ok(0) => break,
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "a background task step failed; trying again");
                        break;
                    }
                }
                if cancel.is_cancelled() {
                    return;
                }
                // Steps share the store with ingest: let it in between batches.
                tokio::task::yield_now().await;
            }
            tokio::select! {
                () = cancel.cancelled() => return,
                () = self.wake.notified() => {}
                () = tokio::time::sleep(LOOK_EVERY) => {}
            }
        }
    }

    /// One step of every running task; how many were stepped.
    pub async fn run_once(&self) -> crate::db::DbResult<usize> {
        let mut stepped = 0;
        for id in self.store.running_tasks().await? {
            if let Some(t) = self.store.step_task(&id, now_ms()).await? {
                stepped += 1;
                self.announce(&t);
            }
        }
        Ok(stepped)
    }

    /// Wakes the dispatcher for what a step queued.
    fn announce(&self, t: &Task) {
        crate::service::endpoints::settle(&self.dispatcher, &t.endpoint_id, false, t.queued > 0);
    }
}
