//! Fault injection on the remote write path, with exact accounting: every sample the source
//! produces is known, and each test ends by proving what the sink stored — nothing lost,
//! duplicates only where at-least-once delivery allows them (and then exactly as many as the
//! faults explain), and every allowed loss equal to what `dropped_samples_total{reason}` says.
//!
//! Time is compressed: one scrape of the source stands for one second of a real node.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod faults_support;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

use aws_credential_types::Credentials;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider, future};
use faults_support::sigv4::StrictAuth;
use faults_support::*;
use nodetel_core::component::Exporter;
use nodetel_exporters::remote_write::{DropReason, RemoteWriteConfig, RemoteWriteExporter, Signer};

const NAME: &str = "fault_counter";
const ACCESS: &str = "AKIDFAULTS";
const SECRET: &str = "faults/secret+key/not-real";
const REGION: &str = "us-west-2";

fn signer() -> Arc<Signer> {
    Arc::new(Signer::with_credentials(
        REGION,
        "aps",
        Credentials::new(ACCESS, SECRET, None, None, "test"),
    ))
}

async fn push(exp: &mut RemoteWriteExporter, src: &mut Source, scrapes: usize) {
    for _ in 0..scrapes {
        exp.export(Arc::new(src.next_batch())).await.unwrap();
    }
}

