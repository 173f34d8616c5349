//! The remote write exporter against real receivers: Prometheus (with its remote write receiver
//! enabled) and VictoriaMetrics, started on loopback ports with temporary data directories and
//! read back through their query APIs. Skipped, with a note, where the binaries are missing
//! (Debian packages `prometheus` and `victoria-metrics`).

// Test helpers outside #[test] functions: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod remote_write_support;

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use nodetel_core::component::Exporter;
use nodetel_core::labels::Labels;
use nodetel_core::sample::{Sample, now_ms};
use nodetel_exporters::remote_write::RemoteWriteExporter;
use remote_write_support::context;

/// A child process stopped (by its own PID) when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn find(bin: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(bin))
        .find(|p| p.is_file())
}

async fn get(url: &str) -> Option<String> {
    let r = reqwest::Client::new()
        .get(url)
        .timeout(Duration::from_secs(2))
        .send()
        .await
        .ok()?;
    if !r.status().is_success() {
        return None;
    }
    r.text().await.ok()
}

async fn until_ready(url: &str) -> bool {
    for _ in 0..150 {
        if get(url).await.is_some() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// Sends 3 scrapes of 20 series, 1 s apart in sample time, ending now.
async fn send(url: &str, job: &str) -> (i64, usize) {
    let mut cfg = remote_write_support::config(url);
    cfg.send_metadata = true;
    let mut exp = RemoteWriteExporter::new(&cfg, &context(job), None).unwrap();
    let end = now_ms() - 1000;
    for round in 0..3i64 {
        let ts = end - (2 - round) * 1000;
        let mut b = nodetel_core::batch::Batch::new();
        for i in 0..20 {
            let idx = i.to_string();
            let l = Labels::from_pairs([("__name__", "nodetel_e2e"), ("idx", idx.as_str()), ("job", job)]).unwrap();
            b.push(l, Sample::new(ts, (round * 100 + i) as f64));
        }
        exp.export(Arc::new(b)).await.unwrap();
    }
    exp.shutdown().await.unwrap();
    let m = exp.metrics();
    assert_eq!(
        m.samples_sent.load(std::sync::atomic::Ordering::Relaxed),
        60,
        "the backend accepted all"
    );
    (end, 60)
}

/// Reads `nodetel_e2e{idx="7"}` at `end` and checks the last value (round 2: 207).
async fn check_value(query_base: &str, job: &str, end: i64) -> bool {
    let url = format!(
        "{query_base}/api/v1/query?query=nodetel_e2e%7Bidx%3D%227%22%2Cjob%3D%22{job}%22%7D&time={}",
        end as f64 / 1000.0
    );
    let mut last = String::new();
    for _ in 0..50 {
        if let Some(body) = get(&url).await {
            if body.contains("\"207\"") {
                return true;
            }
            last = body;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    eprintln!("last answer: {last}");
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_receives_what_the_exporter_sends() {
    let Some(bin) = find("prometheus") else {
        eprintln!("prometheus not installed; skipping");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("prometheus.yml");
    std::fs::write(&config, "global:\n  scrape_interval: 1h\n").unwrap();
    let port = free_port();
    let _p = Proc(
        Command::new(bin)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--web.enable-remote-write-receiver")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let base = format!("http://127.0.0.1:{port}");
    assert!(
        until_ready(&format!("{base}/-/ready")).await,
        "prometheus did not start"
    );
    let (end, _) = send(&format!("{base}/api/v1/write"), "prom").await;
    assert!(
        check_value(&base, "prom", end).await,
        "value not found through the query API"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn victoriametrics_receives_what_the_exporter_sends() {
    let Some(bin) = find("victoria-metrics") else {
        eprintln!("victoria-metrics not installed; skipping");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let _p = Proc(
        Command::new(bin)
            .arg(format!("-storageDataPath={}", dir.path().display()))
            .arg(format!("-httpListenAddr=127.0.0.1:{port}"))
            // Queries normally hide the last 30 s; the test reads what it just wrote.
            .arg("-search.latencyOffset=0s")
            .arg("-search.disableCache")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let base = format!("http://127.0.0.1:{port}");
    assert!(
        until_ready(&format!("{base}/health")).await,
        "victoria-metrics did not start"
    );
    let (end, _) = send(&format!("{base}/api/v1/write"), "vm").await;
    let _ = get(&format!("{base}/internal/force_flush")).await;
    assert!(
        check_value(&base, "vm", end).await,
        "value not found through the query API"
    );
}
