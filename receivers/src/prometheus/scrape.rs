//! Scraping one target: the HTTP GET (content negotiation, gzip, timeout, body size limit),
//! the body's series, and the synthetic `up` / `scrape_*` series Prometheus adds per target.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nodetel_core::labels::METRIC_NAME;
use nodetel_core::{Batch, Labels, LabelsBuilder, Sample};
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue};

use super::parser::Format;
use super::process::{ProcessError, ProcessStats, SeriesProcessor, SeriesSettings};
use super::target::Target;

/// How a job's targets are fetched; shared by all targets of the job.
#[derive(Debug)]
pub struct HttpSettings {
    /// The job's client (TLS, compression).
    pub client: reqwest::Client,
    /// The `Accept` header.
    pub accept: HeaderValue,
    /// A ready `Authorization` header (`Bearer …` or `Basic …`), if configured.
    pub authorization: Option<HeaderValue>,
    /// Largest body accepted, uncompressed; 0 = no limit.
    pub body_size_limit: u64,
}

/// Why a scrape failed (`up` = 0).
#[derive(Debug, thiserror::Error)]
pub enum ScrapeError {
    /// Connection, TLS or protocol failure.
    #[error("request failed: {0}")]
    Http(#[from] reqwest::Error),
    /// Anything but 200 OK.
    #[error("server returned HTTP status {0}")]
    Status(reqwest::StatusCode),
    /// The body is larger than `body_size_limit`.
    #[error("body larger than body_size_limit ({0} bytes)")]
    BodyTooLarge(u64),
    /// `scrape_timeout` elapsed.
    #[error("scrape timed out after {0:?}")]
    Timeout(Duration),
    /// The body could not be turned into series.
    #[error(transparent)]
    Process(#[from] ProcessError),
}

const REPORT_NAMES: [&str; 5] = [
    "up",
    "scrape_duration_seconds",
    "scrape_samples_scraped",
    "scrape_samples_post_metric_relabeling",
    "scrape_series_added",
];

/// Body buffers shared by the scrapes of every target. A target holds one only while it fetches
/// and processes a body, so the memory follows the scrapes in flight rather than the number of
/// targets (a buffer the size of its body per target was a third of the RSS of an aggregation
/// point scraping a hundred 5,000-series targets).
static BODY_POOL: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

/// Buffers the pool keeps; more scrapes in flight than this allocate their own.
const BODY_POOL_SIZE: usize = 16;

fn take_body() -> Vec<u8> {
    BODY_POOL
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .pop()
        .unwrap_or_default()
}

fn give_body(mut body: Vec<u8>) {
    // One odd, huge body must not stay allocated for good.
    if body.capacity() > 4 * body.len().max(1 << 20) {
        return;
    }
    body.clear();
    let mut pool = BODY_POOL.lock().unwrap_or_else(|e| e.into_inner());
    if pool.len() < BODY_POOL_SIZE {
        pool.push(body);
    }
}

/// One target's scrape state: its cache, its body buffer while it scrapes, and its report
/// series.
#[derive(Debug)]
pub struct TargetScraper {
    target: Target,
    http: Arc<HttpSettings>,
    processor: SeriesProcessor,
    body: Vec<u8>,
    report: [Labels; 5],
    /// `None` before the first scrape; logs are written on changes only.
    up: Option<bool>,
    /// Whether the target currently exposes repeated series (logged when that starts).
    duplicates: bool,
    last_batch_len: usize,
    last_metadata_len: usize,
}

/// The result of one scrape, for logs and tests.
#[derive(Debug)]
pub struct ScrapeOutcome {
    /// Whether the scrape succeeded.
    pub up: bool,
    /// Counts of the body, zero when the scrape failed.
    pub stats: ProcessStats,
    /// The failure, if any.
    pub error: Option<ScrapeError>,
}

impl TargetScraper {
    /// A scraper for `target`; fails only when the target's labels cannot form label sets.
    pub fn new(
        target: Target,
        http: Arc<HttpSettings>,
        settings: SeriesSettings,
    ) -> Result<TargetScraper, nodetel_core::labels::LabelError> {
        let mut b = LabelsBuilder::new();
        let mut report_labels = |name: &str| {
            b.clear();
            b.push(METRIC_NAME, name)?;
            for (n, v) in &target.labels {
                b.push(n, v)?;
            }
            for (n, v) in &settings.external_labels {
                if !target.labels.iter().any(|(tn, _)| tn == n) {
                    b.push(n, v)?;
                }
            }
            b.build()
        };
        let report = [
            report_labels(REPORT_NAMES[0])?,
            report_labels(REPORT_NAMES[1])?,
            report_labels(REPORT_NAMES[2])?,
            report_labels(REPORT_NAMES[3])?,
            report_labels(REPORT_NAMES[4])?,
        ];
        let mut settings = settings;
        settings.target_labels = target.labels.clone();
        Ok(TargetScraper {
            target,
            http,
            processor: SeriesProcessor::new(Arc::new(settings)),
            body: Vec::new(),
            report,
            up: None,
            duplicates: false,
            last_batch_len: 0,
            last_metadata_len: 0,
        })
    }

    /// The target.
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// A batch sized from the previous scrape, so steady-state scrapes do not regrow it.
    pub fn new_batch(&self) -> Batch {
        let mut b = Batch::with_capacity(self.last_batch_len + REPORT_NAMES.len());
        b.metadata.reserve(self.last_metadata_len);
        b
    }

    /// Delay from `now_ms` to this target's first scrape: targets are spread over the interval
    /// by their hash, and each keeps its phase, as in Prometheus.
    pub fn offset(&self, now_ms: i64) -> Duration {
        let interval = self.target.interval.as_millis().max(1) as u64;
        let phase = self.target.hash % interval;
        let now = now_ms.max(0) as u64 % interval;
        Duration::from_millis((phase + interval - now) % interval)
    }

    async fn fetch(&mut self) -> Result<Format, ScrapeError> {
        let mut req = self
            .http
            .client
            .get(&self.target.url)
            .header(ACCEPT, self.http.accept.clone())
            .header(
                "X-Prometheus-Scrape-Timeout-Seconds",
                format!("{}", self.target.timeout.as_secs_f64()),
            );
        if let Some(a) = &self.http.authorization {
            req = req.header(AUTHORIZATION, a.clone());
        }
        let mut resp = req.send().await?;
        if resp.status() != reqwest::StatusCode::OK {
            return Err(ScrapeError::Status(resp.status()));
        }
        let format = Format::from_content_type(
            resp.headers()
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or(""),
        );
        let limit = self.http.body_size_limit;
        self.body.clear();
        // Size the buffer once from the announced length instead of doubling past it.
        if let Some(n) = resp.content_length()
            && (limit == 0 || n <= limit)
        {
            self.body.reserve((n as usize).min(64 << 20));
        }
        while let Some(chunk) = resp.chunk().await? {
            if limit > 0 && (self.body.len() + chunk.len()) as u64 > limit {
                return Err(ScrapeError::BodyTooLarge(limit));
            }
            self.body.extend_from_slice(&chunk);
        }
        Ok(format)
    }

    /// Scrapes once into `out`, stamping samples with `timestamp_ms` (the scrape's start), and
    /// appends the report series. A failure is logged when the target's state changes.
    pub async fn scrape(&mut self, timestamp_ms: i64, out: &mut Batch) -> ScrapeOutcome {
        let start = Instant::now();
        let timeout = self.target.timeout;
        self.body = take_body();
        let fetched = match tokio::time::timeout(timeout, self.fetch()).await {
            Ok(r) => r,
            Err(_) => Err(ScrapeError::Timeout(timeout)),
        };
        let result = fetched.and_then(|format| {
            self.processor
                .process(&self.body, format, timestamp_ms, out)
                .map_err(ScrapeError::from)
        });
        let (stats, error) = match result {
            Ok(stats) => (stats, None),
            Err(e) => {
                if !matches!(e, ScrapeError::Process(_)) {
                    // The processor already marked the series stale for body errors.
                    self.processor.fail(timestamp_ms, out);
                }
                (ProcessStats::default(), Some(e))
            }
        };
        let up = error.is_none();
        self.report(timestamp_ms, up, start.elapsed(), &stats, out);
        self.log_transition(up, error.as_ref());
        if (stats.duplicates > 0) != self.duplicates {
            self.duplicates = stats.duplicates > 0;
            if self.duplicates {
                tracing::warn!(
                    target_url = %self.target.url,
                    dropped = stats.duplicates,
                    "Target exposes the same series more than once; the later samples are dropped."
                );
            }
        }
        give_body(std::mem::take(&mut self.body));
        self.last_batch_len = out.series.len();
        self.last_metadata_len = out.metadata.len();
        ScrapeOutcome { up, stats, error }
    }

    fn report(&self, ts: i64, up: bool, took: Duration, stats: &ProcessStats, out: &mut Batch) {
        let values = [
            if up { 1.0 } else { 0.0 },
            took.as_secs_f64(),
            stats.scraped as f64,
            stats.post_relabel as f64,
            stats.added as f64,
        ];
        for (labels, v) in self.report.iter().zip(values) {
            out.push(labels.clone(), Sample::new(ts, v));
        }
    }

    fn log_transition(&mut self, up: bool, error: Option<&ScrapeError>) {
        let was = self.up.replace(up);
        let target = self.target.url.as_str();
        let instance = self.target.instance();
        match (was, error) {
            (Some(false), None) => tracing::info!(target_url = target, instance, "Scrape target is up again."),
            (None | Some(true), Some(error)) => {
                tracing::warn!(%error, target_url = target, instance, "Scrape failed; the target is down until a scrape succeeds.")
            }
            _ => {}
        }
    }

    /// The target went away: staleness markers for all its series, report series included.
    pub fn stop(&mut self, timestamp_ms: i64, out: &mut Batch) {
        self.processor.stale_all(timestamp_ms, out);
        if self.up.is_some() {
            for labels in &self.report {
                out.push(
                    labels.clone(),
                    Sample::new(timestamp_ms, nodetel_core::sample::stale_nan()),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scraper(interval_ms: u64, hash: u64) -> TargetScraper {
        let target = Target {
            url: "http://127.0.0.1:1/metrics".into(),
            labels: vec![("instance".into(), "a:1".into()), ("job".into(), "j".into())],
            interval: Duration::from_millis(interval_ms),
            timeout: Duration::from_millis(interval_ms),
            hash,
        };
        let http = Arc::new(HttpSettings {
            client: reqwest::Client::new(),
            accept: HeaderValue::from_static("text/plain"),
            authorization: None,
            body_size_limit: 0,
        });
        TargetScraper::new(target, http, SeriesSettings::default()).unwrap()
    }

    #[test]
    fn offsets_spread_targets_and_keep_their_phase() {
        let s = scraper(15_000, 4_000);
        assert_eq!(s.offset(0), Duration::from_millis(4_000));
        assert_eq!(s.offset(3_000), Duration::from_millis(1_000));
        assert_eq!(s.offset(5_000), Duration::from_millis(14_000));
        assert_eq!(s.offset(15_000 * 7 + 4_000), Duration::ZERO);
        let other = scraper(15_000, 9_000);
        assert_ne!(s.offset(0), other.offset(0));
    }

    #[test]
    fn report_series_carry_the_target_labels() {
        let s = scraper(1000, 0);
        let names: Vec<String> = s.report.iter().map(|l| l.to_string()).collect();
        assert_eq!(names[0], r#"up{instance="a:1",job="j"}"#);
        assert_eq!(names[4], r#"scrape_series_added{instance="a:1",job="j"}"#);
    }
}
