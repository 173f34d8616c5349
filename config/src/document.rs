//! The document model: the OpenTelemetry Collector layout (`receivers`, `processors`,
//! `exporters`, `extensions`, `service`), read from an expanded YAML value.
//!
//! Component sections are kept as raw YAML here; the registry turns them into typed configs.
//! The walk is by hand rather than through serde so that every problem is reported, each with
//! its path, instead of stopping at the first.

use std::time::Duration;

use nodetel_core::ComponentId;
use serde::Deserialize;
use serde_yaml_ng::{Mapping, Value};

use crate::error::{ConfigError, join_path};
use crate::expand::key_text;

const TOP_LEVEL_KEYS: &str = "exporters, extensions, processors, receivers, service";
const SERVICE_KEYS: &str = "extensions, pipelines, queue_capacity, shutdown_timeout, telemetry";
const PIPELINE_KEYS: &str = "exporters, processors, receivers";

/// The default for `service.shutdown_timeout`.
pub(crate) const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);
/// The default for `service.queue_capacity`.
pub(crate) const DEFAULT_QUEUE_CAPACITY: usize = 64;

/// A whole config file.
#[derive(Debug, Default)]
pub(crate) struct Document {
    pub(crate) receivers: Vec<Section>,
    pub(crate) processors: Vec<Section>,
    pub(crate) exporters: Vec<Section>,
    pub(crate) extensions: Vec<Section>,
    pub(crate) service: ServiceDoc,
}

/// One component's section: its id and its raw settings (null when written as `node:`).
#[derive(Debug)]
pub(crate) struct Section {
    pub(crate) id: ComponentId,
    pub(crate) value: Value,
}

/// The `service` section.
#[derive(Debug)]
pub(crate) struct ServiceDoc {
    /// Enabled extension ids; `None` where the item was not a string (already reported).
    pub(crate) extensions: Vec<Option<String>>,
    pub(crate) pipelines: Vec<PipelineDoc>,
    pub(crate) telemetry: TelemetryDoc,
    pub(crate) shutdown_timeout: Duration,
    pub(crate) queue_capacity: usize,
}

impl Default for ServiceDoc {
    fn default() -> Self {
        ServiceDoc {
            extensions: Vec::new(),
            pipelines: Vec::new(),
            telemetry: TelemetryDoc::default(),
            shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
            queue_capacity: DEFAULT_QUEUE_CAPACITY,
        }
    }
}

/// One pipeline; list items that were not strings are `None` (already reported).
#[derive(Debug, Default)]
pub(crate) struct PipelineDoc {
    pub(crate) name: String,
    pub(crate) receivers: Vec<Option<String>>,
    pub(crate) processors: Vec<Option<String>>,
    pub(crate) exporters: Vec<Option<String>>,
}

/// `service.telemetry`, with the otelcol keys nodetel can honour.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct TelemetryDoc {
    pub(crate) metrics: MetricsTelemetry,
    pub(crate) logs: LogsTelemetry,
}

/// `service.telemetry.metrics`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct MetricsTelemetry {
    /// Where the self-metrics endpoint listens (`host:port`).
    pub(crate) address: Option<String>,
    /// `none` turns the self-metrics endpoint off; `basic`, `normal` and `detailed` keep it on.
    pub(crate) level: Option<String>,
    /// Newer otelcol's form of `address`: one pull reader with a Prometheus exporter.
    pub(crate) readers: Vec<MetricReader>,
}

/// `service.telemetry.metrics.readers[]`: only a pull reader serving Prometheus fits nodetel.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct MetricReader {
    pub(crate) pull: Option<PullReader>,
}

/// `readers[].pull`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PullReader {
    pub(crate) exporter: PullExporter,
}

/// `readers[].pull.exporter`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PullExporter {
    pub(crate) prometheus: PullPrometheus,
}

/// `readers[].pull.exporter.prometheus`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PullPrometheus {
    pub(crate) host: String,
    pub(crate) port: u16,
}

/// `service.telemetry.logs`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct LogsTelemetry {
    pub(crate) level: Option<String>,
    pub(crate) encoding: Option<String>,
}

