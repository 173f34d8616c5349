//! The `debug` exporter: prints what reaches it, for trying configs and for `nodetel once`-like
//! inspection of a running pipeline. Same keys as otelcol's debug exporter.

use std::io::Write;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use nodetel_core::config::{BuildContext, ExporterConfig, FieldError, Validate};
use nodetel_core::exposition::TextWriter;
use nodetel_core::{Batch, BoxError, ExportError, Exporter};
use serde::Deserialize;

/// How much the debug exporter prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verbosity {
    /// One log line per batch with its counts.
    #[default]
    Basic,
    /// Every series, in the text exposition format, without timestamps.
    Normal,
    /// Every series with HELP/TYPE headers and timestamps.
    Detailed,
}

/// Config of the `debug` exporter.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DebugConfig {
    /// `basic` (default), `normal` or `detailed`.
    pub verbosity: Verbosity,
}

impl Validate for DebugConfig {
    fn validate(&self) -> Vec<FieldError> {
        Vec::new()
    }
}

impl ExporterConfig for DebugConfig {
    const TYPE: &'static str = "debug";

    fn build(&self, _cx: &BuildContext) -> Result<Box<dyn Exporter>, BoxError> {
        Ok(Box::new(DebugExporter::new(self.verbosity, Sink::Stdout)))
    }
}

/// Where the debug exporter writes.
#[derive(Debug, Clone)]
pub enum Sink {
    /// Standard output.
    Stdout,
    /// A shared buffer (tests).
    Buffer(Arc<Mutex<Vec<u8>>>),
}

/// Prints batches.
#[derive(Debug)]
pub struct DebugExporter {
    verbosity: Verbosity,
    sink: Sink,
}

impl DebugExporter {
    /// An exporter printing to `sink`.
    pub fn new(verbosity: Verbosity, sink: Sink) -> DebugExporter {
        DebugExporter { verbosity, sink }
    }
}

/// Renders a batch in the text format, sorted by series, with family headers.
pub fn render_batch(batch: &Batch, with_timestamps: bool, out: &mut String) {
    let mut writer = TextWriter::new();
    if with_timestamps {
        for md in &batch.metadata {
            writer.add_metadata(md);
        }
    }
    let mut series: Vec<_> = batch.series.iter().collect();
    series.sort_by(|a, b| a.labels.cmp(&b.labels));
    for s in series {
        for sample in &s.samples {
            let ts = with_timestamps.then_some(sample.timestamp_ms);
            writer.write(out, &s.labels, sample.value, ts);
        }
    }
}

#[async_trait]
impl Exporter for DebugExporter {
    async fn export(&mut self, batch: Arc<Batch>) -> Result<(), ExportError> {
        if self.verbosity == Verbosity::Basic {
            tracing::info!(series = batch.len(), samples = batch.sample_count(), "Batch received.");
            return Ok(());
        }
        let mut text = String::new();
        render_batch(&batch, self.verbosity == Verbosity::Detailed, &mut text);
        match &self.sink {
            Sink::Stdout => {
                let mut out = std::io::stdout().lock();
                out.write_all(text.as_bytes())
                    .and_then(|()| out.flush())
                    .map_err(|e| ExportError::Retryable {
                        retry_after: None,
                        source: Box::new(e),
                    })?;
            }
            Sink::Buffer(buf) => buf
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .extend_from_slice(text.as_bytes()),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nodetel_core::labels::METRIC_NAME;
    use nodetel_core::{Labels, MetricMetadata, MetricType, Sample};

    #[tokio::test]
    async fn normal_verbosity_prints_sorted_series() {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let mut e = DebugExporter::new(Verbosity::Normal, Sink::Buffer(buf.clone()));
        let mut b = Batch::new();
        b.push(
            Labels::from_pairs([(METRIC_NAME, "z"), ("a", "1")]).unwrap(),
            Sample::new(5, 2.0),
        );
        b.push(Labels::from_pairs([(METRIC_NAME, "m")]).unwrap(), Sample::new(5, 1.5));
        b.metadata
            .push(Arc::new(MetricMetadata::new("m", MetricType::Gauge, "M.")));
        e.export(Arc::new(b)).await.unwrap();
        let text = String::from_utf8(buf.lock().unwrap().clone()).unwrap();
        assert_eq!(text, "m 1.5\nz{a=\"1\"} 2\n");
    }

    #[tokio::test]
    async fn detailed_verbosity_adds_headers_and_timestamps() {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let mut e = DebugExporter::new(Verbosity::Detailed, Sink::Buffer(buf.clone()));
        let mut b = Batch::new();
        b.push(Labels::from_pairs([(METRIC_NAME, "m")]).unwrap(), Sample::new(5, 1.5));
        b.metadata
            .push(Arc::new(MetricMetadata::new("m", MetricType::Gauge, "M.")));
        e.export(Arc::new(b)).await.unwrap();
        let text = String::from_utf8(buf.lock().unwrap().clone()).unwrap();
        assert_eq!(text, "# HELP m M.\n# TYPE m gauge\nm 1.5 5\n");
    }
}
