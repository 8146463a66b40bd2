//! Per-endpoint pacing, kept by the dispatcher beside each endpoint's in-flight slots:
//!
//! - the endpoint's rate limit (`throttleRate`, messages per second) as a token bucket that
//!   holds one second's worth of tokens, so a burst of up to `rate` goes out at once and then
//!   one message every `1/rate` s;
//! - a slow-down after 429, 502, 503 or 504: the endpoint pauses (doubling on each further
//!   slow-down, up to a maximum) and its concurrency is halved; each success adds one to the
//!   concurrency again and halves the next pause, down to the base;
//! - borrowing, where the endpoint's in-flight cap is the default rather than one a user set:
//!   an endpoint that answers quickly may send more than its share while the node has slots
//!   to spare (see [`Pacing::lend`]).
//!
//! Deliveries wait here; nothing is dropped. The logic takes the time as an argument so that
//! it is tested without sleeping.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

pub struct Pacing {
    state: Mutex<State>,
    /// Signalled whenever a request finishes, so deliveries waiting for room look again.
    freed: Notify,
    /// Signalled when the endpoint changed, so deliveries waiting for its pace (its rate may
    /// be another now) look again.
    changed: Notify,
    max_in_flight: usize,
    /// Whether, and up to how many in flight in all, the endpoint may borrow beyond
    /// `max_in_flight`.
    borrow_up_to: Option<usize>,
    base_pause: Duration,
    max_pause: Duration,
}

/// Answers that take longer than this on average (an endpoint's recent answers, weighted to
/// the latest) end borrowing: a slow endpoint keeps to its share.
pub const QUICK_ANSWER: Duration = Duration::from_millis(500);

struct State {
    in_flight: usize,
    /// Requests allowed in flight now, places lent aside: at most `max_in_flight`, at least
    /// 1. While it is whole, the places lent are allowed on top of it.
    limit: usize,
    /// Places lent beyond `limit` ([`Pacing::lend`]).
    borrowed: usize,
    /// Deliveries waiting for one of the endpoint's places ([`Pacing::in_line`]).
    in_line: usize,
    /// How long answers have taken lately (`None`: no answer yet).
    answer_time: Option<Duration>,
    bucket: Option<Bucket>,
    /// Nothing is sent before this.
    paused_until: Option<Instant>,
    /// The pause the next slow-down answer imposes.
    pause: Duration,
    /// When the last slow-down was applied: answers to requests sent before it do not
    /// compound it (they were already in flight when the endpoint was slowed down).
    slowed_at: Option<Instant>,
}

struct Bucket {
    rate: u32,
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn new(rate: u32, now: Instant) -> Bucket {
        Bucket {
            rate,
            tokens: f64::from(rate),
            at: now,
        }
    }

    fn capacity(&self) -> f64 {
        f64::from(self.rate)
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * f64::from(self.rate)).min(self.capacity());
        self.at = now;
    }

    /// Takes a token, or says how long until one is there.
    fn take(&mut self, now: Instant) -> Result<(), Duration> {
        self.refill(now);
        // A hair of tolerance so that float rounding never makes a due token wait again.
        if self.tokens >= 1.0 - 1e-9 {
            self.tokens = (self.tokens - 1.0).max(0.0);
            Ok(())
        } else {
            Err(Duration::from_secs_f64(
                (1.0 - self.tokens) / f64::from(self.rate),
            ))
        }
    }
}

/// What a delivery may do now.
pub enum Admit {
    /// Send; the permit counts the request as in flight until it is dropped.
    Go(Permit),
    /// Look again at this time (a pause, or the next token of the rate limit).
    WaitUntil(Instant),
    /// The endpoint's current concurrency is used up: look again when a request finishes.
    WaitForFree,
}

/// How an answer affects the endpoint's pace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pace {
    /// 2xx: recover a step.
    Success,
    /// 429, 502, 503, 504: slow down.
    SlowDown,
    /// Anything else leaves the pace as it is.
    Neutral,
}

