//! `GET /metrics`: every figure in the Prometheus text format. Unauthenticated, like the
//! health check, so that a scraper needs no API token; it reveals counts, never content.

use super::error::ApiError;
use super::Data;
use crate::domain::time::now_ms;
use crate::metrics::{Counter, Exposition, Gauge, Histogram};
use actix_web::HttpResponse;
use std::sync::atomic::Ordering;

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

pub async fn scrape(st: Data) -> Result<HttpResponse, ApiError> {
    let g = st.store.gauges(now_ms()).await?;
    let m = &st.metrics;
    let d = st.dispatcher.counters();
    let w = st.store.writer_stats();
    let mut e = Exposition::default();
    e.counter(
        "hookbox_messages_ingested_total",
        "Messages stored by ingest (idempotent replays not counted).",
        &[(&[], m.messages_ingested.get())],
    );
    e.histogram(
        "hookbox_ingest_duration_seconds",
        "Time to answer a successful POST /api/v1/app/{app}/msg (stored and synced).",
        &m.ingest_latency,
    );
    e.gauge(
        "hookbox_http_requests_in_flight",
        "HTTP requests being served.",
        &[(&[], m.requests_in_flight.get() as f64)],
    );
    e.counter(
        "hookbox_delivery_attempts_total",
        "Delivery attempts by outcome: success (2xx), failure (retried while the schedule \
         lasts), gone (410: the endpoint was disabled).",
        &[
            (&[("outcome", "success")], d.succeeded.get()),
            (&[("outcome", "failure")], d.failed.get()),
            (&[("outcome", "gone")], d.gone.get()),
        ],
    );
    e.counter(
        "hookbox_deliveries_skipped_total",
        "Claimed deliveries not attempted because their endpoint was disabled meanwhile \
         (deliveries to an endpoint disabled at ingest are stored as skipped, not counted).",
        &[(&[], d.skipped.get())],
    );
    e.histogram(
        "hookbox_delivery_attempt_duration_seconds",
        "Duration of each delivery attempt (connect to response, or to the error).",
        &d.attempt_latency,
    );
    e.gauge(
        "hookbox_deliveries_in_flight",
        "Delivery requests waiting for their endpoint's answer.",
        &[(&[], d.in_flight.load(Ordering::Relaxed) as f64)],
    );
    e.gauge(
        "hookbox_queue_deliveries",
        "Pending deliveries waiting in the database, not yet claimed: due (now), scheduled \
         (a later retry or deliverAt).",
        &[
            (&[("state", "due")], g.due as f64),
            (&[("state", "scheduled")], g.scheduled as f64),
        ],
    );
    e.gauge(
        "hookbox_queue_in_memory",
        "Deliveries the dispatcher holds in memory (queued or in flight).",
        &[(&[], st.dispatcher.queued() as f64)],
    );
    e.gauge(
        "hookbox_endpoints",
        "Endpoints by state.",
        &[
            (
                &[("state", "enabled")],
                (g.endpoints - g.endpoints_disabled) as f64,
            ),
            (&[("state", "disabled")], g.endpoints_disabled as f64),
        ],
    );
    e.counter(
        "hookbox_db_transactions_total",
        "Write transactions committed (or rolled back) by the writer.",
        &[(&[], w.commits.load(Ordering::Relaxed))],
    );
    e.counter(
        "hookbox_db_wal_syncs_total",
        "fsyncs of the WAL by the sync thread (durable mode).",
        &[(&[], w.syncs.load(Ordering::Relaxed))],
    );
    e.counter(
        "hookbox_db_full_errors_total",
        "Writes refused because the disk (or database.max_size_mib) was full.",
        &[(&[], w.full_errors.load(Ordering::Relaxed))],
    );
    e.gauge(
        "hookbox_db_full",
        "1 while writes are refused because the disk (or database.max_size_mib) is full.",
        &[(&[], f64::from(u8::from(w.full.load(Ordering::Relaxed))))],
    );
    e.histogram(
        "hookbox_db_writer_batch_size",
        "Callers' writes committed together in one transaction (group commit).",
        &w.batch_size,
    );
    e.histogram(
        "hookbox_db_commit_duration_seconds",
        "BEGIN to COMMIT of each write transaction, the batch's work included.",
        &w.commit_latency,
    );
    Ok(HttpResponse::Ok()
        .content_type(Exposition::CONTENT_TYPE)
        .body(e.finish()))
}
