//! Turning one scraped body into series: parse, look every series up in the target's cache and
//! build the labels of new ones (target labels, `honor_labels`, `metric_relabel_configs`, label
//! limits, external labels), then write staleness markers for series that vanished.
//!
//! For a body whose series were all seen before this allocates nothing per series: a cache hit
//! clones an `Arc`, and the value parse works on the body's bytes.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use nodetel_core::labels::METRIC_NAME;
use nodetel_core::{Batch, Labels, LabelsBuilder, MetricMetadata, MetricType, Sample};

use super::cache::{KeyHasher, Lookup, SeriesCache};
use super::parser::{Entry, Format, ParseError, Parser, SampleLine};
use super::relabel::{LabelMap, Relabeler};
use super::series_text::{for_each_label, unescape_help};

/// Limits that fail a scrape when exceeded (0 = no limit), as in Prometheus.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    /// Most samples a scrape may keep after metric relabeling.
    pub sample_limit: usize,
    /// Most labels a series may have.
    pub label_limit: usize,
    /// Longest label name.
    pub label_name_length_limit: usize,
    /// Longest label value.
    pub label_value_length_limit: usize,
}

/// How the series of one target are labeled: fixed for the life of the target.
#[derive(Debug, Clone, Default)]
pub struct SeriesSettings {
    /// The target's labels (`job`, `instance` and the rest, after target relabeling).
    pub target_labels: Vec<(String, String)>,
    /// Exposed labels win over target labels (else they are renamed `exported_<name>`).
    pub honor_labels: bool,
    /// Use the timestamps the target exposes.
    pub honor_timestamps: bool,
    /// `metric_relabel_configs`.
    pub metric_relabel: Relabeler,
    /// `global.external_labels`, added where a series lacks them.
    pub external_labels: Vec<(String, String)>,
    /// Limits.
    pub limits: Limits,
}

/// Why a body could not be turned into series; the scrape fails (`up` = 0).
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// A malformed line.
    #[error("malformed exposition: {0}")]
    Parse(#[from] ParseError),
    /// A series whose labels cannot be stored.
    #[error("line {line}: invalid series {series:?}: {reason}")]
    InvalidSeries {
        /// 1-based line.
        line: usize,
        /// The series text.
        series: String,
        /// What is wrong.
        reason: String,
    },
    /// More samples than `sample_limit`; processing stops at the first sample over it.
    #[error("sample_limit exceeded: more than {limit} samples after metric relabeling")]
    SampleLimit {
        /// The limit.
        limit: usize,
    },
    /// A series breaks a label limit.
    #[error("line {line}: series {series:?} exceeds {what}")]
    LabelLimit {
        /// 1-based line.
        line: usize,
        /// The series text.
        series: String,
        /// Which limit and by how much.
        what: String,
    },
}

/// Counts of one processed body, for the synthetic `scrape_*` series.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProcessStats {
    /// Sample lines in the body.
    pub scraped: usize,
    /// Samples kept after metric relabeling.
    pub post_relabel: usize,
    /// Series not seen in the cache before.
    pub added: usize,
    /// Repeated series dropped (the first occurrence is kept).
    pub duplicates: usize,
}

#[derive(Debug)]
struct MetaEntry {
    raw_help: Box<[u8]>,
    unit: Box<[u8]>,
    meta: Arc<MetricMetadata>,
}

#[derive(Debug, Default, Clone, Copy)]
struct PendingFamily<'a> {
    name: &'a [u8],
    help: Option<&'a [u8]>,
    kind: MetricType,
    unit: &'a [u8],
}

/// The state that turns bodies of one target into series.
#[derive(Debug)]
pub struct SeriesProcessor {
    settings: Arc<SeriesSettings>,
    cache: SeriesCache,
    metadata: HashMap<Box<[u8]>, MetaEntry, KeyHasher>,
    builder: LabelsBuilder,
    scratch: LabelMap,
    /// Label sets emitted in this scrape; used only for targets whose series collide.
    emitted: HashSet<Labels>,
}

impl SeriesProcessor {
    /// A processor with an empty cache.
    pub fn new(settings: Arc<SeriesSettings>) -> SeriesProcessor {
        SeriesProcessor {
            settings,
            cache: SeriesCache::new(),
            metadata: HashMap::default(),
            builder: LabelsBuilder::new(),
            scratch: LabelMap::new(),
            emitted: HashSet::new(),
        }
    }

    /// The settings.
    pub fn settings(&self) -> &Arc<SeriesSettings> {
        &self.settings
    }

    /// Number of cached series.
    pub fn cached_series(&self) -> usize {
        self.cache.len()
    }

