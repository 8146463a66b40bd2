//! Operational webhooks: events about hookbox itself (`endpoint.created`,
//! `message.attempt.failing`, …) sent to the operator's own endpoints. Those endpoints belong
//! to a reserved application, so the events are stored, signed, retried and logged exactly
//! like any message. The API manages them under `/api/v1/operational-webhook/endpoint`.

/// The reserved application's uid. User uids may not start with `_hookbox`.
pub const APP_UID: &str = "_hookbox_operational";
pub const RESERVED_PREFIX: &str = "_hookbox";

/// An operational event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Event {
    EndpointCreated,
    EndpointUpdated,
    EndpointDeleted,
    EndpointDisabled,
    AttemptFailing,
    AttemptExhausted,
    AttemptRecovered,
}

impl Event {
    pub const ALL: [Event; 7] = [
        Event::EndpointCreated,
        Event::EndpointUpdated,
        Event::EndpointDeleted,
        Event::EndpointDisabled,
        Event::AttemptFailing,
        Event::AttemptExhausted,
        Event::AttemptRecovered,
    ];

    /// Its event type, as operator endpoints subscribe to it.
    pub const fn name(self) -> &'static str {
        match self {
            Event::EndpointCreated => "endpoint.created",
            Event::EndpointUpdated => "endpoint.updated",
            Event::EndpointDeleted => "endpoint.deleted",
            Event::EndpointDisabled => "endpoint.disabled",
            Event::AttemptFailing => "message.attempt.failing",
            Event::AttemptExhausted => "message.attempt.exhausted",
            Event::AttemptRecovered => "message.attempt.recovered",
        }
    }

    /// What it means.
    pub const fn description(self) -> &'static str {
        match self {
            Event::EndpointCreated => "An endpoint was created",
            Event::EndpointUpdated => "An endpoint was changed",
            Event::EndpointDeleted => "An endpoint was deleted",
            Event::EndpointDisabled => {
                "An endpoint was disabled (410 Gone, or failing for too long)"
            }
            Event::AttemptFailing => "A message failed its 4th attempt and will be retried",
            Event::AttemptExhausted => "A message's last attempt failed: it will not be retried",
            Event::AttemptRecovered => "A message was delivered after failing",
        }
    }
}

/// The events operator endpoints can subscribe to, with what each means.
pub const EVENTS: [(&str, &str); 7] = {
    let mut out = [("", ""); 7];
    let mut i = 0;
    while i < Event::ALL.len() {
        out[i] = (Event::ALL[i].name(), Event::ALL[i].description());
        i += 1;
    }
    out
};

/// The names among `names` that are not operational events.
pub fn unknown_events(names: &[String]) -> Vec<String> {
    names
        .iter()
        .filter(|n| !EVENTS.iter().any(|(e, _)| e == n))
        .cloned()
        .collect()
}

/// How long operational event payloads are kept.
pub const KEEP_MS: i64 = 30 * 24 * 3600 * 1000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_event_has_its_own_name_and_the_list_follows_the_enum() {
        let names: std::collections::HashSet<&str> = EVENTS.iter().map(|(n, _)| *n).collect();
        assert_eq!(names.len(), Event::ALL.len());
        assert_eq!(
            EVENTS[5],
            (
                "message.attempt.exhausted",
                Event::AttemptExhausted.description()
            )
        );
        assert_eq!(
            unknown_events(&["endpoint.created".into(), "x".into()]),
            ["x"]
        );
    }
}
