//! Remote write from the binary: the default config with `AMP_REMOTE_WRITE_URL`, and a SIGKILL
//! during an outage with the disk queue on, after which nothing older than the flush deadline
//! is lost.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::support::*;

#[test]
fn default_config_remote_writes_node_series_when_amp_url_is_set() {
    let _ports = DEFAULT_PORTS.lock().unwrap_or_else(|e| e.into_inner());
    let sink = HttpServer::start(0, |_, _| (200, String::new()));
    let url = format!("http://{}/api/v1/write", sink.addr);
    let proc = Running::spawn(nodetel().arg("run").env("AMP_REMOTE_WRITE_URL", &url));
    let started = std::time::Instant::now();
    let request = loop {
        let found = sink.requests().into_iter().find(|r| {
            r.path == "/api/v1/write" && decode_write_request(&r.body).iter().any(|s| s.name() == "node_load1")
        });
        if let Some(r) = found {
            break r;
        }
        if started.elapsed() > Duration::from_secs(15) {
            let (out, _) = proc.terminate();
            panic!(
                "no remote write request with node series in 15 s; nodetel said:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let header = |n: &str| {
        request
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(n))
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(request.method, "POST");
    assert_eq!(header("content-encoding"), Some("snappy"));
    assert_eq!(header("content-type"), Some("application/x-protobuf"));
    assert_eq!(header("x-prometheus-remote-write-version"), Some("0.1.0"));
    assert!(
        header("user-agent").is_some_and(|ua| ua.starts_with("nodetel/")),
        "{:?}",
        request.headers
    );
    assert_eq!(header("authorization"), None, "a non-AMP endpoint is not signed");
    let series = decode_write_request(&request.body);
    let load = series.iter().find(|s| s.name() == "node_load1").unwrap();
    assert_eq!(load.label("job"), Some("node_exporter"));
    assert_eq!(
        load.label("instance").map(str::to_owned),
        Some(nodetel_host::identity::hostname())
    );
    assert!(!load.samples.is_empty() && load.samples[0].1 > 1_600_000_000_000);
    let (out, _) = proc.terminate();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn sigkill_during_an_outage_loses_nothing_that_reached_the_disk_queue() {
    // A target whose counter goes up by one on every scrape: value N is the N-th scrape.
    let scrapes = Arc::new(AtomicU64::new(0));
    let counter = scrapes.clone();
    let target = HttpServer::start(0, move |_, _| {
        let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
        (200, format!("# TYPE test_scrapes counter\ntest_scrapes {n}\n"))
    });
    let write_port = free_port();
    let (own, health) = (free_port(), free_port());
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.yaml");
    let queue = dir.path().join("queue");
    std::fs::write(
        &config,
        format!(
            "receivers:\n  prometheus:\n    config:\n      scrape_configs:\n        - job_name: counter\n          \
             scrape_interval: 200ms\n          scrape_timeout: 100ms\n          static_configs: [{{targets: [\"{target}\"]}}]\n\
             exporters:\n  prometheusremotewrite:\n    endpoint: http://127.0.0.1:{write_port}/api/v1/write\n    \
             queue: {{directory: {queue}}}\n\
             extensions:\n  health_check: {{endpoint: \"127.0.0.1:{health}\"}}\n\
             service:\n  extensions: [health_check]\n  telemetry: {{metrics: {{address: \"127.0.0.1:{own}\"}}}}\n  \
             pipelines:\n    metrics: {{receivers: [prometheus], exporters: [prometheusremotewrite]}}\n",
            target = target.addr,
            queue = queue.display(),
        ),
    )
    .unwrap();

    // Phase 1: the endpoint is down (nothing listens on its port).
    let mut first = Running::spawn(nodetel().arg("run").arg("--config").arg(&config));
    eventually(Duration::from_secs(15), "ten scrapes", || {
        (scrapes.load(Ordering::SeqCst) >= 10).then_some(())
    });
    let safe = scrapes.load(Ordering::SeqCst);
    // Longer than the exporter's batch deadline (1 s), so everything up to `safe` was flushed.
    std::thread::sleep(Duration::from_millis(2500));
    first.kill();

    // Phase 2: the endpoint is back; a new process replays the disk queue.
    let sink = HttpServer::start(write_port, |_, _| (200, String::new()));
    let second = Running::spawn(nodetel().arg("run").arg("--config").arg(&config));
    let (missing, _) = eventually(Duration::from_secs(20), "every value scraped before the kill", || {
        let got: BTreeSet<u64> = sink
            .requests()
            .iter()
            .flat_map(|r| decode_write_request(&r.body))
            .filter(|s| s.name() == "test_scrapes")
            .flat_map(|s| s.samples.into_iter().map(|(v, _)| v as u64))
            .collect();
        let missing: Vec<u64> = (1..=safe).filter(|n| !got.contains(n)).collect();
        missing.is_empty().then_some(missing)
    });
    assert!(missing.is_empty());
    let (out, _) = second.terminate();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}
