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
pub const RECIPIENT: &str = "arcpt";

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

/// A typed id: which kind of thing it names is part of its type, so an endpoint's id is never
/// passed where an application's is meant. It reads as its text (`Deref<Target = str>`,
/// `Display`) and serializes as it.
macro_rules! typed_id {
    ($(#[$doc:meta])* $name:ident, $prefix:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// A new, unique id of this kind.
            pub fn generate() -> $name {
                $name(new_id($prefix))
            }

            /// An id as stored or received (it is not checked: lookups by an unknown id
            /// find nothing).
            pub fn from_string(s: String) -> $name {
                $name(s)
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl std::ops::Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> $name {
                $name(s.to_owned())
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl PartialEq<String> for $name {
            fn eq(&self, other: &String) -> bool {
                &self.0 == other
            }
        }
    };
}

typed_id!(
    /// An application's id (`app_…`).
    AppId,
    APP
);
typed_id!(
    /// An endpoint's id (`ep_…`).
    EndpointId,
    ENDPOINT
);
typed_id!(
    /// A message's id (`msg_…`).
    MsgId,
    MESSAGE
);
typed_id!(
    /// An attempt's id (`atmpt_…`).
    AttemptId,
    ATTEMPT
);

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

    #[test]
    fn typed_ids_carry_their_prefix_and_read_as_their_text() {
        let ep = EndpointId::generate();
        assert!(ep.starts_with("ep_"));
        assert_eq!(ep.to_string(), ep.as_str());
        assert!(AppId::generate().starts_with("app_"));
        assert!(MsgId::generate().starts_with("msg_"));
        assert!(AttemptId::generate().starts_with("atmpt_"));
        let map: std::collections::HashMap<EndpointId, u8> = [(ep.clone(), 1)].into();
        assert_eq!(map.get(ep.as_str()), Some(&1));
        assert_eq!(serde_json::to_string(&ep).unwrap(), format!("\"{ep}\""));
    }
}
