//! Running the enabled collectors: one round, with node_exporter's per-collector success and
//! duration series, off the async runtime.

use std::sync::Arc;
use std::time::Instant;

use nodetel_core::blocking::BlockingCollector;
use nodetel_core::{Batch, Labels, MetricMetadata, MetricType};

use super::collectors::{self, CollectError, Collector};
use super::config::NodeConfig;
use super::series::{Context, SeriesFactory, family};

/// Why the node receiver could not be built or could not run a round.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// `job` or `instance` cannot be used as a label value.
    #[error("cannot build the job/instance labels: {0}")]
    Labels(#[from] nodetel_core::labels::LabelError),
    /// A collector's filter regex does not compile.
    #[error("collector {collector}: invalid regex: {source}")]
    Regex {
        /// The collector.
        collector: &'static str,
        /// What the regex engine said.
        source: regex::Error,
    },
}

struct Entry {
    name: &'static str,
    collector: Box<dyn Collector>,
    success: Labels,
    duration: Labels,
    failing: bool,
}

/// The enabled collectors and their cached series; one [`NodeCollector::collect`] is one round.
///
/// Collection is synchronous: it reads files under the configured roots.
pub struct NodeCollector {
    entries: Vec<Entry>,
    series: SeriesFactory,
    buf: String,
    duration_md: Arc<MetricMetadata>,
    success_md: Arc<MetricMetadata>,
    last_len: usize,
    round: u64,
}

impl std::fmt::Debug for NodeCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<_> = self.entries.iter().map(|e| e.name).collect();
        f.debug_struct("NodeCollector").field("collectors", &names).finish()
    }
}

impl NodeCollector {
    /// Builds the collectors `config` enables, labelling every series with its `job` and
    /// `instance`. Reads nothing yet.
    pub fn new(config: &NodeConfig, instance: &str) -> Result<NodeCollector, NodeError> {
        let paths = config.path.resolve();
        let mut series = SeriesFactory::new(&config.job, instance)?;
        let duration_md = family(
            "node_scrape_collector_duration_seconds",
            MetricType::Gauge,
            "node_exporter: Duration of a collector scrape.",
        );
        let success_md = family(
            "node_scrape_collector_success",
            MetricType::Gauge,
            "node_exporter: Whether a collector succeeded.",
        );
        let mut entries = Vec::new();
        for name in config.collectors.active() {
            let Some(reg) = collectors::find(name) else { continue };
            entries.push(Entry {
                name,
                collector: (reg.build)(&paths, &config.collectors).map_err(|source| NodeError::Regex {
                    collector: name,
                    source,
                })?,
                success: series.labels(&success_md.family, &[("collector", name)])?,
                duration: series.labels(&duration_md.family, &[("collector", name)])?,
                failing: false,
            });
        }
        Ok(NodeCollector {
            entries,
            series,
            buf: String::with_capacity(8192),
            duration_md,
            success_md,
            last_len: 0,
            round: 0,
        })
    }

    /// Swaps the collector called `name` (tests use it to fake system calls).
    #[cfg(test)]
    pub(crate) fn replace(&mut self, name: &str, collector: Box<dyn Collector>) {
        if let Some(entry) = self.entries.iter_mut().find(|e| e.name == name) {
            entry.collector = collector;
        }
    }

    /// The names of the collectors that run.
    pub fn collector_names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.entries.iter().map(|e| e.name)
    }

    /// Runs every collector once, appending its series to `out` stamped with `timestamp_ms`.
    ///
    /// A failing collector contributes only `node_scrape_collector_success{collector} 0`; its
    /// failure is logged when it starts and when it ends, not every round.
    pub fn collect(&mut self, timestamp_ms: i64, out: &mut Batch) {
        out.series.reserve(self.last_len);
        let start_len = out.series.len();
        let mut results = Vec::with_capacity(self.entries.len());
        {
            self.round += 1;
            let mut cx = Context::new(&mut self.series, &mut self.buf, out, timestamp_ms, self.round);
            for entry in &mut self.entries {
                let mark = cx.mark();
                let started = Instant::now();
                let result = entry.collector.update(&mut cx);
                let elapsed = started.elapsed().as_secs_f64();
                match &result {
                    Ok(()) if entry.failing => {
                        tracing::info!(collector = entry.name, "Collector recovered.");
                        entry.failing = false;
                    }
                    Ok(()) => {}
                    Err(error) => {
                        cx.rollback(mark);
                        if matches!(error, CollectError::NoData(_)) {
                            tracing::debug!(collector = entry.name, %error, "Collector has no data.");
                        } else if !entry.failing {
                            tracing::warn!(
                                collector = entry.name,
                                %error,
                                "Collector failed; reporting node_scrape_collector_success 0 until it recovers."
                            );
                            entry.failing = true;
                        }
                    }
                }
                results.push((result.is_ok(), elapsed));
            }
            cx.family(&self.duration_md);
            cx.family(&self.success_md);
            for (entry, (ok, elapsed)) in self.entries.iter().zip(&results) {
                cx.sample(&entry.duration, *elapsed);
                cx.sample(&entry.success, if *ok { 1.0 } else { 0.0 });
            }
        }
        self.last_len = out.series.len() - start_len;
    }
}

impl BlockingCollector for NodeCollector {
    fn collect(&mut self, timestamp_ms: i64, out: &mut Batch) {
        NodeCollector::collect(self, timestamp_ms, out);
    }
}
