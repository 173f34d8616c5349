//! The remote write exporter's disk queue end to end: an outage fills it, a kill loses nothing
//! that reached it, a rebuilt exporter replays it in order before new data, and a healthy
//! endpoint never touches the disk.

// Test helpers outside #[test] functions: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod remote_write_support;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use nodetel_core::component::Exporter;
use remote_write_support::*;

fn segment_files(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().ends_with(".seg"))
                .count()
        })
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_goes_to_disk_survives_a_kill_and_replays_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start().await;
    server.set_default(Some(503));
    let mut cfg = config(&server.url());
    cfg.queue.directory = Some(dir.path().to_path_buf());
    cfg.shards.min = Some(2);
    cfg.shards.max = Some(2);

    let mut exp = exporter(&cfg, "disk");
    let (batches, series) = (20, 15);
    for b in 0..batches {
        exp.export(Arc::new(batch(series, 10_000 + b))).await.unwrap();
    }
    let total = (batches as usize * series) as u64;
    let m = exp.metrics().clone();
    assert!(
        wait_for(Duration::from_secs(10), || m.samples_spilled.load(Ordering::Relaxed)
            == total)
        .await,
        "spilled {} of {total}",
        m.samples_spilled.load(Ordering::Relaxed)
    );
    assert_eq!(m.pending(), 0);
    assert!(segment_files(dir.path()) > 0);
    // A kill: no shutdown, tasks aborted, nothing flushed.
    drop(exp);
    assert_eq!(server.accepted_samples(), 0);

    server.set_default(None);
    let mut exp = exporter(&cfg, "disk");
    // New data exported while the old is replaying must arrive after it.
    for b in batches..batches + 5 {
        exp.export(Arc::new(batch(series, 10_000 + b))).await.unwrap();
    }
    let want = (batches as usize + 5) * series;
    assert!(
        wait_for(Duration::from_secs(15), || server.accepted_samples() >= want).await,
        "accepted {} of {want}",
        server.accepted_samples()
    );
    exp.shutdown().await.unwrap();
    let accepted = server.accepted();
    assert_in_order(&accepted);
    for i in 0..series {
        let key = format!("__name__=test_metric,idx={i},job=t");
        let ts: Vec<i64> = accepted[&key].iter().map(|s| s.0).collect();
        let expect: Vec<i64> = (10_000..10_000 + batches + 5).collect();
        assert_eq!(ts, expect, "{key}: every sample once, in order");
    }
    assert_eq!(segment_files(dir.path()), 0, "a drained queue leaves no segments");
    assert_eq!(server.violations(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healthy_endpoint_never_touches_the_disk() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start().await;
    let mut cfg = config(&server.url());
    cfg.queue.directory = Some(dir.path().to_path_buf());
    let mut exp = exporter(&cfg, "healthy");
    for b in 0..10 {
        exp.export(Arc::new(batch(20, b + 1))).await.unwrap();
    }
    exp.shutdown().await.unwrap();
    assert_eq!(server.accepted_samples(), 200);
    assert_eq!(segment_files(dir.path()), 0);
    assert_eq!(exp.metrics().samples_spilled.load(Ordering::Relaxed), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_during_an_outage_persists_what_is_left() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start().await;
    server.set_default(Some(500));
    let mut cfg = config(&server.url());
    cfg.queue.directory = Some(dir.path().to_path_buf());
    cfg.batch_send_deadline = Duration::from_secs(60);
    cfg.shutdown_flush_timeout = Duration::from_millis(300);
    let mut exp = exporter(&cfg, "shutdown");
    exp.export(Arc::new(batch(12, 77))).await.unwrap();
    // The partial request is still buffered (long deadline); shutdown must flush it to disk.
    exp.shutdown().await.unwrap();
    let m = exp.metrics();
    assert_eq!(m.samples_spilled.load(Ordering::Relaxed), 12);
    drop(exp);
    server.set_default(None);
    let mut exp = exporter(&cfg, "shutdown");
    assert!(wait_for(Duration::from_secs(5), || server.accepted_samples() == 12).await);
    exp.shutdown().await.unwrap();
}
