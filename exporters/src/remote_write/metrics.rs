//! Self-metrics of one remote write exporter, rendered on the self endpoint.
//!
//! Plain relaxed atomics: a counter bump on the send path costs one add.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nodetel_core::component::ComponentId;
use nodetel_core::telemetry::{MetricSource, Registry};

/// Why samples were dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// The endpoint answered with a 4xx other than 429.
    Rejected,
    /// Retries ran out (`max_elapsed_time`, or retries disabled).
    RetriesExhausted,
    /// The disk queue was full and evicted its oldest segment.
    QueueFull,
    /// Shutdown came before the data could be sent or persisted.
    Shutdown,
    /// The request could not be encoded or signed.
    Encode,
    /// The disk queue could not be written.
    DiskError,
    /// The endpoint answered 413 for a request of a single series, which cannot be split.
    TooLarge,
}

impl DropReason {
    const ALL: [DropReason; 7] = [
        DropReason::Rejected,
        DropReason::RetriesExhausted,
        DropReason::QueueFull,
        DropReason::Shutdown,
        DropReason::Encode,
        DropReason::DiskError,
        DropReason::TooLarge,
    ];

    fn as_str(self) -> &'static str {
        match self {
            DropReason::Rejected => "rejected",
            DropReason::RetriesExhausted => "retries_exhausted",
            DropReason::QueueFull => "queue_full",
            DropReason::Shutdown => "shutdown",
            DropReason::Encode => "encode",
            DropReason::DiskError => "disk_error",
            DropReason::TooLarge => "too_large",
        }
    }
}

/// Upper bounds of the send latency histogram, in seconds.
const LATENCY_BUCKETS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

/// Counters of one exporter.
#[derive(Debug)]
pub struct RemoteWriteMetrics {
    exporter: String,
    /// Samples accepted by `export`.
    pub samples_in: AtomicU64,
    /// Samples the endpoint accepted.
    pub samples_sent: AtomicU64,
    /// Compressed bytes the endpoint accepted.
    pub bytes_sent: AtomicU64,
    /// Requests the endpoint accepted.
    pub requests_sent: AtomicU64,
    /// Failed send attempts (any cause).
    pub failed_requests: AtomicU64,
    /// Send attempts that were retries.
    pub retried_requests: AtomicU64,
    /// Samples written to the disk queue.
    pub samples_spilled: AtomicU64,
    /// Current shard count.
    pub shards: AtomicU64,
    /// Bytes held by the disk queue.
    pub disk_bytes: AtomicU64,
    /// Records held by the disk queue.
    pub disk_records: AtomicU64,
    /// Samples accepted but not yet sent, dropped or persisted.
    pub pending_samples: AtomicU64,
    dropped: [AtomicU64; 7],
    latency_buckets: [AtomicU64; LATENCY_BUCKETS.len()],
    latency_count: AtomicU64,
    latency_sum_us: AtomicU64,
}

impl RemoteWriteMetrics {
    /// Zeroed counters for the exporter `id`.
    pub fn new(id: &ComponentId) -> RemoteWriteMetrics {
        RemoteWriteMetrics {
            exporter: id.to_string().replace('\\', "\\\\").replace('"', "\\\""),
            samples_in: AtomicU64::new(0),
            samples_sent: AtomicU64::new(0),
            bytes_sent: AtomicU64::new(0),
            requests_sent: AtomicU64::new(0),
            failed_requests: AtomicU64::new(0),
            retried_requests: AtomicU64::new(0),
            samples_spilled: AtomicU64::new(0),
            shards: AtomicU64::new(0),
            disk_bytes: AtomicU64::new(0),
            disk_records: AtomicU64::new(0),
            pending_samples: AtomicU64::new(0),
            dropped: Default::default(),
            latency_buckets: Default::default(),
            latency_count: AtomicU64::new(0),
            latency_sum_us: AtomicU64::new(0),
        }
    }

