//! OTLP/HTTP against a running receiver: protobuf, JSON and gzip bodies; malformed, oversized and
//! wrong-content-type requests get the right status, are counted, and the receiver stays up.
#![allow(clippy::unwrap_used)]

mod otlp_support;

use std::io::Write;

use opentelemetry_proto::tonic::collector::metrics::v1::{ExportMetricsServiceRequest, ExportMetricsServiceResponse};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use opentelemetry_proto::tonic::metrics::v1::number_data_point::Value as NumberValue;
use opentelemetry_proto::tonic::metrics::v1::{
    ExponentialHistogram, ExponentialHistogramDataPoint, Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use otlp_support::Running;
use prost::Message;

/// `google.rpc.Status`, the OTLP/HTTP error body.
#[derive(Clone, PartialEq, prost::Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
}

fn request(metrics: Vec<Metric>) -> ExportMetricsServiceRequest {
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: vec![KeyValue {
                    key: "service.name".into(),
                    value: Some(AnyValue {
                        value: Some(Value::StringValue("trainer".into())),
                    }),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            scope_metrics: vec![ScopeMetrics {
                metrics,
                ..Default::default()
            }],
            schema_url: String::new(),
        }],
    }
}

fn loss(v: f64) -> ExportMetricsServiceRequest {
    request(vec![Metric {
        name: "train.loss".into(),
        data: Some(Data::Gauge(Gauge {
            data_points: vec![NumberDataPoint {
                time_unix_nano: 1_700_000_000_000_000_000,
                value: Some(NumberValue::AsDouble(v)),
                ..Default::default()
            }],
        })),
        ..Default::default()
    }])
}

const LOSS: &str = r#"train_loss{job="trainer"}"#;

async fn post(r: &Running, content_type: &str, encoding: Option<&str>, body: Vec<u8>) -> (u16, String, Vec<u8>) {
    post_to(r, "/v1/metrics", content_type, encoding, body).await
}

