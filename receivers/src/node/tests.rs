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

/// A config reading `root` with only the phase-one collectors, which the small trees cover.
fn config_for(root: &Path) -> NodeConfig {
    config_with(root, &["cpu", "meminfo", "loadavg"])
}

fn config_with(root: &Path, collectors: &[&str]) -> NodeConfig {
    let mut config = NodeConfig::default();
    config.path.rootfs = root.to_owned();
    config.instance = Some("testhost".to_owned());
    if !collectors.is_empty() {
        config.collectors.disable_defaults = true;
        config.collectors.enabled = collectors.iter().map(|c| c.to_string()).collect();
    }
    config
}

/// statvfs results that do not depend on the machine running the tests: every filesystem is
/// 1000 blocks of 4 KiB with a quarter free, and anything mounted at `*/shm` cannot be read.
fn fake_statvfs(path: &Path) -> std::io::Result<collectors::filesystem::FsStats> {
    if path.ends_with("shm") {
        return Err(std::io::Error::from(std::io::ErrorKind::PermissionDenied));
    }
    Ok(collectors::filesystem::FsStats {
        size: 4_096_000.0,
        free: 1_024_000.0,
        avail: 512_000.0,
        files: 1000.0,
        files_free: 900.0,
    })
}

fn collector_for(config: &NodeConfig) -> NodeCollector {
    let mut collector = NodeCollector::new(config, config.instance.as_deref().unwrap()).unwrap();
    let paths = config.path.resolve();
    collector.replace(
        "filesystem",
        Box::new(collectors::filesystem::FilesystemCollector::with_stat(
            &paths,
            regex::Regex::new(collectors::FILESYSTEM_MOUNT_POINTS_EXCLUDE).unwrap(),
            regex::Regex::new(collectors::FILESYSTEM_FS_TYPES_EXCLUDE).unwrap(),
            fake_statvfs,
        )),
    );
    collector
}

