//! Build: turns a validated config into the runtime graph and the service settings.
//!
//! One receiver instance per receiver id, however many pipelines it feeds; one processor
//! instance per pipeline that lists it; one exporter instance per exporter id, shared by the
//! pipelines that name it. Components no pipeline uses are not built.

use std::any::Any;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use nodetel_core::ComponentId;
use nodetel_core::config::BuildContext;
use nodetel_core::runtime::{
    ExporterSpec, Factory, PipelineSpec, ProcessorSpec, ReceiverSpec, RuntimeSettings, Topology,
};
use nodetel_core::telemetry::Registry;

use crate::error::{ConfigError, ConfigErrors};
use crate::health_check::HealthCheckConfig;
use crate::loaded::Config;
use crate::registry::BuildFn;

/// Where the self-metrics endpoint listens unless `service.telemetry.metrics.address` says
/// otherwise (otelcol's default port, on loopback).
pub const DEFAULT_TELEMETRY_ADDRESS: &str = "127.0.0.1:8888";

/// The runtime graph and the settings of the service around it.
#[derive(Debug)]
pub struct Service {
    /// Receivers, pipelines and exporters, ready to start.
    pub topology: Topology,
    /// Settings for the self-metrics and health endpoints, logging and shutdown.
    pub settings: ServiceSettings,
}

/// Service settings from the `service` section and the enabled extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceSettings {
    /// Where the self-metrics endpoint listens. Default `127.0.0.1:8888`.
    pub telemetry_address: String,
    /// False when `service.telemetry.metrics.level` is `none`: serve no self-metrics endpoint.
    pub telemetry_enabled: bool,
    /// Where the health endpoint listens: the `health_check` extension's endpoint when one is
    /// enabled, else `127.0.0.1:13133`.
    pub health_address: Option<String>,
    /// The health endpoint's path. Default `/`.
    pub health_path: String,
    /// How long shutdown may take to drain and flush. Default 10s.
    pub shutdown_timeout: Duration,
    /// `service.telemetry.logs.level`, lower-cased, when set.
    pub log_level: Option<String>,
    /// `service.telemetry.logs.encoding` (`console` or `json`), lower-cased, when set.
    pub log_encoding: Option<String>,
}

impl Config {
    /// Builds the runtime graph. Components are not constructed here: the runtime calls the
    /// factories at start, so a component that cannot be built fails the start.
    pub fn build(&self, registry: Arc<Registry>) -> Result<Service, ConfigErrors> {
        self.build_for_host(registry, nodetel_host::identity::hostname())
    }

    pub(crate) fn build_for_host(&self, registry: Arc<Registry>, hostname: String) -> Result<Service, ConfigErrors> {
        let extensions: BTreeMap<String, Arc<dyn Any + Send + Sync>> = self
            .enabled_extensions
            .iter()
            .filter_map(|id| Some((id.to_string(), self.extensions.get(id.as_str())?.clone())))
            .collect();
        let extensions = Arc::new(extensions);
        let context = |id: &ComponentId| BuildContext {
            id: id.clone(),
            hostname: hostname.clone(),
            registry: registry.clone(),
            extensions: extensions.clone(),
        };
        let mut errors = Vec::new();
        let mut missing = |path: String, id: &ComponentId| {
            // Validation only lets through ids it decoded; this guards against a broken invariant.
            errors.push(ConfigError::new(path, format!("{id} has no validated config")));
        };

        let mut receivers: Vec<ReceiverSpec> = Vec::new();
        let mut exporters: Vec<ExporterSpec> = Vec::new();
        let mut pipelines = Vec::with_capacity(self.pipelines.len());
        for (index, p) in self.pipelines.iter().enumerate() {
            let path = format!("service.pipelines.{}", p.name);
            for id in &p.receivers {
                if let Some(spec) = receivers.iter_mut().find(|r| &r.id == id) {
                    spec.pipelines.push(index);
                    continue;
                }
                match self.receivers.get(id.as_str()) {
                    Some(build) => receivers.push(ReceiverSpec {
                        id: id.clone(),
                        factory: factory(build, context(id)),
                        pipelines: vec![index],
                    }),
                    None => missing(format!("{path}.receivers"), id),
                }
            }
            let mut processors = Vec::with_capacity(p.processors.len());
            for id in &p.processors {
                match self.processors.get(id.as_str()) {
                    Some(build) => processors.push(ProcessorSpec {
                        id: id.clone(),
                        factory: factory(build, context(id)),
                    }),
                    None => missing(format!("{path}.processors"), id),
                }
            }
            let mut outputs = Vec::with_capacity(p.exporters.len());
            for id in &p.exporters {
                if let Some(i) = exporters.iter().position(|e| &e.id == id) {
                    outputs.push(i);
                    continue;
                }
                match self.exporters.get(id.as_str()) {
                    Some(prepared) => {
                        outputs.push(exporters.len());
                        exporters.push(ExporterSpec {
                            id: id.clone(),
                            factory: factory(&prepared.build, context(id)),
                        });
                    }
                    None => missing(format!("{path}.exporters"), id),
                }
            }
            pipelines.push(PipelineSpec {
                name: p.name.clone(),
                processors,
                exporters: outputs,
            });
        }
        if !errors.is_empty() {
            return Err(ConfigErrors(errors));
        }

        let health = extensions
            .values()
            .find_map(|v| v.clone().downcast::<HealthCheckConfig>().ok())
            .unwrap_or_else(|| Arc::new(HealthCheckConfig::default()));
        let telemetry = &self.telemetry;
        let settings = ServiceSettings {
            telemetry_address: telemetry
                .metrics
                .address
                .clone()
                .unwrap_or_else(|| DEFAULT_TELEMETRY_ADDRESS.to_owned()),
            telemetry_enabled: !telemetry
                .metrics
                .level
                .as_deref()
                .is_some_and(|l| l.eq_ignore_ascii_case("none")),
            health_address: Some(health.endpoint.clone()),
            health_path: health.path.clone(),
            shutdown_timeout: self.shutdown_timeout,
            log_level: telemetry.logs.level.as_deref().map(str::to_ascii_lowercase),
            log_encoding: telemetry.logs.encoding.as_deref().map(str::to_ascii_lowercase),
        };
        Ok(Service {
            topology: Topology {
                receivers,
                pipelines,
                exporters,
                settings: RuntimeSettings {
                    queue_capacity: self.queue_capacity,
                    ..RuntimeSettings::default()
                },
            },
            settings,
        })
    }
}

