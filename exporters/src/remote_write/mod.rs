//! The `prometheusremotewrite` exporter: Prometheus remote write 1.0 (protobuf + snappy),
//! SigV4-signed for Amazon Managed Service for Prometheus, sharded by series, with retries and
//! an optional persistent queue.
//!
//! `export` only routes series to shards (by label-set hash, so each series stays in order) and
//! returns once they are enqueued; it waits when every shard's buffer is full. The shards encode,
//! compress, sign and send (see `shards`). Every few seconds `export` re-sizes the shard set to
//! the backlog; to keep series in order it first lets the old shards flush.

pub mod config;
pub mod disk_queue;
pub mod encode;
pub mod metrics;
pub mod proto;
pub mod rewrite;
pub mod sender;
pub mod shards;
pub mod sigv4;
pub mod split;

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use nodetel_core::batch::Batch;
use nodetel_core::component::{BoxError, ExportError, Exporter};
use nodetel_core::config::{BuildContext, ExporterConfig, ExtensionConfig};
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use config::{RemoteWriteConfig, SigV4AuthConfig};
pub use metrics::{DropReason, RemoteWriteMetrics};
pub use sigv4::Signer;

use disk_queue::DiskQueue;
use rewrite::RewriteRules;
use sender::Sender;
use shards::{DiskState, ShardMsg, ShardSettings, Shared};

/// How often the shard count is reconsidered.
const RESHARD_INTERVAL: Duration = Duration::from_secs(10);

/// Why the exporter could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// `auth.authenticator` names no enabled `sigv4auth` extension.
    #[error("auth.authenticator: extension {0:?} is not enabled or is not a sigv4auth extension")]
    MissingAuthenticator(String),
    /// The HTTP client could not be set up.
    #[error(transparent)]
    Sender(#[from] sender::SenderError),
    /// The disk queue could not be opened.
    #[error(transparent)]
    Disk(#[from] disk_queue::DiskQueueError),
}

struct Shard {
    tx: mpsc::Sender<ShardMsg>,
    task: JoinHandle<()>,
}

struct Resize {
    at: Instant,
    samples_in: u64,
    latency_us: u64,
    latency_n: u64,
    samples_sent: u64,
    failed: u64,
}

/// The exporter.
pub struct RemoteWriteExporter {
    shared: Arc<Shared>,
    shards: Vec<Shard>,
    replayer: Option<JoinHandle<()>>,
    min_shards: usize,
    max_shards: usize,
    capacity: usize,
    flush_timeout: Duration,
    resize: Resize,
    resize_interval: Duration,
    checked: bool,
}

impl std::fmt::Debug for RemoteWriteExporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteWriteExporter")
            .field("sender", &self.shared.sender)
            .field("shards", &self.shards.len())
            .finish_non_exhaustive()
    }
}

impl RemoteWriteExporter {
    /// Builds the exporter. `signer` overrides what `auth` (or an AMP endpoint) would set up;
    /// tests pass one with fixed credentials.
    pub fn new(
        cfg: &RemoteWriteConfig,
        cx: &BuildContext,
        signer: Option<Arc<Signer>>,
    ) -> Result<RemoteWriteExporter, BuildError> {
        let signer = match signer {
            Some(s) => Some(s),
            None => default_signer(cfg, cx)?,
        };
        let metrics = RemoteWriteMetrics::registered(&cx.registry, &cx.id);
        let sender = Sender::new(cfg, signer, metrics.clone())?;
        let disk = match &cfg.queue.directory {
            Some(dir) => {
                let queue = DiskQueue::open(dir, cfg.queue.max_size_bytes)?;
                let spilling = !queue.is_empty();
                if spilling {
                    tracing::info!(
                        requests = queue.records(),
                        samples = queue.samples(),
                        "Replaying the disk queue before new data."
                    );
                }
                metrics.disk_bytes.store(queue.bytes(), Ordering::Relaxed);
                metrics.disk_records.store(queue.records(), Ordering::Relaxed);
                Some(Mutex::new(DiskState { queue, spilling }))
            }
            None => None,
        };
        let shared = Arc::new(Shared {
            sender,
            metrics,
            disk,
            spilled: Notify::new(),
            stop: CancellationToken::new(),
            settings: ShardSettings {
                max_samples: cfg.max_samples_per_send,
                max_bytes: cfg.max_batch_size_bytes,
                deadline: cfg.batch_send_deadline,
                send_metadata: cfg.send_metadata,
                rules: RewriteRules {
                    external_labels: cfg
                        .external_labels
                        .iter()
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect(),
                    namespace: cfg.namespace.clone(),
                    add_metric_suffixes: cfg.add_metric_suffixes,
                },
            },
        });
        let capacity = if cfg.remote_write_queue.enabled {
            (cfg.remote_write_queue.queue_size / cfg.max_shards()).max(1)
        } else {
            1
        };
        let mut e = RemoteWriteExporter {
            resize: Resize {
                at: Instant::now(),
                samples_in: 0,
                latency_us: 0,
                latency_n: 0,
                samples_sent: 0,
                failed: 0,
            },
            shared,
            shards: Vec::new(),
            replayer: None,
            min_shards: cfg.min_shards(),
            max_shards: cfg.max_shards(),
            capacity,
            flush_timeout: cfg.shutdown_flush_timeout,
            resize_interval: RESHARD_INTERVAL,
            checked: false,
        };
        // Start replaying right away when built inside the runtime; otherwise at the first export.
        if tokio::runtime::Handle::try_current().is_ok() {
            e.start(e.min_shards);
        }
        Ok(e)
    }

