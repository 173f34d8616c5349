//! Label sets cached per series and the per-round writer that stamps samples and declares each
//! family once.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use nodetel_core::labels::{LabelError, METRIC_NAME, Pair};
use nodetel_core::{Batch, Labels, LabelsBuilder, MetricMetadata, MetricType, Sample};

/// Label sets by metric name and label values, built once and reused every round.
#[derive(Debug)]
pub(crate) struct SeriesCache {
    base: [Pair; 2],
    builder: LabelsBuilder,
    sets: HashMap<String, Labels>,
    key: String,
    families: HashMap<&'static str, Arc<MetricMetadata>>,
}

impl SeriesCache {
    pub(crate) fn new(job: &str, instance: &str) -> Result<SeriesCache, LabelError> {
        Ok(SeriesCache {
            base: [Pair::new("job", job)?, Pair::new("instance", instance)?],
            builder: LabelsBuilder::new(),
            sets: HashMap::new(),
            key: String::new(),
            families: HashMap::new(),
        })
    }

    fn labels(&mut self, name: &str, labels: &[(&str, &str)]) -> Result<Labels, LabelError> {
        self.key.clear();
        self.key.push_str(name);
        for (n, v) in labels {
            self.key.push('\0');
            self.key.push_str(n);
            self.key.push('\0');
            self.key.push_str(v);
        }
        if let Some(l) = self.sets.get(self.key.as_str()) {
            return Ok(l.clone());
        }
        self.builder.clear();
        for p in &self.base {
            self.builder.push_pair(p.clone());
        }
        self.builder.push(METRIC_NAME, name)?;
        for (n, v) in labels {
            self.builder.push(n, v)?;
        }
        let set = self.builder.build()?;
        self.sets.insert(self.key.clone(), set.clone());
        Ok(set)
    }

    /// Drops cached sets not used in the last round once the cache has grown past twice the
    /// live size (jobs, users and reasons come and go).
    pub(crate) fn trim(&mut self, live: &HashSet<Labels>) {
        if self.sets.len() > 2 * live.len() + 64 {
            self.sets.retain(|_, l| live.contains(l));
        }
    }
}

/// Writes one round's samples.
pub(crate) struct Round<'a> {
    cache: &'a mut SeriesCache,
    out: &'a mut Batch,
    timestamp_ms: i64,
    declared: HashSet<&'static str>,
    pub(crate) live: HashSet<Labels>,
}

impl<'a> Round<'a> {
    pub(crate) fn new(cache: &'a mut SeriesCache, out: &'a mut Batch, timestamp_ms: i64) -> Round<'a> {
        Round {
            cache,
            out,
            timestamp_ms,
            declared: HashSet::new(),
            live: HashSet::new(),
        }
    }

    /// Emits a gauge sample. Label values that cannot be labels (never seen from Slurm) drop the
    /// sample with a debug log rather than failing the round.
    pub(crate) fn gauge(&mut self, name: &'static str, help: &'static str, labels: &[(&str, &str)], value: f64) {
        if self.declared.insert(name) {
            let md = self
                .cache
                .families
                .entry(name)
                .or_insert_with(|| Arc::new(MetricMetadata::new(name, MetricType::Gauge, help)))
                .clone();
            self.out.metadata.push(md);
        }
        match self.cache.labels(name, labels) {
            Ok(set) => {
                self.live.insert(set.clone());
                self.out.push(set, Sample::new(self.timestamp_ms, value));
            }
            Err(error) => tracing::debug!(%error, metric = name, "Dropping a Slurm sample with an unusable label."),
        }
    }

    /// Ends the round, trimming the cache.
    pub(crate) fn finish(self) {
        let live = self.live;
        self.cache.trim(&live);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_are_cached_and_carry_job_and_instance() {
        let mut cache = SeriesCache::new("slurm_exporter", "h1").unwrap();
        let mut b = Batch::new();
        let mut r = Round::new(&mut cache, &mut b, 5);
        r.gauge("slurm_cpus_idle", "h", &[], 3.0);
        r.gauge("slurm_node_cpu_alloc", "h", &[("node", "n1"), ("partition", "p")], 1.0);
        r.gauge("slurm_node_cpu_alloc", "h", &[("node", "n1"), ("partition", "p")], 2.0);
        r.finish();
        assert_eq!(b.metadata.len(), 2, "each family is declared once per round");
        assert_eq!(
            b.series[0].labels.to_string(),
            r#"slurm_cpus_idle{instance="h1",job="slurm_exporter"}"#
        );
        assert!(b.series[1].labels.ptr_eq(&b.series[2].labels));
    }
}