    /// The metrics of `id` in `registry`, registered once and shared by every rebuild of the
    /// exporter (the runtime rebuilds a failed exporter from its factory).
    pub fn registered(registry: &Arc<Registry>, id: &ComponentId) -> Arc<RemoteWriteMetrics> {
        type Known = Vec<(std::sync::Weak<Registry>, ComponentId, Arc<RemoteWriteMetrics>)>;
        static KNOWN: Mutex<Known> = Mutex::new(Vec::new());
        let mut known = KNOWN.lock().unwrap_or_else(|e| e.into_inner());
        known.retain(|(r, _, _)| r.strong_count() > 0);
        if let Some((_, _, m)) = known
            .iter()
            .find(|(r, i, _)| i == id && r.upgrade().is_some_and(|r| Arc::ptr_eq(&r, registry)))
        {
            return m.clone();
        }
        let m = Arc::new(RemoteWriteMetrics::new(id));
        registry.add_source(m.clone());
        known.push((Arc::downgrade(registry), id.clone(), m.clone()));
        m
    }

    /// Counts dropped samples.
    pub fn add_dropped(&self, reason: DropReason, samples: u64) {
        self.dropped[reason as usize].fetch_add(samples, Ordering::Relaxed);
    }

    /// Samples dropped for `reason` so far.
    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.dropped[reason as usize].load(Ordering::Relaxed)
    }

    /// Samples accepted and not yet settled.
    pub fn pending(&self) -> u64 {
        self.pending_samples.load(Ordering::Relaxed)
    }

    /// Records one successful request.
    pub fn add_sent(&self, samples: u64, bytes: u64) {
        self.samples_sent.fetch_add(samples, Ordering::Relaxed);
        self.bytes_sent.fetch_add(bytes, Ordering::Relaxed);
        self.requests_sent.fetch_add(1, Ordering::Relaxed);
    }

    /// Samples that left memory (sent, dropped or written to disk).
    pub fn settle(&self, samples: u64) {
        let _ = self
            .pending_samples
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |p| {
                Some(p.saturating_sub(samples))
            });
    }

    /// Microseconds spent in send attempts, and how many, so far.
    pub fn latency_totals(&self) -> (u64, u64) {
        (
            self.latency_sum_us.load(Ordering::Relaxed),
            self.latency_count.load(Ordering::Relaxed),
        )
    }

    /// Records one send attempt's latency.
    pub fn observe_latency(&self, latency: Duration) {
        let secs = latency.as_secs_f64();
        for (i, b) in LATENCY_BUCKETS.iter().enumerate() {
            if secs <= *b {
                self.latency_buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.latency_count.fetch_add(1, Ordering::Relaxed);
        self.latency_sum_us
            .fetch_add(latency.as_micros() as u64, Ordering::Relaxed);
    }

    /// Mean send latency so far.
    pub fn mean_latency(&self) -> Option<Duration> {
        let n = self.latency_count.load(Ordering::Relaxed);
        (n > 0).then(|| Duration::from_micros(self.latency_sum_us.load(Ordering::Relaxed) / n))
    }
}

impl MetricSource for RemoteWriteMetrics {
    fn render(&self, out: &mut String) {
        let e = &self.exporter;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let simple: [(&str, &str, &str, u64); 11] = [
            (
                "nodetel_exporter_received_samples_total",
                "counter",
                "Samples handed to the exporter.",
                get(&self.samples_in),
            ),
            (
                "nodetel_exporter_sent_samples_total",
                "counter",
                "Samples the endpoint accepted.",
                get(&self.samples_sent),
            ),
            (
                "nodetel_exporter_sent_bytes_total",
                "counter",
                "Compressed request bytes the endpoint accepted.",
                get(&self.bytes_sent),
            ),
            (
                "nodetel_exporter_sent_requests_total",
                "counter",
                "Requests the endpoint accepted.",
                get(&self.requests_sent),
            ),
            (
                "nodetel_exporter_failed_requests_total",
                "counter",
                "Send attempts that failed.",
                get(&self.failed_requests),
            ),
            (
                "nodetel_exporter_retried_requests_total",
                "counter",
                "Send attempts that were retries.",
                get(&self.retried_requests),
            ),
            (
                "nodetel_exporter_persisted_samples_total",
                "counter",
                "Samples written to the disk queue.",
                get(&self.samples_spilled),
            ),
            (
                "nodetel_exporter_pending_samples",
                "gauge",
                "Samples in memory waiting to be sent.",
                get(&self.pending_samples),
            ),
            (
                "nodetel_exporter_shards",
                "gauge",
                "Shards sending in parallel.",
                get(&self.shards),
            ),
            (
                "nodetel_exporter_disk_queue_bytes",
                "gauge",
                "Bytes held by the disk queue.",
                get(&self.disk_bytes),
            ),
            (
                "nodetel_exporter_disk_queue_requests",
                "gauge",
                "Requests held by the disk queue.",
                get(&self.disk_records),
            ),
        ];
        for (name, kind, help, v) in simple {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name}{{exporter=\"{e}\"}} {v}"
            );
        }
        let name = "nodetel_exporter_dropped_samples_total";
        let _ = writeln!(out, "# HELP {name} Samples dropped, by reason.\n# TYPE {name} counter");
        for r in DropReason::ALL {
            let _ = writeln!(
                out,
                "{name}{{exporter=\"{e}\",reason=\"{}\"}} {}",
                r.as_str(),
                self.dropped(r)
            );
        }
        let name = "nodetel_exporter_send_duration_seconds";
        let _ = writeln!(out, "# HELP {name} Duration of send attempts.\n# TYPE {name} histogram");
        for (i, b) in LATENCY_BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "{name}_bucket{{exporter=\"{e}\",le=\"{b}\"}} {}",
                get(&self.latency_buckets[i])
            );
        }
        let count = get(&self.latency_count);
        let _ = writeln!(out, "{name}_bucket{{exporter=\"{e}\",le=\"+Inf\"}} {count}");
        let _ = writeln!(
            out,
            "{name}_sum{{exporter=\"{e}\"}} {}",
            get(&self.latency_sum_us) as f64 / 1e6
        );
        let _ = writeln!(out, "{name}_count{{exporter=\"{e}\"}} {count}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_drops_and_histogram() {
        let registry = Arc::new(Registry::new());
        let id = ComponentId::parse("prometheusremotewrite/amp").unwrap();
        let m = RemoteWriteMetrics::registered(&registry, &id);
        assert!(Arc::ptr_eq(&m, &RemoteWriteMetrics::registered(&registry, &id)));
        m.pending_samples.fetch_add(10, Ordering::Relaxed);
        m.add_sent(7, 100);
        m.observe_latency(Duration::from_millis(30));
        m.settle(7);
        m.add_dropped(DropReason::Rejected, 3);
        m.settle(3);
        assert_eq!(m.pending(), 0);
        let text = registry.render();
        let l = r#"exporter="prometheusremotewrite/amp""#;
        assert!(
            text.contains(&format!("nodetel_exporter_sent_samples_total{{{l}}} 7\n")),
            "{text}"
        );
        assert!(text.contains(&format!(
            "nodetel_exporter_dropped_samples_total{{{l},reason=\"rejected\"}} 3\n"
        )));
        assert!(text.contains(&format!(
            "nodetel_exporter_send_duration_seconds_bucket{{{l},le=\"0.025\"}} 0\n"
        )));
        assert!(text.contains(&format!(
            "nodetel_exporter_send_duration_seconds_bucket{{{l},le=\"0.05\"}} 1\n"
        )));
        assert_eq!(
            text.matches("# TYPE nodetel_exporter_shards gauge").count(),
            1,
            "registered once"
        );
    }
}
