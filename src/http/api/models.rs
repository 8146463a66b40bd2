//! Request and response bodies, camelCase as Svix's. Each derives its OpenAPI schema
//! (`ToSchema`) under Svix's name, so the served document describes what is parsed and sent.

use crate::db::{App, Attempt, Endpoint, EventType, Message};
use crate::domain::time::format_ms;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::value::RawValue;
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// Distinguishes a field set to `null` (`Some(None)`) from one left out (`None`).
pub fn nullable<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// An optional whole number, also written as a float (`5.0`: JSON Schema counts it as an
/// integer, and some JSON encoders write numbers so).
pub fn whole<'de, T: TryFrom<u64>, D: Deserializer<'de>>(d: D) -> Result<Option<T>, D::Error> {
    use serde::de::Error;
    let Some(n) = Option::<serde_json::Number>::deserialize(d)? else {
        return Ok(None);
    };
    let v = n.as_u64().or_else(|| {
        n.as_f64()
            .filter(|f| f.fract() == 0.0 && (0.0..=9.0e15).contains(f))
            .map(|f| f as u64)
    });
    v.and_then(|v| T::try_from(v).ok())
        .map(Some)
        .ok_or_else(|| D::Error::custom(format!("`{n}` is not a whole number in range")))
}

/// [`whole`] for a field where `null` and leaving it out differ (see [`nullable`]).
pub fn nullable_whole<'de, T: TryFrom<u64>, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    whole(d).map(Some)
}

/// Header names (RFC 9110 tokens) and values (visible ASCII, spaces and tabs).
const HEADER_NAME: &str = r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$";
const HEADER_VALUE: &str = r"^[\t\x20-\x7e]*$";

fn header_map(nullable_values: bool) -> utoipa::openapi::schema::Object {
    use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
    let value_type = if nullable_values {
        SchemaType::from_iter([Type::String, Type::Null])
    } else {
        SchemaType::Type(Type::String)
    };
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .additional_properties(Some(
            ObjectBuilder::new()
                .schema_type(value_type)
                .pattern(Some(HEADER_VALUE)),
        ))
        .property_names(Some(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some(HEADER_NAME)),
        ))
        .build()
}

/// The schema of a header map.
pub fn headers_schema() -> utoipa::openapi::schema::Object {
    header_map(false)
}

fn optional_headers_schema() -> utoipa::openapi::schema::Object {
    let mut o = header_map(false);
    o.schema_type = utoipa::openapi::schema::SchemaType::from_iter([
        utoipa::openapi::schema::Type::Object,
        utoipa::openapi::schema::Type::Null,
    ]);
    o
}

fn headers_patch_schema() -> utoipa::openapi::schema::Object {
    header_map(true)
}

pub type Metadata = BTreeMap<String, String>;

pub const DAY_MS: i64 = 24 * 3600 * 1000;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationIn {
    #[schema(
        min_length = 1,
        max_length = 256,
        pattern = r"\S",
        example = "My first application"
    )]
    pub name: String,
    /// Optional unique identifier for the application (`_hookbox…` is reserved).
    #[schema(min_length = 1, max_length = 256, pattern = r"^[a-zA-Z0-9\-_.]+$")]
    pub uid: Option<String>,
    /// Maximum messages per second to send to this application's endpoints.
    #[serde(default, alias = "rateLimit", deserialize_with = "whole")]
    #[schema(maximum = 4294967295_u64, format = "uint32")]
    pub throttle_rate: Option<u32>,
    #[schema(value_type = Option<BTreeMap<String, String>>)]
    pub metadata: Option<Metadata>,
    /// Days message payloads are kept (hookbox extension; default: the server's setting).
    #[serde(default, deserialize_with = "whole")]
    #[schema(minimum = 1, maximum = 3650)]
    pub payload_retention_period: Option<u32>,
}

impl From<ApplicationIn> for crate::service::apps::AppInput {
    fn from(a: ApplicationIn) -> Self {
        crate::service::apps::AppInput {
            name: a.name,
            uid: a.uid,
            throttle_rate: a.throttle_rate,
            metadata: a.metadata,
            retention_days: a.payload_retention_period,
        }
    }
}

