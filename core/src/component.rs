//! Component identity and the traits every receiver, processor and exporter implements.
//!
//! A receiver produces batches into an [`Output`]; it never knows which pipelines or exporters
//! are behind it. Processors are synchronous and run fused in one pipeline task. Exporters get
//! shared batches from their own bounded queue; retries of retryable errors and self-metrics are
//! done by the runtime, so an exporter only encodes and sends.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

use crate::batch::Batch;
use crate::telemetry::ComponentTelemetry;

/// A boxed error for component results.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The role of a component in the pipeline graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ComponentKind {
    /// Produces data.
    Receiver,
    /// Transforms data in a pipeline.
    Processor,
    /// Sends data out.
    Exporter,
    /// Supports other components (authentication, health).
    Extension,
}

impl ComponentKind {
    /// The lower-case name, as used in config sections (singular).
    pub fn as_str(self) -> &'static str {
        match self {
            ComponentKind::Receiver => "receiver",
            ComponentKind::Processor => "processor",
            ComponentKind::Exporter => "exporter",
            ComponentKind::Extension => "extension",
        }
    }
}

impl fmt::Display for ComponentKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A component id as written in the config: `type` or `type/name`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ComponentId(Arc<str>);

/// Why a component id is malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid component id {id:?}: {reason}")]
pub struct InvalidComponentId {
    id: String,
    reason: &'static str,
}

impl ComponentId {
    /// Parses `type` or `type/name`. The type is `[a-z0-9_]+`; the name is any non-empty text
    /// without whitespace.
    pub fn parse(id: &str) -> Result<ComponentId, InvalidComponentId> {
        let err = |reason| InvalidComponentId {
            id: id.to_owned(),
            reason,
        };
        let (ty, name) = match id.split_once('/') {
            Some((t, n)) => (t, Some(n)),
            None => (id, None),
        };
        if ty.is_empty() {
            return Err(err("the type before '/' is empty"));
        }
        if !ty
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            return Err(err("the type may only hold a-z, 0-9 and _"));
        }
        if let Some(n) = name {
            if n.is_empty() {
                return Err(err("the name after '/' is empty"));
            }
            if n.contains(char::is_whitespace) || n.contains('/') {
                return Err(err("the name may not hold whitespace or a second '/'"));
            }
        }
        Ok(ComponentId(id.into()))
    }

    /// The component type (the part before `/`).
    pub fn type_name(&self) -> &str {
        self.0.split_once('/').map_or(&self.0, |(t, _)| t)
    }

    /// The instance name (the part after `/`), if any.
    pub fn name(&self) -> Option<&str> {
        self.0.split_once('/').map(|(_, n)| n)
    }

    /// The whole id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ComponentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ComponentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", &*self.0)
    }
}

/// The downstream pipelines were shut down; the batch was not delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the pipeline is shut down")]
pub struct OutputClosed;

/// Where a receiver sends its batches: the inputs of every pipeline it feeds.
///
/// Sending waits while a pipeline's queue is full: that is the back-pressure that keeps memory
/// bounded when an exporter is slow.
#[derive(Clone)]
pub struct Output {
    inputs: Arc<[crate::runtime::PipelineInput]>,
    telemetry: Arc<ComponentTelemetry>,
}

impl fmt::Debug for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Output").field("pipelines", &self.inputs.len()).finish()
    }
}

impl Output {
    pub(crate) fn new(inputs: Vec<crate::runtime::PipelineInput>, telemetry: Arc<ComponentTelemetry>) -> Output {
        Output {
            inputs: inputs.into(),
            telemetry,
        }
    }

    /// Sends a batch to every pipeline (the last one gets the original, the others a copy).
    pub async fn send(&self, batch: Batch) -> Result<(), OutputClosed> {
        let n = batch.len() as u64;
        self.telemetry.add_received(n);
        let Some((last, rest)) = self.inputs.split_last() else {
            self.telemetry.add_discarded("no_pipeline", n);
            return Ok(());
        };
        let mut closed = false;
        for input in rest {
            closed |= input.send(batch.clone()).await.is_err();
        }
        closed |= last.send(batch).await.is_err();
        if closed {
            self.telemetry.add_discarded("shutdown", n);
            return Err(OutputClosed);
        }
        self.telemetry.add_sent(n);
        Ok(())
    }

    /// This component's self-metrics.
    pub fn telemetry(&self) -> &Arc<ComponentTelemetry> {
        &self.telemetry
    }
}

/// What a running receiver gets from the runtime.
#[derive(Debug, Clone)]
pub struct ReceiverContext {
    /// The receiver's id.
    pub id: crate::component::ComponentId,
    /// Where to send batches.
    pub output: Output,
    /// Cancelled when the receiver must stop.
    pub shutdown: CancellationToken,
}

/// A source of data. `run` returns when `shutdown` fires; an error makes the runtime log it,
/// count it and restart the receiver with backoff.
#[async_trait]
pub trait Receiver: Send {
    /// Runs until `cx.shutdown` is cancelled.
    async fn run(&mut self, cx: ReceiverContext) -> Result<(), BoxError>;

