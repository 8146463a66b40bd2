//! The console's own state: a hash to verify against for unknown users, and the keys that
//! bind login forms and known browsers to this server. (Login throttling is
//! `service::logins`, in the store.)

pub struct Console {
    login_key: [u8; 32],
    known_key: [u8; 32],
}

/// How long a browser an admin logged in from stays known for that admin.
pub const KNOWN_FOR: std::time::Duration = std::time::Duration::from_secs(90 * 24 * 3600);

impl Console {
    pub fn new(main_key: &crate::domain::crypto::MainKey) -> Console {
        Console {
            login_key: main_key.derive("hookbox login form"),
            known_key: main_key.derive("hookbox known browser"),
        }
    }

    /// The login form's hidden value for the anti-forgery cookie `token`: a MAC under a
    /// server key, so that whoever can plant the cookie still cannot make a matching form.
    pub(super) fn login_form_value(&self, token: &str) -> String {
        mac(&self.login_key, &[token.as_bytes()])
    }

    /// The value of the cookie that marks a browser `username` logged in from at `at` (ms),
    /// with the password whose hash is `password_hash`: that time and a MAC of it with the
    /// username and the hash under a server key (a new password, or another admin of that
    /// name, makes it void).
    pub(super) fn known_browser_value(
        &self,
        username: &str,
        password_hash: &str,
        at: i64,
    ) -> String {
        let at = at.to_string();
        let parts = [
            username.as_bytes(),
            b"\0",
            password_hash.as_bytes(),
            b"\0",
            at.as_bytes(),
        ];
        format!("{at}.{}", mac(&self.known_key, &parts))
    }

    /// Whether `value` (the cookie's) says this browser logged in as `username`, with the
    /// password it has now, within [`KNOWN_FOR`] of `now`.
    pub(super) fn knows_browser(
        &self,
        value: &str,
        username: &str,
        password_hash: &str,
        now: i64,
    ) -> bool {
        let Some(at) = value
            .split_once('.')
            .and_then(|(at, _)| at.parse::<i64>().ok())
        else {
            return false;
        };
        // A minute's leeway for clocks of several nodes.
        let recent = at <= now + 60_000 && now - at < crate::domain::time::duration_ms(KNOWN_FOR);
        recent
            && super::same(
                value,
                &self.known_browser_value(username, password_hash, at),
            )
    }
}

/// The hex HMAC-SHA256 of `parts` under `key`.
fn mac(key: &[u8], parts: &[&[u8]]) -> String {
    use hmac::Mac;
    let mut mac =
        hmac::Hmac::<sha2::Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    for p in parts {
        mac.update(p);
    }
    hex::encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000_000;

    #[test]
    fn a_browser_is_known_for_the_admin_who_logged_in_from_it_for_ninety_days() {
        let console = Console::new(&crate::domain::crypto::MainKey::generate());
        let value = console.known_browser_value("ops", "hash1", NOW);
        assert!(console.knows_browser(&value, "ops", "hash1", NOW));
        assert!(console.knows_browser(&value, "ops", "hash1", NOW + 89 * 24 * 3600 * 1000));
        assert!(!console.knows_browser(&value, "ops", "hash1", NOW + 91 * 24 * 3600 * 1000));
        assert!(!console.knows_browser(&value, "admin", "hash1", NOW));
        // Its password changed (or another admin took the name).
        assert!(!console.knows_browser(&value, "ops", "hash2", NOW));
        // Another server's (another main key's), a changed time, a changed MAC, garbage.
        let other = Console::new(&crate::domain::crypto::MainKey::generate());
        assert!(!other.knows_browser(&value, "ops", "hash1", NOW));
        let (_, mac) = value.split_once('.').unwrap();
        assert!(!console.knows_browser(&format!("{}.{mac}", NOW + 1), "ops", "hash1", NOW));
        let mut flipped = value.clone();
        let last = flipped.pop().unwrap();
        flipped.push(if last == '0' { '1' } else { '0' });
        assert!(!console.knows_browser(&flipped, "ops", "hash1", NOW));
        for garbage in ["", ".", "x.y", &NOW.to_string()] {
            assert!(
                !console.knows_browser(garbage, "ops", "hash1", NOW),
                "{garbage:?}"
            );
        }
    }
}
