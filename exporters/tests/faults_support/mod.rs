//! Support for the fault-injection suite: a scriptable remote write sink (status codes,
//! `Retry-After`, slow answers after the data was stored, connection resets, 413 above a size,
//! strict SigV4 with a server clock, per-key expiry and region checks), a ledger that accounts
//! for every produced sample, log capture, and TLS helpers.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

pub mod ledger;
pub mod logs;
pub mod sigv4;
pub mod sink;
pub mod tls;

pub use ledger::*;
pub use logs::*;
pub use sink::*;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use nodetel_core::component::ComponentId;
use nodetel_core::config::BuildContext;
use nodetel_core::telemetry::Registry;
use nodetel_exporters::remote_write::{RemoteWriteConfig, RemoteWriteExporter, RemoteWriteMetrics, Signer};

/// A build context with a fresh registry.
pub fn context(name: &str) -> BuildContext {
    BuildContext {
        id: ComponentId::parse(&format!("prometheusremotewrite/{name}")).unwrap(),
        hostname: "node-1".into(),
        registry: Arc::new(Registry::new()),
        extensions: Arc::new(BTreeMap::new()),
    }
}

/// A config with short intervals, so that minutes of faults fit in seconds.
pub fn config(url: &str) -> RemoteWriteConfig {
    let mut c = RemoteWriteConfig::for_endpoint(url);
    c.timeout = Duration::from_millis(500);
    c.retry_on_failure.initial_interval = Duration::from_millis(10);
    c.retry_on_failure.max_interval = Duration::from_millis(100);
    c.batch_send_deadline = Duration::from_millis(20);
    c.max_samples_per_send = 50;
    c.shutdown_flush_timeout = Duration::from_secs(20);
    c
}

/// An exporter with `signer` (or none: unsigned requests).
pub fn exporter(cfg: &RemoteWriteConfig, name: &str, signer: Option<Arc<Signer>>) -> RemoteWriteExporter {
    RemoteWriteExporter::new(cfg, &context(name), signer).unwrap()
}

/// Highest values seen by [`Watch`] while it ran.
#[derive(Debug, Default, Clone, Copy)]
pub struct Peaks {
    /// `nodetel_exporter_pending_samples`.
    pub pending: u64,
    /// `nodetel_exporter_disk_queue_bytes`.
    pub disk_bytes: u64,
    /// Observations taken.
    pub samples: u64,
}

/// Samples the exporter's memory and disk gauges every few milliseconds.
pub struct Watch {
    stop: Arc<std::sync::atomic::AtomicBool>,
    task: tokio::task::JoinHandle<Peaks>,
}

impl Watch {
    pub fn start(m: Arc<RemoteWriteMetrics>) -> Watch {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let s = stop.clone();
        let task = tokio::spawn(async move {
            let mut p = Peaks::default();
            while !s.load(Ordering::Relaxed) {
                p.pending = p.pending.max(m.pending());
                p.disk_bytes = p.disk_bytes.max(m.disk_bytes.load(Ordering::Relaxed));
                p.samples += 1;
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            p
        });
        Watch { stop, task }
    }

    pub async fn finish(self) -> Peaks {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.unwrap()
    }
}

/// Waits until `cond` holds, up to `limit`.
pub async fn wait_for(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    cond()
}

/// Every drop reason's count, for messages.
pub fn drops(m: &RemoteWriteMetrics) -> String {
    use nodetel_exporters::remote_write::DropReason::*;
    format!(
        "rejected={} retries_exhausted={} queue_full={} shutdown={} encode={} disk_error={} too_large={}",
        m.dropped(Rejected),
        m.dropped(RetriesExhausted),
        m.dropped(QueueFull),
        m.dropped(Shutdown),
        m.dropped(Encode),
        m.dropped(DiskError),
        m.dropped(TooLarge)
    )
}

/// Sum of all drop reasons.
pub fn dropped_total(m: &RemoteWriteMetrics) -> u64 {
    use nodetel_exporters::remote_write::DropReason::*;
    [
        Rejected,
        RetriesExhausted,
        QueueFull,
        Shutdown,
        Encode,
        DiskError,
        TooLarge,
    ]
    .iter()
    .map(|r| m.dropped(*r))
    .sum()
}
