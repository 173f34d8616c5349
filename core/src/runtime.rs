//! The pipeline runtime: receivers → bounded queue → processor chain → bounded queue per
//! exporter, with supervision, back-pressure and a shutdown that drains before it stops.
//!
//! Every component is built once before anything starts (a broken config fails at start-up, not
//! later). Afterwards a failing receiver or exporter, or a panicking processor, is logged,
//! counted and rebuilt from its factory with exponential backoff; the process stays up.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::batch::Batch;
use crate::component::{
    BoxError, ComponentId, ComponentKind, ExportError, Exporter, Output, Processor, ProcessorContext, Receiver,
    ReceiverContext,
};
use crate::telemetry::{ComponentTelemetry, QueueTelemetry, Registry};

/// Builds a fresh instance of a component (at start-up and after a failure).
pub type Factory<T> = Arc<dyn Fn() -> Result<T, BoxError> + Send + Sync>;

/// Exponential backoff bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// First delay.
    pub initial: Duration,
    /// Largest delay.
    pub max: Duration,
}

impl Backoff {
    fn next(&self, current: Duration) -> Duration {
        (current * 2).min(self.max)
    }
}

/// Runtime knobs, set by the service config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuntimeSettings {
    /// Capacity of each pipeline's and each exporter's queue, in batches.
    pub queue_capacity: usize,
    /// Delay before rebuilding a failed component.
    pub restart: Backoff,
    /// Delay between retries of a retryable export error.
    pub retry: Backoff,
}

impl Default for RuntimeSettings {
    fn default() -> Self {
        RuntimeSettings {
            queue_capacity: 64,
            restart: Backoff {
                initial: Duration::from_secs(1),
                max: Duration::from_secs(60),
            },
            retry: Backoff {
                initial: Duration::from_millis(500),
                max: Duration::from_secs(30),
            },
        }
    }
}

/// Every component built once: receivers, each pipeline's processors, exporters.
type Built = (
    Vec<Box<dyn Receiver>>,
    Vec<Vec<Box<dyn Processor>>>,
    Vec<Box<dyn Exporter>>,
);

/// A receiver in the graph.
pub struct ReceiverSpec {
    /// Its id.
    pub id: ComponentId,
    /// How to build it.
    pub factory: Factory<Box<dyn Receiver>>,
    /// Indices into [`Topology::pipelines`] it feeds.
    pub pipelines: Vec<usize>,
}

/// A processor in a pipeline (each pipeline has its own instance).
pub struct ProcessorSpec {
    /// Its id.
    pub id: ComponentId,
    /// How to build it.
    pub factory: Factory<Box<dyn Processor>>,
}

/// A pipeline: a processor chain and the exporters it fans out to.
pub struct PipelineSpec {
    /// Its id, as in the config (`metrics`, `metrics/gpu`).
    pub name: String,
    /// Processors in order.
    pub processors: Vec<ProcessorSpec>,
    /// Indices into [`Topology::exporters`].
    pub exporters: Vec<usize>,
}

/// An exporter in the graph (one instance shared by all pipelines that name it).
pub struct ExporterSpec {
    /// Its id.
    pub id: ComponentId,
    /// How to build it.
    pub factory: Factory<Box<dyn Exporter>>,
}

/// The whole graph, ready to build and run.
pub struct Topology {
    /// Receivers.
    pub receivers: Vec<ReceiverSpec>,
    /// Pipelines.
    pub pipelines: Vec<PipelineSpec>,
    /// Exporters.
    pub exporters: Vec<ExporterSpec>,
    /// Runtime knobs.
    pub settings: RuntimeSettings,
}

impl std::fmt::Debug for Topology {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Topology")
            .field("receivers", &self.receivers.iter().map(|r| &r.id).collect::<Vec<_>>())
            .field("pipelines", &self.pipelines.iter().map(|p| &p.name).collect::<Vec<_>>())
            .field("exporters", &self.exporters.iter().map(|e| &e.id).collect::<Vec<_>>())
            .finish()
    }
}