/// Reads a document; returns what could be read and every problem found.
pub(crate) fn parse(root: Value) -> (Document, Vec<ConfigError>) {
    let mut errors = Vec::new();
    let mut doc = Document::default();
    let root = match root {
        Value::Null => Mapping::new(),
        Value::Mapping(m) => m,
        other => {
            errors.push(ConfigError::new(
                "(top level)",
                format!(
                    "expected a mapping with the keys {TOP_LEVEL_KEYS}, found {}",
                    kind_of(&other)
                ),
            ));
            return (doc, errors);
        }
    };
    for (key, value) in root {
        let key = key_text(&key);
        match key.as_str() {
            "receivers" => doc.receivers = sections(&key, value, &mut errors),
            "processors" => doc.processors = sections(&key, value, &mut errors),
            "exporters" => doc.exporters = sections(&key, value, &mut errors),
            "extensions" => doc.extensions = sections(&key, value, &mut errors),
            "service" => doc.service = service(value, &mut errors),
            "connectors" => errors.push(ConfigError::new(
                key,
                "connectors are not supported; nodetel runs metrics pipelines only, so list the receivers and \
                 exporters in the same pipeline instead",
            )),
            _ => errors.push(ConfigError::new(
                key,
                format!("unknown top-level key; allowed: {TOP_LEVEL_KEYS}"),
            )),
        }
    }
    (doc, errors)
}

fn sections(kind: &str, value: Value, errors: &mut Vec<ConfigError>) -> Vec<Section> {
    let Some(map) = mapping(kind, value, errors) else {
        return Vec::new();
    };
    let mut out = Vec::with_capacity(map.len());
    for (key, value) in map {
        let id = key_text(&key);
        match ComponentId::parse(&id) {
            Ok(id) => out.push(Section { id, value }),
            Err(e) => errors.push(ConfigError::new(
                join_path(kind, &id),
                format!("{e}; write the id as type or type/name, like prometheus/dcgm"),
            )),
        }
    }
    out
}

fn service(value: Value, errors: &mut Vec<ConfigError>) -> ServiceDoc {
    let mut svc = ServiceDoc::default();
    let Some(map) = mapping("service", value, errors) else {
        return svc;
    };
    for (key, value) in map {
        let key = key_text(&key);
        let path = join_path("service", &key);
        match key.as_str() {
            "extensions" => svc.extensions = id_list(&path, value, errors),
            "pipelines" => svc.pipelines = pipelines(&path, value, errors),
            "telemetry" => svc.telemetry = telemetry(&path, value, errors),
            "shutdown_timeout" => match duration(value) {
                Ok(d) => svc.shutdown_timeout = d,
                Err(message) => errors.push(ConfigError::new(path, message)),
            },
            "queue_capacity" => match value.as_u64() {
                Some(n) if n > 0 => svc.queue_capacity = usize::try_from(n).unwrap_or(usize::MAX),
                _ => errors.push(ConfigError::new(
                    path,
                    format!(
                        "expected a positive number of batches (default {DEFAULT_QUEUE_CAPACITY}), found {}",
                        show(&value)
                    ),
                )),
            },
            _ => errors.push(ConfigError::new(
                path,
                format!("unknown key in service; allowed: {SERVICE_KEYS}"),
            )),
        }
    }
    svc
}

fn pipelines(path: &str, value: Value, errors: &mut Vec<ConfigError>) -> Vec<PipelineDoc> {
    let Some(map) = mapping(path, value, errors) else {
        return Vec::new();
    };
    let mut out = Vec::with_capacity(map.len());
    for (key, value) in map {
        let name = key_text(&key);
        let path = join_path(path, &name);
        let (signal, suffix) = match name.split_once('/') {
            Some((s, n)) => (s, Some(n)),
            None => (name.as_str(), None),
        };
        match signal {
            "metrics" if suffix.is_none_or(|n| !n.is_empty() && !n.contains(char::is_whitespace)) => {}
            "traces" | "logs" | "profiles" => {
                errors.push(ConfigError::new(
                    path,
                    format!(
                        "nodetel handles metrics only; remove this {signal} pipeline or turn it into a metrics \
                         pipeline (metrics or metrics/<name>)"
                    ),
                ));
                continue;
            }
            _ => {
                errors.push(ConfigError::new(
                    path,
                    "invalid pipeline id; use metrics or metrics/<name>",
                ));
                continue;
            }
        }
        let mut pipeline = PipelineDoc {
            name,
            ..PipelineDoc::default()
        };
        if let Some(map) = mapping(&path, value, errors) {
            for (key, value) in map {
                let key = key_text(&key);
                let list_path = join_path(&path, &key);
                match key.as_str() {
                    "receivers" => pipeline.receivers = id_list(&list_path, value, errors),
                    "processors" => pipeline.processors = id_list(&list_path, value, errors),
                    "exporters" => pipeline.exporters = id_list(&list_path, value, errors),
                    _ => errors.push(ConfigError::new(
                        list_path,
                        format!("unknown key in a pipeline; allowed: {PIPELINE_KEYS}"),
                    )),
                }
            }
        }
        out.push(pipeline);
    }
    out
}

