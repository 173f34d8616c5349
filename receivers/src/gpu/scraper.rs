//! Running collections off the async runtime, and the receiver that stands in when there is no
//! GPU to read.

use std::sync::{Arc, Mutex, TryLockError};

use async_trait::async_trait;
use nodetel_core::Batch;
use nodetel_core::component::{BoxError, Receiver, ReceiverContext, Scraper};

use super::collector::{GpuCollector, GpuReceiverError};

/// The [`Scraper`] of the `gpu` receiver: runs [`GpuCollector::collect`] on a blocking thread,
/// since an NVML call to a failing GPU can block for seconds.
#[derive(Debug, Clone)]
pub struct GpuScraper {
    inner: Arc<Mutex<GpuCollector>>,
}

impl GpuScraper {
    /// Wraps a collector.
    pub fn new(collector: GpuCollector) -> GpuScraper {
        GpuScraper {
            inner: Arc::new(Mutex::new(collector)),
        }
    }
}

#[async_trait]
impl Scraper for GpuScraper {
    async fn scrape(&mut self, timestamp_ms: i64, out: &mut Batch) -> Result<(), BoxError> {
        let inner = self.inner.clone();
        // A round that timed out keeps the lock until NVML returns; later rounds are skipped
        // instead of piling up threads.
        let mut batch = tokio::task::spawn_blocking(move || {
            let mut collector = match inner.try_lock() {
                Ok(guard) => guard,
                Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
                Err(TryLockError::WouldBlock) => return Err(GpuReceiverError::Busy),
            };
            let mut batch = Batch::new();
            collector.collect(timestamp_ms, &mut batch);
            Ok(batch)
        })
        .await
        .map_err(|e| GpuReceiverError::Task(e.to_string()))??;
        out.append(&mut batch);
        Ok(())
    }
}

/// The `gpu` receiver on a node without a usable GPU: reports itself down, emits nothing, and
/// waits for shutdown.
#[derive(Debug, Clone, Copy, Default)]
pub struct DisabledReceiver;

#[async_trait]
impl Receiver for DisabledReceiver {
    async fn run(&mut self, cx: ReceiverContext) -> Result<(), BoxError> {
        // The runtime marks a receiver up when it starts it; this one is not.
        cx.output.telemetry().set_up(false);
        cx.shutdown.cancelled().await;
        Ok(())
    }

    /// Collects nothing: there is nothing to read.
    async fn collect_once(&mut self, _out: &mut Batch) -> Result<bool, BoxError> {
        Ok(true)
    }
}
