//! The entities hookbox keeps (applications, endpoints, event types, messages, attempts)
//! and the states a delivery goes through. Plain data: the store reads and writes them, the
//! services apply the rules, the HTTP layer shows them.

pub use super::ids::{AppId, AttemptId, EndpointId, MsgId};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Where a delivery (one message to one endpoint) stands, and how an attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeliveryStatus {
    /// Delivered (a 2xx).
    Success,
    /// Waiting for its next attempt.
    Pending,
    /// Failed: every attempt of its schedule (or this attempt) failed.
    Failed,
    /// An attempt is on its way.
    Sending,
    /// Not sent: its endpoint was disabled (Enable can replay it).
    Skipped,
}

impl DeliveryStatus {
    /// As stored.
    pub const fn code(self) -> i64 {
        match self {
            DeliveryStatus::Success => 0,
            DeliveryStatus::Pending => 1,
            DeliveryStatus::Failed => 2,
            DeliveryStatus::Sending => 3,
            DeliveryStatus::Skipped => 5,
        }
    }

    /// From its stored code; `None` for a code hookbox never writes.
    pub const fn from_code(code: i64) -> Option<DeliveryStatus> {
        match code {
            0 => Some(DeliveryStatus::Success),
            1 => Some(DeliveryStatus::Pending),
            2 => Some(DeliveryStatus::Failed),
            3 => Some(DeliveryStatus::Sending),
            5 => Some(DeliveryStatus::Skipped),
            _ => None,
        }
    }

    /// As the API numbers it (Svix's `MessageStatus`): a skipped delivery shows as 4,
    /// "canceled".
    pub const fn api_code(self) -> i64 {
        match self {
            DeliveryStatus::Skipped => 4,
            s => s.code(),
        }
    }

    /// From the API's number (0 to 4).
    pub const fn from_api_code(code: i64) -> Option<DeliveryStatus> {
        match code {
            4 => Some(DeliveryStatus::Skipped),
            5 => None,
            c => DeliveryStatus::from_code(c),
        }
    }

    /// As the API names it (`statusText`).
    pub const fn api_text(self) -> &'static str {
        match self {
            DeliveryStatus::Success => "success",
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Failed => "fail",
            DeliveryStatus::Sending => "sending",
            DeliveryStatus::Skipped => "canceled",
        }
    }
}

/// What started an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Trigger {
    /// The retry schedule.
    Scheduled,
    /// A resend, recovery or replay asked for.
    Manual,
    /// A synchronous test send from the console or the API.
    Test,
}

impl Trigger {
    /// As stored (and as the API numbers it: 0 scheduled, 1 manual).
    pub const fn code(self) -> i64 {
        match self {
            Trigger::Scheduled => 0,
            Trigger::Manual => 1,
            Trigger::Test => 2,
        }
    }

    pub const fn from_code(code: i64) -> Trigger {
        match code {
            0 => Trigger::Scheduled,
            1 => Trigger::Manual,
            _ => Trigger::Test,
        }
    }

    pub const fn name(self) -> &'static str {
        match self {
            Trigger::Scheduled => "scheduled",
            Trigger::Manual => "manual",
            Trigger::Test => "test",
        }
    }
}

#[derive(Debug, Clone)]
pub struct App {
    pub id: AppId,
    pub uid: Option<String>,
    pub name: String,
    pub rate_limit: Option<i64>,
    /// How long message payloads are kept, when not the server's default.
    pub retention_ms: Option<i64>,
    pub metadata: serde_json::Map<String, serde_json::Value>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl App {
    /// hookbox's own application, whose endpoints receive operational webhooks.
    pub fn is_operational(&self) -> bool {
        self.uid.as_deref() == Some(crate::operational::APP_UID)
    }
}

#[derive(Debug, Clone)]
pub struct Endpoint {
    pub id: EndpointId,
    pub app_id: AppId,
    pub uid: Option<String>,
    pub url: String,
    pub description: String,
    pub filter_types: Option<Vec<String>>,
    pub channels: Option<Vec<String>>,
    pub rate_limit: Option<i64>,
    /// Also sign with `X-Webhook-Signature-256: sha256=<hex>`.
    pub legacy_signature: bool,
    /// `false` skips TLS certificate verification for this endpoint.
    pub verify_ssl: bool,
    pub metadata: serde_json::Map<String, serde_json::Value>,
    pub headers: BTreeMap<String, String>,
    pub disabled: bool,
    pub disabled_reason: Option<String>,
    pub disabled_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Endpoint {
    /// Whether a message of this type and these channels goes to this endpoint.
    pub fn accepts(&self, event_type: &str, channels: Option<&[String]>) -> bool {
        crate::domain::routes_to(
            event_type,
            channels,
            self.filter_types.as_deref(),
            self.channels.as_deref(),
        )
    }
}

#[derive(Debug, Clone)]
pub struct EventType {
    pub name: String,
    pub description: String,
    pub group_name: Option<String>,
    pub schemas: Option<serde_json::Value>,
    pub feature_flags: Option<Vec<String>>,
    pub archived: bool,
    pub deprecated: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone)]
pub struct Message {
    pub id: MsgId,
    pub app_id: AppId,
    pub event_type: String,
    pub event_id: Option<String>,
    /// The exact JSON text that is signed and sent; `None` once purged.
    pub payload: Option<Arc<str>>,
    pub channels: Option<Vec<String>>,
    pub tags: Option<Vec<String>>,
    pub created_at: i64,
}

#[derive(Debug, Clone)]
pub struct Attempt {
    pub id: AttemptId,
    pub msg_id: MsgId,
    pub endpoint_id: EndpointId,
    pub url: String,
    pub status: DeliveryStatus,
    pub response_status_code: i64,
    pub response: Option<String>,
    pub response_duration_ms: i64,
    pub error: Option<String>,
    pub trigger: Trigger,
    pub created_at: i64,
    pub request_headers: Option<String>,
    pub response_headers: Option<String>,
    pub msg: Option<Message>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivery_statuses_round_trip_through_their_codes_and_show_as_svix_numbers_them() {
        use DeliveryStatus::*;
        for s in [Success, Pending, Failed, Sending, Skipped] {
            assert_eq!(DeliveryStatus::from_code(s.code()), Some(s));
            assert_eq!(DeliveryStatus::from_api_code(s.api_code()), Some(s));
        }
        assert_eq!(
            [Success, Pending, Failed, Sending, Skipped].map(DeliveryStatus::api_code),
            [0, 1, 2, 3, 4]
        );
        assert_eq!(Skipped.api_text(), "canceled");
        assert_eq!(DeliveryStatus::from_code(4), None);
        assert_eq!(DeliveryStatus::from_api_code(5), None);
        for t in [Trigger::Scheduled, Trigger::Manual, Trigger::Test] {
            assert_eq!(Trigger::from_code(t.code()), t);
        }
    }
}
