//! One remote write endpoint: HTTP POSTs with the spec's headers, SigV4, classification of the
//! answer, and retries with exponential backoff, jitter and `Retry-After`.
//!
//! 2xx is success. 5xx, 429 and network errors (timeouts included) are retryable. 413 tells the
//! caller to split the request. A 403 saying the security token expired drops the cached
//! credentials and is retried with fresh ones. Any other status is permanent: the request is
//! dropped and counted, and the first KiB of the response body is logged, at most once per ten
//! seconds per kind of rejection, because a misconfigured endpoint would otherwise log every
//! request. SigV4 rejections that have a known cause (clock skew, wrong region, bad
//! credentials) are logged with that cause named.

use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use tokio_util::sync::CancellationToken;

use crate::remote_write::config::{RemoteWriteConfig, RetryConfig};
use crate::remote_write::encode::EncodedRequest;
use crate::remote_write::metrics::RemoteWriteMetrics;
use crate::remote_write::sigv4::Signer;

/// The `User-Agent` of every request.
pub const USER_AGENT: &str = concat!("nodetel/", env!("CARGO_PKG_VERSION"));

/// The longest `Retry-After` honoured; a longer hint is clamped so a bad header cannot stall a
/// shard for hours.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(600);

/// How much of a rejection's body is logged.
const BODY_LOG_LIMIT: usize = 1024;

/// Why the HTTP client could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SenderError {
    /// A TLS file could not be read.
    #[error("cannot read {what} {path}: {source}")]
    ReadFile {
        /// Which setting.
        what: &'static str,
        /// The path.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// reqwest refused a setting.
    #[error("cannot set up the HTTP client: {0}")]
    Client(#[from] reqwest::Error),
    /// A header in `headers` is invalid.
    #[error("invalid header {0:?}")]
    Header(String),
}

/// How one attempt failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptError {
    /// Worth retrying.
    Retryable {
        /// The server's hint.
        retry_after: Option<Duration>,
        /// What happened (status or transport error; never credentials).
        reason: String,
    },
    /// Never worth retrying.
    Permanent {
        /// The HTTP status, or 0 when the request could not be built or signed.
        status: u16,
        /// What happened.
        reason: String,
    },
}

/// How a request ended after retries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The endpoint accepted it.
    Sent,
    /// The endpoint refused it for good (dropped and counted by the sender).
    Rejected,
    /// The endpoint answered 413: the caller splits the request and sends the halves.
    TooLarge,
    /// Retryable failures continued past the allowed time or attempts.
    GaveUp(String),
    /// `stop` fired while waiting to retry.
    Stopped,
}

/// How long to keep retrying one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryBudget {
    /// One attempt only (the caller has somewhere else to put the request).
    Once,
    /// Until `retry_on_failure.max_elapsed_time`.
    Configured,
    /// Until it is sent, rejected or `stop` fires.
    Forever,
}

/// Exponential backoff with jitter, as configured by `retry_on_failure`.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
    cfg: RetryConfig,
}

impl Backoff {
    /// Starts at `initial_interval`.
    pub fn new(cfg: &RetryConfig) -> Backoff {
        Backoff {
            next: cfg.initial_interval,
            cfg: cfg.clone(),
        }
    }

    /// The next delay, randomised by `randomization_factor`.
    pub fn next_delay(&mut self) -> Duration {
        let d = self.next;
        self.next = d.mul_f64(self.cfg.multiplier).min(self.cfg.max_interval);
        let f = self.cfg.randomization_factor;
        d.mul_f64(1.0 - f + 2.0 * f * fastrand::f64())
    }
}

/// Parses `Retry-After`: delay-seconds or an HTTP date.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs).min(MAX_RETRY_AFTER));
    }
    let at = httpdate::parse_http_date(v).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO).min(MAX_RETRY_AFTER))
}

#[derive(Default)]
struct LogLimit {
    last: Option<Instant>,
    suppressed: u64,
}

/// What a rejection most likely means, from its status and body (AWS wording).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rejection {
    /// SigV4 `Signature expired` / `not yet current`: the host clock is off by over 5 minutes.
    ClockSkew,
    /// The signature's credential scope names a region the endpoint does not serve.
    WrongRegion,
    /// The access key or signature is not accepted.
    BadCredentials,
    /// Anything else.
    Other,
}

