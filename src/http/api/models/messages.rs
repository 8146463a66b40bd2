//! Messages and attempts, and how their stored forms are shown.

use super::*;

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
    /// Svix's transformation parameters: only read to refuse a raw payload (`rawPayload`,
    /// sent by the SDKs' `message_in_raw`), which hookbox does not send.
    #[serde(default)]
    #[schema(ignore)]
    pub transformations_params: Option<serde_json::Value>,
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

/// Delivery status: 0 success, 1 pending, 2 fail, 3 sending, 4 canceled, 5 filtered.
pub struct MessageStatus;

impl utoipa::PartialSchema for MessageStatus {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        int_enum(
            "Delivery status: 0 success, 1 pending, 2 fail, 3 sending, 4 canceled (not sent: \
             the endpoint was disabled or the message's content deleted), 5 filtered (not \
             sent: the endpoint's payload filter did not take it).",
            0..=5,
        )
    }
}
impl ToSchema for MessageStatus {}

/// Why an attempt was made: 0 scheduled, 1 manual (a resend, recovery, replay or test send).
pub struct MessageAttemptTriggerType;

impl utoipa::PartialSchema for MessageAttemptTriggerType {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        int_enum(
            "Why the attempt was made: 0 scheduled, 1 manual (a resend, recovery, replay or \
             test send).",
            0..=1,
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

/// The name of a delivery status (`statusText`).
#[derive(ToSchema)]
#[allow(dead_code)] // documents the values of `statusText`
#[serde(rename_all = "lowercase")]
pub enum MessageStatusText {
    Success,
    Pending,
    Fail,
    Sending,
    Canceled,
    Filtered,
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
    /// The endpoint's payload filter left the message out: never sent, shown as canceled
    /// (hookbox extension).
    pub filtered: bool,
    /// Why the endpoint's payload filter could not tell, when it filtered the message out so
    /// (hookbox extension).
    #[schema(required, value_type = Option<String>)]
    pub filter_error: Option<&'a str>,
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
    /// The endpoint's payload filter left the message out: never sent, shown as canceled
    /// (hookbox extension).
    pub filtered: bool,
    /// Why the endpoint's payload filter could not tell, when it filtered the message out so
    /// (a field it reads is missing, …) (hookbox extension).
    #[schema(required)]
    pub filter_error: Option<String>,
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

pub fn attempt_out(a: Attempt, with_msg: bool, with_content: bool) -> MessageAttemptOut {
    MessageAttemptOut {
        msg: if with_msg {
            a.msg.as_ref().map(|m| message_json(m, with_content))
        } else {
            None
        },
        id: a.id.into(),
        msg_id: a.msg_id.into(),
        endpoint_id: a.endpoint_id.into(),
        url: a.url,
        // Kept whatever `with_content` says: the official SDKs send `with_content=false` on
        // every attempt listing, and would otherwise never see a response.
        response: a.response.unwrap_or_default(),
        response_status_code: a.response_status_code,
        response_duration_ms: a.response_duration_ms,
        status: a.status.api_code(),
        status_text: a.status.api_text(),
        trigger_type: a.trigger.api_code(),
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
