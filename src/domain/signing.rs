//! Standard Webhooks signatures: `v1,` + base64(HMAC-SHA256(key, "{id}.{ts}.{body}")), or
//! `v1a,` + base64(ed25519 signature of "{id}.{ts}.{body}") for an endpoint with a `whsk_`
//! secret key (its receivers verify with the `whpk_` public key).

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

pub const SECRET_PREFIX: &str = "whsec_";
/// An ed25519 secret key (`v1a`): base64 of its 32-byte seed and 32-byte public key.
pub const SECRET_KEY_PREFIX: &str = "whsk_";
/// An ed25519 public key: base64 of its 32 bytes.
pub const PUBLIC_KEY_PREFIX: &str = "whpk_";

/// A signing key: the decoded bytes of a `whsec_…` secret, or an ed25519 key pair.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningKey(Key);

#[derive(Clone, PartialEq, Eq)]
enum Key {
    Hmac(HmacKey),
    Ed25519(ed25519_dalek::SigningKey),
}

/// An HMAC key's bytes, and the HMAC state keyed with them (its inner and outer padded
/// blocks already hashed), which each signature starts from.
#[derive(Clone)]
struct HmacKey {
    bytes: Vec<u8>,
    keyed: Hmac<Sha256>,
}

impl HmacKey {
    fn new(bytes: Vec<u8>) -> HmacKey {
        // HMAC accepts keys of any length, so this cannot fail.
        let keyed = Hmac::<Sha256>::new_from_slice(&bytes).expect("HMAC takes any key length");
        HmacKey { bytes, keyed }
    }
}

impl PartialEq for HmacKey {
    fn eq(&self, other: &Self) -> bool {
        self.bytes == other.bytes
    }
}

impl Eq for HmacKey {}

/// How an endpoint's requests are signed (Standard Webhooks' signature versions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SignatureVersion {
    /// `v1`: HMAC-SHA256 under a shared `whsec_` secret.
    #[default]
    V1,
    /// `v1a`: ed25519 under a `whsk_` secret key; receivers hold only the `whpk_` public key.
    V1a,
}

impl SignatureVersion {
    pub const fn name(self) -> &'static str {
        match self {
            SignatureVersion::V1 => "v1",
            SignatureVersion::V1a => "v1a",
        }
    }

    pub fn parse(name: &str) -> Option<SignatureVersion> {
        [SignatureVersion::V1, SignatureVersion::V1a]
            .into_iter()
            .find(|v| v.name() == name)
    }
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKey(..)")
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SecretError {
    #[error("secret must be base64 (optionally prefixed with whsec_)")]
    NotBase64,
    #[error("secret must decode to between 24 and 75 bytes")]
    BadLength,
    #[error("a whsk_ secret key must be the base64 of an ed25519 seed (32 bytes) or of the seed and its public key (64 bytes)")]
    BadSecretKey,
}

impl SigningKey {
    /// Parses `whsec_<base64>` or bare base64 of 24 to 75 bytes (an HMAC key), or
    /// `whsk_<base64>` (an ed25519 key pair).
    pub fn parse(secret: &str) -> Result<Self, SecretError> {
        if let Some(b64) = secret.strip_prefix(SECRET_KEY_PREFIX) {
            return Self::parse_secret_key(b64);
        }
        let b64 = secret.strip_prefix(SECRET_PREFIX).unwrap_or(secret);
        if b64.len() < 32 || b64.len() > 100 {
            return Err(SecretError::BadLength);
        }
        let bytes = STANDARD.decode(b64).map_err(|_| SecretError::NotBase64)?;
        if !(24..=75).contains(&bytes.len()) {
            return Err(SecretError::BadLength);
        }
        Ok(Self(Key::Hmac(HmacKey::new(bytes))))
    }

    fn parse_secret_key(b64: &str) -> Result<Self, SecretError> {
        let bytes = STANDARD.decode(b64).map_err(|_| SecretError::NotBase64)?;
        let seed: [u8; 32] = bytes
            .get(..32)
            .and_then(|s| s.try_into().ok())
            .ok_or(SecretError::BadSecretKey)?;
        let key = ed25519_dalek::SigningKey::from_bytes(&seed);
        // 64 bytes: the seed and its public key, which must be the one the seed makes.
        match bytes.len() {
            32 => {}
            64 if bytes[32..] == key.verifying_key().to_bytes() => {}
            _ => return Err(SecretError::BadSecretKey),
        }
        Ok(Self(Key::Ed25519(key)))
    }

    /// A fresh random HMAC key of 24 bytes.
    pub fn generate() -> Self {
        let mut bytes = vec![0u8; 24];
        rand::thread_rng().fill_bytes(&mut bytes);
        Self(Key::Hmac(HmacKey::new(bytes)))
    }

