//! Custom headers that endpoints send with every delivery (often credentials, such as
//! `Authorization: Bearer …`): how much is allowed, which are sensitive, how they are shown.

use std::collections::BTreeMap;

/// Most bytes an endpoint's custom headers may take, counted as sent (`name: value\r\n`).
pub const MAX_HEADERS_BYTES: usize = 8 * 1024;

/// The bytes `headers` take on the wire.
pub fn size(headers: &BTreeMap<String, String>) -> usize {
    headers.iter().map(|(k, v)| k.len() + v.len() + 4).sum()
}

/// Whether a header's value is a credential: any name that says cookie, auth, token,
/// secret, key, password, signature, credential or session (`Authorization` among them). Their values are stored sealed like all custom headers, and shown only
/// redacted (attempt logs, the console, the portal, the API's `sensitive` list).
pub fn is_sensitive(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    [
        "cookie",
        "auth",
        "token",
        "secret",
        "key",
        "password",
        "passwd",
        "signature",
        "credential",
        "session",
    ]
    .iter()
    .any(|w| n.contains(w))
}

/// How a header's value is shown: as it is, or for a sensitive header `***`, keeping only
/// the scheme word of an `Authorization` value (`Bearer ***`).
pub fn shown(name: &str, value: &str) -> String {
    if !is_sensitive(name) {
        return value.to_owned();
    }
    let authorization = name.eq_ignore_ascii_case("authorization")
        || name.eq_ignore_ascii_case("proxy-authorization");
    match value.split_once(' ') {
        Some((scheme, _))
            if authorization
                && scheme.len() <= 20
                && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-') =>
        {
            format!("{scheme} ***")
        }
        _ => "***".to_owned(),
    }
}

/// Headers submitted from a form that showed `stored` redacted: a sensitive header sent
/// back exactly as it was shown keeps its stored value.
pub fn keep_redacted(
    submitted: BTreeMap<String, String>,
    stored: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    submitted
        .into_iter()
        .map(|(k, v)| match stored.get(&k) {
            Some(old) if is_sensitive(&k) && v == shown(&k, old) => (k, old.clone()),
            _ => (k, v),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_shown_redacted_and_kept_when_sent_back_as_shown() {
        assert!(is_sensitive("Authorization") && is_sensitive("X-Api-Key"));
        assert!(is_sensitive("X-Auth-Token") && is_sensitive("Cookie"));
        assert!(!is_sensitive("X-Tenant") && !is_sensitive("Accept"));
        assert_eq!(shown("Authorization", "Bearer abc.def"), "Bearer ***");
        assert_eq!(shown("X-Api-Key", "k-123"), "***");
        assert_eq!(shown("X-Api-Key", "k-123 extra"), "***");
        assert_eq!(shown("Cookie", "sid=abc123; other=x"), "***");
        assert_eq!(shown("Authorization", "sid=abc 123"), "***");
        assert!(is_sensitive("Set-Cookie"));
        assert_eq!(shown("X-Tenant", "acme"), "acme");
        let stored = BTreeMap::from([("Authorization".to_owned(), "Bearer s3cr3t".to_owned())]);
        let back = BTreeMap::from([
            ("Authorization".to_owned(), "Bearer ***".to_owned()),
            ("X-Tenant".to_owned(), "acme".to_owned()),
        ]);
        assert_eq!(
            keep_redacted(back, &stored)["Authorization"],
            "Bearer s3cr3t"
        );
        let changed = BTreeMap::from([("Authorization".to_owned(), "Bearer new".to_owned())]);
        assert_eq!(
            keep_redacted(changed, &stored)["Authorization"],
            "Bearer new"
        );
        assert_eq!(
            size(&stored),
            "Authorization".len() + "Bearer s3cr3t".len() + 4
        );
    }
}
