//! What every backend's ingest takes: a message and where and when it goes.

use crate::domain::model::DeliveryStatus;

/// Where a message goes and how the ingest is answered.
pub struct IngestRequest<'a> {
    pub msg: &'a crate::domain::model::Message,
    /// Only this endpoint (send-example), regardless of its filters.
    pub only_endpoint: Option<&'a str>,
    pub idempotency: Option<&'a crate::db::IdempotencyKey>,
    /// The response to store with the idempotency key.
    pub response: (u16, &'a str),
    pub lease_until: i64,
    /// When the deliveries fall due (`deliverAt`, or now).
    pub due_at: i64,
    /// When the payload may be purged.
    pub expires_at: i64,
    /// The message as payload filters see it, made the first time one is evaluated.
    pub filter_input: std::sync::OnceLock<crate::domain::filter::Input<'a>>,
}

/// Whether a message goes to an endpoint.
#[derive(Debug, PartialEq, Eq)]
pub enum Route {
    /// Not at all: its event types or channels do not take it.
    No,
    /// It is to be sent.
    Deliver,
    /// Its payload filter did not take it (with why, when the filter could not tell): stored
    /// as filtered, never sent.
    Filtered(Option<String>),
}

impl Route {
    /// The delivery stored for it, to an endpoint that is `disabled` or not: its status, and
    /// why it was filtered when the filter could not tell; `None`: no delivery.
    pub fn delivery(self, disabled: bool) -> Option<(DeliveryStatus, Option<String>)> {
        match self {
            Route::No => None,
            Route::Filtered(why) => Some((DeliveryStatus::Filtered, why)),
            Route::Deliver if disabled => Some((DeliveryStatus::Skipped, None)),
            Route::Deliver => Some((DeliveryStatus::Pending, None)),
        }
    }
}

impl<'a> IngestRequest<'a> {
    /// Whether the message goes to this endpoint, given its stored filter columns (event
    /// types and channels as JSON arrays, the payload filter's text); `only_endpoint`
    /// overrides the filters.
    pub fn wants(
        &self,
        endpoint_id: &str,
        filter_types: Option<&str>,
        channels: Option<&str>,
        filter: Option<&str>,
    ) -> Route {
        if let Some(only) = self.only_endpoint {
            return if only == endpoint_id {
                Route::Deliver
            } else {
                Route::No
            };
        }
        let types = super::filter_col(filter_types, endpoint_id);
        let chans = super::filter_col(channels, endpoint_id);
        let m = self.msg;
        if !crate::domain::routes_to(
            &m.event_type,
            m.channels.as_deref(),
            types.as_deref(),
            chans.as_deref(),
        ) {
            return Route::No;
        }
        let Some(filter) = filter else {
            return Route::Deliver;
        };
        let input = self.filter_input.get_or_init(|| {
            crate::domain::filter::Input::new(
                &m.event_type,
                m.payload.as_deref().unwrap_or("{}"),
                m.channels.as_deref(),
                m.tags.as_deref(),
            )
        });
        match crate::domain::filter::passes(filter, input) {
            Ok(true) => Route::Deliver,
            Ok(false) => Route::Filtered(None),
            Err(why) => Route::Filtered(Some(why)),
        }
    }

    /// The message's new delivery `delivery_id` to `endpoint_id`, leased (to node `owner` on a
    /// shared store) for sending now.
    pub fn claimed(
        &self,
        delivery_id: i64,
        endpoint_id: String,
        owner: Option<std::sync::Arc<str>>,
    ) -> super::Claimed {
        let m = self.msg;
        super::Claimed {
            delivery_id,
            msg_id: m.id.to_string(),
            endpoint_id,
            attempts: 0,
            manual: false,
            event_type: m.event_type.clone(),
            payload: m
                .payload
                .clone()
                .unwrap_or_else(|| std::sync::Arc::from("{}")),
            owner,
            lane: None,
        }
    }
}