    /// A fresh key of signature version `v`.
    pub fn generate_for(v: SignatureVersion) -> Self {
        match v {
            SignatureVersion::V1 => Self::generate(),
            SignatureVersion::V1a => {
                let mut seed = [0u8; 32];
                rand::thread_rng().fill_bytes(&mut seed);
                Self(Key::Ed25519(ed25519_dalek::SigningKey::from_bytes(&seed)))
            }
        }
    }

    /// The signature version this key signs with.
    pub fn version(&self) -> SignatureVersion {
        match self.0 {
            Key::Hmac(_) => SignatureVersion::V1,
            Key::Ed25519(_) => SignatureVersion::V1a,
        }
    }

    /// The `whsec_…` (or `whsk_…`) form that is stored.
    pub fn to_secret_string(&self) -> String {
        match &self.0 {
            Key::Hmac(k) => format!("{SECRET_PREFIX}{}", STANDARD.encode(&k.bytes)),
            Key::Ed25519(k) => {
                let mut pair = k.to_bytes().to_vec();
                pair.extend_from_slice(&k.verifying_key().to_bytes());
                format!("{SECRET_KEY_PREFIX}{}", STANDARD.encode(pair))
            }
        }
    }

    /// What receivers verify with, as users are shown it: the `whsec_…` secret, or for an
    /// ed25519 key its `whpk_…` public key (the secret key is never shown).
    pub fn to_shown_string(&self) -> String {
        match &self.0 {
            Key::Hmac(_) => self.to_secret_string(),
            Key::Ed25519(k) => format!(
                "{PUBLIC_KEY_PREFIX}{}",
                STANDARD.encode(k.verifying_key().to_bytes())
            ),
        }
    }

    /// One `v1,<base64>` (or `v1a,<base64>`) signature of `{msg_id}.{timestamp}.{body}`.
    pub fn sign(&self, msg_id: &str, timestamp: i64, body: &[u8]) -> String {
        let ts = timestamp.to_string();
        match &self.0 {
            Key::Hmac(_) => {
                let parts: [&[u8]; 5] = [msg_id.as_bytes(), b".", ts.as_bytes(), b".", body];
                let mac = self.try_hmac(&parts).unwrap_or_default();
                format!("v1,{}", STANDARD.encode(mac))
            }
            Key::Ed25519(k) => {
                use ed25519_dalek::Signer;
                let mut signed = Vec::with_capacity(msg_id.len() + ts.len() + body.len() + 2);
                for part in [msg_id.as_bytes(), b".", ts.as_bytes(), b".", body] {
                    signed.extend_from_slice(part);
                }
                format!("v1a,{}", STANDARD.encode(k.sign(&signed).to_bytes()))
            }
        }
    }

    /// The legacy `X-Webhook-Signature-256` value: `sha256=` + hex(HMAC-SHA256(key, body)),
    /// keyed with the decoded bytes of the `whsec_…` secret and covering only the body
    /// (`None` for an ed25519 key).
    pub fn legacy_sign(&self, body: &[u8]) -> Option<String> {
        HeaderFormat::Github.value(self, [self], 0, body)
    }

    /// HMAC-SHA256 under this key of `parts`, one after the other; `None` for an ed25519
    /// key (the styles that need an HMAC are refused for `v1a` endpoints).
    fn try_hmac(&self, parts: &[&[u8]]) -> Option<[u8; 32]> {
        let Key::Hmac(key) = &self.0 else {
            return None;
        };
        let mut mac = key.keyed.clone();
        for p in parts {
            mac.update(p);
        }
        Some(mac.finalize().into_bytes().into())
    }
}

/// The `webhook-signature` header value: one signature per valid key, space-separated.
pub fn signature_header<'a>(
    keys: impl IntoIterator<Item = &'a SigningKey>,
    msg_id: &str,
    timestamp: i64,
    body: &[u8],
) -> String {
    let mut out = String::new();
    for k in keys {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(&k.sign(msg_id, timestamp, body));
    }
    out
}

/// How a signature header in another sender's style is written, for receivers that verify
/// that style (all HMAC-SHA256 under the decoded bytes of the `whsec_…` secret).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderFormat {
    /// `sha256=<hex of HMAC(body)>`, as GitHub sends `X-Hub-Signature-256`.
    Github,
    /// `t=<timestamp>,v1=<hex of HMAC("timestamp.body")>`, as Stripe sends `Stripe-Signature`
    /// (one `v1` per valid secret during a rotation).
    Stripe,
    /// `<hex of HMAC(body)>`.
    Hex,
    /// `<base64 of HMAC(body)>`.
    Base64,
}

