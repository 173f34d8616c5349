//! OTLP metrics -> Prometheus series, following the Collector's translator (PEERS.md §2.7).
//!
//! - Gauges and non-monotonic sums become gauges; monotonic sums become counters (`_total`).
//! - Histograms become `_bucket{le}` (cumulative, with `+Inf`), `_sum` and `_count`; summaries
//!   become `{quantile}` series plus `_sum` and `_count`.
//! - Delta sums and delta histograms are accumulated per series into cumulative values (the
//!   Collector's exporter drops them instead). A delta point not newer than the last one, or
//!   starting before its series began, is rejected.
//! - Exponential histograms are rejected and counted: the flat series model has no native
//!   histograms, and converting them to classic buckets would change the `le` set whenever the
//!   SDK rescales. The sender learns it from the OTLP partial-success response.
//! - `service.namespace/service.name` -> `job`, `service.instance.id` -> `instance`, and the
//!   sender's Slurm identity `slurm.job.id` -> `slurm_job_id`, `rank`, `local_rank` on every
//!   series; the other resource attributes go to one `target_info` series per resource, or to
//!   every series when `resource_to_telemetry_conversion` is on.
//! - The NoRecordedValue flag becomes the staleness marker.
//!
//! Label sets are cached per (resource, metric, scope, attribute set): a repeated export of the
//! same series only hashes its attributes and reuses the interned `Labels`.

use std::collections::{BTreeMap, HashMap, HashSet};

use foldhash::fast::RandomState;
use std::sync::Arc;

use nodetel_core::labels::{LabelError, METRIC_NAME};
use nodetel_core::sample::{now_ms, stale_nan};
use nodetel_core::{Batch, Labels, LabelsBuilder, MetricMetadata, MetricType, Sample};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use opentelemetry_proto::tonic::metrics::v1::number_data_point::Value as NumberValue;
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, HistogramDataPoint, Metric, NumberDataPoint, SummaryDataPoint,
};

use super::attributes::{find, label_value, put, put_attributes};
use super::config::OtlpConfig;
use super::names::{NameKind, float_label, label_name, metric_name, prometheus_unit};

/// Cache entries unused for this long are dropped, so a job's series do not outlive it in memory.
const IDLE_TTL_MS: i64 = 15 * 60 * 1000;
/// Most series tracked at once. A sender that puts an unbounded value (a step number, a
/// timestamp) into an attribute would otherwise grow memory until entries expire; past this,
/// points of new series are rejected (and reported in the partial-success response).
pub(crate) const MAX_SERIES: usize = 200_000;
/// How often the caches are swept.
const SWEEP_EVERY_MS: i64 = 60 * 1000;

const FLAG_NO_RECORDED_VALUE: u32 = 1;

const SERVICE_NAME: &str = "service.name";
const SERVICE_NAMESPACE: &str = "service.namespace";
const SERVICE_INSTANCE_ID: &str = "service.instance.id";

/// Resource attributes that name the Slurm job and rank of the sender. Like `job` and `instance`
/// they say who sent the series, so every series of the resource carries them, under the names
/// the `slurmattributes` processor uses by default (it then adds the job's name, user and
/// partition).
const JOB_ATTRIBUTES: [(&str, &str); 3] = [
    ("slurm.job.id", "slurm_job_id"),
    ("rank", "rank"),
    ("local_rank", "local_rank"),
];

/// What the translator does, from the receiver's config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Settings {
    pub(crate) add_suffixes: bool,
    /// `Some(exclude_service_attributes)` when resource attributes become labels.
    pub(crate) promote_resource: Option<bool>,
    pub(crate) scope_info: bool,
    pub(crate) target_info: bool,
}

impl From<&OtlpConfig> for Settings {
    fn from(c: &OtlpConfig) -> Self {
        let r = &c.resource_to_telemetry_conversion;
        Settings {
            add_suffixes: c.add_metric_suffixes,
            promote_resource: r.enabled.then_some(r.exclude_service_attributes),
            scope_info: !c.disable_scope_info,
            target_info: !c.disable_target_info,
        }
    }
}

