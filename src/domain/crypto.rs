//! Sealing endpoint signing secrets at rest: XChaCha20-Poly1305 under a 32-byte main key.
//!
//! Stored form: `v1:` + base64(nonce (24 bytes) ‖ ciphertext ‖ tag). Each value has a fresh
//! random nonce, and the endpoint id is the associated data, so a sealed value copied to
//! another endpoint's row does not open.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;

/// Prefix of a sealed value; a plaintext secret starts with `whsec_` instead.
pub const SEALED_PREFIX: &str = "v1:";
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;

/// The key that seals every endpoint secret.
#[derive(Clone, PartialEq, Eq)]
pub struct MainKey([u8; 32]);

impl std::fmt::Debug for MainKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MainKey(..)")
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CryptoError {
    #[error("a main key must be base64 of exactly 32 bytes")]
    BadKey,
    #[error("the stored secret is not in the `v1:` sealed format")]
    NotSealed,
    #[error("the stored secret does not decrypt with this main key (wrong key, or tampered)")]
    Undecryptable,
}

impl MainKey {
    /// A fresh random key.
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        Self(bytes)
    }

    /// Parses standard base64 of 32 bytes (surrounding whitespace, e.g. a file's final
    /// newline, is ignored).
    pub fn from_base64(s: &str) -> Result<Self, CryptoError> {
        let bytes = STANDARD.decode(s.trim()).map_err(|_| CryptoError::BadKey)?;
        let arr: [u8; 32] = bytes.try_into().map_err(|_| CryptoError::BadKey)?;
        Ok(Self(arr))
    }

    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.0)
    }

    /// A 32-byte key for `purpose`, derived from this one (HMAC-SHA256): the same on every
    /// node that shares the main key, and useless for opening sealed secrets.
    pub fn derive(&self, purpose: &str) -> [u8; 32] {
        use hmac::Mac;
        let mut mac = <hmac::Hmac<sha2::Sha256> as Mac>::new_from_slice(&self.0)
            .expect("HMAC takes any key length");
        mac.update(purpose.as_bytes());
        mac.finalize().into_bytes().into()
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new((&self.0).into())
    }

    /// Seals `plaintext` for the endpoint `endpoint_id`.
    pub fn seal(&self, endpoint_id: &str, plaintext: &str) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        // Encryption fails only when the plaintext exceeds the cipher's ~256 GiB limit; a
        // signing secret is under 110 bytes.
        let ciphertext = self
            .cipher()
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plaintext.as_bytes(),
                    aad: endpoint_id.as_bytes(),
                },
            )
            .expect("a short secret encrypts");
        let mut out = Vec::with_capacity(NONCE_LEN + ciphertext.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ciphertext);
        format!("{SEALED_PREFIX}{}", STANDARD.encode(out))
    }

    /// Opens a value sealed by [`MainKey::seal`] for the same endpoint.
    pub fn open(&self, endpoint_id: &str, stored: &str) -> Result<String, CryptoError> {
        let b64 = stored
            .strip_prefix(SEALED_PREFIX)
            .ok_or(CryptoError::NotSealed)?;
        let raw = STANDARD.decode(b64).map_err(|_| CryptoError::NotSealed)?;
        if raw.len() < NONCE_LEN + TAG_LEN {
            return Err(CryptoError::NotSealed);
        }
        let (nonce, ciphertext) = raw.split_at(NONCE_LEN);
        let plain = self
            .cipher()
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: endpoint_id.as_bytes(),
                },
            )
            .map_err(|_| CryptoError::Undecryptable)?;
        String::from_utf8(plain).map_err(|_| CryptoError::Undecryptable)
    }
}

/// Whether a stored value is a sealed one (as opposed to a legacy plaintext `whsec_…`).
pub fn is_sealed(stored: &str) -> bool {
    stored.starts_with(SEALED_PREFIX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";

    #[test]
    fn sealed_secret_opens_with_the_same_key_and_endpoint() {
        let key = MainKey::generate();
        let sealed = key.seal("ep_1", SECRET);
        assert!(is_sealed(&sealed));
        assert!(!sealed.contains("C2FVsBQIhrscChlQIMV"));
        assert_eq!(key.open("ep_1", &sealed).unwrap(), SECRET);
    }

    #[test]
    fn sealing_twice_gives_different_values() {
        let key = MainKey::generate();
        assert_ne!(key.seal("ep_1", SECRET), key.seal("ep_1", SECRET));
    }

    #[test]
    fn another_key_cannot_open_a_sealed_secret() {
        let sealed = MainKey::generate().seal("ep_1", SECRET);
        assert_eq!(
            MainKey::generate().open("ep_1", &sealed),
            Err(CryptoError::Undecryptable)
        );
    }

    #[test]
    fn a_sealed_secret_moved_to_another_endpoint_does_not_open() {
        let key = MainKey::generate();
        let sealed = key.seal("ep_1", SECRET);
        assert_eq!(key.open("ep_2", &sealed), Err(CryptoError::Undecryptable));
    }

    #[test]
    fn a_tampered_sealed_secret_does_not_open() {
        let key = MainKey::generate();
        let sealed = key.seal("ep_1", SECRET);
        let mut raw = STANDARD.decode(&sealed[SEALED_PREFIX.len()..]).unwrap();
        for i in [0, NONCE_LEN, raw.len() - 1] {
            let mut t = raw.clone();
            t[i] ^= 1;
            let tampered = format!("{SEALED_PREFIX}{}", STANDARD.encode(&t));
            assert_eq!(
                key.open("ep_1", &tampered),
                Err(CryptoError::Undecryptable),
                "byte {i}"
            );
        }
        raw.truncate(NONCE_LEN + TAG_LEN - 1);
        let short = format!("{SEALED_PREFIX}{}", STANDARD.encode(&raw));
        assert_eq!(key.open("ep_1", &short), Err(CryptoError::NotSealed));
        assert_eq!(key.open("ep_1", SECRET), Err(CryptoError::NotSealed));
    }

    #[test]
    fn main_key_parses_only_32_bytes_of_base64() {
        let key = MainKey::generate();
        assert_eq!(
            MainKey::from_base64(&format!("{}\n", key.to_base64())).unwrap(),
            key
        );
        assert_eq!(
            MainKey::from_base64(&STANDARD.encode([0u8; 31])),
            Err(CryptoError::BadKey)
        );
        assert_eq!(
            MainKey::from_base64("not base64!"),
            Err(CryptoError::BadKey)
        );
        assert_eq!(format!("{key:?}"), "MainKey(..)");
    }
}
