//! The `prometheus` exporter: a pull endpoint serving the latest value of every series on
//! `/metrics` (default `127.0.0.1:9464`), as otelcol's prometheus exporter does.
//!
//! Series that stop arriving expire after `metric_expiration`; a staleness marker removes a
//! series at once. With `tls:` the endpoint is served over HTTPS, and with `tls.client_ca_file`
//! only to scrapers that present a client certificate signed by that CA.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use nodetel_core::config::{BuildContext, ExporterConfig, FieldError, Validate};
use nodetel_core::exposition::{TEXT_CONTENT_TYPE, TextWriter};
use nodetel_core::http::{Handler, Response};
use nodetel_core::labels::is_valid_label_name;
use nodetel_core::tls::ServerTlsConfig;
use nodetel_core::{Batch, BoxError, CancellationToken, ExportError, Exporter, Labels, MetricMetadata};
use serde::Deserialize;
use tokio_util::sync::DropGuard;

/// Config of the `prometheus` exporter.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PrometheusConfig {
    /// `host:port` to listen on. Default `127.0.0.1:9464`.
    pub endpoint: String,
    /// Labels added to every series (existing labels win).
    pub const_labels: BTreeMap<String, String>,
    /// Whether samples carry their timestamps. Default false: Prometheus stamps scrape time.
    pub send_timestamps: bool,
    /// How long a series is served after its last update. Default 5m.
    #[serde(deserialize_with = "nodetel_core::config::duration::deserialize")]
    pub metric_expiration: Duration,
    /// Serve over TLS (and require client certificates with `client_ca_file`). Default off.
    pub tls: Option<ServerTlsConfig>,
}

impl Default for PrometheusConfig {
    fn default() -> Self {
        PrometheusConfig {
            endpoint: "127.0.0.1:9464".into(),
            const_labels: BTreeMap::new(),
            send_timestamps: false,
            metric_expiration: Duration::from_secs(300),
            tls: None,
        }
    }
}

/// Checks a `host:port` listen address.
pub fn validate_listen_address(path: &str, addr: &str) -> Option<FieldError> {
    let ok = addr
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
    (!ok).then(|| FieldError::new(path, format!("{addr:?} is not host:port; for example 127.0.0.1:9464")))
}

impl Validate for PrometheusConfig {
    fn validate(&self) -> Vec<FieldError> {
        let mut errors: Vec<_> = validate_listen_address("endpoint", &self.endpoint)
            .into_iter()
            .collect();
        for name in self.const_labels.keys() {
            if !is_valid_label_name(name) {
                errors.push(FieldError::new(
                    format!("const_labels.{name}"),
                    "not a valid label name; use [a-zA-Z_][a-zA-Z0-9_]*",
                ));
            }
        }
        if self.metric_expiration.is_zero() {
            errors.push(FieldError::new(
                "metric_expiration",
                "must be greater than 0, for example 5m",
            ));
        }
        if let Some(tls) = &self.tls {
            errors.extend(tls.validate_at("tls"));
        }
        errors
    }
}

impl ExporterConfig for PrometheusConfig {
    const TYPE: &'static str = "prometheus";

    fn build(&self, cx: &BuildContext) -> Result<Box<dyn Exporter>, BoxError> {
        let acceptor = match &self.tls {
            Some(tls) => Some(
                tls.acceptor(&[b"http/1.1"])
                    .map_err(|e| format!("prometheus exporter tls: {e}"))?,
            ),
            None => None,
        };
        let listener = std::net::TcpListener::bind(&self.endpoint)
            .map_err(|e| format!("cannot listen on {}: {e}", self.endpoint))?;
        listener.set_nonblocking(true)?;
        let listener = tokio::net::TcpListener::from_std(listener)?;
        nodetel_core::tls::warn_if_exposed(
            &format!("exporters.{}", cx.id),
            listener.local_addr()?,
            self.tls.is_some(),
        );
        let exporter = PrometheusExporter::new(self)?;
        let stop = CancellationToken::new();
        let tls = acceptor.is_some();
        match acceptor {
            Some(acceptor) => nodetel_core::http::serve_tls(listener, exporter.handler(), stop.clone(), acceptor),
            None => nodetel_core::http::serve(listener, exporter.handler(), stop.clone()),
        };
        tracing::info!(endpoint = %self.endpoint, tls, "Serving metrics for scraping.");
        Ok(Box::new(ServingExporter {
            inner: exporter,
            _server: stop.drop_guard(),
        }))
    }
}

struct Entry {
    value: f64,
    timestamp_ms: i64,
    updated: Instant,
}

#[derive(Default)]
struct State {
    series: HashMap<Labels, Entry>,
    metadata: HashMap<Box<str>, Arc<MetricMetadata>>,
    /// Input set → set with const labels, so the merge is done once per series.
    with_const: HashMap<Labels, Labels>,
}

/// The store behind the pull endpoint; separate from the listener so it can be tested alone.
#[derive(Clone)]
pub struct PrometheusExporter {
    state: Arc<Mutex<State>>,
    const_labels: Arc<Vec<(String, String)>>,
    send_timestamps: bool,
    expiration: Duration,
}

impl std::fmt::Debug for PrometheusExporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrometheusExporter").finish_non_exhaustive()
    }
}

impl PrometheusExporter {
    /// A store configured by `config` (no listener).
    pub fn new(config: &PrometheusConfig) -> Result<PrometheusExporter, BoxError> {
        Ok(PrometheusExporter {
            state: Arc::default(),
            const_labels: Arc::new(config.const_labels.clone().into_iter().collect()),
            send_timestamps: config.send_timestamps,
            expiration: config.metric_expiration,
        })
    }

