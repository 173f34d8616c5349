//! Prometheus series -> OTLP metrics: the reverse of the OTLP receiver's translation.
//!
//! The batch metadata says which family a series belongs to and its type. Counters become
//! cumulative monotonic sums; gauges, unknown and untyped series become gauges; `_bucket`/`_sum`/
//! `_count` series of a histogram family are regrouped into one histogram point per label set and
//! timestamp, and a summary's `{quantile}`/`_sum`/`_count` series into a summary point. `job` and
//! `instance` become the resource's `service.name` and `service.instance.id`, as the Collector's
//! Prometheus receiver does; the other labels become point attributes.

use std::collections::{BTreeMap, HashMap};

use nodetel_core::labels::METRIC_NAME;
use nodetel_core::sample::is_stale_nan;
use nodetel_core::{Batch, Labels, MetricMetadata, MetricType};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use opentelemetry_proto::tonic::metrics::v1::number_data_point::Value as NumberValue;
use opentelemetry_proto::tonic::metrics::v1::summary_data_point::ValueAtQuantile;
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, Gauge, Histogram, HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics,
    ScopeMetrics, Sum, Summary, SummaryDataPoint,
};
use opentelemetry_proto::tonic::resource::v1::Resource;

const FLAG_NO_RECORDED_VALUE: u32 = 1;
const SCOPE_NAME: &str = "nodetel";

/// What a series is within its family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Counter,
    Gauge,
    Bucket,
    Sum,
    Count,
    Quantile,
}

/// Finds the family and role of a series by its name and the batch metadata.
fn classify<'a>(
    name: &'a str,
    labels: &Labels,
    meta: &HashMap<&str, &'a MetricMetadata>,
) -> (&'a str, Role, MetricType) {
    if let Some(m) = meta.get(name) {
        return match m.kind {
            MetricType::Counter => (name, Role::Counter, MetricType::Counter),
            MetricType::Summary if labels.get("quantile").is_some() => (name, Role::Quantile, MetricType::Summary),
            _ => (name, Role::Gauge, MetricType::Gauge),
        };
    }
    for (suffix, role) in [
        ("_bucket", Role::Bucket),
        ("_sum", Role::Sum),
        ("_count", Role::Count),
        ("_total", Role::Counter),
    ] {
        let Some(family) = name.strip_suffix(suffix) else {
            continue;
        };
        let Some(m) = meta.get(family) else { continue };
        match (m.kind, role) {
            (MetricType::Histogram, Role::Bucket | Role::Sum | Role::Count) => return (&m.family, role, m.kind),
            (MetricType::Summary, Role::Sum | Role::Count) => return (&m.family, role, m.kind),
            (MetricType::Counter, Role::Counter) => return (name, role, m.kind),
            _ => {}
        }
    }
    (name, Role::Gauge, MetricType::Gauge)
}

fn attribute(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue {
            value: Some(Value::StringValue(value.to_owned())),
        }),
        ..Default::default()
    }
}

/// Point attributes: every label but the name, the resource labels and `skip`.
fn attributes(labels: &Labels, skip: &str) -> Vec<KeyValue> {
    labels
        .iter()
        .filter(|(n, _)| !matches!(*n, METRIC_NAME | "job" | "instance") && *n != skip)
        .map(|(n, v)| attribute(n, v))
        .collect()
}

/// One metric being assembled, with the index of its grouped points.
struct Building {
    metric: Metric,
    /// (attribute labels, timestamp) -> index of the point in the metric's data.
    points: HashMap<(Vec<(String, String)>, i64), usize>,
}

fn group_key(labels: &Labels, skip: &str, ts: i64) -> (Vec<(String, String)>, i64) {
    let attrs = labels
        .iter()
        .filter(|(n, _)| !matches!(*n, METRIC_NAME | "job" | "instance") && *n != skip)
        .map(|(n, v)| (n.to_owned(), v.to_owned()))
        .collect();
    (attrs, ts)
}

fn ns(ms: i64) -> u64 {
    (ms.max(0) as u64).saturating_mul(1_000_000)
}

/// The metrics of one resource, and the index of each family in them.
type ResourceMetricsBuilding = (Vec<Building>, HashMap<String, usize>);

/// Histogram points collect `(le, cumulative count)` pairs first; bounds are fixed at the end.
type PendingBuckets = HashMap<(usize, usize), Vec<(f64, f64)>>;