/// Components that could not be built or started.
#[derive(Debug, thiserror::Error)]
#[error("{}", .0.iter().map(|(id, e)| format!("{id}: {e}")).collect::<Vec<_>>().join("; "))]
pub struct StartError(pub Vec<(String, BoxError)>);

/// The shutdown did not finish within its deadline.
#[derive(Debug, thiserror::Error)]
#[error("shutdown deadline of {deadline:?} passed with {} still running: {}", pending.len(), pending.join(", "))]
pub struct ShutdownTimedOut {
    /// The deadline that passed.
    pub deadline: Duration,
    /// Tasks that had not finished.
    pub pending: Vec<String>,
}

/// Whether the service is up, for the health endpoint.
#[derive(Debug, Default)]
pub struct Health {
    ready: AtomicBool,
}

impl Health {
    /// Whether all components were started and shutdown has not begun.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }

    /// Sets readiness.
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Relaxed);
    }
}

/// The sending side of a pipeline's queue.
#[derive(Debug)]
pub(crate) struct PipelineInput {
    tx: mpsc::Sender<Batch>,
    queue: Arc<QueueTelemetry>,
}

impl PipelineInput {
    pub(crate) async fn send(&self, batch: Batch) -> Result<(), ()> {
        self.queue.pushed();
        self.tx.send(batch).await.map_err(|_| ())
    }
}

struct ExporterInput {
    tx: mpsc::Sender<Arc<Batch>>,
    queue: Arc<QueueTelemetry>,
    telemetry: Arc<ComponentTelemetry>,
}

struct Link {
    id: ComponentId,
    factory: Factory<Box<dyn Processor>>,
    processor: Box<dyn Processor>,
    telemetry: Arc<ComponentTelemetry>,
}

/// A running topology.
#[derive(Debug)]
pub struct RunningTopology {
    stop_receivers: CancellationToken,
    stop_background: CancellationToken,
    hard_stop: CancellationToken,
    tasks: Vec<(String, JoinHandle<()>)>,
    health: Arc<Health>,
}

fn jitter(d: Duration) -> Duration {
    // ±20 % from the clock's low bits: enough to spread restarts and retries, no RNG needed.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|t| t.subsec_nanos())
        .unwrap_or(0);
    let f = 0.8 + f64::from(nanos % 1000) / 2500.0;
    d.mul_f64(f)
}

/// Sleeps for `d` unless `stop` fires first; returns false when stopped.
async fn sleep_unless(d: Duration, stop: &CancellationToken) -> bool {
    tokio::select! {
        _ = stop.cancelled() => false,
        _ = tokio::time::sleep(d) => true,
    }
}

impl Topology {
    fn build_all(&self) -> Result<Built, StartError> {
        let mut errors = Vec::new();
        let mut build = |id: &ComponentId, kind: ComponentKind, r: Result<(), BoxError>| {
            if let Err(e) = r {
                errors.push((format!("{kind} {id}"), e));
            }
        };
        let mut receivers = Vec::new();
        for spec in &self.receivers {
            match (spec.factory)() {
                Ok(r) => receivers.push(r),
                Err(e) => build(&spec.id, ComponentKind::Receiver, Err(e)),
            }
        }
        let mut chains = Vec::new();
        for p in &self.pipelines {
            let mut chain = Vec::new();
            for spec in &p.processors {
                match (spec.factory)() {
                    Ok(x) => chain.push(x),
                    Err(e) => build(&spec.id, ComponentKind::Processor, Err(e)),
                }
            }
            chains.push(chain);
        }
        let mut exporters = Vec::new();
        for spec in &self.exporters {
            match (spec.factory)() {
                Ok(x) => exporters.push(x),
                Err(e) => build(&spec.id, ComponentKind::Exporter, Err(e)),
            }
        }
        if errors.is_empty() {
            Ok((receivers, chains, exporters))
        } else {
            Err(StartError(errors))
        }
    }