impl Pace {
    pub fn of(status: Option<u16>) -> Pace {
        match status {
            Some(200..=299) => Pace::Success,
            Some(429 | 502 | 503 | 504) => Pace::SlowDown,
            _ => Pace::Neutral,
        }
    }
}

impl Pacing {
    pub fn new(max_in_flight: usize, base_pause: Duration, max_pause: Duration) -> Pacing {
        let max_in_flight = max_in_flight.max(1);
        Pacing {
            state: Mutex::new(State {
                in_flight: 0,
                limit: max_in_flight,
                borrowed: 0,
                in_line: 0,
                answer_time: None,
                bucket: None,
                paused_until: None,
                pause: base_pause,
                slowed_at: None,
            }),
            freed: Notify::new(),
            changed: Notify::new(),
            max_in_flight,
            borrow_up_to: None,
            base_pause,
            max_pause: max_pause.max(base_pause),
        }
    }

    /// Lets the endpoint borrow beyond `max_in_flight`, up to `up_to` in flight in all (see
    /// [`Pacing::lend`]).
    pub fn borrowing(mut self, up_to: usize) -> Pacing {
        self.borrow_up_to = Some(up_to.max(self.max_in_flight));
        self
    }

    /// Whether the endpoint may hold places beyond its share: while `spare` (the node's free
    /// request slots) exceeds the share, and while the endpoint's answers have been quick
    /// ([`QUICK_ANSWER`]; not before its first answers) and it has recovered from any
    /// slow-down.
    fn may_borrow(&self, s: &State, spare: usize) -> bool {
        s.answer_time.is_some_and(|t| t < QUICK_ANSWER)
            && s.limit == self.max_in_flight
            && s.pause == self.base_pause
            && spare > self.max_in_flight
    }

    /// Counts a delivery as waiting for one of the endpoint's places until the guard drops.
    pub fn in_line(self: &Arc<Self>) -> InLine {
        self.lock().in_line += 1;
        InLine(self.clone())
    }

    /// Whether deliveries wait for one of the endpoint's places.
    #[cfg(test)]
    pub fn has_line(&self) -> bool {
        self.lock().in_line > 0
    }

    /// Records how long an answer took (the time since the request was sent; only for an
    /// answer, not a request that failed without one).
    pub fn answered(&self, took: Duration) {
        let mut s = self.lock();
        s.answer_time = Some(match s.answer_time {
            None => took,
            Some(t) => t.mul_f64(0.75) + took.mul_f64(0.25),
        });
    }

    /// Lends the endpoint one more place beyond its share if it may borrow (only an endpoint
    /// made [`Pacing::borrowing`], up to its ceiling); the caller adds the place to the
    /// endpoint's permits.
    pub fn lend(&self, spare: usize) -> bool {
        self.lend_in(&mut self.lock(), spare)
    }

    fn lend_in(&self, s: &mut State, spare: usize) -> bool {
        let Some(up_to) = self.borrow_up_to else {
            return false;
        };
        if self.max_in_flight + s.borrowed >= up_to || !self.may_borrow(s, spare) {
            return false;
        }
        s.borrowed += 1;
        true
    }

    /// Takes one lent place back when nothing waits for it (`waiting` false) or the endpoint
    /// may no longer borrow; the caller then forgets the permit it holds.
    #[cfg(test)]
    pub fn call_back(&self, spare: usize, waiting: bool) -> bool {
        self.call_back_in(&mut self.lock(), spare, waiting)
    }

    fn call_back_in(&self, s: &mut State, spare: usize, waiting: bool) -> bool {
        if s.borrowed == 0 || (waiting && self.may_borrow(s, spare)) {
            return false;
        }
        s.borrowed -= 1;
        true
    }