impl Rejection {
    fn classify(status: u16, body: &str) -> Rejection {
        if status != 403 {
            return Rejection::Other;
        }
        let b = body.to_ascii_lowercase();
        if b.contains("signature expired") || b.contains("not yet current") || b.contains("requesttimetooskewed") {
            Rejection::ClockSkew
        } else if b.contains("valid region") || b.contains("correct region") || b.contains("wrong region") {
            Rejection::WrongRegion
        } else if b.contains("security token") || b.contains("access key") || b.contains("signature") {
            Rejection::BadCredentials
        } else {
            Rejection::Other
        }
    }
}

/// Whether a 403 body says the (temporary) credentials expired, which fresh ones cure.
fn token_expired(status: u16, body: &str) -> bool {
    let b = body.to_ascii_lowercase();
    status == 403 && (b.contains("token included in the request is expired") || b.contains("expiredtoken"))
}

/// Sends requests to one endpoint.
pub struct Sender {
    client: reqwest::Client,
    url: String,
    headers: HeaderMap,
    signer: Option<Arc<Signer>>,
    metrics: Arc<RemoteWriteMetrics>,
    retry: RetryConfig,
    log_limit: Mutex<[LogLimit; 4]>,
}

impl std::fmt::Debug for Sender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sender").field("url", &self.url).finish_non_exhaustive()
    }
}

fn read(what: &'static str, path: &std::path::Path) -> Result<Vec<u8>, SenderError> {
    std::fs::read(path).map_err(|source| SenderError::ReadFile {
        what,
        path: path.display().to_string(),
        source,
    })
}

impl Sender {
    /// Sets up the HTTP client (reads TLS files).
    pub fn new(
        cfg: &RemoteWriteConfig,
        signer: Option<Arc<Signer>>,
        metrics: Arc<RemoteWriteMetrics>,
    ) -> Result<Sender, SenderError> {
        let mut b = reqwest::Client::builder()
            .use_rustls_tls()
            .timeout(cfg.timeout)
            .connect_timeout(cfg.timeout)
            .user_agent(USER_AGENT)
            .pool_idle_timeout(Duration::from_secs(90));
        if cfg.tls.insecure_skip_verify {
            b = b.danger_accept_invalid_certs(true);
        }
        if let Some(ca) = &cfg.tls.ca_file {
            for cert in reqwest::Certificate::from_pem_bundle(&read("tls.ca_file", ca)?)? {
                b = b.add_root_certificate(cert);
            }
        }
        if let (Some(cert), Some(key)) = (&cfg.tls.cert_file, &cfg.tls.key_file) {
            let mut pem = read("tls.cert_file", cert)?;
            pem.push(b'\n');
            pem.extend_from_slice(&read("tls.key_file", key)?);
            b = b.identity(reqwest::Identity::from_pem(&pem)?);
        }
        let mut headers = HeaderMap::new();
        for (k, v) in &cfg.headers {
            let name = HeaderName::from_bytes(k.as_bytes()).map_err(|_| SenderError::Header(k.clone()))?;
            let value = HeaderValue::from_str(v).map_err(|_| SenderError::Header(k.clone()))?;
            headers.insert(name, value);
        }
        headers.insert("content-encoding", HeaderValue::from_static("snappy"));
        headers.insert("content-type", HeaderValue::from_static("application/x-protobuf"));
        headers.insert("x-prometheus-remote-write-version", HeaderValue::from_static("0.1.0"));
        Ok(Sender {
            client: b.build()?,
            url: cfg.endpoint.clone(),
            headers,
            signer,
            metrics,
            retry: cfg.retry_on_failure.clone(),
            log_limit: Mutex::new(Default::default()),
        })
    }

    /// The signer, if requests are signed.
    pub fn signer(&self) -> Option<&Arc<Signer>> {
        self.signer.as_ref()
    }