#[derive(Debug, Deserialize, Default, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationPatch {
    #[schema(min_length = 1, max_length = 256, pattern = r"\S")]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, min_length = 1, max_length = 256, pattern = r"^[a-zA-Z0-9\-_.]+$")]
    pub uid: Option<Option<String>>,
    #[serde(default, alias = "rateLimit", deserialize_with = "nullable_whole")]
    #[schema(value_type = Option<u32>, maximum = 4294967295_u64, format = "uint32")]
    pub throttle_rate: Option<Option<u32>>,
    #[schema(value_type = Option<BTreeMap<String, String>>)]
    pub metadata: Option<Metadata>,
    #[serde(default, deserialize_with = "nullable_whole")]
    #[schema(value_type = Option<u32>, minimum = 1, maximum = 3650)]
    pub payload_retention_period: Option<Option<u32>>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationOut {
    #[schema(example = "app_1srOrx2ZWZBpBUvZwXKQmoEYga2")]
    pub id: String,
    #[schema(required)]
    pub uid: Option<String>,
    pub name: String,
    /// The same as `throttleRate` (older Svix name).
    #[schema(required)]
    pub rate_limit: Option<i64>,
    #[schema(required)]
    pub throttle_rate: Option<i64>,
    /// Days message payloads are kept; `null` means the server's setting.
    #[schema(required)]
    pub payload_retention_period: Option<i64>,
    #[schema(value_type = BTreeMap<String, String>)]
    pub metadata: serde_json::Map<String, serde_json::Value>,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
}

impl From<App> for ApplicationOut {
    fn from(a: App) -> Self {
        ApplicationOut {
            id: a.id,
            uid: a.uid,
            name: a.name,
            rate_limit: a.rate_limit,
            throttle_rate: a.rate_limit,
            payload_retention_period: a.retention_ms.map(|ms| ms / DAY_MS),
            metadata: a.metadata,
            created_at: format_ms(a.created_at),
            updated_at: format_ms(a.updated_at),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventTypeIn {
    #[schema(
        max_length = 256,
        pattern = r"^[a-zA-Z0-9\-_.:]+$",
        example = "user.signup"
    )]
    pub name: String,
    #[schema(max_length = 8192, example = "A user has signed up")]
    pub description: String,
    #[serde(default)]
    pub archived: bool,
    #[serde(default)]
    pub deprecated: bool,
    /// JSON schemas of the payload by version (at most 256 KiB).
    #[schema(value_type = Option<BTreeMap<String, Object>>)]
    pub schemas: Option<serde_json::Map<String, serde_json::Value>>,
    pub feature_flags: Option<Vec<String>>,
    pub feature_flag: Option<String>,
    #[schema(max_length = 256)]
    pub group_name: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventTypeUpdate {
    #[schema(max_length = 8192)]
    pub description: String,
    #[serde(default)]
    pub archived: bool,
    #[serde(default)]
    pub deprecated: bool,
    #[schema(value_type = Option<BTreeMap<String, Object>>)]
    pub schemas: Option<serde_json::Map<String, serde_json::Value>>,
    pub feature_flags: Option<Vec<String>>,
    pub feature_flag: Option<String>,
    #[schema(max_length = 256)]
    pub group_name: Option<String>,
}

#[derive(Debug, Deserialize, Default, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventTypePatch {
    #[schema(max_length = 8192)]
    pub description: Option<String>,
    pub archived: Option<bool>,
    pub deprecated: Option<bool>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<BTreeMap<String, Object>>)]
    pub schemas: Option<Option<serde_json::Map<String, serde_json::Value>>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<Vec<String>>)]
    pub feature_flags: Option<Option<Vec<String>>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, max_length = 256)]
    pub group_name: Option<Option<String>>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventTypeOut {
    pub name: String,
    pub description: String,
    pub archived: bool,
    pub deprecated: bool,
    /// `null` when listed with `with_content=false`.
    #[schema(required, value_type = Option<BTreeMap<String, Object>>)]
    pub schemas: Option<serde_json::Value>,
    #[schema(required)]
    pub group_name: Option<String>,
    #[schema(required)]
    pub feature_flags: Option<Vec<String>>,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
}

