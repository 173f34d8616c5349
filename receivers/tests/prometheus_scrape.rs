//! End-to-end tests of the `prometheus` receiver against tiny HTTP targets on 127.0.0.1:
//! content negotiation, tricky bodies, failures (bad lines, HTTP errors, oversized bodies,
//! timeouts), staleness, relabeling, authentication, gzip and file discovery.
// Test helpers may unwrap: a failure there is a test failure.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nodetel_core::component::{ComponentId, Receiver};
use nodetel_core::config::{BuildContext, ReceiverConfig, Validate};
use nodetel_core::telemetry::Registry;
use nodetel_core::{Batch, sample::is_stale_nan};
use nodetel_receivers::prometheus::PrometheusConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

#[derive(Clone)]
struct Route {
    status: u16,
    content_type: &'static str,
    body: Vec<u8>,
    delay: Duration,
}

impl Route {
    fn text(body: &str) -> Route {
        Route {
            status: 200,
            content_type: "text/plain; version=0.0.4; charset=utf-8",
            body: body.as_bytes().to_vec(),
            delay: Duration::ZERO,
        }
    }
}

/// A target server: routes by path, records each request's head.
#[derive(Clone)]
struct Server {
    addr: String,
    routes: Arc<Mutex<HashMap<String, Route>>>,
    requests: Arc<Mutex<Vec<String>>>,
}

impl Server {
    async fn start() -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let server = Server {
            addr,
            routes: Arc::default(),
            requests: Arc::default(),
        };
        let s = server.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut conn, _)) = listener.accept().await else {
                    return;
                };
                let s = s.clone();
                tokio::spawn(async move {
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
                    let gzip_ok = head.to_ascii_lowercase().contains("accept-encoding: gzip");
                    s.requests.lock().unwrap().push(head);
                    let route = s.routes.lock().unwrap().get(path.split('?').next().unwrap()).cloned();
                    let route = route.unwrap_or(Route {
                        status: 404,
                        ..Route::text("not found")
                    });
                    tokio::time::sleep(route.delay).await;
                    let (body, encoding) = if gzip_ok && route.body.len() > 64 {
                        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                        e.write_all(&route.body).unwrap();
                        (e.finish().unwrap(), "Content-Encoding: gzip\r\n")
                    } else {
                        (route.body.clone(), "")
                    };
                    let resp = format!(
                        "HTTP/1.1 {} X\r\nContent-Type: {}\r\n{encoding}Content-Length: {}\r\nConnection: close\r\n\r\n",
                        route.status,
                        route.content_type,
                        body.len()
                    );
                    let _ = conn.write_all(resp.as_bytes()).await;
                    let _ = conn.write_all(&body).await;
                    let _ = conn.shutdown().await;
                });
            }
        });
        server
    }

    fn route(&self, path: &str, route: Route) {
        self.routes.lock().unwrap().insert(path.into(), route);
    }

    fn last_request(&self) -> String {
        self.requests.lock().unwrap().last().cloned().unwrap_or_default()
    }
}

fn build(yaml: &str) -> Box<dyn Receiver> {
    let cfg: PrometheusConfig = serde_yaml_ng::from_str(yaml).unwrap();
    let errs = cfg.validate();
    assert!(errs.is_empty(), "{errs:?}");
    let cx = BuildContext {
        id: ComponentId::parse("prometheus").unwrap(),
        hostname: "h1".into(),
        registry: Arc::new(Registry::new()),
        extensions: Arc::new(BTreeMap::new()),
    };
    cfg.build(&cx).unwrap()
}

fn job(addr: &str, extra: &str) -> String {
    format!(
        "config:\n  global: {{scrape_interval: 15s}}\n  scrape_configs:\n    - job_name: j\n      static_configs: [{{targets: ['{addr}']}}]\n{extra}"
    )
}

async fn once(r: &mut Box<dyn Receiver>) -> Batch {
    let mut out = Batch::new();
    assert!(r.collect_once(&mut out).await.unwrap());
    out
}

/// `series id -> value` of every series in the batch.
fn values(b: &Batch) -> BTreeMap<String, f64> {
    b.series
        .iter()
        .map(|s| (s.labels.to_string(), s.samples[0].value))
        .collect()
}