    /// One POST of `req`.
    pub async fn attempt(&self, req: &EncodedRequest) -> Result<(), AttemptError> {
        let started = Instant::now();
        let mut headers = self.headers.clone();
        if let Some(signer) = &self.signer {
            let signed = [
                ("content-encoding", "snappy"),
                ("content-type", "application/x-protobuf"),
                ("x-prometheus-remote-write-version", "0.1.0"),
            ];
            let extra = signer
                .sign(&self.url, &signed, &req.sha256, SystemTime::now())
                .await
                .map_err(|e| AttemptError::Retryable {
                    retry_after: None,
                    reason: e.to_string(),
                })?;
            for (name, value) in extra {
                let value = HeaderValue::from_str(&value).map_err(|_| AttemptError::Permanent {
                    status: 0,
                    reason: format!("signature header {name} is not a valid header value"),
                })?;
                headers.insert(name, value);
            }
        }
        let result = self
            .client
            .post(&self.url)
            .headers(headers)
            .body(req.body.clone())
            .send()
            .await;
        self.metrics.observe_latency(started.elapsed());
        let resp = match result {
            Ok(r) => r,
            Err(e) => {
                return Err(AttemptError::Retryable {
                    retry_after: None,
                    reason: format!("POST {} failed: {}", self.url, error_chain(&e)),
                });
            }
        };
        let status = resp.status();
        if status.is_success() {
            // Drain the (normally empty) body so the connection goes back to the pool.
            let _ = resp.bytes().await;
            return Ok(());
        }
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, SystemTime::now()));
        let server_date = resp
            .headers()
            .get(reqwest::header::DATE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| httpdate::parse_http_date(v).ok());
        let body = read_prefix(resp, BODY_LOG_LIMIT).await;
        let mut reason = format!("HTTP {} from {}: {}", status.as_u16(), self.url, body);
        if let Some(date) = server_date
            && Rejection::classify(status.as_u16(), &body) == Rejection::ClockSkew
        {
            // The server's Date header measures the skew (to a second).
            let skew = match SystemTime::now().duration_since(date) {
                Ok(ahead) => ahead.as_secs() as i64,
                Err(behind) => -(behind.duration().as_secs() as i64),
            };
            reason.push_str(&format!(
                " (this host's clock is {skew:+} s off the server's Date header)"
            ));
        }
        if token_expired(status.as_u16(), &body)
            && let Some(signer) = &self.signer
            && signer.invalidate().await
        {
            return Err(AttemptError::Retryable { retry_after, reason });
        }
        if status.is_server_error() || status.as_u16() == 429 {
            Err(AttemptError::Retryable { retry_after, reason })
        } else {
            Err(AttemptError::Permanent {
                status: status.as_u16(),
                reason,
            })
        }
    }

    /// Sends `req`, retrying within `budget`, until sent, rejected, given up or `stop` fires.
    /// Counts sent and rejected samples; the caller counts what it does with the other outcomes.
    pub async fn send(&self, req: &EncodedRequest, budget: RetryBudget, stop: &CancellationToken) -> Outcome {
        let started = Instant::now();
        let mut backoff = Backoff::new(&self.retry);
        let mut attempt = 0u32;
        loop {
            if attempt > 0 {
                self.metrics
                    .retried_requests
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            attempt += 1;
            let error = match self.attempt(req).await {
                Ok(()) => {
                    self.metrics.add_sent(u64::from(req.samples), req.body.len() as u64);
                    if attempt > 1 {
                        tracing::info!(attempts = attempt, "Remote write recovered.");
                    }
                    return Outcome::Sent;
                }
                Err(e) => e,
            };
            self.metrics
                .failed_requests
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let (retry_after, reason) = match error {
                AttemptError::Permanent { status: 413, .. } => return Outcome::TooLarge,
                AttemptError::Permanent { status, reason } => {
                    self.log_rejection(status, &reason, req.samples);
                    return Outcome::Rejected;
                }
                AttemptError::Retryable { retry_after, reason } => (retry_after, reason),
            };
            if attempt == 1 {
                tracing::warn!(error = %reason, samples = req.samples, "Remote write failed; retrying.");
            }
            let exhausted = match budget {
                RetryBudget::Once => true,
                RetryBudget::Configured => {
                    !self.retry.enabled
                        || (!self.retry.max_elapsed_time.is_zero() && started.elapsed() >= self.retry.max_elapsed_time)
                }
                RetryBudget::Forever => false,
            };
            if exhausted {
                return Outcome::GaveUp(reason);
            }
            let wait = match retry_after {
                Some(d) => d,
                None => backoff.next_delay(),
            };
            tokio::select! {
                _ = stop.cancelled() => return Outcome::Stopped,
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    fn log_rejection(&self, status: u16, reason: &str, samples: u32) {
        let kind = Rejection::classify(status, reason);
        let mut limits = self.log_limit.lock().unwrap_or_else(|e| e.into_inner());
        let l = &mut limits[kind as usize];
        let now = Instant::now();
        if l.last.is_some_and(|t| now.duration_since(t) < Duration::from_secs(10)) {
            l.suppressed += 1;
            return;
        }
        let suppressed = std::mem::take(&mut l.suppressed);
        l.last = Some(now);
        drop(limits);
        match kind {
            Rejection::ClockSkew => tracing::error!(
                status,
                error = %reason,
                samples,
                suppressed,
                "Remote write rejected: the SigV4 signature is stale because of clock skew (this host's clock \
                 is more than 5 minutes off); fix time sync (chrony/NTP). Request dropped."
            ),
            Rejection::WrongRegion => tracing::error!(
                status,
                error = %reason,
                samples,
                suppressed,
                region = self.signer.as_ref().and_then(|s| s.region()).unwrap_or(""),
                "Remote write rejected: wrong SigV4 region (the signing region is not the endpoint's); set \
                 sigv4auth.region to the workspace's region. Request dropped."
            ),
            Rejection::BadCredentials => tracing::error!(
                status,
                error = %reason,
                samples,
                suppressed,
                "Remote write rejected: the AWS credentials or the SigV4 signature were not accepted. Request \
                 dropped."
            ),
            Rejection::Other => {
                tracing::error!(status, error = %reason, samples, suppressed, "Remote write rejected; request dropped.")
            }
        }
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

async fn read_prefix(mut resp: reqwest::Response, limit: usize) -> String {
    let mut buf = Vec::new();
    while buf.len() < limit {
        match resp.chunk().await {
            Ok(Some(c)) => buf.extend_from_slice(&c[..c.len().min(limit - buf.len())]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&buf).trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_accepts_seconds_and_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(parse_retry_after("3", now), Some(Duration::from_secs(3)));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(42));
        assert_eq!(parse_retry_after(&later, now), Some(Duration::from_secs(42)));
        let earlier = httpdate::fmt_http_date(now - Duration::from_secs(42));
        assert_eq!(parse_retry_after(&earlier, now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("99999", now), Some(MAX_RETRY_AFTER));
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn rejections_are_classified_by_aws_wording() {
        let c = |status, body| Rejection::classify(status, body);
        let skew = r#"{"message":"Signature expired: 20231114T221320Z is now earlier than 20231114T221823Z (20231114T222323Z - 5 min.)"}"#;
        assert_eq!(c(403, skew), Rejection::ClockSkew);
        assert_eq!(
            c(403, "Signature not yet current: 20231114T223320Z is still later than"),
            Rejection::ClockSkew
        );
        assert_eq!(
            c(403, r#"{"message":"Credential should be scoped to a valid region. "}"#),
            Rejection::WrongRegion
        );
        assert_eq!(
            c(403, "The security token included in the request is invalid."),
            Rejection::BadCredentials
        );
        assert_eq!(c(400, skew), Rejection::Other, "only a 403 is a SigV4 rejection");
        assert_eq!(c(403, "forbidden"), Rejection::Other);
        assert!(token_expired(
            403,
            r#"{"message":"The security token included in the request is expired"}"#
        ));
        assert!(!token_expired(
            403,
            "The security token included in the request is invalid."
        ));
    }

    #[test]
    fn backoff_grows_to_the_cap_within_the_jitter() {
        let cfg = RetryConfig {
            initial_interval: Duration::from_millis(100),
            max_interval: Duration::from_millis(400),
            multiplier: 2.0,
            randomization_factor: 0.5,
            ..RetryConfig::default()
        };
        let mut b = Backoff::new(&cfg);
        for base in [100u64, 200, 400, 400, 400] {
            let d = b.next_delay().as_secs_f64() * 1000.0;
            assert!(
                d >= base as f64 * 0.5 - 1e-6 && d <= base as f64 * 1.5 + 1e-6,
                "{d} vs {base}"
            );
        }
    }
}
