//! `loadavg`: `node_load1`, `node_load5`, `node_load15` from `/proc/loadavg`.

use std::path::PathBuf;
use std::sync::Arc;

use nodetel_core::{Labels, MetricMetadata, MetricType};
use nodetel_host::procfs::loadavg;

use super::{CollectError, Collector};
use crate::node::config::Paths;
use crate::node::series::{Context, family};

const FAMILIES: [(&str, &str); 3] = [
    ("node_load1", "1m load average."),
    ("node_load5", "5m load average."),
    ("node_load15", "15m load average."),
];

pub(crate) struct LoadavgCollector {
    path: PathBuf,
    metadata: [Arc<MetricMetadata>; 3],
    labels: Option<[Labels; 3]>,
}

impl LoadavgCollector {
    pub(crate) fn new(paths: &Paths) -> LoadavgCollector {
        LoadavgCollector {
            path: paths.procfs.join(loadavg::FILE),
            metadata: FAMILIES.map(|(name, help)| family(name, MetricType::Gauge, help)),
            labels: None,
        }
    }
}

impl Collector for LoadavgCollector {
    fn update(&mut self, cx: &mut Context<'_>) -> Result<(), CollectError> {
        let load = loadavg::read(&self.path, cx.buf)?;
        let labels = match &self.labels {
            Some(l) => l,
            None => {
                let [a, b, c] = FAMILIES.map(|(name, _)| cx.series.labels(name, &[]));
                self.labels.insert([a?, b?, c?])
            }
        };
        for ((md, l), v) in self
            .metadata
            .iter()
            .zip(labels)
            .zip([load.load1, load.load5, load.load15])
        {
            cx.family(md);
            cx.sample(l, v);
        }
        Ok(())
    }
}
