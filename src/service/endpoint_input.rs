//! An endpoint as asked for, and the rules it must keep: one set for the API (create, update,
//! patch) and the console's forms.

use super::input::{check_text, check_uid, metadata_map, FieldError, Rejected};
use crate::db::{App, Endpoint, Store};
use crate::domain::model::DeliveryPolicy;
use crate::domain::signing::{SignatureHeader, SignatureVersion, SigningKey};
use crate::domain::time::now_ms;
use crate::domain::validate::{check_endpoint_url, is_valid_channel, is_valid_event_type};
use crate::domain::{headers, ids};
use std::collections::BTreeMap;

/// Headers hookbox sets itself, which an endpoint's custom headers may not replace.
const RESERVED_HEADERS: &[&str] = &[
    "content-type",
    "content-length",
    "host",
    "user-agent",
    "transfer-encoding",
    "connection",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "svix-id",
    "svix-timestamp",
    "svix-signature",
    "x-webhook-signature-256",
];

/// A new endpoint as asked for, before its rules are checked.
#[derive(Debug, Clone, Default)]
pub struct EndpointInput {
    pub url: String,
    pub description: String,
    pub uid: Option<String>,
    pub throttle_rate: Option<u32>,
    pub disabled: bool,
    /// Event types it receives; `None` or empty: all.
    pub event_types: Option<Vec<String>>,
    pub channels: Option<Vec<String>>,
    /// Its signing secret; generated when `None`.
    pub secret: Option<String>,
    pub metadata: Option<BTreeMap<String, String>>,
    pub headers: Option<BTreeMap<String, String>>,
    pub legacy_signature: bool,
    pub verify_ssl: Option<bool>,
    /// Retries, timeout and auto-disable where they differ from the server's.
    pub policy: DeliveryPolicy,
    /// A signature header in another sender's style.
    pub signature_header: Option<SignatureHeader>,
    /// A payload filter; `None` or blank: none.
    pub filter: Option<String>,
    /// HMAC (`v1`) or ed25519 (`v1a`) signatures; `None`: as the secret given, else `v1`.
    pub signature_version: Option<SignatureVersion>,
    /// Messages go one at a time, in the order they were accepted.
    pub ordered: bool,
}

impl EndpointInput {
    /// The endpoint of `app` with its signing key, or the first rule it breaks. With
    /// `https_only`, only `https` URLs are taken.
    pub async fn parse(
        self,
        store: &Store,
        app: &App,
        https_only: bool,
    ) -> Result<(Endpoint, SigningKey), Rejected> {
        check_url(&self.url, https_only)?;
        check_description(&self.description)?;
        check_uid(self.uid.as_deref())?;
        check_channels(self.channels.as_ref())?;
        let headers = self.headers.unwrap_or_default();
        check_headers(&headers)?;
        check_policy(&self.policy)?;
        check_signature_header(self.signature_header.as_ref(), &headers)?;
        let filter = check_filter(self.filter)?;
        let key = match self.secret.as_deref() {
            None => SigningKey::generate_for(self.signature_version.unwrap_or_default()),
            Some(s) => parse_secret(Some(s), "secret")?,
        };
        if self.signature_version.is_some_and(|v| v != key.version()) {
            return Err(FieldError::new(
                &["secret"],
                "a v1 endpoint takes a whsec_ secret, a v1a endpoint a whsk_ secret key",
            )
            .into());
        }
        check_signing_styles(
            key.version(),
            self.legacy_signature,
            self.signature_header.as_ref(),
        )?;
        let filter_types = check_event_types(store, app, self.event_types).await?;
        let now = now_ms();
        Ok((
            Endpoint {
                id: ids::EndpointId::generate(),
                app_id: app.id.clone(),
                uid: self.uid,
                url: self.url,
                description: self.description,
                filter_types,
                channels: self.channels.filter(|c| !c.is_empty()),
                rate_limit: self.throttle_rate.map(i64::from),
                legacy_signature: self.legacy_signature,
                verify_ssl: self.verify_ssl.unwrap_or(true),
                policy: self.policy,
                signature_header: self.signature_header,
                filter,
                signature_version: key.version(),
                ordered: self.ordered,
                metadata: metadata_map(self.metadata),
                headers,
                disabled: self.disabled,
                disabled_reason: self.disabled.then(|| "disabled when created".to_owned()),
                disabled_at: self.disabled.then_some(now),
                created_at: now,
                updated_at: now,
            },
            key,
        ))
    }
}

