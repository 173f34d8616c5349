//! `textfile`: metrics from `*.prom` files in a directory (written by cron jobs and scripts),
//! passed through with `job` and `instance` added, plus `node_textfile_mtime_seconds{file}` and
//! `node_textfile_scrape_error`. Without a directory (as on HyperPod) only the error gauge,
//! at 0, is reported.
//!
//! As in node_exporter, a file that cannot be read or parsed, or that carries sample
//! timestamps, is skipped whole and sets `node_textfile_scrape_error` to 1.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use nodetel_core::{Labels, MetricMetadata, MetricType};
use nodetel_host::procfs::read_into;
use nodetel_host::sysfs::list_dir;

use super::{CollectError, Collector};
use crate::node::series::{Context, Family, family};
use crate::prometheus::parser::{Entry, Format, Parser};
use crate::prometheus::series_text::{for_each_label, unescape_help};

pub(crate) struct TextfileCollector {
    directory: Option<PathBuf>,
    scrape_error: Family,
    mtime: Family,
    /// Label sets by the series text as written in the file.
    series: HashMap<Box<[u8]>, Labels>,
    metadata: HashMap<Box<str>, Arc<MetricMetadata>>,
}

impl TextfileCollector {
    pub(crate) fn new(directory: Option<PathBuf>) -> TextfileCollector {
        TextfileCollector {
            directory,
            scrape_error: Family::new(
                "node_textfile_scrape_error",
                MetricType::Gauge,
                "1 if there was an error opening or reading a file, 0 otherwise",
            ),
            mtime: Family::new(
                "node_textfile_mtime_seconds",
                MetricType::Gauge,
                "Unixtime mtime of textfiles successfully read.",
            ),
            series: HashMap::new(),
            metadata: HashMap::new(),
        }
    }

    /// Parses one file completely before emitting anything, so a bad file adds nothing.
    fn read_file(&mut self, text: &str, path: &str, cx: &mut Context<'_>) -> Result<(), String> {
        let mut helps: Vec<(&[u8], &[u8])> = Vec::new();
        let mut types: Vec<(&[u8], MetricType)> = Vec::new();
        let mut samples = Vec::new();
        for entry in Parser::new(text.as_bytes(), Format::Text) {
            match entry.map_err(|e| e.to_string())? {
                Entry::Help { name, text } => helps.push((name, text)),
                Entry::Type { name, kind } => types.push((name, kind)),
                Entry::Unit { .. } => {}
                Entry::Sample(s) => {
                    if s.timestamp_ms.is_some() {
                        return Err("textfile contains unsupported client-side timestamps".to_owned());
                    }
                    samples.push(s);
                }
            }
        }
        let mut resolved = Vec::with_capacity(samples.len());
        for s in &samples {
            let labels = match self.series.get(s.series) {
                Some(l) => l.clone(),
                None => {
                    let name = std::str::from_utf8(s.name).map_err(|_| "metric name is not UTF-8".to_owned())?;
                    let mut pairs: Vec<(String, String)> = Vec::new();
                    for_each_label(s.labels, |n, v| {
                        pairs.push((n.to_owned(), v.into_owned()));
                        Ok(())
                    })
                    .map_err(|e| format!("{e:?} in the labels of {name}"))?;
                    let refs: Vec<(&str, &str)> = pairs.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
                    let labels = cx.series.labels(name, &refs).map_err(|e| e.to_string())?;
                    self.series.insert(s.series.into(), labels.clone());
                    labels
                }
            };
            resolved.push((labels, s.value));
        }
        for (name, kind) in &types {
            let name = String::from_utf8_lossy(name);
            let help = helps
                .iter()
                .find(|(n, _)| *n == name.as_bytes())
                .map(|(_, h)| unescape_help(h).into_owned())
                .unwrap_or_else(|| format!("Metric read from {path}"));
            let md = self
                .metadata
                .entry(name.as_ref().into())
                .or_insert_with(|| family(&name, *kind, &help));
            if md.kind != *kind || *md.help != *help {
                *md = family(&name, *kind, &help);
            }
            cx.family(md);
        }
        for (labels, value) in &resolved {
            cx.sample(labels, *value);
        }
        Ok(())
    }
}

impl Collector for TextfileCollector {
    fn update(&mut self, cx: &mut Context<'_>) -> Result<(), CollectError> {
        let Some(dir) = self.directory.clone() else {
            self.scrape_error.emit(cx, &[], 0.0)?;
            return Ok(());
        };
        let mut error = false;
        let files = match list_dir(&dir) {
            Ok(f) => f,
            Err(e) => {
                tracing::debug!(error = %e, "Cannot list the textfile directory.");
                error = true;
                Vec::new()
            }
        };
        for file in files.iter().filter(|f| f.ends_with(".prom")) {
            let path = dir.join(file);
            let path_text = path.display().to_string();
            let mtime = std::fs::metadata(&path)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok());
            if let Err(e) = read_into(&path, cx.buf) {
                tracing::debug!(error = %e, "Cannot read a textfile.");
                error = true;
                continue;
            }
            let text = std::mem::take(cx.buf);
            let mark = cx.mark();
            let result = self.read_file(&text, &path_text, cx);
            *cx.buf = text;
            match (result, mtime) {
                (Ok(()), Some(mtime)) => {
                    self.mtime.emit(cx, &[("file", &path_text)], mtime.as_secs_f64())?;
                }
                (Ok(()), None) => {}
                (Err(e), _) => {
                    cx.rollback(mark);
                    tracing::debug!(error = %e, file = %path_text, "Skipping a textfile that does not parse.");
                    error = true;
                }
            }
        }
        self.scrape_error.emit(cx, &[], if error { 1.0 } else { 0.0 })?;
        Ok(())
    }
}
