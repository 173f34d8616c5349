//! Build: turns a validated config into the runtime graph and the service settings.
//!
//! One receiver instance per receiver id, however many pipelines it feeds; one processor
//! instance per pipeline that lists it; one exporter instance per exporter id, shared by the
//! pipelines that name it. Components no pipeline uses are not built.

use std::any::Any;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use nodetel_core::config::BuildContext;
use nodetel_core::runtime::{
    ExporterSpec, Factory, PipelineSpec, ProcessorSpec, ReceiverSpec, RuntimeSettings, Topology,
};
use nodetel_core::telemetry::Registry;
use nodetel_core::ComponentId;

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