    /// Self-metrics of this exporter.
    pub fn metrics(&self) -> &Arc<RemoteWriteMetrics> {
        &self.shared.metrics
    }

    /// Current shard count.
    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    /// How often the shard count is reconsidered (10 s by default; tests shorten it).
    pub fn set_resize_interval(&mut self, interval: Duration) {
        self.resize_interval = interval;
    }

    fn start(&mut self, n: usize) {
        if !self.checked {
            self.checked = true;
            if let Some(signer) = self.shared.sender.signer().cloned() {
                // Load credentials now so a missing role shows in the log at start-up, not
                // only when the first request fails.
                tokio::spawn(async move {
                    if let Err(error) = signer.check().await {
                        tracing::warn!(%error, "SigV4 credentials are not available yet; sends will retry.");
                    }
                });
            }
        }
        if self.replayer.is_none() && self.shared.disk.is_some() {
            self.replayer = Some(tokio::spawn(shards::run_replayer(self.shared.clone())));
        }
        for _ in 0..n {
            let (tx, rx) = mpsc::channel(self.capacity);
            let task = tokio::spawn(shards::run_shard(self.shared.clone(), rx));
            self.shards.push(Shard { tx, task });
        }
        self.shared
            .metrics
            .shards
            .store(self.shards.len() as u64, Ordering::Relaxed);
    }

    /// Closes every shard and waits until each has flushed.
    async fn stop_shards(&mut self) {
        for shard in self.shards.drain(..) {
            drop(shard.tx);
            if let Err(error) = shard.task.await
                && error.is_panic()
            {
                tracing::error!(%error, "A remote write shard panicked.");
            }
        }
    }

    /// Asks every shard to send what it holds and waits for them.
    pub async fn flush(&mut self) {
        let mut acks = Vec::new();
        for shard in &self.shards {
            let (tx, rx) = tokio::sync::oneshot::channel();
            if shard.tx.send(ShardMsg::Flush(tx)).await.is_ok() {
                acks.push(rx);
            }
        }
        for ack in acks {
            let _ = ack.await;
        }
    }

    async fn maybe_resize(&mut self) {
        let elapsed = self.resize.at.elapsed();
        if elapsed < self.resize_interval {
            return;
        }
        let m = &self.shared.metrics;
        let samples_in = m.samples_in.load(Ordering::Relaxed);
        let samples_sent = m.samples_sent.load(Ordering::Relaxed);
        let failed = m.failed_requests.load(Ordering::Relaxed);
        let (lat_us, lat_n) = m.latency_totals();
        let spilling = self
            .shared
            .disk
            .as_ref()
            .is_some_and(|d| d.lock().unwrap_or_else(|e| e.into_inner()).spilling);
        let in_rate = (samples_in - self.resize.samples_in) as f64 / elapsed.as_secs_f64();
        let sent = samples_sent - self.resize.samples_sent;
        let healthy = failed == self.resize.failed && !spilling && lat_n > self.resize.latency_n && sent > 0;
        let secs_per_sample = (lat_us - self.resize.latency_us) as f64 / 1e6 / sent.max(1) as f64;
        self.resize = Resize {
            at: Instant::now(),
            samples_in,
            latency_us: lat_us,
            latency_n: lat_n,
            samples_sent,
            failed,
        };
        // Resizing while the endpoint fails would only add load to a struggling endpoint.
        if !healthy {
            return;
        }
        let current = self.shards.len();
        let want = shards::desired_shards(
            current,
            self.min_shards,
            self.max_shards,
            in_rate,
            secs_per_sample,
            m.pending() as f64,
        );
        if want != current {
            tracing::info!(from = current, to = want, "Resizing remote write shards.");
            self.stop_shards().await;
            self.start(want);
        }
    }
}