impl HeaderFormat {
    pub const ALL: [HeaderFormat; 4] = [
        HeaderFormat::Github,
        HeaderFormat::Stripe,
        HeaderFormat::Hex,
        HeaderFormat::Base64,
    ];

    pub const fn name(self) -> &'static str {
        match self {
            HeaderFormat::Github => "github",
            HeaderFormat::Stripe => "stripe",
            HeaderFormat::Hex => "hex",
            HeaderFormat::Base64 => "base64",
        }
    }

    pub fn parse(name: &str) -> Option<HeaderFormat> {
        HeaderFormat::ALL.into_iter().find(|f| f.name() == name)
    }

    /// What the value looks like, for forms and pages.
    pub const fn label(self) -> &'static str {
        match self {
            HeaderFormat::Github => "sha256=<hex HMAC of the body> (GitHub style)",
            HeaderFormat::Stripe => "t=<timestamp>,v1=<hex HMAC of timestamp.body> (Stripe style)",
            HeaderFormat::Hex => "<hex HMAC of the body>",
            HeaderFormat::Base64 => "<base64 HMAC of the body>",
        }
    }

    /// The header's value: made with the `current` key (Stripe style: with every `valid` one);
    /// `None` when the key is not an HMAC key.
    pub fn value<'a>(
        self,
        current: &SigningKey,
        valid: impl IntoIterator<Item = &'a SigningKey>,
        timestamp: i64,
        body: &[u8],
    ) -> Option<String> {
        Some(match self {
            HeaderFormat::Github => format!("sha256={}", hex::encode(current.try_hmac(&[body])?)),
            HeaderFormat::Hex => hex::encode(current.try_hmac(&[body])?),
            HeaderFormat::Base64 => STANDARD.encode(current.try_hmac(&[body])?),
            HeaderFormat::Stripe => {
                let ts = timestamp.to_string();
                let mut out = format!("t={ts}");
                for k in valid {
                    out.push_str(",v1=");
                    out.push_str(&hex::encode(k.try_hmac(&[ts.as_bytes(), b".", body])?));
                }
                out
            }
        })
    }
}

/// A signature header in another sender's style, sent besides the Standard Webhooks ones, and
/// optionally a header carrying the message id (what such receivers take as the event id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureHeader {
    pub name: String,
    pub format: HeaderFormat,
    pub event_id_header: Option<String>,
}

impl SignatureHeader {
    /// Its stored form (JSON).
    pub fn stored(&self) -> String {
        serde_json::json!({
            "name": self.name,
            "format": self.format.name(),
            "eventIdHeader": self.event_id_header,
        })
        .to_string()
    }

