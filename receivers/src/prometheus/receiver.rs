//! The receiver: builds one job per `scrape_config`, discovers targets (static and file), and
//! runs one task per target; targets that go away get staleness markers.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use nodetel_core::component::{BoxError, Output, Receiver, ReceiverContext};
use nodetel_core::config::BuildContext;
use nodetel_core::sample::now_ms;
use nodetel_core::{Batch, CancellationToken};
use reqwest::header::HeaderValue;

use super::config::{PrometheusConfig, ScrapeConfig};
use super::file_sd::FileSd;
use super::process::{Limits, SeriesSettings};
use super::relabel::Relabeler;
use super::scrape::{HttpSettings, TargetScraper};
use super::target::{TargetDefaults, TargetGroup, populate_all};

/// Why the receiver could not be built.
#[derive(Debug, thiserror::Error)]
#[error("scrape job {job:?}: {message}")]
pub struct BuildError {
    /// The job.
    pub job: String,
    /// What failed.
    pub message: String,
}

struct Job {
    config: ScrapeConfig,
    interval: Duration,
    timeout: Duration,
    relabel: Relabeler,
    http: Arc<HttpSettings>,
    settings: SeriesSettings,
    file_sd: Vec<(FileSd, Duration)>,
    /// Discovery problems already logged, so a refresh does not repeat them.
    logged: Vec<String>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job").field("job_name", &self.config.job_name).finish()
    }
}

/// The `prometheus` receiver.
#[derive(Debug)]
pub struct PrometheusReceiver {
    jobs: Vec<Job>,
    once: Option<Vec<TargetScraper>>,
}

fn base64(input: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn read_secret(job: &str, what: &str, path: &str) -> Result<String, BuildError> {
    std::fs::read_to_string(path)
        .map(|s| s.trim_end_matches(['\r', '\n']).to_owned())
        .map_err(|e| BuildError {
            job: job.into(),
            message: format!("cannot read {what} {path:?}: {e}"),
        })
}

fn http_settings(c: &ScrapeConfig) -> Result<HttpSettings, BuildError> {
    let job = c.job_name.as_str();
    let err = |message: String| BuildError {
        job: job.into(),
        message,
    };
    let mut b = reqwest::Client::builder()
        .no_proxy()
        .gzip(c.enable_compression)
        .user_agent(concat!("nodetel/", env!("CARGO_PKG_VERSION")))
        .danger_accept_invalid_certs(c.tls_config.insecure_skip_verify);
    if let Some(ca) = &c.tls_config.ca_file {
        let pem = std::fs::read(ca).map_err(|e| err(format!("cannot read tls_config.ca_file {ca:?}: {e}")))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| err(format!("tls_config.ca_file {ca:?} is not PEM certificates: {e}")))?;
        for cert in certs {
            b = b.add_root_certificate(cert);
        }
    }
    if let (Some(cert), Some(key)) = (&c.tls_config.cert_file, &c.tls_config.key_file) {
        let mut pem =
            std::fs::read(cert).map_err(|e| err(format!("cannot read tls_config.cert_file {cert:?}: {e}")))?;
        pem.push(b'\n');
        pem.extend(std::fs::read(key).map_err(|e| err(format!("cannot read tls_config.key_file {key:?}: {e}")))?);
        let id = reqwest::Identity::from_pem(&pem).map_err(|e| {
            err(format!(
                "tls_config cert_file/key_file are not a PEM certificate and key: {e}"
            ))
        })?;
        b = b.identity(id);
    }
    let client = b
        .build()
        .map_err(|e| err(format!("cannot build the HTTP client: {e}")))?;
    let mut authorization = None;
    if let Some(ba) = &c.basic_auth {
        let password = match (&ba.password, &ba.password_file) {
            (Some(p), _) => p.clone(),
            (None, Some(f)) => read_secret(job, "basic_auth.password_file", f)?,
            (None, None) => String::new(),
        };
        authorization = Some(format!(
            "Basic {}",
            base64(format!("{}:{password}", ba.username).as_bytes())
        ));
    }
    if let Some(a) = &c.authorization {
        let credentials = match (&a.credentials, &a.credentials_file) {
            (Some(s), _) => s.clone(),
            (None, Some(f)) => read_secret(job, "authorization.credentials_file", f)?,
            (None, None) => String::new(),
        };
        authorization = Some(format!("{} {credentials}", a.kind));
    }
    let authorization = authorization
        .map(|s| {
            HeaderValue::from_str(&s).map(|mut h| {
                h.set_sensitive(true);
                h
            })
        })
        .transpose()
        .map_err(|_| err("credentials hold characters not allowed in an HTTP header".into()))?;
    let accept = HeaderValue::from_str(&c.accept_header())
        .map_err(|_| err("scrape_protocols do not form a valid Accept header".into()))?;
    Ok(HttpSettings {
        client,
        accept,
        authorization,
        body_size_limit: c.body_size_limit.0,
    })
}