    /// Builds every component, starts the processors, and spawns all tasks.
    pub async fn start(self, registry: &Registry) -> Result<RunningTopology, StartError> {
        let (receivers, chains, exporters) = self.build_all()?;
        let settings = self.settings;
        let stop_receivers = CancellationToken::new();
        let stop_background = CancellationToken::new();
        let hard_stop = CancellationToken::new();
        let mut tasks = Vec::new();

        let mut exporter_inputs = Vec::new();
        for (spec, exporter) in self.exporters.into_iter().zip(exporters) {
            let (tx, rx) = mpsc::channel(settings.queue_capacity);
            let telemetry = registry.component(&spec.id, ComponentKind::Exporter);
            let queue = registry.queue(format!("exporter/{}", spec.id), settings.queue_capacity);
            exporter_inputs.push(Arc::new(ExporterInput {
                tx,
                queue: queue.clone(),
                telemetry: telemetry.clone(),
            }));
            let span = tracing::info_span!("component", id = %spec.id, kind = "exporter");
            let name = format!("exporter {}", spec.id);
            let run = supervise_exporter(spec, exporter, rx, queue, telemetry, settings, hard_stop.clone());
            tasks.push((name, tokio::spawn(run.instrument(span))));
        }

        let mut pipeline_inputs = Vec::new();
        let mut start_errors = Vec::new();
        let mut pipeline_tasks = Vec::new();
        for (spec, built) in self.pipelines.into_iter().zip(chains) {
            let mut chain = Vec::new();
            for (p, mut processor) in spec.processors.into_iter().zip(built) {
                let cx = ProcessorContext {
                    id: p.id.clone(),
                    shutdown: stop_background.clone(),
                };
                if let Err(e) = processor.start(cx).await {
                    start_errors.push((format!("processor {}", p.id), e));
                }
                chain.push(Link {
                    telemetry: registry.component(&p.id, ComponentKind::Processor),
                    id: p.id,
                    factory: p.factory,
                    processor,
                });
            }
            let (tx, rx) = mpsc::channel(settings.queue_capacity);
            let queue = registry.queue(format!("pipeline/{}", spec.name), settings.queue_capacity);
            pipeline_inputs.push((tx, queue.clone()));
            let outs: Vec<_> = spec.exporters.iter().map(|&i| exporter_inputs[i].clone()).collect();
            let span = tracing::info_span!("pipeline", name = %spec.name);
            let run = run_pipeline(rx, queue, chain, outs, stop_background.clone());
            pipeline_tasks.push((format!("pipeline {}", spec.name), run.instrument(span)));
        }
        if !start_errors.is_empty() {
            stop_background.cancel();
            hard_stop.cancel();
            return Err(StartError(start_errors));
        }
        drop(exporter_inputs);
        // Pipelines are spawned after the exporters and before the receivers, so shutdown can
        // wait on them in data-flow order.
        let exporter_tasks = std::mem::take(&mut tasks);
        for (name, run) in pipeline_tasks {
            tasks.push((name, tokio::spawn(run)));
        }

        let mut receiver_tasks = Vec::new();
        for (spec, receiver) in self.receivers.into_iter().zip(receivers) {
            let telemetry = registry.component(&spec.id, ComponentKind::Receiver);
            let inputs = spec
                .pipelines
                .iter()
                .map(|&i| PipelineInput {
                    tx: pipeline_inputs[i].0.clone(),
                    queue: pipeline_inputs[i].1.clone(),
                })
                .collect();
            let cx = ReceiverContext {
                id: spec.id.clone(),
                output: Output::new(inputs, telemetry.clone()),
                shutdown: stop_receivers.clone(),
            };
            let span = tracing::info_span!("component", id = %spec.id, kind = "receiver");
            let name = format!("receiver {}", spec.id);
            let run = supervise_receiver(spec.factory, receiver, cx, telemetry, settings.restart);
            receiver_tasks.push((name, tokio::spawn(run.instrument(span))));
        }
        drop(pipeline_inputs);
        receiver_tasks.append(&mut tasks);
        receiver_tasks.extend(exporter_tasks);

        tokio::spawn(sweep_labels(stop_background.clone()));
        let health = Arc::new(Health::default());
        health.set_ready(true);
        Ok(RunningTopology {
            stop_receivers,
            stop_background,
            hard_stop,
            tasks: receiver_tasks,
            health,
        })
    }

