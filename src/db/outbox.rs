//! What every backend's ingest takes: a message and where and when it goes.

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
}
