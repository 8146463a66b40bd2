//! Endpoints: what is sent in and out, their secret, headers, statistics, health and test sends.

use super::*;
use crate::domain::model::DeliveryPolicy;
use crate::domain::signing::{HeaderFormat, SignatureHeader, SignatureVersion};

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EndpointIn {
    /// An absolute `http` or `https` URL.
    #[schema(
        max_length = 65536,
        pattern = r"^[hH][tT][tT][pP][sS]?://[a-zA-Z0-9]",
        example = "https://example.com/webhook/"
    )]
    pub url: String,
    #[serde(default)]
    pub description: String,
    #[schema(min_length = 1, max_length = 256, pattern = r"^[a-zA-Z0-9\-_.]+$")]
    pub uid: Option<String>,
    /// Maximum messages per second to send to this endpoint.
    #[serde(default, alias = "rateLimit", deserialize_with = "whole")]
    #[schema(maximum = 4294967295_u64, format = "uint32")]
    pub throttle_rate: Option<u32>,
    #[serde(default)]
    pub disabled: bool,
    /// Event types this endpoint receives (each must exist); empty or `null` means all.
    #[serde(alias = "filterTypes")]
    #[schema(inline, value_type = Option<Vec<EventTypeName>>)]
    pub event_types: Option<Vec<String>>,
    /// Channels this endpoint listens to (omit for all).
    #[schema(inline, value_type = Option<Vec<Channel>>, max_items = 10)]
    pub channels: Option<Vec<String>>,
    /// The signing secret: 24 to 75 bytes in standard base64, optionally prefixed with
    /// `whsec_`; or for `v1a`, a `whsk_` ed25519 secret key (base64 of the 32-byte seed, or of
    /// the seed and its public key); generated when absent.
    #[schema(
        pattern = r"^(?:(whsec_)?(?:[A-Za-z0-9+/]{4}){8,24}(?:[A-Za-z0-9+/]{4}|[A-Za-z0-9+/][AQgw]==|[A-Za-z0-9+/]{2}[AEIMQUYcgkosw048]=)?|whsk_(?:[A-Za-z0-9+/]{4}){10}[A-Za-z0-9+/]{2}[AEIMQUYcgkosw048]=)$",
        example = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"
    )]
    pub secret: Option<String>,
    #[schema(value_type = Option<BTreeMap<String, String>>)]
    pub metadata: Option<Metadata>,
    /// Extra headers sent with every delivery.
    #[schema(schema_with = optional_headers_schema)]
    pub headers: Option<BTreeMap<String, String>>,
    /// Also send `X-Webhook-Signature-256` (hex HMAC-SHA256 of the body).
    #[serde(default)]
    pub legacy_signature: bool,
    /// `false` skips TLS certificate verification; absent means `true`.
    pub verify_ssl: Option<bool>,
    /// This endpoint's retries: the wait before each, in seconds (the first attempt is at
    /// once; `[]`: no retry). Absent or `null`: the server's schedule.
    #[schema(inline, value_type = Option<Vec<RetryWait>>, max_items = 20)]
    pub retry_schedule: Option<Vec<u32>>,
    /// How long a request to this endpoint may take, in seconds. Absent or `null`: the
    /// server's `delivery.request_timeout`.
    #[serde(default, deserialize_with = "whole")]
    #[schema(minimum = 1, maximum = 300)]
    pub timeout_seconds: Option<u32>,
    /// How long every attempt may fail before this endpoint is disabled, in seconds (`0`:
    /// never). Absent or `null`: the server's `delivery.auto_disable_after`.
    #[serde(default, deserialize_with = "whole")]
    #[schema(maximum = 2592000)]
    pub auto_disable_after_seconds: Option<u32>,
    /// A signature header in another sender's style, sent too.
    pub signature_header: Option<SignatureHeaderSpec>,
    /// A payload filter (hookbox extension): a Common Expression Language expression over
    /// `eventType`, `payload`, `channels` and `tags` that must be true for a message to be
    /// sent here, e.g. `payload.amount >= 1000 && payload.currency in ["EUR", "USD"]`.
    /// Absent, `null` or blank: none. One that does not compile is a 422 saying where.
    #[schema(max_length = 1000, example = "payload.amount >= 1000")]
    pub filter: Option<String>,
    /// How requests are signed (hookbox extension): `v1`, HMAC-SHA256 under a `whsec_`
    /// secret (the default), or `v1a`, ed25519 under a `whsk_` secret key whose `whpk_`
    /// public key is what `…/secret` returns. Absent: as `secret` says, else `v1`.
    pub signature_version: Option<SignatureVersionSpec>,
    /// Ordered delivery (hookbox extension): messages reach this endpoint one at a time, in
    /// the order they were accepted; the next waits until the one before was delivered,
    /// failed for good or was skipped. Absent: `false`.
    #[serde(default)]
    pub ordered: bool,
}