/// The result of translating one request.
#[derive(Debug, Default)]
pub struct Translation {
    /// The series, with the metadata of their families.
    pub batch: Batch,
    /// Data points that could not be taken.
    pub rejected: u64,
    /// Why the first rejected point was rejected.
    pub error: Option<String>,
}

impl Translation {
    fn reject(&mut self, n: u64, why: impl FnOnce() -> String) {
        self.rejected += n;
        if self.error.is_none() {
            self.error = Some(why());
        }
    }
}

struct ResourceEntry {
    id: u64,
    /// Labels every series of the resource carries: promoted attributes, then `job`, `instance`.
    promoted: Vec<(String, String)>,
    identity: Vec<(String, String)>,
    target_info: Option<Labels>,
    last_seen_ms: i64,
}

struct MetricEntry {
    id: u64,
    /// The exposed name (for histograms and summaries, the base of `_bucket`/`_sum`/`_count`).
    name: Arc<str>,
    metadata: Arc<MetricMetadata>,
    last_seen_ms: i64,
}

/// Accumulated values of a delta series.
struct Accumulated {
    /// Start time of the first point: the cumulative series' start.
    start_ns: u64,
    last_time_ns: u64,
    values: Vec<f64>,
}

struct PointEntry {
    /// Number points: one set. Histograms: one per finite bound, `+Inf`, `_sum`, `_count`.
    /// Summaries: one per quantile, `_sum`, `_count`.
    labels: Vec<Labels>,
    /// The bounds or quantiles `labels` were built for.
    bounds: Vec<u64>,
    delta: Option<Accumulated>,
    last_seen_ms: i64,
}

/// Translates requests, keeping the label caches and the delta accumulators between them.
pub struct Translator {
    settings: Settings,
    // foldhash: these maps are looked up once per data point; SipHash's DoS resistance buys
    // little here, the keys come from senders on this node.
    resources: HashMap<Box<[u8]>, ResourceEntry, RandomState>,
    metrics: HashMap<Box<[u8]>, MetricEntry, RandomState>,
    points: HashMap<Box<[u8]>, PointEntry, RandomState>,
    target_info_meta: Arc<MetricMetadata>,
    next_id: u64,
    last_sweep_ms: i64,
    key: Vec<u8>,
    builder: LabelsBuilder,
    metadata_seen: HashSet<u64>,
    /// Reused buffers for a histogram's values and a summary's quantiles.
    values: Vec<f64>,
    quantiles: Vec<f64>,
    max_series: usize,
}

/// What a data point needs from its resource, metric and scope.
struct Context<'a> {
    resource: &'a ResourceEntry,
    metric: &'a MetricEntry,
    scope: Option<&'a InstrumentationScope>,
}

fn bits(v: &[f64]) -> impl Iterator<Item = u64> + '_ {
    v.iter().map(|f| f.to_bits())
}

fn ts_ms(time_unix_nano: u64, now: i64) -> i64 {
    if time_unix_nano == 0 {
        now
    } else {
        (time_unix_nano / 1_000_000) as i64
    }
}

impl std::fmt::Debug for Translator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Translator")
            .field("settings", &self.settings)
            .field("series", &self.points.len())
            .finish_non_exhaustive()
    }
}

impl Translator {
    /// A translator with the naming and resource options of `config`.
    pub fn new(config: &OtlpConfig) -> Translator {
        Translator::from_settings(Settings::from(config))
    }

    pub(crate) fn from_settings(settings: Settings) -> Translator {
        Translator {
            settings,
            resources: HashMap::default(),
            metrics: HashMap::default(),
            points: HashMap::default(),
            target_info_meta: Arc::new(MetricMetadata::new("target_info", MetricType::Gauge, "Target metadata")),
            next_id: 0,
            last_sweep_ms: now_ms(),
            key: Vec::with_capacity(256),
            builder: LabelsBuilder::new(),
            metadata_seen: HashSet::new(),
            values: Vec::new(),
            quantiles: Vec::new(),
            max_series: MAX_SERIES,
        }
    }

