//! A zero-copy parser for the Prometheus text format 0.0.4 and OpenMetrics 1.0.
//!
//! The parser walks the response body line by line and yields slices into it: the series text
//! (metric name plus label block, exactly as exposed, the key of the series cache), the raw
//! label block, the parsed value and timestamp. It never copies or unescapes labels: that is
//! done once per new series by [`super::series_text`]. It never panics on any input; a malformed
//! line is an error naming the line number and what is wrong.

use std::fmt;

use nodetel_core::MetricType;

use super::value::{parse_timestamp_ms, parse_timestamp_seconds, parse_value};

/// Which exposition format a body is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `text/plain; version=0.0.4`: timestamps in milliseconds, no `# EOF`.
    Text,
    /// `application/openmetrics-text`: timestamps in seconds, exemplars, `# UNIT`, ends in `# EOF`.
    OpenMetrics,
}

impl Format {
    /// The format a `Content-Type` header names; anything that is not OpenMetrics is parsed as
    /// the text format, as Prometheus does.
    pub fn from_content_type(content_type: &str) -> Format {
        if content_type.trim_start().starts_with("application/openmetrics-text") {
            Format::OpenMetrics
        } else {
            Format::Text
        }
    }
}

/// One sample line, borrowed from the body.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SampleLine<'a> {
    /// The metric name and label block as exposed (`up{job="x"}`): the series' identity.
    pub series: &'a [u8],
    /// The metric name.
    pub name: &'a [u8],
    /// The text between `{` and `}`, escapes untouched; empty when there is no label block.
    pub labels: &'a [u8],
    /// The value.
    pub value: f64,
    /// The exposed timestamp in milliseconds, if any.
    pub timestamp_ms: Option<i64>,
}

/// One meaningful line of a body.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Entry<'a> {
    /// `# HELP name text` (text with escapes untouched).
    Help {
        /// The family name.
        name: &'a [u8],
        /// The help text as exposed.
        text: &'a [u8],
    },
    /// `# TYPE name type`.
    Type {
        /// The family name.
        name: &'a [u8],
        /// The declared type.
        kind: MetricType,
    },
    /// `# UNIT name unit` (OpenMetrics).
    Unit {
        /// The family name.
        name: &'a [u8],
        /// The unit.
        unit: &'a [u8],
    },
    /// A sample.
    Sample(SampleLine<'a>),
}

/// What is wrong with a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The metric name is missing or holds a character outside `[a-zA-Z0-9_:]`.
    InvalidMetricName,
    /// The label block has no closing `}` or an unterminated quoted value.
    UnterminatedLabels,
    /// No whitespace and value after the series.
    MissingValue,
    /// The value is not a number.
    InvalidValue,
    /// The timestamp is not a number in the format's unit.
    InvalidTimestamp,
    /// Something follows the timestamp.
    TrailingText,
    /// A `# HELP`, `# TYPE` or `# UNIT` line without a valid metric name.
    InvalidMetadataName,
    /// A `# TYPE` line with an unknown type.
    InvalidType,
    /// OpenMetrics: data after `# EOF`.
    DataAfterEof,
    /// OpenMetrics: the body does not end with `# EOF`.
    MissingEof,
    /// A label block that is not `name="value"` pairs separated by commas.
    InvalidLabels,
    /// A label value or help text that is not valid UTF-8.
    InvalidUtf8,
}

impl ErrorKind {
    fn message(self) -> &'static str {
        match self {
            ErrorKind::InvalidMetricName => "invalid metric name: must match [a-zA-Z_:][a-zA-Z0-9_:]*",
            ErrorKind::UnterminatedLabels => "label block is not closed: missing '}' or '\"'",
            ErrorKind::MissingValue => "missing value after the series",
            ErrorKind::InvalidValue => "value is not a number",
            ErrorKind::InvalidTimestamp => "timestamp is not a number",
            ErrorKind::TrailingText => "unexpected text after the timestamp",
            ErrorKind::InvalidMetadataName => "metadata line without a valid metric name",
            ErrorKind::InvalidType => {
                "unknown metric type: expected counter, gauge, histogram, gaugehistogram, summary, \
                 info, stateset, untyped or unknown"
            }
            ErrorKind::DataAfterEof => "data after # EOF",
            ErrorKind::MissingEof => "OpenMetrics body does not end with # EOF",
            ErrorKind::InvalidLabels => "invalid label block: expected name=\"value\" pairs separated by commas",
            ErrorKind::InvalidUtf8 => "text is not valid UTF-8",
        }
    }
}