/// Standard Webhooks signature versions: `v1` (HMAC-SHA256) or `v1a` (ed25519).
#[derive(Debug, Clone, Copy, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SignatureVersionSpec {
    V1,
    V1a,
}

impl From<SignatureVersionSpec> for SignatureVersion {
    fn from(v: SignatureVersionSpec) -> Self {
        match v {
            SignatureVersionSpec::V1 => SignatureVersion::V1,
            SignatureVersionSpec::V1a => SignatureVersion::V1a,
        }
    }
}

impl From<SignatureVersion> for SignatureVersionSpec {
    fn from(v: SignatureVersion) -> Self {
        match v {
            SignatureVersion::V1 => SignatureVersionSpec::V1,
            SignatureVersion::V1a => SignatureVersionSpec::V1a,
        }
    }
}

/// A signature header in another sender's style, sent besides the Standard Webhooks headers
/// (HMAC-SHA256 under the decoded bytes of the endpoint's `whsec_…` secret), for receivers
/// written for that sender (hookbox extension).
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SignatureHeaderSpec {
    /// The header's name, such as `X-Hub-Signature-256` or `Stripe-Signature`.
    #[schema(
        min_length = 1,
        max_length = 256,
        pattern = r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$",
        example = "X-Hub-Signature-256"
    )]
    pub name: String,
    pub format: SignatureFormat,
    /// A header that carries the message id, such as `X-Event-Id`.
    #[schema(
        min_length = 1,
        max_length = 256,
        pattern = r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$"
    )]
    pub event_id_header: Option<String>,
}

/// `github`: `sha256=<hex HMAC of the body>`; `stripe`: `t=<timestamp>,v1=<hex HMAC of
/// "timestamp.body">` (one `v1` per valid secret during a rotation); `hex` and `base64`: the
/// HMAC of the body. All but `stripe` are made with the current secret only.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SignatureFormat {
    Github,
    Stripe,
    Hex,
    Base64,
}

impl From<SignatureHeaderSpec> for SignatureHeader {
    fn from(s: SignatureHeaderSpec) -> Self {
        SignatureHeader {
            name: s.name,
            format: match s.format {
                SignatureFormat::Github => HeaderFormat::Github,
                SignatureFormat::Stripe => HeaderFormat::Stripe,
                SignatureFormat::Hex => HeaderFormat::Hex,
                SignatureFormat::Base64 => HeaderFormat::Base64,
            },
            event_id_header: s.event_id_header,
        }
    }
}

impl From<SignatureHeader> for SignatureHeaderSpec {
    fn from(h: SignatureHeader) -> Self {
        SignatureHeaderSpec {
            name: h.name,
            format: match h.format {
                HeaderFormat::Github => SignatureFormat::Github,
                HeaderFormat::Stripe => SignatureFormat::Stripe,
                HeaderFormat::Hex => SignatureFormat::Hex,
                HeaderFormat::Base64 => SignatureFormat::Base64,
            },
            event_id_header: h.event_id_header,
        }
    }
}

impl EndpointIn {
    /// Its delivery policy, as asked for.
    pub fn policy(&self) -> DeliveryPolicy {
        DeliveryPolicy {
            retry_schedule: self.retry_schedule.clone(),
            timeout_secs: self.timeout_seconds,
            auto_disable_after_secs: self.auto_disable_after_seconds,
        }
    }
}

