//! Hostile scrape targets against the `prometheus` receiver, on 127.0.0.1: a target that never
//! answers, one that stalls mid-body, endless bodies and endless lines, a gzip bomb and a target
//! exposing a million series. Each must fail its own scrape (`up` = 0) at a limit, with the
//! receiver's memory bounded, while the other targets keep being scraped on time.
//!
//! Memory is measured as the rise of the process's peak RSS (`VmHWM`, reset through
//! `/proc/self/clear_refs`), so the tests of this file run one at a time.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod gzip_bomb;

use gzip_bomb::gzip_bomb;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nodetel_core::Batch;
use nodetel_core::component::{ComponentId, Receiver};
use nodetel_core::config::{BuildContext, ReceiverConfig, Validate};
use nodetel_core::runtime::{ExporterSpec, PipelineSpec, ReceiverSpec, RuntimeSettings, Topology};
use nodetel_core::telemetry::Registry;
use nodetel_receivers::prometheus::PrometheusConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// One test at a time: peak RSS is a property of the whole process.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What a path of the hostile server does once it has read a request.
#[derive(Clone)]
enum Behaviour {
    /// Reads the request and never answers.
    Hang,
    /// Sends the head and a little of a declared 1 MB body, then nothing.
    Stall,
    /// `prefix`, then `fill` over and over until the client goes away (no Content-Length).
    Endless { prefix: &'static [u8], fill: Arc<Vec<u8>> },
    /// A complete body with its Content-Length, optionally with `Content-Encoding: gzip`.
    Body { body: Arc<Vec<u8>>, gzip: bool },
}

/// A target server whose paths misbehave; counts the body bytes it managed to write per path.
#[derive(Clone)]
struct Hostile {
    addr: String,
    routes: Arc<Mutex<HashMap<String, Behaviour>>>,
    written: Arc<Mutex<HashMap<String, Arc<AtomicU64>>>>,
}

impl Hostile {
    async fn start() -> Hostile {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let server = Hostile {
            addr: listener.local_addr().unwrap().to_string(),
            routes: Arc::default(),
            written: Arc::default(),
        };
        let s = server.clone();
        tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                tokio::spawn(s.clone().serve(conn));
            }
        });
        server
    }

    fn route(&self, path: &str, behaviour: Behaviour) {
        self.routes.lock().unwrap().insert(path.into(), behaviour);
        self.written.lock().unwrap().insert(path.into(), Arc::default());
    }

    fn written(&self, path: &str) -> u64 {
        self.written.lock().unwrap()[path].load(Ordering::Relaxed)
    }

    async fn serve(self, mut conn: TcpStream) {
        let mut head = Vec::new();
        let mut buf = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            match conn.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
        }
        let head = String::from_utf8_lossy(&head).into_owned();
        let path = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
        let Some(behaviour) = self.routes.lock().unwrap().get(&path).cloned() else {
            let _ = conn.write_all(b"HTTP/1.1 404 X\r\nContent-Length: 0\r\n\r\n").await;
            return;
        };
        let written = self.written.lock().unwrap()[&path].clone();
        match behaviour {
            Behaviour::Hang => {
                // Hold the connection open, reading whatever comes, until the client leaves.
                while conn.read(&mut buf).await.is_ok_and(|n| n > 0) {}
            }
            Behaviour::Stall => {
                let head = format!("HTTP/1.1 200 OK\r\nContent-Type: {TEXT}\r\nContent-Length: 1000000\r\n\r\n");
                let _ = conn.write_all(head.as_bytes()).await;
                let _ = conn.write_all(b"stalled_metric 1\n").await;
                while conn.read(&mut buf).await.is_ok_and(|n| n > 0) {}
            }
            Behaviour::Endless { prefix, fill } => {
                let head = format!("HTTP/1.1 200 OK\r\nContent-Type: {TEXT}\r\nConnection: close\r\n\r\n");
                if conn.write_all(head.as_bytes()).await.is_err() || conn.write_all(prefix).await.is_err() {
                    return;
                }
                while conn.write_all(&fill).await.is_ok() {
                    written.fetch_add(fill.len() as u64, Ordering::Relaxed);
                }
            }
            Behaviour::Body { body, gzip } => {
                let encoding = if gzip { "Content-Encoding: gzip\r\n" } else { "" };
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: {TEXT}\r\n{encoding}Content-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                if conn.write_all(head.as_bytes()).await.is_ok() && conn.write_all(&body).await.is_ok() {
                    written.fetch_add(body.len() as u64, Ordering::Relaxed);
                }
                let _ = conn.shutdown().await;
            }
        }
    }
}

