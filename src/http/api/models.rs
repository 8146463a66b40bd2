//! Request and response bodies, camelCase as Svix's.

use crate::db::{
    apps::App, attempts::Attempt, endpoints::Endpoint, event_types::EventType, messages::Message,
};
use crate::domain::time::format_ms;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::value::RawValue;
use std::collections::BTreeMap;

/// Distinguishes a field set to `null` (`Some(None)`) from one left out (`None`).
pub fn nullable<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

pub type Metadata = BTreeMap<String, String>;

pub const DAY_MS: i64 = 24 * 3600 * 1000;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationIn {
    pub name: String,
    pub uid: Option<String>,
    #[serde(alias = "rateLimit")]
    pub throttle_rate: Option<u32>,
    pub metadata: Option<Metadata>,
    /// Days message payloads are kept (hookbox extension; default: the server's setting).
    pub payload_retention_period: Option<u32>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationPatch {
    pub name: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub uid: Option<Option<String>>,
    #[serde(default, alias = "rateLimit", deserialize_with = "nullable")]
    pub throttle_rate: Option<Option<u32>>,
    pub metadata: Option<Metadata>,
    #[serde(default, deserialize_with = "nullable")]
    pub payload_retention_period: Option<Option<u32>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationOut {
    pub id: String,
    pub uid: Option<String>,
    pub name: String,
    pub rate_limit: Option<i64>,
    pub throttle_rate: Option<i64>,
    pub payload_retention_period: Option<i64>,
    pub metadata: serde_json::Map<String, serde_json::Value>,
    pub created_at: String,
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

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventTypeIn {
    pub name: String,
    pub description: String,
    #[serde(default)]
    pub archived: bool,
    #[serde(default)]
    pub deprecated: bool,
    pub schemas: Option<serde_json::Map<String, serde_json::Value>>,
    pub feature_flags: Option<Vec<String>>,
    pub feature_flag: Option<String>,
    pub group_name: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventTypeUpdate {
    pub description: String,
    #[serde(default)]
    pub archived: bool,
    #[serde(default)]
    pub deprecated: bool,
    pub schemas: Option<serde_json::Map<String, serde_json::Value>>,
    pub feature_flags: Option<Vec<String>>,
    pub feature_flag: Option<String>,
    pub group_name: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct EventTypePatch {
    pub description: Option<String>,
    pub archived: Option<bool>,
    pub deprecated: Option<bool>,
    #[serde(default, deserialize_with = "nullable")]
    pub schemas: Option<Option<serde_json::Map<String, serde_json::Value>>>,
    #[serde(default, deserialize_with = "nullable")]
    pub feature_flags: Option<Option<Vec<String>>>,
    #[serde(default, deserialize_with = "nullable")]
    pub group_name: Option<Option<String>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EventTypeOut {
    pub name: String,
    pub description: String,
    pub archived: bool,
    pub deprecated: bool,
    pub schemas: Option<serde_json::Value>,
    pub group_name: Option<String>,
    pub feature_flags: Option<Vec<String>>,
    pub created_at: String,
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

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointIn {
    pub url: String,
    #[serde(default)]
    pub description: String,
    pub uid: Option<String>,
    #[serde(alias = "rateLimit")]
    pub throttle_rate: Option<u32>,
    #[serde(default)]
    pub disabled: bool,
    #[serde(alias = "filterTypes")]
    pub event_types: Option<Vec<String>>,
    pub channels: Option<Vec<String>>,
    pub secret: Option<String>,
    pub metadata: Option<Metadata>,
    pub headers: Option<BTreeMap<String, String>>,
    /// Also send `X-Webhook-Signature-256` (hex HMAC-SHA256 of the body).
    #[serde(default)]
    pub legacy_signature: bool,
    /// `false` skips TLS certificate verification; absent means `true`.
    pub verify_ssl: Option<bool>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct EndpointPatch {
    pub url: Option<String>,
    pub description: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub uid: Option<Option<String>>,
    #[serde(default, alias = "rateLimit", deserialize_with = "nullable")]
    pub throttle_rate: Option<Option<u32>>,
    pub disabled: Option<bool>,
    #[serde(default, alias = "filterTypes", deserialize_with = "nullable")]
    pub event_types: Option<Option<Vec<String>>>,
    #[serde(default, deserialize_with = "nullable")]
    pub channels: Option<Option<Vec<String>>>,
    pub metadata: Option<Metadata>,
    pub legacy_signature: Option<bool>,
    pub verify_ssl: Option<bool>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointOut {
    pub id: String,
    pub uid: Option<String>,
    pub url: String,
    pub description: String,
    pub version: i64,
    pub rate_limit: Option<i64>,
    pub throttle_rate: Option<i64>,
    pub legacy_signature: bool,
    pub verify_ssl: bool,
    pub disabled: bool,
    pub disabled_reason: Option<String>,
    pub filter_types: Option<Vec<String>>,
    pub event_types: Option<Vec<String>>,
    pub channels: Option<Vec<String>>,
    pub metadata: serde_json::Map<String, serde_json::Value>,
    pub created_at: String,
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

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct SecretRotateIn {
    pub key: Option<String>,
    pub grace_period_seconds: Option<u64>,
}

#[derive(Debug, Deserialize)]
pub struct HeadersIn {
    pub headers: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HeadersPatchIn {
    pub headers: BTreeMap<String, Option<String>>,
    #[serde(default)]
    pub delete_headers: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventExampleIn {
    pub event_type: String,
    #[serde(default)]
    pub example_index: usize,
}

#[derive(Debug, Deserialize)]
pub struct SinceIn {
    pub since: String,
    pub until: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageIn {
    pub event_type: String,
    pub payload: Box<RawValue>,
    pub event_id: Option<String>,
    pub channels: Option<Vec<String>>,
    pub tags: Option<Vec<String>>,
    pub application: Option<ApplicationIn>,
    pub deliver_at: Option<String>,
    /// Days this message's payload is kept.
    pub payload_retention_period: Option<u32>,
    /// Hours this message's payload is kept (wins over the period in days).
    pub payload_retention_hours: Option<u32>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageOut<'a> {
    pub id: &'a str,
    pub event_type: &'a str,
    pub event_id: Option<&'a str>,
    pub payload: &'a RawValue,
    pub channels: Option<&'a [String]>,
    pub tags: Option<&'a [String]>,
    pub timestamp: String,
}

fn empty_object() -> &'static RawValue {
    // A constant, valid JSON object.
    serde_json::from_str::<&RawValue>("{}").expect("`{}` is valid JSON")
}

/// Calls `f` with the message's output shape; `payload` is `{}` without content or once purged.
fn with_message_out<R>(m: &Message, with_content: bool, f: impl FnOnce(&MessageOut<'_>) -> R) -> R {
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
    f(&out)
}

/// A message as a JSON value (for listings that add fields to it).
pub fn message_json(m: &Message, with_content: bool) -> serde_json::Value {
    // Serializing plain data and already-valid JSON text cannot fail.
    with_message_out(m, with_content, |out| {
        serde_json::to_value(out).expect("message serializes")
    })
}

/// A message as JSON text, with the payload copied verbatim (the ingest answer).
pub fn message_text(m: &Message, with_content: bool) -> String {
    with_message_out(m, with_content, |out| {
        serde_json::to_string(out).expect("message serializes")
    })
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

pub fn attempt_json(a: Attempt, with_msg: bool, with_content: bool) -> serde_json::Value {
    let mut v = serde_json::json!({
        "id": a.id,
        "msgId": a.msg_id,
        "endpointId": a.endpoint_id,
        "url": a.url,
        "response": a.response.unwrap_or_default(),
        "responseStatusCode": a.response_status_code,
        "responseDurationMs": a.response_duration_ms,
        "status": a.status,
        "statusText": status_text(a.status),
        "triggerType": a.trigger_type,
        "timestamp": format_ms(a.created_at),
        "error": a.error,
    });
    if with_msg {
        if let Some(m) = &a.msg {
            v["msg"] = message_json(m, with_content);
        }
    }
    v
}