impl From<EndpointIn> for crate::service::endpoint_input::EndpointInput {
    fn from(e: EndpointIn) -> Self {
        let policy = e.policy();
        crate::service::endpoint_input::EndpointInput {
            url: e.url,
            description: e.description,
            uid: e.uid,
            throttle_rate: e.throttle_rate,
            disabled: e.disabled,
            event_types: e.event_types,
            channels: e.channels,
            secret: e.secret,
            metadata: e.metadata,
            headers: e.headers,
            legacy_signature: e.legacy_signature,
            verify_ssl: e.verify_ssl,
            policy,
            signature_header: e.signature_header.map(Into::into),
            filter: e.filter,
            signature_version: e.signature_version.map(Into::into),
            ordered: e.ordered,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Default, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EndpointPatch {
    #[schema(max_length = 65536, pattern = r"^[hH][tT][tT][pP][sS]?://[a-zA-Z0-9]")]
    pub url: Option<String>,
    pub description: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, min_length = 1, max_length = 256, pattern = r"^[a-zA-Z0-9\-_.]+$")]
    pub uid: Option<Option<String>>,
    #[serde(default, alias = "rateLimit", deserialize_with = "nullable_whole")]
    #[schema(value_type = Option<u32>, maximum = 4294967295_u64, format = "uint32")]
    pub throttle_rate: Option<Option<u32>>,
    pub disabled: Option<bool>,
    #[serde(default, alias = "filterTypes", deserialize_with = "nullable")]
    #[schema(inline, value_type = Option<Vec<EventTypeName>>)]
    pub event_types: Option<Option<Vec<String>>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(inline, value_type = Option<Vec<Channel>>, max_items = 10)]
    pub channels: Option<Option<Vec<String>>>,
    #[schema(value_type = Option<BTreeMap<String, String>>)]
    pub metadata: Option<Metadata>,
    pub legacy_signature: Option<bool>,
    pub verify_ssl: Option<bool>,
    /// As in `EndpointIn`; `null` returns to the server's schedule.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(inline, value_type = Option<Vec<RetryWait>>, max_items = 20)]
    pub retry_schedule: Option<Option<Vec<u32>>>,
    /// As in `EndpointIn`; `null` returns to the server's timeout.
    #[serde(default, deserialize_with = "nullable_whole")]
    #[schema(value_type = Option<u32>, minimum = 1, maximum = 300)]
    pub timeout_seconds: Option<Option<u32>>,
    /// As in `EndpointIn`; `null` returns to the server's period.
    #[serde(default, deserialize_with = "nullable_whole")]
    #[schema(value_type = Option<u32>, maximum = 2592000)]
    pub auto_disable_after_seconds: Option<Option<u32>>,
    /// As in `EndpointIn`; `null` stops sending it.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<SignatureHeaderSpec>)]
    pub signature_header: Option<Option<SignatureHeaderSpec>>,
    /// As in `EndpointIn`; `null` (or blank) removes it.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, max_length = 1000)]
    pub filter: Option<Option<String>>,
    /// As in `EndpointIn`.
    pub ordered: Option<bool>,
    /// Fixed when the endpoint is created: a different one is refused (409).
    pub signature_version: Option<SignatureVersionSpec>,
}

