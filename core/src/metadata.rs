//! Metric family metadata: type, help and unit, as the Prometheus exposition formats carry them.

use std::fmt;

/// The type of a metric family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum MetricType {
    /// A monotonically increasing value.
    Counter,
    /// A value that goes up and down.
    Gauge,
    /// Classic histogram (`_bucket`, `_sum`, `_count` series).
    Histogram,
    /// OpenMetrics gauge histogram.
    GaugeHistogram,
    /// Summary (quantile series plus `_sum` and `_count`).
    Summary,
    /// OpenMetrics info metric.
    Info,
    /// OpenMetrics state set.
    StateSet,
    /// No type was declared.
    #[default]
    Unknown,
}

impl MetricType {
    /// The name used in `# TYPE` lines of the text format 0.0.4.
    pub fn as_str(self) -> &'static str {
        match self {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            MetricType::Histogram => "histogram",
            MetricType::GaugeHistogram => "gaugehistogram",
            MetricType::Summary => "summary",
            MetricType::Info => "info",
            MetricType::StateSet => "stateset",
            MetricType::Unknown => "untyped",
        }
    }
}

impl fmt::Display for MetricType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What is known about one metric family. Receivers keep these in `Arc`s and reuse them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MetricMetadata {
    /// The family name (for a histogram, without `_bucket`/`_sum`/`_count`).
    pub family: Box<str>,
    /// The declared type.
    pub kind: MetricType,
    /// The help text.
    pub help: Box<str>,
    /// The unit, if declared.
    pub unit: Box<str>,
}

impl MetricMetadata {
    /// Metadata with no unit.
    pub fn new(family: &str, kind: MetricType, help: &str) -> MetricMetadata {
        MetricMetadata {
            family: family.into(),
            kind,
            help: help.into(),
            unit: "".into(),
        }
    }
}