/// An absolute `http`/`https` URL (only `https` with `https_only`).
/// An endpoint's description: any text (without NUL).
pub fn check_description(d: &str) -> Result<(), FieldError> {
    check_text(&["description"], d)
}

pub fn check_url(url: &str, https_only: bool) -> Result<(), FieldError> {
    check_endpoint_url(url).map_err(|m| FieldError::new(&["url"], m))?;
    let https = reqwest::Url::parse(url).is_ok_and(|u| u.scheme() == "https");
    if https_only && !https {
        return Err(FieldError::new(
            &["url"],
            "this server only delivers to https URLs (delivery.https_only)",
        ));
    }
    Ok(())
}

/// An endpoint's own delivery policy, within its bounds.
pub fn check_policy(p: &DeliveryPolicy) -> Result<(), FieldError> {
    p.check()
        .map_err(|(field, msg)| FieldError::new(&[field], msg))
}

/// A payload filter that compiles and keeps the cost rules, as stored (`None` when blank);
/// else where and why it does not.
pub fn check_filter(f: Option<String>) -> Result<Option<String>, FieldError> {
    let Some(f) = f.filter(|f| !f.trim().is_empty()) else {
        return Ok(None);
    };
    check_text(&["filter"], &f)?;
    crate::domain::filter::compile(&f).map_err(|e| FieldError::new(&["filter"], e.to_string()))?;
    Ok(Some(f))
}

/// The HMAC styles (the legacy signature, a signature header in another sender's style) need
/// a `v1` (HMAC) endpoint: a `v1a` one has no shared secret to make them with.
pub fn check_signing_styles(
    version: SignatureVersion,
    legacy_signature: bool,
    header: Option<&SignatureHeader>,
) -> Result<(), FieldError> {
    if version != SignatureVersion::V1a {
        return Ok(());
    }
    let why = "needs a v1 (HMAC) endpoint: this one signs with v1a (ed25519)";
    if legacy_signature {
        return Err(FieldError::new(&["legacySignature"], why));
    }
    if header.is_some() {
        return Err(FieldError::new(&["signatureHeader"], why));
    }
    Ok(())
}

/// A signature header (and its event-id header): valid names, not set by hookbox itself, not
/// one of the endpoint's custom `headers`, and two different ones.
pub fn check_signature_header(
    h: Option<&SignatureHeader>,
    headers: &BTreeMap<String, String>,
) -> Result<(), FieldError> {
    let Some(h) = h else {
        return Ok(());
    };
    let names = std::iter::once(("name", &h.name))
        .chain(h.event_id_header.as_ref().map(|e| ("eventIdHeader", e)));
    let mut seen = Vec::new();
    for (field, name) in names {
        let at = |msg: String| FieldError::new(&["signatureHeader", field], msg);
        if name.len() > 256 {
            return Err(at("at most 256 characters".into()));
        }
        let parsed = reqwest::header::HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| at(format!("`{name}` is not a valid header name")))?;
        if RESERVED_HEADERS.contains(&parsed.as_str()) {
            return Err(at(format!("`{name}` is set by hookbox and cannot be used")));
        }
        if headers
            .keys()
            .any(|k| k.eq_ignore_ascii_case(parsed.as_str()))
        {
            return Err(at(format!(
                "`{name}` is one of the endpoint's custom headers"
            )));
        }
        if seen.contains(&parsed) {
            return Err(at(
                "the event-id header must differ from the signature header".into(),
            ));
        }
        seen.push(parsed);
    }
    Ok(())
}

