//! A loaded config: the validated components and pipelines, ready to build.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use nodetel_core::{ComponentId, Processor, Receiver};

use crate::document::TelemetryDoc;
use crate::registry::{BuildFn, ExtensionValue, PreparedExporter};

/// The result of loading a config: the config and the warnings found on the way (unset
/// environment variables, remote write requested but unavailable).
#[derive(Debug)]
pub struct Loaded {
    /// Warnings to log; the config is usable regardless.
    pub warnings: Vec<String>,
    /// The validated config.
    pub config: Config,
}

/// A pipeline after validation: every id in it is defined and valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pipeline {
    /// `metrics` or `metrics/<name>`.
    pub name: String,
    /// Receivers feeding it.
    pub receivers: Vec<ComponentId>,
    /// Processors in order.
    pub processors: Vec<ComponentId>,
    /// Exporters it fans out to.
    pub exporters: Vec<ComponentId>,
}

/// A validated config. Every component section was decoded into its typed config and checked;
/// [`Config::build`] wires the components the pipelines use.
pub struct Config {
    pub(crate) receivers: BTreeMap<String, BuildFn<Box<dyn Receiver>>>,
    pub(crate) processors: BTreeMap<String, BuildFn<Box<dyn Processor>>>,
    pub(crate) exporters: BTreeMap<String, PreparedExporter>,
    pub(crate) extensions: BTreeMap<String, ExtensionValue>,
    pub(crate) enabled_extensions: Vec<ComponentId>,
    pub(crate) pipelines: Vec<Pipeline>,
    pub(crate) telemetry: TelemetryDoc,
    pub(crate) shutdown_timeout: Duration,
    pub(crate) queue_capacity: usize,
}

impl Config {
    /// The pipelines, in config order.
    pub fn pipelines(&self) -> &[Pipeline] {
        &self.pipelines
    }

    /// The extensions listed in `service.extensions`.
    pub fn enabled_extensions(&self) -> &[ComponentId] {
        &self.enabled_extensions
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("receivers", &self.receivers.keys().collect::<Vec<_>>())
            .field("processors", &self.processors.keys().collect::<Vec<_>>())
            .field("exporters", &self.exporters.keys().collect::<Vec<_>>())
            .field("extensions", &self.extensions.keys().collect::<Vec<_>>())
            .field("enabled_extensions", &self.enabled_extensions)
            .field("pipelines", &self.pipelines)
            .field("shutdown_timeout", &self.shutdown_timeout)
            .field("queue_capacity", &self.queue_capacity)
            .finish()
    }
}
