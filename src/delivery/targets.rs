//! What the dispatcher needs to send to an endpoint, cached and invalidated on change.

use crate::db::{DbResult, Store};
use crate::domain::signing::SigningKey;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct Target {
    pub endpoint_id: String,
    pub url: String,
    /// `url` parsed once; `None` when it no longer parses (the attempt then says why).
    pub parsed: Option<reqwest::Url>,
    pub headers: Vec<(String, String)>,
    /// `headers` as the attempt log shows them: credentials redacted (`Bearer ***`).
    pub headers_shown: Vec<(String, String)>,
    /// Signing keys with the time a rotated one stops signing.
    pub keys: Vec<(SigningKey, Option<i64>)>,
    pub disabled: bool,
    /// Most messages per second (a token bucket in the dispatcher); `None` is unlimited.
    pub rate_limit: Option<u32>,
    /// Also send `X-Webhook-Signature-256`.
    pub legacy_signature: bool,
    /// `false` sends through the client that skips certificate verification.
    pub verify_ssl: bool,
    /// Retries and timeout where they differ from the server's.
    pub policy: crate::domain::model::DeliveryPolicy,
    /// A signature header in another sender's style, sent too.
    pub signature_header: Option<crate::domain::signing::SignatureHeader>,
}

impl Target {
    /// Keys valid at `now`.
    pub fn keys_at(&self, now: i64) -> impl Iterator<Item = &SigningKey> {
        self.keys
            .iter()
            .filter(move |(_, exp)| exp.is_none_or(|e| e > now))
            .map(|(k, _)| k)
    }

    /// The current key: the one without an expiry (rotated keys only sign until theirs).
    pub fn current_key(&self) -> Option<&SigningKey> {
        self.keys
            .iter()
            .find(|(_, exp)| exp.is_none())
            .or_else(|| self.keys.first())
            .map(|(k, _)| k)
    }
}

type Cached = HashMap<String, (Arc<Target>, Option<Instant>)>;

#[derive(Default)]
pub struct Targets {
    map: Mutex<Cached>,
    generation: AtomicU64,
    /// How long an entry is believed: `None` for as long as this process is told of every
    /// change (one server); a short time where other nodes change endpoints too, as a
    /// backstop for their signals.
    ttl: Option<Duration>,
}

impl Targets {
    /// A cache whose entries expire after `ttl` (see [`Targets::ttl`]).
    pub fn with_ttl(ttl: Option<Duration>) -> Targets {
        Targets {
            ttl,
            ..Targets::default()
        }
    }

    /// The endpoint's target, or `None` when the endpoint no longer exists.
    pub async fn get(&self, store: &Store, endpoint_id: &str) -> DbResult<Option<Arc<Target>>> {
        if let Some((t, expires)) = self.lock().get(endpoint_id) {
            if expires.is_none_or(|at| Instant::now() < at) {
                return Ok(Some(t.clone()));
            }
        }
        let generation = self.generation.load(Ordering::Acquire);
        let loaded = store
            .endpoint_for_sending(endpoint_id, crate::domain::time::now_ms())
            .await?;
        let Some((ep, secrets)) = loaded else {
            return Ok(None);
        };
        let target = Arc::new(Target {
            endpoint_id: ep.id.to_string(),
            parsed: reqwest::Url::parse(&ep.url).ok(),
            url: ep.url,
            headers_shown: ep
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), crate::domain::headers::shown(k, v)))
                .collect(),
            headers: ep.headers.into_iter().collect(),
            keys: secrets
                .into_iter()
                .filter_map(|s| SigningKey::parse(&s.secret).ok().map(|k| (k, s.expires_at)))
                .collect(),
            disabled: ep.disabled,
            // Zero or less is no limit (a rate of zero would never send).
            rate_limit: ep
                .rate_limit
                .and_then(|r| u32::try_from(r).ok())
                .filter(|r| *r > 0),
            legacy_signature: ep.legacy_signature,
            verify_ssl: ep.verify_ssl,
            policy: ep.policy,
            signature_header: ep.signature_header,
        });
        let mut map = self.lock();
        // A change committed while we read must not be overwritten by what we read before it.
        if self.generation.load(Ordering::Acquire) == generation {
            let expires = self.ttl.map(|ttl| Instant::now() + ttl);
            map.insert(ep.id.into(), (target.clone(), expires));
        }
        Ok(Some(target))
    }

    /// Forget an endpoint after it changed.
    pub fn invalidate(&self, endpoint_id: &str) {
        let mut map = self.lock();
        self.generation.fetch_add(1, Ordering::AcqRel);
        map.remove(endpoint_id);
    }

    /// Forget every endpoint (changes may have been missed).
    pub fn clear(&self) {
        let mut map = self.lock();
        self.generation.fetch_add(1, Ordering::AcqRel);
        map.clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Cached> {
        self.map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