impl EventTypeOut {
    pub fn new(e: EventType, with_content: bool) -> Self {
        EventTypeOut {
            name: e.name,
            description: e.description,
            archived: e.archived,
            deprecated: e.deprecated,
            schemas: if with_content { e.schemas } else { None },
            group_name: e.group_name,
            feature_flags: e.feature_flags,
            created_at: format_ms(e.created_at),
            updated_at: format_ms(e.updated_at),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
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
    /// `whsec_`; generated when absent.
    #[schema(
        pattern = r"^(whsec_)?(?:[A-Za-z0-9+/]{4}){8,24}(?:[A-Za-z0-9+/]{4}|[A-Za-z0-9+/][AQgw]==|[A-Za-z0-9+/]{2}[AEIMQUYcgkosw048]=)?$",
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
}

impl From<EndpointIn> for crate::service::endpoint_input::EndpointInput {
    fn from(e: EndpointIn) -> Self {
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
        }
    }
}

#[derive(Debug, Deserialize, Default, ToSchema)]
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
}

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
            id: e.id,
            uid: e.uid,
            url: e.url,
            description: e.description,
            version: 1,
            rate_limit: e.rate_limit,
            throttle_rate: e.rate_limit,
            legacy_signature: e.legacy_signature,
            verify_ssl: e.verify_ssl,
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
        pattern = r"^(whsec_)?(?:[A-Za-z0-9+/]{4}){8,24}(?:[A-Za-z0-9+/]{4}|[A-Za-z0-9+/][AQgw]==|[A-Za-z0-9+/]{2}[AEIMQUYcgkosw048]=)?$"
    )]
    pub key: Option<String>,
    /// How long the old secret keeps signing (at most 7 days; default: the server's setting).
    #[serde(default, deserialize_with = "whole")]
    #[schema(maximum = 604800)]
    pub grace_period_seconds: Option<u64>,
}

#[derive(Serialize, ToSchema)]
pub struct EndpointSecretOut {
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

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MessageIn {
    #[schema(
        max_length = 256,
        pattern = r"^[a-zA-Z0-9\-_.:]+$",
        example = "user.signup"
    )]
    pub event_type: String,
    /// The JSON object sent to endpoints.
    #[schema(value_type = Object, example = json!({"email": "test@example.com", "username": "test_user"}))]
    pub payload: Box<RawValue>,
    /// Optional unique identifier for the message.
    #[schema(min_length = 1, max_length = 256, pattern = r"^[a-zA-Z0-9\-_.]+$")]
    pub event_id: Option<String>,
    #[schema(inline, value_type = Option<Vec<Channel>>, max_items = 10)]
    pub channels: Option<Vec<String>>,
    #[schema(inline, value_type = Option<Vec<Channel>>, max_items = 5)]
    pub tags: Option<Vec<String>>,
    /// Creates the application (with the path's uid) when there is none.
    pub application: Option<ApplicationIn>,
    /// Send no earlier than this time.
    #[schema(format = DateTime, pattern = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}")]
    pub deliver_at: Option<String>,
    /// Days this message's payload is kept.
    #[serde(default, deserialize_with = "whole")]
    #[schema(minimum = 1, maximum = 4294967295_u64, format = "uint32")]
    pub payload_retention_period: Option<u32>,
    /// Hours this message's payload is kept (wins over the period in days).
    #[serde(default, deserialize_with = "whole")]
    #[schema(minimum = 1, maximum = 4294967295_u64, format = "uint32")]
    pub payload_retention_hours: Option<u32>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MessageOut<'a> {
    pub id: &'a str,
    pub event_type: &'a str,
    #[schema(required, value_type = Option<String>)]
    pub event_id: Option<&'a str>,
    /// `{}` when listed with `with_content=false` or once the payload has expired.
    #[schema(value_type = Object)]
    pub payload: &'a RawValue,
    #[schema(required, value_type = Option<Vec<String>>)]
    pub channels: Option<&'a [String]>,
    #[schema(required, value_type = Option<Vec<String>>)]
    pub tags: Option<&'a [String]>,
    #[schema(format = DateTime)]
    pub timestamp: String,
}