/// A malformed body: the 1-based line, what is wrong and the start of the line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ParseError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub kind: ErrorKind,
    /// The first bytes of the offending line, lossily decoded, for the log.
    pub excerpt: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {} in {:?}", self.line, self.kind.message(), self.excerpt)
    }
}

impl ParseError {
    pub(crate) fn new(line: usize, kind: ErrorKind, text: &[u8]) -> ParseError {
        const MAX: usize = 80;
        let cut = &text[..text.len().min(MAX)];
        ParseError {
            line,
            kind,
            excerpt: String::from_utf8_lossy(cut).into_owned(),
        }
    }
}

const fn name_table(first: bool) -> [bool; 256] {
    let mut t = [false; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        t[c] = b.is_ascii_alphabetic() || b == b'_' || b == b':' || (!first && b.is_ascii_digit());
        c += 1;
    }
    t
}

static NAME_FIRST: [bool; 256] = name_table(true);
static NAME_REST: [bool; 256] = name_table(false);

/// Length of the metric name at the start of `b` (0 when it does not start with one).
fn metric_name_len(b: &[u8]) -> usize {
    match b.first() {
        Some(&c) if NAME_FIRST[c as usize] => {}
        _ => return 0,
    }
    b.iter().position(|&c| !NAME_REST[c as usize]).unwrap_or(b.len())
}

/// Whether `b` is a whole valid metric name.
pub fn is_metric_name(b: &[u8]) -> bool {
    !b.is_empty() && metric_name_len(b) == b.len()
}

fn is_blank(c: u8) -> bool {
    c == b' ' || c == b'\t'
}

fn skip_blanks(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && is_blank(b[i]) {
        i += 1;
    }
    i
}

fn token_end(b: &[u8], i: usize) -> usize {
    b[i..].iter().position(|&c| is_blank(c)).map_or(b.len(), |p| i + p)
}

/// Finds the index of the `}` closing a label block that starts after `start`, skipping quoted
/// values (which may hold `}` and escaped quotes).
pub(crate) fn label_block_end(b: &[u8], start: usize) -> Option<usize> {
    let mut i = start;
    loop {
        i += memchr::memchr2(b'"', b'}', &b[i..])?;
        if b[i] == b'}' {
            return Some(i);
        }
        i += 1;
        loop {
            i += memchr::memchr2(b'"', b'\\', &b[i..])?;
            if b[i] == b'\\' {
                i += 2;
                if i > b.len() {
                    return None;
                }
            } else {
                i += 1;
                break;
            }
        }
    }
}

/// Iterates the entries of one body. After an error, iteration ends.
#[derive(Debug, Clone)]
pub struct Parser<'a> {
    body: &'a [u8],
    pos: usize,
    line: usize,
    format: Format,
    eof_seen: bool,
    done: bool,
}

impl<'a> Parser<'a> {
    /// A parser over `body` in `format`.
    pub fn new(body: &'a [u8], format: Format) -> Parser<'a> {
        Parser {
            body,
            pos: 0,
            line: 0,
            format,
            eof_seen: false,
            done: false,
        }
    }

    /// The 1-based number of the line last returned.
    pub fn line(&self) -> usize {
        self.line
    }

    fn next_line(&mut self) -> Option<&'a [u8]> {
        if self.pos >= self.body.len() {
            return None;
        }
        let rest = &self.body[self.pos..];
        let (line, advance) = match memchr::memchr(b'\n', rest) {
            Some(n) => (&rest[..n], n + 1),
            None => (rest, rest.len()),
        };
        self.pos += advance;
        self.line += 1;
        Some(line.strip_suffix(b"\r").unwrap_or(line))
    }

