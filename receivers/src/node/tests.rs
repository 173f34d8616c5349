//! Tests of whole rounds over testdata trees: golden exposition output, failing collectors,
//! label-set caching and the async scraper.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use nodetel_core::component::Scraper;
use nodetel_core::config::{BuildContext, ReceiverConfig};
use nodetel_core::exposition::TextWriter;
use nodetel_core::{Batch, ComponentId, MetricType};

use super::*;

const TIMESTAMP_MS: i64 = 1_764_371_234_000;

fn tree(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/node").join(name)
}

fn config_for(root: &Path) -> NodeConfig {
    let mut config = NodeConfig::default();
    config.path.rootfs = root.to_owned();
    config.instance = Some("testhost".to_owned());
    config
}

fn collect(config: &NodeConfig) -> Batch {
    let mut collector = NodeCollector::new(config, config.instance.as_deref().unwrap()).unwrap();
    let mut batch = Batch::new();
    collector.collect(TIMESTAMP_MS, &mut batch);
    batch
}

/// The batch in text format, sorted, without the (timing-dependent) duration series.
fn render(batch: &Batch) -> String {
    let mut writer = TextWriter::new();
    for md in &batch.metadata {
        writer.add_metadata(md);
    }
    let mut series: Vec<_> = batch
        .series
        .iter()
        .filter(|s| s.labels.metric_name() != Some("node_scrape_collector_duration_seconds"))
        .collect();
    series.sort_by(|a, b| a.labels.cmp(&b.labels));
    let mut out = String::new();
    for s in series {
        for sample in &s.samples {
            writer.write(&mut out, &s.labels, sample.value, None);
        }
    }
    out
}

/// Compares with `testdata/node/<tree>/expected.prom`; `NODETEL_UPDATE_GOLDEN=1` rewrites it.
#[track_caller]
fn check_golden(tree_name: &str, got: &str) {
    let path = tree(tree_name).join("expected.prom");
    if std::env::var_os("NODETEL_UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, got).unwrap();
    }
    let want = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        got == want,
        "output differs from {}; rerun with NODETEL_UPDATE_GOLDEN=1 and review the diff\n--- got ---\n{got}",
        path.display()
    );
}

fn value(batch: &Batch, series_id: &str) -> Option<f64> {
    batch
        .series
        .iter()
        .find(|s| s.labels.to_string() == series_id)
        .map(|s| s.samples[0].value)
}

#[test]
fn basic_tree_matches_the_golden_output() {
    let batch = collect(&config_for(&tree("basic")));
    check_golden("basic", &render(&batch));
}

