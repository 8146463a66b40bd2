//! Instruments for `GET /metrics`, exposed with the `prometheus-client` crate.
//!
//! Counts and gauges that the HTTP layer and the dispatcher update are the crate's own
//! [`Counter`] and [`Gauge`]: a shared atomic each, updated with one relaxed `fetch_add`.
//! Histograms are this module's [`Histogram`], because the crate's takes a mutex on every
//! observation: ours does a binary search over fixed bounds and two relaxed atomic adds, and
//! at scrape time hands the crate a [`ConstHistogram`] to encode. Some owners keep plain
//! atomics that they also read themselves (the database writer's totals, the dispatcher's
//! deliveries in flight); those are exposed as [`ConstCounter`] and [`ConstGauge`] read at
//! scrape time.
//!
//! Nothing here is global. The owners (HTTP state, dispatcher, database writer) hold their
//! own instruments as plain fields, and `crate::http::metrics::scrape` builds a fresh
//! `prometheus_client::registry::Registry` on every scrape from handles to them and from the
//! figures read at that moment (counts from the database, the writer's totals, the
//! dispatcher's queue), then encodes it in the Prometheus text format, version 0.0.4
//! ([`CONTENT_TYPE`]). A registry per scrape costs a few small allocations per scrape and
//! none per event; unlike one built at startup, it needs neither a collector nor gauges set
//! just before encoding (which two concurrent scrapes could interleave) for the figures read
//! from the database. [`Labelled`] exposes separately held instruments as one labelled
//! family, so that each labelled count is updated through its own handle, with no lookup.

use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::{MetricType, TypedMetric};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

pub use prometheus_client::encoding::prometheus_text::CONTENT_TYPE;
pub use prometheus_client::metrics::counter::{ConstCounter, Counter};
pub use prometheus_client::metrics::gauge::{ConstGauge, Gauge};

/// Upper bounds, in microseconds, for latency histograms: 1 ms … 30 s.
pub const LATENCY_BOUNDS_MICROS: &[u64] = &[
    1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000,
    5_000_000, 10_000_000, 30_000_000,
];

/// Upper bounds for the writer's batch size (callers' jobs per transaction).
pub const BATCH_BOUNDS: &[u64] = &[1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2000];

/// Upper bounds, in microseconds, for fast operations (a database commit): 50 µs … 1 s.
pub const FAST_LATENCY_BOUNDS_MICROS: &[u64] = &[
    50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 1_000_000,
];

/// A histogram over integer observations with fixed upper bounds, updated without a lock.
/// Observations are stored in integer units (e.g. microseconds) and exposed divided by
/// `scale` (e.g. as seconds).
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [u64],
    /// One per bound, plus the `+Inf` bucket. Not cumulative.
    buckets: Box<[AtomicU64]>,
    sum: AtomicU64,
    scale: f64,
}

impl Histogram {
    pub fn new(bounds: &'static [u64], scale: f64) -> Histogram {
        debug_assert!(bounds.windows(2).all(|w| w[0] < w[1]), "bounds ascend");
        Histogram {
            bounds,
            buckets: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum: AtomicU64::new(0),
            scale,
        }
    }

    /// A latency histogram exposed in seconds.
    pub fn latency() -> Histogram {
        Histogram::new(LATENCY_BOUNDS_MICROS, 1e6)
    }

    pub fn observe(&self, v: u64) {
        let i = self.bounds.partition_point(|b| *b < v);
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.sum.fetch_add(v, Ordering::Relaxed);
    }