/// The wait before a retry, in seconds (at most a week).
#[derive(ToSchema)]
#[schema(maximum = 604800, minimum = 0)]
pub struct RetryWait(#[allow(dead_code)] u32);

/// An event type name.
#[derive(ToSchema)]
#[schema(
    max_length = 256,
    pattern = r"^[a-zA-Z0-9\-_.:]+$",
    example = "user.signup"
)]
pub struct EventTypeName(#[allow(dead_code)] String);

/// A channel name.
#[derive(ToSchema)]
#[schema(
    max_length = 128,
    pattern = r"^[a-zA-Z0-9\-_.:]+$",
    example = "project_1337"
)]
pub struct Channel(#[allow(dead_code)] String);

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EndpointOut {
    #[schema(example = "ep_1srOrx2ZWZBpBUvZwXKQmoEYga2")]
    pub id: String,
    #[schema(required)]
    pub uid: Option<String>,
    pub url: String,
    pub description: String,
    /// Always 1.
    pub version: i64,
    #[schema(required)]
    pub rate_limit: Option<i64>,
    #[schema(required)]
    pub throttle_rate: Option<i64>,
    pub legacy_signature: bool,
    pub verify_ssl: bool,
    /// Its own retry schedule (waits in seconds before each retry); `null`: the server's.
    #[schema(required)]
    pub retry_schedule: Option<Vec<u32>>,
    /// Its own request timeout in seconds; `null`: the server's.
    #[schema(required)]
    pub timeout_seconds: Option<u32>,
    /// Its own auto-disable period in seconds (`0`: never); `null`: the server's.
    #[schema(required)]
    pub auto_disable_after_seconds: Option<u32>,
    /// The signature header in another sender's style it gets too, if any.
    #[schema(required)]
    pub signature_header: Option<SignatureHeaderSpec>,
    /// Its payload filter, if any (hookbox extension).
    #[schema(required)]
    pub filter: Option<String>,
    /// `v1` (HMAC-SHA256) or `v1a` (ed25519) signatures (hookbox extension).
    pub signature_version: SignatureVersionSpec,
    /// Ordered delivery (hookbox extension): one message at a time, in the order accepted.
    pub ordered: bool,
    pub disabled: bool,
    /// Why the endpoint is disabled (hookbox extension).
    #[schema(required)]
    pub disabled_reason: Option<String>,
    /// The same as `eventTypes` (older Svix name).
    #[schema(required)]
    pub filter_types: Option<Vec<String>>,
    #[schema(required)]
    pub event_types: Option<Vec<String>>,
    #[schema(required)]
    pub channels: Option<Vec<String>>,
    #[schema(value_type = BTreeMap<String, String>)]
    pub metadata: serde_json::Map<String, serde_json::Value>,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
}

impl From<Endpoint> for EndpointOut {
    fn from(e: Endpoint) -> Self {
        EndpointOut {
            id: e.id.into(),
            uid: e.uid,
            url: e.url,
            description: e.description,
            version: 1,
            rate_limit: e.rate_limit,
            throttle_rate: e.rate_limit,
            legacy_signature: e.legacy_signature,
            verify_ssl: e.verify_ssl,
            retry_schedule: e.policy.retry_schedule,
            timeout_seconds: e.policy.timeout_secs,
            auto_disable_after_seconds: e.policy.auto_disable_after_secs,
            signature_header: e.signature_header.map(Into::into),
            filter: e.filter,
            signature_version: e.signature_version.into(),
            ordered: e.ordered,
            disabled: e.disabled,
            disabled_reason: e.disabled_reason,
            filter_types: e.filter_types.clone(),
            event_types: e.filter_types,
            channels: e.channels,
            metadata: e.metadata,
            created_at: format_ms(e.created_at),
            updated_at: format_ms(e.updated_at),
        }
    }
}

#[derive(Debug, Deserialize, Default, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EndpointSecretRotateIn {
    /// The new secret (as `secret` of `EndpointIn`); generated when absent.
    #[schema(
        pattern = r"^(?:(whsec_)?(?:[A-Za-z0-9+/]{4}){8,24}(?:[A-Za-z0-9+/]{4}|[A-Za-z0-9+/][AQgw]==|[A-Za-z0-9+/]{2}[AEIMQUYcgkosw048]=)?|whsk_(?:[A-Za-z0-9+/]{4}){10}[A-Za-z0-9+/]{2}[AEIMQUYcgkosw048]=)$"
    )]
    pub key: Option<String>,
    /// How long the old secret keeps signing (at most 7 days; default: the server's setting).
    #[serde(default, deserialize_with = "whole")]
    #[schema(maximum = 604800)]
    pub grace_period_seconds: Option<u64>,
}