    /// Lowers the series limit, for tests.
    #[cfg(test)]
    pub(crate) fn set_max_series(&mut self, n: usize) {
        self.max_series = n;
    }

    /// Number of cached series entries.
    #[cfg(test)]
    pub(crate) fn cached_points(&self) -> usize {
        self.points.len()
    }

    /// Translates one request; `now` (Unix milliseconds) stamps points that carry no time.
    pub fn translate(&mut self, req: &ExportMetricsServiceRequest, now: i64) -> Translation {
        if now - self.last_sweep_ms >= SWEEP_EVERY_MS {
            self.sweep(now);
        }
        self.metadata_seen.clear();
        let mut out = Translation::default();
        for rm in &req.resource_metrics {
            let attrs = rm.resource.as_ref().map_or(&[][..], |r| &r.attributes[..]);
            self.key.clear();
            put_attributes(&mut self.key, attrs);
            if !self.resources.contains_key(&self.key[..]) {
                let entry = self.new_resource(attrs);
                self.resources.insert(self.key.as_slice().into(), entry);
            }
            // Take the entry out while its points are translated, so `self` stays borrowable.
            let Some((rkey, mut resource)) = self.resources.remove_entry(&self.key[..]) else {
                continue;
            };
            resource.last_seen_ms = now;
            let before = out.batch.series.len();
            let mut latest = i64::MIN;
            for sm in &rm.scope_metrics {
                for metric in &sm.metrics {
                    self.translate_metric(&resource, sm.scope.as_ref(), metric, now, &mut out);
                }
            }
            for s in &out.batch.series[before..] {
                if let Some(last) = s.samples.last() {
                    latest = latest.max(last.timestamp_ms);
                }
            }
            if let Some(ti) = &resource.target_info
                && out.batch.series.len() > before
            {
                out.batch.push(ti.clone(), Sample::new(latest, 1.0));
                if self.metadata_seen.insert(u64::MAX) {
                    out.batch.metadata.push(self.target_info_meta.clone());
                }
            }
            self.resources.insert(rkey, resource);
        }
        out
    }

    fn new_resource(&mut self, attrs: &[KeyValue]) -> ResourceEntry {
        self.next_id += 1;
        let text = |k: &str| label_value(find(attrs, k));
        let (name, namespace, instance) = (text(SERVICE_NAME), text(SERVICE_NAMESPACE), text(SERVICE_INSTANCE_ID));
        let job = match (namespace.is_empty(), name.is_empty()) {
            (_, true) => String::new(),
            (true, false) => name,
            (false, false) => format!("{namespace}/{name}"),
        };
        let mut identity = Vec::new();
        if !job.is_empty() {
            identity.push(("job".to_owned(), job));
        }
        if !instance.is_empty() {
            identity.push(("instance".to_owned(), instance));
        }
        for (attribute, label) in JOB_ATTRIBUTES {
            let value = text(attribute);
            if !value.is_empty() {
                identity.push((label.to_owned(), value));
            }
        }
        let is_service = |k: &str| matches!(k, SERVICE_NAME | SERVICE_NAMESPACE | SERVICE_INSTANCE_ID);
        let mut promoted = Vec::new();
        if let Some(exclude_service) = self.settings.promote_resource {
            promoted = sanitized(attrs.iter().filter(|kv| !(exclude_service && is_service(&kv.key))));
        }
        let mut target_info = None;
        if self.settings.target_info {
            let others = sanitized(attrs.iter().filter(|kv| !is_service(&kv.key)));
            if !others.is_empty() {
                let mut merged: BTreeMap<String, String> = others.into_iter().collect();
                merged.extend(identity.iter().cloned());
                merged.insert(METRIC_NAME.to_owned(), "target_info".to_owned());
                target_info = self.build(&merged, None).ok();
            }
        }
        ResourceEntry {
            id: self.next_id,
            promoted,
            identity,
            target_info,
            last_seen_ms: 0,
        }
    }