    /// Collects every receiver once and runs the result through each pipeline's processors;
    /// returns each pipeline's output and the receivers that failed. Exporters are not built.
    pub async fn collect_once(self) -> Result<(Vec<(String, Batch)>, Vec<(ComponentId, BoxError)>), StartError> {
        let mut errors = Vec::new();
        let mut receivers = Vec::new();
        for spec in self.receivers {
            match (spec.factory)() {
                Ok(r) => receivers.push((spec.id, r, spec.pipelines)),
                Err(e) => errors.push((format!("receiver {}", spec.id), e)),
            }
        }
        let stop = CancellationToken::new();
        let mut chains = Vec::new();
        for p in &self.pipelines {
            let mut chain = Vec::new();
            for spec in &p.processors {
                let cx = ProcessorContext {
                    id: spec.id.clone(),
                    shutdown: stop.clone(),
                };
                match (spec.factory)() {
                    Ok(mut x) => match x.start(cx).await {
                        Ok(()) => chain.push(x),
                        Err(e) => errors.push((format!("processor {}", spec.id), e)),
                    },
                    Err(e) => errors.push((format!("processor {}", spec.id), e)),
                }
            }
            chains.push(chain);
        }
        if !errors.is_empty() {
            stop.cancel();
            return Err(StartError(errors));
        }
        let mut outputs: Vec<(String, Batch)> = self.pipelines.iter().map(|p| (p.name.clone(), Batch::new())).collect();
        let mut failed = Vec::new();
        for (id, mut receiver, pipelines) in receivers {
            let mut batch = Batch::new();
            match receiver.collect_once(&mut batch).await {
                Ok(_) => {}
                Err(e) => {
                    failed.push((id, e));
                    continue;
                }
            }
            for &i in &pipelines {
                let mut b = batch.clone();
                for p in chains[i].iter_mut() {
                    p.process(&mut b);
                }
                outputs[i].1.append(&mut b);
            }
        }
        stop.cancel();
        Ok((outputs, failed))
    }
}

impl RunningTopology {
    /// Readiness, for the health endpoint.
    pub fn health(&self) -> Arc<Health> {
        self.health.clone()
    }

    /// Stops receivers, lets pipelines and exporter queues drain, lets exporters flush, and
    /// returns when everything has stopped or `deadline` has passed (then the rest is aborted).
    pub async fn shutdown(mut self, deadline: Duration) -> Result<(), ShutdownTimedOut> {
        self.health.set_ready(false);
        self.stop_receivers.cancel();
        let started = Instant::now();
        let drained = tokio::time::timeout(deadline, async {
            for (_, task) in self.tasks.iter_mut() {
                let _ = task.await;
            }
        })
        .await;
        self.stop_background.cancel();
        if drained.is_ok() {
            tracing::info!(elapsed = ?started.elapsed(), "Pipelines drained and exporters flushed.");
            return Ok(());
        }
        // Give retry loops a moment to notice the hard stop and count what they drop.
        self.hard_stop.cancel();
        let _ = tokio::time::timeout(Duration::from_millis(500), async {
            for (_, task) in self.tasks.iter_mut() {
                if !task.is_finished() {
                    let _ = task.await;
                }
            }
        })
        .await;
        let pending: Vec<String> = self
            .tasks
            .iter()
            .filter(|(_, t)| !t.is_finished())
            .map(|(n, _)| n.clone())
            .collect();
        for (_, task) in &self.tasks {
            task.abort();
        }
        if pending.is_empty() {
            return Ok(());
        }
        Err(ShutdownTimedOut { deadline, pending })
    }
}