fn telemetry(path: &str, value: Value, errors: &mut Vec<ConfigError>) -> TelemetryDoc {
    let value = if value.is_null() {
        Value::Mapping(Mapping::new())
    } else {
        value
    };
    let mut doc: TelemetryDoc = match serde_path_to_error::deserialize(value) {
        Ok(doc) => doc,
        Err(e) => {
            let inner = e.path().to_string();
            let inner = if inner == "." { String::new() } else { inner };
            errors.push(ConfigError::new(join_path(path, &inner), e.into_inner().to_string()));
            return TelemetryDoc::default();
        }
    };
    let mut check = |field: &str, value: &Option<String>, allowed: &[&str]| {
        if let Some(v) = value
            && !allowed.contains(&v.to_ascii_lowercase().as_str())
        {
            errors.push(ConfigError::new(
                join_path(path, field),
                format!("unknown value {v:?}; use one of {}", allowed.join(", ")),
            ));
        }
    };
    check(
        "metrics.level",
        &doc.metrics.level,
        &["none", "basic", "normal", "detailed"],
    );
    check("logs.level", &doc.logs.level, &["debug", "info", "warn", "error"]);
    check("logs.encoding", &doc.logs.encoding, &["console", "json"]);
    match doc.metrics.readers.as_slice() {
        [] => {}
        [MetricReader { pull: Some(pull) }] if doc.metrics.address.is_none() => {
            let p = &pull.exporter.prometheus;
            let host = if p.host.contains(':') {
                format!("[{}]", p.host)
            } else {
                p.host.clone()
            };
            doc.metrics.address = Some(format!("{host}:{}", p.port));
        }
        [MetricReader { pull: Some(_) }] => errors.push(ConfigError::new(
            join_path(path, "metrics.readers"),
            "set either metrics.address or metrics.readers, not both",
        )),
        [MetricReader { pull: None }] => errors.push(ConfigError::new(
            join_path(path, "metrics.readers[0]"),
            "only a pull reader is supported: pull: {exporter: {prometheus: {host: 127.0.0.1, port: 8888}}}",
        )),
        _ => errors.push(ConfigError::new(
            join_path(path, "metrics.readers"),
            "nodetel serves its metrics on one endpoint; keep a single pull reader",
        )),
    }
    if let Some(address) = &doc.metrics.address
        && !is_host_port(address)
    {
        errors.push(ConfigError::new(
            join_path(path, "metrics.address"),
            format!("{address:?} is not host:port; write it like 127.0.0.1:8888"),
        ));
    }
    doc
}

/// Whether `s` looks like `host:port` (the host may be empty, meaning all interfaces).
pub(crate) fn is_host_port(s: &str) -> bool {
    s.rsplit_once(':')
        .is_some_and(|(host, port)| !host.contains(char::is_whitespace) && port.parse::<u16>().is_ok())
}

fn id_list(path: &str, value: Value, errors: &mut Vec<ConfigError>) -> Vec<Option<String>> {
    match value {
        Value::Null => Vec::new(),
        Value::Sequence(items) => items
            .into_iter()
            .enumerate()
            .map(|(i, item)| match item {
                Value::String(s) => Some(s),
                other => {
                    errors.push(ConfigError::new(
                        format!("{path}[{i}]"),
                        format!("expected a component id, found {}", kind_of(&other)),
                    ));
                    None
                }
            })
            .collect(),
        other => {
            errors.push(ConfigError::new(
                path,
                format!("expected a list of component ids, found {}", kind_of(&other)),
            ));
            Vec::new()
        }
    }
}

