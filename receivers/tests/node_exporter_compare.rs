//! Runs the real node_exporter next to the `node` receiver on this machine and checks that
//! every series node_exporter emits for the collectors nodetel implements is emitted by nodetel
//! too, with the same name and labels, and that stable values agree.
//!
//! node_exporter is started on 127.0.0.1 with only those collectors and upstream 1.9.1's
//! default filters (the Debian package patches some defaults). Deliberate differences:
//! - node_exporter before 1.9 emits every `/proc/meminfo` line; 1.9 (and nodetel) only the 49
//!   fields of its meminfo struct, so other `node_memory_*` names are not required.
//! - Labels with empty values are not compared: Prometheus drops them at ingestion, and nodetel
//!   never creates them. Labels nodetel adds that older releases lack (`node_disk_info`'s
//!   `rotational`, `node_network_info`'s `adminstate`) are allowed.
//! - `timex` needs adjtimex(2), which safe Rust cannot call here; it is not implemented.
//!
//! The test prints a reason and passes when node_exporter is not installed (install the
//! `prometheus-node-exporter` Debian package, listed in scripts/deps/apt.txt).

// A test: a failed unwrap is a failed check with its location.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nodetel_core::Batch;
use nodetel_receivers::node::{NodeCollector, NodeConfig};

/// The collectors both sides run (node_exporter names).
const COLLECTORS: &[&str] = &[
    "arp",
    "conntrack",
    "cpu",
    "cpufreq",
    "diskstats",
    "edac",
    "entropy",
    "filefd",
    "filesystem",
    "infiniband",
    "loadavg",
    "meminfo",
    "netclass",
    "netdev",
    "netstat",
    "nvme",
    "os",
    "pressure",
    "schedstat",
    "selinux",
    "sockstat",
    "softnet",
    "stat",
    "textfile",
    "thermal_zone",
    "time",
    "udp_queues",
    "uname",
    "vmstat",
];

/// The meminfo fields node_exporter 1.9 emits (its procfs struct).
const MEMINFO_1_9: &[&str] = &[
    "Active_bytes",
    "Active_anon_bytes",
    "Active_file_bytes",
    "AnonHugePages_bytes",
    "AnonPages_bytes",
    "Bounce_bytes",
    "Buffers_bytes",
    "Cached_bytes",
    "CmaFree_bytes",
    "CmaTotal_bytes",
    "CommitLimit_bytes",
    "Committed_AS_bytes",
    "DirectMap1G_bytes",
    "DirectMap2M_bytes",
    "DirectMap4k_bytes",
    "Dirty_bytes",
    "HardwareCorrupted_bytes",
    "Hugepagesize_bytes",
    "Inactive_bytes",
    "Inactive_anon_bytes",
    "Inactive_file_bytes",
    "KernelStack_bytes",
    "Mapped_bytes",
    "MemAvailable_bytes",
    "MemFree_bytes",
    "MemTotal_bytes",
    "Mlocked_bytes",
    "NFS_Unstable_bytes",
    "PageTables_bytes",
    "Percpu_bytes",
    "SReclaimable_bytes",
    "SUnreclaim_bytes",
    "Shmem_bytes",
    "ShmemHugePages_bytes",
    "ShmemPmdMapped_bytes",
    "Slab_bytes",
    "SwapCached_bytes",
    "SwapFree_bytes",
    "SwapTotal_bytes",
    "Unevictable_bytes",
    "VmallocChunk_bytes",
    "VmallocTotal_bytes",
    "VmallocUsed_bytes",
    "Writeback_bytes",
    "WritebackTmp_bytes",
    "HugePages_Free",
    "HugePages_Rsvd",
    "HugePages_Surp",
    "HugePages_Total",
];

/// A series identity without `job`/`instance` and without empty labels: name and sorted pairs.
type SeriesId = (String, BTreeMap<String, String>);

fn find_binary() -> Option<&'static str> {
    ["prometheus-node-exporter", "node_exporter"].into_iter().find(|name| {
        Command::new(name)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok()
    })
}