    /// Appends the series of `body` to `out`, stamped `timestamp_ms` unless they carry their own
    /// timestamp and `honor_timestamps` is set, plus staleness markers for vanished series.
    ///
    /// On error nothing of this body stays in `out`, and every series of the previous scrape is
    /// marked stale, as Prometheus does for a failed scrape.
    pub fn process(
        &mut self,
        body: &[u8],
        format: Format,
        timestamp_ms: i64,
        out: &mut Batch,
    ) -> Result<ProcessStats, ProcessError> {
        let (series_mark, meta_mark) = (out.series.len(), out.metadata.len());
        self.cache.begin();
        match self.process_inner(body, format, timestamp_ms, out) {
            Ok(stats) => {
                self.cache.finish(timestamp_ms, out);
                Ok(stats)
            }
            Err(e) => {
                out.series.truncate(series_mark);
                out.metadata.truncate(meta_mark);
                self.cache.rollback();
                self.cache.finish(timestamp_ms, out);
                Err(e)
            }
        }
    }

    /// Records a scrape that failed before there was a body to process (HTTP error, timeout):
    /// every series of the previous successful scrape gets a staleness marker, once.
    pub fn fail(&mut self, timestamp_ms: i64, out: &mut Batch) {
        self.cache.begin();
        self.cache.finish(timestamp_ms, out);
    }

    /// Records that the target went away: staleness markers for every series of its last scrape.
    pub fn stale_all(&mut self, timestamp_ms: i64, out: &mut Batch) {
        self.cache.stale_all(timestamp_ms, out);
    }

    fn process_inner(
        &mut self,
        body: &[u8],
        format: Format,
        timestamp_ms: i64,
        out: &mut Batch,
    ) -> Result<ProcessStats, ProcessError> {
        let mut stats = ProcessStats::default();
        let mut parser = Parser::new(body, format);
        let mut family = PendingFamily::default();
        let honor_timestamps = self.settings.honor_timestamps;
        self.emitted.clear();
        let first = out.series.len();
        let mut dedupe = self.cache.has_collisions();
        let sample_limit = self.settings.limits.sample_limit;
        while let Some(entry) = parser.next() {
            let sample = match entry? {
                Entry::Sample(s) => s,
                Entry::Help { name, text } => {
                    self.switch_family(&mut family, name, out);
                    family.help = Some(text);
                    continue;
                }
                Entry::Type { name, kind } => {
                    self.switch_family(&mut family, name, out);
                    family.kind = kind;
                    continue;
                }
                Entry::Unit { name, unit } => {
                    self.switch_family(&mut family, name, out);
                    family.unit = unit;
                    continue;
                }
            };
            stats.scraped += 1;
            let explicit = honor_timestamps && sample.timestamp_ms.is_some();
            let ts = if explicit {
                sample.timestamp_ms.unwrap_or(timestamp_ms)
            } else {
                timestamp_ms
            };
            let labels = match self.cache.lookup(sample.series, explicit) {
                Lookup::Hit(e) => e.labels.clone(),
                Lookup::Duplicate => {
                    stats.duplicates += 1;
                    continue;
                }
                Lookup::Miss => {
                    let labels = self.build_labels(&sample, parser.line())?;
                    self.cache.insert(sample.series, labels.clone(), explicit);
                    if !dedupe && self.cache.has_collisions() {
                        // The first collision of this target: catch up on this scrape so far.
                        dedupe = true;
                        self.emitted
                            .extend(out.series[first..].iter().map(|s| s.labels.clone()));
                    }
                    if labels.is_some() {
                        stats.added += 1;
                    }
                    labels
                }
            };
            if let Some(labels) = labels {
                // Two exposed series with one label set (only checked once seen on this
                // target): keep the first, as for a repeated series.
                if dedupe && !self.emitted.insert(labels.clone()) {
                    stats.duplicates += 1;
                    continue;
                }
                stats.post_relabel += 1;
                // Fail at the first sample over the limit: a target exposing a million series
                // must not get a million label sets built and cached before the scrape fails.
                if sample_limit > 0 && stats.post_relabel > sample_limit {
                    return Err(ProcessError::SampleLimit { limit: sample_limit });
                }
                out.push(labels, Sample::new(ts, sample.value));
            }
        }
        self.flush_family(&family, out);
        Ok(stats)
    }

