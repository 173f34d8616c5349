//! The `node` receiver: host metrics read from /proc and /sys under node_exporter 1.9.1's names,
//! labels, types and help texts, so dashboards built for node_exporter keep working.
//!
//! Each sub-collector carries its node_exporter name (`cpu`, `meminfo`, `loadavg`, ...) and
//! default; every round also reports `node_scrape_collector_success{collector}` and
//! `node_scrape_collector_duration_seconds{collector}`. Every series carries the configured
//! `job` and `instance` labels.
//!
//! The rest of this page is the component README.
#![doc = include_str!("README.md")]

mod collectors;
mod config;
mod scraper;
mod series;

#[cfg(test)]
mod tests;

pub use config::{
    CollectorsConfig, DiskstatsOptions, FilesystemOptions, NetstatOptions, NodeConfig, PathConfig, Paths,
    TextfileOptions, VmstatOptions,
};
pub use scraper::{NodeCollector, NodeError};
