//! The dispatcher: takes claimed deliveries (from ingest, at once, or from the scheduler when
//! they fall due), sends them within the global and per-endpoint caps, and hands the results
//! to the writer in batches.

use super::client::Sender;
use super::targets::Targets;
use crate::config::DeliveryConfig;
use crate::db::deliveries::{self, AttemptResult, Claimed, Outcome};
use crate::db::Db;
use crate::domain::retry::RetrySchedule;
use crate::domain::{ids, time};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, Notify, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Leases outlive any in-memory wait; a restart releases them at once.
const LEASE: Duration = Duration::from_secs(3600);
const CLAIM_BATCH: usize = 1000;
const RESULT_BATCH: usize = 2000;

#[derive(Clone)]
pub struct Dispatcher {
    inner: Arc<Inner>,
}

struct Inner {
    db: Db,
    sender: Sender,
    schedule: RetrySchedule,
    cfg: DeliveryConfig,
    pub targets: Targets,
    global: Arc<Semaphore>,
    per_endpoint: Mutex<HashMap<String, EndpointSlot>>,
    queued: AtomicUsize,
    /// Deliveries wait in the database because memory was full.
    backlog: AtomicBool,
    wake: Notify,
    results: mpsc::UnboundedSender<Done>,
    tracker: TaskTracker,
    cancel: CancellationToken,
    pub counters: Counters,
}

struct EndpointSlot {
    permits: Arc<Semaphore>,
    queued: usize,
}

/// Totals for metrics.
#[derive(Default, Debug)]
pub struct Counters {
    pub succeeded: AtomicU64,
    pub failed: AtomicU64,
    pub in_flight: AtomicUsize,
}

enum Done {
    Attempt(Box<AttemptResult>),
    Skipped(i64),
}

impl Dispatcher {
    /// Starts the scheduler and result loops on `tracker`; they stop on `cancel`.
    pub fn start(
        db: Db,
        sender: Sender,
        cfg: DeliveryConfig,
        schedule: RetrySchedule,
        tracker: TaskTracker,
        cancel: CancellationToken,
    ) -> Dispatcher {
        let (tx, rx) = mpsc::unbounded_channel();
        let inner = Arc::new(Inner {
            db,
            sender,
            schedule,
            global: Arc::new(Semaphore::new(cfg.max_in_flight)),
            cfg,
            targets: Targets::default(),
            per_endpoint: Mutex::new(HashMap::new()),
            queued: AtomicUsize::new(0),
            backlog: AtomicBool::new(true),
            wake: Notify::new(),
            results: tx,
            tracker: tracker.clone(),
            cancel,
            counters: Counters::default(),
        });
        tracker.spawn(results_loop(inner.clone(), rx));
        tracker.spawn(scheduler_loop(inner.clone()));
        Dispatcher { inner }
    }

    pub fn lease_until(&self, now: i64) -> i64 {
        now + i64::try_from(LEASE.as_millis()).unwrap_or(i64::MAX / 4)
    }

    /// Whether ingest may hand this endpoint a delivery now rather than leave it queued.
    pub fn has_room(&self, endpoint_id: &str) -> bool {
        if self.inner.queued.load(Ordering::Relaxed) >= self.inner.cfg.max_queued {
            return false;
        }
        let slots = self.inner.slots();
        slots
            .get(endpoint_id)
            .is_none_or(|s| s.queued < self.inner.cfg.max_queued_per_endpoint)
    }

    /// Sends deliveries that were claimed by ingest.
    pub fn dispatch(&self, claimed: Vec<Claimed>) {
        self.inner.dispatch(claimed);
    }

    /// Tells the scheduler there is due work in the database.
    pub fn wake(&self) {
        self.inner.backlog.store(true, Ordering::Release);
        self.inner.wake.notify_one();
    }

    /// Forget cached sending details of an endpoint that changed.
    pub fn endpoint_changed(&self, endpoint_id: &str) {
        self.inner.targets.invalidate(endpoint_id);
    }