    fn switch_family<'a>(&mut self, family: &mut PendingFamily<'a>, name: &'a [u8], out: &mut Batch) {
        if family.name != name {
            self.flush_family(family, out);
            *family = PendingFamily {
                name,
                ..PendingFamily::default()
            };
        }
    }

    /// Adds the family's metadata to `out`, reusing the cached `Arc` when nothing changed.
    fn flush_family(&mut self, family: &PendingFamily<'_>, out: &mut Batch) {
        if family.name.is_empty() {
            return;
        }
        let help = family.help.unwrap_or_default();
        if let Some(e) = self.metadata.get(family.name)
            && *e.raw_help == *help
            && *e.unit == *family.unit
            && e.meta.kind == family.kind
        {
            out.metadata.push(e.meta.clone());
            return;
        }
        let meta = Arc::new(MetricMetadata {
            family: String::from_utf8_lossy(family.name).into(),
            kind: family.kind,
            help: unescape_help(help).into(),
            unit: String::from_utf8_lossy(family.unit).into(),
        });
        out.metadata.push(meta.clone());
        // Bound the table: a target that renames families every scrape must not grow it forever.
        if self.metadata.len() > 4 * self.cache.len().max(1024) {
            self.metadata.clear();
        }
        self.metadata.insert(
            family.name.into(),
            MetaEntry {
                raw_help: help.into(),
                unit: family.unit.into(),
                meta,
            },
        );
    }

    /// Builds the final labels of a new series; `None` when metric relabeling drops it.
    fn build_labels(&mut self, sample: &SampleLine<'_>, line: usize) -> Result<Option<Labels>, ProcessError> {
        let settings = &*self.settings;
        let invalid = |reason: String| ProcessError::InvalidSeries {
            line,
            series: String::from_utf8_lossy(sample.series).into_owned(),
            reason,
        };
        let scratch = &mut self.scratch;
        scratch.clear();
        // The parser checked the name's characters, which are ASCII.
        let name = String::from_utf8_lossy(sample.name);
        scratch.insert(METRIC_NAME.to_owned(), name.into_owned());
        for_each_label(sample.labels, |n, v| {
            if scratch.insert(n.to_owned(), v.into_owned()).is_some() {
                return Err(super::parser::ErrorKind::InvalidLabels);
            }
            Ok(())
        })
        .map_err(|kind| {
            if kind == super::parser::ErrorKind::InvalidLabels {
                invalid("malformed label block or duplicate label name".into())
            } else {
                ProcessError::Parse(ParseError::new(line, kind, sample.series))
            }
        })?;

        merge_target_labels(scratch, &settings.target_labels, settings.honor_labels);
        if !settings.metric_relabel.is_empty() && !settings.metric_relabel.apply(scratch) {
            return Ok(None);
        }
        scratch.retain(|_, v| !v.is_empty());
        if !scratch.contains_key(METRIC_NAME) {
            return Err(invalid("metric relabeling removed __name__".into()));
        }
        check_label_limits(scratch, &settings.limits).map_err(|what| ProcessError::LabelLimit {
            line,
            series: String::from_utf8_lossy(sample.series).into_owned(),
            what,
        })?;
        let b = &mut self.builder;
        b.clear();
        for (n, v) in scratch.iter() {
            b.push(n, v).map_err(|e| invalid(e.to_string()))?;
        }
        for (n, v) in &settings.external_labels {
            if !scratch.contains_key(n) {
                b.push(n, v).map_err(|e| invalid(e.to_string()))?;
            }
        }
        b.build().map(Some).map_err(|e| invalid(e.to_string()))
    }
}

/// Adds the target labels to an exposed set the way Prometheus' `mutateSampleLabels` does.
fn merge_target_labels(set: &mut LabelMap, target: &[(String, String)], honor_labels: bool) {
    if honor_labels {
        for (n, v) in target {
            if !set.contains_key(n) {
                set.insert(n.clone(), v.clone());
            }
        }
        return;
    }
    let mut conflicts: Vec<(String, String)> = Vec::new();
    for (n, v) in target {
        if let Some(old) = set.insert(n.clone(), v.clone())
            && !old.is_empty()
        {
            conflicts.push((n.clone(), old));
        }
    }
    // Shorter names first, so `exported_exported_x` only happens when `exported_x` is taken.
    conflicts.sort_by_key(|(n, _)| n.len());
    for (n, v) in conflicts {
        let mut new_name = n;
        loop {
            new_name.insert_str(0, "exported_");
            if set.get(&new_name).is_none_or(|x| x.is_empty()) {
                set.insert(new_name, v);
                break;
            }
        }
    }
}