fn factory<T: 'static>(build: &BuildFn<T>, cx: BuildContext) -> Factory<T> {
    let build = build.clone();
    Arc::new(move || build(&cx))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_components::components;
    use crate::{Components, load_file_with, load_str_with};

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn ids<T>(items: &[T], id: impl Fn(&T) -> &ComponentId) -> Vec<String> {
        items.iter().map(|x| id(x).to_string()).collect()
    }

    #[test]
    fn receivers_and_exporters_are_shared_and_processors_are_per_pipeline() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/valid_full.yaml");
        let loaded = load_file_with(&path, &no_env, &Components::builtin()).unwrap();
        let service = loaded
            .config
            .build_for_host(Arc::new(Registry::new()), "node-1".into())
            .unwrap();
        let t = &service.topology;
        assert_eq!(ids(&t.receivers, |r| &r.id), vec!["node", "node/fast"]);
        assert_eq!(t.receivers[0].pipelines, vec![0, 1]);
        assert_eq!(t.receivers[1].pipelines, vec![1]);
        // debug/unused is defined but in no pipeline, so it is not part of the graph.
        assert_eq!(ids(&t.exporters, |e| &e.id), vec!["prometheus", "debug"]);
        let names: Vec<_> = t.pipelines.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, vec!["metrics", "metrics/fast"]);
        assert_eq!(t.pipelines[0].exporters, vec![0]);
        assert_eq!(t.pipelines[1].exporters, vec![1, 0]);
        for p in &t.pipelines {
            assert_eq!(ids(&p.processors, |x| &x.id), vec!["batch"]);
        }
        assert_eq!(t.settings.queue_capacity, 16);
        assert_eq!(
            service.settings,
            ServiceSettings {
                telemetry_address: "127.0.0.1:18888".into(),
                telemetry_enabled: true,
                health_address: Some("127.0.0.1:23133".into()),
                health_path: "/health".into(),
                shutdown_timeout: Duration::from_secs(30),
                log_level: Some("debug".into()),
                log_encoding: Some("json".into()),
            }
        );
    }

    #[test]
    fn service_settings_default_when_the_service_section_says_nothing() {
        let yaml = "receivers: {node: }\nexporters: {debug: }\nservice:\n  telemetry: {metrics: {level: none}}\n  \
                    pipelines: {metrics: {receivers: [node], exporters: [debug]}}\n";
        let loaded = load_str_with(yaml, "x.yaml", &no_env, &Components::builtin()).unwrap();
        let service = loaded.config.build(Arc::new(Registry::new())).unwrap();
        assert_eq!(
            service.settings,
            ServiceSettings {
                telemetry_address: DEFAULT_TELEMETRY_ADDRESS.into(),
                telemetry_enabled: false,
                health_address: Some("127.0.0.1:13133".into()),
                health_path: "/".into(),
                shutdown_timeout: Duration::from_secs(10),
                log_level: None,
                log_encoding: None,
            }
        );
        assert_eq!(service.topology.settings.queue_capacity, 64);
    }

    #[tokio::test]
    async fn factories_get_their_id_the_hostname_and_the_enabled_extensions() {
        let yaml = "\
receivers: {node: }
exporters:
  refsink/signed: {endpoint: x, auth: {authenticator: refauth/west}}
  refsink: {endpoint: x}
extensions:
  refauth/west: {region: us-west-2}
  refauth/unused: {region: eu-west-1}
service:
  extensions: [refauth/west]
  pipelines: {metrics: {receivers: [node], exporters: [refsink/signed, refsink]}}
";
        let loaded = load_str_with(yaml, "x.yaml", &no_env, &components()).unwrap();
        let service = loaded
            .config
            .build_for_host(Arc::new(Registry::new()), "ip-10-1-2-3".into())
            .unwrap();
        let mut built = Vec::new();
        for spec in &service.topology.exporters {
            let mut exporter = (spec.factory)().unwrap();
            // The test exporter reports how it was built as its (permanent) export error.
            let error = exporter.export(Arc::new(nodetel_core::Batch::new())).await.unwrap_err();
            built.push(error.to_string());
        }
        assert_eq!(
            built,
            vec![
                "permanent: refsink/signed on ip-10-1-2-3 region Some(\"us-west-2\")",
                "permanent: refsink on ip-10-1-2-3 region None",
            ]
        );
    }
}