fn default_signer(cfg: &RemoteWriteConfig, cx: &BuildContext) -> Result<Option<Arc<Signer>>, BuildError> {
    let endpoint_region = config::region_from_endpoint(&cfg.endpoint);
    if let Some(auth) = &cfg.auth {
        let ext = cx
            .extension::<SigV4AuthConfig>(&auth.authenticator)
            .ok_or_else(|| BuildError::MissingAuthenticator(auth.authenticator.clone()))?;
        return Ok(Some(Arc::new(Signer::from_chain(&ext, endpoint_region))));
    }
    // AMP accepts nothing unsigned, so an AMP endpoint is signed even without `auth`.
    Ok(endpoint_region.map(|r| Arc::new(Signer::from_chain(&SigV4AuthConfig::default(), Some(r)))))
}

#[async_trait]
impl Exporter for RemoteWriteExporter {
    async fn export(&mut self, batch: Arc<Batch>) -> Result<(), ExportError> {
        if self.shards.is_empty() || self.shards.iter().any(|s| s.tx.is_closed()) {
            self.stop_shards().await;
            self.start(self.min_shards);
        }
        self.maybe_resize().await;
        let samples = batch.sample_count() as u64;
        let m = &self.shared.metrics;
        m.samples_in.fetch_add(samples, Ordering::Relaxed);
        m.pending_samples.fetch_add(samples, Ordering::Relaxed);
        let n = self.shards.len();
        let closed = || ExportError::Retryable {
            retry_after: None,
            source: "a remote write shard stopped; it is restarted on the next try".into(),
        };
        if n == 1 {
            let msg = ShardMsg::Chunk {
                batch,
                indices: None,
                metadata: true,
            };
            return self.shards[0].tx.send(msg).await.map_err(|_| closed());
        }
        let mut parts: Vec<Vec<u32>> = vec![Vec::new(); n];
        for (i, s) in batch.series.iter().enumerate() {
            parts[(s.labels.hash_value() % n as u64) as usize].push(i as u32);
        }
        let mut metadata = true;
        for (shard, idx) in self.shards.iter().zip(parts) {
            if idx.is_empty() {
                continue;
            }
            let msg = ShardMsg::Chunk {
                batch: batch.clone(),
                indices: Some(idx),
                metadata: std::mem::take(&mut metadata),
            };
            shard.tx.send(msg).await.map_err(|_| closed())?;
        }
        Ok(())
    }

    async fn shutdown(&mut self) -> Result<(), BoxError> {
        // Shards flush on close; give them `shutdown_flush_timeout`, then make retry waits end
        // so the rest is persisted (or counted as dropped).
        let stop = self.shared.stop.clone();
        let timeout = self.flush_timeout;
        let timer = tokio::spawn(async move {
            tokio::time::sleep(timeout).await;
            stop.cancel();
        });
        self.stop_shards().await;
        timer.abort();
        self.shared.stop.cancel();
        if let Some(r) = self.replayer.take() {
            let _ = r.await;
        }
        if let Some(disk) = &self.shared.disk {
            let mut d = disk.lock().unwrap_or_else(|e| e.into_inner());
            d.queue.sync()?;
        }
        self.shared.metrics.shards.store(0, Ordering::Relaxed);
        Ok(())
    }
}

impl Drop for RemoteWriteExporter {
    fn drop(&mut self) {
        // Without a shutdown (a crash, or a rebuild after a panic) tasks must not outlive us.
        self.shared.stop.cancel();
        for s in &self.shards {
            s.task.abort();
        }
        if let Some(r) = &self.replayer {
            r.abort();
        }
    }
}

impl ExporterConfig for RemoteWriteConfig {
    const TYPE: &'static str = "prometheusremotewrite";

    fn build(&self, cx: &BuildContext) -> Result<Box<dyn Exporter>, BoxError> {
        Ok(Box::new(RemoteWriteExporter::new(self, cx, None)?))
    }

    fn extension_refs(&self) -> Vec<(String, String, &'static str)> {
        self.auth
            .iter()
            .map(|a| {
                (
                    "auth.authenticator".to_owned(),
                    a.authenticator.clone(),
                    SigV4AuthConfig::TYPE,
                )
            })
            .collect()
    }
}
