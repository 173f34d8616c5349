//! Faults that need the real binary: SIGKILL at random points under load, twenty times, with
//! the disk queue on and the endpoint down part of the time. Nothing accepted may be lost.
//!
//! "Accepted" is defined from the outside, without trusting the process: a sample is accepted
//! when the endpoint acknowledged it (answered 2xx to a request holding it) or when it sits in a
//! complete, CRC-valid record of a disk queue segment file at the moment of a kill. Samples only
//! in memory at a kill are not accepted; they are counted, and must be recent relative to the
//! kill (at most the batch deadline plus a scrape and a send).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::*;

/// Series the target exposes; each is a counter equal to the number of scrapes so far.
const SERIES: usize = 100;

/// xorshift64*, seeded from the clock unless `NODETEL_FAULTS_SEED` is set (printed either way).
struct Rng(u64);

impl Rng {
    fn new() -> Rng {
        let seed = std::env::var("NODETEL_FAULTS_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
                    | 1
            });
        eprintln!("sigkill test seed: NODETEL_FAULTS_SEED={seed}");
        Rng(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo)
    }
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// The requests held by complete, CRC-valid records of the queue's segment files (the on-disk
/// format documented in `exporters/src/remote_write/disk_queue.rs`), read the way a restart
/// reads them: a torn or corrupt record ends its segment.
fn persisted_requests(dir: &Path) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        if !e.file_name().to_string_lossy().ends_with(".seg") {
            continue;
        }
        let data = std::fs::read(e.path()).unwrap_or_default();
        let mut pos = 0;
        while pos + 8 <= data.len() {
            let len = u32::from_le_bytes(data[pos..pos + 4].try_into().unwrap()) as usize;
            let crc = u32::from_le_bytes(data[pos + 4..pos + 8].try_into().unwrap());
            let Some(payload) = data.get(pos + 8..pos + 8 + len) else {
                break;
            };
            if len < 8 || crc32(payload) != crc {
                break;
            }
            out.push(payload[8..].to_vec());
            pos += 8 + len;
        }
    }
    out
}

/// (series, value) of every `test_scrapes` sample in a remote write body.
fn samples_of(body: &[u8]) -> Vec<(u32, u64)> {
    decode_write_request(body)
        .into_iter()
        .filter(|s| s.name() == "test_scrapes")
        .flat_map(|s| {
            let i: u32 = s.label("i").and_then(|v| v.parse().ok()).unwrap_or(u32::MAX);
            s.samples.into_iter().map(move |(v, _)| (i, v as u64))
        })
        .collect()
}

