//! What happens to a delivery after an attempt: the delivery state machine, as a pure
//! function of the attempt's outcome, the attempts made before it, the retry schedule and the
//! time. Storage only records what [`transition`] decides.

use super::retry::RetrySchedule;
use std::time::Duration;

/// After this many failed attempts in a row a message is "failing" (and its later success
/// a recovery).
pub const FAILING_AFTER: u32 = 4;

/// How one attempt ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Success,
    /// A failure; `retry_after` is the receiver's (already clamped) request.
    Failure {
        retry_after: Option<Duration>,
    },
    /// 410 Gone: the endpoint is disabled at once.
    Gone,
}

/// What an attempt leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// Delivered. `recovered`: it had failed `FAILING_AFTER` times or more before (the
    /// operator was told it was failing, and is told it recovered).
    Delivered { recovered: bool },
    /// Failed, and tried again at `due`. `failing`: this was its `FAILING_AFTER`-th failure.
    Retry { due: i64, failing: bool },
    /// Failed its last scheduled attempt: no more retries.
    Exhausted,
    /// 410 Gone: the delivery fails, and its endpoint is disabled.
    DisableEndpoint,
}

/// How the error of an attempt that timed out begins.
pub const TIMED_OUT: &str = "timed out";

/// Whether an attempt timed out: no answer, and its error says so.
pub fn timed_out(status_code: i64, error: Option<&str>) -> bool {
    status_code == 0 && error.is_some_and(|e| e.starts_with(TIMED_OUT))
}

/// The reason recorded when an endpoint answers 410.
pub const GONE_REASON: &str = "the endpoint answered 410 Gone";

/// What follows an attempt that ended with `outcome` at `at` (ms), after `attempts_before`
/// earlier attempts of the same delivery.
pub fn transition(
    attempts_before: u32,
    outcome: &Outcome,
    schedule: &RetrySchedule,
    at: i64,
) -> Transition {
    let attempts = attempts_before.saturating_add(1);
    match outcome {
        Outcome::Success => Transition::Delivered {
            recovered: attempts_before >= FAILING_AFTER,
        },
        Outcome::Gone => Transition::DisableEndpoint,
        Outcome::Failure { retry_after } => match schedule.next_delay(attempts, *retry_after) {
            Some(delay) => Transition::Retry {
                due: at.saturating_add(crate::domain::time::duration_ms(delay)),
                failing: attempts == FAILING_AFTER,
            },
            None => Transition::Exhausted,
        },
    }
}

/// Percentage of `ok` among `ok + bad`, or `None` when both are 0.
pub fn success_rate(ok: i64, bad: i64) -> Option<f64> {
    let total = ok + bad;
    #[allow(clippy::cast_precision_loss)] // counts far below 2^52
    (total > 0).then(|| 100.0 * ok as f64 / total as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn schedule(jitter: f64) -> RetrySchedule {
        RetrySchedule {
            delays: [0, 5, 300, 1800, 7200, 18000, 36000]
                .map(Duration::from_secs)
                .to_vec(),
            jitter,
        }
    }

    const FAIL: Outcome = Outcome::Failure { retry_after: None };

    #[test]
    fn a_delivery_walks_the_schedule_says_failing_once_then_is_exhausted() {
        let s = schedule(0.0);
        let at = 1_000_000;
        let steps: Vec<Transition> = (0..7).map(|n| transition(n, &FAIL, &s, at)).collect();
        assert_eq!(
            steps,
            vec![
                Transition::Retry {
                    due: at + 5_000,
                    failing: false
                },
                Transition::Retry {
                    due: at + 300_000,
                    failing: false
                },
                Transition::Retry {
                    due: at + 1_800_000,
                    failing: false
                },
                Transition::Retry {
                    due: at + 7_200_000,
                    failing: true
                },
                Transition::Retry {
                    due: at + 18_000_000,
                    failing: false
                },
                Transition::Retry {
                    due: at + 36_000_000,
                    failing: false
                },
                Transition::Exhausted,
            ]
        );
    }

    #[test]
    fn success_recovers_only_after_failing_and_410_disables() {
        let s = schedule(0.0);
        assert_eq!(
            transition(0, &Outcome::Success, &s, 0),
            Transition::Delivered { recovered: false }
        );
        assert_eq!(
            transition(3, &Outcome::Success, &s, 0),
            Transition::Delivered { recovered: false }
        );
        assert_eq!(
            transition(4, &Outcome::Success, &s, 0),
            Transition::Delivered { recovered: true }
        );
        assert_eq!(
            transition(2, &Outcome::Gone, &s, 0),
            Transition::DisableEndpoint
        );
    }

    #[test]
    fn retry_after_wins_when_longer() {
        let s = schedule(0.0);
        let asked = Outcome::Failure {
            retry_after: Some(Duration::from_secs(60)),
        };
        assert_eq!(
            transition(0, &asked, &s, 0),
            Transition::Retry {
                due: 60_000,
                failing: false
            }
        );
        assert_eq!(
            transition(1, &asked, &s, 0),
            Transition::Retry {
                due: 300_000,
                failing: false
            }
        );
    }

    proptest! {
        #[test]
        fn retries_fall_within_the_jittered_delay_and_never_before_the_attempt(
            attempts in 0u32..10, at in 0i64..1_000_000_000_000, jitter in 0.0f64..0.9
        ) {
            let s = schedule(jitter);
            match transition(attempts, &FAIL, &s, at) {
                Transition::Retry { due, failing } => {
                    let base = s.delays[attempts as usize + 1].as_millis() as f64;
                    let delay = (due - at) as f64;
                    prop_assert!(delay >= base * (1.0 - jitter) - 1.0);
                    prop_assert!(delay <= base * (1.0 + jitter) + 1.0);
                    prop_assert_eq!(failing, attempts + 1 == FAILING_AFTER);
                }
                Transition::Exhausted => prop_assert!(attempts + 1 >= s.max_attempts()),
                other => prop_assert!(false, "{other:?}"),
            }
        }
    }
}