    /// What becomes of a place a delivery gives back, `spare` being the node's free request
    /// slots once it has: a lent place is taken back when no delivery waits for one or the
    /// endpoint may no longer borrow; else, while deliveries wait, one more may be lent, so
    /// the endpoint's places grow by one per answer while it may.
    pub fn give_back(&self, spare: usize) -> GiveBack {
        if self.borrow_up_to.is_none() {
            return GiveBack::Keep;
        }
        let mut s = self.lock();
        let waiting = s.in_line > 0;
        if self.call_back_in(&mut s, spare, waiting) {
            GiveBack::Forget
        // `spare` counts the node's slot this delivery gave back, which the delivery its
        // place goes to takes: one fewer to lend from.
        } else if waiting && self.lend_in(&mut s, spare.saturating_sub(1)) {
            GiveBack::LendOneMore
        } else {
            GiveBack::Keep
        }
    }

    /// The endpoint's share and the places lent to it.
    #[cfg(test)]
    pub fn capacity(&self) -> usize {
        self.max_in_flight + self.lock().borrowed
    }

    /// Whether a delivery may be sent at `now` under `rate` (messages per second, `None` for
    /// no limit). A changed rate takes effect at once, with a full bucket at the new rate.
    pub fn try_admit(self: &Arc<Self>, rate: Option<u32>, now: Instant) -> Admit {
        let mut s = self.lock();
        if let Some(until) = s.paused_until {
            if until > now {
                return Admit::WaitUntil(until);
            }
            s.paused_until = None;
        }
        // Loans count only while the endpoint runs at its full share.
        let allowed = if s.limit == self.max_in_flight {
            s.limit + s.borrowed
        } else {
            s.limit
        };
        if s.in_flight >= allowed {
            return Admit::WaitForFree;
        }
        match rate.filter(|r| *r > 0) {
            None => s.bucket = None,
            Some(rate) => {
                let bucket = match &mut s.bucket {
                    Some(b) if b.rate == rate => b,
                    other => other.insert(Bucket::new(rate, now)),
                };
                if let Err(wait) = bucket.take(now) {
                    return Admit::WaitUntil(now + wait);
                }
            }
        }
        s.in_flight += 1;
        Admit::Go(Permit {
            pacing: self.clone(),
            admitted: now,
        })
    }

    /// Resolves when a request to this endpoint finishes. Create it (and `enable` it)
    /// before `try_admit`, so that a request finishing in between is not missed.
    pub fn freed(&self) -> tokio::sync::futures::Notified<'_> {
        self.freed.notified()
    }

    /// Resolves when the endpoint changed ([`Pacing::change`]). Create it (and `enable` it)
    /// before the endpoint is read, so that a change in between is not missed.
    pub fn changed(&self) -> tokio::sync::futures::Notified<'_> {
        self.changed.notified()
    }

    /// The endpoint changed: the deliveries waiting for its pace look again.
    pub fn change(&self) {
        self.changed.notify_waiters();
    }

    /// Nothing in flight and no pace to keep: the state can be dropped and made afresh (the
    /// places lent and how quick the answers were go with it).
    pub fn is_idle(&self, now: Instant) -> bool {
        let s = self.lock();
        s.in_flight == 0
            && s.limit == self.max_in_flight
            && s.pause == self.base_pause
            && s.paused_until.is_none_or(|u| u <= now)
            && s.bucket.as_ref().is_none_or(|b| {
                let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
                b.tokens + elapsed * f64::from(b.rate) >= b.capacity()
            })
    }

    /// The concurrency currently allowed, places lent aside (for tests and metrics).
    pub fn limit(&self) -> usize {
        self.lock().limit
    }

    /// Whether the answer slowed the endpoint down (a slow-down answer to a request sent
    /// before the last slow-down adds nothing).
    fn record(&self, pace: Pace, admitted: Instant, now: Instant) -> bool {
        let mut s = self.lock();
        match pace {
            Pace::Success => {
                s.limit = (s.limit + 1).min(self.max_in_flight);
                s.pause = (s.pause / 2).max(self.base_pause);
                false
            }
            Pace::SlowDown => {
                if s.slowed_at.is_some_and(|at| admitted < at) {
                    return false;
                }
                s.limit = (s.limit / 2).max(1);
                let until = now + s.pause;
                s.paused_until = Some(s.paused_until.map_or(until, |u| u.max(until)));
                s.pause = (s.pause * 2).min(self.max_pause);
                s.slowed_at = Some(now);
                true
            }
            Pace::Neutral => false,
        }
    }

    /// Another node was told to slow down by this endpoint: slow down here too, unless this
    /// node is pausing the endpoint already (nodes that got the same burst of answers each
    /// tell the others; one pause is enough).
    pub fn slow_down_from_peer(&self, now: Instant) {
        if self.lock().paused_until.is_some_and(|until| until > now) {
            return;
        }
        self.record(Pace::SlowDown, now, now);
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A request in flight to the endpoint; dropping it frees its place.
pub struct Permit {
    pacing: Arc<Pacing>,
    admitted: Instant,
}

impl Permit {
    /// Records how the endpoint answered, then frees the place. Whether the answer slowed
    /// the endpoint down (what the other nodes are told).
    pub fn finish(self, pace: Pace, now: Instant) -> bool {
        self.pacing.record(pace, self.admitted, now)
    }
}

/// What to do with a place a delivery gives back ([`Pacing::give_back`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GiveBack {
    /// It returns to the endpoint's places.
    Keep,
    /// It was lent and is taken back: forget the permit.
    Forget,
    /// It returns, and one more is lent: add a permit.
    LendOneMore,
}

