//! Building and caching label sets, and pushing samples with their family metadata.
//!
//! A node reports the same series every round, so collectors build each series' `Labels` once
//! (through [`SeriesFactory`]) and keep it; a round of an unchanged node only clones `Arc`s.

use std::sync::Arc;

use nodetel_core::labels::{LabelError, METRIC_NAME, Pair};
use nodetel_core::{Batch, Labels, LabelsBuilder, MetricMetadata, MetricType, Sample};

/// Builds label sets that all carry the receiver's `job` and `instance` labels.
#[derive(Debug)]
pub(crate) struct SeriesFactory {
    base: Vec<Pair>,
    builder: LabelsBuilder,
}

impl SeriesFactory {
    pub(crate) fn new(job: &str, instance: &str) -> Result<SeriesFactory, LabelError> {
        Ok(SeriesFactory {
            base: vec![Pair::new("job", job)?, Pair::new("instance", instance)?],
            builder: LabelsBuilder::new(),
        })
    }

    /// The label set of metric `name` with `labels` plus `job` and `instance`.
    pub(crate) fn labels(&mut self, name: &str, labels: &[(&str, &str)]) -> Result<Labels, LabelError> {
        self.builder.clear();
        for pair in &self.base {
            self.builder.push_pair(pair.clone());
        }
        self.builder.push(METRIC_NAME, name)?;
        for (n, v) in labels {
            self.builder.push(n, v)?;
        }
        self.builder.build()
    }
}

/// Metadata of one family, as node_exporter declares it.
pub(crate) fn family(name: &str, kind: MetricType, help: &str) -> Arc<MetricMetadata> {
    Arc::new(MetricMetadata::new(name, kind, help))
}

/// What a collector writes into during one round.
pub(crate) struct Context<'a> {
    /// Label sets for new series.
    pub(crate) series: &'a mut SeriesFactory,
    /// A read buffer collectors share, so file reads do not allocate in steady state.
    pub(crate) buf: &'a mut String,
    out: &'a mut Batch,
    timestamp_ms: i64,
}

impl<'a> Context<'a> {
    pub(crate) fn new(
        series: &'a mut SeriesFactory,
        buf: &'a mut String,
        out: &'a mut Batch,
        timestamp_ms: i64,
    ) -> Context<'a> {
        Context {
            series,
            buf,
            out,
            timestamp_ms,
        }
    }

    /// Declares a family emitted this round.
    pub(crate) fn family(&mut self, md: &Arc<MetricMetadata>) {
        self.out.metadata.push(md.clone());
    }

    /// Pushes one sample of a series.
    pub(crate) fn sample(&mut self, labels: &Labels, value: f64) {
        self.out.push(labels.clone(), Sample::new(self.timestamp_ms, value));
    }

    /// How many series and metadata entries have been pushed so far (to undo a failed collector).
    pub(crate) fn mark(&self) -> (usize, usize) {
        (self.out.series.len(), self.out.metadata.len())
    }

    /// Drops what was pushed after `mark`.
    pub(crate) fn rollback(&mut self, mark: (usize, usize)) {
        self.out.series.truncate(mark.0);
        self.out.metadata.truncate(mark.1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_set_carries_job_and_instance() {
        let mut f = SeriesFactory::new("node_exporter", "h1").unwrap();
        let l = f
            .labels("node_cpu_seconds_total", &[("cpu", "0"), ("mode", "idle")])
            .unwrap();
        assert_eq!(
            l.to_string(),
            r#"node_cpu_seconds_total{cpu="0",instance="h1",job="node_exporter",mode="idle"}"#
        );
        let again = f.labels("node_load1", &[]).unwrap();
        assert_eq!(again.to_string(), r#"node_load1{instance="h1",job="node_exporter"}"#);
        assert!(f.labels("bad name", &[]).is_err());
    }
}