    /// Sends one request to an endpoint now, outside the queue, with the client, signing and
    /// SSRF guard that deliveries use (the console's Send Test Event). Returns the URL used
    /// and what came back; `None` when the endpoint no longer exists.
    pub async fn send_now(
        &self,
        endpoint_id: &str,
        msg_id: &str,
        body: &Arc<str>,
        now: i64,
    ) -> crate::db::DbResult<Option<(String, super::client::Sent)>> {
        let Some(target) = self.inner.targets.get(&self.inner.db, endpoint_id).await? else {
            return Ok(None);
        };
        let sent = self.inner.sender.send(&target, msg_id, body, now).await;
        Ok(Some((target.url.clone(), sent)))
    }

    pub fn counters(&self) -> &Counters {
        &self.inner.counters
    }

    pub fn queued(&self) -> usize {
        self.inner.queued.load(Ordering::Relaxed)
    }
}

impl Inner {
    fn slots(&self) -> std::sync::MutexGuard<'_, HashMap<String, EndpointSlot>> {
        self.per_endpoint
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn dispatch(self: &Arc<Self>, claimed: Vec<Claimed>) {
        for c in claimed {
            let permits = {
                let mut slots = self.slots();
                let slot = slots
                    .entry(c.endpoint_id.clone())
                    .or_insert_with(|| EndpointSlot {
                        permits: Arc::new(Semaphore::new(self.cfg.max_in_flight_per_endpoint)),
                        queued: 0,
                    });
                slot.queued += 1;
                slot.permits.clone()
            };
            self.queued.fetch_add(1, Ordering::Relaxed);
            let inner = self.clone();
            self.tracker.spawn(async move {
                let done = tokio::select! {
                    () = inner.cancel.cancelled() => None,
                    d = inner.deliver(&c, permits) => d,
                };
                inner.release(&c.endpoint_id);
                if let Some(done) = done {
                    let _ = inner.results.send(done);
                }
            });
        }
    }

    fn release(&self, endpoint_id: &str) {
        {
            let mut slots = self.slots();
            if let Some(slot) = slots.get_mut(endpoint_id) {
                slot.queued -= 1;
                if slot.queued == 0 {
                    slots.remove(endpoint_id);
                }
            }
        }
        let before = self.queued.fetch_sub(1, Ordering::Relaxed);
        if self.backlog.load(Ordering::Acquire) && before <= self.cfg.max_queued / 2 + 1 {
            self.wake.notify_one();
        }
    }

    async fn deliver(&self, c: &Claimed, permits: Arc<Semaphore>) -> Option<Done> {
        let target = match self.targets.get(&self.db, &c.endpoint_id).await {
            Ok(Some(t)) => t,
            // The endpoint was deleted: its deliveries went with it.
            Ok(None) => return None,
            Err(e) => {
                tracing::error!(error = %e, endpoint = %c.endpoint_id, "cannot load endpoint; will retry after restart");
                return None;
            }
        };
        if target.disabled {
            return Some(Done::Skipped(c.delivery_id));
        }
        let _endpoint_permit = permits.acquire_owned().await.ok()?;
        let _global_permit = self.global.clone().acquire_owned().await.ok()?;
        self.counters.in_flight.fetch_add(1, Ordering::Relaxed);
        let now = time::now_ms();
        let sent = self.sender.send(&target, &c.msg_id, &c.payload, now).await;
        self.counters.in_flight.fetch_sub(1, Ordering::Relaxed);
        let outcome = match sent.status {
            Some(s) if (200..300).contains(&s) => Outcome::Success,
            Some(410) => Outcome::Gone,
            _ => Outcome::Failure {
                retry_after: sent.retry_after,
            },
        };
        let counter = if matches!(outcome, Outcome::Success) {
            &self.counters.succeeded
        } else {
            &self.counters.failed
        };
        counter.fetch_add(1, Ordering::Relaxed);
        Some(Done::Attempt(Box::new(AttemptResult {
            delivery: c.clone(),
            attempt_id: ids::new_id(ids::ATTEMPT),
            url: target.url.clone(),
            outcome,
            status_code: sent.status.map_or(0, i64::from),
            response: sent.body,
            duration_ms: i64::try_from(sent.duration.as_millis()).unwrap_or(i64::MAX),
            error: sent.error,
            at: now,
        })))
    }
}

