//! The remote write exporter against a strict local receiver: headers, SigV4, encoding,
//! ordering, and how 5xx, 429 with Retry-After, 400, slow answers and outages are handled.

// Test helpers outside #[test] functions: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod remote_write_support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use nodetel_core::component::Exporter;
use nodetel_exporters::remote_write::DropReason;
use remote_write_support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_sample_arrives_in_order_through_faults_except_rejected_ones() {
    let server = TestServer::start().await;
    server.script([
        Reply::Status(500, None),
        Reply::Status(429, None),
        Reply::Ok,
        Reply::Status(400, None),
        Reply::Slow(Duration::from_millis(1500)),
        Reply::Status(503, None),
        Reply::Ok,
        Reply::Status(400, None),
    ]);
    let mut cfg = config(&server.url());
    cfg.shards.min = Some(3);
    cfg.shards.max = Some(3);
    let mut exp = exporter(&cfg, "faults");
    let (batches, series) = (30, 25);
    for b in 0..batches {
        exp.export(Arc::new(batch(series, 1_000 + b as i64))).await.unwrap();
    }
    exp.shutdown().await.unwrap();

    assert_eq!(server.violations(), Vec::<String>::new());
    let accepted = server.accepted();
    let rejected = server.answered(400);
    assert_in_order(&accepted);
    let rejected_samples: usize = rejected.values().map(Vec::len).sum();
    assert!(rejected_samples > 0, "the script's 400s hit some requests");
    assert_eq!(
        exp.metrics().dropped(DropReason::Rejected),
        rejected_samples as u64,
        "each rejected sample is counted"
    );
    for i in 0..series {
        let key = format!("__name__=test_metric,idx={i},job=t");
        for b in 0..batches {
            let ts = 1_000 + b as i64;
            let sample = (ts, ts as f64 + i as f64);
            let sent = accepted.get(&key).is_some_and(|v| v.contains(&sample));
            let refused = rejected.get(&key).is_some_and(|v| v.contains(&sample));
            assert!(sent ^ refused, "{key} @ {ts}: accepted {sent}, rejected {refused}");
        }
    }
    let m = exp.metrics();
    assert_eq!(m.pending(), 0);
    assert!(m.retried_requests.load(std::sync::atomic::Ordering::Relaxed) >= 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_is_honoured() {
    let server = TestServer::start().await;
    server.script([Reply::Status(429, Some("1".into())), Reply::Ok]);
    let cfg = config(&server.url());
    let mut exp = exporter(&cfg, "retry-after");
    exp.export(Arc::new(batch(5, 42))).await.unwrap();
    assert!(wait_for(Duration::from_secs(5), || server.accepted_samples() == 5).await);
    let seen = server.seen();
    assert_eq!(seen.len(), 2);
    let gap = seen[1].at.duration_since(seen[0].at);
    assert!(
        gap >= Duration::from_millis(950),
        "retried after {gap:?}; the backoff alone would be ~10ms"
    );
    exp.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_delays_but_loses_nothing_without_a_disk_queue() {
    let server = TestServer::start().await;
    server.set_default(Some(503));
    let cfg = config(&server.url());
    let mut exp = exporter(&cfg, "outage");
    let started = Instant::now();
    for b in 0..10 {
        exp.export(Arc::new(batch(10, 100 + b))).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(server.accepted_samples(), 0);
    assert!(!server.seen().is_empty(), "it kept trying during the outage");
    server.set_default(None);
    assert!(wait_for(Duration::from_secs(10), || server.accepted_samples() == 100).await);
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_in_order(&server.accepted());
    exp.shutdown().await.unwrap();
    assert_eq!(server.violations(), Vec::<String>::new());
    assert_eq!(exp.metrics().dropped(DropReason::RetriesExhausted), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_respect_sample_bounds_and_carry_metadata_and_external_labels() {
    use nodetel_core::metadata::{MetricMetadata, MetricType};
    let server = TestServer::start().await;
    let mut cfg = config(&server.url());
    cfg.max_samples_per_send = 7;
    cfg.send_metadata = true;
    cfg.external_labels.insert("cluster".into(), "c1".into());
    let mut exp = exporter(&cfg, "bounds");
    let mut b = batch(30, 5);
    b.metadata.push(Arc::new(MetricMetadata::new(
        "test_metric",
        MetricType::Gauge,
        "A test gauge.",
    )));
    exp.export(Arc::new(b)).await.unwrap();
    exp.shutdown().await.unwrap();
    let seen = server.seen();
    assert_eq!(server.accepted_samples(), 30);
    assert!(
        seen.len() >= 5,
        "30 samples at 7 per request need 5 requests, got {}",
        seen.len()
    );
    for s in &seen {
        assert!(s.request.timeseries.iter().map(|t| t.samples.len()).sum::<usize>() <= 7);
        for t in &s.request.timeseries {
            assert!(t.labels.iter().any(|l| l.name == "cluster" && l.value == "c1"));
        }
    }
    let meta: Vec<_> = seen.iter().flat_map(|s| s.request.metadata.iter()).collect();
    assert_eq!(meta.len(), 1, "metadata once per interval");
    assert_eq!(meta[0].metric_family_name, "test_metric");
    assert_eq!(meta[0].help, "A test gauge.");
    assert_eq!(meta[0].r#type, 2);
    assert_eq!(server.violations(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_endpoint_times_out_and_the_request_is_retried() {
    let server = TestServer::start().await;
    server.script([Reply::Slow(Duration::from_secs(3))]);
    let cfg = config(&server.url());
    let mut exp = exporter(&cfg, "slow");
    exp.export(Arc::new(batch(3, 9))).await.unwrap();
    assert!(wait_for(Duration::from_secs(6), || server.accepted_samples() >= 3).await);
    let m = exp.metrics();
    assert!(
        m.failed_requests.load(std::sync::atomic::Ordering::Relaxed) >= 1,
        "the timeout counts as a failure"
    );
    exp.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_endpoint_gets_more_shards_and_order_survives_the_resize() {
    let server = TestServer::start().await;
    server.set_delay(Duration::from_millis(50));
    let mut cfg = config(&server.url());
    cfg.max_samples_per_send = 10;
    cfg.batch_send_deadline = Duration::from_millis(10);
    cfg.shards.min = Some(1);
    cfg.shards.max = Some(4);
    // Small buffers, so back-pressure paces the producer instead of a long drain at shutdown.
    cfg.remote_write_queue.queue_size = 8;
    let mut exp = exporter(&cfg, "resize");
    exp.set_resize_interval(Duration::from_millis(300));
    let mut most = exp.shard_count();
    let started = Instant::now();
    let mut ts = 1;
    while started.elapsed() < Duration::from_secs(3) {
        exp.export(Arc::new(batch(20, ts))).await.unwrap();
        most = most.max(exp.shard_count());
        ts += 1;
    }
    exp.shutdown().await.unwrap();
    assert!(
        most > 1,
        "one shard at 50 ms per 10 samples cannot keep up; shards stayed at {most}"
    );
    let accepted = server.accepted();
    assert_in_order(&accepted);
    assert_eq!(
        server.accepted_samples(),
        20 * (ts as usize - 1),
        "nothing lost across resizes"
    );
    assert_eq!(server.violations(), Vec::<String>::new());
}
