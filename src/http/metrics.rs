//! `GET /metrics`: every figure in the Prometheus text format (version 0.0.4). Unauthenticated,
//! like the health check, so that a scraper needs no API token; it reveals counts, never
//! content. Each scrape builds its own `prometheus-client` registry from the owners'
//! instruments and the figures read then (see `crate::metrics`), encodes it and drops it.

use super::error::ApiError;
use super::Data;
use crate::domain::time::now_ms;
use crate::metrics::{ConstCounter, ConstGauge, Counter, Gauge, Histogram, Labelled, CONTENT_TYPE};
use actix_web::HttpResponse;
use prometheus_client::encoding::prometheus_text;
use prometheus_client::registry::Registry;
use std::sync::atomic::{AtomicU64, Ordering};

/// Figures the HTTP layer keeps.
#[derive(Debug)]
pub struct HttpMetrics {
    pub requests_in_flight: Gauge,
    /// Messages stored by ingest (replays of an `Idempotency-Key` are not counted).
    pub messages_ingested: Counter,
    /// `POST …/msg` answered 2xx, from the handler's start to its answer, in µs.
    pub ingest_latency: Histogram,
}

impl Default for HttpMetrics {
    fn default() -> Self {
        HttpMetrics {
            requests_in_flight: Gauge::default(),
            messages_ingested: Counter::default(),
            ingest_latency: Histogram::latency(),
        }
    }
}

/// How long a scrape waits for the figures read from the database.
const GAUGES_PATIENCE: std::time::Duration = std::time::Duration::from_secs(3);

pub async fn scrape(st: Data) -> Result<HttpResponse, ApiError> {
    // While the database cannot be reached, what it counts is left out (and
    // `hookbox_database_reachable` says why); the node's own figures are what matters then.
    // A node busy with its database is not one cut off from it: the figures are then left
    // out after a few seconds (a scrape has ten), and reachability is the health check's.
    let g = match tokio::time::timeout(GAUGES_PATIENCE, st.store.gauges(now_ms())).await {
        Ok(Ok(g)) => Some(g),
        Ok(Err(crate::db::DbError::Unreachable(_))) | Err(_) => None,
        Ok(Err(e)) => return Err(e.into()),
    };
    let reachable = g.is_some()
        || st
            .store
            .reachable(crate::http::api::health::HEALTH_PATIENCE)
            .await
            .is_ok();
    let m = &st.metrics;
    let d = st.dispatcher.counters();
    let w = st.store.writer_stats();
    let total = |n: &AtomicU64| ConstCounter::new(n.load(Ordering::Relaxed));
    // Names and help as exposed, less what the encoder adds: `_total` to a counter's name,
    // a full stop to each help text.
    let mut r = Registry::default();
    r.register(
        "hookbox_messages_ingested",
        "Messages stored by ingest (idempotent replays not counted)",
        m.messages_ingested.clone(),
    );
    r.register(
        "hookbox_ingest_duration_seconds",
        "Time to answer a successful POST /api/v1/app/{app}/msg (stored and synced)",
        m.ingest_latency.to_const(),
    );
    r.register(
        "hookbox_http_requests_in_flight",
        "HTTP requests being served",
        m.requests_in_flight.clone(),
    );
    r.register(
        "hookbox_delivery_attempts",
        "Delivery attempts by outcome: success (2xx), failure (retried while the schedule \
         lasts), gone (410: the endpoint was disabled)",
        Labelled::new(
            "outcome",
            [
                ("success", d.succeeded.clone()),
                ("failure", d.failed.clone()),
                ("gone", d.gone.clone()),
            ],
        ),
    );
    r.register(
        "hookbox_deliveries_skipped",
        "Claimed deliveries not attempted because their endpoint was disabled meanwhile \
         (deliveries to an endpoint disabled at ingest are stored as skipped, not counted)",
        d.skipped.clone(),
    );
    r.register(
        "hookbox_deliveries_handed_back",
        "Claimed deliveries handed back unsent, to be claimed again, because their endpoint \
         could not be read for a minute (the database was away)",
        d.handed_back.clone(),
    );
    r.register(
        "hookbox_delivery_results_not_written",
        "Delivery results the database refused even without their attempt: not written, \
         their deliveries left leased (sent again after a restart, or by another node)",
        d.results_not_written.clone(),
    );
    r.register(
        "hookbox_deliveries_offloaded",
        "Deliveries handed over by ingest that ran on the delivery threads because ingest kept \
         the HTTP workers saturated",
        d.offloaded.clone(),
    );
    r.register(
        "hookbox_delivery_attempt_duration_seconds",
        "Duration of each delivery attempt (connect to response, or to the error)",
        d.attempt_latency.to_const(),
    );
    r.register(
        "hookbox_deliveries_in_flight",
        "Delivery requests waiting for their endpoint's answer",
        ConstGauge::new(d.in_flight.load(Ordering::Relaxed)),
    );
    if let Some(g) = &g {
        r.register(
            "hookbox_queue_deliveries",
            "Pending deliveries waiting in the database, not yet claimed: due (now), scheduled \
             (a later retry or deliverAt)",
            Labelled::new(
                "state",
                [
                    ("due", ConstGauge::new(g.due)),
                    ("scheduled", ConstGauge::new(g.scheduled)),
                ],
            ),
        );
    }
    r.register(
        "hookbox_queue_in_memory",
        "Deliveries the dispatcher holds in memory (queued or in flight)",
        ConstGauge::new(st.dispatcher.queued()),
    );
    if let Some(g) = &g {
        r.register(
            "hookbox_endpoints",
            "Endpoints by state",
            Labelled::new(
                "state",
                [
                    (
                        "enabled",
                        ConstGauge::new(g.endpoints - g.endpoints_disabled),
                    ),
                    ("disabled", ConstGauge::new(g.endpoints_disabled)),
                ],
            ),
        );
    }
    r.register(
        "hookbox_db_transactions",
        "Write transactions committed (or rolled back) by the writer",
        total(&w.commits),
    );
    r.register(
        "hookbox_db_wal_syncs",
        "fsyncs of the WAL by the sync thread (durable mode)",
        total(&w.syncs),
    );
    r.register(
        "hookbox_db_full_errors",
        "Writes refused because the disk (or database.max_size_mib) was full",
        total(&w.full_errors),
    );
    r.register(
        "hookbox_db_full",
        "1 while writes are refused because the disk (or database.max_size_mib) is full",
        ConstGauge::new(i64::from(w.full.load(Ordering::Relaxed))),
    );
    r.register(
        "hookbox_db_writer_batch_size",
        "Callers' writes committed together in one transaction (group commit)",
        w.batch_size.to_const(),
    );
    r.register(
        "hookbox_db_commit_duration_seconds",
        "BEGIN to COMMIT of each write transaction, the batch's work included",
        w.commit_latency.to_const(),
    );
    r.register(
        "hookbox_database_reachable",
        "1 while the database answers (or every connection is at work); 0 while it cannot be \
         reached (the figures read from it are then left out, as they are when it is too busy \
         to answer within 3 s)",
        ConstGauge::new(i64::from(reachable)),
    );
    let mut body = String::new();
    prometheus_text::encode(&mut body, &r)
        .map_err(|e| ApiError::Internal(format!("encoding metrics: {e}")))?;
    Ok(HttpResponse::Ok().content_type(CONTENT_TYPE).body(body))
}
