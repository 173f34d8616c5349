//! The `prometheus` receiver: scrapes Prometheus endpoints the way Prometheus does.
//!
//! - [`parser`]: zero-copy parser for the text format 0.0.4 and OpenMetrics 1.0.
//! - [`cache`]: per-target series cache (raw series text to final labels), staleness, eviction.
//! - [`relabel`]: Prometheus `relabel_config` semantics.
//! - [`process`]: one body to series (cache, target labels, metric relabeling, limits).

pub mod cache;
pub mod config;
pub mod file_sd;
mod md5;
pub mod parser;
pub mod process;
pub mod receiver;
pub mod relabel;
pub mod scrape;
pub mod series_text;
pub mod target;
pub mod value;

pub use config::PrometheusConfig;
pub use receiver::PrometheusReceiver;