/// A mapping, or `None` (and an error unless the value was null, which means empty).
fn mapping(path: &str, value: Value, errors: &mut Vec<ConfigError>) -> Option<Mapping> {
    match value {
        Value::Mapping(m) => Some(m),
        Value::Null => None,
        other => {
            errors.push(ConfigError::new(
                path,
                format!("expected a mapping, found {}", kind_of(&other)),
            ));
            None
        }
    }
}

fn duration(value: Value) -> Result<Duration, String> {
    match &value {
        Value::String(s) => nodetel_core::config::parse_duration(s).map_err(|e| e.to_string()),
        Value::Number(n) => n
            .as_u64()
            .map(Duration::from_secs)
            .ok_or_else(|| format!("expected a duration like 10s, found {n}")),
        other => Err(format!("expected a duration like 10s, found {}", kind_of(other))),
    }
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}

fn show(value: &Value) -> String {
    match value {
        Value::Number(n) => n.to_string(),
        Value::String(s) => format!("{s:?}"),
        other => kind_of(other).to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(yaml: &str) -> (Document, Vec<String>) {
        let (doc, errors) = parse(serde_yaml_ng::from_str(yaml).unwrap());
        (
            doc,
            errors.iter().map(|e| format!("{}: {}", e.path, e.message)).collect(),
        )
    }

    #[test]
    fn a_full_document_is_read_in_order() {
        let (doc, errors) = parse_str(
            "receivers:\n  node:\n  prometheus/dcgm: {config: {}}\nprocessors:\n  batch: {timeout: 10s}\n\
             exporters:\n  debug: {}\nextensions:\n  health_check:\nservice:\n  extensions: [health_check]\n  \
             shutdown_timeout: 30s\n  queue_capacity: 8\n  telemetry: {metrics: {address: '127.0.0.1:9999', level: \
             basic}, logs: {level: debug, encoding: json}}\n  pipelines:\n    metrics:\n      receivers: [node, \
             prometheus/dcgm]\n      processors: [batch]\n      exporters: [debug]\n    metrics/b: {receivers: [node], \
             exporters: [debug]}\n",
        );
        assert_eq!(errors, Vec::<String>::new());
        let ids = |s: &[Section]| s.iter().map(|s| s.id.to_string()).collect::<Vec<_>>();
        assert_eq!(ids(&doc.receivers), vec!["node", "prometheus/dcgm"]);
        assert!(doc.receivers[0].value.is_null());
        assert_eq!(ids(&doc.processors), vec!["batch"]);
        assert_eq!(ids(&doc.extensions), vec!["health_check"]);
        let svc = &doc.service;
        assert_eq!(svc.extensions, vec![Some("health_check".to_owned())]);
        assert_eq!(svc.shutdown_timeout, Duration::from_secs(30));
        assert_eq!(svc.queue_capacity, 8);
        assert_eq!(svc.telemetry.metrics.address.as_deref(), Some("127.0.0.1:9999"));
        assert_eq!(svc.telemetry.logs.encoding.as_deref(), Some("json"));
        let names: Vec<_> = svc.pipelines.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, vec!["metrics", "metrics/b"]);
        assert_eq!(
            svc.pipelines[0].receivers,
            vec![Some("node".to_owned()), Some("prometheus/dcgm".to_owned())]
        );
    }

    #[test]
    fn service_defaults_apply_when_keys_are_absent() {
        let (doc, errors) = parse_str("service:\n  pipelines: {}\n");
        assert!(errors.is_empty());
        assert_eq!(doc.service.shutdown_timeout, DEFAULT_SHUTDOWN_TIMEOUT);
        assert_eq!(doc.service.queue_capacity, DEFAULT_QUEUE_CAPACITY);
    }

    #[test]
    fn unknown_and_unsupported_keys_are_each_reported() {
        let (_, errors) = parse_str(
            "recievers: {}\nconnectors: {}\nreceivers:\n  Node: {}\n  'x/': {}\nservice:\n  pipeline: {}\n  \
             queue_capacity: 0\n  shutdown_timeout: soon\n  pipelines:\n    traces: {}\n    metricz: {}\n    \
             metrics:\n      receivers: node\n      exporter: [debug]\n      processors: [1]\n",
        );
        assert_eq!(
            errors,
            vec![
                "recievers: unknown top-level key; allowed: exporters, extensions, processors, receivers, service",
                "connectors: connectors are not supported; nodetel runs metrics pipelines only, so list the \
                 receivers and exporters in the same pipeline instead",
                "receivers.Node: invalid component id \"Node\": the type may only hold a-z, 0-9 and _; write the id \
                 as type or type/name, like prometheus/dcgm",
                "receivers.x/: invalid component id \"x/\": the name after '/' is empty; write the id as type or \
                 type/name, like prometheus/dcgm",
                "service.pipeline: unknown key in service; allowed: extensions, pipelines, queue_capacity, \
                 shutdown_timeout, telemetry",
                "service.queue_capacity: expected a positive number of batches (default 64), found 0",
                "service.shutdown_timeout: invalid duration \"soon\": use a number with a unit, like 500ms, 15s, \
                 1m30s or 2h",
                "service.pipelines.traces: nodetel handles metrics only; remove this traces pipeline or turn it \
                 into a metrics pipeline (metrics or metrics/<name>)",
                "service.pipelines.metricz: invalid pipeline id; use metrics or metrics/<name>",
                "service.pipelines.metrics.receivers: expected a list of component ids, found a string",
                "service.pipelines.metrics.exporter: unknown key in a pipeline; allowed: exporters, processors, \
                 receivers",
                "service.pipelines.metrics.processors[0]: expected a component id, found a number",
            ]
        );
    }

    #[test]
    fn telemetry_keys_and_values_are_checked() {
        let (_, errors) = parse_str("service:\n  telemetry:\n    logs: {level: loud}\n    metrics: {address: nope}\n");
        assert_eq!(
            errors,
            vec![
                "service.telemetry.logs.level: unknown value \"loud\"; use one of debug, info, warn, error",
                "service.telemetry.metrics.address: \"nope\" is not host:port; write it like 127.0.0.1:8888",
            ]
        );
        let (_, errors) = parse_str("service:\n  telemetry:\n    logs: {levle: info}\n");
        assert_eq!(errors.len(), 1);
        assert!(
            errors[0].starts_with("service.telemetry.logs.levle: unknown field `levle`"),
            "{errors:?}"
        );
    }

    #[test]
    fn a_prometheus_pull_reader_sets_the_telemetry_address() {
        let (doc, errors) = parse_str(
            "service:\n  telemetry:\n    metrics:\n      readers:\n        - pull:\n            exporter:\n              \
             prometheus: {host: '::1', port: 9888}\n",
        );
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(doc.service.telemetry.metrics.address.as_deref(), Some("[::1]:9888"));
        let (_, errors) = parse_str(
            "service: {telemetry: {metrics: {address: '127.0.0.1:1', readers: [{pull: {exporter: {prometheus: \
             {host: a, port: 2}}}}]}}}\n",
        );
        assert_eq!(
            errors,
            vec!["service.telemetry.metrics.readers: set either metrics.address or metrics.readers, not both"]
        );
        let (_, errors) = parse_str("service: {telemetry: {metrics: {readers: [{periodic: {}}]}}}\n");
        assert_eq!(errors.len(), 1);
        assert!(
            errors[0].starts_with("service.telemetry.metrics.readers[0].periodic: unknown field `periodic`"),
            "{errors:?}"
        );
    }

    #[test]
    fn a_document_that_is_not_a_mapping_is_rejected() {
        let (_, errors) = parse_str("- a\n- b\n");
        assert_eq!(
            errors,
            vec![
                "(top level): expected a mapping with the keys exporters, extensions, processors, receivers, \
                 service, found a list"
            ]
        );
    }

    #[test]
    fn host_port_addresses_are_recognised() {
        for ok in ["127.0.0.1:8888", "0.0.0.0:1", ":9464", "localhost:13133", "[::1]:80"] {
            assert!(is_host_port(ok), "{ok}");
        }
        for bad in ["", "8888", "host:", "host:99999", "a b:1"] {
            assert!(!is_host_port(bad), "{bad}");
        }
    }
}
