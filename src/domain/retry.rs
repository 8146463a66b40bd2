//! Retry policy: when the next attempt is due after a failure.

use rand::Rng;
use std::time::Duration;

/// Delays before each attempt: `delays[0]` before the first (normally zero), `delays[n]`
/// after the n-th failure. The number of attempts is `delays.len()`.
#[derive(Debug, Clone, PartialEq)]
pub struct RetrySchedule {
    pub delays: Vec<Duration>,
    /// Fraction of each delay added or removed at random (0.2 = ±20 %).
    pub jitter: f64,
}

impl RetrySchedule {
    pub fn max_attempts(&self) -> u32 {
        u32::try_from(self.delays.len()).unwrap_or(u32::MAX)
    }

    /// Delay before the next attempt after `attempts_made` attempts have failed, or `None`
    /// when that was the last one. `retry_after` (already clamped) wins when it is longer.
    pub fn next_delay(
        &self,
        attempts_made: u32,
        retry_after: Option<Duration>,
    ) -> Option<Duration> {
        let base = *self.delays.get(attempts_made as usize)?;
        let jittered = if self.jitter > 0.0 && !base.is_zero() {
            let f = rand::thread_rng().gen_range(1.0 - self.jitter..=1.0 + self.jitter);
            base.mul_f64(f)
        } else {
            base
        };
        Some(match retry_after {
            Some(r) if r > jittered => r,
            _ => jittered,
        })
    }
}

/// Parses a `Retry-After` header (delay in seconds, or an HTTP date) and clamps it to `max`.
pub fn parse_retry_after(value: &str, now_ms: i64, max: Duration) -> Option<Duration> {
    let value = value.trim();
    let d = if let Ok(secs) = value.parse::<u64>() {
        Duration::from_secs(secs)
    } else {
        let at = chrono::DateTime::parse_from_rfc2822(value)
            .ok()?
            .timestamp_millis();
        Duration::from_millis(u64::try_from(at - now_ms).ok()?)
    };
    Some(d.min(max))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn schedule() -> RetrySchedule {
        RetrySchedule {
            delays: [0, 5, 300, 1800, 7200, 18000, 36000]
                .map(Duration::from_secs)
                .to_vec(),
            jitter: 0.2,
        }
    }

    #[test]
    fn schedule_ends_after_its_last_attempt() {
        let s = schedule();
        assert_eq!(s.max_attempts(), 7);
        assert!(s.next_delay(6, None).is_some());
        assert!(s.next_delay(7, None).is_none());
    }

    #[test]
    fn retry_after_seconds_and_dates_are_parsed_and_clamped() {
        let max = Duration::from_secs(3600);
        assert_eq!(
            parse_retry_after("120", 0, max),
            Some(Duration::from_secs(120))
        );
        assert_eq!(parse_retry_after("999999", 0, max), Some(max));
        let now = chrono::DateTime::parse_from_rfc2822("Wed, 21 Oct 2015 07:28:00 GMT")
            .unwrap()
            .timestamp_millis();
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now, max),
            Some(Duration::from_secs(30))
        );
        assert_eq!(parse_retry_after("soon", 0, max), None);
    }

    #[test]
    fn longer_retry_after_wins_over_schedule() {
        let s = RetrySchedule {
            delays: vec![Duration::ZERO, Duration::from_secs(5)],
            jitter: 0.0,
        };
        assert_eq!(
            s.next_delay(1, Some(Duration::from_secs(60))),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            s.next_delay(1, Some(Duration::from_secs(1))),
            Some(Duration::from_secs(5))
        );
    }

    proptest! {
        #[test]
        fn jitter_stays_within_twenty_percent(n in 1u32..7) {
            let s = schedule();
            let base = s.delays[n as usize].as_secs_f64();
            let d = s.next_delay(n, None).unwrap().as_secs_f64();
            prop_assert!(d >= base * 0.8 - 1e-9 && d <= base * 1.2 + 1e-9);
        }
    }
}