impl PrometheusReceiver {
    /// Builds the jobs of a validated config (reads TLS and credential files).
    pub fn new(cfg: &PrometheusConfig, _cx: &BuildContext) -> Result<PrometheusReceiver, BoxError> {
        let global = &cfg.config.global;
        let external_labels: Vec<(String, String)> = global
            .external_labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let mut jobs = Vec::new();
        for c in &cfg.config.scrape_configs {
            let compile = |rc| {
                Relabeler::new(rc).map_err(|e| BuildError {
                    job: c.job_name.clone(),
                    message: e.to_string(),
                })
            };
            let settings = SeriesSettings {
                target_labels: Vec::new(),
                honor_labels: c.honor_labels,
                honor_timestamps: c.honor_timestamps,
                metric_relabel: compile(&c.metric_relabel_configs)?,
                external_labels: external_labels.clone(),
                limits: Limits {
                    sample_limit: c.sample_limit,
                    label_limit: c.label_limit,
                    label_name_length_limit: c.label_name_length_limit,
                    label_value_length_limit: c.label_value_length_limit,
                },
            };
            jobs.push(Job {
                interval: c.interval(global),
                timeout: c.timeout(global),
                relabel: compile(&c.relabel_configs)?,
                http: Arc::new(http_settings(c)?),
                settings,
                file_sd: c
                    .file_sd_configs
                    .iter()
                    .map(|f| (FileSd::new(f), f.refresh_interval))
                    .collect(),
                logged: Vec::new(),
                config: c.clone(),
            });
        }
        Ok(PrometheusReceiver { jobs, once: None })
    }

    /// Re-reads discovery files and returns a scraper for every target, keyed by job and hash.
    fn discover(&mut self) -> Vec<((usize, u64), TargetScraper)> {
        let mut out = Vec::new();
        for (index, job) in self.jobs.iter_mut().enumerate() {
            let mut problems = Vec::new();
            for (sd, _) in &mut job.file_sd {
                problems.extend(sd.refresh());
            }
            let statics: Vec<TargetGroup> = job
                .config
                .static_configs
                .iter()
                .map(|s| TargetGroup {
                    targets: s.targets.clone(),
                    labels: s.labels.clone(),
                })
                .collect();
            let defaults = TargetDefaults {
                config: &job.config,
                interval: job.interval,
                timeout: job.timeout,
                relabel: &job.relabel,
            };
            let groups = statics.iter().chain(job.file_sd.iter().flat_map(|(sd, _)| sd.groups()));
            let (targets, errors) = populate_all(&defaults, groups);
            problems.extend(errors);
            for target in targets {
                let hash = target.hash;
                match TargetScraper::new(target, job.http.clone(), job.settings.clone()) {
                    Ok(s) => out.push(((index, hash), s)),
                    Err(e) => problems.push(format!("target labels cannot form a label set: {e}")),
                }
            }
            for p in &problems {
                if !job.logged.contains(p) {
                    tracing::warn!(job = %job.config.job_name, problem = %p, "Target discovery problem; the target is skipped.");
                }
            }
            job.logged = problems;
        }
        out
    }

