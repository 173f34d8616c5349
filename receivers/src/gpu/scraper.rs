//! Running collections off the async runtime, and the receiver that stands in when there is no
//! GPU to read.

use async_trait::async_trait;
use nodetel_core::Batch;
use nodetel_core::blocking::BlockingCollector;
use nodetel_core::component::{BoxError, Receiver, ReceiverContext};

use super::collector::GpuCollector;

impl BlockingCollector for GpuCollector {
    fn collect(&mut self, timestamp_ms: i64, out: &mut Batch) {
        GpuCollector::collect(self, timestamp_ms, out);
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
