//! Pure types and rules: no I/O.

pub mod alerts;
pub mod crypto;
pub mod delivery;
pub mod filter;
pub mod headers;
pub mod ids;
pub mod model;
pub mod operational;
pub mod password;
pub mod retry;
pub mod secrets;
pub mod signing;
pub mod tasks;
pub mod time;
pub mod validate;

/// `text` with each NUL character, which PostgreSQL's text cannot hold, replaced by U+FFFD;
/// `None` when it holds none.
pub fn replace_nul(text: &str) -> Option<String> {
    text.contains('\0').then(|| text.replace('\0', "\u{fffd}"))
}

/// Whether a message (event type, channels) goes to an endpoint with these filters: no type
/// filter takes every type; an endpoint with channels takes only messages in one of them.
pub fn routes_to(
    event_type: &str,
    msg_channels: Option<&[String]>,
    filter_types: Option<&[String]>,
    endpoint_channels: Option<&[String]>,
) -> bool {
    let type_ok = filter_types.is_none_or(|f| f.iter().any(|t| t == event_type));
    let channel_ok = match endpoint_channels {
        None => true,
        Some(mine) => msg_channels.is_some_and(|theirs| theirs.iter().any(|c| mine.contains(c))),
    };
    type_ok && channel_ok
}

#[cfg(test)]
mod tests {
    use super::routes_to;

    #[test]
    fn routing_follows_type_filters_and_channels() {
        let s = |v: &[&str]| v.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();
        assert!(routes_to("a.b", None, None, None));
        assert!(routes_to("a.b", None, Some(&s(&["a.b", "c"])), None));
        assert!(!routes_to("a.c", None, Some(&s(&["a.b"])), None));
        assert!(!routes_to("a.b", None, None, Some(&s(&["eu"]))));
        assert!(routes_to(
            "a.b",
            Some(&s(&["us", "eu"])),
            None,
            Some(&s(&["eu"]))
        ));
        assert!(!routes_to(
            "a.b",
            Some(&s(&["us"])),
            None,
            Some(&s(&["eu"]))
        ));
    }
}
