//! The `gpu` receiver on the real NVML path. On a machine without the NVIDIA driver (CI, CPU
//! nodes) loading `libnvidia-ml.so.1` fails: the receiver must still build, report itself down,
//! emit nothing and stop cleanly. On a GPU machine the same tests check the live path instead.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use nodetel_core::component::{ExportError, Exporter};
use nodetel_core::config::{BuildContext, ReceiverConfig, Validate};
use nodetel_core::runtime::{ExporterSpec, PipelineSpec, ReceiverSpec, RuntimeSettings, Topology};
use nodetel_core::telemetry::Registry;
use nodetel_core::{Batch, ComponentId};
use nodetel_host::gpu::{GpuSource, NvmlSource};
use nodetel_receivers::gpu::GpuConfig;

fn context(registry: &Arc<Registry>) -> BuildContext {
    BuildContext {
        id: ComponentId::parse("gpu").expect("valid id"),
        hostname: "testhost".to_owned(),
        registry: registry.clone(),
        extensions: Arc::default(),
    }
}

fn up_value(registry: &Registry) -> Option<String> {
    registry
        .render()
        .lines()
        .find(|l| l.starts_with("nodetel_component_up{") && l.contains("component_id=\"gpu\""))
        .and_then(|l| l.rsplit(' ').next())
        .map(str::to_owned)
}

fn has_gpus() -> bool {
    NvmlSource::open(None).is_ok_and(|s| !s.devices().is_empty())
}

#[tokio::test]
async fn without_a_driver_the_receiver_builds_disabled_and_emits_nothing() {
    let config = GpuConfig::default();
    assert!(config.validate().is_empty());
    let registry = Arc::new(Registry::new());
    let mut receiver = config
        .build(&context(&registry))
        .expect("build must not fail without a driver");
    let mut out = Batch::new();
    receiver.collect_once(&mut out).await.unwrap();
    if has_gpus() {
        assert!(!out.is_empty(), "a GPU machine yields series");
        assert!(out.series.iter().all(|s| s.labels.get("job") == Some("dcgm_exporter")));
        return;
    }
    assert!(out.is_empty(), "no series without a driver: {:?}", out.series.len());
    assert_eq!(up_value(&registry).as_deref(), Some("0"));
}

#[tokio::test]
async fn a_library_path_that_does_not_exist_disables_the_receiver() {
    let config = GpuConfig {
        library_path: Some("/nonexistent/libnvidia-ml.so.1".into()),
        ..GpuConfig::default()
    };
    // NVML is started once per process; if another test of this binary already started a real
    // one, the path is not consulted again.
    if has_gpus() {
        return;
    }
    let registry = Arc::new(Registry::new());
    let mut receiver = config.build(&context(&registry)).unwrap();
    let mut out = Batch::new();
    receiver.collect_once(&mut out).await.unwrap();
    assert!(out.is_empty());
    assert_eq!(up_value(&registry).as_deref(), Some("0"));
}

/// Counts the series it is given.
#[derive(Default)]
struct Counting(Arc<AtomicUsize>);

#[async_trait::async_trait]
impl Exporter for Counting {
    async fn export(&mut self, batch: Arc<Batch>) -> Result<(), ExportError> {
        self.0.fetch_add(batch.len(), Ordering::SeqCst);
        Ok(())
    }
}

#[tokio::test]
async fn a_disabled_receiver_stays_down_under_the_runtime_and_stops_on_shutdown() {
    if has_gpus() {
        return;
    }
    let registry = Arc::new(Registry::new());
    let exported = Arc::new(AtomicUsize::new(0));
    let cx = context(&registry);
    let sink = exported.clone();
    let topology = Topology {
        receivers: vec![ReceiverSpec {
            id: cx.id.clone(),
            factory: Arc::new(move || GpuConfig::default().build(&cx)),
            pipelines: vec![0],
        }],
        pipelines: vec![PipelineSpec {
            name: "metrics".to_owned(),
            processors: vec![],
            exporters: vec![0],
        }],
        exporters: vec![ExporterSpec {
            id: ComponentId::parse("sink").unwrap(),
            factory: Arc::new(move || Ok(Box::new(Counting(sink.clone())) as Box<dyn Exporter>)),
        }],
        settings: RuntimeSettings::default(),
    };
    let running = topology.start(&registry).await.unwrap();
    // The runtime marks a started receiver up; the disabled one turns itself down again.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while up_value(&registry).as_deref() != Some("0") {
        assert!(std::time::Instant::now() < deadline, "receiver never reported down");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    running.shutdown(Duration::from_secs(2)).await.unwrap();
    assert_eq!(exported.load(Ordering::SeqCst), 0);
}
