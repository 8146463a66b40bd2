//! Typed, prefixed, time-sortable identifiers (`msg_01J…`). An id never contains `.`.

/// A new id: `prefix_` followed by a ULID (48-bit millisecond time, 80 random bits), so ids
/// sort by creation time and pagination by id is pagination by time. Within one millisecond
/// the ULIDs of a process increase too (a monotonic generator), so two messages sent one
/// after the other list in that order.
pub fn new_id(prefix: &str) -> String {
    static GENERATOR: std::sync::Mutex<ulid::Generator> =
        std::sync::Mutex::new(ulid::Generator::new());
    let next = GENERATOR
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .generate();
    // Only 2^80 ids in one millisecond exhaust it; a random one is then as good.
    format!("{prefix}_{}", next.unwrap_or_else(|_| ulid::Ulid::new()))
}

pub const APP: &str = "app";
pub const ENDPOINT: &str = "ep";
pub const MESSAGE: &str = "msg";
pub const ATTEMPT: &str = "atmpt";
pub const TOKEN: &str = "tok";
pub const TASK: &str = "qtask";
pub const REQUEST: &str = "req";

/// The millisecond timestamp an id was made at, if it is one of ours.
pub fn timestamp_ms(id: &str) -> Option<i64> {
    let (_, tail) = id.split_once('_')?;
    let u = ulid::Ulid::from_string(tail).ok()?;
    i64::try_from(u.timestamp_ms()).ok()
}

/// Smallest id of this prefix at or after `ms`: an id-ordered bound for time filters.
pub fn lower_bound_at(prefix: &str, ms: i64) -> String {
    let u = ulid::Ulid::from_parts(u64::try_from(ms.max(0)).unwrap_or(0), 0);
    format!("{prefix}_{u}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_have_prefix_no_dot_and_sort_by_time() {
        let a = new_id(MESSAGE);
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = new_id(MESSAGE);
        assert!(a.starts_with("msg_"));
        assert!(!a.contains('.'));
        assert!(a < b);
        let ts = timestamp_ms(&a).unwrap();
        assert!(lower_bound_at(MESSAGE, ts) <= a);
        assert!(lower_bound_at(MESSAGE, ts + 1) > a);
    }

    #[test]
    fn ids_made_one_after_the_other_increase_within_a_millisecond() {
        let ids: Vec<String> = (0..2000).map(|_| new_id(MESSAGE)).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
    }
}
