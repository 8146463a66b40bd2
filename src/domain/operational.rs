//! Operational webhooks: events about hookbox itself (`endpoint.created`,
//! `message.attempt.failing`, …) sent to the operator's own endpoints. Those endpoints belong
//! to a reserved application, so the events are stored, signed, retried and logged exactly
//! like any message. The API manages them under `/api/v1/operational-webhook/endpoint`.

/// The reserved application's uid. User uids may not start with `_hookbox`.
pub const APP_UID: &str = "_hookbox_operational";
pub const RESERVED_PREFIX: &str = "_hookbox";

/// The events operator endpoints can subscribe to, with what each means.
pub const EVENTS: [(&str, &str); 7] = [
    ("endpoint.created", "An endpoint was created"),
    ("endpoint.updated", "An endpoint was changed"),
    ("endpoint.deleted", "An endpoint was deleted"),
    (
        "endpoint.disabled",
        "An endpoint was disabled (410 Gone, or failing for too long)",
    ),
    (
        "message.attempt.failing",
        "A message failed its 4th attempt and will be retried",
    ),
    (
        "message.attempt.exhausted",
        "A message's last attempt failed: it will not be retried",
    ),
    (
        "message.attempt.recovered",
        "A message was delivered after failing",
    ),
];

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