async fn results_loop(inner: Arc<Inner>, mut rx: mpsc::UnboundedReceiver<Done>) {
    let mut batch = Vec::with_capacity(RESULT_BATCH);
    while rx.recv_many(&mut batch, RESULT_BATCH).await > 0 {
        let mut attempts = Vec::with_capacity(batch.len());
        let mut skipped = Vec::new();
        for d in batch.drain(..) {
            match d {
                Done::Attempt(a) => attempts.push(*a),
                Done::Skipped(id) => skipped.push(id),
            }
        }
        let schedule = inner.schedule.clone();
        let result = inner
            .db
            .write(move |c| {
                let now = time::now_ms();
                for id in &skipped {
                    deliveries::skip(c, *id, now)?;
                }
                deliveries::record(c, &attempts, &schedule)
            })
            .await;
        match result {
            Ok(rec) => {
                for ep in &rec.disabled {
                    inner.targets.invalidate(ep);
                }
                if rec.next_due.is_some() {
                    inner.wake.notify_one();
                }
            }
            // The leases stay; a restart makes these deliveries due again (at least once).
            Err(e) => tracing::error!(error = %e, "cannot record delivery results"),
        }
    }
}

async fn scheduler_loop(inner: Arc<Inner>) {
    match inner.db.write(deliveries::release_all_leases).await {
        Ok(n) if n > 0 => tracing::info!(deliveries = n, "released leases of a previous run"),
        Ok(_) => {}
        Err(e) => tracing::error!(error = %e, "cannot release old leases"),
    }
    loop {
        let room = inner
            .cfg
            .max_queued
            .saturating_sub(inner.queued.load(Ordering::Relaxed));
        let mut full = room == 0;
        if room > 0 {
            let limit = room.min(CLAIM_BATCH);
            let busy: Vec<String> = inner
                .slots()
                .iter()
                .filter(|(_, s)| s.queued >= inner.cfg.max_queued_per_endpoint)
                .map(|(k, _)| k.clone())
                .collect();
            let now = time::now_ms();
            let lease_until = now + i64::try_from(LEASE.as_millis()).unwrap_or(i64::MAX / 4);
            match inner
                .db
                .write(move |c| deliveries::claim_due(c, now, limit, lease_until, &busy))
                .await
            {
                Ok(claimed) => {
                    full = claimed.len() == limit;
                    inner.dispatch(claimed);
                }
                Err(e) => tracing::error!(error = %e, "cannot claim due deliveries"),
            }
        }
        if full && room > 0 {
            inner.backlog.store(true, Ordering::Release);
            continue;
        }
        let sleep = if full {
            inner.backlog.store(true, Ordering::Release);
            Duration::from_secs(60)
        } else {
            match inner.db.read(deliveries::next_due).await {
                // Due but not claimed: every such delivery's endpoint is busy. Wait for a
                // delivery to finish (which wakes us) rather than spin.
                Ok(Some(due)) if due <= time::now_ms() => {
                    inner.backlog.store(true, Ordering::Release);
                    Duration::from_secs(1)
                }
                Ok(Some(due)) => {
                    inner.backlog.store(false, Ordering::Release);
                    Duration::from_millis(u64::try_from(due - time::now_ms()).unwrap_or(0).max(1))
                }
                Ok(None) => {
                    inner.backlog.store(false, Ordering::Release);
                    Duration::from_secs(3600)
                }
                Err(e) => {
                    tracing::error!(error = %e, "cannot read the next due time");
                    Duration::from_secs(1)
                }
            }
        };
        tokio::select! {
            () = inner.cancel.cancelled() => break,
            () = inner.wake.notified() => {}
            () = tokio::time::sleep(sleep.min(Duration::from_secs(3600))) => {}
        }
    }
}