    fn metric_entry(&mut self, metric: &Metric, data: &Data, now: i64) -> Result<&MetricEntry, String> {
        let (tag, kind, name_kind) = match data {
            Data::Gauge(_) => (0u8, MetricType::Gauge, NameKind::Gauge),
            Data::Sum(s) if s.is_monotonic => (1, MetricType::Counter, NameKind::Counter),
            Data::Sum(_) => (2, MetricType::Gauge, NameKind::Gauge),
            Data::Histogram(_) => (3, MetricType::Histogram, NameKind::Other),
            Data::Summary(_) => (4, MetricType::Summary, NameKind::Other),
            Data::ExponentialHistogram(_) => (5, MetricType::Unknown, NameKind::Other),
        };
        self.key.clear();
        self.key.push(tag);
        put(&mut self.key, metric.name.as_bytes());
        put(&mut self.key, metric.unit.as_bytes());
        if !self.metrics.contains_key(&self.key[..]) {
            let name = metric_name(&metric.name, &metric.unit, name_kind, self.settings.add_suffixes);
            if !nodetel_core::labels::is_valid_metric_name(&name) {
                return Err(format!(
                    "metric name {:?} has no valid Prometheus form; use letters, digits, '.' and '_'",
                    metric.name
                ));
            }
            let unit = prometheus_unit(&metric.unit);
            let mut metadata = MetricMetadata::new(&name, kind, &metric.description);
            metadata.unit = unit.into();
            self.next_id += 1;
            let entry = MetricEntry {
                id: self.next_id,
                name: name.into(),
                metadata: Arc::new(metadata),
                last_seen_ms: now,
            };
            self.metrics.insert(self.key.as_slice().into(), entry);
        }
        let entry = self
            .metrics
            .get_mut(&self.key[..])
            .ok_or_else(|| "metric cache entry vanished".to_owned())?;
        entry.last_seen_ms = now;
        Ok(entry)
    }

    fn translate_metric(
        &mut self,
        resource: &ResourceEntry,
        scope: Option<&InstrumentationScope>,
        metric: &Metric,
        now: i64,
        out: &mut Translation,
    ) {
        let Some(data) = &metric.data else {
            return;
        };
        let points = match data {
            Data::Gauge(g) => g.data_points.len(),
            Data::Sum(s) => s.data_points.len(),
            Data::Histogram(h) => h.data_points.len(),
            Data::Summary(s) => s.data_points.len(),
            Data::ExponentialHistogram(e) => {
                let n = e.data_points.len() as u64;
                out.reject(n, || {
                    format!(
                        "metric {:?}: exponential histograms are not supported; use explicit bucket histograms",
                        metric.name
                    )
                });
                return;
            }
        } as u64;
        let entry = match self.metric_entry(metric, data, now) {
            Ok(e) => e,
            Err(why) => {
                out.reject(points, || why);
                return;
            }
        };
        // Cheap clones of what the points need, so the caches below stay mutably borrowable.
        let metric_entry = MetricEntry {
            id: entry.id,
            name: entry.name.clone(),
            metadata: entry.metadata.clone(),
            last_seen_ms: now,
        };
        if self.metadata_seen.insert(metric_entry.id) {
            out.batch.metadata.push(metric_entry.metadata.clone());
        }
        let cx = Context {
            resource,
            metric: &metric_entry,
            scope,
        };
        match data {
            Data::Gauge(g) => {
                for p in &g.data_points {
                    self.number(&cx, p, false, now, out);
                }
            }
            Data::Sum(s) => {
                let delta = s.aggregation_temporality == AggregationTemporality::Delta as i32;
                for p in &s.data_points {
                    self.number(&cx, p, delta, now, out);
                }
            }
            Data::Histogram(h) => {
                let delta = h.aggregation_temporality == AggregationTemporality::Delta as i32;
                for p in &h.data_points {
                    self.histogram(&cx, p, delta, now, out);
                }
            }
            Data::Summary(s) => {
                for p in &s.data_points {
                    self.summary(&cx, p, now, out);
                }
            }
            Data::ExponentialHistogram(_) => {}
        }
    }