/// Operational events as messages of the reserved application: what both backends store, in
/// the transaction of the change they tell of.
pub mod events {
    use crate::db::{AttemptNotice, Notice, Owner};
    use crate::domain::model::Message;
    use crate::domain::operational::{Event, KEEP_MS};
    use crate::domain::{ids, time::format_ms};
    use serde_json::{json, Value};
    use std::sync::Arc;

    /// The message that carries event `event_type` with `data` to the operator endpoints of
    /// application `ops_app`.
    pub fn message(ops_app: &str, event_type: &str, data: Value, now: i64) -> Message {
        let payload =
            json!({ "type": event_type, "timestamp": format_ms(now), "data": data }).to_string();
        Message {
            id: ids::MsgId::generate(),
            app_id: ids::AppId::from_string(ops_app.to_owned()),
            event_type: event_type.to_owned(),
            event_id: None,
            payload: Some(Arc::from(payload)),
            channels: None,
            tags: None,
            created_at: now,
        }
    }

    /// How `msg` is stored: due at once, kept for `KEEP_MS`, claimed by no one.
    pub fn request(msg: &Message) -> super::IngestRequest<'_> {
        super::IngestRequest {
            msg,
            only_endpoint: None,
            idempotency: None,
            response: (202, ""),
            lease_until: 0,
            due_at: msg.created_at,
            expires_at: msg.created_at + KEEP_MS,
            filter_input: Default::default(),
        }
    }

    /// The event a notice makes, and the endpoint it is about.
    pub fn of_notice(n: &Notice) -> (&'static str, &str) {
        let (event, endpoint_id) = match n {
            Notice::Failing(a) => (Event::AttemptFailing, &a.endpoint_id),
            Notice::Exhausted(a) => (Event::AttemptExhausted, &a.endpoint_id),
            Notice::Recovered(a) => (Event::AttemptRecovered, &a.endpoint_id),
            Notice::Disabled { endpoint_id, .. } => (Event::EndpointDisabled, endpoint_id),
        };
        (event.name(), endpoint_id)
    }

    /// The data of a notice's event about an endpoint of `o`.
    pub fn notice_data(n: &Notice, o: &Owner, endpoint_id: &str) -> Value {
        let mut data = owner_data(o, endpoint_id);
        match n {
            Notice::Failing(a) | Notice::Exhausted(a) | Notice::Recovered(a) => {
                data["msgId"] = a.msg_id.clone().into();
                data["lastAttempt"] = attempt_data(a);
            }
            Notice::Disabled { reason, at, .. } => {
                data["reason"] = reason.clone().into();
                data["failSince"] = format_ms(*at).into();
            }
        }
        data
    }

    /// Who an endpoint belongs to, as events say it.
    pub fn owner_data(o: &Owner, endpoint_id: &str) -> Value {
        json!({ "appId": o.app_id, "appUid": o.app_uid, "endpointId": endpoint_id, "endpointUid": o.endpoint_uid })
    }

    fn attempt_data(a: &AttemptNotice) -> Value {
        json!({ "id": a.attempt_id, "responseStatusCode": a.status_code, "timestamp": format_ms(a.at) })
    }
}

/// Alerts queued with the changes they tell of: what both backends store.
pub mod alerts {
    use crate::domain::alerts::{Health, Problem, Rule};
    use crate::domain::time::format_ms;
    use serde_json::json;

    /// An endpoint and its application, as an alert tells of them.
    #[derive(Debug, Clone)]
    pub struct EndpointFacts {
        pub url: String,
        pub endpoint_uid: Option<String>,
        pub app_id: String,
        pub app_uid: Option<String>,
        pub app_name: String,
    }