    fn error(&mut self, kind: ErrorKind, text: &[u8]) -> Option<Result<Entry<'a>, ParseError>> {
        self.done = true;
        Some(Err(ParseError::new(self.line, kind, text)))
    }

    fn parse_comment(&self, line: &'a [u8]) -> Result<Option<Entry<'a>>, ErrorKind> {
        // `line` starts with '#'.
        let i = skip_blanks(line, 1);
        let kw_end = token_end(line, i);
        let keyword = &line[i..kw_end];
        let which = match keyword {
            b"HELP" => 0,
            b"TYPE" => 1,
            b"UNIT" if self.format == Format::OpenMetrics => 2,
            // Any other comment is ignored, as Prometheus does.
            _ => return Ok(None),
        };
        let n_start = skip_blanks(line, kw_end);
        let n_len = metric_name_len(&line[n_start..]);
        let n_end = n_start + n_len;
        if n_len == 0 || (n_end < line.len() && !is_blank(line[n_end])) {
            return Err(ErrorKind::InvalidMetadataName);
        }
        let name = &line[n_start..n_end];
        let rest_start = (n_end + 1).min(line.len());
        let rest = &line[rest_start..];
        Ok(Some(match which {
            0 => Entry::Help { name, text: rest },
            1 => {
                let t = rest.trim_ascii();
                let kind = match t {
                    b"counter" => MetricType::Counter,
                    b"gauge" => MetricType::Gauge,
                    b"histogram" => MetricType::Histogram,
                    b"gaugehistogram" => MetricType::GaugeHistogram,
                    b"summary" => MetricType::Summary,
                    b"info" => MetricType::Info,
                    b"stateset" => MetricType::StateSet,
                    b"untyped" | b"unknown" => MetricType::Unknown,
                    _ => return Err(ErrorKind::InvalidType),
                };
                Entry::Type { name, kind }
            }
            _ => Entry::Unit {
                name,
                unit: rest.trim_ascii(),
            },
        }))
    }

    fn parse_sample(&self, line: &'a [u8]) -> Result<SampleLine<'a>, ErrorKind> {
        let name_len = metric_name_len(line);
        if name_len == 0 {
            return Err(ErrorKind::InvalidMetricName);
        }
        let mut i = name_len;
        let mut labels: &'a [u8] = &[];
        if line.get(i) == Some(&b'{') {
            let close = label_block_end(line, i + 1).ok_or(ErrorKind::UnterminatedLabels)?;
            labels = &line[i + 1..close];
            i = close + 1;
        }
        let series = &line[..i];
        match line.get(i) {
            Some(&c) if is_blank(c) => {}
            None => return Err(ErrorKind::MissingValue),
            Some(_) => return Err(ErrorKind::InvalidMetricName),
        }
        let v_start = skip_blanks(line, i);
        if v_start == line.len() {
            return Err(ErrorKind::MissingValue);
        }
        let v_end = token_end(line, v_start);
        let value = parse_value(&line[v_start..v_end]).ok_or(ErrorKind::InvalidValue)?;
        let mut timestamp_ms = None;
        let t_start = skip_blanks(line, v_end);
        if t_start < line.len() {
            let om = self.format == Format::OpenMetrics;
            if om && line[t_start] == b'#' {
                // An exemplar: parsed by position and skipped.
                return Ok(SampleLine {
                    series,
                    name: &line[..name_len],
                    labels,
                    value,
                    timestamp_ms,
                });
            }
            let t_end = token_end(line, t_start);
            let t = &line[t_start..t_end];
            timestamp_ms = Some(
                if om {
                    parse_timestamp_seconds(t)
                } else {
                    parse_timestamp_ms(t)
                }
                .ok_or(ErrorKind::InvalidTimestamp)?,
            );
            let rest = skip_blanks(line, t_end);
            if rest < line.len() && !(om && line[rest] == b'#') {
                return Err(ErrorKind::TrailingText);
            }
        }
        Ok(SampleLine {
            series,
            name: &line[..name_len],
            labels,
            value,
            timestamp_ms,
        })
    }
}

impl<'a> Iterator for Parser<'a> {
    type Item = Result<Entry<'a>, ParseError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        loop {
            let Some(raw) = self.next_line() else {
                self.done = true;
                if self.format == Format::OpenMetrics && !self.eof_seen {
                    return Some(Err(ParseError::new(self.line, ErrorKind::MissingEof, b"")));
                }
                return None;
            };
            let line = &raw[skip_blanks(raw, 0)..];
            if self.eof_seen {
                if line.is_empty() {
                    continue;
                }
                return self.error(ErrorKind::DataAfterEof, raw);
            }
            if line.is_empty() {
                continue;
            }
            if line[0] == b'#' {
                if self.format == Format::OpenMetrics && line.trim_ascii_end() == b"# EOF" {
                    self.eof_seen = true;
                    continue;
                }
                match self.parse_comment(line) {
                    Ok(Some(entry)) => return Some(Ok(entry)),
                    Ok(None) => continue,
                    Err(kind) => return self.error(kind, raw),
                }
            }
            return match self.parse_sample(line) {
                Ok(s) => Some(Ok(Entry::Sample(s))),
                Err(kind) => self.error(kind, raw),
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(body: &str, format: Format) -> Result<Vec<Entry<'_>>, ParseError> {
        Parser::new(body.as_bytes(), format).collect()
    }

    fn samples(body: &str, format: Format) -> Vec<(String, String, f64, Option<i64>)> {
        parse_all(body, format)
            .unwrap()
            .into_iter()
            .filter_map(|e| match e {
                Entry::Sample(s) => Some((
                    String::from_utf8_lossy(s.series).into_owned(),
                    String::from_utf8_lossy(s.labels).into_owned(),
                    s.value,
                    s.timestamp_ms,
                )),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn text_format_samples_metadata_and_timestamps_parse() {
        let body = "# HELP http_requests_total The total number of HTTP requests.\n\
                    # TYPE http_requests_total counter\n\
                    http_requests_total{method=\"post\",code=\"200\"} 1027 1395066363000\n\
                    http_requests_total{method=\"post\",code=\"400\"}    3 1395066363000\n\
                    \n\
                    # A plain comment.\n\
                    metric_without_timestamp_and_labels 12.47\n\
                    something_weird{problem=\"division by zero\"} +Inf -3982045\n";
        let entries = parse_all(body, Format::Text).unwrap();
        assert_eq!(
            entries[0],
            Entry::Help {
                name: b"http_requests_total",
                text: b"The total number of HTTP requests."
            }
        );
        assert_eq!(
            entries[1],
            Entry::Type {
                name: b"http_requests_total",
                kind: MetricType::Counter
            }
        );
        let s = samples(body, Format::Text);
        assert_eq!(s.len(), 4);
        assert_eq!(s[0].0, r#"http_requests_total{method="post",code="200"}"#);
        assert_eq!(s[0].1, r#"method="post",code="200""#);
        assert_eq!((s[0].2, s[0].3), (1027.0, Some(1395066363000)));
        assert_eq!((s[1].2, s[1].3), (3.0, Some(1395066363000)));
        assert_eq!(
            (s[2].0.as_str(), s[2].2, s[2].3),
            ("metric_without_timestamp_and_labels", 12.47, None)
        );
        assert_eq!((s[3].2, s[3].3), (f64::INFINITY, Some(-3982045)));
    }

    #[test]
    fn quoted_values_may_hold_braces_quotes_and_escapes() {
        let body = "msdos_file_access_time_seconds{path=\"C:\\\\DIR\\\\FILE.TXT\",error=\"Cannot find file:\\n\\\"FILE.TXT\\\"\"} 1.458255915e9\n\
                    odd{a=\"}{\",b=\"x\\\\\"} NaN\n";
        let s = samples(body, Format::Text);
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].2, 1.458255915e9);
        assert_eq!(s[1].1, r#"a="}{",b="x\\""#);
        assert!(s[1].2.is_nan());
    }

    #[test]
    fn openmetrics_timestamps_are_seconds_and_exemplars_are_skipped() {
        let body = "# TYPE foo counter\n# UNIT foo seconds\n# HELP foo Help.\n\
                    foo_total{a=\"1\"} 17.0 1520879607.789 # {trace_id=\"KOO5S4vxi0o\"} 0.67\n\
                    foo_total{a=\"2\"} 3 # {trace_id=\"x\"} 1 1520879607.7\n\
                    foo_created{a=\"1\"} 1520430000.123\n# EOF\n";
        let entries = parse_all(body, Format::OpenMetrics).unwrap();
        assert_eq!(
            entries[1],
            Entry::Unit {
                name: b"foo",
                unit: b"seconds"
            }
        );
        let s = samples(body, Format::OpenMetrics);
        assert_eq!(s.len(), 3);
        assert_eq!((s[0].2, s[0].3), (17.0, Some(1520879607789)));
        assert_eq!((s[1].2, s[1].3), (3.0, None));
    }

    #[test]
    fn openmetrics_requires_eof_and_nothing_after_it() {
        let e = parse_all("a 1\n", Format::OpenMetrics).unwrap_err();
        assert_eq!(e.kind, ErrorKind::MissingEof);
        let e = parse_all("a 1\n# EOF\nb 2\n", Format::OpenMetrics).unwrap_err();
        assert_eq!((e.line, e.kind), (3, ErrorKind::DataAfterEof));
        assert!(parse_all("a 1\n# EOF\n", Format::OpenMetrics).is_ok());
        assert!(parse_all("a 1\n# EOF", Format::OpenMetrics).is_ok());
        // In the text format, "# EOF" is an ordinary comment.
        assert_eq!(samples("a 1\n# EOF\nb 2\n", Format::Text).len(), 2);
    }

    #[test]
    fn malformed_lines_name_the_line_and_the_problem() {
        let cases: &[(&str, usize, ErrorKind)] = &[
            ("ok 1\n9bad 1\n", 2, ErrorKind::InvalidMetricName),
            ("ok 1\nbad{a=\"1\" 1\n", 2, ErrorKind::UnterminatedLabels),
            ("bad{a=\"1} 1\n", 1, ErrorKind::UnterminatedLabels),
            ("bad\n", 1, ErrorKind::MissingValue),
            ("bad{a=\"1\"}\n", 1, ErrorKind::MissingValue),
            ("bad   \n", 1, ErrorKind::MissingValue),
            ("bad one\n", 1, ErrorKind::InvalidValue),
            ("bad 1 soon\n", 1, ErrorKind::InvalidTimestamp),
            ("bad 1 2 3\n", 1, ErrorKind::TrailingText),
            ("bad-name 1\n", 1, ErrorKind::InvalidMetricName),
            ("# TYPE x histogramm\n", 1, ErrorKind::InvalidType),
            ("# TYPE 1x counter\n", 1, ErrorKind::InvalidMetadataName),
            ("# HELP\n", 1, ErrorKind::InvalidMetadataName),
            ("bad 1 1.5\n", 1, ErrorKind::InvalidTimestamp),
        ];
        for (body, line, kind) in cases {
            let e = parse_all(body, Format::Text).unwrap_err();
            assert_eq!((e.line, e.kind), (*line, *kind), "{body:?}");
            assert!(e.to_string().starts_with(&format!("line {line}: ")), "{e}");
        }
    }

    #[test]
    fn histograms_and_summaries_are_plain_series() {
        let body = "# TYPE rpc summary\nrpc{quantile=\"0.5\"} 4773\nrpc_sum 1.7560473e+07\nrpc_count 2693\n\
                    # TYPE lat histogram\nlat_bucket{le=\"0.05\"} 24054\nlat_bucket{le=\"+Inf\"} 144320\n\
                    lat_sum 53423\nlat_count 144320\n";
        let s = samples(body, Format::Text);
        let names: Vec<_> = s.iter().map(|x| x.0.as_str()).collect();
        assert_eq!(
            names,
            [
                "rpc{quantile=\"0.5\"}",
                "rpc_sum",
                "rpc_count",
                "lat_bucket{le=\"0.05\"}",
                "lat_bucket{le=\"+Inf\"}",
                "lat_sum",
                "lat_count"
            ]
        );
        assert_eq!(s[1].2, 1.7560473e7);
    }

    #[test]
    fn crlf_tabs_and_missing_final_newline_are_accepted() {
        let s = samples("a\t1\r\nb{x=\"y\"}\t 2 \t\r\n  c 3", Format::Text);
        assert_eq!(s.len(), 3);
        assert_eq!((s[0].2, s[1].2, s[2].2), (1.0, 2.0, 3.0));
    }

    #[test]
    fn format_follows_the_content_type() {
        assert_eq!(
            Format::from_content_type("application/openmetrics-text; version=1.0.0; charset=utf-8"),
            Format::OpenMetrics
        );
        assert_eq!(Format::from_content_type("text/plain; version=0.0.4"), Format::Text);
        assert_eq!(Format::from_content_type(""), Format::Text);
    }
}
