//! Random secrets handed out once (API tokens, session ids, setup and portal links) and the
//! form they are stored in: only a hash.

use rand::distributions::{Alphanumeric, DistString};
use sha2::{Digest, Sha256};

/// A new API token: `hbx_` and 40 random alphanumerics.
pub fn generate_token() -> String {
    format!(
        "hbx_{}",
        Alphanumeric.sample_string(&mut rand::thread_rng(), 40)
    )
}

/// A random value for session ids, CSRF tokens, setup and portal links (43 alphanumerics,
/// more than 250 bits).
pub fn new_secret() -> String {
    Alphanumeric.sample_string(&mut rand::thread_rng(), 43)
}

/// How a secret is stored: the hex SHA-256 of it (the secrets are long and random, so a
/// plain hash is enough).
pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}