    /// Collects once into `out`, for `nodetel once`. Receivers that only listen (push) return
    /// `Ok(false)`: they have nothing to collect on demand.
    async fn collect_once(&mut self, out: &mut Batch) -> Result<bool, BoxError> {
        let _ = out;
        Ok(false)
    }
}

/// A receiver that collects on a timer: the runtime-provided [`ScrapeReceiver`] owns the
/// interval, the timeout, error counting and sending.
#[async_trait]
pub trait Scraper: Send {
    /// Collects one round into `out`, stamping samples with `timestamp_ms`.
    async fn scrape(&mut self, timestamp_ms: i64, out: &mut Batch) -> Result<(), BoxError>;
}

/// Runs a [`Scraper`] every `interval`, each round bounded by `timeout`.
#[derive(Debug)]
pub struct ScrapeReceiver<S> {
    scraper: S,
    interval: Duration,
    timeout: Duration,
}

impl<S: Scraper> ScrapeReceiver<S> {
    /// Wraps a scraper. `timeout` is clamped to `interval`.
    pub fn new(scraper: S, interval: Duration, timeout: Duration) -> ScrapeReceiver<S> {
        ScrapeReceiver {
            scraper,
            interval,
            timeout: timeout.min(interval),
        }
    }
}

#[async_trait]
impl<S: Scraper> Receiver for ScrapeReceiver<S> {
    async fn run(&mut self, cx: ReceiverContext) -> Result<(), BoxError> {
        let mut ticker = tokio::time::interval(self.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut failing = false;
        loop {
            tokio::select! {
                _ = cx.shutdown.cancelled() => return Ok(()),
                _ = ticker.tick() => {}
            }
            let mut batch = Batch::new();
            let ts = crate::sample::now_ms();
            let round = tokio::time::timeout(self.timeout, self.scraper.scrape(ts, &mut batch)).await;
            let failure = match round {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(e.to_string()),
                Err(_) => Some(format!("timed out after {:?}", self.timeout)),
            };
            match failure {
                None => {
                    if failing {
                        tracing::info!("Scrape recovered.");
                        failing = false;
                    }
                    let sent = tokio::select! {
                        _ = cx.shutdown.cancelled() => return Ok(()),
                        r = cx.output.send(batch) => r,
                    };
                    if sent.is_err() {
                        return Ok(());
                    }
                }
                Some(error) => {
                    cx.output.telemetry().add_error();
                    // Log the first failure of a streak only: a broken source must not flood logs.
                    if !failing {
                        tracing::warn!(%error, "Scrape failed; retrying every interval.");
                        failing = true;
                    }
                }
            }
        }
    }

    async fn collect_once(&mut self, out: &mut Batch) -> Result<bool, BoxError> {
        let ts = crate::sample::now_ms();
        tokio::time::timeout(self.timeout, self.scraper.scrape(ts, out))
            .await
            .map_err(|_| format!("timed out after {:?}", self.timeout))??;
        Ok(true)
    }
}

/// Context for a processor's background work.
#[derive(Debug, Clone)]
pub struct ProcessorContext {
    /// The processor's id.
    pub id: ComponentId,
    /// Cancelled at shutdown; background tasks end with it.
    pub shutdown: CancellationToken,
}

/// Transforms batches in a pipeline. `process` is synchronous and must not block: anything slow
/// (Slurm calls, /proc walks) belongs in a background task started by `start`.
#[async_trait]
pub trait Processor: Send {
    /// Called once before the first batch (for example to take a first snapshot).
    async fn start(&mut self, cx: ProcessorContext) -> Result<(), BoxError> {
        let _ = cx;
        Ok(())
    }

    /// Transforms a batch in place.
    fn process(&mut self, batch: &mut Batch);
}

/// How an export failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// Worth trying again (5xx, 429, network); `retry_after` is the server's hint.
    #[error("retryable: {source}")]
    Retryable {
        /// The server's `Retry-After`, if any.
        retry_after: Option<Duration>,
        /// What went wrong.
        source: BoxError,
    },
    /// Will never succeed (4xx other than 429, encode errors): the batch is dropped and counted.
    #[error("permanent: {0}")]
    Permanent(BoxError),
}

/// Sends batches somewhere. Batches arrive in order from the exporter's own bounded queue.
#[async_trait]
pub trait Exporter: Send {
    /// Exports one batch.
    async fn export(&mut self, batch: Arc<Batch>) -> Result<(), ExportError>;

    /// Flushes and releases resources at shutdown.
    async fn shutdown(&mut self) -> Result<(), BoxError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn component_ids_parse() {
        let id = ComponentId::parse("prometheus/dcgm").unwrap();
        assert_eq!(id.type_name(), "prometheus");
        assert_eq!(id.name(), Some("dcgm"));
        let id = ComponentId::parse("node").unwrap();
        assert_eq!((id.type_name(), id.name()), ("node", None));
        for bad in ["", "/x", "x/", "Node", "a b", "x/a b", "x/y/z"] {
            assert!(ComponentId::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }
}