/// One scrape every 100 ms, `scrapes` times: a run that spans credential lifetimes.
async fn push_paced(exp: &mut RemoteWriteExporter, src: &mut Source, scrapes: usize) {
    for _ in 0..scrapes {
        push(exp, src, 1).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One shard, so requests reach the sink in the order they were made.
fn one_shard(cfg: &mut RemoteWriteConfig) {
    cfg.shards.min = Some(1);
    cfg.shards.max = Some(1);
}

fn tally(sink: &Sink) -> Tally {
    Tally::of(NAME, &sink.committed())
}

/// Samples in requests the sink answered with `status`.
fn answered(sink: &Sink, status: u16) -> u64 {
    sink.seen()
        .iter()
        .filter(|s| s.status == status)
        .map(|s| samples(&s.request) as u64)
        .sum()
}

fn dir_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(Result::ok)
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_minutes_down_then_back_delivers_everything_faster_than_real_time_in_bounded_memory() {
    let sink = Sink::start().await;
    sink.go_down().await;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(&sink.url());
    cfg.queue.directory = Some(dir.path().to_path_buf());
    cfg.queue.max_size_bytes = 4 << 20;
    cfg.shards.min = Some(2);
    cfg.shards.max = Some(2);
    cfg.remote_write_queue.queue_size = 20;
    let mut exp = exporter(&cfg, "outage", None);
    let m = exp.metrics().clone();
    let watch = Watch::start(m.clone());

    // 600 scrapes of 50 series: ten minutes of a node scraped every second.
    let mut src = Source::new(50);
    let started = Instant::now();
    push(&mut exp, &mut src, 600).await;
    assert!(
        wait_for(Duration::from_secs(20), || m.pending() == 0).await,
        "everything reached the disk queue"
    );
    let outage = started.elapsed();
    assert_eq!(sink.committed_samples(), 0, "the endpoint was down");
    assert_eq!(m.samples_spilled.load(Ordering::Relaxed), src.produced());

    sink.come_back().await;
    let back = Instant::now();
    assert!(
        wait_for(Duration::from_secs(60), || sink.committed_samples() as u64
            >= src.produced())
        .await,
        "delivered {} of {}",
        sink.committed_samples(),
        src.produced()
    );
    let drain = back.elapsed();
    let peaks = watch.finish().await;
    exp.shutdown().await.unwrap();

    tally(&sink).assert_exact(&src);
    assert_eq!(dropped_total(&m), 0, "{}", drops(&m));
    assert_eq!(m.samples_sent.load(Ordering::Relaxed), src.produced());
    // Memory: what `export` may hold is the shard buffers (queue_size chunks of one scrape),
    // one chunk being encoded and one sealed request per shard — independent of the outage.
    let shards = 2;
    let bound = (cfg.remote_write_queue.queue_size as u64 + 2 * shards) * src.series() as u64
        + shards * cfg.max_samples_per_send as u64;
    assert!(peaks.samples > 50, "the watch sampled during the run");
    assert!(
        peaks.pending <= bound,
        "pending peaked at {} > bound {bound}",
        peaks.pending
    );
    assert!(
        peaks.pending < src.produced() / 10,
        "memory did not grow with the backlog"
    );
    assert!(
        peaks.disk_bytes <= cfg.queue.max_size_bytes,
        "disk queue within its budget"
    );
    assert!(dir_bytes(dir.path()) < 64, "a drained queue leaves at most the cursor");
    let simulated = Duration::from_secs(600);
    assert!(
        drain < simulated / 20,
        "the 600 s backlog drained in {drain:?}, not faster than real time by 20x"
    );
    eprintln!(
        "outage: {} samples buffered in {outage:?}, drained in {drain:?} ({:.0} samples/s); peaks: pending {} (bound {bound}), disk {} B",
        src.produced(),
        src.produced() as f64 / drain.as_secs_f64(),
        peaks.pending,
        peaks.disk_bytes
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_disk_queue_an_outage_past_max_elapsed_time_drops_and_counts_exactly() {
    let sink = Sink::start().await;
    sink.go_down().await;
    let mut cfg = config(&sink.url());
    cfg.retry_on_failure.max_elapsed_time = Duration::from_millis(400);
    cfg.shards.min = Some(2);
    cfg.shards.max = Some(2);
    let mut exp = exporter(&cfg, "no-disk", None);
    let m = exp.metrics().clone();
    let mut src = Source::new(20);
    push(&mut exp, &mut src, 10).await;
    assert!(wait_for(Duration::from_secs(10), || m.pending() == 0).await);
    let lost = m.dropped(DropReason::RetriesExhausted);
    assert_eq!(
        lost,
        src.produced(),
        "all of it was retried for 400 ms, then counted ({})",
        drops(&m)
    );
    // Back: what comes next is delivered, and only the counted samples are missing.
    sink.come_back().await;
    push(&mut exp, &mut src, 10).await;
    exp.shutdown().await.unwrap();
    let t = tally(&sink);
    assert_eq!(t.duplicates(), 0);
    assert!(t.corrupt.is_empty() && t.out_of_order.is_empty());
    assert_eq!(t.missing(&src).len() as u64, lost);
    assert!(t.missing(&src).iter().all(|(_, k)| *k < 10));
    assert_eq!(dropped_total(&m), lost, "{}", drops(&m));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_storm_with_retry_after_waits_as_long_as_told() {
    let sink = Sink::start().await;
    sink.set_policy(|c| {
        if c.n < 3 {
            Action::Refuse(429, Some("1".into()), "slow down".into())
        } else {
            Action::Accept
        }
    });
    let mut cfg = config(&sink.url());
    one_shard(&mut cfg);
    let mut exp = exporter(&cfg, "429-ra", None);
    let mut src = Source::new(10);
    push(&mut exp, &mut src, 3).await;
    exp.shutdown().await.unwrap();

    let seen = sink.seen();
    let gaps: Vec<Duration> = seen
        .windows(2)
        .take(3)
        .map(|w| w[1].at.duration_since(w[0].at))
        .collect();
    for g in &gaps {
        assert!(
            *g >= Duration::from_millis(950),
            "retried after {g:?} despite Retry-After: 1 (gaps {gaps:?})"
        );
    }
    tally(&sink).assert_exact(&src);
    let m = exp.metrics();
    assert_eq!(m.failed_requests.load(Ordering::Relaxed), 3);
    assert_eq!(m.retried_requests.load(Ordering::Relaxed), 3);
    assert_eq!(dropped_total(m), 0, "{}", drops(m));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_storm_without_retry_after_backs_off_exponentially() {
    let sink = Sink::start().await;
    sink.set_policy(|c| {
        if c.n < 6 {
            Action::Refuse(429, None, "slow down".into())
        } else {
            Action::Accept
        }
    });
    let mut cfg = config(&sink.url());
    one_shard(&mut cfg);
    cfg.retry_on_failure.initial_interval = Duration::from_millis(20);
    cfg.retry_on_failure.multiplier = 2.0;
    cfg.retry_on_failure.max_interval = Duration::from_secs(1);
    cfg.retry_on_failure.randomization_factor = 0.0;
    let mut exp = exporter(&cfg, "429", None);
    let mut src = Source::new(10);
    push(&mut exp, &mut src, 2).await;
    exp.shutdown().await.unwrap();

    let seen = sink.seen();
    let gaps: Vec<u128> = seen
        .windows(2)
        .take(6)
        .map(|w| w[1].at.duration_since(w[0].at).as_millis())
        .collect();
    for (i, g) in gaps.iter().enumerate() {
        let want = 20u128 << i;
        assert!(
            *g >= want * 9 / 10 && *g < want * 2 + 300,
            "retry {i} after {g} ms, backoff says {want} ms (gaps {gaps:?})"
        );
    }
    tally(&sink).assert_exact(&src);
    assert_eq!(exp.metrics().retried_requests.load(Ordering::Relaxed), 6);
    assert_eq!(dropped_total(exp.metrics()), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_400_drops_only_its_request_and_counts_it() {
    let sink = Sink::start().await;
    sink.set_policy(|c| {
        if c.n % 3 == 1 {
            Action::Refuse(400, None, "out of order sample".into())
        } else {
            Action::Accept
        }
    });
    let mut cfg = config(&sink.url());
    cfg.shards.min = Some(2);
    cfg.shards.max = Some(2);
    let mut exp = exporter(&cfg, "400", None);
    let mut src = Source::new(20);
    push(&mut exp, &mut src, 30).await;
    exp.shutdown().await.unwrap();

    let m = exp.metrics();
    let rejected = answered(&sink, 400);
    assert!(rejected > 0);
    assert_eq!(
        m.dropped(DropReason::Rejected),
        rejected,
        "each rejected sample is counted"
    );
    assert_eq!(m.retried_requests.load(Ordering::Relaxed), 0, "a 400 is never retried");
    let delivered = tally(&sink);
    let refused: Vec<_> = sink
        .seen()
        .into_iter()
        .filter(|s| s.status == 400)
        .map(|s| s.request)
        .collect();
    let refused = Tally::of(NAME, &refused);
    assert_eq!(delivered.duplicates() + refused.duplicates(), 0);
    for k in 0..src.scrapes {
        for i in 0..src.series() as u32 {
            let (d, r) = (
                delivered.copies.contains_key(&(i, k)),
                refused.copies.contains_key(&(i, k)),
            );
            assert!(d ^ r, "idx {i} scrape {k}: delivered {d}, refused {r}");
        }
    }
    assert_eq!(delivered.unique() + m.dropped(DropReason::Rejected), src.produced());
}

/// 413 for requests of more than six series, and for any request with a `huge` series.
fn picky(c: &Call<'_>) -> Action {
    let huge = c
        .request
        .timeseries
        .iter()
        .any(|t| t.labels.iter().any(|l| l.value == "fault_huge"));
    if c.request.timeseries.len() > 6 || huge {
        Action::Refuse(413, None, "request entity too large".into())
    } else {
        Action::Accept
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_413_splits_the_request_in_halves_down_to_one_series() {
    let sink = Sink::start().await;
    sink.set_policy(picky);
    let mut cfg = config(&sink.url());
    one_shard(&mut cfg);
    let mut exp = exporter(&cfg, "413", None);
    let mut src = Source::new(25);
    let mut huge = Source::with_name(1, "fault_huge", &"x".repeat(4000));
    for _ in 0..8 {
        let mut b = src.next_batch();
        b.series.extend(huge.next_batch().series);
        exp.export(Arc::new(b)).await.unwrap();
    }
    exp.shutdown().await.unwrap();

    tally(&sink).assert_exact(&src);
    let m = exp.metrics();
    assert_eq!(
        m.dropped(DropReason::TooLarge),
        huge.produced(),
        "the single series that is still too large is dropped and counted ({})",
        drops(m)
    );
    assert_eq!(dropped_total(m), huge.produced(), "{}", drops(m));
    let alone: Vec<usize> = sink
        .seen()
        .iter()
        .filter(|s| s.status == 413 && s.request.timeseries.len() == 1)
        .map(|s| samples(&s.request))
        .collect();
    assert_eq!(
        alone,
        vec![1; 8],
        "each scrape's huge series was split off and refused alone, once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_413_while_replaying_the_disk_queue_splits_too() {
    let sink = Sink::start().await;
    sink.go_down().await;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(&sink.url());
    cfg.queue.directory = Some(dir.path().to_path_buf());
    one_shard(&mut cfg);
    let mut exp = exporter(&cfg, "413-disk", None);
    let mut src = Source::new(25);
    push(&mut exp, &mut src, 10).await;
    let m = exp.metrics().clone();
    assert!(wait_for(Duration::from_secs(10), || m.pending() == 0).await);
    sink.set_policy(picky);
    sink.come_back().await;
    assert!(
        wait_for(Duration::from_secs(20), || m.disk_records.load(Ordering::Relaxed) == 0
            && sink.committed_samples() as u64 >= src.produced())
        .await
    );
    exp.shutdown().await.unwrap();
    tally(&sink).assert_exact(&src);
    assert_eq!(dropped_total(&m), 0, "{}", drops(&m));
    assert!(answered(&sink, 413) > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_endpoint_times_out_and_every_duplicate_is_explained() {
    let sink = Sink::start().await;
    // These requests are stored, but answered after the client's timeout.
    sink.set_policy(|c| {
        if [1, 4, 5].contains(&c.n) {
            Action::CommitThenDelay(Duration::from_millis(1600))
        } else {
            Action::Accept
        }
    });
    let mut cfg = config(&sink.url());
    cfg.timeout = Duration::from_millis(800);
    one_shard(&mut cfg);
    let mut exp = exporter(&cfg, "slow", None);
    let mut src = Source::new(10);
    push(&mut exp, &mut src, 20).await;
    exp.shutdown().await.unwrap();

    let t = tally(&sink);
    t.assert_complete(&src);
    let m = exp.metrics();
    assert_eq!(m.failed_requests.load(Ordering::Relaxed), 3, "three timeouts");
    let slow: u64 = sink.seen()[..]
        .iter()
        .enumerate()
        .filter(|(i, _)| [1, 4, 5].contains(i))
        .map(|(_, s)| samples(&s.request) as u64)
        .sum();
    assert_eq!(
        t.duplicates(),
        slow,
        "duplicates are exactly the stored copies whose answer came too late"
    );
    assert_eq!(dropped_total(m), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_resets_are_retried_and_nothing_is_lost() {
    let sink = Sink::start().await;
    // Resets on fresh connections and in the middle of a pooled one.
    sink.reset_next_connections(3);
    sink.set_policy(|c| if c.n % 4 == 2 { Action::Reset } else { Action::Accept });
    let mut cfg = config(&sink.url());
    cfg.shards.min = Some(2);
    cfg.shards.max = Some(2);
    let mut exp = exporter(&cfg, "reset", None);
    let mut src = Source::new(20);
    push(&mut exp, &mut src, 20).await;
    exp.shutdown().await.unwrap();

    tally(&sink).assert_exact(&src);
    let m = exp.metrics();
    let resets = sink.seen().iter().filter(|s| s.status == 0).count() as u64;
    assert!(resets > 0);
    assert!(
        m.failed_requests.load(Ordering::Relaxed) >= resets + 3,
        "{} failures for {resets} resets + 3 closed connections",
        m.failed_requests.load(Ordering::Relaxed)
    );
    assert_eq!(dropped_total(m), 0, "{}", drops(m));
}

#[tokio::test(flavor = "current_thread")]
async fn an_untrusted_certificate_is_a_clear_counted_error_and_nothing_is_lost_silently() {
    let (logs, _guard) = Logs::capture();
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = faults_support::tls::self_signed(dir.path());
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let _server = faults_support::tls::TlsServer::start(port, &cert, &key);
    let url = format!("https://127.0.0.1:{port}/api/v1/write");

    // Without a disk queue: retried until max_elapsed_time, then dropped and counted.
    let mut cfg = config(&url);
    cfg.retry_on_failure.max_elapsed_time = Duration::from_millis(600);
    let mut exp = exporter(&cfg, "tls", None);
    let mut src = Source::new(10);
    push(&mut exp, &mut src, 3).await;
    exp.shutdown().await.unwrap();
    let m = exp.metrics();
    assert_eq!(m.samples_sent.load(Ordering::Relaxed), 0);
    assert!(
        m.retried_requests.load(Ordering::Relaxed) > 0,
        "certificate errors are retried"
    );
    assert_eq!(
        m.dropped(DropReason::RetriesExhausted),
        src.produced(),
        "every sample is accounted for ({})",
        drops(m)
    );
    let lines = logs.lines_with("certificate");
    assert!(
        lines.iter().any(|l| l.contains("UnknownIssuer") && l.contains(&url)),
        "a clear error names the certificate problem and the endpoint:\n{}",
        logs.text()
    );

    // With a disk queue: persisted, not lost.
    let qdir = tempfile::tempdir().unwrap();
    cfg.queue.directory = Some(qdir.path().to_path_buf());
    let mut exp = exporter(&cfg, "tls-disk", None);
    let mut src = Source::new(10);
    push(&mut exp, &mut src, 3).await;
    exp.shutdown().await.unwrap();
    let m = exp.metrics();
    assert_eq!(m.samples_spilled.load(Ordering::Relaxed), src.produced());
    assert_eq!(dropped_total(m), 0, "{}", drops(m));
    assert!(m.disk_records.load(Ordering::Relaxed) > 0, "kept for the next run");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exhausted_disk_queue_budget_drops_the_oldest_and_counts_them_exactly() {
    let sink = Sink::start().await;
    sink.go_down().await;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(&sink.url());
    cfg.queue.directory = Some(dir.path().to_path_buf());
    cfg.queue.max_size_bytes = 3 << 20;
    one_shard(&mut cfg);
    let mut exp = exporter(&cfg, "budget", None);
    let m = exp.metrics().clone();
    let watch = Watch::start(m.clone());
    let mut src = Source::with_random_pad(200, NAME, 200);
    push(&mut exp, &mut src, 120).await;
    assert!(wait_for(Duration::from_secs(20), || m.pending() == 0).await);
    let dropped = m.dropped(DropReason::QueueFull);
    assert!(
        dropped > 0,
        "the budget was exceeded ({} B on disk)",
        m.disk_bytes.load(Ordering::Relaxed)
    );
    sink.come_back().await;
    assert!(
        wait_for(Duration::from_secs(30), || m.disk_records.load(Ordering::Relaxed) == 0
            && sink.committed_samples() as u64 + dropped >= src.produced())
        .await,
        "delivered {} + dropped {dropped} of {}",
        sink.committed_samples(),
        src.produced()
    );
    let peaks = watch.finish().await;
    exp.shutdown().await.unwrap();

    let t = tally(&sink);
    assert!(t.corrupt.is_empty() && t.out_of_order.is_empty());
    assert_eq!(t.duplicates(), 0);
    let missing = t.missing(&src);
    assert_eq!(
        missing.len() as u64,
        dropped,
        "every lost sample is counted as queue_full, no more"
    );
    assert_eq!(m.dropped(DropReason::QueueFull), dropped, "{}", drops(&m));
    assert_eq!(dropped_total(&m), dropped, "{}", drops(&m));
    let newest_lost = missing.iter().map(|(_, k)| *k).max().unwrap();
    let oldest_kept = t.copies.keys().map(|(_, k)| *k).min().unwrap();
    assert!(
        newest_lost <= oldest_kept,
        "the oldest were dropped: lost up to scrape {newest_lost}, kept from {oldest_kept}"
    );
    assert!(peaks.disk_bytes <= cfg.queue.max_size_bytes, "{} B", peaks.disk_bytes);
    eprintln!(
        "budget: {} produced, {dropped} dropped as queue_full, {} delivered; disk peak {} B of {}",
        src.produced(),
        t.unique(),
        peaks.disk_bytes,
        cfg.queue.max_size_bytes
    );
}

/// A 2 MiB tmpfs, unmounted on drop.
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(dir: &std::path::Path) -> Option<Tmpfs> {
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=2m", "tmpfs"])
            .arg(dir)
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Tmpfs(dir.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_filesystem_loses_only_what_it_counts_and_recovers_when_space_returns() {
    let root = tempfile::tempdir().unwrap();
    let Some(fs) = Tmpfs::mount(root.path()) else {
        eprintln!(
            "\n!!! SKIPPED a_full_filesystem_loses_only_what_it_counts_and_recovers_when_space_returns: \
             mounting a tmpfs needs root !!!\n"
        );
        return;
    };
    let filler = fs.0.join("filler");
    std::fs::write(&filler, vec![0u8; 1536 << 10]).unwrap();
    let sink = Sink::start().await;
    sink.go_down().await;
    let mut cfg = config(&sink.url());
    cfg.queue.directory = Some(fs.0.join("queue"));
    one_shard(&mut cfg);
    let mut exp = exporter(&cfg, "enospc", None);
    let m = exp.metrics().clone();
    let mut src = Source::with_random_pad(200, NAME, 200);
    // About 1 MiB of requests into the 0.5 MiB left.
    push(&mut exp, &mut src, 25).await;
    assert!(wait_for(Duration::from_secs(10), || m.pending() == 0).await);
    let lost = m.dropped(DropReason::DiskError);
    assert!(lost > 0, "the filesystem filled up ({})", drops(&m));
    // Space returns: later data persists again.
    std::fs::remove_file(&filler).unwrap();
    let before = src.scrapes;
    push(&mut exp, &mut src, 10).await;
    assert!(wait_for(Duration::from_secs(10), || m.pending() == 0).await);
    assert_eq!(
        m.dropped(DropReason::DiskError),
        lost,
        "nothing more lost once space returned"
    );
    sink.come_back().await;
    assert!(
        wait_for(Duration::from_secs(30), || m.disk_records.load(Ordering::Relaxed) == 0
            && sink.committed_samples() as u64 + lost >= src.produced())
        .await,
        "delivered {} + lost {lost} of {}",
        sink.committed_samples(),
        src.produced()
    );
    exp.shutdown().await.unwrap();

    let t = tally(&sink);
    assert!(t.corrupt.is_empty() && t.out_of_order.is_empty());
    assert_eq!(t.duplicates(), 0);
    let missing = t.missing(&src);
    assert_eq!(
        missing.len() as u64,
        lost,
        "every lost sample is counted as disk_error, no more"
    );
    assert_eq!(
        t.unique(),
        m.samples_spilled.load(Ordering::Relaxed),
        "everything written to the queue came back"
    );
    assert!(
        missing.iter().all(|(_, k)| *k < before),
        "nothing lost after space returned"
    );
    assert_eq!(dropped_total(&m), lost, "{}", drops(&m));
    eprintln!(
        "disk full: {} produced, {lost} lost as disk_error, {} delivered",
        src.produced(),
        t.unique()
    );
}

#[tokio::test(flavor = "current_thread")]
async fn sigv4_clock_skew_is_named_in_the_log_counted_and_recovers_with_the_clock() {
    let (logs, _guard) = Logs::capture();
    let sink = Sink::start().await;
    let mut auth = StrictAuth::new(REGION, ACCESS, SECRET);
    // The server is ten minutes ahead: this host's clock is ten minutes behind.
    auth.clock_offset_secs = 600;
    sink.set_auth(Some(auth));
    let mut cfg = config(&sink.url());
    one_shard(&mut cfg);
    let mut exp = exporter(&cfg, "skew", Some(signer()));
    let mut src = Source::new(10);
    push(&mut exp, &mut src, 3).await;
    exp.flush().await;
    let m = exp.metrics().clone();
    assert_eq!(sink.committed_samples(), 0);
    assert_eq!(m.dropped(DropReason::Rejected), src.produced(), "{}", drops(&m));
    assert_eq!(
        m.retried_requests.load(Ordering::Relaxed),
        0,
        "a stale signature is not retried"
    );
    let measured = logs.lines_with("clock skew").iter().find_map(|l| {
        let (before, _) = l.split_once(" s off the server's Date header")?;
        l.contains("Signature expired").then_some(())?;
        before.rsplit(' ').next()?.parse::<i64>().ok()
    });
    assert!(
        measured.is_some_and(|s| (-602..=-598).contains(&s)),
        "a log line names clock skew and measures it (got {measured:?}):\n{}",
        logs.text()
    );

    // The clock is fixed: new data goes through.
    sink.update_auth(|a| a.clock_offset_secs = 0);
    let rejected = src.produced();
    push(&mut exp, &mut src, 3).await;
    exp.shutdown().await.unwrap();
    assert_eq!(sink.committed_samples() as u64, src.produced() - rejected);
    assert_eq!(dropped_total(&m), rejected);
}

/// Credentials from a list, one per call; records how often it was asked.
#[derive(Debug)]
struct Rotating {
    creds: Vec<Credentials>,
    calls: Arc<std::sync::atomic::AtomicUsize>,
}

impl ProvideCredentials for Rotating {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        let i = self.calls.fetch_add(1, Ordering::SeqCst);
        future::ProvideCredentials::ready(Ok(self.creds[i.min(self.creds.len() - 1)].clone()))
    }
}

fn rotating(first_expiry: SystemTime) -> (Arc<Signer>, Arc<std::sync::atomic::AtomicUsize>) {
    let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let p = Rotating {
        creds: vec![
            Credentials::new(
                "AKIDFIRST",
                "first-secret",
                Some("token-1".into()),
                Some(first_expiry),
                "test",
            ),
            Credentials::new(
                "AKIDSECOND",
                "second-secret",
                Some("token-2".into()),
                Some(SystemTime::now() + Duration::from_secs(3600)),
                "test",
            ),
        ],
        calls: calls.clone(),
    };
    let signer = Signer::with_provider(REGION, "aps", SharedCredentialsProvider::new(p));
    (Arc::new(signer), calls)
}

fn two_keys(first_valid_for: Duration) -> StrictAuth {
    let mut auth = StrictAuth::new(REGION, "AKIDFIRST", "first-secret");
    auth.keys[0].2 = Some(SystemTime::now() + first_valid_for);
    auth.keys.push(("AKIDSECOND".into(), "second-secret".into(), None));
    auth
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigv4_credentials_are_refreshed_before_they_expire_mid_run() {
    let sink = Sink::start().await;
    // The first credentials come within five minutes of their expiry 1.5 s from now; the server
    // refuses them from 1.8 s on (its clock is the real one, the 0.3 s is for requests in flight).
    sink.set_auth(Some(two_keys(Duration::from_millis(1800))));
    let (signer, calls) = rotating(SystemTime::now() + Duration::from_millis(301_500));
    let mut cfg = config(&sink.url());
    one_shard(&mut cfg);
    let mut exp = exporter(&cfg, "refresh", Some(signer));
    let mut src = Source::new(10);
    push_paced(&mut exp, &mut src, 30).await;
    exp.shutdown().await.unwrap();

    let seen = sink.seen();
    assert!(seen.iter().all(|s| s.status == 204), "no request was refused");
    tally(&sink).assert_exact(&src);
    let keys: Vec<&str> = seen.iter().filter_map(|s| s.key.as_deref()).collect();
    let switch = keys
        .iter()
        .position(|k| *k == "AKIDSECOND")
        .expect("the new credentials were used");
    assert!(switch > 0 && keys[..switch].iter().all(|k| *k == "AKIDFIRST"));
    assert!(keys[switch..].iter().all(|k| *k == "AKIDSECOND"), "{keys:?}");
    assert_eq!(calls.load(Ordering::SeqCst), 2, "loaded once, refreshed once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigv4_an_expired_token_answer_loads_fresh_credentials_and_retries() {
    let sink = Sink::start().await;
    // The server expires the first credentials long before they say they expire.
    sink.set_auth(Some(two_keys(Duration::from_millis(800))));
    let (signer, calls) = rotating(SystemTime::now() + Duration::from_secs(3600));
    let mut cfg = config(&sink.url());
    one_shard(&mut cfg);
    let mut exp = exporter(&cfg, "expired", Some(signer));
    let mut src = Source::new(10);
    push_paced(&mut exp, &mut src, 15).await;
    exp.shutdown().await.unwrap();

    tally(&sink).assert_exact(&src);
    let m = exp.metrics();
    assert_eq!(dropped_total(m), 0, "{}", drops(m));
    assert!(answered(&sink, 403) > 0, "the server did refuse the expired token");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test(flavor = "current_thread")]
async fn sigv4_wrong_region_is_named_counted_and_not_retried() {
    let (logs, _guard) = Logs::capture();
    let sink = Sink::start().await;
    sink.set_auth(Some(StrictAuth::new(REGION, ACCESS, SECRET)));
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(&sink.url());
    cfg.queue.directory = Some(dir.path().to_path_buf());
    let signer = Arc::new(Signer::with_credentials(
        "eu-west-1",
        "aps",
        Credentials::new(ACCESS, SECRET, None, None, "test"),
    ));
    let mut exp = exporter(&cfg, "region", Some(signer));
    let mut src = Source::new(10);
    push(&mut exp, &mut src, 5).await;
    exp.shutdown().await.unwrap();
    let m = exp.metrics();
    assert_eq!(m.dropped(DropReason::Rejected), src.produced(), "{}", drops(m));
    assert_eq!(m.retried_requests.load(Ordering::Relaxed), 0, "not retried");
    assert_eq!(
        m.samples_spilled.load(Ordering::Relaxed),
        0,
        "not kept on disk to retry forever"
    );
    assert_eq!(sink.seen().len() as u64, m.failed_requests.load(Ordering::Relaxed));
    assert!(
        logs.lines_with("wrong SigV4 region")
            .iter()
            .any(|l| l.contains("eu-west-1") && l.contains("valid region")),
        "{}",
        logs.text()
    );
}