#[test]
fn values_are_converted_as_node_exporter_does() {
    let batch = collect(&config_for(&tree("basic")));
    let v = |id: &str| value(&batch, id);
    let l = r#"instance="testhost",job="node_exporter""#;
    // /proc/stat counts USER_HZ ticks: 4081 ticks are 40.81 s.
    assert_eq!(
        v(&format!(r#"node_cpu_seconds_total{{cpu="0",{l},mode="user"}}"#)),
        Some(40.81)
    );
    assert_eq!(
        v(&format!(r#"node_cpu_seconds_total{{cpu="1",{l},mode="steal"}}"#)),
        Some(0.13)
    );
    assert_eq!(
        v(&format!(r#"node_cpu_guest_seconds_total{{cpu="0",{l},mode="nice"}}"#)),
        Some(0.01)
    );
    // kB lines are bytes; HugePages counts are plain numbers; Active(anon) loses its parentheses.
    assert_eq!(
        v(&format!("node_memory_MemTotal_bytes{{{l}}}")),
        Some(24_684_084.0 * 1024.0)
    );
    assert_eq!(
        v(&format!("node_memory_Active_anon_bytes{{{l}}}")),
        Some(1552.0 * 1024.0)
    );
    assert_eq!(v(&format!("node_memory_HugePages_Total{{{l}}}")), Some(4.0));
    assert_eq!(v(&format!("node_load15{{{l}}}")), Some(0.13));
    // node_exporter 1.9 has no Zswap field and no series for the total `cpu` line.
    assert_eq!(v(&format!("node_memory_Zswap_bytes{{{l}}}")), None);
    assert!(batch.series.iter().all(|s| s.labels.get("cpu") != Some("")));
    let memory = batch
        .series
        .iter()
        .filter(|s| s.labels.metric_name().unwrap().starts_with("node_memory_"));
    assert_eq!(
        memory.count(),
        49,
        "the 49 fields node_exporter 1.9 knows, all present in the file"
    );
    for s in &batch.series {
        assert_eq!(s.samples[0].timestamp_ms, TIMESTAMP_MS);
        assert_eq!(s.labels.get("job"), Some("node_exporter"));
        assert_eq!(s.labels.get("instance"), Some("testhost"));
    }
    let md = batch
        .metadata
        .iter()
        .find(|m| &*m.family == "node_cpu_seconds_total")
        .unwrap();
    assert_eq!(md.kind, MetricType::Counter);
    assert_eq!(&*md.help, "Seconds the CPUs spent in each mode.");
}

#[test]
fn a_missing_file_fails_only_its_collector() {
    let batch = collect(&config_for(&tree("missing")));
    check_golden("missing", &render(&batch));
    let l = r#"instance="testhost",job="node_exporter""#;
    let success = |c: &str| {
        value(
            &batch,
            &format!(r#"node_scrape_collector_success{{collector="{c}",{l}}}"#),
        )
    };
    assert_eq!(success("loadavg"), Some(0.0));
    assert_eq!(success("cpu"), Some(1.0));
    assert_eq!(success("meminfo"), Some(1.0));
    assert!(value(&batch, &format!("node_load1{{{l}}}")).is_none());
    assert!(value(&batch, &format!("node_memory_MemFree_bytes{{{l}}}")).is_some());
}

#[test]
fn a_malformed_file_fails_its_collector_without_partial_output() {
    let batch = collect(&config_for(&tree("malformed")));
    check_golden("malformed", &render(&batch));
    let l = r#"instance="testhost",job="node_exporter""#;
    let success = |c: &str| {
        value(
            &batch,
            &format!(r#"node_scrape_collector_success{{collector="{c}",{l}}}"#),
        )
    };
    assert_eq!(success("meminfo"), Some(0.0));
    assert_eq!(success("cpu"), Some(1.0));
    // MemTotal precedes the bad line, but a failed collector reports nothing of its own.
    assert!(value(&batch, &format!("node_memory_MemTotal_bytes{{{l}}}")).is_none());
    assert!(!batch.metadata.iter().any(|m| m.family.starts_with("node_memory_")));
}

#[test]
fn an_unchanged_node_reuses_every_label_set() {
    let config = config_for(&tree("basic"));
    let mut collector = NodeCollector::new(&config, "testhost").unwrap();
    let mut first = Batch::new();
    collector.collect(1, &mut first);
    let mut second = Batch::new();
    collector.collect(2, &mut second);
    assert_eq!(first.len(), second.len());
    for (a, b) in first.series.iter().zip(&second.series) {
        assert!(a.labels.ptr_eq(&b.labels), "{} was rebuilt", a.labels);
    }
    for (a, b) in first.metadata.iter().zip(&second.metadata) {
        assert!(Arc::ptr_eq(a, b), "metadata of {} was rebuilt", a.family);
    }
}

#[test]
fn cpu_counters_never_go_backwards_but_reset_on_hotplug() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("proc")).unwrap();
    let stat = dir.path().join("proc/stat");
    let mut config = config_for(dir.path());
    config.collectors.disable_defaults = true;
    config.collectors.enabled = vec!["cpu".to_owned()];
    let mut collector = NodeCollector::new(&config, "testhost").unwrap();
    let mut round = |text: &str| {
        std::fs::write(&stat, text).unwrap();
        let mut batch = Batch::new();
        collector.collect(1, &mut batch);
        let get = |mode: &str| {
            value(
                &batch,
                &format!(r#"node_cpu_seconds_total{{cpu="0",instance="testhost",job="node_exporter",mode="{mode}"}}"#),
            )
            .unwrap()
        };
        (get("user"), get("idle"))
    };
    assert_eq!(round("cpu0 500 0 0 1000 0 0 0 0\n"), (5.0, 10.0));
    // user went back by 1 tick: keep 5.0; idle moved forward.
    assert_eq!(round("cpu0 499 0 0 1100 0 0 0 0\n"), (5.0, 11.0));
    // idle fell by 10 s: a replugged CPU starts again from its new values.
    assert_eq!(round("cpu0 100 0 0 100 0 0 0 0\n"), (1.0, 1.0));
}

#[tokio::test]
async fn the_scraper_collects_off_the_runtime_and_build_accepts_defaults() {
    let config = config_for(&tree("basic"));
    let mut scraper = NodeScraper::new(NodeCollector::new(&config, "testhost").unwrap());
    let mut out = Batch::new();
    scraper.scrape(TIMESTAMP_MS, &mut out).await.unwrap();
    assert_eq!(out.len(), collect(&config).len());
    assert!(!out.metadata.is_empty());

    let cx = BuildContext {
        id: ComponentId::parse("node").unwrap(),
        hostname: "builthost".to_owned(),
        registry: Arc::new(nodetel_core::telemetry::Registry::new()),
        extensions: Arc::default(),
    };
    let mut receiver = config.build(&cx).unwrap();
    let mut once = Batch::new();
    assert!(receiver.collect_once(&mut once).await.unwrap());
    assert!(once.series.iter().all(|s| s.labels.get("instance") == Some("testhost")));
    let mut unnamed = config.clone();
    unnamed.instance = None;
    let mut receiver = unnamed.build(&cx).unwrap();
    let mut once = Batch::new();
    receiver.collect_once(&mut once).await.unwrap();
    assert!(
        once.series
            .iter()
            .all(|s| s.labels.get("instance") == Some("builthost"))
    );
}
