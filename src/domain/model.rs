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
    /// Not sent: the endpoint's payload filter did not take the message (or could not
    /// tell).
    Filtered,
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
            DeliveryStatus::Filtered => 6,
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
            6 => Some(DeliveryStatus::Filtered),
            _ => None,
        }
    }

    /// As the API numbers it (Svix's `MessageStatus`, 0 to 4): a delivery not sent, skipped
    /// or filtered, shows as 4, "canceled" (the SDKs know no other; a filtered one says so
    /// in a field of hookbox's own).
    pub const fn api_code(self) -> i64 {
        match self {
            DeliveryStatus::Skipped | DeliveryStatus::Filtered => 4,
            s => s.code(),
        }
    }

    /// From the `status` a listing asks for: Svix's 0 to 4, and hookbox's 5 for the filtered
    /// ones alone.
    pub const fn from_api_code(code: i64) -> Option<DeliveryStatus> {
        match code {
            4 => Some(DeliveryStatus::Skipped),
            5 => Some(DeliveryStatus::Filtered),
            c if c < 4 => DeliveryStatus::from_code(c),
            _ => None,
        }
    }

    /// As the API names it (`statusText`).
    pub const fn api_text(self) -> &'static str {
        match self {
            DeliveryStatus::Success => "success",
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Failed => "fail",
            DeliveryStatus::Sending => "sending",
            DeliveryStatus::Skipped | DeliveryStatus::Filtered => "canceled",
        }
    }

    /// The stored statuses a listing for this one takes in: "canceled" (skipped) includes the
    /// filtered deliveries, which the API shows so too.
    pub const fn listed(self) -> [DeliveryStatus; 2] {
        match self {
            DeliveryStatus::Skipped => [DeliveryStatus::Skipped, DeliveryStatus::Filtered],
            s => [s, s],
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
    /// As stored: 0 scheduled, 1 manual, 2 test send.
    pub const fn code(self) -> i64 {
        match self {
            Trigger::Scheduled => 0,
            Trigger::Manual => 1,
            Trigger::Test => 2,
        }
    }

    /// As the API numbers it, Svix's two values: a test send counts as asked for (1, manual);
    /// the console tells it apart.
    pub const fn api_code(self) -> i64 {
        match self {
            Trigger::Scheduled => 0,
            Trigger::Manual | Trigger::Test => 1,
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
    /// Retries, timeout and auto-disable where they differ from the server's.
    pub policy: DeliveryPolicy,
    /// A signature header in another sender's style, sent too.
    pub signature_header: Option<crate::domain::signing::SignatureHeader>,
    /// A payload filter (see `domain::filter`): only messages it takes are sent.
    pub filter: Option<String>,
    /// HMAC (`v1`) or ed25519 (`v1a`) signatures, fixed when it is created.
    pub signature_version: crate::domain::signing::SignatureVersion,
    /// Messages go one at a time, in the order they were accepted: the next waits until the
    /// one before was delivered, failed for good or was skipped.
    pub ordered: bool,
    pub metadata: serde_json::Map<String, serde_json::Value>,
    pub headers: BTreeMap<String, String>,
    pub disabled: bool,
    pub disabled_reason: Option<String>,
    pub disabled_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// How deliveries to one endpoint go where they differ from the server's settings (each
/// `None`: the server's).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryPolicy {
    /// The waits before each retry, in seconds (the first attempt is at once): its length is
    /// the number of retries.
    pub retry_schedule: Option<Vec<u32>>,
    /// How long a request may take, in seconds.
    pub timeout_secs: Option<u32>,
    /// How long every attempt may fail before the endpoint is disabled, in seconds (0: never).
    pub auto_disable_after_secs: Option<u32>,
}

impl DeliveryPolicy {
    /// Most retries an endpoint's schedule may have.
    pub const MAX_RETRIES: usize = 20;
    /// The longest wait before a retry: a week.
    pub const MAX_RETRY_WAIT_SECS: u32 = 7 * 24 * 3600;
    pub const MAX_TIMEOUT_SECS: u32 = 300;
    /// The longest auto-disable period: 30 days.
    pub const MAX_AUTO_DISABLE_SECS: u32 = 30 * 24 * 3600;

    /// The first rule it breaks: (field, what is wrong).
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        if let Some(s) = &self.retry_schedule {
            if s.len() > Self::MAX_RETRIES {
                return Err((
                    "retrySchedule",
                    format!("at most {} retries", Self::MAX_RETRIES),
                ));
            }
            if let Some(w) = s.iter().find(|w| **w > Self::MAX_RETRY_WAIT_SECS) {
                return Err((
                    "retrySchedule",
                    format!(
                        "a wait of {w} s is longer than a week ({} s)",
                        Self::MAX_RETRY_WAIT_SECS
                    ),
                ));
            }
        }
        if let Some(t) = self.timeout_secs {
            if !(1..=Self::MAX_TIMEOUT_SECS).contains(&t) {
                return Err((
                    "timeoutSeconds",
                    format!("from 1 to {} seconds", Self::MAX_TIMEOUT_SECS),
                ));
            }
        }
        if let Some(a) = self.auto_disable_after_secs {
            if a > Self::MAX_AUTO_DISABLE_SECS {
                return Err((
                    "autoDisableAfterSeconds",
                    format!(
                        "at most 30 days ({} s); 0 never disables",
                        Self::MAX_AUTO_DISABLE_SECS
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The schedule in its stored form: waits in seconds, comma-separated ("" for none).
    pub fn stored_schedule(&self) -> Option<String> {
        self.retry_schedule
            .as_ref()
            .map(|s| s.iter().map(u32::to_string).collect::<Vec<_>>().join(","))
    }

    /// A schedule from its stored form (what does not read is left out).
    pub fn schedule_of(stored: Option<&str>) -> Option<Vec<u32>> {
        stored.map(|s| s.split(',').filter_map(|w| w.trim().parse().ok()).collect())
    }

    /// The retry schedule of deliveries to the endpoint, with the server's jitter, when it
    /// has its own.
    pub fn retry_schedule(
        &self,
        server: &crate::domain::retry::RetrySchedule,
    ) -> Option<crate::domain::retry::RetrySchedule> {
        self.retry_schedule
            .as_ref()
            .map(|waits| crate::domain::retry::RetrySchedule {
                delays: std::iter::once(0)
                    .chain(waits.iter().copied())
                    .map(|s| std::time::Duration::from_secs(u64::from(s)))
                    .collect(),
                jitter: server.jitter,
            })
    }
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

    /// Whether a stored message (with its payload) is one this endpoint takes: its event
    /// types and channels, and its payload filter if it has one (one that cannot tell takes
    /// nothing).
    pub fn takes(&self, m: &Message) -> bool {
        if !self.accepts(&m.event_type, m.channels.as_deref()) {
            return false;
        }
        let (Some(filter), Some(payload)) = (&self.filter, &m.payload) else {
            return self.filter.is_none();
        };
        let input = crate::domain::filter::Input::new(
            &m.event_type,
            payload,
            m.channels.as_deref(),
            m.tags.as_deref(),
        );
        crate::domain::filter::passes(filter, &input) == Ok(true)
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

/// An endpoint `id` of application `app_id` to `http://127.0.0.1:9/` with every option at its
/// default, changed at 1: for tests.
#[cfg(test)]
pub(crate) fn sample_endpoint(id: &str, app_id: &str) -> Endpoint {
    Endpoint {
        id: EndpointId::from_string(id.to_owned()),
        app_id: AppId::from(app_id),
        uid: None,
        url: "http://127.0.0.1:9/".into(),
        description: String::new(),
        filter_types: None,
        channels: None,
        rate_limit: None,
        legacy_signature: false,
        verify_ssl: true,
        policy: Default::default(),
        signature_header: None,
        filter: None,
        signature_version: Default::default(),
        ordered: false,
        metadata: Default::default(),
        headers: Default::default(),
        disabled: false,
        disabled_reason: None,
        disabled_at: None,
        created_at: 1,
        updated_at: 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivery_statuses_round_trip_through_their_codes_and_show_as_svix_numbers_them() {
        use DeliveryStatus::*;
        for s in [Success, Pending, Failed, Sending, Skipped, Filtered] {
            assert_eq!(DeliveryStatus::from_code(s.code()), Some(s));
            assert!(DeliveryStatus::from_api_code(s.api_code())
                .is_some_and(|listed| listed.listed().contains(&s)));
        }
        // Svix's SDKs refuse a status they do not know: a filtered delivery shows as canceled.
        assert_eq!(
            [Success, Pending, Failed, Sending, Skipped, Filtered].map(DeliveryStatus::api_code),
            [0, 1, 2, 3, 4, 4]
        );
        assert_eq!(Skipped.api_text(), "canceled");
        assert_eq!(Filtered.api_text(), "canceled");
        assert_eq!(DeliveryStatus::from_api_code(5), Some(Filtered));
        assert_eq!(Filtered.listed(), [Filtered, Filtered]);
        assert_eq!(DeliveryStatus::from_code(4), None);
        assert_eq!(DeliveryStatus::from_api_code(6), None);
        for t in [Trigger::Scheduled, Trigger::Manual, Trigger::Test] {
            assert_eq!(Trigger::from_code(t.code()), t);
        }
    }

    #[test]
    fn an_endpoint_s_schedule_is_stored_and_read_back_and_starts_at_once() {
        let p = DeliveryPolicy {
            retry_schedule: Some(vec![10, 300]),
            ..DeliveryPolicy::default()
        };
        let stored = p.stored_schedule();
        assert_eq!(stored.as_deref(), Some("10,300"));
        assert_eq!(
            DeliveryPolicy::schedule_of(stored.as_deref()),
            p.retry_schedule
        );
        // No retry is stored as such, not as "the server's".
        let none = DeliveryPolicy {
            retry_schedule: Some(Vec::new()),
            ..DeliveryPolicy::default()
        };
        assert_eq!(
            DeliveryPolicy::schedule_of(none.stored_schedule().as_deref()),
            Some(Vec::new())
        );
        assert_eq!(DeliveryPolicy::schedule_of(None), None);
        let server = crate::domain::retry::RetrySchedule {
            delays: vec![std::time::Duration::ZERO],
            jitter: 0.2,
        };
        let own = p.retry_schedule(&server).unwrap();
        assert_eq!(own.max_attempts(), 3);
        assert_eq!(own.delays[0], std::time::Duration::ZERO);
        assert_eq!(own.jitter, 0.2);
        assert!(DeliveryPolicy::default().retry_schedule(&server).is_none());
    }
}
