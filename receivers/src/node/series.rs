//! Building and caching label sets, and pushing samples with their family metadata.
//!
//! A node reports the same series every round, so collectors build each series' `Labels` once
//! (through [`SeriesFactory`]) and keep it; a round of an unchanged node only clones `Arc`s.

use std::collections::HashMap;
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
    /// Counts rounds, so [`Family`] knows when a new one starts.
    round: u64,
}

impl<'a> Context<'a> {
    pub(crate) fn new(
        series: &'a mut SeriesFactory,
        buf: &'a mut String,
        out: &'a mut Batch,
        timestamp_ms: i64,
        round: u64,
    ) -> Context<'a> {
        Context {
            series,
            buf,
            out,
            timestamp_ms,
            round,
        }
    }

    /// The timestamp of this round's samples.
    pub(crate) fn timestamp_ms(&self) -> i64 {
        self.timestamp_ms
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

/// One metric family whose series are told apart by label values: caches each series' label set
/// by its values, declares the family's metadata once per round, and forgets series that were
/// not reported in the previous round (interfaces and disks come and go).
#[derive(Debug)]
pub(crate) struct Family {
    md: Arc<MetricMetadata>,
    series: HashMap<Box<str>, (Labels, u64)>,
    key: String,
    round: u64,
    used: usize,
}

impl Family {
    pub(crate) fn new(name: &str, kind: MetricType, help: &str) -> Family {
        Family {
            md: family(name, kind, help),
            series: HashMap::new(),
            key: String::new(),
            round: u64::MAX,
            used: 0,
        }
    }

    /// Pushes one sample of the series with these label `(name, value)` pairs. The names must be
    /// the same, in the same order, on every call for a family.
    pub(crate) fn emit(&mut self, cx: &mut Context<'_>, labels: &[(&str, &str)], value: f64) -> Result<(), LabelError> {
        if self.round != cx.round {
            if self.series.len() > self.used {
                let last = self.round;
                self.series.retain(|_, (_, seen)| *seen == last);
            }
            self.round = cx.round;
            self.used = 0;
            cx.family(&self.md);
        }
        self.key.clear();
        for (_, v) in labels {
            self.key.push_str(v);
            self.key.push('\u{0}');
        }
        let entry = match self.series.get_mut(self.key.as_str()) {
            Some(entry) => entry,
            None => {
                let built = cx.series.labels(&self.md.family, labels)?;
                self.series.entry(self.key.as_str().into()).or_insert((built, 0))
            }
        };
        if entry.1 != cx.round {
            entry.1 = cx.round;
            self.used += 1;
        }
        cx.sample(&entry.0, value);
        Ok(())
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

    #[test]
    fn families_cache_series_and_forget_vanished_ones() {
        let mut f = SeriesFactory::new("j", "i").unwrap();
        let mut buf = String::new();
        let mut fam = Family::new("node_x", MetricType::Gauge, "X.");
        let mut round = |n: u64, devices: &[&str]| {
            let mut out = Batch::new();
            let mut cx = Context::new(&mut f, &mut buf, &mut out, 0, n);
            for d in devices {
                fam.emit(&mut cx, &[("device", d)], 1.0).unwrap();
            }
            out
        };
        let a = round(1, &["a", "b"]);
        assert_eq!(a.metadata.len(), 1, "metadata once per round");
        let b = round(2, &["a"]);
        assert!(a.series[0].labels.ptr_eq(&b.series[0].labels));
        let c = round(3, &["b"]);
        assert!(
            !a.series[1].labels.ptr_eq(&c.series[0].labels),
            "b was forgotten after a round without it"
        );
        assert_eq!(c.series[0].labels, a.series[1].labels);
    }
}