async fn post_to(
    r: &Running,
    path: &str,
    content_type: &str,
    encoding: Option<&str>,
    body: Vec<u8>,
) -> (u16, String, Vec<u8>) {
    let client = reqwest::Client::new();
    let mut req = client
        .post(format!("http://{}{path}", r.http))
        .header("content-type", content_type)
        .body(body);
    if let Some(e) = encoding {
        req = req.header("content-encoding", e);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let ct = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, ct, resp.bytes().await.unwrap().to_vec())
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protobuf_json_and_gzip_bodies_are_accepted() {
    let r = Running::start("").await;

    let (status, ct, body) = post(&r, "application/x-protobuf", None, loss(1.0).encode_to_vec()).await;
    assert_eq!((status, ct.as_str()), (200, "application/x-protobuf"));
    let response = ExportMetricsServiceResponse::decode(&body[..]).unwrap();
    assert_eq!(response.partial_success, None);
    assert!(r.wait_for(|l| l.get(LOSS) == Some(&1.0)).await, "{:?}", r.latest());

    let json = serde_json::to_vec(&loss(2.0)).unwrap();
    let (status, ct, body) = post(&r, "application/json; charset=utf-8", None, json).await;
    assert_eq!(
        (status, ct.as_str()),
        (200, "application/json"),
        "{}",
        String::from_utf8_lossy(&body)
    );
    serde_json::from_slice::<serde_json::Value>(&body).unwrap();
    assert!(r.wait_for(|l| l.get(LOSS) == Some(&2.0)).await, "{:?}", r.latest());

    let (status, _, _) = post(
        &r,
        "application/x-protobuf",
        Some("gzip"),
        gzip(&loss(3.0).encode_to_vec()),
    )
    .await;
    assert_eq!(status, 200);
    assert!(r.wait_for(|l| l.get(LOSS) == Some(&3.0)).await, "{:?}", r.latest());

    // A hand-written OTLP JSON body, with the int64-as-string encoding the spec uses.
    let handwritten = r#"{"resourceMetrics":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"trainer"}}]},
        "scopeMetrics":[{"metrics":[{"name":"train.loss","gauge":{"dataPoints":[{"timeUnixNano":"1700000000000000000","asDouble":4.0}]}}]}]}]}"#;
    let (status, _, body) = post(&r, "application/json", None, handwritten.as_bytes().to_vec()).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert!(r.wait_for(|l| l.get(LOSS) == Some(&4.0)).await, "{:?}", r.latest());
    assert_eq!(r.telemetry.errors(), 0);
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_the_right_status_are_counted_and_the_receiver_stays_up() {
    let r = Running::start("").await;
    let pb = "application/x-protobuf";

    let (status, ct, body) = post(&r, pb, None, b"\x0a\xff\xff\xff\xff\x0f garbage".to_vec()).await;
    assert_eq!((status, ct.as_str()), (400, pb));
    let s = RpcStatus::decode(&body[..]).unwrap();
    assert_eq!(s.code, tonic::Code::InvalidArgument as i32);
    assert!(s.message.contains("protobuf"), "{}", s.message);

    let (status, ct, body) = post(&r, "application/json", None, b"{not json".to_vec()).await;
    assert_eq!((status, ct.as_str()), (400, "application/json"));
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["code"], 3);

    let (status, _, body) = post(&r, "text/plain", None, loss(1.0).encode_to_vec()).await;
    assert_eq!(status, 415, "{}", String::from_utf8_lossy(&body));
    assert!(String::from_utf8_lossy(&body).contains("application/x-protobuf"));

    let (status, _, _) = post(&r, pb, Some("br"), loss(1.0).encode_to_vec()).await;
    assert_eq!(status, 415);

    // The test receiver takes at most 64 KiB, as sent and after decompression.
    let (status, _, body) = post(&r, pb, None, vec![0u8; 100_000]).await;
    assert_eq!(status, 413);
    assert!(RpcStatus::decode(&body[..]).unwrap().message.contains("65536"));
    let bomb = gzip(&vec![0u8; 1_000_000]);
    assert!(bomb.len() < 65536);
    let (status, _, _) = post(&r, pb, Some("gzip"), bomb).await;
    assert_eq!(status, 413);
    let (status, _, _) = post(&r, pb, Some("gzip"), b"not gzip at all".to_vec()).await;
    assert_eq!(status, 400);

    let (status, _, body) = post_to(&r, "/v1/traces", pb, None, Vec::new()).await;
    assert_eq!(status, 404);
    assert!(RpcStatus::decode(&body[..]).unwrap().message.contains("metrics only"));
    let (status, _, _) = post_to(&r, "/v1/logs", pb, None, Vec::new()).await;
    assert_eq!(status, 404);
    let get = reqwest::get(format!("http://{}/v1/metrics", r.http)).await.unwrap();
    assert_eq!(get.status().as_u16(), 405);

    assert_eq!(r.telemetry.errors(), 10);
    let (status, _, _) = post(&r, pb, None, loss(9.0).encode_to_vec()).await;
    assert_eq!(status, 200, "the receiver still serves");
    assert!(r.wait_for(|l| l.get(LOSS) == Some(&9.0)).await);
    assert_eq!(r.telemetry.errors(), 10);
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn untranslatable_points_come_back_as_partial_success() {
    let r = Running::start("").await;
    let mut req = loss(5.0);
    req.resource_metrics[0].scope_metrics[0].metrics.push(Metric {
        name: "step".into(),
        data: Some(Data::ExponentialHistogram(ExponentialHistogram {
            data_points: vec![ExponentialHistogramDataPoint::default()],
            aggregation_temporality: 2,
        })),
        ..Default::default()
    });
    let (status, _, body) = post(&r, "application/x-protobuf", None, req.encode_to_vec()).await;
    assert_eq!(status, 200);
    let partial = ExportMetricsServiceResponse::decode(&body[..])
        .unwrap()
        .partial_success
        .unwrap();
    assert_eq!(partial.rejected_data_points, 1);
    assert!(
        partial.error_message.contains("exponential"),
        "{}",
        partial.error_message
    );
    assert!(
        r.wait_for(|l| l.get(LOSS) == Some(&5.0)).await,
        "the rest still goes through"
    );
    assert_eq!(r.telemetry.discarded("rejected"), 1);
    r.stop().await;
}
