//! Input rules shared by the API and the console.

/// Ids and uids: `[a-zA-Z0-9\-_.]{1,256}`.
pub fn is_valid_uid(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 256
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
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

/// Endpoint URLs: absolute http(s) with a host.
pub fn check_endpoint_url(s: &str) -> Result<(), &'static str> {
    if s.len() > 65_536 {
        return Err("URL is too long");
    }
    let u = reqwest::Url::parse(s).map_err(|_| "not a valid URL")?;
    if u.scheme() != "http" && u.scheme() != "https" {
        return Err("URL scheme must be http or https");
    }
    if u.host_str().is_none_or(str::is_empty) {
        return Err("URL must have a host");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
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
