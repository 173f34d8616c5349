//! OTLP/gRPC against a running receiver: a round trip with the generated client; malformed and
//! oversized messages and other services get the right status, are counted, and the receiver
//! stays up.
#![allow(clippy::unwrap_used)]

mod otlp_support;

use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use opentelemetry_proto::tonic::collector::metrics::v1::{ExportMetricsServiceRequest, ExportMetricsServiceResponse};
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use opentelemetry_proto::tonic::metrics::v1::number_data_point::Value as NumberValue;
use opentelemetry_proto::tonic::metrics::v1::{Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics};
use otlp_support::Running;
use tonic::Code;
use tonic::codec::CompressionEncoding;
use tonic::transport::Channel;

const EXPORT: &str = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export";

fn gauge(name: &str, description: String, v: f64) -> ExportMetricsServiceRequest {
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![Metric {
                    name: name.into(),
                    description,
                    data: Some(Data::Gauge(Gauge {
                        data_points: vec![NumberDataPoint {
                            value: Some(NumberValue::AsInt(v as i64)),
                            ..Default::default()
                        }],
                    })),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// A message whose field 1 is a varint, where the receiver expects `ResourceMetrics` messages.
#[derive(Clone, PartialEq, prost::Message)]
struct Bogus {
    #[prost(uint64, tag = "1")]
    resource_metrics: u64,
}

async fn channel(r: &Running) -> Channel {
    Channel::from_shared(format!("http://{}", r.grpc))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

/// Calls `path` with any message, the way a client of another service would.
async fn raw_call<M: prost::Message + Default + Send + Sync + 'static>(
    r: &Running,
    path: &'static str,
    msg: M,
) -> Result<ExportMetricsServiceResponse, tonic::Status> {
    let mut grpc = tonic::client::Grpc::new(channel(r).await);
    grpc.ready().await.unwrap();
    let codec = tonic_prost::ProstCodec::<M, ExportMetricsServiceResponse>::default();
    grpc.unary(
        tonic::Request::new(msg),
        http::uri::PathAndQuery::from_static(path),
        codec,
    )
    .await
    .map(|r| r.into_inner())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exports_over_grpc_with_and_without_gzip_arrive_as_series() {
    let r = Running::start("").await;
    let mut client = MetricsServiceClient::new(channel(&r).await);
    let response = client.export(gauge("gpu.temp", String::new(), 61.0)).await.unwrap();
    assert_eq!(response.get_ref().partial_success, None);
    let mut gz = MetricsServiceClient::new(channel(&r).await).send_compressed(CompressionEncoding::Gzip);
    gz.export(gauge("gpu.power", String::new(), 300.0)).await.unwrap();
    let ok = r
        .wait_for(|l| l.get("gpu_temp") == Some(&61.0) && l.get("gpu_power") == Some(&300.0))
        .await;
    assert!(ok, "{:?}", r.latest());
    assert_eq!(r.telemetry.errors(), 0);
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_calls_get_grpc_errors_are_counted_and_the_receiver_stays_up() {
    let r = Running::start("").await;

    let malformed = raw_call(&r, EXPORT, Bogus { resource_metrics: 7 }).await.unwrap_err();
    assert_eq!(malformed.code(), Code::Internal, "{malformed:?}");

    // Over the 4 MiB default message limit.
    let big = gauge("big", "x".repeat(5 * 1024 * 1024), 1.0);
    let mut client = MetricsServiceClient::new(channel(&r).await);
    let oversized = client.export(big).await.unwrap_err();
    assert!(
        matches!(oversized.code(), Code::OutOfRange | Code::ResourceExhausted),
        "{oversized:?}"
    );

    let traces = raw_call(
        &r,
        "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
        Bogus::default(),
    )
    .await
    .unwrap_err();
    assert_eq!(traces.code(), Code::Unimplemented);
    assert!(traces.message().contains("metrics only"), "{}", traces.message());
    let logs = raw_call(
        &r,
        "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
        Bogus::default(),
    )
    .await
    .unwrap_err();
    assert_eq!(logs.code(), Code::Unimplemented);

    assert_eq!(r.telemetry.errors(), 4);
    let mut client = MetricsServiceClient::new(channel(&r).await);
    client.export(gauge("after", String::new(), 1.0)).await.unwrap();
    assert!(r.wait_for(|l| l.get("after") == Some(&1.0)).await);
    assert_eq!(r.telemetry.errors(), 4);
    r.stop().await;
}
