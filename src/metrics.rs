//! Metrics without a registry crate: lock-free counters and fixed-bucket histograms that the
//! hot paths update with a few relaxed atomic adds, and a writer for the Prometheus text
//! exposition format (version 0.0.4) used by `GET /metrics`.
//!
//! Nothing here is global: the owners (HTTP state, dispatcher, database writer) hold their
//! own instruments and the `/metrics` handler reads them all at scrape time.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

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

/// A monotonically increasing count.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn inc(&self) {
        self.add(1);
    }

    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A value that goes up and down (requests in flight).
#[derive(Debug, Default)]
pub struct Gauge(AtomicI64);

impl Gauge {
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    pub fn dec(&self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }

    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A histogram over integer observations with fixed upper bounds. Observations are stored in
/// integer units (e.g. microseconds) and exposed divided by `scale` (e.g. as seconds).
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [u64],
    /// One per bound, plus the `+Inf` bucket. Not cumulative: summed at scrape time.
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

    /// Cumulative counts per bound (the last is the total count) and the sum, scaled.
    pub fn snapshot(&self) -> (Vec<(f64, u64)>, u64, f64) {
        let mut acc = 0;
        let mut cumulative = Vec::with_capacity(self.bounds.len());
        for (i, b) in self.buckets.iter().enumerate() {
            acc += b.load(Ordering::Relaxed);
            if let Some(bound) = self.bounds.get(i) {
                cumulative.push((*bound as f64 / self.scale, acc));
            }
        }
        (
            cumulative,
            acc,
            self.sum.load(Ordering::Relaxed) as f64 / self.scale,
        )
    }
}

/// Writes metric families in the Prometheus text format.
#[derive(Default)]
pub struct Exposition {
    out: String,
}

impl Exposition {
    pub const CONTENT_TYPE: &'static str = "text/plain; version=0.0.4; charset=utf-8";

    fn header(&mut self, name: &str, kind: &str, help: &str) {
        let help = help.replace('\\', "\\\\").replace('\n', "\\n");
        let _ = writeln!(self.out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let v = v
                    .replace('\\', "\\\\")
                    .replace('"', "\\\"")
                    .replace('\n', "\\n");
                let _ = write!(self.out, "{k}=\"{v}\"");
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {}", format_value(value));
    }

    /// A counter family; `name` should end in `_total`.
    pub fn counter(&mut self, name: &str, help: &str, samples: &[(&[(&str, &str)], u64)]) {
        self.header(name, "counter", help);
        for (labels, v) in samples {
            self.sample(name, labels, *v as f64);
        }
    }

    pub fn gauge(&mut self, name: &str, help: &str, samples: &[(&[(&str, &str)], f64)]) {
        self.header(name, "gauge", help);
        for (labels, v) in samples {
            self.sample(name, labels, *v);
        }
    }

    pub fn histogram(&mut self, name: &str, help: &str, h: &Histogram) {
        self.header(name, "histogram", help);
        let (buckets, count, sum) = h.snapshot();
        let bucket = format!("{name}_bucket");
        for (bound, n) in buckets {
            self.sample(&bucket, &[("le", &format_value(bound))], n as f64);
        }
        self.sample(&bucket, &[("le", "+Inf")], count as f64);
        self.sample(&format!("{name}_sum"), &[], sum);
        self.sample(&format!("{name}_count"), &[], count as f64);
    }

    pub fn finish(self) -> String {
        self.out
    }
}

fn format_value(v: f64) -> String {
    if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.to_owned()
    } else if v.is_nan() {
        "NaN".to_owned()
    } else {
        // `{}` prints the shortest representation that round-trips (`0.001`, `12`).
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let mut e = Exposition::default();
        e.counter(
            "x_total",
            "Things.",
            &[(&[("outcome", "a\"b")], 3), (&[], 4)],
        );
        e.histogram("lat_seconds", "Latency.", &h);
        let text = e.finish();
        assert!(text.contains("# HELP x_total Things.\n# TYPE x_total counter\n"));
        assert!(text.contains("x_total{outcome=\"a\\\"b\"} 3\n"));
        assert!(text.contains("x_total 4\n"));
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
    }
}
