//! Compares nodetel with a real Prometheus scraping the same real node_exporter: every series
//! label set (names, exposed labels, target labels after `relabel_configs` and
//! `metric_relabel_configs`, report series) must be the same. Both servers run on loopback
//! ports and are stopped by PID. Skipped when the Debian packages `prometheus` and
//! `prometheus-node-exporter` are not installed (scripts/deps/apt.txt installs them).
// Test helpers may unwrap: a failure there is a test failure.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nodetel_core::Batch;
use nodetel_core::component::ComponentId;
use nodetel_core::config::{BuildContext, ReceiverConfig, Validate};
use nodetel_core::sample::is_stale_nan;
use nodetel_core::telemetry::Registry;
use nodetel_receivers::prometheus::PrometheusConfig;

/// Kills the child (by its PID) when dropped.
struct Proc(Child);
impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn find(bin: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| std::path::Path::new(d).join(bin))
        .find(|p| p.is_file())
}

async fn get(url: &str) -> Option<String> {
    let resp = reqwest::Client::new().get(url).send().await.ok()?;
    resp.status().is_success().then_some(())?;
    resp.text().await.ok()
}

type LabelSet = BTreeMap<String, String>;

/// The scrape job both sides run. Metric relabeling drops the Go runtime series, whose set
/// changes as the exporter runs (GC timing), and exercises a rewrite.
fn scrape_job(target: &str) -> String {
    format!(
        r#"
    - job_name: node_exporter
      scrape_interval: 1s
      scrape_timeout: 1s
      static_configs: [{{targets: ["{target}"], labels: {{rack: r1}}}}]
      relabel_configs:
        - {{target_label: instance, replacement: ip-10-1-206-211}}
      metric_relabel_configs:
        - {{source_labels: [__name__], regex: 'go_.*|process_.*|promhttp_.*', action: drop}}
        - {{source_labels: [mode], regex: '(.*)', target_label: cpu_mode, replacement: 'm_$1'}}
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn series_match_what_prometheus_stores_for_the_same_node_exporter() {
    let (Some(prom), Some(node)) = (find("prometheus"), find("prometheus-node-exporter")) else {
        eprintln!("prometheus or prometheus-node-exporter not installed; skipping");
        return;
    };
    let node_addr = format!("127.0.0.1:{}", free_port());
    // A fixed, stable set of collectors, so both scrapes see the same series.
    let _node = Proc(
        Command::new(node)
            .args([
                &format!("--web.listen-address={node_addr}"),
                "--collector.disable-defaults",
                "--collector.cpu",
                "--collector.meminfo",
                "--collector.loadavg",
                "--collector.uname",
                "--collector.stat",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let dir = tempfile::tempdir().unwrap();
    let cfg_path = dir.path().join("prometheus.yml");
    std::fs::write(&cfg_path, format!("scrape_configs:{}", scrape_job(&node_addr))).unwrap();
    let prom_addr = format!("127.0.0.1:{}", free_port());
    let _prom = Proc(
        Command::new(prom)
            .args([
                &format!("--config.file={}", cfg_path.display()),
                &format!("--storage.tsdb.path={}", dir.path().join("data").display()),
                &format!("--web.listen-address={prom_addr}"),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );

    // Wait until Prometheus has scraped the exporter a few times.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let q = get(&format!("http://{prom_addr}/api/v1/query?query=scrape_samples_scraped")).await;
        if q.is_some_and(|b| b.contains("ip-10-1-206-211")) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus did not scrape node_exporter in time"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;

    // nodetel, same job.
    let yaml = format!("config:\n  scrape_configs:{}", scrape_job(&node_addr));
    let cfg: PrometheusConfig = serde_yaml_ng::from_str(&yaml).unwrap();
    assert!(cfg.validate().is_empty(), "{:?}", cfg.validate());
    let cx = BuildContext {
        id: ComponentId::parse("prometheus").unwrap(),
        hostname: "h".into(),
        registry: Arc::new(Registry::new()),
        extensions: Arc::new(BTreeMap::new()),
    };
    let mut r = cfg.build(&cx).unwrap();
    let mut out = Batch::new();
    r.collect_once(&mut out).await.unwrap();
    let ours: BTreeSet<LabelSet> = out
        .series
        .iter()
        .filter(|s| !is_stale_nan(s.samples[0].value))
        .map(|s| s.labels.iter().map(|(n, v)| (n.to_owned(), v.to_owned())).collect())
        .collect();
    assert!(ours.len() > 50, "node_exporter exposed only {} series", ours.len());

    // Prometheus: every series of the job it stored.
    let body = get(&format!(
        "http://{prom_addr}/api/v1/series?match[]=%7Bjob%3D%22node_exporter%22%7D"
    ))
    .await
    .unwrap();
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let theirs: BTreeSet<LabelSet> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            s.as_object()
                .unwrap()
                .iter()
                .map(|(n, v)| (n.clone(), v.as_str().unwrap().to_owned()))
                .collect()
        })
        .collect();

    let only_ours: Vec<_> = ours.difference(&theirs).collect();
    let only_theirs: Vec<_> = theirs.difference(&ours).collect();
    assert!(
        only_ours.is_empty() && only_theirs.is_empty(),
        "{} series differ.\nonly nodetel: {only_ours:#?}\nonly Prometheus: {only_theirs:#?}",
        only_ours.len() + only_theirs.len()
    );
    // The rules did something, on both sides.
    assert!(ours.iter().any(|l| l.get("cpu_mode").is_some_and(|m| m == "m_idle")));
    assert!(!ours.iter().any(|l| l["__name__"].starts_with("go_")));
    assert!(
        ours.iter()
            .any(|l| l["__name__"] == "up" && l["instance"] == "ip-10-1-206-211" && l["rack"] == "r1")
    );
}
