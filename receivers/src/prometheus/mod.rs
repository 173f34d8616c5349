//! The `prometheus` receiver: scrapes Prometheus endpoints the way Prometheus does.
//!
//! - [`config`]: the otelcol form (`config: {global, scrape_configs}`) with Prometheus' keys.
//! - [`target`], [`file_sd`]: target discovery and `relabel_configs`.
//! - [`scrape`], [`receiver`]: one task per target, HTTP, report series, staleness on removal.
//! - [`parser`]: zero-copy parser for the text format 0.0.4 and OpenMetrics 1.0.
//! - [`cache`]: per-target series cache (raw series text to final labels), staleness, eviction.
//! - [`process`]: one body to series (cache, target labels, metric relabeling, limits).
//! - [`relabel`]: Prometheus `relabel_config` semantics.
//!
//! Where behaviour differs from Prometheus, on purpose:
//!
//! - The text format is asked for first (`scrape_protocols` changes that): it is the cheaper
//!   format to parse and carries the same series.
//! - `global.external_labels` are added to scraped series here, since this collector's output
//!   goes to remote write, where Prometheus would add them.
//! - A series repeated in one body, or two series whose labels end up equal (label order,
//!   merging metric relabeling), keep the first sample; the scrape still succeeds (Prometheus
//!   also keeps the scrape and rejects the later sample).
//! - `password_file` and `credentials_file` are read when the receiver starts, not per scrape.
//! - `tls_config.server_name` is rejected: the HTTP client cannot override the TLS name.
//! - No staleness markers are written at process shutdown; they are written for vanished
//!   series, failed scrapes and targets removed by discovery.

pub mod cache;
pub mod config;
pub mod file_sd;
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
