//! Runtime behaviour: fan-in, fan-out, back-pressure, retries, restarts and shutdown, with
//! in-memory components.

// Test code: a failed unwrap is a failed test, which is what we want.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use nodetel_core::labels::METRIC_NAME;
use nodetel_core::runtime::{
    Backoff, ExporterSpec, PipelineSpec, ProcessorSpec, ReceiverSpec, RuntimeSettings, Topology,
};
use nodetel_core::telemetry::Registry;
use nodetel_core::{
    Batch, BoxError, ComponentId, ComponentKind, ExportError, Exporter, Labels, Processor, Receiver, ReceiverContext,
    Sample,
};
use tokio::sync::Semaphore;

fn settings(queue_capacity: usize) -> RuntimeSettings {
    let fast = Backoff {
        initial: Duration::from_millis(5),
        max: Duration::from_millis(20),
    };
    RuntimeSettings {
        queue_capacity,
        restart: fast,
        retry: fast,
    }
}

fn id(s: &str) -> ComponentId {
    ComponentId::parse(s).unwrap()
}

fn batch_of(name: &str, n: usize) -> Batch {
    let mut b = Batch::new();
    for i in 0..n {
        let labels = Labels::from_pairs([(METRIC_NAME, name), ("i", &i.to_string())]).unwrap();
        b.push(labels, Sample::new(1, i as f64));
    }
    b
}

/// Sends `batches` batches of `size` series named `name`, then idles until shutdown.
struct Emitter {
    name: &'static str,
    batches: usize,
    size: usize,
}

#[async_trait]
impl Receiver for Emitter {
    async fn run(&mut self, cx: ReceiverContext) -> Result<(), BoxError> {
        for _ in 0..self.batches {
            tokio::select! {
                _ = cx.shutdown.cancelled() => return Ok(()),
                r = cx.output.send(batch_of(self.name, self.size)) => if r.is_err() { return Ok(()) },
            }
        }
        cx.shutdown.cancelled().await;
        Ok(())
    }

    async fn collect_once(&mut self, out: &mut Batch) -> Result<bool, BoxError> {
        *out = batch_of(self.name, self.size);
        Ok(true)
    }
}

fn emitter(name: &'static str, batches: usize, size: usize, pipelines: Vec<usize>) -> ReceiverSpec {
    ReceiverSpec {
        id: id(&format!("emitter/{name}")),
        factory: Arc::new(move || Ok(Box::new(Emitter { name, batches, size }) as Box<dyn Receiver>)),
        pipelines,
    }
}

#[derive(Clone, Default)]
struct Sink {
    series: Arc<Mutex<Vec<String>>>,
    flushed: Arc<AtomicUsize>,
}

impl Sink {
    fn names(&self) -> Vec<String> {
        let mut v = self.series.lock().unwrap().clone();
        v.sort();
        v
    }
    fn len(&self) -> usize {
        self.series.lock().unwrap().len()
    }
}

/// Records series; optionally waits for a permit per batch, fails some exports first, or hangs
/// in shutdown.
struct Collector {
    sink: Sink,
    gate: Option<Arc<Semaphore>>,
    fail_first: Arc<AtomicUsize>,
    permanent: bool,
    hang_on_shutdown: bool,
}

#[async_trait]
impl Exporter for Collector {
    async fn export(&mut self, batch: Arc<Batch>) -> Result<(), ExportError> {
        if let Some(gate) = &self.gate {
            gate.acquire().await.unwrap().forget();
        }
        if self.fail_first.load(Ordering::SeqCst) > 0 {
            self.fail_first.fetch_sub(1, Ordering::SeqCst);
            let source: BoxError = "injected".into();
            return Err(if self.permanent {
                ExportError::Permanent(source)
            } else {
                ExportError::Retryable {
                    retry_after: None,
                    source,
                }
            });
        }
        let mut s = self.sink.series.lock().unwrap();
        for series in &batch.series {
            s.push(series.labels.to_string());
        }
        Ok(())
    }