struct Exporter(Child);

impl Drop for Exporter {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn get_metrics(port: u16) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(stream, "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.0 200")
        .then(|| body.to_owned())
        .or_else(|| head.starts_with("HTTP/1.1 200").then(|| body.to_owned()))
}

/// Parses text exposition lines into series ids and values (enough for node_exporter output:
/// no escapes other than `\"` and `\\` in label values).
fn parse_exposition(text: &str) -> BTreeMap<SeriesId, f64> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap();
        let value: f64 = match value {
            "NaN" => f64::NAN,
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v.parse().unwrap(),
        };
        let (name, labels) = match series.split_once('{') {
            Some((n, rest)) => (n, rest.strip_suffix('}').unwrap()),
            None => (series, ""),
        };
        let mut map = BTreeMap::new();
        let mut rest = labels;
        while let Some((key, after)) = rest.split_once("=\"") {
            let mut value = String::new();
            let mut chars = after.char_indices();
            let mut end = after.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, n)) = chars.next() {
                            value.push(if n == 'n' { '\n' } else { n });
                        }
                    }
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    c => value.push(c),
                }
            }
            if !value.is_empty() {
                map.insert(key.trim_start_matches(',').to_owned(), value);
            }
            rest = &after[end..];
        }
        map.remove("job");
        map.remove("instance");
        out.insert((name.to_owned(), map), value);
    }
    out
}

/// `# HELP` and `# TYPE` per family name.
fn parse_metadata(text: &str) -> BTreeMap<String, (String, String)> {
    let mut out: BTreeMap<String, (String, String)> = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
            out.entry(name.to_owned()).or_default().0 = help.to_owned();
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, ""));
            out.entry(name.to_owned()).or_default().1 = kind.to_owned();
        }
    }
    out
}

fn nodetel_metadata(batch: &Batch) -> BTreeMap<String, (String, String)> {
    batch
        .metadata
        .iter()
        .map(|m| (m.family.to_string(), (m.help.to_string(), m.kind.as_str().to_owned())))
        .collect()
}

fn nodetel_batch() -> Batch {
    let mut config = NodeConfig::default();
    config.collectors.disable_defaults = true;
    config.collectors.enabled = COLLECTORS.iter().map(|c| c.to_string()).collect();
    let mut collector = NodeCollector::new(&config, "compare").unwrap();
    let mut batch = Batch::new();
    collector.collect(nodetel_core::sample::now_ms(), &mut batch);
    batch
}

fn nodetel_series_of(batch: &Batch) -> BTreeMap<SeriesId, f64> {
    let mut text = String::new();
    for s in &batch.series {
        nodetel_core::exposition::write_sample(&mut text, &s.labels, s.samples[0].value, None);
    }
    parse_exposition(&text)
}

/// Whether node_exporter's series `theirs` is matched by one of ours: same name, and each of
/// its labels present with the same value (ours may carry more).
fn matched<'a>(theirs: &SeriesId, ours: &'a BTreeMap<SeriesId, f64>) -> Option<(&'a SeriesId, f64)> {
    ours.iter()
        .filter(|((name, _), _)| *name == theirs.0)
        .find(|((_, labels), _)| theirs.1.iter().all(|(k, v)| labels.get(k) == Some(v)))
        .map(|(id, v)| (id, *v))
}

