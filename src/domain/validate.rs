//! Input rules shared by the API and the console.

/// Ids and uids: `[a-zA-Z0-9\-_.]{1,256}`.
pub fn is_valid_uid(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 256
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Whether `s` is made of dots only (`.`, `..`): valid as a name or uid, but a URL path
/// cannot hold it (clients and browsers take it for "this" or "the parent" folder).
pub fn only_dots(s: &str) -> bool {
    s.bytes().all(|b| b == b'.')
}

/// Event type names: `[a-zA-Z0-9\-_.:]{1,256}`.
pub fn is_valid_event_type(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 256
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// Channel names: `[a-zA-Z0-9\-_.:]{1,128}`.
pub fn is_valid_channel(s: &str) -> bool {
    !s.is_empty() && s.len() <= 128 && is_valid_event_type(s)
}

/// Endpoint URLs: absolute http(s) with a host, without control characters (the URL
/// parser drops or encodes some, but the URL is stored and shown as given).
pub fn check_endpoint_url(s: &str) -> Result<(), &'static str> {
    if s.len() > 65_536 {
        return Err("URL is too long");
    }
    if s.chars().any(char::is_control) {
        return Err("URL must not contain control characters");
    }
    let u = url::Url::parse(s).map_err(|_| "not a valid URL")?;
    if u.scheme() != "http" && u.scheme() != "https" {
        return Err("URL scheme must be http or https");
    }
    if u.host_str().is_none_or(str::is_empty) {
        return Err("URL must have a host");
    }
    Ok(())
}

/// How deep arrays and objects may nest in a JSON value that hookbox stores (a message
/// payload, an event type's schemas or example, a test payload). Deeper values are refused:
/// JSON parsers (serde_json's included) stop at 128 levels, so a deeper stored value could
/// not be read back, and receivers would choke on it too.
pub const MAX_JSON_DEPTH: usize = 64;

/// Where `json` (valid JSON text) first nests deeper than `limit` arrays and objects: the
/// keys and indices leading to that value; `None` when it stays within `limit`. A top-level
/// object or array is level 1.
pub fn nested_too_deep(json: &[u8], limit: usize) -> Option<Vec<String>> {
    // Most values have fewer brackets in all than the limit: counted at memory speed, that
    // settles it without walking the text.
    if memchr::memchr2_iter(b'{', b'[', json).count() <= limit {
        return None;
    }
    enum Frame {
        Object(Option<String>),
        Array(usize),
    }
    let mut stack: Vec<Frame> = Vec::new();
    let mut key_next = false;
    let mut i = 0;
    while i < json.len() {
        match json[i] {
            b'"' => {
                let start = i + 1;
                i += 1;
                while i < json.len() && json[i] != b'"' {
                    i += if json[i] == b'\\' { 2 } else { 1 };
                }
                if key_next {
                    if let Some(Frame::Object(key)) = stack.last_mut() {
                        let end = i.min(json.len());
                        *key = Some(String::from_utf8_lossy(&json[start..end]).into_owned());
                    }
                    key_next = false;
                }
            }
            open @ (b'{' | b'[') => {
                if stack.len() == limit {
                    let path = stack
                        .iter()
                        .map(|f| match f {
                            Frame::Object(k) => k.clone().unwrap_or_default(),
                            Frame::Array(n) => n.to_string(),
                        })
                        .collect();
                    return Some(path);
                }
                if open == b'{' {
                    stack.push(Frame::Object(None));
                    key_next = true;
                } else {
                    stack.push(Frame::Array(0));
                }
            }
            b'}' | b']' => {
                stack.pop();
            }
            b',' => match stack.last_mut() {
                Some(Frame::Object(_)) => key_next = true,
                Some(Frame::Array(n)) => *n += 1,
                None => {}
            },
            _ => {}
        }
        i += 1;
    }
    None
}

/// Whether the JSON text `json` nests deeper than [`MAX_JSON_DEPTH`].
pub fn too_deep(json: &str) -> bool {
    nested_too_deep(json.as_bytes(), MAX_JSON_DEPTH).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(levels: usize) -> String {
        format!(
            "{{\"x\": {}1{}}}",
            "[".repeat(levels - 1),
            "]".repeat(levels - 1)
        )
    }

    #[test]
    fn nesting_is_measured_and_its_place_named() {
        assert_eq!(nested_too_deep(nested(64).as_bytes(), 64), None);
        assert_eq!(
            nested_too_deep(nested(65).as_bytes(), 64).map(|p| p[..3].to_vec()),
            Some(vec!["x".to_owned(), "0".to_owned(), "0".to_owned()])
        );
        // Brackets and quotes inside strings do not count.
        let text = r#"{"a\"[": "[[[{{", "b": [1, {"c": [[]]}]}"#;
        assert_eq!(nested_too_deep(text.as_bytes(), 5), None);
        assert_eq!(
            nested_too_deep(text.as_bytes(), 4),
            Some(["b", "1", "c", "0"].map(str::to_owned).to_vec())
        );
        assert_eq!(nested_too_deep(b"[]", 0), Some(vec![]));
    }
    use proptest::prelude::*;

    #[test]
    fn event_type_styles_are_accepted() {
        for ok in [
            "invoice.paid",
            "invoice:create",
            "provisioning_start",
            "a-b",
        ] {
            assert!(is_valid_event_type(ok), "{ok}");
        }
        for bad in ["", "has space", "slash/no", "ünï"] {
            assert!(!is_valid_event_type(bad), "{bad}");
        }
        assert!(!is_valid_event_type(&"a".repeat(257)));
    }

    #[test]
    fn endpoint_urls_must_be_http() {
        assert!(check_endpoint_url("https://example.com/hook?x=1").is_ok());
        assert!(check_endpoint_url("ftp://example.com").is_err());
        assert!(check_endpoint_url("not a url").is_err());
    }

    proptest! {
        #[test]
        fn uids_never_accept_slashes_or_spaces(s in ".*[ /?#].*") {
            prop_assert!(!is_valid_uid(&s));
        }
    }
}