fn up(b: &Batch, addr: &str) -> f64 {
    values(b)[&format!(r#"up{{instance="{addr}",job="j"}}"#)]
}

fn stale(b: &Batch) -> Vec<String> {
    b.series
        .iter()
        .filter(|x| is_stale_nan(x.samples[0].value))
        .map(|x| x.labels.to_string())
        .collect()
}

const TRICKY: &str = r#"# HELP http_requests_total The total number of HTTP requests.
# TYPE http_requests_total counter
http_requests_total{method="post",code="200"} 1027 1395066363000
http_requests_total{method="post",code="400"}    3 1395066363000
# Escapes, NaN, infinities.
msdos_file_access_time_seconds{path="C:\\DIR\\FILE.TXT",error="Cannot find file:\n\"FILE.TXT\""} 1.458255915e9
metric_without_timestamp_and_labels 12.47
something_weird{problem="division by zero"} +Inf -3982045
nan_value NaN
neg_inf -Inf
# TYPE http_request_duration_seconds histogram
http_request_duration_seconds_bucket{le="0.05"} 24054
http_request_duration_seconds_bucket{le="+Inf"} 144320
http_request_duration_seconds_sum 53423
http_request_duration_seconds_count 144320
# TYPE rpc_duration_seconds summary
rpc_duration_seconds{quantile="0.5"} 4773
rpc_duration_seconds_sum 1.7560473e+07
rpc_duration_seconds_count 2693
"#;

#[tokio::test]
async fn a_tricky_text_body_yields_every_series_with_target_labels() {
    let s = Server::start().await;
    s.route("/metrics", Route::text(TRICKY));
    let mut r = build(&job(&s.addr, ""));
    let out = once(&mut r).await;
    let v = values(&out);
    let a = &s.addr;
    assert_eq!(
        v[&format!(r#"http_requests_total{{code="200",instance="{a}",job="j",method="post"}}"#)],
        1027.0
    );
    let msdos = format!(
        r#"msdos_file_access_time_seconds{{error="Cannot find file:\n\"FILE.TXT\"",instance="{a}",job="j",path="C:\\DIR\\FILE.TXT"}}"#
    );
    assert_eq!(v[&msdos], 1.458255915e9, "escapes decode and re-encode: {v:#?}");
    assert_eq!(
        v[&format!(r#"something_weird{{instance="{a}",job="j",problem="division by zero"}}"#)],
        f64::INFINITY
    );
    assert!(v[&format!(r#"nan_value{{instance="{a}",job="j"}}"#)].is_nan());
    assert_eq!(v[&format!(r#"neg_inf{{instance="{a}",job="j"}}"#)], f64::NEG_INFINITY);
    assert_eq!(
        v[&format!(r#"http_request_duration_seconds_bucket{{instance="{a}",job="j",le="+Inf"}}"#)],
        144320.0
    );
    assert_eq!(
        v[&format!(r#"rpc_duration_seconds{{instance="{a}",job="j",quantile="0.5"}}"#)],
        4773.0
    );
    // Exposed timestamps are honoured; other samples carry the scrape time.
    let ts: HashMap<String, i64> = out
        .series
        .iter()
        .map(|s| (s.labels.to_string(), s.samples[0].timestamp_ms))
        .collect();
    assert_eq!(
        ts[&format!(r#"something_weird{{instance="{a}",job="j",problem="division by zero"}}"#)],
        -3982045
    );
    assert!(ts[&format!(r#"nan_value{{instance="{a}",job="j"}}"#)] > 1_600_000_000_000);
    // Report series.
    assert_eq!(up(&out, a), 1.0);
    assert_eq!(v[&format!(r#"scrape_samples_scraped{{instance="{a}",job="j"}}"#)], 14.0);
    assert_eq!(
        v[&format!(r#"scrape_samples_post_metric_relabeling{{instance="{a}",job="j"}}"#)],
        14.0
    );
    assert_eq!(v[&format!(r#"scrape_series_added{{instance="{a}",job="j"}}"#)], 14.0);
    assert!(v[&format!(r#"scrape_duration_seconds{{instance="{a}",job="j"}}"#)] > 0.0);
    assert_eq!(out.len(), 14 + 5);
    let families: Vec<&str> = out.metadata.iter().map(|m| &*m.family).collect();
    assert!(families.contains(&"http_request_duration_seconds"), "{families:?}");
    // The request negotiated the text format first.
    let req = s.last_request().to_ascii_lowercase();
    assert!(
        req.contains("accept: text/plain;version=0.0.4,application/openmetrics-text"),
        "{req}"
    );
    assert!(req.contains("x-prometheus-scrape-timeout-seconds: 10"), "{req}");
    // A second scrape finds every series in the cache.
    let out = once(&mut r).await;
    assert_eq!(
        values(&out)[&format!(r#"scrape_series_added{{instance="{a}",job="j"}}"#)],
        0.0
    );
}

#[tokio::test]
async fn openmetrics_answers_are_parsed_as_openmetrics() {
    let s = Server::start().await;
    s.route(
        "/metrics",
        Route {
            content_type: "application/openmetrics-text; version=1.0.0; charset=utf-8",
            ..Route::text(
                "# TYPE foo counter\n# UNIT foo seconds\nfoo_total{a=\"1\"} 17.0 1520879607.789 # {trace_id=\"x\"} 0.67\n# EOF\n",
            )
        },
    );
    let mut r = build(&job(&s.addr, ""));
    let out = once(&mut r).await;
    let a = &s.addr;
    let foo = out
        .series
        .iter()
        .find(|x| x.labels.to_string() == format!(r#"foo_total{{a="1",instance="{a}",job="j"}}"#))
        .unwrap();
    assert_eq!(
        (foo.samples[0].value, foo.samples[0].timestamp_ms),
        (17.0, 1520879607789)
    );
    assert_eq!(&*out.metadata[0].unit, "seconds");
    // The same body served as text/plain fails: the exemplar is trailing text there.
    s.route("/metrics", Route::text("foo_total 1 # {a=\"b\"} 1\n"));
    assert_eq!(up(&once(&mut r).await, a), 0.0);
}

#[tokio::test]
async fn failures_set_up_to_zero_and_keep_nothing_of_the_body() {
    let s = Server::start().await;
    let a = s.addr.clone();
    let big = "big_metric 1\n".repeat(200);
    for (route, extra) in [
        (Route::text("good 1\nbad{ 1\n"), ""),
        (
            Route {
                status: 500,
                ..Route::text("boom")
            },
            "",
        ),
        (Route::text(&big), "      body_size_limit: 1KB\n"),
        (Route::text("a 1\nb 1\nc 1\n"), "      sample_limit: 2\n"),
        (Route::text("a{x=\"1\",y=\"2\"} 1\n"), "      label_limit: 3\n"),
        (Route::text("dup{a=\"1\",a=\"2\"} 1\n"), ""),
    ] {
        s.route("/metrics", route);
        let mut r = build(&job(&a, extra));
        let out = once(&mut r).await;
        assert_eq!(up(&out, &a), 0.0, "{extra}");
        assert_eq!(out.len(), 5, "only report series: {:?}", values(&out));
        assert_eq!(
            values(&out)[&format!(r#"scrape_samples_scraped{{instance="{a}",job="j"}}"#)],
            0.0
        );
    }
    // A target nobody listens on.
    let mut r = build(&job("127.0.0.1:1", ""));
    assert_eq!(up(&once(&mut r).await, "127.0.0.1:1"), 0.0);
}

#[tokio::test]
async fn a_slow_target_fails_at_scrape_timeout() {
    let s = Server::start().await;
    s.route(
        "/metrics",
        Route {
            delay: Duration::from_secs(5),
            ..Route::text("m 1\n")
        },
    );
    let mut r = build(&job(&s.addr, "      scrape_timeout: 300ms\n"));
    let start = Instant::now();
    let out = once(&mut r).await;
    assert!(start.elapsed() < Duration::from_secs(3), "{:?}", start.elapsed());
    assert_eq!(up(&out, &s.addr), 0.0);
}

#[tokio::test]
async fn duplicate_series_keep_the_first_and_the_scrape_succeeds() {
    let s = Server::start().await;
    s.route("/metrics", Route::text("m{a=\"1\"} 1\nm{a=\"1\"} 2\n"));
    let mut r = build(&job(&s.addr, ""));
    let out = once(&mut r).await;
    let a = &s.addr;
    assert_eq!(up(&out, a), 1.0);
    assert_eq!(values(&out)[&format!(r#"m{{a="1",instance="{a}",job="j"}}"#)], 1.0);
    assert_eq!(
        values(&out)[&format!(r#"scrape_samples_post_metric_relabeling{{instance="{a}",job="j"}}"#)],
        1.0
    );
}

#[tokio::test]
async fn vanished_series_and_down_targets_get_staleness_markers() {
    let s = Server::start().await;
    let a = s.addr.clone();
    s.route("/metrics", Route::text("keep 1\ngo 2\n"));
    let mut r = build(&job(&a, ""));
    assert!(stale(&once(&mut r).await).is_empty());
    s.route("/metrics", Route::text("keep 1\n"));
    assert_eq!(stale(&once(&mut r).await), [format!(r#"go{{instance="{a}",job="j"}}"#)]);
    s.route(
        "/metrics",
        Route {
            status: 503,
            ..Route::text("")
        },
    );
    let out = once(&mut r).await;
    assert_eq!(stale(&out), [format!(r#"keep{{instance="{a}",job="j"}}"#)]);
    assert_eq!(up(&out, &a), 0.0);
    assert!(stale(&once(&mut r).await).is_empty(), "markers are written once");
}

#[tokio::test]
async fn relabeling_honor_labels_and_external_labels_shape_the_series() {
    let s = Server::start().await;
    s.route(
        "/metrics",
        Route::text("node_x{job=\"exp\",mode=\"idle\"} 1\ngo_gc 2\n"),
    );
    let yaml = format!(
        r#"config:
  global: {{scrape_interval: 15s, evaluation_interval: 15s, external_labels: {{cluster: c1}}}}
  scrape_configs:
    - job_name: node_exporter
      static_configs: [{{targets: ['{a}'], labels: {{rack: r1}}}}]
      relabel_configs: [{{target_label: instance, replacement: ip-10-1-2-3}}]
      metric_relabel_configs:
        - {{source_labels: [__name__], regex: 'go_.*', action: drop}}
        - {{source_labels: [mode], target_label: mode, action: uppercase}}
    - job_name: honored
      honor_labels: true
      static_configs: [{{targets: ['{a}']}}]
"#,
        a = s.addr
    );
    let mut r = build(&yaml);
    let v = values(&once(&mut r).await);
    assert_eq!(
        v[r#"node_x{cluster="c1",exported_job="exp",instance="ip-10-1-2-3",job="node_exporter",mode="IDLE",rack="r1"}"#],
        1.0,
        "{v:#?}"
    );
    assert!(!v.keys().any(|k| k.starts_with("go_gc{") && k.contains("node_exporter")));
    assert_eq!(
        v[r#"up{cluster="c1",instance="ip-10-1-2-3",job="node_exporter",rack="r1"}"#],
        1.0
    );
    assert_eq!(
        v[r#"scrape_samples_post_metric_relabeling{cluster="c1",instance="ip-10-1-2-3",job="node_exporter",rack="r1"}"#],
        1.0
    );
    let a = &s.addr;
    assert_eq!(
        v[&format!(r#"node_x{{cluster="c1",instance="{a}",job="exp",mode="idle"}}"#)],
        1.0
    );
    assert_eq!(
        v[&format!(r#"go_gc{{cluster="c1",instance="{a}",job="honored"}}"#)],
        2.0
    );
}

#[tokio::test]
async fn auth_params_and_paths_reach_the_target() {
    let s = Server::start().await;
    s.route("/probe", Route::text("m 1\n"));
    let extra =
        "      metrics_path: /probe\n      params: {module: [if_mib]}\n      basic_auth: {username: u, password: p}\n";
    let mut r = build(&job(&s.addr, extra));
    assert_eq!(up(&once(&mut r).await, &s.addr), 1.0);
    let req = s.last_request();
    assert!(req.starts_with("GET /probe?module=if_mib HTTP/1.1"), "{req}");
    assert!(req.to_ascii_lowercase().contains("authorization: basic dtpw"), "{req}");
    let extra = "      authorization: {credentials: secret-token}\n      enable_compression: false\n";
    s.route("/metrics", Route::text("m 1\n"));
    let mut r = build(&job(&s.addr, extra));
    assert_eq!(up(&once(&mut r).await, &s.addr), 1.0);
    let req = s.last_request().to_ascii_lowercase();
    assert!(req.contains("authorization: bearer secret-token"), "{req}");
    assert!(!req.contains("accept-encoding: gzip"), "{req}");
}

#[tokio::test]
async fn gzip_bodies_are_decompressed() {
    let s = Server::start().await;
    let body: String = (0..500).map(|i| format!("m{{i=\"{i}\"}} {i}\n")).collect();
    s.route("/metrics", Route::text(&body));
    let mut r = build(&job(&s.addr, ""));
    let out = once(&mut r).await;
    assert!(s.last_request().to_ascii_lowercase().contains("accept-encoding: gzip"));
    assert_eq!(up(&out, &s.addr), 1.0);
    assert_eq!(out.len(), 500 + 5);
}

#[tokio::test]
async fn file_discovery_finds_targets_with_their_labels() {
    let s = Server::start().await;
    s.route("/metrics", Route::text("m 1\n"));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("t.json"),
        format!(r#"[{{"targets": ["{}"], "labels": {{"rack": "r9"}}}}]"#, s.addr),
    )
    .unwrap();
    let yaml = format!(
        "config:\n  scrape_configs:\n    - job_name: j\n      file_sd_configs: [{{files: ['{}/*.json']}}]\n      relabel_configs: [{{source_labels: [__meta_filepath], regex: '.*/(.*)', target_label: file}}]\n",
        dir.path().display()
    );
    let mut r = build(&yaml);
    let v = values(&once(&mut r).await);
    assert_eq!(
        v[&format!(r#"m{{file="t.json",instance="{}",job="j",rack="r9"}}"#, s.addr)],
        1.0,
        "{v:#?}"
    );
}

/// A condition on the `(series, value)` pairs delivered so far.
type Delivered<'a> = dyn Fn(&[(String, f64)]) -> bool + 'a;

/// Keeps every batch the pipeline delivers.
struct Capture(Arc<Mutex<Vec<Arc<Batch>>>>);

#[async_trait::async_trait]
impl nodetel_core::Exporter for Capture {
    async fn export(&mut self, batch: Arc<Batch>) -> Result<(), nodetel_core::ExportError> {
        self.0.lock().unwrap().push(batch);
        Ok(())
    }
}

fn delivered(seen: &Mutex<Vec<Arc<Batch>>>) -> Vec<(String, f64)> {
    seen.lock()
        .unwrap()
        .iter()
        .flat_map(|b| b.series.iter().map(|s| (s.labels.to_string(), s.samples[0].value)))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn running_receiver_scrapes_every_target_and_retires_removed_ones() {
    use nodetel_core::runtime::{ExporterSpec, PipelineSpec, ReceiverSpec, RuntimeSettings, Topology};
    let (a, b) = (Server::start().await, Server::start().await);
    a.route("/metrics", Route::text("m 1\n"));
    b.route("/metrics", Route::text("m 2\n"));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("targets.json");
    std::fs::write(&file, format!(r#"[{{"targets": ["{}", "{}"]}}]"#, a.addr, b.addr)).unwrap();
    let yaml = format!(
        "config:\n  scrape_configs:\n    - job_name: j\n      scrape_interval: 200ms\n      file_sd_configs: [{{files: ['{}'], refresh_interval: 300ms}}]\n",
        file.display()
    );
    let cfg: PrometheusConfig = serde_yaml_ng::from_str(&yaml).unwrap();
    let registry = Registry::new();
    let cx = BuildContext {
        id: ComponentId::parse("prometheus").unwrap(),
        hostname: "h1".into(),
        registry: Arc::new(Registry::new()),
        extensions: Arc::new(BTreeMap::new()),
    };
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
    let running = topology.start(&registry).await.unwrap();
    let up_a = format!(r#"up{{instance="{}",job="j"}}"#, a.addr);
    let up_b = format!(r#"up{{instance="{}",job="j"}}"#, b.addr);
    let wait_for = |what: &Delivered<'_>| {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if what(&delivered(&seen)) {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let both_up = wait_for(&|d| {
        d.iter().filter(|(k, v)| *k == up_a && *v == 1.0).count() >= 2 && d.iter().any(|(k, v)| *k == up_b && *v == 1.0)
    });
    assert!(both_up, "{:#?}", delivered(&seen));

    // Remove target b: its series and report series get staleness markers.
    std::fs::write(&file, format!(r#"[{{"targets": ["{}"]}}]"#, a.addr)).unwrap();
    let m_b = format!(r#"m{{instance="{}",job="j"}}"#, b.addr);
    let retired = wait_for(&|d| {
        d.iter().any(|(k, v)| *k == m_b && is_stale_nan(*v)) && d.iter().any(|(k, v)| *k == up_b && is_stale_nan(*v))
    });
    assert!(retired, "{:#?}", delivered(&seen));
    let scrapes_of_a = delivered(&seen).iter().filter(|(k, _)| *k == up_a).count();
    assert!(
        wait_for(&|d| d.iter().filter(|(k, _)| *k == up_a).count() > scrapes_of_a + 1),
        "a keeps being scraped"
    );
    running.shutdown(Duration::from_secs(5)).await.unwrap();
}