/// Delivery status: 0 success, 1 pending, 2 fail, 3 sending, 4 canceled.
pub struct MessageStatus;

impl utoipa::PartialSchema for MessageStatus {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        int_enum(
            "Delivery status: 0 success, 1 pending, 2 fail, 3 sending, 4 canceled.",
            0..=4,
        )
    }
}
impl ToSchema for MessageStatus {}

/// Why an attempt was made: 0 scheduled, 1 manual (resend), 2 test send.
pub struct MessageAttemptTriggerType;

impl utoipa::PartialSchema for MessageAttemptTriggerType {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        int_enum(
            "Why the attempt was made: 0 scheduled, 1 manual (resend), 2 test send.",
            0..=2,
        )
    }
}
impl ToSchema for MessageAttemptTriggerType {}

fn int_enum(
    description: &str,
    values: std::ops::RangeInclusive<i64>,
) -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .description(Some(description))
        .enum_values(Some(values))
        .into()
}

/// [`status_text`] of a delivery status.
#[derive(ToSchema)]
#[allow(dead_code)] // documents the values of `statusText`
#[serde(rename_all = "lowercase")]
pub enum MessageStatusText {
    Success,
    Pending,
    Fail,
    Sending,
    Canceled,
}

/// A message with its delivery status at one endpoint.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EndpointMessageOut<'a> {
    #[serde(flatten)]
    pub message: MessageOut<'a>,
    #[schema(value_type = MessageStatus)]
    pub status: i64,
    #[schema(value_type = MessageStatusText)]
    pub status_text: &'static str,
    /// When the next attempt is due (while pending).
    #[schema(required, format = DateTime)]
    pub next_attempt: Option<String>,
}

/// An endpoint a message went to, with the message's delivery status there.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MessageEndpointOut {
    #[serde(flatten)]
    pub endpoint: EndpointOut,
    #[schema(value_type = MessageStatus)]
    pub status: i64,
    #[schema(value_type = MessageStatusText)]
    pub status_text: &'static str,
    #[schema(required, format = DateTime)]
    pub next_attempt: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MessageAttemptOut {
    pub id: String,
    pub msg_id: String,
    pub endpoint_id: String,
    pub url: String,
    /// The start of the endpoint's response body.
    pub response: String,
    /// 0 when there was no HTTP response.
    pub response_status_code: i64,
    pub response_duration_ms: i64,
    #[schema(value_type = MessageStatus)]
    pub status: i64,
    #[schema(value_type = MessageStatusText)]
    pub status_text: &'static str,
    #[schema(value_type = MessageAttemptTriggerType)]
    pub trigger_type: i64,
    #[schema(format = DateTime)]
    pub timestamp: String,
    /// What went wrong when there was no response (hookbox extension).
    #[schema(required)]
    pub error: Option<String>,
    /// The message, with `with_msg=true`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<MessageOut>)]
    pub msg: Option<Box<RawValue>>,
}

fn empty_object() -> &'static RawValue {
    // A constant, valid JSON object.
    serde_json::from_str::<&RawValue>("{}").expect("`{}` is valid JSON")
}

/// Calls `f` with the message's output shape; `payload` is `{}` without content or once purged.
pub fn with_message_out<R>(
    m: &Message,
    with_content: bool,
    f: impl FnOnce(MessageOut<'_>) -> R,
) -> R {
    // The stored payload is JSON text that was validated at ingest; `from_str` only scans it.
    let raw: Option<&RawValue> = if with_content {
        m.payload
            .as_deref()
            .and_then(|p| serde_json::from_str(p).ok())
    } else {
        None
    };
    let out = MessageOut {
        id: &m.id,
        event_type: &m.event_type,
        event_id: m.event_id.as_deref(),
        payload: match raw {
            Some(r) => r,
            None => empty_object(),
        },
        channels: m.channels.as_deref(),
        tags: m.tags.as_deref(),
        timestamp: format_ms(m.created_at),
    };
    f(out)
}

/// `v` as JSON text kept as it is: stored payloads inside are copied verbatim, never parsed
/// again, so any stored payload (however deep) is answered as it was stored. Output shapes
/// hold strings, numbers and valid JSON text, so this does not fail; if it did, the failure
/// is logged and `{}` answered rather than a panic.
pub fn raw_json(v: &impl Serialize) -> Box<RawValue> {
    serde_json::value::to_raw_value(v).unwrap_or_else(|e| {
        tracing::error!(error = %e, "cannot serialize a response item");
        empty_object().to_owned()
    })
}

/// A message as JSON (for listings and reads).
pub fn message_json(m: &Message, with_content: bool) -> Box<RawValue> {
    with_message_out(m, with_content, |out| raw_json(&out))
}

/// A message as JSON text, with the payload copied verbatim (the ingest answer).
pub fn message_text(m: &Message, with_content: bool) -> String {
    Box::<str>::from(message_json(m, with_content)).into_string()
}

pub fn status_text(status: i64) -> &'static str {
    match status {
        0 => "success",
        1 => "pending",
        2 => "fail",
        3 => "sending",
        _ => "canceled",
    }
}

