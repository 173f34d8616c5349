//! OTLP -> Prometheus translation of one export: 64 ranks x (counter, up-down counter, gauge,
//! 10-bucket histogram) = 256 points and 1,088 series, the steady state (every series cached) and
//! the protobuf decode before it.
#![allow(missing_docs, clippy::unwrap_used)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use nodetel_receivers::otlp::{OtlpConfig, Translator};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use opentelemetry_proto::tonic::metrics::v1::number_data_point::Value as NumberValue;
use opentelemetry_proto::tonic::metrics::v1::{
    Gauge, Histogram, HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;

fn kv(k: &str, v: &str) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(AnyValue {
            value: Some(Value::StringValue(v.into())),
        }),
        ..Default::default()
    }
}

fn request(ranks: usize) -> ExportMetricsServiceRequest {
    let t = 1_700_000_000_000_000_000;
    let attrs = |r: usize| vec![kv("rank", &r.to_string()), kv("host.gpu", "0")];
    let number = |r, v| NumberDataPoint {
        attributes: attrs(r),
        start_time_unix_nano: t,
        time_unix_nano: t + 1,
        value: Some(NumberValue::AsDouble(v)),
        ..Default::default()
    };
    let points = |f: &dyn Fn(usize) -> NumberDataPoint| (0..ranks).map(f).collect::<Vec<_>>();
    let metric = |name: &str, unit: &str, data| Metric {
        name: name.into(),
        unit: unit.into(),
        data: Some(data),
        ..Default::default()
    };
    let bounds: Vec<f64> = (1..10).map(|i| f64::from(i) * 0.1).collect();
    let metrics = vec![
        metric(
            "train.tokens",
            "{token}",
            Data::Sum(Sum {
                data_points: points(&|r| number(r, 1e6)),
                aggregation_temporality: 2,
                is_monotonic: true,
            }),
        ),
        metric(
            "train.queue.depth",
            "",
            Data::Sum(Sum {
                data_points: points(&|r| number(r, 3.0)),
                aggregation_temporality: 2,
                is_monotonic: false,
            }),
        ),
        metric(
            "train.loss",
            "",
            Data::Gauge(Gauge {
                data_points: points(&|r| number(r, 2.5)),
            }),
        ),
        metric(
            "train.step.duration",
            "s",
            Data::Histogram(Histogram {
                data_points: (0..ranks)
                    .map(|r| HistogramDataPoint {
                        attributes: attrs(r),
                        time_unix_nano: t + 1,
                        count: 100,
                        sum: Some(42.0),
                        bucket_counts: vec![10; 10],
                        explicit_bounds: bounds.clone(),
                        ..Default::default()
                    })
                    .collect(),
                aggregation_temporality: 2,
            }),
        ),
    ];
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: vec![kv("service.name", "trainer"), kv("service.instance.id", "node-1")],
                ..Default::default()
            }),
            scope_metrics: vec![ScopeMetrics {
                scope: Some(InstrumentationScope {
                    name: "train".into(),
                    ..Default::default()
                }),
                metrics,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
}

fn bench(c: &mut Criterion) {
    let req = request(64);
    let body = req.encode_to_vec();
    let mut translator = Translator::new(&OtlpConfig::default());
    let series = translator.translate(&req, 0).batch.len() as u64;
    let mut g = c.benchmark_group("otlp");
    g.throughput(Throughput::Elements(series));
    g.bench_function("translate_cached", |b| b.iter(|| translator.translate(&req, 0)));
    g.bench_function("decode_and_translate_cached", |b| {
        b.iter(|| {
            let req = ExportMetricsServiceRequest::decode(&body[..]).unwrap();
            translator.translate(&req, 0)
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