    /// Takes in a batch: the last sample of each series replaces the stored one.
    pub fn update(&self, batch: &Batch) {
        let now = Instant::now();
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        for md in &batch.metadata {
            if !state.metadata.contains_key(&md.family) {
                state.metadata.insert(md.family.clone(), md.clone());
            }
        }
        for s in &batch.series {
            let Some(last) = s.samples.last() else { continue };
            let labels = self.with_const_labels(&mut state, &s.labels);
            if last.is_stale() {
                state.series.remove(&labels);
                continue;
            }
            state.series.insert(
                labels,
                Entry {
                    value: last.value,
                    timestamp_ms: last.timestamp_ms,
                    updated: now,
                },
            );
        }
    }

    fn with_const_labels(&self, state: &mut State, labels: &Labels) -> Labels {
        if self.const_labels.is_empty() {
            return labels.clone();
        }
        if let Some(l) = state.with_const.get(labels) {
            return l.clone();
        }
        let mut b = labels.to_builder();
        for (n, v) in self.const_labels.iter() {
            if labels.get(n).is_none() {
                // Names were validated with the config, so this cannot fail.
                let _ = b.push(n, v);
            }
        }
        let merged = b.build().unwrap_or_else(|_| labels.clone());
        state.with_const.insert(labels.clone(), merged.clone());
        merged
    }

    /// Renders every live series (dropping expired ones) in the text format.
    pub fn render(&self) -> String {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let expiration = self.expiration;
        state.series.retain(|_, e| e.updated.elapsed() < expiration);
        if state.with_const.len() > 2 * state.series.len() + 1024 {
            let State { series, with_const, .. } = &mut *state;
            with_const.retain(|_, merged| series.contains_key(merged));
        }
        let mut writer = TextWriter::new();
        for md in state.metadata.values() {
            writer.add_metadata(md);
        }
        let mut series: Vec<_> = state.series.iter().collect();
        series.sort_unstable_by(|a, b| a.0.cmp(b.0));
        let mut out = String::with_capacity(series.len() * 64);
        for (labels, e) in series {
            writer.write(
                &mut out,
                labels,
                e.value,
                self.send_timestamps.then_some(e.timestamp_ms),
            );
        }
        out
    }

    /// The HTTP handler: `/metrics` serves the series, `/` a pointer to it.
    pub fn handler(&self) -> Handler {
        let this = self.clone();
        Arc::new(move |_, path| match path {
            "/metrics" => Response::ok(TEXT_CONTENT_TYPE, this.render()),
            "/" => Response::text(200, "nodetel: metrics are on /metrics\n"),
            _ => Response::text(404, "not found; metrics are on /metrics\n"),
        })
    }
}

struct ServingExporter {
    inner: PrometheusExporter,
    _server: DropGuard,
}

#[async_trait]
impl Exporter for ServingExporter {
    async fn export(&mut self, batch: Arc<Batch>) -> Result<(), ExportError> {
        self.inner.update(&batch);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nodetel_core::labels::METRIC_NAME;
    use nodetel_core::sample::stale_nan;
    use nodetel_core::{MetricType, Sample};

    fn l(pairs: &[(&str, &str)]) -> Labels {
        Labels::from_pairs(pairs.iter().copied()).unwrap()
    }

    #[test]
    fn serves_the_latest_value_and_forgets_stale_series() {
        let e = PrometheusExporter::new(&PrometheusConfig::default()).unwrap();
        let mut b = Batch::new();
        b.metadata.push(Arc::new(MetricMetadata::new(
            "node_load1",
            MetricType::Gauge,
            "1m load.",
        )));
        b.push(l(&[(METRIC_NAME, "node_load1")]), Sample::new(1, 0.5));
        b.push(l(&[(METRIC_NAME, "other")]), Sample::new(1, 7.0));
        e.update(&b);
        let mut b = Batch::new();
        b.push(l(&[(METRIC_NAME, "node_load1")]), Sample::new(2, 0.75));
        b.push(l(&[(METRIC_NAME, "other")]), Sample::new(2, stale_nan()));
        e.update(&b);
        assert_eq!(
            e.render(),
            "# HELP node_load1 1m load.\n# TYPE node_load1 gauge\nnode_load1 0.75\n"
        );
    }

    #[test]
    fn const_labels_are_added_without_overwriting() {
        let mut cfg = PrometheusConfig::default();
        cfg.const_labels.insert("cluster".into(), "c1".into());
        cfg.const_labels.insert("job".into(), "ignored".into());
        cfg.send_timestamps = true;
        let e = PrometheusExporter::new(&cfg).unwrap();
        let mut b = Batch::new();
        b.push(l(&[(METRIC_NAME, "m"), ("job", "node_exporter")]), Sample::new(9, 1.0));
        e.update(&b);
        assert_eq!(e.render(), "m{cluster=\"c1\",job=\"node_exporter\"} 1 9\n");
    }

    #[test]
    fn series_expire() {
        let cfg = PrometheusConfig {
            metric_expiration: Duration::from_millis(1),
            ..PrometheusConfig::default()
        };
        let e = PrometheusExporter::new(&cfg).unwrap();
        let mut b = Batch::new();
        b.push(l(&[(METRIC_NAME, "m")]), Sample::new(9, 1.0));
        e.update(&b);
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(e.render(), "");
    }

    #[test]
    fn validation_reports_every_problem() {
        let mut cfg = PrometheusConfig {
            endpoint: "nohost".into(),
            metric_expiration: Duration::ZERO,
            ..PrometheusConfig::default()
        };
        cfg.const_labels.insert("bad-name".into(), "x".into());
        let paths: Vec<_> = cfg.validate().into_iter().map(|e| e.path).collect();
        assert_eq!(paths, ["endpoint", "const_labels.bad-name", "metric_expiration"]);
    }
}