/// Custom headers that do not take the place of the endpoint's signature header (or its
/// event-id header).
pub fn check_headers_beside(
    h: Option<&SignatureHeader>,
    headers: &BTreeMap<String, String>,
) -> Result<(), FieldError> {
    let Some(h) = h else {
        return Ok(());
    };
    let taken = std::iter::once(&h.name).chain(h.event_id_header.as_ref());
    for name in taken {
        if let Some(k) = headers.keys().find(|k| k.eq_ignore_ascii_case(name)) {
            return Err(FieldError::new(
                &["headers"],
                format!("`{k}` is the endpoint's signature header (signatureHeader)"),
            ));
        }
    }
    Ok(())
}

/// At most 10 channels, each a valid channel name.
pub fn check_channels(ch: Option<&Vec<String>>) -> Result<(), FieldError> {
    if let Some(ch) = ch {
        if ch.len() > 10 {
            return Err(FieldError::new(&["channels"], "at most 10 channels"));
        }
        if let Some(bad) = ch.iter().find(|c| !is_valid_channel(c)) {
            return Err(FieldError::new(
                &["channels"],
                format!("invalid channel `{bad}`"),
            ));
        }
    }
    Ok(())
}

/// Custom headers: valid names and values, none that hookbox sets itself, within the size cap.
pub fn check_headers(h: &BTreeMap<String, String>) -> Result<(), FieldError> {
    check_headers_size(h)?;
    for (k, v) in h {
        let name = reqwest::header::HeaderName::from_bytes(k.as_bytes()).map_err(|_| {
            FieldError::new(&["headers"], format!("`{k}` is not a valid header name"))
        })?;
        if RESERVED_HEADERS.contains(&name.as_str()) {
            return Err(FieldError::new(
                &["headers"],
                format!("`{k}` is set by hookbox and cannot be overridden"),
            ));
        }
        // Visible ASCII, spaces and tabs: no control characters, and no bytes past ASCII that
        // receivers would each decode their own way.
        if !v.bytes().all(|b| b == b'\t' || (0x20..0x7f).contains(&b)) {
            return Err(FieldError::new(
                &["headers"],
                format!("the value of `{k}` is not a valid header value"),
            ));
        }
    }
    Ok(())
}

/// Custom headers may take at most `MAX_HEADERS_BYTES`.
pub fn check_headers_size(h: &BTreeMap<String, String>) -> Result<(), FieldError> {
    let n = headers::size(h);
    if n > headers::MAX_HEADERS_BYTES {
        return Err(FieldError::new(
            &["headers"],
            format!(
                "the headers take {n} bytes; at most {} are allowed",
                headers::MAX_HEADERS_BYTES
            ),
        ));
    }
    Ok(())
}

/// Empty means every type; named types must exist and not be archived (for hookbox's own
/// application: be operational events). Sorted, without duplicates.
pub async fn check_event_types(
    store: &Store,
    app: &App,
    types: Option<Vec<String>>,
) -> Result<Option<Vec<String>>, Rejected> {
    let Some(mut types) = types.filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    if let Some(bad) = types.iter().find(|t| !is_valid_event_type(t)) {
        return Err(
            FieldError::new(&["filterTypes"], format!("invalid event type name `{bad}`")).into(),
        );
    }
    let missing = if app.is_operational() {
        crate::operational::unknown_events(&types)
    } else {
        store.missing_event_types(types.clone()).await?
    };
    if !missing.is_empty() {
        return Err(FieldError::new(
            &["filterTypes"],
            format!("unknown event types: {}", missing.join(", ")),
        )
        .into());
    }
    types.sort();
    types.dedup();
    Ok(Some(types))
}

/// A supplied secret (in field `field`), or a new random one.
pub fn parse_secret(s: Option<&str>, field: &str) -> Result<SigningKey, FieldError> {
    match s {
        None => Ok(SigningKey::generate()),
        Some(s) => SigningKey::parse(s).map_err(|e| FieldError::new(&[field], e.to_string())),
    }
}