    pub fn observe_duration(&self, d: Duration) {
        self.observe(u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
    }

    /// The figures now, scaled, for the encoder.
    pub fn to_const(&self) -> ConstHistogram {
        let mut count = 0;
        let buckets = self
            .bounds
            .iter()
            .zip(self.buckets.iter())
            .map(|(bound, n)| {
                let n = n.load(Ordering::Relaxed);
                count += n;
                (*bound as f64 / self.scale, n)
            })
            .collect();
        count += self.buckets[self.bounds.len()].load(Ordering::Relaxed);
        ConstHistogram {
            buckets,
            count,
            sum: self.sum.load(Ordering::Relaxed) as f64 / self.scale,
        }
    }

    /// Cumulative counts per bound (the last is the total count) and the sum, scaled.
    pub fn snapshot(&self) -> (Vec<(f64, u64)>, u64, f64) {
        let c = self.to_const();
        let mut acc = 0;
        let cumulative = c
            .buckets
            .iter()
            .map(|(bound, n)| {
                acc += n;
                (*bound, acc)
            })
            .collect();
        (cumulative, c.count, c.sum)
    }
}

/// A [`Histogram`]'s figures at one moment, as `prometheus-client` encodes them (the `+Inf`
/// bucket is added by the encoder, holding `count`).
#[derive(Debug)]
pub struct ConstHistogram {
    /// Upper bound and the observations in that bucket alone (not cumulative).
    buckets: Vec<(f64, u64)>,
    count: u64,
    sum: f64,
}

impl TypedMetric for ConstHistogram {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for ConstHistogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        encoder.encode_histogram::<NoLabelSet>(self.sum, self.count, &self.buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

/// Instruments held apart by their owner, exposed as one family told apart by the value of
/// one label, in the order given. (`prometheus_client::metrics::family::Family` owns its
/// children, finds them by their labels under a lock and encodes them in hash order.)
#[derive(Debug)]
pub struct Labelled<M> {
    label: &'static str,
    children: Vec<(&'static str, M)>,
}

impl<M> Labelled<M> {
    pub fn new(label: &'static str, children: impl IntoIterator<Item = (&'static str, M)>) -> Self {
        Labelled {
            label,
            children: children.into_iter().collect(),
        }
    }
}

impl<M: EncodeMetric + TypedMetric> EncodeMetric for Labelled<M> {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        for (value, metric) in &self.children {
            metric.encode(encoder.encode_family(&[(self.label, *value)])?)?;
        }
        Ok(())
    }

    fn metric_type(&self) -> MetricType {
        M::TYPE
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::encoding::prometheus_text::encode;
    use prometheus_client::registry::Registry;

    fn text(r: &Registry) -> String {
        let mut out = String::new();
        encode(&mut out, r).unwrap();
        out
    }

    #[test]
    fn histogram_buckets_are_cumulative_and_inclusive_of_their_bound() {
        let h = Histogram::new(&[10, 100], 1.0);
        for v in [1, 10, 11, 100, 1000] {
            h.observe(v);
        }
        let (buckets, count, sum) = h.snapshot();
        assert_eq!(buckets, vec![(10.0, 2), (100.0, 4)]);
        assert_eq!(count, 5);
        assert!((sum - 1122.0).abs() < f64::EPSILON);
    }

    #[test]
    fn exposition_writes_help_type_and_escaped_labels() {
        let h = Histogram::new(&[1_000, 500_000], 1e6);
        h.observe_duration(Duration::from_millis(2));
        let (a, b): (Counter, Counter) = (Counter::default(), Counter::default());
        a.inc_by(3);
        b.inc_by(4);
        let mut r = Registry::default();
        // The encoder adds `_total` to a counter's name and a full stop to its help.
        r.register(
            "x",
            "Things",
            Labelled::new("outcome", [("a\"b", a), ("c", b)]),
        );
        r.register("lat_seconds", "Latency", h.to_const());
        let text = text(&r);
        assert!(
            text.contains("# HELP x_total Things.\n# TYPE x_total counter\n"),
            "{text}"
        );
        assert!(text.contains("x_total{outcome=\"a\\\"b\"} 3\nx_total{outcome=\"c\"} 4\n"));
        assert!(
            text.contains("# HELP lat_seconds Latency.\n# TYPE lat_seconds histogram\n"),
            "{text}"
        );
        assert!(
            text.contains("lat_seconds_bucket{le=\"0.001\"} 0\n"),
            "{text}"
        );
        assert!(
            text.contains("lat_seconds_bucket{le=\"0.5\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("lat_seconds_bucket{le=\"+Inf\"} 1\n"),
            "{text}"
        );
        assert!(text.contains("lat_seconds_sum 0.002\n"), "{text}");
        assert!(text.contains("lat_seconds_count 1\n"), "{text}");
        assert!(
            !text.contains("# EOF"),
            "Prometheus text, not OpenMetrics: {text}"
        );
    }

    /// The `le` values dashboards select on, in Go's shortest `%g` form as client_golang
    /// writes them (so 50 µs is `5e-05`).
    #[test]
    fn bucket_bounds_keep_their_le_values() {
        let le = |h: Histogram| {
            let mut r = Registry::default();
            r.register("h", "H", h.to_const());
            text(&r)
                .lines()
                .filter_map(|l| l.strip_prefix("h_bucket{le=\""))
                .map(|l| l.split('"').next().unwrap().to_owned())
                .collect::<Vec<_>>()
                .join(" ")
        };
        assert_eq!(
            le(Histogram::latency()),
            "0.001 0.0025 0.005 0.01 0.025 0.05 0.1 0.25 0.5 1 2.5 5 10 30 +Inf"
        );
        assert_eq!(
            le(Histogram::new(BATCH_BOUNDS, 1.0)),
            "1 2 5 10 25 50 100 250 500 1000 2000 +Inf"
        );
        assert_eq!(
            le(Histogram::new(FAST_LATENCY_BOUNDS_MICROS, 1e6)),
            "5e-05 0.0001 0.00025 0.0005 0.001 0.0025 0.005 0.01 0.025 0.05 0.1 0.25 1 +Inf"
        );
    }
}