/// Builds the OTLP request for a batch.
pub(crate) fn to_request(batch: &Batch) -> ExportMetricsServiceRequest {
    let meta: HashMap<&str, &MetricMetadata> = batch.metadata.iter().map(|m| (&*m.family, &**m)).collect();
    // (job, instance) -> metrics by family name, in first-seen order.
    let mut resources: BTreeMap<(String, String), ResourceMetricsBuilding> = BTreeMap::new();
    let mut pending: HashMap<(String, String), PendingBuckets> = HashMap::new();
    for series in &batch.series {
        let Some(name) = series.labels.metric_name() else {
            continue;
        };
        let (family, role, kind) = classify(name, &series.labels, &meta);
        let rkey = (
            series.labels.get("job").unwrap_or("").to_owned(),
            series.labels.get("instance").unwrap_or("").to_owned(),
        );
        let (metrics, index) = resources.entry(rkey.clone()).or_default();
        let mi = *index.entry(family.to_owned()).or_insert_with(|| {
            let m = meta.get(family);
            metrics.push(Building {
                metric: Metric {
                    name: family.to_owned(),
                    description: m.map_or(String::new(), |m| m.help.to_string()),
                    unit: m.map_or(String::new(), |m| m.unit.to_string()),
                    data: Some(empty_data(kind)),
                    ..Default::default()
                },
                points: HashMap::new(),
            });
            metrics.len() - 1
        });
        let building = &mut metrics[mi];
        for sample in &series.samples {
            let stale = is_stale_nan(sample.value);
            let flags = if stale { FLAG_NO_RECORDED_VALUE } else { 0 };
            let time_unix_nano = ns(sample.timestamp_ms);
            match (&mut building.metric.data, role) {
                (Some(Data::Sum(s)), _) => s.data_points.push(NumberDataPoint {
                    attributes: attributes(&series.labels, ""),
                    time_unix_nano,
                    flags,
                    value: Some(NumberValue::AsDouble(sample.value)),
                    ..Default::default()
                }),
                (Some(Data::Gauge(g)), _) => g.data_points.push(NumberDataPoint {
                    attributes: attributes(&series.labels, ""),
                    time_unix_nano,
                    flags,
                    value: Some(NumberValue::AsDouble(sample.value)),
                    ..Default::default()
                }),
                (Some(Data::Histogram(h)), role) => {
                    let key = group_key(&series.labels, "le", sample.timestamp_ms);
                    let pi = *building.points.entry(key).or_insert_with(|| {
                        h.data_points.push(HistogramDataPoint {
                            attributes: attributes(&series.labels, "le"),
                            time_unix_nano,
                            ..Default::default()
                        });
                        h.data_points.len() - 1
                    });
                    let p = &mut h.data_points[pi];
                    p.flags |= flags;
                    match role {
                        Role::Sum => p.sum = Some(sample.value),
                        Role::Count => p.count = sample.value as u64,
                        _ => {
                            let le = series.labels.get("le").and_then(parse_le);
                            if let Some(le) = le {
                                let buckets = pending.entry(rkey.clone()).or_default();
                                buckets.entry((mi, pi)).or_default().push((le, sample.value));
                            }
                        }
                    }
                }
                (Some(Data::Summary(s)), role) => {
                    let key = group_key(&series.labels, "quantile", sample.timestamp_ms);
                    let pi = *building.points.entry(key).or_insert_with(|| {
                        s.data_points.push(SummaryDataPoint {
                            attributes: attributes(&series.labels, "quantile"),
                            time_unix_nano,
                            ..Default::default()
                        });
                        s.data_points.len() - 1
                    });
                    let p = &mut s.data_points[pi];
                    p.flags |= flags;
                    match role {
                        Role::Sum => p.sum = sample.value,
                        Role::Count => p.count = sample.value as u64,
                        _ => {
                            if let Some(q) = series.labels.get("quantile").and_then(|q| q.parse().ok()) {
                                p.quantile_values.push(ValueAtQuantile {
                                    quantile: q,
                                    value: sample.value,
                                });
                            }
                        }
                    }
                }
                _ => {}
            }
        }
    }
    let mut resource_metrics = Vec::with_capacity(resources.len());
    for (rkey, (mut metrics, _)) in resources {
        if let Some(buckets) = pending.remove(&rkey) {
            for ((mi, pi), les) in buckets {
                if let Some(Data::Histogram(h)) = &mut metrics[mi].metric.data {
                    set_buckets(&mut h.data_points[pi], les);
                }
            }
        }
        let mut attrs = Vec::new();
        if !rkey.0.is_empty() {
            attrs.push(attribute("service.name", &rkey.0));
        }
        if !rkey.1.is_empty() {
            attrs.push(attribute("service.instance.id", &rkey.1));
        }
        resource_metrics.push(ResourceMetrics {
            resource: Some(Resource {
                attributes: attrs,
                ..Default::default()
            }),
            scope_metrics: vec![ScopeMetrics {
                scope: Some(InstrumentationScope {
                    name: SCOPE_NAME.into(),
                    version: env!("CARGO_PKG_VERSION").into(),
                    ..Default::default()
                }),
                metrics: metrics.into_iter().map(|b| b.metric).collect(),
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        });
    }
    ExportMetricsServiceRequest { resource_metrics }
}

fn parse_le(le: &str) -> Option<f64> {
    match le {
        "+Inf" | "Inf" | "+inf" | "inf" => Some(f64::INFINITY),
        other => other.parse().ok(),
    }
}

/// Turns cumulative `(le, count)` pairs into OTLP bounds and per-bucket counts.
fn set_buckets(p: &mut HistogramDataPoint, mut les: Vec<(f64, f64)>) {
    les.sort_by(|a, b| a.0.total_cmp(&b.0));
    les.dedup_by(|a, b| a.0 == b.0);
    if les.last().is_none_or(|(le, _)| le.is_finite()) {
        // No +Inf bucket: the count is the total, as the exposition format defines it.
        les.push((f64::INFINITY, p.count as f64));
    }
    let mut previous = 0.0;
    for (le, cumulative) in les {
        if le.is_finite() {
            p.explicit_bounds.push(le);
        }
        p.bucket_counts.push((cumulative - previous).max(0.0) as u64);
        previous = cumulative;
    }
}

fn empty_data(kind: MetricType) -> Data {
    match kind {
        MetricType::Counter => Data::Sum(Sum {
            data_points: Vec::new(),
            aggregation_temporality: AggregationTemporality::Cumulative as i32,
            is_monotonic: true,
        }),
        MetricType::Histogram => Data::Histogram(Histogram {
            data_points: Vec::new(),
            aggregation_temporality: AggregationTemporality::Cumulative as i32,
        }),
        MetricType::Summary => Data::Summary(Summary {
            data_points: Vec::new(),
        }),
        _ => Data::Gauge(Gauge {
            data_points: Vec::new(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use nodetel_core::sample::stale_nan;
    use nodetel_core::{Labels, Sample};

    use super::*;

    fn push(b: &mut Batch, pairs: &[(&str, &str)], v: f64) {
        b.push(Labels::from_pairs(pairs.iter().copied()).unwrap(), Sample::new(1000, v));
    }

    #[test]
    fn series_are_regrouped_by_family_type_and_resource() {
        let mut b = Batch::new();
        b.metadata.push(Arc::new(MetricMetadata::new(
            "req_total",
            MetricType::Counter,
            "requests",
        )));
        b.metadata
            .push(Arc::new(MetricMetadata::new("lat", MetricType::Histogram, "latency")));
        b.metadata
            .push(Arc::new(MetricMetadata::new("rpc", MetricType::Summary, "")));
        let id = [("job", "api"), ("instance", "h1")];
        let with = |n: &'static str, extra: &[(&'static str, &'static str)]| {
            let mut v = vec![(METRIC_NAME, n)];
            v.extend_from_slice(&id);
            v.extend_from_slice(extra);
            v
        };
        push(&mut b, &with("req_total", &[("code", "200")]), 7.0);
        push(&mut b, &with("lat_bucket", &[("le", "0.5")]), 2.0);
        push(&mut b, &with("lat_bucket", &[("le", "+Inf")]), 5.0);
        push(&mut b, &with("lat_bucket", &[("le", "0.1")]), 1.0);
        push(&mut b, &with("lat_sum", &[]), 3.5);
        push(&mut b, &with("lat_count", &[]), 5.0);
        push(&mut b, &with("rpc", &[("quantile", "0.9")]), 0.3);
        push(&mut b, &with("rpc_sum", &[]), 9.0);
        push(&mut b, &with("rpc_count", &[]), 30.0);
        push(&mut b, &with("temp", &[]), stale_nan());
        push(&mut b, &[(METRIC_NAME, "other")], 1.0);

        let req = to_request(&b);
        assert_eq!(req.resource_metrics.len(), 2, "one resource per job/instance");
        let api = &req.resource_metrics[1];
        let res = &api.resource.as_ref().unwrap().attributes;
        assert_eq!(res[0].key, "service.name");
        assert_eq!(res[1].key, "service.instance.id");
        let metrics = &api.scope_metrics[0].metrics;
        let names: Vec<_> = metrics.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["req_total", "lat", "rpc", "temp"]);
        let Some(Data::Sum(s)) = &metrics[0].data else {
            panic!("counter")
        };
        assert!(s.is_monotonic);
        assert_eq!(s.data_points[0].attributes[0].key, "code");
        let Some(Data::Histogram(h)) = &metrics[1].data else {
            panic!("histogram")
        };
        assert_eq!(h.data_points.len(), 1);
        let p = &h.data_points[0];
        assert_eq!(p.explicit_bounds, [0.1, 0.5]);
        assert_eq!(p.bucket_counts, [1, 1, 3]);
        assert_eq!((p.sum, p.count), (Some(3.5), 5));
        assert!(p.attributes.is_empty());
        let Some(Data::Summary(s)) = &metrics[2].data else {
            panic!("summary")
        };
        assert_eq!(s.data_points[0].quantile_values[0].quantile, 0.9);
        assert_eq!((s.data_points[0].sum, s.data_points[0].count), (9.0, 30));
        let Some(Data::Gauge(g)) = &metrics[3].data else {
            panic!("gauge")
        };
        assert_eq!(g.data_points[0].flags, FLAG_NO_RECORDED_VALUE);
        assert_eq!(g.data_points[0].time_unix_nano, 1_000_000_000);
    }
}
