//! Time as integer milliseconds since the Unix epoch, formatted RFC 3339 UTC with `Z`.

use chrono::{DateTime, NaiveDateTime, SecondsFormat, TimeZone, Utc};

/// A day, in milliseconds.
pub const DAY_MS: i64 = 24 * 3600 * 1000;

pub fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

/// The time deliveries are scheduled by: the system's, or (in tests) the system's moved
/// forward by [`Clock::advance`]. Never behind the system's, so whatever was stored at system
/// time is never in this clock's future.
#[derive(Clone, Debug, Default)]
pub struct Clock(std::sync::Arc<std::sync::atomic::AtomicI64>);

impl Clock {
    pub fn now_ms(&self) -> i64 {
        now_ms().saturating_add(self.0.load(std::sync::atomic::Ordering::Relaxed))
    }

    /// Moves this clock (and every copy of it) forward by `d`.
    pub fn advance(&self, d: std::time::Duration) {
        self.0
            .fetch_add(duration_ms(d), std::sync::atomic::Ordering::Relaxed);
    }
}

/// A duration in milliseconds, the one way hookbox converts them: saturating at a quarter of
/// `i64::MAX` (about 73 million years), so that adding it to any time cannot overflow.
pub fn duration_ms(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).map_or(i64::MAX / 4, |ms| ms.min(i64::MAX / 4))
}

pub fn format_ms(ms: i64) -> String {
    match Utc.timestamp_millis_opt(ms) {
        chrono::LocalResult::Single(t) => t.to_rfc3339_opts(SecondsFormat::Millis, true),
        _ => "1970-01-01T00:00:00.000Z".to_owned(),
    }
}

/// Parses RFC 3339, or a date-time with no offset (taken as UTC), or a bare date.
pub fn parse_datetime(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.timestamp_millis());
    }
    for fmt in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, fmt) {
            return Some(t.and_utc().timestamp_millis());
        }
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return d
            .and_hms_opt(0, 0, 0)
            .map(|t| t.and_utc().timestamp_millis());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_convert_one_way_and_never_overflow_a_time() {
        assert_eq!(
            duration_ms(std::time::Duration::from_micros(1_500_999)),
            1_500
        );
        assert_eq!(duration_ms(std::time::Duration::MAX), i64::MAX / 4);
        assert!(now_ms()
            .checked_add(duration_ms(std::time::Duration::MAX))
            .is_some());
    }

    #[test]
    fn datetimes_without_offset_are_utc() {
        let a = parse_datetime("2024-01-01T00:00:00").unwrap();
        let b = parse_datetime("2024-01-01T00:00:00+00:00").unwrap();
        let c = parse_datetime("2024-01-01T01:00:00+01:00").unwrap();
        assert_eq!(a, b);
        assert_eq!(b, c);
        assert_eq!(format_ms(a), "2024-01-01T00:00:00.000Z");
        assert!(parse_datetime("yesterday").is_none());
    }
}
