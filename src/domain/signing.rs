//! Standard Webhooks signatures: `v1,` + base64(HMAC-SHA256(key, "{id}.{ts}.{body}")).

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

pub const SECRET_PREFIX: &str = "whsec_";

/// A signing key: the decoded bytes of a `whsec_…` secret.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningKey(Vec<u8>);

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
}

impl SigningKey {
    /// Parses `whsec_<base64>` or bare base64 of 24 to 75 bytes.
    pub fn parse(secret: &str) -> Result<Self, SecretError> {
        let b64 = secret.strip_prefix(SECRET_PREFIX).unwrap_or(secret);
        if b64.len() < 32 || b64.len() > 100 {
            return Err(SecretError::BadLength);
        }
        let bytes = STANDARD.decode(b64).map_err(|_| SecretError::NotBase64)?;
        if !(24..=75).contains(&bytes.len()) {
            return Err(SecretError::BadLength);
        }
        Ok(Self(bytes))
    }

    /// A fresh random key of 24 bytes.
    pub fn generate() -> Self {
        let mut bytes = vec![0u8; 24];
        rand::thread_rng().fill_bytes(&mut bytes);
        Self(bytes)
    }

    /// The `whsec_…` form that users see and store.
    pub fn to_secret_string(&self) -> String {
        format!("{SECRET_PREFIX}{}", STANDARD.encode(&self.0))
    }

    /// One `v1,<base64>` signature of `{msg_id}.{timestamp}.{body}`.
    pub fn sign(&self, msg_id: &str, timestamp: i64, body: &[u8]) -> String {
        // HMAC accepts keys of any length, so this cannot fail.
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(msg_id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
    }

    /// The legacy `X-Webhook-Signature-256` value: `sha256=` + hex(HMAC-SHA256(key, body)),
    /// keyed with the decoded bytes of the `whsec_…` secret and covering only the body.
    pub fn legacy_sign(&self, body: &[u8]) -> String {
        HeaderFormat::Github.value(self, [self], 0, body)
    }

    /// HMAC-SHA256 under this key of `parts`, one after the other.
    fn hmac(&self, parts: &[&[u8]]) -> [u8; 32] {
        // HMAC accepts keys of any length, so this cannot fail.
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length");
        for p in parts {
            mac.update(p);
        }
        mac.finalize().into_bytes().into()
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

    /// The header's value: made with the `current` key (Stripe style: with every `valid` one).
    pub fn value<'a>(
        self,
        current: &SigningKey,
        valid: impl IntoIterator<Item = &'a SigningKey>,
        timestamp: i64,
        body: &[u8],
    ) -> String {
        match self {
            HeaderFormat::Github => format!("sha256={}", hex::encode(current.hmac(&[body]))),
            HeaderFormat::Hex => hex::encode(current.hmac(&[body])),
            HeaderFormat::Base64 => STANDARD.encode(current.hmac(&[body])),
            HeaderFormat::Stripe => {
                let ts = timestamp.to_string();
                let mut out = format!("t={ts}");
                for k in valid {
                    out.push_str(",v1=");
                    out.push_str(&hex::encode(k.hmac(&[ts.as_bytes(), b".", body])));
                }
                out
            }
        }
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
        let at = |f: HeaderFormat| f.value(&key, [&key], 1_614_265_330, body);
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
        let both = HeaderFormat::Stripe.value(&key, [&key, &other], 1_614_265_330, body);
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
    fn legacy_signature_is_hex_hmac_sha256_of_the_body_under_the_decoded_key() {
        // RFC 4231, test case 2.
        assert_eq!(
            SigningKey(b"Jefe".to_vec()).legacy_sign(b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // The Standard Webhooks vector's key and body (computed independently with Python's hmac).
        let key = SigningKey::parse("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD").unwrap();
        assert_eq!(
            key.legacy_sign(br#"{"email":"test@example.com","username":"test_user"}"#),
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
