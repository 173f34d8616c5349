//! Writing the Prometheus text exposition format (0.0.4): used by the pull endpoint, the debug
//! exporter, `nodetel once` and the self-telemetry endpoint.

use std::collections::HashMap;
use std::fmt::Write;
use std::sync::Arc;

use crate::labels::{Labels, METRIC_NAME};
use crate::metadata::{MetricMetadata, MetricType};

/// The content type of what [`TextWriter`] produces.
pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Appends a label value with `\`, `"` and newline escaped.
pub fn write_escaped(out: &mut String, value: &str) {
    if !value.contains(['\\', '"', '\n']) {
        out.push_str(value);
        return;
    }
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Appends a value the way Prometheus writes it (`NaN`, `+Inf`, `-Inf`, shortest round-trip).
pub fn write_value(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v == f64::INFINITY {
        out.push_str("+Inf");
    } else if v == f64::NEG_INFINITY {
        out.push_str("-Inf");
    } else {
        let _ = write!(out, "{v}");
    }
}

/// Appends `name{a="1",b="2"}` (no braces when there are no labels besides the name).
pub fn write_series_id(out: &mut String, labels: &Labels) {
    out.push_str(labels.metric_name().unwrap_or(""));
    let mut first = true;
    for (n, v) in labels.iter() {
        if n == METRIC_NAME {
            continue;
        }
        out.push(if first { '{' } else { ',' });
        first = false;
        out.push_str(n);
        out.push_str("=\"");
        write_escaped(out, v);
        out.push('"');
    }
    if !first {
        out.push('}');
    }
}

/// Appends one sample line.
pub fn write_sample(out: &mut String, labels: &Labels, value: f64, timestamp_ms: Option<i64>) {
    write_series_id(out, labels);
    out.push(' ');
    write_value(out, value);
    if let Some(ts) = timestamp_ms {
        let _ = write!(out, " {ts}");
    }
    out.push('\n');
}

/// Suffixes under which a family's series appear, for finding a series' family.
const FAMILY_SUFFIXES: [&str; 6] = ["_bucket", "_sum", "_count", "_total", "_created", "_info"];

/// Writes series grouped into families with `# HELP` / `# TYPE` headers.
///
/// Feed it series sorted by labels (so a family's series are contiguous); it writes each
/// family's header once, before its first series.
#[derive(Debug, Default)]
pub struct TextWriter {
    metadata: HashMap<Box<str>, Arc<MetricMetadata>>,
    current_family: String,
}

impl TextWriter {
    /// A writer with no metadata known.
    pub fn new() -> TextWriter {
        TextWriter::default()
    }

    /// Registers family metadata; the last one registered for a family wins.
    pub fn add_metadata(&mut self, md: &Arc<MetricMetadata>) {
        self.metadata.insert(md.family.clone(), md.clone());
    }

    fn family_of(&self, name: &str) -> Option<&Arc<MetricMetadata>> {
        if let Some(md) = self.metadata.get(name) {
            return Some(md);
        }
        FAMILY_SUFFIXES.iter().find_map(|s| {
            let base = name.strip_suffix(s)?;
            self.metadata.get(base).filter(|md| md.kind != MetricType::Gauge)
        })
    }

    /// Appends one sample, preceded by its family header when the family changes.
    pub fn write(&mut self, out: &mut String, labels: &Labels, value: f64, timestamp_ms: Option<i64>) {
        let name = labels.metric_name().unwrap_or("");
        let md = self.family_of(name).cloned();
        let family = md.as_ref().map_or(name, |m| m.family.as_ref());
        if family != self.current_family {
            self.current_family.clear();
            self.current_family.push_str(family);
            if let Some(md) = md {
                if !md.help.is_empty() {
                    let _ = write!(out, "# HELP {} ", md.family);
                    for c in md.help.chars() {
                        match c {
                            '\\' => out.push_str("\\\\"),
                            '\n' => out.push_str("\\n"),
                            c => out.push(c),
                        }
                    }
                    out.push('\n');
                }
                let _ = writeln!(out, "# TYPE {} {}", md.family, md.kind);
            }
        }
        write_sample(out, labels, value, timestamp_ms);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        Labels::from_pairs(pairs.iter().copied()).unwrap()
    }

    #[test]
    fn values_are_written_as_prometheus_does() {
        let check = |v: f64, want: &str| {
            let mut s = String::new();
            write_value(&mut s, v);
            assert_eq!(s, want);
        };
        check(f64::NAN, "NaN");
        check(f64::INFINITY, "+Inf");
        check(f64::NEG_INFINITY, "-Inf");
        check(1.0, "1");
        check(0.25, "0.25");
        check(-3.5e-7, "-0.00000035");
    }

    #[test]
    fn label_values_are_escaped() {
        let l = labels(&[(METRIC_NAME, "m"), ("path", "C:\\x \"q\"\nz")]);
        let mut s = String::new();
        write_sample(&mut s, &l, 1.0, Some(7));
        assert_eq!(s, "m{path=\"C:\\\\x \\\"q\\\"\\nz\"} 1 7\n");
    }

    #[test]
    fn families_get_one_header() {
        let mut w = TextWriter::new();
        w.add_metadata(&Arc::new(MetricMetadata::new(
            "req",
            MetricType::Histogram,
            "Requests.",
        )));
        w.add_metadata(&Arc::new(MetricMetadata::new(
            "node_load1",
            MetricType::Gauge,
            "1m load.",
        )));
        let mut s = String::new();
        for (n, le) in [
            ("node_load1", ""),
            ("req_bucket", "1"),
            ("req_bucket", "+Inf"),
            ("req_count", ""),
            ("req_sum", ""),
        ] {
            w.write(&mut s, &labels(&[(METRIC_NAME, n), ("le", le)]), 1.0, None);
        }
        let want = "# HELP node_load1 1m load.\n# TYPE node_load1 gauge\nnode_load1 1\n\
                    # HELP req Requests.\n# TYPE req histogram\nreq_bucket{le=\"1\"} 1\nreq_bucket{le=\"+Inf\"} 1\nreq_count 1\nreq_sum 1\n";
        assert_eq!(s, want);
    }
}
