//! Shards: parallel senders, each owning the series whose label hash routes to it, so the
//! samples of one series always leave in order. Also the disk replayer and the sizing rule that
//! adapts the shard count to backlog.
//!
//! A shard encodes series straight into its request buffer as chunks arrive, seals a request
//! when it reaches `max_samples_per_send` or `max_batch_size_bytes` or when the oldest series in
//! it has waited `batch_send_deadline`, and sends it before taking the next chunk; a slow
//! endpoint therefore fills the shard's bounded channel and `export` waits (back-pressure).
//!
//! With a disk queue, a request whose single attempt fails goes to disk and the exporter enters
//! spilling mode: every later request goes to disk too, behind it, and one replayer sends the
//! disk queue in order with unbounded retries. When the queue is empty, shards send directly
//! again. Without a disk queue, a shard retries a request until `max_elapsed_time`.
//!
//! A request answered with 413 is split in halves that are sent in its place, recursively, down
//! to a single series; a single series that is still too large is dropped and counted.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nodetel_core::batch::Batch;
use nodetel_core::metadata::MetricType;
use tokio::sync::{Notify, mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::remote_write::disk_queue::DiskQueue;
use crate::remote_write::encode::{Compressor, EncodedRequest, RequestEncoder, samples_len};
use crate::remote_write::metrics::{DropReason, RemoteWriteMetrics};
use crate::remote_write::rewrite::{RewriteRules, Rewriter};
use crate::remote_write::sender::{Outcome, RetryBudget, Sender};
use crate::remote_write::split::split_in_halves;

/// How often a family's metadata is sent again by one shard.
const METADATA_INTERVAL: Duration = Duration::from_secs(60);

/// What a shard is given.
#[derive(Debug)]
pub enum ShardMsg {
    /// Series of a batch: all of them (`None`) or those at the given indices.
    Chunk {
        /// The batch.
        batch: Arc<Batch>,
        /// Which series belong to this shard.
        indices: Option<Vec<u32>>,
        /// Whether this shard also sends the batch's metadata.
        metadata: bool,
    },
    /// Seal and send what is buffered, then acknowledge.
    Flush(oneshot::Sender<()>),
}

/// Request bounds and options of every shard.
#[derive(Debug, Clone)]
pub struct ShardSettings {
    /// Samples per request.
    pub max_samples: usize,
    /// Uncompressed bytes per request.
    pub max_bytes: usize,
    /// How long a partial request may wait.
    pub deadline: Duration,
    /// Send family metadata.
    pub send_metadata: bool,
    /// Label changes.
    pub rules: RewriteRules,
}

/// The disk queue and whether the exporter is spilling into it.
#[derive(Debug)]
pub struct DiskState {
    /// The queue.
    pub queue: DiskQueue,
    /// Set by a failed send; cleared by the replayer when the queue is empty.
    pub spilling: bool,
}

/// What shards and the replayer share.
#[derive(Debug)]
pub struct Shared {
    /// The endpoint.
    pub sender: Sender,
    /// Self-metrics.
    pub metrics: Arc<RemoteWriteMetrics>,
    /// The disk queue, if configured.
    pub disk: Option<Mutex<DiskState>>,
    /// Wakes the replayer when something was spilled.
    pub spilled: Notify,
    /// Fired when the shutdown deadline passes: retry waits end at once.
    pub stop: CancellationToken,
    /// Request bounds.
    pub settings: ShardSettings,
}

impl Shared {
    fn update_disk_metrics(&self, q: &DiskQueue) {
        use std::sync::atomic::Ordering::Relaxed;
        self.metrics.disk_bytes.store(q.bytes(), Relaxed);
        self.metrics.disk_records.store(q.records(), Relaxed);
    }

    /// Appends to the disk queue and enters spilling mode. Returns false without a disk queue.
    fn spill(&self, req: &EncodedRequest) -> bool {
        let Some(disk) = &self.disk else { return false };
        let n = u64::from(req.samples);
        let mut d = disk.lock().unwrap_or_else(|e| e.into_inner());
        let pushed = d.queue.push(req);
        let evicted = match &pushed {
            Ok(e) => *e,
            Err(e) => e.evicted,
        };
        if evicted.records > 0 {
            self.metrics.add_dropped(DropReason::QueueFull, evicted.samples);
            tracing::warn!(
                requests = evicted.records,
                samples = evicted.samples,
                "Disk queue is full; dropped its oldest data."
            );
        }
        match pushed {
            Ok(_) => {
                self.metrics
                    .samples_spilled
                    .fetch_add(n, std::sync::atomic::Ordering::Relaxed);
            }
            Err(error) => {
                self.metrics.add_dropped(DropReason::DiskError, n);
                tracing::error!(%error, samples = n, "Cannot persist a request; dropped.");
            }
        }
        if !d.spilling {
            tracing::warn!("Endpoint failing; buffering requests in the disk queue.");
        }
        d.spilling = true;
        self.update_disk_metrics(&d.queue);
        drop(d);
        self.spilled.notify_one();
        true
    }

    /// Sends `req` within `budget`, splitting it on 413. Counts what the endpoint refused; returns
    /// the parts, in order, that were not sent (the first with why, the rest never tried, since
    /// trying them before the failed part would break per-series order).
    async fn send_or_split(&self, req: EncodedRequest, budget: RetryBudget) -> Vec<(EncodedRequest, Outcome)> {
        let mut todo = vec![req];
        while let Some(r) = todo.pop() {
            match self.sender.send(&r, budget, &self.stop).await {
                Outcome::Sent => {}
                Outcome::Rejected => self.metrics.add_dropped(DropReason::Rejected, u64::from(r.samples)),
                Outcome::TooLarge => match split_in_halves(&r) {
                    Ok(Some((first, second))) => {
                        tracing::debug!(
                            series = r.series,
                            "Endpoint answered 413; sending the request in halves."
                        );
                        todo.push(second);
                        todo.push(first);
                    }
                    Ok(None) => {
                        self.metrics.add_dropped(DropReason::TooLarge, u64::from(r.samples));
                        tracing::error!(
                            samples = r.samples,
                            bytes = r.body.len(),
                            "Endpoint answered 413 (too large) for a single series; dropped."
                        );
                    }
                    Err(error) => {
                        self.metrics.add_dropped(DropReason::Encode, u64::from(r.samples));
                        tracing::error!(%error, samples = r.samples, "Cannot split a request the endpoint found too large; dropped.");
                    }
                },
                failed @ (Outcome::GaveUp(_) | Outcome::Stopped) => {
                    let mut rest = vec![(r, failed.clone())];
                    rest.extend(todo.drain(..).rev().map(|t| (t, failed.clone())));
                    return rest;
                }
            }
        }
        Vec::new()
    }

    /// Sends a sealed request from memory, or persists it, and settles its samples.
    pub async fn deliver(&self, req: EncodedRequest) {
        let n = u64::from(req.samples);
        if let Some(disk) = &self.disk {
            let spilling = disk.lock().unwrap_or_else(|e| e.into_inner()).spilling;
            if spilling {
                // Keep FIFO order behind what is already on disk.
                self.spill(&req);
                self.metrics.settle(n);
                return;
            }
        }
        let budget = if self.disk.is_some() {
            RetryBudget::Once
        } else {
            RetryBudget::Configured
        };
        for (part, outcome) in self.send_or_split(req, budget).await {
            let k = u64::from(part.samples);
            match outcome {
                Outcome::GaveUp(reason) => {
                    if !self.spill(&part) {
                        self.metrics.add_dropped(DropReason::RetriesExhausted, k);
                        tracing::error!(error = %reason, samples = k, "Remote write retries exhausted; request dropped.");
                    }
                }
                _ => {
                    if !self.spill(&part) {
                        self.metrics.add_dropped(DropReason::Shutdown, k);
                    }
                }
            }
        }
        self.metrics.settle(n);
    }
}

/// Runs one shard until its channel closes, then flushes.
pub async fn run_shard(shared: Arc<Shared>, mut rx: mpsc::Receiver<ShardMsg>) {
    let s = &shared.settings;
    let mut enc = RequestEncoder::new();
    let mut comp = Compressor::new();
    let mut rewriter = (!s.rules.is_identity()).then(|| Rewriter::new(&s.rules));
    let mut meta_sent: HashMap<Box<str>, Instant> = HashMap::new();
    let mut deadline: Option<tokio::time::Instant> = None;
    loop {
        let msg = match deadline {
            Some(d) => tokio::select! {
                m = rx.recv() => m,
                _ = tokio::time::sleep_until(d) => {
                    flush(&shared, &mut enc, &mut comp).await;
                    deadline = None;
                    continue;
                }
            },
            None => rx.recv().await,
        };
        match msg {
            None => {
                flush(&shared, &mut enc, &mut comp).await;
                return;
            }
            Some(ShardMsg::Flush(ack)) => {
                flush(&shared, &mut enc, &mut comp).await;
                deadline = None;
                let _ = ack.send(());
            }
            Some(ShardMsg::Chunk {
                batch,
                indices,
                metadata,
            }) => {
                let kinds: Option<HashMap<&str, MetricType>> = (s.rules.add_metric_suffixes)
                    .then(|| batch.metadata.iter().map(|m| (&*m.family, m.kind)).collect());
                let kind = |name: &str| kinds.as_ref().and_then(|k| k.get(name).copied());
                let count = indices.as_ref().map_or(batch.series.len(), Vec::len);
                for k in 0..count {
                    let i = indices.as_ref().map_or(k, |v| v[k] as usize);
                    let Some(series) = batch.series.get(i) else { continue };
                    let (labels, labels_len) = match rewriter.as_mut() {
                        Some(r) => {
                            let (l, n) = r.map(&series.labels, kind);
                            (l, *n)
                        }
                        None => (&series.labels, series.labels.encoded_len()),
                    };
                    let body = labels_len + samples_len(&series.samples);
                    let full_samples = enc.samples() + series.samples.len() > s.max_samples;
                    let full_bytes = enc.len_bytes() + body + 6 > s.max_bytes;
                    if !enc.is_empty() && (full_samples || full_bytes) {
                        flush(&shared, &mut enc, &mut comp).await;
                        deadline = None;
                    }
                    enc.push_series_with_len(labels, labels_len, &series.samples);
                }
                if metadata && s.send_metadata {
                    let now = Instant::now();
                    for m in &batch.metadata {
                        let due = meta_sent
                            .get(&*m.family)
                            .is_none_or(|t| now.duration_since(*t) >= METADATA_INTERVAL);
                        if due {
                            enc.push_metadata(m);
                            meta_sent.insert(m.family.clone(), now);
                        }
                    }
                    meta_sent.retain(|_, t| now.duration_since(*t) < METADATA_INTERVAL * 10);
                }
                if enc.samples() >= s.max_samples {
                    flush(&shared, &mut enc, &mut comp).await;
                    deadline = None;
                } else if !enc.is_empty() && deadline.is_none() {
                    deadline = Some(tokio::time::Instant::now() + s.deadline);
                }
            }
        }
    }
}

async fn flush(shared: &Shared, enc: &mut RequestEncoder, comp: &mut Compressor) {
    if enc.is_empty() {
        return;
    }
    let n = enc.samples() as u64;
    match comp.seal(enc) {
        Ok(req) => shared.deliver(req).await,
        Err(error) => {
            enc.clear();
            shared.metrics.add_dropped(DropReason::Encode, n);
            shared.metrics.settle(n);
            tracing::error!(%error, samples = n, "Cannot encode a request; dropped.");
        }
    }
}

/// Sends the disk queue in order until `shared.stop` fires.
pub async fn run_replayer(shared: Arc<Shared>) {
    let Some(disk) = &shared.disk else { return };
    loop {
        let next = {
            let mut d = disk.lock().unwrap_or_else(|e| e.into_inner());
            let r = match d.queue.peek() {
                Ok(r) => r,
                Err(error) => {
                    tracing::error!(%error, "Cannot read the disk queue; retrying later.");
                    None
                }
            };
            if r.is_none() && d.queue.is_empty() && d.spilling {
                d.spilling = false;
                tracing::info!("Disk queue drained; sending directly again.");
            }
            shared.update_disk_metrics(&d.queue);
            r
        };
        let Some(req) = next else {
            tokio::select! {
                _ = shared.stop.cancelled() => return,
                _ = shared.spilled.notified() => continue,
                // Also poll now and then, in case a read error cleared on its own.
                _ = tokio::time::sleep(Duration::from_secs(5)) => continue,
            }
        };
        // Only `stop` ends unbounded retries; the record stays on disk for the next run (halves
        // already sent are sent again then: at least once).
        if !shared.send_or_split(req, RetryBudget::Forever).await.is_empty() {
            return;
        }
        let mut d = disk.lock().unwrap_or_else(|e| e.into_inner());
        if let Err(error) = d.queue.ack() {
            tracing::error!(%error, "Cannot record progress of the disk queue.");
        }
        shared.update_disk_metrics(&d.queue);
    }
}

/// The shard count that keeps up with the input, Prometheus-style: time per sample (from send
/// latency over one shard) times the input rate plus a share of the backlog, kept within
/// `[min, max]` and changed only outside a ±30 % band around `current`.
pub fn desired_shards(
    current: usize,
    min: usize,
    max: usize,
    in_rate: f64,
    secs_per_sample: f64,
    pending: f64,
) -> usize {
    let want = (secs_per_sample * (in_rate + 0.05 * pending)).ceil().max(1.0);
    let cur = current as f64;
    let target = if want > cur * 1.3 || want < cur * 0.7 {
        want as usize
    } else {
        current
    };
    target.clamp(min, max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_count_follows_load_within_bounds_and_band() {
        // 100k samples/s at 50 µs per sample on one shard needs 5 shards.
        assert_eq!(desired_shards(1, 1, 10, 100_000.0, 50e-6, 0.0), 5);
        // Within 30 % of the current count: no change.
        assert_eq!(desired_shards(5, 1, 10, 110_000.0, 50e-6, 0.0), 5);
        // Capped by max, floored by min.
        assert_eq!(desired_shards(5, 1, 8, 1e6, 50e-6, 0.0), 8);
        assert_eq!(desired_shards(5, 2, 8, 10.0, 50e-6, 0.0), 2);
        // A backlog pushes the count up.
        assert!(desired_shards(1, 1, 10, 1000.0, 1e-3, 100_000.0) > 1);
    }
}