    /// Writes the point's cache key into `self.key`.
    fn point_key(&mut self, cx: &Context<'_>, attrs: &[KeyValue]) {
        self.key.clear();
        self.key.extend_from_slice(&cx.resource.id.to_le_bytes());
        self.key.extend_from_slice(&cx.metric.id.to_le_bytes());
        if self.settings.scope_info {
            let (n, v) = cx.scope.map_or(("", ""), |s| (&s.name[..], &s.version[..]));
            put(&mut self.key, n.as_bytes());
            put(&mut self.key, v.as_bytes());
        }
        put_attributes(&mut self.key, attrs);
    }

    /// The entry for the point whose key is in `self.key`, with labels for `bounds`; `make`
    /// lists the `(name suffix, extra label)` of each series when they must be (re)built.
    fn point_entry(
        &mut self,
        cx: &Context<'_>,
        attrs: &[KeyValue],
        bounds: &[f64],
        now: i64,
        make: impl Fn(&str) -> Vec<(String, Option<(&'static str, String)>)>,
    ) -> Result<&mut PointEntry, String> {
        let fresh = match self.points.get(&self.key[..]) {
            Some(e) => !e.bounds.iter().copied().eq(bits(bounds)),
            None if self.points.len() >= self.max_series => {
                return Err(format!(
                    "the receiver already tracks {} series; new series are refused until unused ones \
                     expire after 15 minutes (look for an attribute with unbounded values)",
                    self.max_series
                ));
            }
            None => true,
        };
        if fresh {
            let base = self.base_labels(cx, attrs);
            let mut labels = Vec::new();
            for (name, extra) in make(&cx.metric.name) {
                let mut set = base.clone();
                set.insert(METRIC_NAME.to_owned(), name);
                let extra = extra.as_ref().map(|(n, v)| (*n, v.as_str()));
                labels.push(self.build(&set, extra).map_err(|e| e.to_string())?);
            }
            let entry = PointEntry {
                labels,
                bounds: bits(bounds).collect(),
                delta: None,
                last_seen_ms: now,
            };
            self.points.insert(self.key.as_slice().into(), entry);
        }
        // Present: found or inserted just above.
        let entry = self
            .points
            .get_mut(&self.key[..])
            .ok_or_else(|| "series cache entry vanished".to_owned())?;
        entry.last_seen_ms = now;
        Ok(entry)
    }

    fn number(&mut self, cx: &Context<'_>, p: &NumberDataPoint, delta: bool, now: i64, out: &mut Translation) {
        self.point_key(cx, &p.attributes);
        let entry = match self.point_entry(cx, &p.attributes, &[], now, |name| vec![(name.to_owned(), None)]) {
            Ok(e) => e,
            Err(e) => return out.reject(1, || format!("metric {:?}: {e}", cx.metric.name)),
        };
        let mut value = match p.value {
            Some(NumberValue::AsDouble(d)) => d,
            Some(NumberValue::AsInt(i)) => i as f64,
            None => 0.0,
        };
        let stale = p.flags & FLAG_NO_RECORDED_VALUE != 0;
        if delta && !stale {
            match accumulate(&mut entry.delta, p.start_time_unix_nano, p.time_unix_nano, &[value]) {
                Ok(v) => value = v.first().copied().unwrap_or(value),
                Err(why) => return out.reject(1, || refused_delta(&cx.metric.name, why)),
            }
        }
        let v = if stale { stale_nan() } else { value };
        out.batch
            .push(entry.labels[0].clone(), Sample::new(ts_ms(p.time_unix_nano, now), v));
    }

    fn histogram(&mut self, cx: &Context<'_>, p: &HistogramDataPoint, delta: bool, now: i64, out: &mut Translation) {
        let n = p.explicit_bounds.len();
        if !p.bucket_counts.is_empty() && p.bucket_counts.len() != n + 1 {
            return out.reject(1, || {
                format!(
                    "metric {:?}: {} bucket counts for {} bounds; there must be one more count than bounds",
                    cx.metric.name,
                    p.bucket_counts.len(),
                    n
                )
            });
        }
        self.point_key(cx, &p.attributes);
        let mut values = std::mem::take(&mut self.values);
        let make = |name: &str| {
            let mut v: Vec<_> = p
                .explicit_bounds
                .iter()
                .map(|b| (format!("{name}_bucket"), Some(("le", float_label(*b)))))
                .collect();
            v.push((format!("{name}_bucket"), Some(("le", "+Inf".to_owned()))));
            v.push((format!("{name}_sum"), None));
            v.push((format!("{name}_count"), None));
            v
        };
        let entry = match self.point_entry(cx, &p.attributes, &p.explicit_bounds, now, make) {
            Ok(e) => e,
            Err(e) => return out.reject(1, || format!("metric {:?}: {e}", cx.metric.name)),
        };
        let ts = ts_ms(p.time_unix_nano, now);
        if p.flags & FLAG_NO_RECORDED_VALUE != 0 {
            for l in &entry.labels {
                out.batch.push(l.clone(), Sample::new(ts, stale_nan()));
            }
            return;
        }
        // Values in series order: per-bucket counts, then sum, then count.
        values.clear();
        values.extend(p.bucket_counts.iter().map(|c| *c as f64));
        let has_buckets = !values.is_empty();
        if !has_buckets {
            values.resize(n + 1, 0.0);
        }
        values.push(p.sum.unwrap_or(0.0));
        values.push(p.count as f64);
        if delta {
            match accumulate(&mut entry.delta, p.start_time_unix_nano, p.time_unix_nano, &values) {
                Ok(v) => values.copy_from_slice(v),
                Err(why) => return out.reject(1, || refused_delta(&cx.metric.name, why)),
            }
        }
        let mut cumulative = 0.0;
        for (i, labels) in entry.labels[..n].iter().enumerate() {
            cumulative += values[i];
            if has_buckets {
                out.batch.push(labels.clone(), Sample::new(ts, cumulative));
            }
        }
        out.batch.push(entry.labels[n].clone(), Sample::new(ts, values[n + 2]));
        if p.sum.is_some() {
            out.batch
                .push(entry.labels[n + 1].clone(), Sample::new(ts, values[n + 1]));
        }
        out.batch
            .push(entry.labels[n + 2].clone(), Sample::new(ts, values[n + 2]));
        self.values = values;
    }

    fn summary(&mut self, cx: &Context<'_>, p: &SummaryDataPoint, now: i64, out: &mut Translation) {
        self.point_key(cx, &p.attributes);
        let mut quantiles = std::mem::take(&mut self.quantiles);
        quantiles.clear();
        quantiles.extend(p.quantile_values.iter().map(|q| q.quantile));
        let make = |name: &str| {
            let mut v: Vec<_> = quantiles
                .iter()
                .map(|q| (name.to_owned(), Some(("quantile", float_label(*q)))))
                .collect();
            v.push((format!("{name}_sum"), None));
            v.push((format!("{name}_count"), None));
            v
        };
        let entry = match self.point_entry(cx, &p.attributes, &quantiles, now, make) {
            Ok(e) => e,
            Err(e) => return out.reject(1, || format!("metric {:?}: {e}", cx.metric.name)),
        };
        let ts = ts_ms(p.time_unix_nano, now);
        let stale = p.flags & FLAG_NO_RECORDED_VALUE != 0;
        let value = |v: f64| if stale { stale_nan() } else { v };
        let n = quantiles.len();
        for (q, labels) in p.quantile_values.iter().zip(&entry.labels) {
            out.batch.push(labels.clone(), Sample::new(ts, value(q.value)));
        }
        out.batch.push(entry.labels[n].clone(), Sample::new(ts, value(p.sum)));
        out.batch
            .push(entry.labels[n + 1].clone(), Sample::new(ts, value(p.count as f64)));
        self.quantiles = quantiles;
    }

    /// The labels a point's series share, before `__name__` and `le`/`quantile`.
    fn base_labels(&self, cx: &Context<'_>, attrs: &[KeyValue]) -> BTreeMap<String, String> {
        let mut set: BTreeMap<String, String> = cx.resource.promoted.iter().cloned().collect();
        if self.settings.scope_info
            && let Some(s) = cx.scope
        {
            set.insert("otel_scope_name".into(), s.name.clone());
            set.insert("otel_scope_version".into(), s.version.clone());
        }
        set.extend(sanitized(attrs.iter()));
        set.extend(cx.resource.identity.iter().cloned());
        set
    }

    fn build(&mut self, set: &BTreeMap<String, String>, extra: Option<(&str, &str)>) -> Result<Labels, LabelError> {
        self.builder.clear();
        for (n, v) in set {
            if extra.is_some_and(|(en, _)| en == n) {
                continue;
            }
            self.builder.push(n, v)?;
        }
        if let Some((n, v)) = extra {
            self.builder.push(n, v)?;
        }
        self.builder.build()
    }

    fn sweep(&mut self, now: i64) {
        let live = |seen: i64| now - seen < IDLE_TTL_MS;
        self.points.retain(|_, e| live(e.last_seen_ms));
        self.metrics.retain(|_, e| live(e.last_seen_ms));
        self.resources.retain(|_, e| live(e.last_seen_ms));
        self.last_sweep_ms = now;
    }
}

fn out_of_order(metric: &str) -> String {
    format!("metric {metric:?}: a delta point is not newer than the previous one of its series; dropped")
}

/// Adds a delta point to its series' running values; `None` when it is not newer than the last.
/// Adds a delta point to its series' running total, as the Collector's `deltatocumulative`
/// does: a point that starts before the series began belongs to an older stream (a sender that
/// restarted, a late retry) and one not newer than the last is out of order; both are refused so
/// nothing is counted twice.
fn accumulate<'a>(
    state: &'a mut Option<Accumulated>,
    start_ns: u64,
    time_ns: u64,
    values: &[f64],
) -> Result<&'a [f64], DeltaRefusal> {
    match state {
        Some(acc) if acc.values.len() == values.len() => {
            if start_ns != 0 && acc.start_ns != 0 && start_ns < acc.start_ns {
                return Err(DeltaRefusal::OlderStart);
            }
            if time_ns <= acc.last_time_ns {
                return Err(DeltaRefusal::OutOfOrder);
            }
            acc.last_time_ns = time_ns;
            for (a, v) in acc.values.iter_mut().zip(values) {
                *a += v;
            }
        }
        _ => {
            *state = Some(Accumulated {
                start_ns,
                last_time_ns: time_ns,
                values: values.to_vec(),
            });
        }
    }
    Ok(state.as_ref().map_or(&[][..], |a| &a.values[..]))
}

