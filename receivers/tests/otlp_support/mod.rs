//! Runs an `otlp` receiver in a real pipeline on free loopback ports and keeps what it delivers.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nodetel_core::config::{BuildContext, ReceiverConfig};
use nodetel_core::runtime::{ExporterSpec, PipelineSpec, ReceiverSpec, RunningTopology, RuntimeSettings, Topology};
use nodetel_core::telemetry::{ComponentTelemetry, Registry};
use nodetel_core::{Batch, ComponentId, ComponentKind};
use nodetel_receivers::otlp::OtlpConfig;

/// Keeps every batch the pipeline delivers.
struct Capture(Arc<Mutex<Vec<Arc<Batch>>>>);

#[async_trait::async_trait]
impl nodetel_core::Exporter for Capture {
    async fn export(&mut self, batch: Arc<Batch>) -> Result<(), nodetel_core::ExportError> {
        self.0.lock().unwrap().push(batch);
        Ok(())
    }
}

/// The OpenTelemetry Python SDK sender the end-to-end tests run.
pub fn sender_script() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/support/otlp_sender.py")
}

/// Whether `python3` on PATH has the SDK; the test suite's venv provides it (scripts/test).
pub fn python_has_sdk() -> bool {
    let probe = std::process::Command::new("python3")
        .args([
            "-c",
            "import opentelemetry.sdk.metrics, opentelemetry.exporter.otlp.proto.grpc, opentelemetry.exporter.otlp.proto.http",
        ])
        .output();
    matches!(probe, Ok(o) if o.status.success())
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running receiver.
pub struct Running {
    pub grpc: SocketAddr,
    pub http: SocketAddr,
    pub seen: Arc<Mutex<Vec<Arc<Batch>>>>,
    pub telemetry: Arc<ComponentTelemetry>,
    running: RunningTopology,
}

impl Running {
    /// Starts a receiver; `extra` is more YAML for the receiver's section (top-level keys).
    pub async fn start(extra: &str) -> Running {
        let (grpc, http) = (free_port(), free_port());
        let yaml = format!(
            "protocols:\n  grpc: {{endpoint: '127.0.0.1:{grpc}'}}\n  http: {{endpoint: '127.0.0.1:{http}', max_request_body_size: 65536}}\n{extra}"
        );
        let r = Running::from_section(grpc, http, &yaml).await;
        r.wait_listening().await;
        r
    }

    /// Starts a receiver from its whole YAML section, which must listen on `grpc` and `http`;
    /// does not wait for it to listen.
    pub async fn from_section(grpc: u16, http: u16, yaml: &str) -> Running {
        let cfg: OtlpConfig = serde_yaml_ng::from_str(yaml).unwrap();
        let problems = nodetel_core::config::Validate::validate(&cfg);
        assert!(problems.is_empty(), "{problems:?}");
        let id = ComponentId::parse("otlp").unwrap();
        let registry = Registry::new();
        let cx = BuildContext {
            id: id.clone(),
            hostname: "h1".into(),
            registry: Arc::new(Registry::new()),
            extensions: Arc::new(BTreeMap::new()),
        };
        let seen: Arc<Mutex<Vec<Arc<Batch>>>> = Arc::default();
        let capture = seen.clone();
        let topology = Topology {
            receivers: vec![ReceiverSpec {
                id: id.clone(),
                factory: Arc::new(move || cfg.build(&cx)),
                pipelines: vec![0],
            }],
            pipelines: vec![PipelineSpec {
                name: "metrics".into(),
                processors: vec![],
                exporters: vec![0],
            }],
            exporters: vec![ExporterSpec {
                id: ComponentId::parse("debug").unwrap(),
                factory: Arc::new(move || Ok(Box::new(Capture(capture.clone())) as Box<dyn nodetel_core::Exporter>)),
            }],
            settings: RuntimeSettings::default(),
        };
        let running = topology.start(&registry).await.unwrap();
        let telemetry = registry.component(&id, ComponentKind::Receiver);
        Running {
            grpc: format!("127.0.0.1:{grpc}").parse().unwrap(),
            http: format!("127.0.0.1:{http}").parse().unwrap(),
            seen,
            telemetry,
            running,
        }
    }

    /// Waits until both ports are taken, without connecting (over TLS a probe would count as
    /// a failed handshake).
    pub async fn wait_bound(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        for addr in [self.grpc, self.http] {
            while std::net::TcpListener::bind(addr).is_ok() {
                assert!(Instant::now() < deadline, "the receiver never listened on {addr}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }

    async fn wait_listening(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        for addr in [self.grpc, self.http] {
            while tokio::net::TcpStream::connect(addr).await.is_err() {
                assert!(Instant::now() < deadline, "the receiver never listened on {addr}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }

    /// Every delivered sample as `(series, value)`, in delivery order.
    pub fn series(&self) -> Vec<(String, f64)> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .flat_map(|b| {
                b.series
                    .iter()
                    .flat_map(|s| s.samples.iter().map(move |x| (s.labels.to_string(), x.value)))
            })
            .collect()
    }

    /// The last delivered value of each series, sorted by series.
    pub fn latest(&self) -> BTreeMap<String, f64> {
        self.series().into_iter().collect()
    }

    /// Waits until `what` holds for the delivered series (10 s at most).
    pub async fn wait_for(&self, what: impl Fn(&BTreeMap<String, f64>) -> bool) -> bool {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if what(&self.latest()) {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn stop(self) {
        self.running.shutdown(Duration::from_secs(5)).await.unwrap();
    }
}
