//! Loopback round trip: the `otlp` exporter sends a Prometheus-shaped batch to the `otlp`
//! receiver, and the same series come out of the receiver's pipeline.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nodetel_core::config::{BuildContext, ExporterConfig, ReceiverConfig};
use nodetel_core::labels::METRIC_NAME;
use nodetel_core::runtime::{ExporterSpec, PipelineSpec, ReceiverSpec, RuntimeSettings, Topology};
use nodetel_core::sample::{is_stale_nan, stale_nan};
use nodetel_core::telemetry::Registry;
use nodetel_core::{Batch, ComponentId, ExportError, Exporter, Labels, MetricMetadata, MetricType, Sample};
use nodetel_exporters::otlp::OtlpExporterConfig;
use nodetel_receivers::otlp::OtlpConfig;

struct Capture(Arc<Mutex<Vec<Arc<Batch>>>>);

#[async_trait::async_trait]
impl Exporter for Capture {
    async fn export(&mut self, batch: Arc<Batch>) -> Result<(), ExportError> {
        self.0.lock().unwrap().push(batch);
        Ok(())
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn context(id: &str) -> BuildContext {
    BuildContext {
        id: ComponentId::parse(id).unwrap(),
        hostname: "h1".into(),
        registry: Arc::new(Registry::new()),
        extensions: Arc::new(BTreeMap::new()),
    }
}

fn exporter(port: u16) -> Box<dyn Exporter> {
    let cfg: OtlpExporterConfig = serde_yaml_ng::from_str(&format!(
        "{{endpoint: '127.0.0.1:{port}', tls: {{insecure: true}}, timeout: 2s}}"
    ))
    .unwrap();
    cfg.build(&context("otlp")).unwrap()
}

/// A batch as the Prometheus receiver makes it: job/instance labels and family metadata.
fn prometheus_batch() -> Batch {
    let mut b = Batch::new();
    let meta = |family: &str, kind| Arc::new(MetricMetadata::new(family, kind, "help text"));
    b.metadata.push(meta("http_requests_total", MetricType::Counter));
    b.metadata.push(meta("gpu_temp_celsius", MetricType::Gauge));
    b.metadata.push(meta("step_seconds", MetricType::Histogram));
    b.metadata.push(meta("rpc_seconds", MetricType::Summary));
    let ts = 1_700_000_000_123;
    let mut push = |name: &str, extra: &[(&str, &str)], v: f64| {
        let mut pairs = vec![(METRIC_NAME, name), ("job", "node_exporter"), ("instance", "gpu-7")];
        pairs.extend_from_slice(extra);
        b.push(Labels::from_pairs(pairs).unwrap(), Sample::new(ts, v));
    };
    push("http_requests_total", &[("code", "200")], 42.0);
    push("http_requests_total", &[("code", "500")], 3.0);
    push("gpu_temp_celsius", &[("gpu", "0")], 61.5);
    push("gpu_temp_celsius", &[("gpu", "1")], stale_nan());
    push("step_seconds_bucket", &[("le", "0.5")], 2.0);
    push("step_seconds_bucket", &[("le", "1")], 5.0);
    push("step_seconds_bucket", &[("le", "+Inf")], 6.0);
    push("step_seconds_sum", &[], 4.25);
    push("step_seconds_count", &[], 6.0);
    push("rpc_seconds", &[("quantile", "0.5")], 0.2);
    push("rpc_seconds", &[("quantile", "0.99")], 0.7);
    push("rpc_seconds_sum", &[], 12.0);
    push("rpc_seconds_count", &[], 40.0);
    push("untyped_thing", &[("a", "b")], 7.0);
    b
}

fn by_series(batches: &[Arc<Batch>]) -> BTreeMap<String, (i64, f64)> {
    batches
        .iter()
        .flat_map(|b| b.series.iter())
        .map(|s| (s.labels.to_string(), (s.samples[0].timestamp_ms, s.samples[0].value)))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_series_come_out_of_the_receiver() {
    let port = free_port();
    let cfg: OtlpConfig = serde_yaml_ng::from_str(&format!(
        "{{protocols: {{grpc: {{endpoint: '127.0.0.1:{port}'}}}}, disable_scope_info: true, disable_target_info: true}}"
    ))
    .unwrap();
    let cx = context("otlp");
    let seen: Arc<Mutex<Vec<Arc<Batch>>>> = Arc::default();
    let capture = seen.clone();
    let topology = Topology {
        receivers: vec![ReceiverSpec {
            id: ComponentId::parse("otlp").unwrap(),
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
            factory: Arc::new(move || Ok(Box::new(Capture(capture.clone())) as Box<dyn Exporter>)),
        }],
        settings: RuntimeSettings::default(),
    };
    let registry = Registry::new();
    let running = topology.start(&registry).await.unwrap();

    let sent = Arc::new(prometheus_batch());
    let mut otlp = exporter(port);
    // The receiver may still be binding: retry the retryable connection errors briefly.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match otlp.export(sent.clone()).await {
            Ok(()) => break,
            Err(ExportError::Retryable { .. }) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            Err(e) => panic!("export failed: {e}"),
        }
    }
    let want = by_series(&[sent]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while seen.lock().unwrap().iter().map(|b| b.len()).sum::<usize>() < want.len() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let got = by_series(&seen.lock().unwrap());
    let stale = r#"gpu_temp_celsius{gpu="1",instance="gpu-7",job="node_exporter"}"#;
    assert!(is_stale_nan(got[stale].1), "the staleness marker survives");
    let strip = |m: &BTreeMap<String, (i64, f64)>| -> BTreeMap<String, (i64, u64)> {
        m.iter()
            .filter(|(k, _)| *k != stale)
            .map(|(k, (t, v))| (k.clone(), (*t, v.to_bits())))
            .collect()
    };
    assert_eq!(strip(&got), strip(&want), "got {got:#?}");
    let kinds: BTreeMap<String, MetricType> = seen
        .lock()
        .unwrap()
        .iter()
        .flat_map(|b| b.metadata.iter().map(|m| (m.family.to_string(), m.kind)))
        .collect();
    assert_eq!(kinds["http_requests_total"], MetricType::Counter);
    assert_eq!(kinds["step_seconds"], MetricType::Histogram);
    assert_eq!(kinds["rpc_seconds"], MetricType::Summary);
    running.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_collector_is_a_retryable_error() {
    let mut otlp = exporter(free_port());
    let err = otlp.export(Arc::new(prometheus_batch())).await.unwrap_err();
    assert!(matches!(err, ExportError::Retryable { .. }), "{err:?}");
}

/// A collector that records request metadata and answers with a fixed status.
mod fake_collector {
    use std::sync::{Arc, Mutex};

    use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
        MetricsService, MetricsServiceServer,
    };
    use opentelemetry_proto::tonic::collector::metrics::v1::{
        ExportMetricsServiceRequest, ExportMetricsServiceResponse,
    };
    use tonic::{Request, Response, Status};

    #[derive(Clone, Default)]
    pub(super) struct Seen {
        pub(super) headers: Arc<Mutex<Vec<(String, String)>>>,
        pub(super) requests: Arc<Mutex<Vec<ExportMetricsServiceRequest>>>,
    }

    struct Collector {
        seen: Seen,
        answer: Option<Status>,
    }

    #[tonic::async_trait]
    impl MetricsService for Collector {
        async fn export(
            &self,
            request: Request<ExportMetricsServiceRequest>,
        ) -> Result<Response<ExportMetricsServiceResponse>, Status> {
            let mut h = self.seen.headers.lock().unwrap();
            for kv in request.metadata().iter() {
                if let tonic::metadata::KeyAndValueRef::Ascii(k, v) = kv {
                    h.push((k.to_string(), v.to_str().unwrap_or("").to_owned()));
                }
            }
            self.seen.requests.lock().unwrap().push(request.into_inner());
            match &self.answer {
                Some(s) => Err(Status::with_details(s.code(), s.message(), s.details().to_vec().into())),
                None => Ok(Response::new(ExportMetricsServiceResponse::default())),
            }
        }
    }

    /// Serves until the test ends; returns the port.
    pub(super) async fn start(answer: Option<Status>) -> (u16, Seen) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Seen::default();
        let service = MetricsServiceServer::new(Collector {
            seen: seen.clone(),
            answer,
        })
        .accept_compressed(tonic::codec::CompressionEncoding::Gzip);
        tokio::spawn(
            tonic::transport::Server::builder()
                .serve_with_incoming(service, tonic::transport::server::TcpIncoming::from(listener)),
        );
        (port, seen)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_and_gzip_reach_the_collector() {
    let (port, seen) = fake_collector::start(None).await;
    let cfg: OtlpExporterConfig = serde_yaml_ng::from_str(&format!(
        "{{endpoint: 'http://127.0.0.1:{port}', headers: {{x-tenant: ml, authorization: 'Bearer t0ken'}}}}"
    ))
    .unwrap();
    let mut otlp = cfg.build(&context("otlp")).unwrap();
    otlp.export(Arc::new(prometheus_batch())).await.unwrap();
    let headers = seen.headers.lock().unwrap().clone();
    for want in [
        ("x-tenant", "ml"),
        ("authorization", "Bearer t0ken"),
        ("grpc-encoding", "gzip"),
    ] {
        assert!(
            headers.iter().any(|(k, v)| k == want.0 && v == want.1),
            "{want:?} missing from {headers:?}"
        );
    }
    let requests = seen.requests.lock().unwrap();
    let resource = requests[0].resource_metrics[0].resource.as_ref().unwrap();
    assert_eq!(resource.attributes[0].key, "service.name");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collector_refusals_are_classified_over_the_wire() {
    let (port, _) = fake_collector::start(Some(tonic::Status::resource_exhausted("queue full"))).await;
    let err = exporter(port).export(Arc::new(prometheus_batch())).await.unwrap_err();
    assert!(matches!(err, ExportError::Retryable { .. }), "{err:?}");

    let (port, _) = fake_collector::start(Some(tonic::Status::invalid_argument("bad data"))).await;
    let err = exporter(port).export(Arc::new(prometheus_batch())).await.unwrap_err();
    assert!(matches!(err, ExportError::Permanent(_)), "{err:?}");
    assert!(err.to_string().contains("bad data"), "{err}");
}