fn collect(config: &NodeConfig) -> Batch {
    let mut batch = Batch::new();
    collector_for(config).collect(TIMESTAMP_MS, &mut batch);
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
    // uname's machine is the architecture the tests run on.
    out.replace(&format!("machine=\"{}\"", std::env::consts::ARCH), "machine=\"ARCH\"")
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
    let mut collector = collector_for(&config);
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
    let config = config_with(dir.path(), &["cpu"]);
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
    let mut scraper = nodetel_core::blocking::BlockingScraper::new(NodeCollector::new(&config, "testhost").unwrap());
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

#[test]
fn this_machine_tree_matches_the_golden_output() {
    let batch = collect(&config_with(&tree("this-machine"), &[]));
    check_golden("this-machine", &render(&batch));
    let l = r#"instance="testhost",job="node_exporter""#;
    let success = |c: &str| {
        value(
            &batch,
            &format!(r#"node_scrape_collector_success{{collector="{c}",{l}}}"#),
        )
    };
    for r in super::collectors::REGISTRY {
        // The tree holds every file the default collectors read; this machine's kernel has no
        // scheduler statistics. amazonefa is opt-in.
        let want = match r.name {
            "amazonefa" => None,
            "schedstat" | "nvme" | "infiniband" => Some(0.0),
            _ => Some(1.0),
        };
        assert_eq!(success(r.name), want, "collector {}", r.name);
        assert_eq!(r.default_enabled, r.name != "amazonefa");
    }
}

#[test]
fn an_unchanged_full_node_reuses_every_label_set() {
    let config = config_with(&tree("this-machine"), &[]);
    let mut collector = collector_for(&config);
    let mut first = Batch::new();
    collector.collect(1, &mut first);
    let mut second = Batch::new();
    collector.collect(2, &mut second);
    assert_eq!(first.len(), second.len());
    for (a, b) in first.series.iter().zip(&second.series) {
        assert!(a.labels.ptr_eq(&b.labels), "{} was rebuilt", a.labels);
    }
}

#[test]
fn collectors_convert_units_and_filter_like_node_exporter() {
    let batch = collect(&config_with(&tree("this-machine"), &[]));
    let l = r#"instance="testhost",job="node_exporter""#;
    let v = |id: String| value(&batch, &id);
    // /proc/stat: 19900 forks in the file's `processes` line.
    let text = std::fs::read_to_string(tree("this-machine").join("proc/stat")).unwrap();
    let forks: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("processes "))
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(v(format!("node_forks_total{{{l}}}")), Some(forks));
    // diskstats: sectors are 512 bytes, milliseconds become seconds, loop and zram are excluded.
    let disk = std::fs::read_to_string(tree("this-machine").join("proc/diskstats")).unwrap();
    let vda: Vec<f64> = disk
        .lines()
        .find(|l| l.split_whitespace().nth(2) == Some("vda"))
        .unwrap()
        .split_whitespace()
        .skip(3)
        .map(|f| f.parse().unwrap())
        .collect();
    assert_eq!(
        v(format!(r#"node_disk_read_bytes_total{{device="vda",{l}}}"#)),
        Some(vda[2] * 512.0)
    );
    assert_eq!(
        v(format!(r#"node_disk_read_time_seconds_total{{device="vda",{l}}}"#)),
        Some(vda[3] / 1000.0)
    );
    assert!(
        batch
            .series
            .iter()
            .all(|s| !matches!(s.labels.get("device"), Some(d) if d.starts_with("loop") || d == "zram0"))
    );
    // vmstat and netstat keep only node_exporter's default fields.
    assert!(v(format!("node_vmstat_pgfault{{{l}}}")).is_some());
    assert!(v(format!("node_vmstat_nr_free_pages{{{l}}}")).is_none());
    assert!(v(format!("node_netstat_Tcp_InSegs{{{l}}}")).is_some());
    assert!(v(format!("node_netstat_Tcp_MaxConn{{{l}}}")).is_none());
    // sockstat: mem is in pages, mem_bytes in bytes.
    let pages = v(format!("node_sockstat_TCP_mem{{{l}}}")).unwrap();
    let page = rustix::param::page_size() as f64;
    assert_eq!(v(format!("node_sockstat_TCP_mem_bytes{{{l}}}")), Some(pages * page));
    // filesystem: excluded types and mount points are left out; a failing statvfs reports
    // device_error 1 and no sizes.
    assert_eq!(
        v(format!(
            r#"node_filesystem_avail_bytes{{device="/dev/vda",fstype="ext4",{l},mountpoint="/"}}"#
        )),
        Some(512_000.0)
    );
    assert!(batch.series.iter().all(|s| s.labels.get("fstype") != Some("cgroup")));
    // pressure: microseconds become seconds.
    let io = std::fs::read_to_string(tree("this-machine").join("proc/pressure/io")).unwrap();
    let total: f64 = io
        .lines()
        .next()
        .unwrap()
        .rsplit("total=")
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        v(format!("node_pressure_io_waiting_seconds_total{{{l}}}")),
        Some(total / 1e6)
    );
    // time: the round's timestamp, and UTC without /etc/localtime.
    assert_eq!(
        v(format!("node_time_seconds{{{l}}}")),
        Some(TIMESTAMP_MS as f64 / 1000.0)
    );
    assert_eq!(
        v(format!(r#"node_time_zone_offset_seconds{{{l},time_zone="UTC"}}"#)),
        Some(0.0)
    );
    let md = |name: &str| batch.metadata.iter().find(|m| &*m.family == name).unwrap().kind;
    assert_eq!(md("node_vmstat_pgfault"), MetricType::Unknown);
    assert_eq!(md("node_disk_io_now"), MetricType::Gauge);
    assert_eq!(md("node_network_receive_bytes_total"), MetricType::Counter);
}

#[test]
fn shm_that_cannot_be_read_reports_a_device_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("proc/1")).unwrap();
    std::fs::write(
        dir.path().join("proc/1/mountinfo"),
        concat!(
            "1 0 254:0 / / ro,relatime - ext4 /dev/vda rw\n",
            "2 1 0:23 / /mnt/shm rw - tmpfs tmpfs rw\n",
            "3 1 0:24 / /proc rw - proc proc rw\n",
        ),
    )
    .unwrap();
    let batch = collect(&config_with(dir.path(), &["filesystem"]));
    let l = r#"instance="testhost",job="node_exporter""#;
    let v = |id: String| value(&batch, &id);
    let shm = format!(r#"device="tmpfs",fstype="tmpfs",{l},mountpoint="/mnt/shm""#);
    assert_eq!(v(format!("node_filesystem_device_error{{{shm}}}")), Some(1.0));
    assert_eq!(v(format!("node_filesystem_size_bytes{{{shm}}}")), None);
    let root = format!(r#"device="/dev/vda",fstype="ext4",{l},mountpoint="/""#);
    assert_eq!(v(format!("node_filesystem_readonly{{{root}}}")), Some(1.0));
    assert_eq!(v(format!("node_filesystem_device_error{{{root}}}")), Some(0.0));
    assert!(batch.series.iter().all(|s| s.labels.get("mountpoint") != Some("/proc")));
}

#[test]
fn gpu_node_tree_matches_the_golden_output() {
    let batch = collect(&config_with(
        &tree("gpu-node"),
        &[
            "amazonefa",
            "cpu",
            "cpufreq",
            "diskstats",
            "infiniband",
            "nvme",
            "schedstat",
        ],
    ));
    check_golden("gpu-node", &render(&batch));
    let l = r#"instance="testhost",job="node_exporter""#;
    let v = |id: String| value(&batch, &id);
    // EFA counters keep the exporter's names (no _total) and come per device and port.
    assert_eq!(
        v(format!(r#"node_amazonefa_lifespan{{device="rdmap79s0",{l},port="1"}}"#)),
        Some(12.0)
    );
    assert_eq!(
        v(format!(
            r#"node_amazonefa_retrans_pkts{{device="rdmap80s0",{l},port="1"}}"#
        )),
        Some(12.0)
    );
    assert_eq!(
        v(format!(r#"node_amazonefa_info{{device="rdmap80s0",{l}}}"#)),
        Some(1.0)
    );
    assert!(
        batch
            .series
            .iter()
            .all(|s| s.labels.metric_name() != Some("node_amazonefa_alloc_pd_err"))
    );
    let md = batch
        .metadata
        .iter()
        .find(|m| &*m.family == "node_amazonefa_tx_bytes")
        .unwrap();
    assert_eq!(md.kind, MetricType::Counter);
    // Partitions are excluded; udev properties label node_disk_info.
    assert!(batch.series.iter().all(|s| s.labels.get("device") != Some("nvme0n1p1")));
    let info = batch
        .series
        .iter()
        .find(|s| s.labels.metric_name() == Some("node_disk_info") && s.labels.get("device") == Some("nvme0n1"))
        .unwrap();
    assert_eq!(info.labels.get("serial"), Some("vol0123456789abcdef0"));
    assert_eq!(info.labels.get("rotational"), Some("0"));
    assert_eq!(info.labels.get("major"), Some("259"));
    // Old-kernel lines without discard and flush columns yield only the 11 base counters.
    assert!(v(format!(r#"node_disk_io_now{{device="dm-0",{l}}}"#)).is_some());
    assert!(v(format!(r#"node_disk_discards_completed_total{{device="dm-0",{l}}}"#)).is_none());
    assert_eq!(
        v(format!(r#"node_disk_flush_requests_total{{device="nvme0n1",{l}}}"#)),
        Some(16470.0)
    );
}

#[test]
fn a_node_without_efa_reports_no_data_for_amazonefa() {
    let batch = collect(&config_with(&tree("basic"), &["amazonefa", "loadavg"]));
    let l = r#"instance="testhost",job="node_exporter""#;
    let success = |c: &str| {
        value(
            &batch,
            &format!(r#"node_scrape_collector_success{{collector="{c}",{l}}}"#),
        )
    };
    assert_eq!(success("amazonefa"), Some(0.0));
    assert_eq!(success("loadavg"), Some(1.0));
}

/// Counts WARN events, to check that a broken collector is not logged every round.
struct CountWarnings(Arc<std::sync::atomic::AtomicUsize>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for CountWarnings {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        if *event.metadata().level() == tracing::Level::WARN {
            self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

#[test]
fn a_failing_collector_is_logged_once_per_streak() {
    use tracing_subscriber::layer::SubscriberExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("proc")).unwrap();
    let config = config_with(dir.path(), &["loadavg"]);
    let warnings = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let subscriber = tracing_subscriber::registry().with(CountWarnings(warnings.clone()));
    let mut collector = collector_for(&config);
    let count = || warnings.load(std::sync::atomic::Ordering::Relaxed);
    tracing::subscriber::with_default(subscriber, || {
        for round in 0..3 {
            collector.collect(round, &mut Batch::new());
        }
        assert_eq!(count(), 1, "three failing rounds, one warning");
        std::fs::write(dir.path().join("proc/loadavg"), "0.1 0.2 0.3 1/2 3\n").unwrap();
        collector.collect(3, &mut Batch::new());
        std::fs::remove_file(dir.path().join("proc/loadavg")).unwrap();
        collector.collect(4, &mut Batch::new());
        collector.collect(5, &mut Batch::new());
        assert_eq!(count(), 2, "a new streak after a recovery is logged again");
    });
}

#[test]
fn configured_filters_replace_node_exporter_defaults() {
    let mut config = config_with(&tree("this-machine"), &["vmstat", "diskstats"]);
    config.collectors.vmstat.fields = "^nr_free_pages$".to_owned();
    config.collectors.diskstats.device_exclude = "^vda$".to_owned();
    let batch = collect(&config);
    let names: Vec<_> = batch.series.iter().filter_map(|s| s.labels.metric_name()).collect();
    assert!(names.contains(&"node_vmstat_nr_free_pages"));
    assert!(!names.contains(&"node_vmstat_pgfault"));
    let devices: std::collections::BTreeSet<_> = batch.series.iter().filter_map(|s| s.labels.get("device")).collect();
    assert!(devices.contains("loop0") && !devices.contains("vda"), "{devices:?}");
}

#[test]
fn textfiles_are_passed_through_and_bad_ones_skipped() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("backup.prom"),
        "# HELP backup_last_success_seconds Last good backup.\n# TYPE backup_last_success_seconds gauge\n\
         backup_last_success_seconds{target=\"home\"} 1.7e9\nraid_ok 1\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("broken.prom"),
        "good_before_error 1\nthis is { not valid\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("stamped.prom"), "with_timestamp 1 1700000000000\n").unwrap();
    std::fs::write(dir.path().join("ignored.txt"), "not_a_prom_file 1\n").unwrap();
    let mut config = config_with(&tree("basic"), &["textfile"]);
    config.collectors.textfile.directory = Some(dir.path().to_owned());
    let batch = collect(&config);
    let l = r#"instance="testhost",job="node_exporter""#;
    let v = |id: String| value(&batch, &id);
    assert_eq!(
        v(format!(r#"backup_last_success_seconds{{{l},target="home"}}"#)),
        Some(1.7e9)
    );
    assert_eq!(v(format!("raid_ok{{{l}}}")), Some(1.0));
    assert_eq!(
        v(format!("node_textfile_scrape_error{{{l}}}")),
        Some(1.0),
        "broken.prom is an error"
    );
    for absent in ["good_before_error", "with_timestamp", "not_a_prom_file"] {
        assert!(v(format!("{absent}{{{l}}}")).is_none(), "{absent} is not reported");
    }
    let file = dir.path().join("backup.prom").display().to_string();
    assert!(v(format!(r#"node_textfile_mtime_seconds{{file="{file}",{l}}}"#)).unwrap() > 1e9);
    let md = batch
        .metadata
        .iter()
        .find(|m| &*m.family == "backup_last_success_seconds")
        .unwrap();
    assert_eq!((&*md.help, md.kind), ("Last good backup.", MetricType::Gauge));

    std::fs::remove_file(dir.path().join("broken.prom")).unwrap();
    std::fs::remove_file(dir.path().join("stamped.prom")).unwrap();
    let batch = collect(&config);
    assert_eq!(value(&batch, &format!("node_textfile_scrape_error{{{l}}}")), Some(0.0));
}

#[test]
fn a_hung_network_filesystem_times_out_without_holding_up_the_round() {
    /// The first statvfs of /fsx hangs for 600 ms; later ones answer at once.
    fn hangs_on_nfs(path: &Path) -> std::io::Result<collectors::filesystem::FsStats> {
        static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        if path.ends_with("fsx") && CALLS.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
            std::thread::sleep(std::time::Duration::from_millis(600));
        }
        fake_statvfs(path)
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("proc/1")).unwrap();
    std::fs::write(
        dir.path().join("proc/1/mountinfo"),
        concat!(
            "1 0 254:0 / / rw - ext4 /dev/vda rw\n",
            "2 1 0:50 / /fsx rw - lustre 10.0.0.1@tcp:/fsx rw\n",
            "3 1 0:51 / /home rw - nfs4 server:/home rw\n",
        ),
    )
    .unwrap();
    let config = config_with(dir.path(), &["filesystem"]);
    let mut collector = NodeCollector::new(&config, "testhost").unwrap();
    collector.replace(
        "filesystem",
        Box::new(collectors::filesystem::FilesystemCollector::with_stat_and_timeout(
            &config.path.resolve(),
            regex::Regex::new(collectors::FILESYSTEM_MOUNT_POINTS_EXCLUDE).unwrap(),
            regex::Regex::new(collectors::FILESYSTEM_FS_TYPES_EXCLUDE).unwrap(),
            hangs_on_nfs,
            std::time::Duration::from_millis(100),
        )),
    );
    let l = r#"instance="testhost",job="node_exporter""#;
    let error_of = |batch: &Batch, mp: &str, dev: &str, fs: &str| {
        value(
            batch,
            &format!(r#"node_filesystem_device_error{{device="{dev}",fstype="{fs}",{l},mountpoint="{mp}"}}"#),
        )
    };
    let started = std::time::Instant::now();
    let mut first = Batch::new();
    collector.collect(1, &mut first);
    assert!(
        started.elapsed() < std::time::Duration::from_millis(500),
        "the round waited for the hung mount"
    );
    assert_eq!(error_of(&first, "/fsx", "10.0.0.1@tcp:/fsx", "lustre"), Some(1.0));
    assert_eq!(error_of(&first, "/home", "server:/home", "nfs4"), Some(0.0));
    assert_eq!(error_of(&first, "/", "/dev/vda", "ext4"), Some(0.0));
    // While the call hangs, the mount is not tried again; once it returns, it is measured.
    let mut second = Batch::new();
    collector.collect(2, &mut second);
    assert_eq!(error_of(&second, "/fsx", "10.0.0.1@tcp:/fsx", "lustre"), Some(1.0));
    std::thread::sleep(std::time::Duration::from_millis(700));
    let mut third = Batch::new();
    collector.collect(3, &mut third);
    assert_eq!(error_of(&third, "/fsx", "10.0.0.1@tcp:/fsx", "lustre"), Some(0.0));
}