    async fn shutdown(&mut self) -> Result<(), BoxError> {
        if self.hang_on_shutdown {
            std::future::pending::<()>().await;
        }
        self.sink.flushed.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

fn collector(name: &str, sink: &Sink) -> ExporterSpec {
    configured_collector(name, sink, None, 0, false, false)
}

fn configured_collector(
    name: &str,
    sink: &Sink,
    gate: Option<Arc<Semaphore>>,
    fail_first: usize,
    permanent: bool,
    hang_on_shutdown: bool,
) -> ExporterSpec {
    let sink = sink.clone();
    let fail_first = Arc::new(AtomicUsize::new(fail_first));
    ExporterSpec {
        id: id(&format!("collector/{name}")),
        factory: Arc::new(move || {
            Ok(Box::new(Collector {
                sink: sink.clone(),
                gate: gate.clone(),
                fail_first: fail_first.clone(),
                permanent,
                hang_on_shutdown,
            }) as Box<dyn Exporter>)
        }),
    }
}

fn pipeline(name: &str, processors: Vec<ProcessorSpec>, exporters: Vec<usize>) -> PipelineSpec {
    PipelineSpec {
        name: name.into(),
        processors,
        exporters,
    }
}

async fn wait_for(what: &str, cond: impl Fn() -> bool) {
    for _ in 0..500 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test]
async fn fan_in_and_fan_out_deliver_every_series_to_every_exporter() {
    let (a, b) = (Sink::default(), Sink::default());
    let topo = Topology {
        receivers: vec![emitter("x", 3, 2, vec![0]), emitter("y", 2, 1, vec![0, 1])],
        pipelines: vec![
            pipeline("metrics", vec![], vec![0, 1]),
            pipeline("metrics/only_a", vec![], vec![0]),
        ],
        exporters: vec![collector("a", &a), collector("b", &b)],
        settings: settings(4),
    };
    let registry = Registry::new();
    let running = topo.start(&registry).await.unwrap();
    // a: x (6) + y via both pipelines (2 + 2) = 10; b: x (6) + y once (2) = 8.
    wait_for("all series", || a.len() == 10 && b.len() == 8).await;
    running.shutdown(Duration::from_secs(2)).await.unwrap();
    assert_eq!(a.names().iter().filter(|n| n.starts_with("y")).count(), 4);
    assert_eq!(a.flushed.load(Ordering::SeqCst), 1, "exporters flush once at shutdown");
    assert_eq!(b.flushed.load(Ordering::SeqCst), 1);
    let rx = registry.component(&id("emitter/y"), ComponentKind::Receiver);
    assert_eq!((rx.received(), rx.sent()), (2, 2));
}

#[tokio::test]
async fn a_slow_exporter_back_pressures_the_receiver_instead_of_growing_memory() {
    let sink = Sink::default();
    let gate = Arc::new(Semaphore::new(0));
    let topo = Topology {
        receivers: vec![emitter("x", 100, 1, vec![0])],
        pipelines: vec![pipeline("metrics", vec![], vec![0])],
        exporters: vec![configured_collector("slow", &sink, Some(gate.clone()), 0, false, false)],
        settings: settings(2),
    };
    let registry = Registry::new();
    let running = topo.start(&registry).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let rx = registry.component(&id("emitter/x"), ComponentKind::Receiver);
    // Pipeline queue (2) + the batch the pipeline holds + exporter queue (2) + the one in export
    // + the one the receiver is blocked on: nothing more may be accepted.
    assert!(
        rx.sent() <= 6,
        "receiver got {} batches through a blocked exporter",
        rx.sent()
    );
    assert_eq!(sink.len(), 0);
    gate.add_permits(1000);
    wait_for("all series after the gate opens", || sink.len() == 100).await;
    running.shutdown(Duration::from_secs(2)).await.unwrap();
}

#[tokio::test]
async fn retryable_errors_are_retried_and_permanent_ones_counted() {
    let (retried, rejected) = (Sink::default(), Sink::default());
    let topo = Topology {
        receivers: vec![emitter("x", 2, 3, vec![0])],
        pipelines: vec![pipeline("metrics", vec![], vec![0, 1])],
        exporters: vec![
            configured_collector("retried", &retried, None, 2, false, false),
            configured_collector("rejected", &rejected, None, 1, true, false),
        ],
        settings: settings(4),
    };
    let registry = Registry::new();
    let running = topo.start(&registry).await.unwrap();
    wait_for("retried series", || retried.len() == 6 && rejected.len() == 3).await;
    running.shutdown(Duration::from_secs(2)).await.unwrap();
    let t = registry.component(&id("collector/retried"), ComponentKind::Exporter);
    assert_eq!((t.errors(), t.sent(), t.discarded("rejected")), (2, 6, 0));
    let t = registry.component(&id("collector/rejected"), ComponentKind::Exporter);
    assert_eq!((t.errors(), t.sent(), t.discarded("rejected")), (1, 3, 3));
}

/// Fails on its first run, panics on its second, then works.
struct Flaky {
    attempt: usize,
}

#[async_trait]
impl Receiver for Flaky {
    async fn run(&mut self, cx: ReceiverContext) -> Result<(), BoxError> {
        match self.attempt {
            0 => Err("first run fails".into()),
            1 => panic!("second run panics"),
            _ => {
                let _ = cx.output.send(batch_of("flaky", 1)).await;
                cx.shutdown.cancelled().await;
                Ok(())
            }
        }
    }
}

#[tokio::test]
async fn a_failing_receiver_is_restarted_with_backoff_and_the_rest_keeps_running() {
    let sink = Sink::default();
    let attempts = Arc::new(AtomicUsize::new(0));
    let counter = attempts.clone();
    let flaky = ReceiverSpec {
        id: id("flaky"),
        factory: Arc::new(move || {
            let attempt = counter.fetch_add(1, Ordering::SeqCst);
            Ok(Box::new(Flaky { attempt }) as Box<dyn Receiver>)
        }),
        pipelines: vec![0],
    };
    let topo = Topology {
        receivers: vec![flaky, emitter("steady", 1, 1, vec![0])],
        pipelines: vec![pipeline("metrics", vec![], vec![0])],
        exporters: vec![collector("a", &sink)],
        settings: settings(4),
    };
    let registry = Registry::new();
    let running = topo.start(&registry).await.unwrap();
    wait_for("flaky series after two restarts", || sink.len() == 2).await;
    running.shutdown(Duration::from_secs(2)).await.unwrap();
    let t = registry.component(&id("flaky"), ComponentKind::Receiver);
    assert_eq!(attempts.load(Ordering::SeqCst), 3);
    assert_eq!((t.restarts(), t.errors()), (2, 2));
}

/// Panics on series named `boom`, adds a label otherwise.
struct Tagger;

impl Processor for Tagger {
    fn process(&mut self, batch: &mut Batch) {
        for s in batch.series.iter_mut() {
            assert!(s.labels.metric_name() != Some("boom"), "cannot tag boom");
            let mut b = s.labels.to_builder();
            b.set("tagged", "yes").unwrap();
            s.labels = b.build().unwrap();
        }
    }
}

#[tokio::test]
async fn a_panicking_processor_loses_only_its_batch_and_is_rebuilt() {
    let sink = Sink::default();
    let builds = Arc::new(AtomicUsize::new(0));
    let counter = builds.clone();
    let tagger = ProcessorSpec {
        id: id("tagger"),
        factory: Arc::new(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            Ok(Box::new(Tagger) as Box<dyn Processor>)
        }),
    };
    let topo = Topology {
        receivers: vec![emitter("boom", 1, 2, vec![0]), emitter("fine", 3, 1, vec![0])],
        pipelines: vec![pipeline("metrics", vec![tagger], vec![0])],
        exporters: vec![collector("a", &sink)],
        settings: settings(4),
    };
    let registry = Registry::new();
    let running = topo.start(&registry).await.unwrap();
    wait_for("fine series", || sink.len() == 3).await;
    let t = registry.component(&id("tagger"), ComponentKind::Processor);
    wait_for("panic accounted", || t.discarded("processor_panic") == 2).await;
    running.shutdown(Duration::from_secs(2)).await.unwrap();
    assert!(sink.names().iter().all(|n| n.contains("tagged=\"yes\"")));
    assert_eq!(
        builds.load(Ordering::SeqCst),
        2,
        "built once, rebuilt once after the panic"
    );
    assert_eq!(t.restarts(), 1);
}

#[tokio::test]
async fn shutdown_drains_queued_batches_before_flushing() {
    let sink = Sink::default();
    let gate = Arc::new(Semaphore::new(0));
    let topo = Topology {
        receivers: vec![emitter("x", 4, 1, vec![0])],
        pipelines: vec![pipeline("metrics", vec![], vec![0])],
        exporters: vec![configured_collector("slow", &sink, Some(gate.clone()), 0, false, false)],
        settings: settings(8),
    };
    let registry = Registry::new();
    let running = topo.start(&registry).await.unwrap();
    let rx = registry.component(&id("emitter/x"), ComponentKind::Receiver);
    wait_for("all batches queued", || rx.sent() == 4).await;
    let opener = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        gate.add_permits(100);
    });
    running.shutdown(Duration::from_secs(5)).await.unwrap();
    opener.await.unwrap();
    assert_eq!(sink.len(), 4, "every accepted batch is exported before exit");
    assert_eq!(sink.flushed.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn shutdown_gives_up_at_the_deadline_and_names_what_hung() {
    let sink = Sink::default();
    let topo = Topology {
        receivers: vec![emitter("x", 1, 1, vec![0])],
        pipelines: vec![pipeline("metrics", vec![], vec![0])],
        exporters: vec![configured_collector("stuck", &sink, None, 0, false, true)],
        settings: settings(4),
    };
    let registry = Registry::new();
    let running = topo.start(&registry).await.unwrap();
    wait_for("the series", || sink.len() == 1).await;
    let started = std::time::Instant::now();
    let err = running.shutdown(Duration::from_millis(200)).await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(err.pending, ["exporter collector/stuck"]);
}

#[tokio::test]
async fn a_component_that_cannot_be_built_fails_the_start() {
    let failing = ReceiverSpec {
        id: id("broken"),
        factory: Arc::new(|| Err("no such device".into())),
        pipelines: vec![0],
    };
    let topo = Topology {
        receivers: vec![failing],
        pipelines: vec![pipeline("metrics", vec![], vec![0])],
        exporters: vec![collector("a", &Sink::default())],
        settings: settings(4),
    };
    let err = topo.start(&Registry::new()).await.unwrap_err();
    assert_eq!(err.to_string(), "receiver broken: no such device");
}

#[tokio::test]
async fn collect_once_runs_receivers_through_processors() {
    let tagger = ProcessorSpec {
        id: id("tagger"),
        factory: Arc::new(|| Ok(Box::new(Tagger) as Box<dyn Processor>)),
    };
    let topo = Topology {
        receivers: vec![emitter("x", 0, 2, vec![0])],
        pipelines: vec![pipeline("metrics", vec![tagger], vec![0])],
        exporters: vec![collector("a", &Sink::default())],
        settings: settings(4),
    };
    let (outputs, failed) = topo.collect_once().await.unwrap();
    assert!(failed.is_empty());
    let names: Vec<_> = outputs[0].1.series.iter().map(|s| s.labels.to_string()).collect();
    assert_eq!(names, [r#"x{i="0",tagged="yes"}"#, r#"x{i="1",tagged="yes"}"#]);
}