#[derive(Serialize, ToSchema)]
pub struct EndpointSecretOut {
    /// The `whsec_…` secret; for a `v1a` endpoint, the `whpk_…` public key that verifies
    /// its signatures (its secret key is never shown).
    #[schema(example = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD")]
    pub key: String,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct EndpointHeadersIn {
    #[schema(schema_with = headers_schema)]
    pub headers: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EndpointHeadersPatchIn {
    /// Headers to set; a `null` value removes the header.
    #[schema(schema_with = headers_patch_schema)]
    pub headers: BTreeMap<String, Option<String>>,
    /// Headers to remove.
    #[serde(default)]
    pub delete_headers: Vec<String>,
}

#[derive(Serialize, ToSchema)]
pub struct EndpointHeadersOut {
    pub headers: BTreeMap<String, String>,
    /// Names of the sensitive headers (credentials, such as `Authorization`), whose values are
    /// not returned.
    pub sensitive: Vec<String>,
}

#[derive(Serialize, ToSchema)]
pub struct EndpointStats {
    pub success: i64,
    pub pending: i64,
    pub sending: i64,
    pub fail: i64,
    pub canceled: i64,
    /// Not sent: the endpoint's payload filter did not take them (hookbox extension).
    pub filtered: i64,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventExampleIn {
    #[schema(max_length = 256, pattern = r"^[a-zA-Z0-9\-_.:]+$")]
    pub event_type: String,
    /// Which of the schema's `examples` to send (default 0).
    #[serde(default, deserialize_with = "whole")]
    #[schema(maximum = 1000000)]
    pub example_index: Option<usize>,
}

/// A time window; `until` defaults to now.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RecoverIn {
    #[schema(format = DateTime, pattern = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}")]
    pub since: String,
    #[schema(format = DateTime, pattern = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}")]
    pub until: Option<String>,
}

/// The state of a background task: hookbox runs them at once, so always `finished`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum BackgroundTaskStatus {
    Finished,
}

#[derive(Serialize, ToSchema)]
pub enum BackgroundTaskType {
    #[serde(rename = "endpoint.recover")]
    Recover,
    #[serde(rename = "endpoint.replay")]
    Replay,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RecoverOut {
    pub id: String,
    pub status: BackgroundTaskStatus,
    pub task: BackgroundTaskType,
    #[schema(format = DateTime)]
    pub updated_at: String,
    /// Deliveries rescheduled (hookbox extension).
    pub count: usize,
}

/// Health summary of an endpoint (hookbox extension).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EndpointHealthOut {
    pub status: EndpointHealthStatus,
    #[schema(required)]
    pub disabled_reason: Option<String>,
    #[schema(required, format = DateTime)]
    pub disabled_at: Option<String>,
    /// Since when every attempt has failed.
    #[schema(required, format = DateTime)]
    pub failing_since: Option<String>,
    /// The start of the window the counts cover.
    #[schema(format = DateTime)]
    pub since: String,
    pub success: i64,
    pub fail: i64,
    /// Percentage of successful attempts; `null` without attempts.
    #[schema(required)]
    pub success_rate: Option<f64>,
    pub hourly: Vec<HourlyAttempts>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum EndpointHealthStatus {
    Healthy,
    Failing,
    Disabled,
    Unknown,
}

#[derive(Serialize, ToSchema)]
pub struct HourlyAttempts {
    #[schema(format = DateTime)]
    pub hour: String,
    pub success: i64,
    pub fail: i64,
}

/// A synchronous test send (hookbox extension).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EndpointTestIn {
    /// An existing, not archived event type.
    #[schema(max_length = 256, pattern = r"^[a-zA-Z0-9\-_.:]+$")]
    pub event_type: String,
    /// The JSON object to send; without it, the event type's example.
    #[schema(value_type = Option<Object>)]
    pub payload: Option<Box<RawValue>>,
}

/// What the endpoint answered to a test send.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EndpointTestOut {
    pub msg_id: String,
    pub attempt_id: String,
    pub url: String,
    pub success: bool,
    /// 0 when there was no HTTP response.
    pub response_status_code: i64,
    pub response: String,
    pub response_duration_ms: i64,
    #[schema(required)]
    pub error: Option<String>,
}