    /// From its stored form (`None` when it does not read).
    pub fn from_stored(stored: &str) -> Option<SignatureHeader> {
        let v: serde_json::Value = serde_json::from_str(stored).ok()?;
        Some(SignatureHeader {
            name: v["name"].as_str()?.to_owned(),
            format: HeaderFormat::parse(v["format"].as_str()?)?,
            event_id_header: v["eventIdHeader"].as_str().map(str::to_owned),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn other_senders_styles_match_known_answers() {
        // Computed independently with Python's hmac, hashlib and base64.
        let key = SigningKey::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let body = br#"{"test":2432232314}"#;
        let hex = "ed5227e0c562fcec3ce74825328f04760eebe119e9bfe82c6c5f936b65b228bb";
        let at = |f: HeaderFormat| f.value(&key, [&key], 1_614_265_330, body).unwrap();
        assert_eq!(at(HeaderFormat::Github), format!("sha256={hex}"));
        assert_eq!(at(HeaderFormat::Hex), hex);
        assert_eq!(
            at(HeaderFormat::Base64),
            "7VIn4MVi/Ow850glMo8Edg7r4Rnpv+gsbF+Ta2WyKLs="
        );
        assert_eq!(
            at(HeaderFormat::Stripe),
            "t=1614265330,v1=9f9ed59e194e0303a4822c4ebb185109b749914e5879f6689df9223646fe6ff8"
        );
        // During a rotation, Stripe style carries one v1 per valid key.
        let other = SigningKey::generate();
        let both = HeaderFormat::Stripe
            .value(&key, [&key, &other], 1_614_265_330, body)
            .unwrap();
        assert_eq!(both.matches(",v1=").count(), 2, "{both}");
        for f in HeaderFormat::ALL {
            assert_eq!(HeaderFormat::parse(f.name()), Some(f));
        }
        let h = SignatureHeader {
            name: "X-Hub-Signature-256".into(),
            format: HeaderFormat::Github,
            event_id_header: Some("X-Event-Id".into()),
        };
        assert_eq!(SignatureHeader::from_stored(&h.stored()), Some(h));
    }

    #[test]
    fn signs_standard_webhooks_known_answer_vectors() {
        let key = SigningKey::parse("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD").unwrap();
        assert_eq!(
            key.sign(
                "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
                1_649_367_553,
                br#"{"email":"test@example.com","username":"test_user"}"#
            ),
            "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw="
        );
        let key = SigningKey::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert_eq!(
            key.sign(
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1_614_265_330,
                br#"{"test": 2432232314}"#
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn v1a_signs_with_ed25519_known_answers_and_shows_only_the_public_key() {
        // RFC 8032's first key; the signature computed independently with Python's
        // cryptography package.
        let seed = "whsk_nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A=";
        let pair = "whsk_nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2DXWpgBgrEKt9VL/tPJZAc6DuFy89qmIyWvAhpo9wdRGg==";
        let key = SigningKey::parse(seed).unwrap();
        assert_eq!(SigningKey::parse(pair).unwrap(), key);
        assert_eq!(key.version(), SignatureVersion::V1a);
        assert_eq!(key.to_secret_string(), pair);
        assert_eq!(
            key.to_shown_string(),
            "whpk_11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="
        );
        assert_eq!(
            key.sign(
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1_614_265_330,
                br#"{"test": 2432232314}"#
            ),
            "v1a,fldxM4gAKugP6nnt1hdz3sgGfZ6d99nzrMFnZOELIxbzEHoVmAb2ADpkJK7zgPePmPsle0zV9jSeGlHFG2NVAw=="
        );
        // No HMAC style from an ed25519 key.
        assert_eq!(key.legacy_sign(b"{}"), None);
        assert_eq!(HeaderFormat::Stripe.value(&key, [&key], 1, b"{}"), None);
        // A public key that is not the seed's, and other lengths, are refused.
        let mut wrong = pair.to_owned();
        wrong.replace_range(wrong.len() - 4..wrong.len() - 2, "AA");
        assert_eq!(SigningKey::parse(&wrong), Err(SecretError::BadSecretKey));
        assert_eq!(
            SigningKey::parse("whsk_AAAA"),
            Err(SecretError::BadSecretKey)
        );
        let fresh = SigningKey::generate_for(SignatureVersion::V1a);
        assert_eq!(SigningKey::parse(&fresh.to_secret_string()).unwrap(), fresh);
        assert_ne!(fresh, key);
        assert_eq!(
            SigningKey::generate_for(SignatureVersion::V1).version(),
            SignatureVersion::V1
        );
    }

    #[test]
    fn legacy_signature_is_hex_hmac_sha256_of_the_body_under_the_decoded_key() {
        // RFC 4231, test case 2.
        assert_eq!(
            SigningKey(Key::Hmac(HmacKey::new(b"Jefe".to_vec())))
                .legacy_sign(b"what do ya want for nothing?")
                .unwrap(),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // The Standard Webhooks vector's key and body (computed independently with Python's hmac).
        let key = SigningKey::parse("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD").unwrap();
        assert_eq!(
            key.legacy_sign(br#"{"email":"test@example.com","username":"test_user"}"#)
                .unwrap(),
            "sha256=83cc2611bccec7432b7f4733ec80ac7f9ad46f3f29bdcc391d40214349bc71cf"
        );
    }

    #[test]
    fn every_key_signs_space_separated() {
        let a = SigningKey::generate();
        let b = SigningKey::generate();
        let h = signature_header([&a, &b], "msg_x", 5, b"{}");
        assert_eq!(
            h,
            format!(
                "{} {}",
                a.sign("msg_x", 5, b"{}"),
                b.sign("msg_x", 5, b"{}")
            )
        );
        let parts: Vec<&str> = h.split(' ').collect();
        assert!(
            parts.len() == 2 && parts[0] != parts[1] && parts.iter().all(|p| p.starts_with("v1,"))
        );
        assert_eq!(
            signature_header([&a], "msg_x", 5, b"{}"),
            parts[0],
            "one key: no separator"
        );
    }

    #[test]
    fn generated_secret_round_trips_and_bad_secrets_are_refused() {
        let k = SigningKey::generate();
        let s = k.to_secret_string();
        assert!(s.starts_with("whsec_"));
        assert_eq!(SigningKey::parse(&s).unwrap(), k);
        assert_eq!(
            SigningKey::parse("whsec_short"),
            Err(SecretError::BadLength)
        );
        assert_eq!(
            SigningKey::parse("whsec_!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"),
            Err(SecretError::NotBase64)
        );
    }
}