#[test]
fn sigkill_twenty_times_under_load_loses_nothing_accepted() {
    let mut rng = Rng::new();
    // The target: scrape N answers N for every series, and remembers when it was scraped.
    let scrapes = Arc::new(AtomicU64::new(0));
    let scraped_at: Arc<Mutex<Vec<Instant>>> = Arc::new(Mutex::new(Vec::new()));
    let (counter, times) = (scrapes.clone(), scraped_at.clone());
    let target = HttpServer::start(0, move |_, _| {
        let mut t = times.lock().unwrap();
        let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
        t.push(Instant::now());
        let mut body = String::from("# TYPE test_scrapes counter\n");
        for i in 0..SERIES {
            body.push_str(&format!("test_scrapes{{i=\"{i}\"}} {n}\n"));
        }
        (200, body)
    });
    // The endpoint: up or down (503) as the test says.
    let up = Arc::new(AtomicBool::new(false));
    let is_up = up.clone();
    let sink = HttpServer::start(0, move |_, _| {
        if is_up.load(Ordering::SeqCst) {
            (200, String::new())
        } else {
            (503, "down".into())
        }
    });
    let (own, health) = (free_port(), free_port());
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.yaml");
    let queue = dir.path().join("queue");
    std::fs::write(
        &config,
        format!(
            "receivers:\n  prometheus:\n    config:\n      scrape_configs:\n        - job_name: counter\n          \
             scrape_interval: 50ms\n          scrape_timeout: 40ms\n          static_configs: [{{targets: [\"{target}\"]}}]\n\
             exporters:\n  prometheusremotewrite:\n    endpoint: http://{sink}/api/v1/write\n    timeout: 500ms\n    \
             batch_send_deadline: 100ms\n    retry_on_failure: {{initial_interval: 20ms, max_interval: 200ms}}\n    \
             queue: {{directory: {queue}}}\n\
             extensions:\n  health_check: {{endpoint: \"127.0.0.1:{health}\"}}\n\
             service:\n  extensions: [health_check]\n  telemetry: {{metrics: {{address: \"127.0.0.1:{own}\"}}}}\n  \
             pipelines:\n    metrics: {{receivers: [prometheus], exporters: [prometheusremotewrite]}}\n",
            target = target.addr,
            sink = sink.addr,
            queue = queue.display(),
        ),
    )
    .unwrap();

    let mut persisted: BTreeSet<(u32, u64)> = BTreeSet::new();
    let mut kills: Vec<Instant> = Vec::new();
    let mut up_cycles = 0;
    for _ in 0..20 {
        let starts_up = rng.next().is_multiple_of(2);
        up_cycles += usize::from(starts_up);
        up.store(starts_up, Ordering::SeqCst);
        let mut proc = Running::spawn(nodetel().arg("run").arg("--config").arg(&config));
        let life = Duration::from_millis(rng.range(300, 900));
        // Flip the endpoint once at a random point of the run.
        let flip = Duration::from_millis(rng.range(0, life.as_millis() as u64));
        std::thread::sleep(flip);
        up.store(!starts_up, Ordering::SeqCst);
        std::thread::sleep(life - flip);
        proc.kill();
        kills.push(Instant::now());
        for body in persisted_requests(&queue) {
            persisted.extend(samples_of(&body));
        }
    }

    // The endpoint is back for good; one more run replays the queue.
    up.store(true, Ordering::SeqCst);
    let last = Running::spawn(nodetel().arg("run").arg("--config").arg(&config));
    let delivered = || {
        let mut copies: BTreeMap<(u32, u64), u32> = BTreeMap::new();
        for r in sink.requests().iter().filter(|r| r.status == 200) {
            for s in samples_of(&r.body) {
                *copies.entry(s).or_default() += 1;
            }
        }
        copies
    };
    let (missing, _) = eventually(Duration::from_secs(60), "every accepted sample at the endpoint", || {
        let got = delivered();
        let missing: Vec<(u32, u64)> = persisted.iter().filter(|s| !got.contains_key(s)).copied().collect();
        missing.is_empty().then_some(missing)
    });
    assert!(missing.is_empty());
    // Let the last run deliver what it scraped itself, then read its own accounting.
    let settled = scrapes.load(Ordering::SeqCst);
    let (metrics, _) = eventually(Duration::from_secs(20), "the last run's scrapes delivered", || {
        let got = delivered();
        let all = (0..SERIES as u32).all(|i| got.contains_key(&(i, settled)));
        let m = http_get(&format!("127.0.0.1:{own}"), "/metrics").map(|(_, b)| b)?;
        (all && m.contains("nodetel_exporter_disk_queue_requests")).then_some(m)
    });
    let (out, _) = last.terminate();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for line in metrics
        .lines()
        .filter(|l| l.starts_with("nodetel_exporter_dropped_samples_total{"))
    {
        assert!(line.ends_with(" 0"), "the last run dropped nothing: {line}");
    }

    assert!(
        !persisted.is_empty(),
        "the endpoint was down long enough for the disk queue to be used"
    );
    // Accounting over every (series, scrape).
    let got = delivered();
    let acknowledged: BTreeSet<(u32, u64)> = got.keys().copied().collect();
    let accepted: BTreeSet<(u32, u64)> = persisted.union(&acknowledged).copied().collect();
    assert!(
        got.keys()
            .all(|(i, n)| (*i as usize) < SERIES && *n >= 1 && *n <= scrapes.load(Ordering::SeqCst))
    );
    let lost_scrapes: BTreeSet<u64> = (1..=settled)
        .filter(|n| (0..SERIES as u32).any(|i| !accepted.contains(&(i, *n))))
        .collect();
    // A scrape that was never accepted was in memory at a kill: it was scraped shortly before one.
    let times = scraped_at.lock().unwrap().clone();
    let window = Duration::from_millis(1500);
    for n in &lost_scrapes {
        let at = times[(*n - 1) as usize];
        let near_kill = kills.iter().any(|k| *k >= at && k.duration_since(at) <= window);
        assert!(
            near_kill,
            "scrape {n} was lost but not taken within {window:?} before a kill"
        );
    }
    let duplicates: u64 = got.values().map(|c| u64::from(c - 1)).sum();
    eprintln!(
        "sigkill: 20 kills ({up_cycles} starting up), {settled} scrapes x {SERIES} series; accepted {} \
         (persisted {}, acknowledged {}), all delivered; {} scrapes lost in memory at kills; {duplicates} duplicate samples",
        accepted.len(),
        persisted.len(),
        acknowledged.len(),
        lost_scrapes.len()
    );
}