    fn refresh_interval(&self) -> Option<Duration> {
        self.jobs.iter().flat_map(|j| j.file_sd.iter().map(|(_, d)| *d)).min()
    }
}

/// Sends unless shutting down; false when the receiver should stop.
async fn send(output: &Output, batch: Batch, shutdown: &CancellationToken) -> bool {
    tokio::select! {
        _ = shutdown.cancelled() => false,
        r = output.send(batch) => r.is_ok(),
    }
}

/// Scrapes one target every interval until `stop` fires. When the target was removed (not a
/// shutdown), its series get staleness markers.
async fn drive(mut s: TargetScraper, output: Output, stop: CancellationToken, shutdown: CancellationToken) {
    let first = s.offset(now_ms());
    tokio::select! {
        _ = stop.cancelled() => return,
        _ = tokio::time::sleep(first) => {}
    }
    let mut ticker = tokio::time::interval(s.target().interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            biased;
            _ = stop.cancelled() => break,
            _ = ticker.tick() => {}
        }
        let mut batch = s.new_batch();
        let outcome = tokio::select! {
            _ = stop.cancelled() => break,
            o = s.scrape(now_ms(), &mut batch) => o,
        };
        if !outcome.up {
            output.telemetry().add_error();
        }
        if !send(&output, batch, &shutdown).await {
            return;
        }
    }
    if !shutdown.is_cancelled() {
        let mut batch = Batch::new();
        s.stop(now_ms(), &mut batch);
        if !batch.is_empty() {
            send(&output, batch, &shutdown).await;
        }
    }
}

#[async_trait]
impl Receiver for PrometheusReceiver {
    async fn run(&mut self, cx: ReceiverContext) -> Result<(), BoxError> {
        let mut running: HashMap<(usize, u64), (CancellationToken, tokio::task::JoinHandle<()>)> = HashMap::new();
        let refresh = self.refresh_interval();
        loop {
            let scrapers = self.discover();
            let wanted: std::collections::HashSet<(usize, u64)> = scrapers.iter().map(|(k, _)| *k).collect();
            running.retain(|key, (stop, _)| {
                let keep = wanted.contains(key);
                if !keep {
                    stop.cancel();
                }
                keep
            });
            for (key, s) in scrapers {
                if running.contains_key(&key) {
                    continue;
                }
                let stop = cx.shutdown.child_token();
                let task = tokio::spawn(drive(s, cx.output.clone(), stop.clone(), cx.shutdown.clone()));
                running.insert(key, (stop, task));
            }
            let Some(every) = refresh else {
                cx.shutdown.cancelled().await;
                break;
            };
            tokio::select! {
                _ = cx.shutdown.cancelled() => break,
                _ = tokio::time::sleep(every) => {}
            }
        }
        for (_, (_, task)) in running {
            // A task that panicked has already been reported by the panic hook.
            let _ = task.await;
        }
        Ok(())
    }

    async fn collect_once(&mut self, out: &mut Batch) -> Result<bool, BoxError> {
        if self.once.is_none() {
            self.once = Some(self.discover().into_iter().map(|(_, s)| s).collect());
        }
        let Some(scrapers) = self.once.as_mut() else {
            return Ok(true);
        };
        let ts = now_ms();
        let mut batches: Vec<Batch> = scrapers.iter().map(|s| s.new_batch()).collect();
        futures_util::future::join_all(
            scrapers
                .iter_mut()
                .zip(batches.iter_mut())
                .map(|(s, b)| s.scrape(ts, b)),
        )
        .await;
        for mut b in batches {
            out.append(&mut b);
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        let cases = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (i, o) in cases {
            assert_eq!(base64(i.as_bytes()), o, "{i}");
        }
    }
}