/// Peak RSS of this process since the last [`reset_peak_rss`], in bytes.
fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

/// Current RSS, in bytes.
fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

/// Resets the peak RSS to the current RSS (Linux: writing 5 to clear_refs).
fn reset_peak_rss() {
    std::fs::write("/proc/self/clear_refs", "5").unwrap();
}

const MIB: u64 = 1024 * 1024;

fn build(yaml: &str) -> Box<dyn Receiver> {
    let cfg: PrometheusConfig = serde_yaml_ng::from_str(yaml).unwrap();
    let errs = cfg.validate();
    assert!(errs.is_empty(), "{errs:?}");
    cfg.build(&context()).unwrap()
}

fn context() -> BuildContext {
    BuildContext {
        id: ComponentId::parse("prometheus").unwrap(),
        hostname: "h1".into(),
        registry: Arc::new(Registry::new()),
        extensions: Arc::new(BTreeMap::new()),
    }
}

fn job(addr: &str, path: &str, extra: &str) -> String {
    format!(
        "config:\n  scrape_configs:\n    - job_name: j\n      metrics_path: {path}\n      static_configs: [{{targets: ['{addr}']}}]\n{extra}"
    )
}

/// Scrapes once; returns the `up` value and how long the scrape took.
async fn scrape_once(yaml: &str) -> (f64, Duration, Batch) {
    let mut r = build(yaml);
    let mut out = Batch::new();
    let start = Instant::now();
    assert!(r.collect_once(&mut out).await.unwrap());
    let took = start.elapsed();
    let up = out
        .series
        .iter()
        .find(|s| s.labels.metric_name() == Some("up"))
        .map(|s| s.samples[0].value)
        .unwrap();
    (up, took, out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hanging_and_stalling_targets_fail_at_scrape_timeout() {
    let _serial = SERIAL.lock().await;
    let s = Hostile::start().await;
    s.route("/hang", Behaviour::Hang);
    s.route("/stall", Behaviour::Stall);
    for path in ["/hang", "/stall"] {
        let (up, took, out) = scrape_once(&job(&s.addr, path, "      scrape_timeout: 500ms\n")).await;
        assert_eq!(up, 0.0, "{path}");
        assert!(took >= Duration::from_millis(450), "{path}: gave up early, {took:?}");
        assert!(
            took < Duration::from_secs(3),
            "{path}: the timeout did not hold, {took:?}"
        );
        assert_eq!(out.len(), 5, "{path}: only the report series");
    }
}

/// Scrapes `path` with a 1 MiB body_size_limit and a 20 s timeout: the scrape must fail at the
/// limit, long before the timeout, having read about the limit and no more.
async fn assert_stops_at_body_size_limit(s: &Hostile, path: &str) {
    let extra = "      scrape_timeout: 20s\n      scrape_interval: 30s\n      body_size_limit: 1MB\n";
    reset_peak_rss();
    let before = rss();
    let (up, took, out) = scrape_once(&job(&s.addr, path, extra)).await;
    let grew = peak_rss().saturating_sub(before);
    eprintln!("{path}: failed after {took:?}, peak RSS +{} MiB", grew / MIB);
    assert_eq!(up, 0.0, "{path}");
    assert_eq!(out.len(), 5, "{path}: only the report series");
    assert!(
        took < Duration::from_secs(10),
        "{path}: stopped by the timeout, not the limit: {took:?}"
    );
    assert!(grew < 48 * MIB, "{path}: peak RSS grew {} MiB", grew / MIB);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endless_bodies_and_endless_lines_stop_at_body_size_limit() {
    let _serial = SERIAL.lock().await;
    let s = Hostile::start().await;
    let lines: String = (0..2000).map(|i| format!("huge_metric{{i=\"{i}\"}} 1\n")).collect();
    s.route(
        "/huge",
        Behaviour::Endless {
            prefix: b"# TYPE huge_metric gauge\n",
            fill: Arc::new(lines.into_bytes()),
        },
    );
    s.route(
        "/endless-line",
        Behaviour::Endless {
            prefix: b"endless{label=\"",
            fill: Arc::new(vec![b'x'; 64 * 1024]),
        },
    );
    for path in ["/huge", "/endless-line"] {
        assert_stops_at_body_size_limit(&s, path).await;
        // The client stopped reading: what got out is the limit plus socket buffers.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let written = s.written(path);
        assert!(written < 32 * MIB, "{path}: the target wrote {} MiB", written / MIB);
    }
}

#[test]
fn the_gzip_bomb_is_a_bomb() {
    use std::io::Read;
    let bomb = gzip_bomb(16);
    assert!(bomb.len() < 64 * 1024, "{} bytes", bomb.len());
    let mut out = Vec::new();
    let _ = flate2::read::GzDecoder::new(&bomb[..]).read_to_end(&mut out);
    assert_eq!(out.len(), 16 << 20);
    assert!(out.iter().all(|&b| b == 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gzip_bomb_stops_at_body_size_limit_after_decompression() {
    let _serial = SERIAL.lock().await;
    let s = Hostile::start().await;
    let bomb = gzip_bomb(1024);
    assert!(bomb.len() < 4 << 20, "1 GiB in {} bytes", bomb.len());
    s.route(
        "/bomb",
        Behaviour::Body {
            body: Arc::new(bomb),
            gzip: true,
        },
    );
    assert_stops_at_body_size_limit(&s, "/bomb").await;
}

/// Keeps every batch the pipeline delivers.
struct Capture(Arc<Mutex<Vec<Arc<Batch>>>>);

#[async_trait::async_trait]
impl nodetel_core::Exporter for Capture {
    async fn export(&mut self, batch: Arc<Batch>) -> Result<(), nodetel_core::ExportError> {
        self.0.lock().unwrap().push(batch);
        Ok(())
    }
}

/// Timestamps and values of every delivered sample of the series `id`.
fn samples_of(seen: &Mutex<Vec<Arc<Batch>>>, id: &str) -> Vec<(i64, f64)> {
    seen.lock()
        .unwrap()
        .iter()
        .flat_map(|b| b.series.iter())
        .filter(|s| s.labels.to_string() == id)
        .flat_map(|s| s.samples.iter().map(|x| (x.timestamp_ms, x.value)))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_million_series_target_fails_at_sample_limit_and_the_others_stay_on_time() {
    let _serial = SERIAL.lock().await;
    let s = Hostile::start().await;
    let mut body = String::with_capacity(32 << 20);
    body.push_str("# TYPE exploding gauge\n");
    for i in 0..1_000_000 {
        body.push_str("exploding{series=\"");
        body.push_str(&i.to_string());
        body.push_str("\"} 1\n");
    }
    s.route(
        "/explode",
        Behaviour::Body {
            body: Arc::new(body.into_bytes()),
            gzip: false,
        },
    );
    let good = Hostile::start().await;
    let fine: String = (0..50).map(|i| format!("fine{{i=\"{i}\"}} {i}\n")).collect();
    good.route(
        "/metrics",
        Behaviour::Body {
            body: Arc::new(fine.into_bytes()),
            gzip: false,
        },
    );
    let yaml = format!(
        "config:\n  scrape_configs:\n\
         \x20   - job_name: explode\n      scrape_interval: 1s\n      scrape_timeout: 1s\n      sample_limit: 10000\n\
         \x20     metrics_path: /explode\n      static_configs: [{{targets: ['{}']}}]\n\
         \x20   - job_name: good\n      scrape_interval: 200ms\n      scrape_timeout: 200ms\n\
         \x20     static_configs: [{{targets: ['{}']}}]\n",
        s.addr, good.addr
    );
    let cfg: PrometheusConfig = serde_yaml_ng::from_str(&yaml).unwrap();
    assert!(cfg.validate().is_empty());
    let cx = context();
    let seen: Arc<Mutex<Vec<Arc<Batch>>>> = Arc::default();
    let capture = seen.clone();
    let topology = Topology {
        receivers: vec![ReceiverSpec {
            id: ComponentId::parse("prometheus").unwrap(),
            factory: Arc::new(move || cfg.build(&cx)),
            pipelines: vec![0],
        }],
        pipelines: vec![PipelineSpec {
            name: "metrics".into(),
            processors: vec![],
            exporters: vec![0],
        }],
        exporters: vec![ExporterSpec {
            id: ComponentId::parse("debug").unwrap(),
            factory: Arc::new(move || Ok(Box::new(Capture(capture.clone())) as Box<dyn nodetel_core::Exporter>)),
        }],
        settings: RuntimeSettings::default(),
    };
    reset_peak_rss();
    let before = rss();
    let pairs_before = nodetel_core::labels::interned_pairs();
    let mut most_pairs = pairs_before;
    let registry = Registry::new();
    let running = topology.start(&registry).await.unwrap();
    let up_explode = format!(r#"up{{instance="{}",job="explode"}}"#, s.addr);
    let up_good = format!(r#"up{{instance="{}",job="good"}}"#, good.addr);
    let run_for = Duration::from_secs(6);
    let start = Instant::now();
    while start.elapsed() < run_for {
        most_pairs = most_pairs.max(nodetel_core::labels::interned_pairs());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let shutdown = running.shutdown(Duration::from_secs(5)).await;
    let grew = peak_rss().saturating_sub(before);
    eprintln!(
        "1M series: peak RSS +{} MiB, interned label pairs {pairs_before} -> at most {most_pairs}",
        grew / MIB
    );

    let explode = samples_of(&seen, &up_explode);
    assert!(
        explode.len() >= 3,
        "the exploding target was scraped {} times",
        explode.len()
    );
    assert!(explode.iter().all(|&(_, v)| v == 0.0), "{explode:?}");
    assert!(
        !seen
            .lock()
            .unwrap()
            .iter()
            .flat_map(|b| b.series.iter())
            .any(|x| x.labels.metric_name() == Some("exploding")),
        "no series of a failed scrape is delivered"
    );
    // The body itself is 30 MB and is held while it is parsed; a label set per series would
    // be several hundred MB.
    assert!(grew < 160 * MIB, "peak RSS grew {} MiB", grew / MIB);
    assert!(
        most_pairs < pairs_before + 50_000,
        "label pairs interned went from {pairs_before} to {most_pairs}"
    );

    // The good target: scraped every 200 ms throughout, every scrape up.
    let good_up = samples_of(&seen, &up_good);
    assert!(good_up.iter().all(|&(_, v)| v == 1.0), "{good_up:?}");
    let expected = run_for.as_millis() as usize / 200;
    assert!(
        good_up.len() * 10 >= expected * 7,
        "{} of about {expected} scrapes",
        good_up.len()
    );
    let worst_gap = good_up.windows(2).map(|w| w[1].0 - w[0].0).max().unwrap();
    assert!(
        worst_gap <= 1000,
        "the good target waited {worst_gap} ms between scrapes"
    );
    let fine = samples_of(&seen, &format!(r#"fine{{i="49",instance="{}",job="good"}}"#, good.addr));
    assert_eq!(fine.len(), good_up.len(), "each good scrape delivered its series");
    shutdown.unwrap();
}
