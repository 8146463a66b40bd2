//! The dispatcher: takes claimed deliveries (from ingest, at once, or from the scheduler when
//! they fall due), sends them within the global and per-endpoint caps, and hands the results
//! to the writer in batches.
//!
//! A delivery takes, in order: a place among its endpoint's in-flight slots, admission by the
//! endpoint's pacing (rate limit, slow-down after 429/502/503/504), then a global in-flight
//! permit. So waiting for one endpoint's pace holds none of the global capacity and never
//! delays other endpoints.
//!
//! Ingest hands its deliveries over on the HTTP worker that took the message, and they run
//! there: no thread hop while the workers have time. When ingest saturates the workers (more
//! messages being stored at once than `DeliveryConfig::busy_ingest`, and for a second after),
//! they run on their own threads instead ([`delivery_runtime`]): on a worker each would wait
//! behind every request the worker holds, an endpoint's freed in-flight slot idle until then,
//! and delivery would fall behind what is accepted.
//!
//! One file because claiming, pacing admission, sending and recording share one `Inner` and
//! its invariants (every claimed delivery is released exactly once); the pacing rules and the
//! HTTP client live in their own modules.

use super::client::Sender;
use super::expunges::Expunges;
use super::pacing::{Admit, GiveBack, Pace, Pacing};
use super::targets::Targets;
use crate::config::DeliveryConfig;
use crate::db::{AttemptResult, Claimed, Outcome, PeerSignal, Store};
use crate::domain::ids;
use crate::domain::retry::RetrySchedule;
use crate::metrics::{Counter, Histogram};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, Notify, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Claims are leased. While this process lives it finishes every claim it holds (results are
/// written, retrying if need be); at start, the leases of a previous process are released.
const LEASE: Duration = Duration::from_secs(3600);
const CLAIM_BATCH: usize = 1000;
const RESULT_BATCH: usize = 2000;
/// How often the scheduler drops the idle pacing state of endpoints with nothing queued.
const PRUNE_EVERY: Duration = Duration::from_secs(10);

/// How long ingest counts as saturating the workers after it last did.
const BUSY_FOR_MS: u64 = 1000;

#[derive(Clone)]
pub struct Dispatcher {
    inner: Arc<Inner>,
    /// The scheduler and result loops, awaited by `shutdown`.
    loops: Arc<Mutex<Loops>>,
}

#[derive(Default)]
struct Loops {
    scheduler: Option<JoinHandle<()>>,
    results: Option<JoinHandle<()>>,
}

struct Inner {
    store: Store,
    sender: Sender,
    schedule: Arc<RetrySchedule>,
    cfg: DeliveryConfig,
    pub targets: Targets,
    global: Arc<Semaphore>,
    per_endpoint: Mutex<HashMap<String, EndpointSlot>>,
    queued: AtomicUsize,
    /// Messages being stored now (ingest requests between start and hand-over).
    ingesting: AtomicUsize,
    /// Until when (ms since `born`) ingest counts as saturating the HTTP workers: it last had
    /// more than `cfg.busy_ingest` messages being stored at once `BUSY_FOR_MS` before.
    busy_until: AtomicU64,
    /// Messages' content deleted (here or on another node): a delivery claimed before one
    /// that may be of its message makes sure its own is still to be sent.
    expunges: Expunges,
    born: Instant,
    /// Results handed to the result loop and not yet recorded.
    unrecorded: AtomicUsize,
    /// Deliveries wait in the database because memory was full.
    backlog: AtomicBool,
    wake: Notify,
    results: mpsc::UnboundedSender<Done>,
    /// One task per claimed delivery.
    deliveries: TaskTracker,
    /// Stop claiming and starting deliveries (shutdown has begun).
    cancel: CancellationToken,
    /// Drop the requests still in flight (the grace period is over).
    abort: CancellationToken,
    /// Every delivery task has ended: the result loop writes what is left and stops.
    finished: CancellationToken,
    pub counters: Counters,
}

struct EndpointSlot {
    permits: Arc<Semaphore>,
    pacing: Arc<Pacing>,
    queued: usize,
}

/// Totals for metrics.
#[derive(Debug)]
pub struct Counters {
    /// Attempts answered 2xx.
    pub succeeded: Counter,
    /// Attempts that failed (non-2xx other than 410, timeout, connection error).
    pub failed: Counter,
    /// Attempts answered 410 Gone (the endpoint is disabled).
    pub gone: Counter,
    /// Claimed deliveries not attempted because their endpoint was disabled meanwhile.
    pub skipped: Counter,
    /// Deliveries from ingest run on the delivery threads (ingest saturated the workers).
    pub offloaded: Counter,
    /// Claimed deliveries handed back unsent: their endpoint could not be read (a database
    /// outage) for `db_patience`.
    pub handed_back: Counter,
    /// Results the database refused even without their attempt: not written, their
    /// deliveries left leased.
    pub results_not_written: Counter,
    pub in_flight: AtomicUsize,
    /// Duration of each attempt, in µs.
    pub attempt_latency: Histogram,
}

impl Default for Counters {
    fn default() -> Self {
        Counters {
            succeeded: Counter::default(),
            failed: Counter::default(),
            gone: Counter::default(),
            skipped: Counter::default(),
            offloaded: Counter::default(),
            handed_back: Counter::default(),
            results_not_written: Counter::default(),
            in_flight: AtomicUsize::new(0),
            attempt_latency: Histogram::latency(),
        }
    }
}

enum Done {
    Attempt(Box<AttemptResult>),
    Skipped(Box<Claimed>),
    /// Not sent: one before it in its ordered endpoint's line was not delivered.
    Released(Box<Claimed>),
}

impl Done {
    /// Whether the next of an ordered line may follow: this one was delivered (or not sent
    /// because the endpoint is disabled, as the rest will not be either).
    fn lets_next_go(&self) -> bool {
        match self {
            Done::Attempt(a) => matches!(a.outcome, Outcome::Success),
            Done::Skipped(_) => true,
            Done::Released(_) => false,
        }
    }
}

/// Results sorted for the store: attempts, skipped and released deliveries.
#[derive(Default)]
struct Results {
    attempts: Vec<AttemptResult>,
    skipped: Vec<Claimed>,
    released: Vec<Claimed>,
    /// What the database refused of these results so far, when they are being written again
    /// with less.
    refused: Refused,
}

/// How much of a result the database has refused (see [`record_results`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
enum Refused {
    #[default]
    Nothing,
    /// The result as sent: it is written again without what the receiver sent back.
    Whole,
    /// Without the receiver's response and headers too: only what it does to its delivery
    /// is written, not the attempt.
    Stripped,
}

impl Results {
    /// The results in two halves, in the order the store writes them (skipped, released,
    /// then attempts).
    fn halves(self) -> [Results; 2] {
        let refused = self.refused;
        let mid = self.len() / 2;
        let mut out = [Results::default(), Results::default()];
        let items = (self.skipped.into_iter().map(|d| Done::Skipped(Box::new(d))))
            .chain(
                self.released
                    .into_iter()
                    .map(|d| Done::Released(Box::new(d))),
            )
            .chain(
                self.attempts
                    .into_iter()
                    .map(|a| Done::Attempt(Box::new(a))),
            );
        for (i, d) in items.enumerate() {
            out[usize::from(i >= mid)].push(d);
        }
        out.map(|r| Results { refused, ..r })
    }

    /// The same results with less to write: first without what the receiver sent back
    /// (response, headers), then without the attempts at all.
    fn less(mut self) -> Results {
        self.refused = match self.refused {
            Refused::Nothing => Refused::Whole,
            _ => Refused::Stripped,
        };
        for a in &mut self.attempts {
            a.response.clear();
            a.request_headers.clear();
            a.response_headers.clear();
            a.logged = self.refused == Refused::Whole;
        }
        self
    }

    fn push(&mut self, d: Done) {
        match d {
            Done::Attempt(a) => self.attempts.push(*a),
            Done::Skipped(d) => self.skipped.push(*d),
            Done::Released(d) => self.released.push(*d),
        }
    }

    fn len(&self) -> usize {
        self.attempts.len() + self.skipped.len() + self.released.len()
    }
}

/// What is sent as one: a claimed delivery, with those of its ordered endpoint's line claimed
/// behind it (none for an endpoint that is not ordered), sent one after the other.
struct Unit {
    first: Claimed,
    behind: Vec<Claimed>,
}

/// An endpoint's in-flight permits and pacing, as a delivery entering the dispatcher takes
/// them (see [`Inner::enter`]).
type Slot = (Arc<Semaphore>, Arc<Pacing>);

/// One of an endpoint's places, held by a delivery; as it is given back, whichever way the
/// delivery ends, a lent place is taken back or one more lent ([`Pacing::give_back`]).
struct Place {
    permit: Option<OwnedSemaphorePermit>,
    permits: Arc<Semaphore>,
    pacing: Arc<Pacing>,
    global: Arc<Semaphore>,
}

impl Drop for Place {
    fn drop(&mut self) {
        let Some(permit) = self.permit.take() else {
            return;
        };
        match self.pacing.give_back(self.global.available_permits()) {
            GiveBack::Keep => {}
            GiveBack::Forget => permit.forget(),
            GiveBack::LendOneMore => self.permits.add_permits(1),
        }
    }
}

/// Claimed deliveries as units (those behind the first of a line come right after it).
fn units(claimed: Vec<Claimed>) -> Vec<Unit> {
    let mut units: Vec<Unit> = Vec::with_capacity(claimed.len());
    for c in claimed {
        match units.last_mut() {
            Some(u)
                if c.lane.is_some()
                    && u.first.lane.is_some_and(|first| c.lane > Some(first))
                    && u.first.endpoint_id == c.endpoint_id =>
            {
                u.behind.push(c);
            }
            _ => units.push(Unit {
                first: c,
                behind: Vec::new(),
            }),
        }
    }
    units
}

impl Dispatcher {
    /// Starts the scheduler and result loops on `tracker`. Cancelling `cancel` stops claiming;
    /// `shutdown` does that, waits for the deliveries in flight and ends both loops.
    pub fn start(
        store: Store,
        sender: Sender,
        mut cfg: DeliveryConfig,
        schedule: RetrySchedule,
        tracker: TaskTracker,
        cancel: CancellationToken,
    ) -> Dispatcher {
        let (tx, rx) = mpsc::unbounded_channel();
        let shared = store.is_shared();
        if shared {
            // Among several nodes, a node claims only what it can send soon (twice what it
            // may have in flight) and leaves the rest to the others.
            cfg.max_queued = cfg.max_queued.min(2 * cfg.max_in_flight).max(1);
            cfg.max_queued_per_endpoint = cfg
                .max_queued_per_endpoint
                .min(2 * cfg.in_flight_share())
                .max(1);
        }
        let inner = Arc::new(Inner {
            store,
            sender,
            schedule: Arc::new(schedule),
            global: Arc::new(Semaphore::new(cfg.max_in_flight)),
            cfg,
            // Other nodes change endpoints too: their signals invalidate, and entries expire
            // within a second in case one is missed.
            targets: Targets::with_ttl(shared.then_some(Duration::from_secs(1))),
            per_endpoint: Mutex::new(HashMap::new()),
            queued: AtomicUsize::new(0),
            ingesting: AtomicUsize::new(0),
            busy_until: AtomicU64::new(0),
            expunges: Expunges::default(),
            born: Instant::now(),
            unrecorded: AtomicUsize::new(0),
            backlog: AtomicBool::new(true),
            wake: Notify::new(),
            results: tx,
            deliveries: TaskTracker::new(),
            cancel,
            abort: CancellationToken::new(),
            finished: CancellationToken::new(),
            counters: Counters::default(),
        });
        let loops = Loops {
            results: Some(tracker.spawn(results_loop(inner.clone(), rx))),
            scheduler: Some(tracker.spawn(scheduler_loop(inner.clone()))),
        };
        Dispatcher {
            inner,
            loops: Arc::new(Mutex::new(loops)),
        }
    }

    /// Stops claiming (cancels the token given to `start`), lets the requests in flight
    /// finish until `deadline`, then drops the rest, and returns once every result is written.
    /// Deliveries claimed but not finished keep their lease, which the next start releases.
    /// Returns whether everything in flight finished in time. Calling it again waits for the
    /// deliveries handed over since (they start no request and keep their lease).
    pub async fn shutdown(&self, deadline: tokio::time::Instant) -> bool {
        let inner = &self.inner;
        inner.cancel.cancel();
        let scheduler = self.loops().scheduler.take();
        if let Some(h) = scheduler {
            // After this nothing claims or dispatches any more.
            let _ = h.await;
        }
        inner.deliveries.close();
        let in_time = tokio::time::timeout_at(deadline, inner.deliveries.wait())
            .await
            .is_ok();
        if !in_time {
            tracing::warn!(
                in_flight = inner.counters.in_flight.load(Ordering::Relaxed),
                "grace period over: dropping the deliveries still in flight (they will be sent again after restart)"
            );
            inner.abort.cancel();
            inner.deliveries.wait().await;
        }
        inner.finished.cancel();
        let results = self.loops().results.take();
        if let Some(h) = results {
            let _ = h.await;
        }
        in_time
    }

    fn loops(&self) -> std::sync::MutexGuard<'_, Loops> {
        self.loops
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn lease_until(&self, now: i64) -> i64 {
        now + crate::domain::time::duration_ms(LEASE)
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

    /// Counts a message being stored until the guard drops (see [`Inner::busy_until`]).
    pub fn ingesting(&self) -> Ingesting {
        self.inner.ingesting.fetch_add(1, Ordering::Relaxed);
        Ingesting(self.inner.clone())
    }

    /// How many times messages' content has been deleted so far: read before claiming, and
    /// handed to [`Dispatcher::dispatch`] with what was claimed.
    pub fn expunges(&self) -> u64 {
        self.inner.expunges.seen()
    }

    /// Message `msg_id`'s content was deleted and its deliveries canceled (here, and said to
    /// the other nodes): those already claimed are not sent.
    pub fn content_deleted(&self, msg_id: &str) {
        self.inner.expunges.note(Some(msg_id));
        self.inner
            .store
            .tell_peers(PeerSignal::Expunged(Some(msg_id.to_owned())));
    }

    /// Sends deliveries that were claimed by ingest (`expunges` read before): where they
    /// were claimed, unless ingest keeps the HTTP workers saturated.
    pub fn dispatch(&self, claimed: Vec<Claimed>, expunges: u64) {
        let inner = &self.inner;
        let now = u64::try_from(inner.born.elapsed().as_millis()).unwrap_or(u64::MAX);
        if inner.ingesting.load(Ordering::Relaxed) > inner.cfg.busy_ingest {
            inner
                .busy_until
                .fetch_max(now + BUSY_FOR_MS, Ordering::Relaxed);
        }
        let runtime = (now < inner.busy_until.load(Ordering::Relaxed))
            .then(delivery_runtime)
            .flatten();
        if runtime.is_some() {
            inner.counters.offloaded.inc_by(claimed.len() as u64);
        }
        inner.dispatch(claimed, runtime, expunges);
    }

    /// Tells the scheduler there is due work in the database (and the other nodes sharing
    /// it, which may have room for it).
    pub fn wake(&self) {
        self.wake_here();
        self.inner.store.tell_peers(PeerSignal::Wake);
    }

    fn wake_here(&self) {
        self.inner.backlog.store(true, Ordering::Release);
        self.inner.wake.notify_one();
    }

    /// Forget cached sending details of an endpoint that changed (here and on the other
    /// nodes).
    pub fn endpoint_changed(&self, endpoint_id: &str) {
        self.inner.targets_changed(endpoint_id);
        self.inner
            .store
            .tell_peers(PeerSignal::Endpoint(endpoint_id.to_owned()));
    }

    /// What another node said, as far as deliveries are concerned.
    pub fn heard(&self, s: &PeerSignal) {
        match s {
            PeerSignal::Wake => self.wake_here(),
            PeerSignal::Endpoint(id) => self.inner.targets_changed(id),
            PeerSignal::Resync => {
                self.inner.targets.clear();
                // A content deletion may be among the signals missed.
                self.inner.expunges.note(None);
                self.wake_here();
            }
            PeerSignal::SlowDown(id) => {
                if let Some(slot) = self.inner.slots().get(id) {
                    slot.pacing.slow_down_from_peer(Instant::now());
                }
            }
            PeerSignal::Expunged(msg_id) => self.inner.expunges.note(msg_id.as_deref()),
            PeerSignal::Tokens => {}
        }
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
        let Some(target) = self
            .inner
            .targets
            .get(&self.inner.store, endpoint_id)
            .await?
        else {
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

    /// Nothing held in memory: no delivery queued or in flight, every result recorded.
    pub fn idle(&self) -> bool {
        self.inner.queued.load(Ordering::Relaxed) == 0
            && self.inner.unrecorded.load(Ordering::Relaxed) == 0
    }

    /// One step, in the caller's time: claims what is due by the dispatcher's clock, sends it
    /// (within the same caps and pacing as always), records the results and returns how many
    /// deliveries it took. Tests step it after moving the clock, instead of sleeping to see
    /// whether something happens; it runs beside the background scheduler, which keeps going.
    pub async fn run_once(&self) -> crate::db::DbResult<usize> {
        let inner = &self.inner;
        let now = inner.cfg.clock.now_ms();
        let lease_until = now + crate::domain::time::duration_ms(LEASE);
        let expunges = inner.expunges.seen();
        let claimed = inner
            .store
            .claim_due(now, CLAIM_BATCH, lease_until, Vec::new())
            .await?;
        let n = claimed.len();
        let sends = units(claimed).into_iter().map(|unit| {
            let slot = inner.enter_unit(&unit);
            async move {
                let mut out = Vec::new();
                inner
                    .deliver_unit(unit, slot, expunges, |d| {
                        out.push(d);
                        true
                    })
                    .await;
                out
            }
        });
        let mut results = Results::default();
        for done in futures_util::future::join_all(sends)
            .await
            .into_iter()
            .flatten()
        {
            results.push(done);
        }
        record_results(inner, results).await;
        Ok(n)
    }
}

impl Inner {
    /// An endpoint changed: its cached sending details are dropped, and the deliveries
    /// waiting for its pace look again (at its new rate).
    fn targets_changed(&self, endpoint_id: &str) {
        self.targets.invalidate(endpoint_id);
        if let Some(slot) = self.slots().get(endpoint_id) {
            slot.pacing.change();
        }
    }

    fn slots(&self) -> std::sync::MutexGuard<'_, HashMap<String, EndpointSlot>> {
        self.per_endpoint
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Counts a delivery in for its endpoint: its in-flight permits and pacing (undone by
    /// [`Inner::release`]).
    fn enter(&self, endpoint_id: &str) -> Slot {
        let mut slots = self.slots();
        let slot = slots.entry(endpoint_id.to_owned()).or_insert_with(|| {
            // Nodes sharing the store share the endpoint's in-flight cap: each takes its
            // part (as of the last heartbeat; a slot lives while its endpoint is busy).
            let cap = self
                .cfg
                .in_flight_share()
                .div_ceil(self.store.live_nodes())
                .max(1);
            let mut pacing =
                Pacing::new(cap, self.cfg.slow_down_pause, self.cfg.max_slow_down_pause);
            if self.cfg.max_in_flight_per_endpoint.is_none() {
                pacing = pacing.borrowing(self.cfg.max_in_flight);
            }
            EndpointSlot {
                permits: Arc::new(Semaphore::new(cap)),
                pacing: Arc::new(pacing),
                queued: 0,
            }
        });
        slot.queued += 1;
        self.queued.fetch_add(1, Ordering::Relaxed);
        (slot.permits.clone(), slot.pacing.clone())
    }

    /// [`Inner::enter`] for every delivery of a unit (each is counted in, and released,
    /// once); they share their endpoint's slot.
    fn enter_unit(&self, unit: &Unit) -> Slot {
        for c in &unit.behind {
            self.enter(&c.endpoint_id);
        }
        self.enter(&unit.first.endpoint_id)
    }

    /// Starts a task per unit, on `runtime` or else on the current one.
    fn dispatch(
        self: &Arc<Self>,
        claimed: Vec<Claimed>,
        runtime: Option<&tokio::runtime::Handle>,
        expunges: u64,
    ) {
        for unit in units(claimed) {
            let slot = self.enter_unit(&unit);
            let inner = self.clone();
            let delivery = async move {
                let results = inner.clone();
                inner
                    .deliver_unit(unit, slot, expunges, move |done| {
                        results.unrecorded.fetch_add(1, Ordering::Relaxed);
                        if results.results.send(done).is_err() {
                            results.unrecorded.fetch_sub(1, Ordering::Relaxed);
                        }
                        !results.abort.is_cancelled()
                    })
                    .await;
            };
            match runtime {
                Some(runtime) => self.deliveries.spawn_on(delivery, runtime),
                None => self.deliveries.spawn(delivery),
            };
        }
    }

    /// Sends a unit (see [`units`]): a delivery, or an ordered line one after the other while
    /// each is delivered; the rest of a line after one that was not are released to wait
    /// again. Each result goes to `done`. Every delivery of the unit is counted out
    /// ([`Inner::release`]), sent or not; those neither sent nor released (shutdown) keep
    /// their lease for the next start.
    async fn deliver_unit(
        &self,
        unit: Unit,
        (permits, pacing): Slot,
        expunges: u64,
        mut done: impl FnMut(Done) -> bool,
    ) {
        let mut go_on = true;
        let mut held = false;
        for c in std::iter::once(unit.first).chain(unit.behind) {
            if go_on {
                let d = tokio::select! {
                    () = self.abort.cancelled() => None,
                    d = self.deliver(&c, permits.clone(), pacing.clone(), expunges) => d,
                };
                match d {
                    Some(d) => {
                        go_on = d.lets_next_go();
                        held = !go_on;
                        go_on &= done(d);
                    }
                    None => go_on = false,
                }
            } else if held {
                done(Done::Released(Box::new(c.clone())));
            }
            self.release(&c.endpoint_id);
        }
    }

    fn release(&self, endpoint_id: &str) {
        {
            let mut slots = self.slots();
            if let Some(slot) = slots.get_mut(endpoint_id) {
                slot.queued -= 1;
                // An endpoint still paced (rate or slow-down) keeps its state; the scheduler
                // drops it once it is idle.
                if slot.queued == 0 && slot.pacing.is_idle(Instant::now()) {
                    slots.remove(endpoint_id);
                }
            }
        }
        let before = self.queued.fetch_sub(1, Ordering::Relaxed);
        if self.backlog.load(Ordering::Acquire) && before <= self.cfg.max_queued / 2 + 1 {
            self.wake.notify_one();
        }
    }

    /// The endpoint of `c`'s sending details. `Err(None)`: it is gone (its deliveries went
    /// with it), or shutdown began (the lease keeps the delivery for the next start).
    /// `Err(Some(released))`: the database could not be read for `cfg.db_patience` (an
    /// outage or a failover is waited out that long); the delivery is claimed again later.
    async fn target(&self, c: &Claimed) -> Result<Arc<super::targets::Target>, Option<Done>> {
        let started = Instant::now();
        let mut wait = Duration::from_millis(200);
        loop {
            let e = match self.targets.get(&self.store, &c.endpoint_id).await {
                Ok(Some(t)) => return Ok(t),
                Ok(None) => return Err(None),
                Err(e) => e,
            };
            let left = self.cfg.db_patience.saturating_sub(started.elapsed());
            if left.is_zero() {
                tracing::error!(error = %e, endpoint = %c.endpoint_id, "cannot load endpoint; the delivery is released to be claimed again");
                self.counters.handed_back.inc();
                return Err(Some(Done::Released(Box::new(c.clone()))));
            }
            tracing::warn!(error = %e, endpoint = %c.endpoint_id, retry_in = ?wait.min(left), "cannot load endpoint");
            tokio::select! {
                () = self.cancel.cancelled() => return Err(None),
                () = tokio::time::sleep(wait.min(left)) => {}
            }
            wait = (wait * 2).min(Duration::from_secs(30));
        }
    }

    /// Whether this node may still send `c` (see `Store::still_holds`); `Err` when it may
    /// not. While the database cannot say, it waits (sending could repeat what another node
    /// sends).
    async fn still_holds(&self, c: &Claimed) -> Result<(), ()> {
        let mut wait = Duration::from_millis(200);
        loop {
            match self.store.still_holds(c).await {
                Ok(true) => return Ok(()),
                Ok(false) => {
                    tracing::debug!(
                        delivery = c.delivery_id,
                        "not sent: another node took it over"
                    );
                    return Err(());
                }
                Err(e) => {
                    tracing::warn!(error = %e, retry_in = ?wait, "cannot confirm this node's leases");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    /// One of the node's places in flight, and whether it was waited for (`Err(None)`: the
    /// dispatcher is closing).
    async fn node_place(&self) -> Result<(OwnedSemaphorePermit, bool), Option<Done>> {
        match self.global.clone().try_acquire_owned() {
            Ok(p) => Ok((p, false)),
            Err(_) => {
                let p = self
                    .global
                    .clone()
                    .acquire_owned()
                    .await
                    .map_err(|_| None)?;
                Ok((p, true))
            }
        }
    }

    /// How long until this node's turn to send to an endpoint limited to `rate` messages per
    /// second, reserved among the nodes sharing the store (none with one server, or when the
    /// reservation fails: the local pace still holds).
    async fn shared_turn(&self, endpoint_id: &str, rate: u32) -> Duration {
        match self.store.reserve_send(endpoint_id, rate).await {
            Ok(wait) => wait.unwrap_or_default(),
            Err(e) => {
                tracing::warn!(error = %e, "cannot reserve a send among the nodes");
                Duration::ZERO
            }
        }
    }

    /// The endpoint of `c` as it is now, after the delivery was claimed or waited (its rate,
    /// URL or state may have changed): `Err(Some(skipped))` when it is disabled, otherwise as
    /// [`Inner::target`].
    async fn target_after_wait(
        &self,
        c: &Claimed,
    ) -> Result<Arc<super::targets::Target>, Option<Done>> {
        let target = self.target(c).await?;
        self.unless_disabled(c, target)
    }

    /// `target`, or `c` skipped when the endpoint is disabled.
    fn unless_disabled(
        &self,
        c: &Claimed,
        target: Arc<super::targets::Target>,
    ) -> Result<Arc<super::targets::Target>, Option<Done>> {
        if target.disabled {
            self.counters.skipped.inc();
            return Err(Some(Done::Skipped(Box::new(c.clone()))));
        }
        Ok(target)
    }

    /// [`Inner::target_after_wait`] for a delivery holding one of the node's places: the
    /// database is read once, and should that fail, `known` is kept rather than the place
    /// held while the database is waited for.
    async fn target_while_placed(
        &self,
        c: &Claimed,
        known: &Arc<super::targets::Target>,
    ) -> Result<Arc<super::targets::Target>, Option<Done>> {
        let target = match self.targets.get(&self.store, &c.endpoint_id).await {
            Ok(Some(t)) => t,
            Ok(None) => return Err(None),
            Err(e) => {
                tracing::warn!(error = %e, endpoint = %c.endpoint_id, "cannot load endpoint; sending as last read");
                return Ok(known.clone());
            }
        };
        self.unless_disabled(c, target)
    }

    /// Whether `c` is still to be sent, once messages' content has been deleted since it was
    /// claimed (`expunges` then): `Err(Some(skipped))` when its own was (its delivery is
    /// canceled already), `Err(Some(released))` when that cannot be read (it is claimed
    /// again later).
    async fn still_to_send(&self, c: &Claimed, expunges: u64) -> Result<(), Option<Done>> {
        if !self.expunges.may_touch(expunges, &c.msg_id) {
            return Ok(());
        }
        match self.store.still_pending(c.delivery_id).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(Some(Done::Skipped(Box::new(c.clone())))),
            Err(e) => {
                tracing::warn!(error = %e, delivery = c.delivery_id, "cannot tell whether a delivery's content was deleted; it waits");
                Err(Some(Done::Released(Box::new(c.clone()))))
            }
        }
    }

    async fn deliver(
        &self,
        c: &Claimed,
        permits: Arc<Semaphore>,
        pacing: Arc<Pacing>,
        expunges: u64,
    ) -> Option<Done> {
        let mut target = match self.target_after_wait(c).await {
            Ok(target) => target,
            Err(done) => return done,
        };
        // Err(Some(done)): the endpoint was disabled while waiting; Err(None): it is gone.
        let admitted = async {
            // None free: the endpoint may be lent one more place, else this waits its turn.
            let (permit, waited) = match permits.clone().try_acquire_owned() {
                Ok(p) => (p, false),
                Err(_) => {
                    let _in_line = pacing.in_line();
                    if pacing.lend(self.global.available_permits()) {
                        permits.add_permits(1);
                    }
                    let p = permits.clone().acquire_owned().await.map_err(|_| None)?;
                    (p, true)
                }
            };
            let endpoint_permit = Place {
                permit: Some(permit),
                permits: permits.clone(),
                pacing: pacing.clone(),
                global: self.global.clone(),
            };
            if waited {
                target = self.target_after_wait(c).await?;
            }
            // One of the node's places, then the endpoint's pace: a delivery that waited for
            // a place is admitted (and takes from the endpoint's rate) as it leaves, so that
            // those that waited together do not leave together.
            let (paced, mut global_permit) = loop {
                let freed = pacing.freed();
                tokio::pin!(freed);
                freed.as_mut().enable();
                let changed = pacing.changed();
                tokio::pin!(changed);
                changed.as_mut().enable();
                let (global, waited) = self.node_place().await?;
                if waited {
                    target = self.target_while_placed(c, &target).await?;
                }
                match pacing.try_admit(target.rate_limit, Instant::now()) {
                    Admit::Go(p) => break (p, global),
                    Admit::WaitUntil(t) => {
                        drop(global);
                        tokio::select! {
                            () = tokio::time::sleep_until(tokio::time::Instant::from_std(t)) => {}
                            () = changed => {}
                        }
                    }
                    Admit::WaitForFree => {
                        drop(global);
                        freed.await;
                    }
                }
                target = self.target_after_wait(c).await?;
            };
            // Among several nodes the endpoint's rate holds for all of them: a send is
            // reserved in the database and waits for its turn, holding none of the node's
            // places. (Its turn is reserved once: should the node's places then all be
            // taken, it goes as soon as one frees, and may leave together with others.)
            if let Some(rate) = target.rate_limit {
                let wait = self.shared_turn(&c.endpoint_id, rate).await;
                if !wait.is_zero() {
                    drop(global_permit);
                    tokio::time::sleep(wait).await;
                    global_permit = self.node_place().await?.0;
                    target = self.target_while_placed(c, &target).await?;
                }
            }
            // Among several nodes, one paused past its lease may have been taken for dead:
            // what it claimed is then the others' to send.
            self.still_holds(c).await.map_err(|()| None)?;
            self.still_to_send(c, expunges).await?;
            Ok((endpoint_permit, paced, global_permit))
        };
        // Once shutdown has begun no new request starts; the lease keeps the delivery for
        // the next start.
        let (endpoint_permit, paced, global_permit) = tokio::select! {
            biased;
            () = self.cancel.cancelled() => return None,
            admitted = admitted => match admitted {
                Ok(p) => p,
                Err(done) => return done,
            },
        };
        self.counters.in_flight.fetch_add(1, Ordering::Relaxed);
        let now = self.cfg.clock.now_ms();
        let sent = self.sender.send(&target, &c.msg_id, &c.payload, now).await;
        self.counters.in_flight.fetch_sub(1, Ordering::Relaxed);
        if sent.status.is_some() {
            pacing.answered(sent.duration);
        }
        // Only an answer that slowed the endpoint down here is told to the other nodes.
        if paced.finish(Pace::of(sent.status), Instant::now()) {
            self.store
                .tell_peers(PeerSignal::SlowDown(c.endpoint_id.clone()));
        }
        drop(global_permit);
        drop(endpoint_permit);
        self.counters
            .attempt_latency
            .observe_duration(sent.duration);
        let outcome = if sent.is_success() {
            Outcome::Success
        } else if sent.status == Some(410) {
            Outcome::Gone
        } else {
            Outcome::Failure {
                retry_after: sent.retry_after,
            }
        };
        match outcome {
            Outcome::Success => self.counters.succeeded.inc(),
            Outcome::Gone => self.counters.gone.inc(),
            Outcome::Failure { .. } => self.counters.failed.inc(),
        };
        Some(Done::Attempt(Box::new(AttemptResult {
            delivery: c.clone(),
            attempt_id: ids::new_id(ids::ATTEMPT),
            url: target.url.clone(),
            outcome,
            status_code: sent.status.map_or(0, i64::from),
            response: sent.body,
            duration_ms: crate::domain::time::duration_ms(sent.duration),
            error: sent.error,
            at: now,
            request_headers: sent.request_headers,
            response_headers: sent.response_headers,
            schedule: target.policy.retry_schedule(&self.schedule).map(Arc::new),
            logged: true,
        })))
    }
}

/// A message being stored, counted while this lives.
pub struct Ingesting(Arc<Inner>);

impl Drop for Ingesting {
    fn drop(&mut self) {
        self.0.ingesting.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The runtime deliveries run on while ingest saturates the HTTP workers, one per process,
/// started when first needed: its own threads, half as many as the cores (at least one).
/// `None` (deliveries then stay where they are dispatched) only if they cannot be started.
fn delivery_runtime() -> Option<&'static tokio::runtime::Handle> {
    static RUNTIME: std::sync::OnceLock<Option<tokio::runtime::Runtime>> =
        std::sync::OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            let cores = std::thread::available_parallelism().map_or(1, usize::from);
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads((cores / 2).max(1))
                .thread_name("hookbox-deliver")
                .on_thread_start(super::client::mark_delivery_thread)
                .enable_all()
                .build()
                .inspect_err(|e| {
                    tracing::error!(error = %e, "cannot start the delivery threads; delivering on the HTTP workers");
                })
                .ok()
        })
        .as_ref()
        .map(tokio::runtime::Runtime::handle)
}

async fn results_loop(inner: Arc<Inner>, mut rx: mpsc::UnboundedReceiver<Done>) {
    let mut batch = Vec::with_capacity(RESULT_BATCH);
    loop {
        // Results queued before `finished` are all taken first (every delivery task has sent
        // its result before `finished` is cancelled).
        let n = tokio::select! {
            biased;
            n = rx.recv_many(&mut batch, RESULT_BATCH) => n,
            () = inner.finished.cancelled() => 0,
        };
        if n == 0 {
            break;
        }
        let mut results = Results::default();
        for d in batch.drain(..) {
            results.push(d);
        }
        let n = results.len();
        record_results(&inner, results).await;
        inner.unrecorded.fetch_sub(n, Ordering::Relaxed);
    }
}

/// Writes a batch of results, retrying while the database cannot write (a full disk, say):
/// the deliveries stay leased meanwhile, so nothing else sends them again. When the database
/// refuses the data itself (the same write would fail again), the batch is written in halves,
/// and halves of those, so that one result cannot hold back the others. A result refused alone
/// is written again without what the receiver sent back (response, headers), and if that is
/// refused too, without its attempt: its delivery still moves on (done, retried or failed).
/// Should even that be refused, the result is given up (logged) and its delivery stays leased.
async fn record_results(inner: &Arc<Inner>, results: Results) {
    let mut parts = vec![results];
    let mut backoff = Duration::from_millis(100);
    while let Some(part) = parts.pop() {
        let refused = part.refused;
        let attempts = Arc::new(part.attempts);
        let skipped = Arc::new(part.skipped);
        let released = Arc::new(part.released);
        let result = inner
            .store
            .record_attempts(
                attempts.clone(),
                skipped.clone(),
                released.clone(),
                inner.schedule.clone(),
                inner.cfg.clock.clone(),
            )
            .await;
        let part = Results {
            attempts: Arc::unwrap_or_clone(attempts),
            skipped: Arc::unwrap_or_clone(skipped),
            released: Arc::unwrap_or_clone(released),
            refused,
        };
        match result {
            Ok((rec, announced)) => {
                for ep in &rec.disabled {
                    inner.targets.invalidate(ep);
                }
                // Released deliveries are due again at once.
                if rec.next_due.is_some() || announced || !part.released.is_empty() {
                    inner.wake.notify_one();
                }
                backoff = Duration::from_millis(100);
            }
            Err(e) if e.refuses_data() && part.len() > 1 => {
                tracing::warn!(error = %e, results = part.len(), "the database refused a batch of results; writing it in halves");
                let [first, second] = part.halves();
                parts.push(second);
                parts.push(first);
            }
            Err(e) if e.refuses_data() && part.refused < Refused::Stripped => {
                tracing::warn!(error = %e, "the database refused a result; writing it with less");
                parts.push(part.less());
            }
            Err(e) if e.refuses_data() => {
                // Not even what it does to its delivery can be written: writing it again would
                // hold back every result after it, for good. Its delivery stays leased (sent
                // again after a restart, or by another node once this one has left).
                let deliveries: Vec<i64> = part
                    .attempts
                    .iter()
                    .map(|a| a.delivery.delivery_id)
                    .chain(
                        part.skipped
                            .iter()
                            .chain(&part.released)
                            .map(|c| c.delivery_id),
                    )
                    .collect();
                inner
                    .counters
                    .results_not_written
                    .inc_by(deliveries.len() as u64);
                tracing::error!(error = %e, ?deliveries, "the database refuses this result even without its attempt; it is not written, and its delivery stays leased");
            }
            Err(e) => {
                tracing::error!(error = %e, retry_in = ?backoff, "cannot record delivery results");
                tokio::select! {
                    // Unrecorded deliveries stay leased: the next start (SQLite) or the other
                    // nodes (PostgreSQL, once this node has left) send them again.
                    () = inner.cancel.cancelled() => return,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(30));
                parts.push(part);
            }
        }
    }
}

async fn scheduler_loop(inner: Arc<Inner>) {
    match inner
        .store
        .release_all_leases(inner.cfg.clock.now_ms())
        .await
    {
        Ok(n) if n > 0 => tracing::info!(deliveries = n, "released leases of a previous run"),
        Ok(_) => {}
        Err(e) => tracing::error!(error = %e, "cannot release old leases"),
    }
    let mut pruned = Instant::now();
    while !inner.cancel.is_cancelled() {
        let room = inner
            .cfg
            .max_queued
            .saturating_sub(inner.queued.load(Ordering::Relaxed));
        let mut full = room == 0;
        if pruned.elapsed() >= PRUNE_EVERY {
            // Forget the pacing of endpoints with nothing queued once it has nothing to remember.
            let now = Instant::now();
            inner
                .slots()
                .retain(|_, s| s.queued > 0 || !s.pacing.is_idle(now));
            pruned = now;
        }
        if room > 0 {
            let limit = room.min(CLAIM_BATCH);
            let busy: Vec<String> = inner
                .slots()
                .iter()
                .filter(|(_, s)| s.queued >= inner.cfg.max_queued_per_endpoint)
                .map(|(k, _)| k.clone())
                .collect();
            let now = inner.cfg.clock.now_ms();
            let lease_until = now + crate::domain::time::duration_ms(LEASE);
            let expunges = inner.expunges.seen();
            match inner.store.claim_due(now, limit, lease_until, busy).await {
                Ok(claimed) => {
                    full = claimed.len() >= limit;
                    inner.dispatch(claimed, None, expunges);
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
            match inner.store.next_due().await {
                // Due but not claimed: every such delivery's endpoint is busy. Wait for a
                // delivery to finish (which wakes us) rather than spin.
                Ok(Some(due)) if due <= inner.cfg.clock.now_ms() => {
                    inner.backlog.store(true, Ordering::Release);
                    Duration::from_secs(1)
                }
                Ok(Some(due)) => {
                    inner.backlog.store(false, Ordering::Release);
                    Duration::from_millis(
                        u64::try_from(due - inner.cfg.clock.now_ms())
                            .unwrap_or(0)
                            .max(1),
                    )
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