/// Drops interned label pairs no series uses any more, so the table follows the live series.
async fn sweep_labels(stop: CancellationToken) {
    let mut ticker = tokio::time::interval(Duration::from_secs(60));
    ticker.tick().await;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = ticker.tick() => {}
        }
        let removed = crate::labels::sweep_interned_pairs();
        tracing::debug!(removed, "Swept unused label pairs.");
    }
}

async fn supervise_receiver(
    factory: Factory<Box<dyn Receiver>>,
    initial: Box<dyn Receiver>,
    cx: ReceiverContext,
    telemetry: Arc<ComponentTelemetry>,
    restart: Backoff,
) {
    let mut next = Some(initial);
    let mut delay = restart.initial;
    loop {
        let mut receiver = match next.take() {
            Some(r) => r,
            None => match factory() {
                Ok(r) => r,
                Err(error) => {
                    telemetry.add_error();
                    tracing::error!(%error, "Receiver could not be rebuilt; trying again.");
                    if !sleep_unless(jitter(delay), &cx.shutdown).await {
                        return;
                    }
                    delay = restart.next(delay);
                    continue;
                }
            },
        };
        telemetry.set_up(true);
        let run_cx = cx.clone();
        let started = Instant::now();
        let outcome = tokio::spawn(async move { receiver.run(run_cx).await }.in_current_span()).await;
        match outcome {
            Ok(Ok(())) => {
                // Finished on its own (or told to stop): nothing to restart.
                cx.shutdown.cancelled().await;
                return;
            }
            Ok(Err(error)) => tracing::error!(%error, "Receiver failed; restarting it."),
            Err(e) if e.is_panic() => tracing::error!("Receiver panicked; restarting it."),
            Err(_) => return,
        }
        telemetry.add_error();
        telemetry.add_restart();
        telemetry.set_up(false);
        if started.elapsed() > restart.max {
            delay = restart.initial;
        }
        if !sleep_unless(jitter(delay), &cx.shutdown).await {
            return;
        }
        delay = restart.next(delay);
    }
}

async fn run_pipeline(
    mut rx: mpsc::Receiver<Batch>,
    queue: Arc<QueueTelemetry>,
    mut chain: Vec<Link>,
    exporters: Vec<Arc<ExporterInput>>,
    background: CancellationToken,
) {
    while let Some(mut batch) = rx.recv().await {
        queue.popped();
        if !run_chain(&mut chain, &mut batch, &background).await || batch.is_empty() {
            continue;
        }
        let batch = Arc::new(batch);
        for e in &exporters {
            e.queue.pushed();
            if e.tx.send(batch.clone()).await.is_err() {
                e.telemetry.add_discarded("shutdown", batch.len() as u64);
            }
        }
    }
}

/// Runs the processors; a panicking processor loses the batch (counted) and is rebuilt.
async fn run_chain(chain: &mut [Link], batch: &mut Batch, background: &CancellationToken) -> bool {
    for link in chain.iter_mut() {
        let n = batch.len() as u64;
        link.telemetry.add_received(n);
        let processor = &mut link.processor;
        if std::panic::catch_unwind(AssertUnwindSafe(|| processor.process(batch))).is_ok() {
            link.telemetry.add_sent(batch.len() as u64);
            continue;
        }
        link.telemetry.add_error();
        link.telemetry.add_discarded("processor_panic", n);
        tracing::error!(id = %link.id, "Processor panicked; batch dropped, rebuilding the processor.");
        match (link.factory)() {
            Ok(mut fresh) => {
                let cx = ProcessorContext {
                    id: link.id.clone(),
                    shutdown: background.clone(),
                };
                match fresh.start(cx).await {
                    Ok(()) => {
                        link.processor = fresh;
                        link.telemetry.add_restart();
                    }
                    Err(error) => {
                        tracing::error!(id = %link.id, %error, "Rebuilt processor failed to start; keeping the old one.")
                    }
                }
            }
            Err(error) => {
                tracing::error!(id = %link.id, %error, "Processor could not be rebuilt; keeping the old one.")
            }
        }
        return false;
    }
    true
}