#[test]
fn nodetel_emits_what_node_exporter_emits_for_the_same_collectors() {
    let Some(binary) = find_binary() else {
        println!("SKIPPED: node_exporter is not installed; install the prometheus-node-exporter package");
        return;
    };
    let port = free_port();
    let mut args = vec![
        format!("--web.listen-address=127.0.0.1:{port}"),
        "--collector.disable-defaults".to_owned(),
        // Upstream 1.9.1 defaults, where the Debian package differs.
        "--collector.netdev.device-exclude=^$".to_owned(),
        r"--collector.filesystem.mount-points-exclude=^/(dev|proc|run/credentials/.+|sys|var/lib/docker/.+|var/lib/containers/storage/.+)($|/)".to_owned(),
        r"--collector.diskstats.device-exclude=^(z?ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\d+n\d+p)\d+$".to_owned(),
        "--collector.netstat.fields=^(.*_(InErrors|InErrs)|Ip_Forwarding|Ip(6|Ext)_(InOctets|OutOctets)|Icmp6?_(InMsgs|OutMsgs)|TcpExt_(Listen.*|Syncookies.*|TCPSynRetrans|TCPTimeouts|TCPOFOQueue|TCPRcvQDrop)|Tcp_(ActiveOpens|InSegs|OutSegs|OutRsts|PassiveOpens|RetransSegs|CurrEstab)|Udp6?_(InDatagrams|OutDatagrams|NoPorts|RcvbufErrors|SndbufErrors))$".to_owned(),
    ];
    args.extend(COLLECTORS.iter().map(|c| format!("--collector.{c}")));
    let child = Command::new(binary)
        .args(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let _exporter = Exporter(child);
    let deadline = Instant::now() + Duration::from_secs(15);
    let body = loop {
        if let Some(body) = get_metrics(port) {
            break body;
        }
        assert!(
            Instant::now() < deadline,
            "node_exporter did not answer on 127.0.0.1:{port}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let batch = nodetel_batch();
    let ours = nodetel_series_of(&batch);
    let theirs = parse_exposition(&body);
    let our_metadata = nodetel_metadata(&batch);
    let mut metadata_differences = Vec::new();
    for (family, (help, kind)) in parse_metadata(&body) {
        if let Some((our_help, our_kind)) = our_metadata.get(&family)
            && (our_help != &help || our_kind != &kind)
        {
            metadata_differences.push(format!(
                "{family}: node_exporter {kind} {help:?}, nodetel {our_kind} {our_help:?}"
            ));
        }
    }
    assert!(
        metadata_differences.is_empty(),
        "HELP/TYPE differ:\n{}",
        metadata_differences.join("\n")
    );

    let mut missing = BTreeSet::new();
    let mut compared = 0;
    for (id, their_value) in &theirs {
        let name = id.0.as_str();
        if !name.starts_with("node_") || name == "node_exporter_build_info" || name.starts_with("node_scrape_") {
            continue;
        }
        if let Some(field) = name.strip_prefix("node_memory_")
            && !MEMINFO_1_9.contains(&field)
        {
            continue;
        }
        if name.starts_with("node_timex_") {
            continue;
        }
        let Some((_, our_value)) = matched(id, &ours) else {
            missing.insert(format!("{name}{:?}", id.1));
            continue;
        };
        compared += 1;
        // Values that do not move between the two reads must agree; counters may only grow.
        let stable = name == "node_memory_MemTotal_bytes"
            || name == "node_boot_time_seconds"
            || name.ends_with("_info")
            || name == "node_network_mtu_bytes"
            || name == "node_filefd_maximum"
            || name == "node_filesystem_size_bytes"
            || name == "node_entropy_pool_size_bits"
            || name == "node_os_version";
        if stable {
            assert!(
                (our_value - their_value).abs() <= 1.0,
                "{name}{:?}: nodetel {our_value}, node_exporter {their_value}",
                id.1
            );
        }
        if name == "node_cpu_seconds_total" {
            assert!(
                (our_value - their_value).abs() < 30.0,
                "{name}{:?}: nodetel {our_value}, node_exporter {their_value}",
                id.1
            );
        }
    }
    println!("compared {compared} node_exporter series with nodetel's");
    assert!(
        compared > 100,
        "only {compared} series compared; node_exporter output:\n{body}"
    );
    assert!(
        missing.is_empty(),
        "node_exporter emits {} series nodetel does not:\n{}",
        missing.len(),
        missing.into_iter().collect::<Vec<_>>().join("\n")
    );
}