/// Internal delivery statuses as the API shows them (skipped shows as canceled).
pub fn api_status(status: i64) -> i64 {
    if (0..=4).contains(&status) {
        status
    } else {
        4
    }
}

pub fn attempt_out(a: Attempt, with_msg: bool, with_content: bool) -> MessageAttemptOut {
    let status = api_status(a.status);
    MessageAttemptOut {
        msg: if with_msg {
            a.msg.as_ref().map(|m| message_json(m, with_content))
        } else {
            None
        },
        id: a.id,
        msg_id: a.msg_id,
        endpoint_id: a.endpoint_id,
        url: a.url,
        response: a.response.unwrap_or_default(),
        response_status_code: a.response_status_code,
        response_duration_ms: a.response_duration_ms,
        status,
        status_text: status_text(status),
        trigger_type: a.trigger_type,
        timestamp: format_ms(a.created_at),
        error: a.error,
    }
}

/// Declares the schema of Svix's list envelope for one item type, under Svix's name
/// (`ListResponse_ApplicationOut_`). The envelope itself is built by `extract::list_out`.
macro_rules! list_response {
    ($($name:ident => $item:ty),* $(,)?) => {$(
        #[derive(ToSchema)]
        #[allow(non_camel_case_types, dead_code)]
        #[serde(rename_all = "camelCase")]
        pub struct $name {
            pub data: Vec<$item>,
            /// Pass as `iterator` for the next page; `null` when the page is empty.
            #[schema(required)]
            pub iterator: Option<String>,
            /// Pass as `iterator` for the previous page.
            #[schema(required)]
            pub prev_iterator: Option<String>,
            /// Whether this is the last page.
            pub done: bool,
        }
    )*};
}

list_response! {
    ListResponse_ApplicationOut_ => ApplicationOut,
    ListResponse_EventTypeOut_ => EventTypeOut,
    ListResponse_EndpointOut_ => EndpointOut,
    ListResponse_MessageOut_ => MessageOut<'static>,
    ListResponse_EndpointMessageOut_ => EndpointMessageOut<'static>,
    ListResponse_MessageEndpointOut_ => MessageEndpointOut,
    ListResponse_MessageAttemptOut_ => MessageAttemptOut,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_stored_payload_reads_back_verbatim_however_deep() {
        // Deeper than serde_json's own parsing limit (128): stored before depth was checked.
        let deep = format!("{{\"x\": {}1{}}}", "[".repeat(300), "]".repeat(300));
        let m = Message {
            id: "msg_1".into(),
            app_id: "app_1".into(),
            event_type: "t".into(),
            event_id: None,
            payload: Some(std::sync::Arc::from(deep.as_str())),
            channels: None,
            tags: None,
            created_at: 0,
        };
        let text = message_text(&m, true);
        assert!(text.contains(&deep), "{text}");
        let listed = serde_json::to_string(&crate::http::extract::list_out(
            crate::db::Page {
                items: vec![m],
                done: true,
            },
            &crate::db::PageQuery::default(),
            |m: &Message| m.id.clone(),
            |m| message_json(&m, true),
        ))
        .unwrap();
        assert!(listed.contains(&deep));
    }
}