/// Why a delta point was not added.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DeltaRefusal {
    OlderStart,
    OutOfOrder,
}

fn refused_delta(metric: &str, why: DeltaRefusal) -> String {
    match why {
        DeltaRefusal::OutOfOrder => out_of_order(metric),
        DeltaRefusal::OlderStart => {
            format!("metric {metric:?}: a delta point starts before its series began (an older stream); dropped")
        }
    }
}

/// Attributes as sanitised label pairs. Keys that collide after sanitising have their values
/// joined with `;` in key order, as the Collector does.
fn sanitized<'a>(attrs: impl Iterator<Item = &'a KeyValue>) -> Vec<(String, String)> {
    let mut sorted: Vec<&KeyValue> = attrs.filter(|kv| !kv.key.is_empty()).collect();
    sorted.sort_by(|a, b| a.key.cmp(&b.key));
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    for kv in sorted {
        let value = label_value(kv.value.as_ref());
        match out.entry(label_name(&kv.key)) {
            std::collections::btree_map::Entry::Occupied(mut e) => {
                let joined = e.get_mut();
                joined.push(';');
                joined.push_str(&value);
            }
            std::collections::btree_map::Entry::Vacant(e) => {
                e.insert(value);
            }
        }
    }
    out.into_iter().collect()
}