fn check_label_limits(set: &LabelMap, limits: &Limits) -> Result<(), String> {
    if limits.label_limit > 0 && set.len() > limits.label_limit {
        return Err(format!(
            "label_limit: {} labels, limit {}",
            set.len(),
            limits.label_limit
        ));
    }
    for (n, v) in set {
        if limits.label_name_length_limit > 0 && n.len() > limits.label_name_length_limit {
            return Err(format!(
                "label_name_length_limit: name {n:?} is {} bytes, limit {}",
                n.len(),
                limits.label_name_length_limit
            ));
        }
        if limits.label_value_length_limit > 0 && v.len() > limits.label_value_length_limit {
            return Err(format!(
                "label_value_length_limit: value of {n:?} is {} bytes, limit {}",
                v.len(),
                limits.label_value_length_limit
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prometheus::relabel::RelabelConfig;

    fn settings() -> SeriesSettings {
        SeriesSettings {
            target_labels: vec![("instance".into(), "h1:9100".into()), ("job".into(), "node".into())],
            honor_timestamps: true,
            ..SeriesSettings::default()
        }
    }

    fn run(p: &mut SeriesProcessor, body: &str, ts: i64) -> (Result<ProcessStats, ProcessError>, Batch) {
        let mut out = Batch::new();
        let r = p.process(body.as_bytes(), Format::Text, ts, &mut out);
        (r, out)
    }

    fn shown(out: &Batch) -> Vec<String> {
        out.series
            .iter()
            .map(|s| format!("{} {} {}", s.labels, s.samples[0].value, s.samples[0].timestamp_ms))
            .collect()
    }

    #[test]
    fn target_labels_are_added_and_cached_labels_are_reused() {
        let mut p = SeriesProcessor::new(Arc::new(settings()));
        let body = "# HELP m Help \\n text.\n# TYPE m gauge\nm{a=\"1\"} 5\nm{a=\"2\"} 6 1000\n";
        let (r, out) = run(&mut p, body, 50);
        let stats = r.unwrap();
        assert_eq!(
            shown(&out),
            [
                r#"m{a="1",instance="h1:9100",job="node"} 5 50"#,
                r#"m{a="2",instance="h1:9100",job="node"} 6 1000"#
            ]
        );
        assert_eq!((stats.scraped, stats.post_relabel, stats.added), (2, 2, 2));
        assert_eq!(out.metadata.len(), 1);
        assert_eq!(&*out.metadata[0].help, "Help \n text.");
        assert_eq!(out.metadata[0].kind, MetricType::Gauge);
        let (r, out2) = run(&mut p, body, 60);
        assert_eq!(r.unwrap().added, 0);
        assert!(
            out2.series[0].labels.ptr_eq(&out.series[0].labels),
            "a hit reuses the cached set"
        );
        assert!(
            Arc::ptr_eq(&out2.metadata[0], &out.metadata[0]),
            "unchanged metadata is reused"
        );
    }

    #[test]
    fn conflicting_exposed_labels_are_renamed_unless_honored() {
        let body = "m{job=\"exp\",exported_job=\"taken\",instance=\"\"} 1\n";
        let mut p = SeriesProcessor::new(Arc::new(settings()));
        let (r, out) = run(&mut p, body, 1);
        r.unwrap();
        assert_eq!(
            shown(&out),
            [r#"m{exported_exported_job="exp",exported_job="taken",instance="h1:9100",job="node"} 1 1"#]
        );
        let mut s = settings();
        s.honor_labels = true;
        let mut p = SeriesProcessor::new(Arc::new(s));
        let (r, out) = run(&mut p, "m{job=\"exp\"} 1\n", 1);
        r.unwrap();
        assert_eq!(shown(&out), [r#"m{instance="h1:9100",job="exp"} 1 1"#]);
    }

    #[test]
    fn metric_relabeling_drops_and_rewrites() {
        let mut s = settings();
        let rc: Vec<RelabelConfig> = serde_yaml_ng::from_str(
            "[{source_labels: [__name__], regex: 'go_.*', action: drop}, {source_labels: [a], target_label: b}]",
        )
        .unwrap();
        s.metric_relabel = Relabeler::new(&rc).unwrap();
        s.external_labels = vec![("cluster".into(), "c1".into()), ("b".into(), "ignored".into())];
        let mut p = SeriesProcessor::new(Arc::new(s));
        let (r, out) = run(&mut p, "go_x 1\nm{a=\"v\"} 2\n", 7);
        let stats = r.unwrap();
        assert_eq!(
            shown(&out),
            [r#"m{a="v",b="v",cluster="c1",instance="h1:9100",job="node"} 2 7"#]
        );
        assert_eq!((stats.scraped, stats.post_relabel), (2, 1));
        let (r, _) = run(&mut p, "go_x 1\nm{a=\"v\"} 2\n", 8);
        assert_eq!(r.unwrap().post_relabel, 1, "a cached drop stays dropped");
    }

    #[test]
    fn duplicate_series_keep_the_first_sample() {
        let mut p = SeriesProcessor::new(Arc::new(settings()));
        let (r, out) = run(&mut p, "m 1\nm 2\nn 3\n", 1);
        assert_eq!(r.unwrap().duplicates, 1);
        assert_eq!(out.len(), 2);
        assert_eq!(out.series[0].samples[0].value, 1.0);
    }

    #[test]
    fn series_that_end_up_with_the_same_labels_keep_the_first_sample() {
        let mut p = SeriesProcessor::new(Arc::new(settings()));
        let body = "m{x=\"1\",y=\"2\"} 1\nm{y=\"2\",x=\"1\"} 2\nn 3\n";
        for ts in [1, 2] {
            let (r, out) = run(&mut p, body, ts);
            assert_eq!(r.unwrap().duplicates, 1, "scrape at {ts}");
            assert_eq!(
                shown(&out),
                [
                    format!(r#"m{{instance="h1:9100",job="node",x="1",y="2"}} 1 {ts}"#),
                    format!(r#"n{{instance="h1:9100",job="node"}} 3 {ts}"#)
                ]
            );
        }
        // Metric relabeling that merges series.
        let mut s = settings();
        let rc: Vec<RelabelConfig> = serde_yaml_ng::from_str("[{regex: 'cpu', action: labeldrop}]").unwrap();
        s.metric_relabel = Relabeler::new(&rc).unwrap();
        let mut p = SeriesProcessor::new(Arc::new(s));
        let (r, out) = run(&mut p, "t{cpu=\"0\"} 1\nt{cpu=\"1\"} 2\n", 1);
        assert_eq!(r.unwrap().duplicates, 1);
        assert_eq!(out.len(), 1);
    }

    #[test]
    fn a_bad_line_fails_the_scrape_and_marks_previous_series_stale() {
        let mut p = SeriesProcessor::new(Arc::new(settings()));
        let (r, _) = run(&mut p, "a 1\nb 2\n", 1);
        r.unwrap();
        let (r, out) = run(&mut p, "a 1\nb{ 2\n", 2);
        let e = r.unwrap_err();
        assert!(e.to_string().contains("line 2"), "{e}");
        assert_eq!(out.len(), 2);
        assert!(out.series.iter().all(|s| s.samples[0].is_stale()));
        let (r, out) = run(&mut p, "a 1\n", 3);
        r.unwrap();
        assert_eq!(out.len(), 1, "no second marker for b");
    }

    #[test]
    fn invalid_label_blocks_fail_the_scrape() {
        let mut p = SeriesProcessor::new(Arc::new(settings()));
        for body in ["m{a=\"1\",a=\"2\"} 1\n", "m{a=\"1\" b=\"2\"} 1\n", "m{a=1} 1\n"] {
            let (r, out) = run(&mut p, body, 1);
            assert!(r.is_err(), "{body:?}");
            assert!(out.is_empty());
        }
    }

    #[test]
    fn limits_fail_the_scrape() {
        let mut s = settings();
        s.limits.sample_limit = 2;
        let mut p = SeriesProcessor::new(Arc::new(s));
        let (r, out) = run(&mut p, "a 1\nb 1\nc 1\n", 1);
        assert!(matches!(r, Err(ProcessError::SampleLimit { limit: 2 })));
        assert!(out.is_empty());
        let mut s = settings();
        s.limits.label_limit = 3;
        let mut p = SeriesProcessor::new(Arc::new(s));
        assert!(run(&mut p, "a 1\n", 1).0.is_ok());
        assert!(matches!(
            run(&mut p, "b{x=\"1\"} 1\n", 1).0,
            Err(ProcessError::LabelLimit { .. })
        ));
        let mut s = settings();
        s.limits.label_value_length_limit = 7;
        let mut p = SeriesProcessor::new(Arc::new(s));
        let e = run(&mut p, "b{x=\"12345678\"} 1\n", 1).0.unwrap_err();
        assert!(e.to_string().contains("label_value_length_limit"), "{e}");
    }

    #[test]
    fn honor_timestamps_false_stamps_the_scrape_time() {
        let mut s = settings();
        s.honor_timestamps = false;
        let mut p = SeriesProcessor::new(Arc::new(s));
        let (r, out) = run(&mut p, "m 1 1000\n", 5);
        r.unwrap();
        assert_eq!(out.series[0].samples[0].timestamp_ms, 5);
    }
}