    /// The facts of a `message.exhausted` alert about its first message.
    pub fn exhausted_data(
        f: &EndpointFacts,
        endpoint_id: &str,
        event_type: &str,
        status_code: i64,
        at: i64,
    ) -> String {
        let mut m = about(f, endpoint_id);
        m.extend([
            ("count".into(), 1.into()),
            ("eventTypes".into(), json!({ event_type: 1 })),
            ("firstAt".into(), format_ms(at).into()),
            ("lastAt".into(), format_ms(at).into()),
            ("lastStatusCode".into(), status_code.into()),
        ]);
        serde_json::Value::Object(m).to_string()
    }

    /// `data` (of a `message.exhausted` alert not sent yet) with one more message counted.
    pub fn add_exhausted(data: &str, event_type: &str, status_code: i64, at: i64) -> String {
        let mut v: serde_json::Value = serde_json::from_str(data).unwrap_or_else(|_| json!({}));
        let count = v["count"].as_i64().unwrap_or(0) + 1;
        v["count"] = count.into();
        let types = &mut v["eventTypes"];
        if !types.is_object() {
            *types = json!({});
        }
        let n = types[event_type].as_i64().unwrap_or(0) + 1;
        types[event_type] = n.into();
        v["lastAt"] = format_ms(at).into();
        v["lastStatusCode"] = status_code.into();
        v.to_string()
    }

    /// The endpoint and application an alert is about.
    fn about(f: &EndpointFacts, endpoint_id: &str) -> serde_json::Map<String, serde_json::Value> {
        let v = json!({
            "appId": f.app_id,
            "appUid": f.app_uid,
            "appName": f.app_name,
            "endpointId": endpoint_id,
            "endpointUid": f.endpoint_uid,
            "url": f.url,
        });
        match v {
            serde_json::Value::Object(m) => m,
            _ => serde_json::Map::new(),
        }
    }

    /// The facts of an `endpoint.failing` or `endpoint.unauthorized` alert: what is wrong,
    /// and the attempts over the window that show it.
    pub fn failing_data(
        f: &EndpointFacts,
        endpoint_id: &str,
        problem: Problem,
        h: &Health,
        window_ms: i64,
        at: i64,
    ) -> String {
        let mut m = about(f, endpoint_id);
        m.extend([
            ("problem".into(), problem.name().into()),
            ("attempts".into(), h.attempts.into()),
            ("failures".into(), h.failures.into()),
            ("timeouts".into(), h.timeouts.into()),
            ("rejected".into(), h.rejected.into()),
            ("windowMinutes".into(), (window_ms / 60_000).into()),
            ("since".into(), format_ms(at).into()),
        ]);
        serde_json::Value::Object(m).to_string()
    }

    /// The facts of an `endpoint.recovered` alert: the incidents that ended (rule and
    /// start) and when.
    pub fn recovered_data(
        f: &EndpointFacts,
        endpoint_id: &str,
        incidents: &[(Rule, i64)],
        at: i64,
    ) -> String {
        let mut m = about(f, endpoint_id);
        let since = incidents.iter().map(|(_, s)| *s).min().unwrap_or(at);
        m.extend([
            (
                "incidents".into(),
                incidents
                    .iter()
                    .map(|(r, s)| json!({ "rule": r.name(), "since": format_ms(*s) }))
                    .collect(),
            ),
            ("since".into(), format_ms(since).into()),
            ("resolvedAt".into(), format_ms(at).into()),
        ]);
        serde_json::Value::Object(m).to_string()
    }

    /// The facts of an `endpoint.disabled` alert.
    /// `skipped`: deliveries skipped since it was disabled (Enable replays them).
    pub fn disabled_data(
        f: &EndpointFacts,
        endpoint_id: &str,
        reason: &str,
        at: i64,
        skipped: i64,
    ) -> String {
        let mut m = about(f, endpoint_id);
        m.extend([
            ("reason".into(), reason.into()),
            ("disabledAt".into(), format_ms(at).into()),
            ("skipped".into(), skipped.into()),
        ]);
        serde_json::Value::Object(m).to_string()
    }
}
