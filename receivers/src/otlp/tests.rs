//! Translation tests: every metric type, suffix rules, delta to cumulative, resource attributes
//! and the label cache.

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use opentelemetry_proto::tonic::metrics::v1::number_data_point::Value as NumberValue;
use opentelemetry_proto::tonic::metrics::v1::summary_data_point::ValueAtQuantile;
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, ExponentialHistogram, ExponentialHistogramDataPoint, Gauge, Histogram, HistogramDataPoint,
    Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, Summary, SummaryDataPoint,
};
use opentelemetry_proto::tonic::resource::v1::Resource;

use super::config::OtlpConfig;
use super::translate::{Settings, Translation, Translator};
use nodetel_core::MetricType;
use nodetel_core::sample::is_stale_nan;

const T0: u64 = 1_700_000_000_000_000_000;
const SEC: u64 = 1_000_000_000;

fn kv(k: &str, v: &str) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(AnyValue {
            value: Some(Value::StringValue(v.into())),
        }),
        ..Default::default()
    }
}

fn request(resource: Vec<KeyValue>, metrics: Vec<Metric>) -> ExportMetricsServiceRequest {
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: resource,
                ..Default::default()
            }),
            scope_metrics: vec![ScopeMetrics {
                scope: Some(InstrumentationScope {
                    name: "train".into(),
                    version: "1.0".into(),
                    ..Default::default()
                }),
                metrics,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
}

fn service() -> Vec<KeyValue> {
    vec![kv("service.name", "trainer"), kv("service.instance.id", "node-1")]
}

fn metric(name: &str, unit: &str, data: Data) -> Metric {
    Metric {
        name: name.into(),
        unit: unit.into(),
        description: format!("about {name}"),
        data: Some(data),
        ..Default::default()
    }
}

fn number(attrs: Vec<KeyValue>, time: u64, v: f64) -> NumberDataPoint {
    NumberDataPoint {
        attributes: attrs,
        start_time_unix_nano: T0,
        time_unix_nano: time,
        value: Some(NumberValue::AsDouble(v)),
        ..Default::default()
    }
}

fn sum(monotonic: bool, temporality: AggregationTemporality, points: Vec<NumberDataPoint>) -> Data {
    Data::Sum(Sum {
        data_points: points,
        aggregation_temporality: temporality as i32,
        is_monotonic: monotonic,
    })
}

fn settings() -> Settings {
    Settings::from(&OtlpConfig::default())
}

/// The batch as sorted `series value` lines, without `target_info`.
fn lines(t: &Translation) -> Vec<String> {
    let mut out: Vec<String> = t
        .batch
        .series
        .iter()
        .filter(|s| s.labels.metric_name() != Some("target_info"))
        .map(|s| format!("{} {}", s.labels, s.samples[0].value))
        .collect();
    out.sort();
    out
}

#[test]
fn gauges_and_counters_get_prometheus_names_and_service_labels() {
    let mut t = Translator::from_settings(settings());
    let req = request(
        service(),
        vec![
            metric(
                "train.loss",
                "",
                Data::Gauge(Gauge {
                    data_points: vec![number(vec![kv("rank", "0")], T0 + SEC, 2.5)],
                }),
            ),
            metric(
                "train.tokens",
                "{token}",
                sum(
                    true,
                    AggregationTemporality::Cumulative,
                    vec![number(vec![kv("rank", "0")], T0 + SEC, 1000.0)],
                ),
            ),
            metric(
                "queue.depth",
                "1",
                sum(
                    false,
                    AggregationTemporality::Cumulative,
                    vec![number(vec![], T0 + SEC, -3.0)],
                ),
            ),
            metric(
                "gpu.util",
                "1",
                Data::Gauge(Gauge {
                    data_points: vec![number(vec![], T0 + SEC, 0.5)],
                }),
            ),
        ],
    );
    let out = t.translate(&req, 0);
    assert_eq!(out.rejected, 0);
    let scope = r#"otel_scope_name="train",otel_scope_version="1.0""#;
    assert_eq!(
        lines(&out),
        [
            format!(r#"gpu_util_ratio{{instance="node-1",job="trainer",{scope}}} 0.5"#),
            format!(r#"queue_depth_ratio{{instance="node-1",job="trainer",{scope}}} -3"#),
            format!(r#"train_loss{{instance="node-1",job="trainer",{scope},rank="0"}} 2.5"#),
            format!(r#"train_tokens_total{{instance="node-1",job="trainer",{scope},rank="0"}} 1000"#),
        ]
    );
    assert_eq!(
        out.batch.series[0].samples[0].timestamp_ms,
        ((T0 + SEC) / 1_000_000) as i64
    );
    let kinds: Vec<_> = out.batch.metadata.iter().map(|m| (&*m.family, m.kind)).collect();
    assert!(
        kinds.contains(&("train_tokens_total", MetricType::Counter)),
        "{kinds:?}"
    );
    assert!(kinds.contains(&("queue_depth_ratio", MetricType::Gauge)), "{kinds:?}");
}

#[test]
fn suffixes_can_be_turned_off_and_scope_labels_disabled() {
    let mut config = OtlpConfig {
        add_metric_suffixes: false,
        disable_scope_info: true,
        ..OtlpConfig::default()
    };
    config.resource_to_telemetry_conversion.enabled = false;
    let mut t = Translator::from_settings(Settings::from(&config));
    let req = request(
        service(),
        vec![metric(
            "step.time",
            "s",
            sum(
                true,
                AggregationTemporality::Cumulative,
                vec![number(vec![], T0 + SEC, 4.0)],
            ),
        )],
    );
    assert_eq!(
        lines(&t.translate(&req, 0)),
        [r#"step_time{instance="node-1",job="trainer"} 4"#]
    );
}

#[test]
fn histograms_become_cumulative_buckets_sum_and_count() {
    let mut t = Translator::from_settings(settings());
    let point = HistogramDataPoint {
        attributes: vec![kv("op", "fwd")],
        start_time_unix_nano: T0,
        time_unix_nano: T0 + SEC,
        count: 6,
        sum: Some(2.25),
        bucket_counts: vec![1, 2, 3],
        explicit_bounds: vec![0.1, 0.5],
        ..Default::default()
    };
    let req = request(
        vec![kv("service.name", "trainer")],
        vec![metric(
            "step.duration",
            "s",
            Data::Histogram(Histogram {
                data_points: vec![point],
                aggregation_temporality: AggregationTemporality::Cumulative as i32,
            }),
        )],
    );
    let out = t.translate(&req, 0);
    let scope = r#"otel_scope_name="train",otel_scope_version="1.0""#;
    assert_eq!(
        lines(&out),
        [
            format!(r#"step_duration_seconds_bucket{{job="trainer",le="+Inf",op="fwd",{scope}}} 6"#),
            format!(r#"step_duration_seconds_bucket{{job="trainer",le="0.1",op="fwd",{scope}}} 1"#),
            format!(r#"step_duration_seconds_bucket{{job="trainer",le="0.5",op="fwd",{scope}}} 3"#),
            format!(r#"step_duration_seconds_count{{job="trainer",op="fwd",{scope}}} 6"#),
            format!(r#"step_duration_seconds_sum{{job="trainer",op="fwd",{scope}}} 2.25"#),
        ]
    );
    assert_eq!(out.batch.metadata[0].kind, MetricType::Histogram);
    assert_eq!(&*out.batch.metadata[0].family, "step_duration_seconds");
    assert_eq!(&*out.batch.metadata[0].unit, "seconds");
}

#[test]
fn summaries_become_quantile_series() {
    let point = SummaryDataPoint {
        time_unix_nano: T0,
        count: 10,
        sum: 5.0,
        quantile_values: vec![
            ValueAtQuantile {
                quantile: 0.5,
                value: 0.4,
            },
            ValueAtQuantile {
                quantile: 0.99,
                value: 0.9,
            },
        ],
        ..Default::default()
    };
    let config = OtlpConfig {
        disable_scope_info: true,
        ..OtlpConfig::default()
    };
    let mut t = Translator::from_settings(Settings::from(&config));
    let req = request(
        vec![kv("service.name", "api")],
        vec![metric(
            "latency",
            "ms",
            Data::Summary(Summary {
                data_points: vec![point],
            }),
        )],
    );
    assert_eq!(
        lines(&t.translate(&req, 0)),
        [
            r#"latency_milliseconds_count{job="api"} 10"#,
            r#"latency_milliseconds_sum{job="api"} 5"#,
            r#"latency_milliseconds{job="api",quantile="0.5"} 0.4"#,
            r#"latency_milliseconds{job="api",quantile="0.99"} 0.9"#,
        ]
    );
}

#[test]
fn delta_sums_and_histograms_accumulate_per_series() {
    let mut t = Translator::from_settings(settings());
    let delta = |time: u64, rank: &str, v: f64| {
        metric(
            "tokens",
            "",
            sum(
                true,
                AggregationTemporality::Delta,
                vec![number(vec![kv("rank", rank)], time, v)],
            ),
        )
    };
    let hist = |time: u64, counts: Vec<u64>, s: f64| {
        metric(
            "lat",
            "",
            Data::Histogram(Histogram {
                data_points: vec![HistogramDataPoint {
                    time_unix_nano: time,
                    count: counts.iter().sum(),
                    sum: Some(s),
                    bucket_counts: counts,
                    explicit_bounds: vec![1.0],
                    ..Default::default()
                }],
                aggregation_temporality: AggregationTemporality::Delta as i32,
            }),
        )
    };
    let values = |t: &mut Translator, metrics: Vec<Metric>| -> Vec<String> {
        let out = t.translate(&request(vec![], metrics), 0);
        assert_eq!(out.rejected, 0, "{:?}", out.error);
        let mut v: Vec<_> = out
            .batch
            .series
            .iter()
            .map(|s| {
                let extra = s.labels.get("rank").or(s.labels.get("le")).unwrap_or("");
                format!(
                    "{}{{{extra}}} {}",
                    s.labels.metric_name().unwrap_or(""),
                    s.samples[0].value
                )
            })
            .collect();
        v.sort();
        v
    };
    assert_eq!(
        values(&mut t, vec![delta(T0 + SEC, "0", 5.0), delta(T0 + SEC, "1", 1.0)]),
        ["tokens_total{0} 5", "tokens_total{1} 1"]
    );
    assert_eq!(
        values(
            &mut t,
            vec![delta(T0 + 2 * SEC, "0", 3.0), delta(T0 + 2 * SEC, "1", 0.0)]
        ),
        ["tokens_total{0} 8", "tokens_total{1} 1"]
    );
    assert_eq!(
        values(&mut t, vec![hist(T0 + SEC, vec![1, 1], 3.0)]),
        ["lat_bucket{+Inf} 2", "lat_bucket{1} 1", "lat_count{} 2", "lat_sum{} 3"]
    );
    assert_eq!(
        values(&mut t, vec![hist(T0 + 2 * SEC, vec![2, 0], 1.0)]),
        ["lat_bucket{+Inf} 4", "lat_bucket{1} 3", "lat_count{} 4", "lat_sum{} 4"]
    );
    // A point that is not newer than the last one of its series is rejected, not added twice.
    let out = t.translate(&request(vec![], vec![delta(T0 + 2 * SEC, "0", 100.0)]), 0);
    assert_eq!(out.rejected, 1);
    assert!(out.batch.series.is_empty());
    assert!(out.error.unwrap().contains("not newer"));
    // A newer point whose window starts before the series began comes from an older stream.
    let mut older = delta(T0 + 3 * SEC, "0", 100.0);
    if let Some(Data::Sum(s)) = older.data.as_mut() {
        s.data_points[0].start_time_unix_nano = T0 - SEC;
    }
    let out = t.translate(&request(vec![], vec![older]), 0);
    assert_eq!(out.rejected, 1);
    assert!(out.error.unwrap().contains("older stream"));
    assert_eq!(
        values(&mut t, vec![delta(T0 + 4 * SEC, "0", 2.0)]),
        ["tokens_total{0} 10"],
        "the refused points were not added"
    );
}

#[test]
fn resource_attributes_go_to_target_info_or_to_every_series() {
    let resource = vec![
        kv("service.name", "trainer"),
        kv("service.namespace", "ml"),
        kv("service.instance.id", "n1"),
        kv("host.name", "gpu-7"),
        kv("cloud.region", "us-east-1"),
    ];
    let gauge = || {
        metric(
            "loss",
            "",
            Data::Gauge(Gauge {
                data_points: vec![number(vec![], T0, 1.0)],
            }),
        )
    };
    let mut t = Translator::from_settings(settings());
    let out = t.translate(&request(resource.clone(), vec![gauge()]), 0);
    let info: Vec<_> = out
        .batch
        .series
        .iter()
        .filter(|s| s.labels.metric_name() == Some("target_info"))
        .map(|s| (s.labels.to_string(), s.samples[0]))
        .collect();
    assert_eq!(info.len(), 1);
    assert_eq!(
        info[0].0,
        r#"target_info{cloud_region="us-east-1",host_name="gpu-7",instance="n1",job="ml/trainer"}"#
    );
    assert_eq!(info[0].1.value, 1.0);
    assert_eq!(info[0].1.timestamp_ms, (T0 / 1_000_000) as i64);
    assert!(lines(&out)[0].starts_with(r#"loss{instance="n1",job="ml/trainer",otel_scope"#));

    let mut config = OtlpConfig::default();
    config.resource_to_telemetry_conversion.enabled = true;
    config.resource_to_telemetry_conversion.exclude_service_attributes = true;
    config.disable_scope_info = true;
    let mut t = Translator::from_settings(Settings::from(&config));
    let out = t.translate(&request(resource, vec![gauge()]), 0);
    assert_eq!(
        lines(&out),
        [r#"loss{cloud_region="us-east-1",host_name="gpu-7",instance="n1",job="ml/trainer"} 1"#]
    );
}

#[test]
fn slurm_job_and_rank_resource_attributes_are_labels_on_every_series() {
    let mut resource = service();
    resource.extend([
        kv("slurm.job.id", "42"),
        kv("rank", "3"),
        kv("local_rank", "1"),
        kv("host.name", "gpu-7"),
    ]);
    let gauge = metric(
        "loss",
        "",
        Data::Gauge(Gauge {
            data_points: vec![number(vec![kv("rank", "point-level")], T0, 1.0)],
        }),
    );
    let config = OtlpConfig {
        disable_scope_info: true,
        ..OtlpConfig::default()
    };
    let mut t = Translator::from_settings(Settings::from(&config));
    let out = t.translate(&request(resource, vec![gauge]), 0);
    assert_eq!(
        lines(&out),
        [r#"loss{instance="node-1",job="trainer",local_rank="1",rank="3",slurm_job_id="42"} 1"#],
        "the resource's rank wins over a point attribute of the same name"
    );
}

#[test]
fn colliding_attribute_names_are_joined_and_the_resource_wins_job() {
    let config = OtlpConfig {
        disable_scope_info: true,
        ..OtlpConfig::default()
    };
    let mut t = Translator::from_settings(Settings::from(&config));
    let attrs = vec![kv("a.b", "1"), kv("a_b", "2"), kv("job", "mine"), kv("0x", "y")];
    let req = request(
        vec![kv("service.name", "svc")],
        vec![metric(
            "m",
            "",
            Data::Gauge(Gauge {
                data_points: vec![number(attrs, T0, 1.0)],
            }),
        )],
    );
    assert_eq!(lines(&t.translate(&req, 0)), [r#"m{a_b="1;2",job="svc",key_0x="y"} 1"#]);
}

#[test]
fn exponential_histograms_and_bad_points_are_rejected_and_reported() {
    let mut t = Translator::from_settings(settings());
    let exp = metric(
        "lat",
        "s",
        Data::ExponentialHistogram(ExponentialHistogram {
            data_points: vec![
                ExponentialHistogramDataPoint::default(),
                ExponentialHistogramDataPoint::default(),
            ],
            aggregation_temporality: AggregationTemporality::Cumulative as i32,
        }),
    );
    let bad_hist = metric(
        "h",
        "",
        Data::Histogram(Histogram {
            data_points: vec![HistogramDataPoint {
                bucket_counts: vec![1, 2, 3],
                explicit_bounds: vec![1.0],
                ..Default::default()
            }],
            aggregation_temporality: AggregationTemporality::Cumulative as i32,
        }),
    );
    let bad_name = metric(
        "...",
        "",
        Data::Gauge(Gauge {
            data_points: vec![number(vec![], T0, 1.0)],
        }),
    );
    let good = metric(
        "ok",
        "",
        Data::Gauge(Gauge {
            data_points: vec![number(vec![], T0, 1.0)],
        }),
    );
    let out = t.translate(&request(vec![], vec![exp, bad_hist, bad_name, good]), 0);
    assert_eq!(out.rejected, 4);
    assert!(out.error.as_deref().unwrap_or("").contains("exponential histograms"));
    assert_eq!(lines(&out).len(), 1, "the good metric still goes through");
}

#[test]
fn no_recorded_value_becomes_a_staleness_marker_and_missing_time_uses_now() {
    let mut t = Translator::from_settings(settings());
    let mut p = number(vec![], 0, 7.0);
    p.flags = 1;
    let out = t.translate(
        &request(
            vec![],
            vec![metric("m", "", Data::Gauge(Gauge { data_points: vec![p] }))],
        ),
        1234,
    );
    assert!(is_stale_nan(out.batch.series[0].samples[0].value));
    assert_eq!(out.batch.series[0].samples[0].timestamp_ms, 1234);
}

#[test]
fn repeated_exports_reuse_the_same_label_sets() {
    let mut t = Translator::from_settings(settings());
    let req = |v: f64| {
        request(
            service(),
            vec![metric(
                "m",
                "",
                Data::Gauge(Gauge {
                    data_points: vec![number(vec![kv("b", "2"), kv("a", "1")], T0, v)],
                }),
            )],
        )
    };
    let first = t.translate(&req(1.0), 0);
    // Same series with attributes in another order: still one cache entry, same allocation.
    let mut reordered = req(2.0);
    if let Some(Data::Gauge(g)) = &mut reordered.resource_metrics[0].scope_metrics[0].metrics[0].data {
        g.data_points[0].attributes.reverse();
    }
    let second = t.translate(&reordered, 0);
    assert!(first.batch.series[0].labels.ptr_eq(&second.batch.series[0].labels));
    assert_eq!(t.cached_points(), 1);
    assert_eq!(second.batch.series[0].samples[0].value, 2.0);
}

/// A request with every metric type, as the seed of the fuzz test.
fn rich_request() -> ExportMetricsServiceRequest {
    let hist = HistogramDataPoint {
        attributes: vec![kv("op", "fwd")],
        time_unix_nano: T0,
        count: 3,
        sum: Some(1.5),
        bucket_counts: vec![1, 1, 1],
        explicit_bounds: vec![0.1, 1.0],
        ..Default::default()
    };
    let summary = SummaryDataPoint {
        time_unix_nano: T0,
        count: 2,
        sum: 1.0,
        quantile_values: vec![ValueAtQuantile {
            quantile: 0.5,
            value: 0.5,
        }],
        ..Default::default()
    };
    request(
        service(),
        vec![
            metric(
                "g",
                "1",
                Data::Gauge(Gauge {
                    data_points: vec![number(vec![kv("a", "b")], T0, 1.0)],
                }),
            ),
            metric(
                "c",
                "s",
                sum(true, AggregationTemporality::Delta, vec![number(vec![], T0, 2.0)]),
            ),
            metric(
                "h",
                "ms",
                Data::Histogram(Histogram {
                    data_points: vec![hist],
                    aggregation_temporality: AggregationTemporality::Delta as i32,
                }),
            ),
            metric(
                "s",
                "",
                Data::Summary(Summary {
                    data_points: vec![summary],
                }),
            ),
        ],
    )
}

#[test]
fn mutated_bodies_never_panic_the_decode_and_translate_path() {
    use prost::Message;
    use std::io::Write;
    let seed = rich_request().encode_to_vec();
    let json = serde_json::to_vec(&rich_request()).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&seed).unwrap();
    let gz = gz.finish().unwrap();
    let mut t = Translator::from_settings(settings());
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut decoded = 0;
    for round in 0..3000 {
        let base = match round % 3 {
            0 => &seed,
            1 => &json,
            _ => &gz,
        };
        let mut body = base.clone();
        for _ in 0..1 + next() % 4 {
            let at = (next() as usize) % body.len().max(1);
            match next() % 4 {
                0 if !body.is_empty() => body[at] ^= 1 << (next() % 8),
                1 if !body.is_empty() => body[at] = next() as u8,
                2 => body.insert(at.min(body.len()), next() as u8),
                _ => body.truncate(at),
            }
        }
        let request = match round % 3 {
            0 => ExportMetricsServiceRequest::decode(&body[..]).ok(),
            1 => serde_json::from_slice::<ExportMetricsServiceRequest>(&body).ok(),
            _ => super::http::gunzip(&body, 1 << 20)
                .ok()
                .and_then(|b| ExportMetricsServiceRequest::decode(b).ok()),
        };
        if let Some(request) = request {
            decoded += 1;
            let out = t.translate(&request, round);
            for s in &out.batch.series {
                assert!(s.labels.metric_name().is_some(), "every series has a name");
            }
        }
    }
    assert!(
        decoded > 100,
        "the mutations should still decode often enough to reach translation ({decoded})"
    );
}

#[test]
fn new_series_past_the_limit_are_rejected_but_known_ones_still_flow() {
    let mut t = Translator::from_settings(settings());
    t.set_max_series(2);
    let req = |ranks: &[&str], v: f64| {
        let points = ranks.iter().map(|r| number(vec![kv("rank", r)], T0, v)).collect();
        request(
            vec![],
            vec![metric("m", "", Data::Gauge(Gauge { data_points: points }))],
        )
    };
    let out = t.translate(&req(&["0", "1", "2"], 1.0), 0);
    assert_eq!((out.batch.len(), out.rejected), (2, 1));
    assert!(out.error.unwrap().contains("2 series"));
    let out = t.translate(&req(&["0", "1"], 2.0), 0);
    assert_eq!((out.batch.len(), out.rejected), (2, 0));
    assert_eq!(t.cached_points(), 2);
}
