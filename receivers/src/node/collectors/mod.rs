//! The sub-collectors of the `node` receiver, each named and defaulted as in node_exporter.

use nodetel_core::labels::LabelError;
use nodetel_host::procfs::ReadError;

use super::config::Paths;
use super::series::Context;

mod cpu;
mod loadavg;
mod meminfo;

/// Why one collector failed this round.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CollectError {
    /// A file could not be read or parsed.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// A label set could not be built (a metric or label name derived from file contents).
    #[error("cannot build a label set: {0}")]
    Label(#[from] LabelError),
}

/// One node_exporter collector.
pub(crate) trait Collector: Send {
    /// Collects one round into `cx`. On error the runtime drops what this round pushed.
    fn update(&mut self, cx: &mut Context<'_>) -> Result<(), CollectError>;
}

/// A collector's name, whether node_exporter enables it by default, and how to build it.
pub(crate) struct Registration {
    pub(crate) name: &'static str,
    pub(crate) default_enabled: bool,
    pub(crate) build: fn(&Paths) -> Box<dyn Collector>,
}

/// Every collector, in the order they run.
pub(crate) const REGISTRY: &[Registration] = &[
    Registration {
        name: "cpu",
        default_enabled: true,
        build: |p| Box::new(cpu::CpuCollector::new(p)),
    },
    Registration {
        name: "loadavg",
        default_enabled: true,
        build: |p| Box::new(loadavg::LoadavgCollector::new(p)),
    },
    Registration {
        name: "meminfo",
        default_enabled: true,
        build: |p| Box::new(meminfo::MeminfoCollector::new(p)),
    },
];

/// The registration of collector `name`.
pub(crate) fn find(name: &str) -> Option<&'static Registration> {
    REGISTRY.iter().find(|r| r.name == name)
}