async fn supervise_exporter(
    spec: ExporterSpec,
    initial: Box<dyn Exporter>,
    rx: mpsc::Receiver<Arc<Batch>>,
    queue: Arc<QueueTelemetry>,
    telemetry: Arc<ComponentTelemetry>,
    settings: RuntimeSettings,
    hard_stop: CancellationToken,
) {
    // Shared so that a rebuilt exporter continues on the same queue after a panic.
    let rx = Arc::new(tokio::sync::Mutex::new(rx));
    let mut next = Some(initial);
    let mut delay = settings.restart.initial;
    loop {
        let exporter = match next.take() {
            Some(e) => e,
            None => match (spec.factory)() {
                Ok(e) => e,
                Err(error) => {
                    telemetry.add_error();
                    tracing::error!(%error, "Exporter could not be rebuilt; trying again.");
                    if !sleep_unless(jitter(delay), &hard_stop).await {
                        return;
                    }
                    delay = settings.restart.next(delay);
                    continue;
                }
            },
        };
        telemetry.set_up(true);
        let run = export_loop(
            exporter,
            rx.clone(),
            queue.clone(),
            telemetry.clone(),
            settings.retry,
            hard_stop.clone(),
        );
        match tokio::spawn(run.in_current_span()).await {
            Ok(()) => return,
            Err(e) if e.is_panic() => {
                telemetry.add_error();
                telemetry.add_restart();
                telemetry.set_up(false);
                tracing::error!("Exporter panicked; the batch in flight is lost, restarting it.");
            }
            Err(_) => return,
        }
        if !sleep_unless(jitter(delay), &hard_stop).await {
            return;
        }
        delay = settings.restart.next(delay);
    }
}

async fn export_loop(
    mut exporter: Box<dyn Exporter>,
    rx: Arc<tokio::sync::Mutex<mpsc::Receiver<Arc<Batch>>>>,
    queue: Arc<QueueTelemetry>,
    telemetry: Arc<ComponentTelemetry>,
    retry: Backoff,
    hard_stop: CancellationToken,
) {
    let mut rx = rx.lock().await;
    while let Some(batch) = rx.recv().await {
        queue.popped();
        let n = batch.len() as u64;
        telemetry.add_received(n);
        let mut delay = retry.initial;
        let mut logged = false;
        loop {
            match exporter.export(batch.clone()).await {
                Ok(()) => {
                    telemetry.add_sent(n);
                    if logged {
                        tracing::info!("Export recovered.");
                    }
                    break;
                }
                Err(ExportError::Permanent(error)) => {
                    telemetry.add_error();
                    telemetry.add_discarded("rejected", n);
                    tracing::error!(%error, series = n, "Export rejected; batch dropped.");
                    break;
                }
                Err(ExportError::Retryable { retry_after, source }) => {
                    telemetry.add_error();
                    if !logged {
                        tracing::warn!(error = %source, "Export failed; retrying with backoff.");
                        logged = true;
                    }
                    let wait = retry_after.unwrap_or_else(|| jitter(delay));
                    if !sleep_unless(wait, &hard_stop).await {
                        telemetry.add_discarded("shutdown", n);
                        tracing::error!(series = n, "Shutdown deadline reached while retrying; batch dropped.");
                        break;
                    }
                    delay = retry.next(delay);
                }
            }
        }
    }
    if let Err(error) = exporter.shutdown().await {
        telemetry.add_error();
        tracing::error!(%error, "Exporter failed to flush at shutdown.");
    }
}
