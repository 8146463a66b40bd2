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

impl IngestRequest<'_> {
    /// Whether the message goes to this endpoint, given its stored filter columns (event
    /// types and channels as JSON arrays); `only_endpoint` overrides the filters.
    pub fn wants(
        &self,
        endpoint_id: &str,
        filter_types: Option<&str>,
        channels: Option<&str>,
    ) -> bool {
        if let Some(only) = self.only_endpoint {
            return only == endpoint_id;
        }
        let types = super::filter_col(filter_types, endpoint_id);
        let chans = super::filter_col(channels, endpoint_id);
        crate::domain::routes_to(
            &self.msg.event_type,
            self.msg.channels.as_deref(),
            types.as_deref(),
            chans.as_deref(),
        )
    }

    /// The message's new delivery `delivery_id` to `endpoint_id`, leased for sending now.
    pub fn claimed(&self, delivery_id: i64, endpoint_id: String) -> super::Claimed {
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
        }
    }
}