/// A delivery waiting for one of the endpoint's places ([`Pacing::in_line`]).
pub struct InLine(Arc<Pacing>);

impl Drop for InLine {
    fn drop(&mut self) {
        let mut s = self.0.lock();
        s.in_line = s.in_line.saturating_sub(1);
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        {
            let mut s = self.pacing.lock();
            s.in_flight = s.in_flight.saturating_sub(1);
        }
        self.pacing.freed.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAUSE: Duration = Duration::from_secs(1);

    fn pacing(max: usize) -> Arc<Pacing> {
        Arc::new(Pacing::new(max, PAUSE, Duration::from_secs(8)))
    }

    fn go(a: Admit) -> Permit {
        match a {
            Admit::Go(p) => p,
            Admit::WaitUntil(_) => panic!("expected Go, got WaitUntil"),
            Admit::WaitForFree => panic!("expected Go, got WaitForFree"),
        }
    }

    fn wait_until(a: Admit) -> Instant {
        match a {
            Admit::WaitUntil(t) => t,
            Admit::Go(_) => panic!("expected WaitUntil, got Go"),
            Admit::WaitForFree => panic!("expected WaitUntil, got WaitForFree"),
        }
    }

    #[test]
    fn rate_limit_allows_a_burst_of_one_second_then_one_token_per_interval() {
        let p = pacing(64);
        let t0 = Instant::now();
        for _ in 0..5 {
            go(p.try_admit(Some(5), t0));
        }
        let near_200ms =
            |d: Duration| d.abs_diff(Duration::from_millis(200)) < Duration::from_micros(10);
        let next = wait_until(p.try_admit(Some(5), t0));
        assert!(near_200ms(next - t0), "{:?}", next - t0);
        go(p.try_admit(Some(5), next));
        let after = wait_until(p.try_admit(Some(5), next));
        assert!(near_200ms(after - next), "{:?}", after - next);
    }

    #[test]
    fn no_rate_limit_never_waits_for_tokens() {
        let p = pacing(1000);
        let t0 = Instant::now();
        let permits: Vec<_> = (0..1000).map(|_| go(p.try_admit(None, t0))).collect();
        assert_eq!(permits.len(), 1000);
    }

    #[test]
    fn a_changed_rate_takes_effect_at_once() {
        let p = pacing(64);
        let t0 = Instant::now();
        go(p.try_admit(Some(1), t0));
        wait_until(p.try_admit(Some(1), t0));
        // Raised to 10/s: a fresh bucket at the new rate.
        for _ in 0..10 {
            go(p.try_admit(Some(10), t0));
        }
        wait_until(p.try_admit(Some(10), t0));
        // Removed: no more waiting for tokens.
        go(p.try_admit(None, t0));
    }

    #[test]
    fn slow_down_answer_pauses_the_endpoint_and_halves_its_concurrency() {
        let p = pacing(8);
        let t0 = Instant::now();
        go(p.try_admit(None, t0)).finish(Pace::SlowDown, t0);
        assert_eq!(p.limit(), 4);
        assert_eq!(wait_until(p.try_admit(None, t0)), t0 + PAUSE);
        let t1 = t0 + PAUSE;
        let held: Vec<_> = (0..4).map(|_| go(p.try_admit(None, t1))).collect();
        assert!(matches!(p.try_admit(None, t1), Admit::WaitForFree));
        drop(held);
        // The next slow-down pauses twice as long.
        let t2 = t1 + Duration::from_millis(10);
        go(p.try_admit(None, t2)).finish(Pace::SlowDown, t2);
        assert_eq!(wait_until(p.try_admit(None, t2)), t2 + 2 * PAUSE);
        assert_eq!(p.limit(), 2);
    }

    #[test]
    fn answers_to_requests_sent_before_a_slow_down_do_not_compound_it() {
        let p = pacing(8);
        let t0 = Instant::now();
        let a = go(p.try_admit(None, t0));
        let b = go(p.try_admit(None, t0));
        let t1 = t0 + Duration::from_millis(5);
        assert!(a.finish(Pace::SlowDown, t1), "the first slows it down");
        assert!(
            !b.finish(Pace::SlowDown, t1 + Duration::from_millis(1)),
            "sent before that slow-down: nothing to tell the other nodes"
        );
        assert_eq!(p.limit(), 4);
        assert_eq!(wait_until(p.try_admit(None, t1)), t1 + PAUSE);
    }

    #[test]
    fn peers_told_of_one_burst_slow_down_once() {
        let p = pacing(8);
        let t0 = Instant::now();
        // Several nodes got the same burst of slow-down answers, and each says so.
        for ms in [0, 50, 100] {
            p.slow_down_from_peer(t0 + Duration::from_millis(ms));
        }
        assert_eq!(p.limit(), 4);
        assert_eq!(wait_until(p.try_admit(None, t0)), t0 + PAUSE);
        // Once the pause is over, a peer's next slow-down counts again, twice as long.
        let t1 = t0 + PAUSE;
        p.slow_down_from_peer(t1);
        assert_eq!(p.limit(), 2);
        assert_eq!(wait_until(p.try_admit(None, t1)), t1 + 2 * PAUSE);
    }

    #[test]
    fn successes_recover_gradually_until_the_state_is_idle_again() {
        let p = pacing(4);
        let mut t = Instant::now();
        go(p.try_admit(None, t)).finish(Pace::SlowDown, t);
        t += PAUSE;
        go(p.try_admit(None, t)).finish(Pace::SlowDown, t);
        assert_eq!(p.limit(), 1);
        t += 2 * PAUSE;
        assert!(!p.is_idle(t));
        go(p.try_admit(None, t)).finish(Pace::Success, t);
        assert_eq!(p.limit(), 2);
        assert!(!p.is_idle(t));
        for _ in 0..3 {
            go(p.try_admit(None, t)).finish(Pace::Success, t);
        }
        assert_eq!(p.limit(), 4);
        assert!(p.is_idle(t));
    }

    fn lender(share: usize, up_to: usize) -> Arc<Pacing> {
        Arc::new(Pacing::new(share, PAUSE, Duration::from_secs(8)).borrowing(up_to))
    }

    #[test]
    fn a_quick_endpoint_borrows_beyond_its_share_while_the_node_has_a_share_to_spare() {
        let p = lender(2, 5);
        let t = Instant::now();
        let mut held: Vec<_> = (0..2).map(|_| go(p.try_admit(None, t))).collect();
        assert!(matches!(p.try_admit(None, t), Admit::WaitForFree));
        // Not before its first answers show it quick.
        assert!(!p.lend(100));
        p.answered(Duration::from_millis(20));
        // The node's free slots must exceed the share.
        assert!(!p.lend(2));
        assert!((0..3).all(|_| p.lend(3)));
        // Up to 5 in all.
        assert!(!p.lend(100));
        assert_eq!(p.capacity(), 5);
        held.extend((0..3).map(|_| go(p.try_admit(None, t))));
        assert!(matches!(p.try_admit(None, t), Admit::WaitForFree));
        // Kept while deliveries wait for them and the node can spare them.
        assert!(!p.call_back(3, true));
        // Taken back when the node runs short, or nothing waits.
        assert!(p.call_back(2, true));
        assert!(p.call_back(100, false));
        assert!(p.call_back(100, false));
        assert!(!p.call_back(100, false));
        assert_eq!(p.capacity(), 2);
        drop(held.pop());
        assert!(matches!(p.try_admit(None, t), Admit::WaitForFree));
        // Waiting for a place is counted while the guard lives.
        let line = p.in_line();
        assert!(p.has_line());
        drop(line);
        assert!(!p.has_line());
        assert!(!p.is_idle(t));
        drop(held);
        assert!(p.is_idle(t));
        // A cap a user set is never exceeded.
        let hard = pacing(2);
        hard.answered(Duration::from_millis(20));
        assert!(hard.give_back(100) == GiveBack::Keep && !hard.lend(100));
    }

    #[test]
    fn a_slow_or_slowed_down_endpoint_keeps_to_its_share() {
        let p = lender(2, 10);
        let t = Instant::now();
        // Answers that took 400 ms: still quick.
        p.answered(Duration::from_millis(400));
        assert!(p.lend(100));
        // Then answers of 2 s: on average no longer; the loan is taken back.
        p.answered(Duration::from_secs(2));
        p.answered(Duration::from_secs(2));
        assert!(!p.lend(100));
        assert!(p.call_back(100, true));
        // Quick again.
        for _ in 0..8 {
            p.answered(Duration::from_millis(10));
        }
        assert!(p.lend(100));
        // Two slow-downs: nothing more is lent, and what was lent does not count until the
        // endpoint has recovered.
        go(p.try_admit(None, t)).finish(Pace::SlowDown, t);
        assert!(!p.lend(100));
        let t1 = t + PAUSE;
        go(p.try_admit(None, t1)).finish(Pace::SlowDown, t1);
        let t2 = t1 + 2 * PAUSE;
        let one = go(p.try_admit(None, t2));
        assert!(matches!(p.try_admit(None, t2), Admit::WaitForFree));
        // Back to its share, but its next pause is still longer than the base: not yet.
        one.finish(Pace::Success, t2);
        assert_eq!(p.limit(), 2);
        assert!(!p.lend(100));
        go(p.try_admit(None, t2)).finish(Pace::Success, t2);
        assert!(p.lend(100));
    }

    #[test]
    fn other_failures_leave_the_pace_alone() {
        let p = pacing(4);
        let t = Instant::now();
        go(p.try_admit(None, t)).finish(Pace::of(Some(500)), t);
        go(p.try_admit(None, t)).finish(Pace::of(None), t);
        assert_eq!(p.limit(), 4);
        assert!(p.is_idle(t));
        assert_eq!(Pace::of(Some(429)), Pace::SlowDown);
        assert_eq!(Pace::of(Some(204)), Pace::Success);
    }
}
