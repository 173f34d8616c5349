//! Remote write request cost per sample: protobuf encode + snappy + SHA-256 (the SigV4 payload
//! hash) of requests built from cached label sets, for the hand-written encoder and for the
//! prost message path; also prints the bytes per sample on the wire.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use nodetel_core::batch::Batch;
use nodetel_core::labels::{Labels, METRIC_NAME};
use nodetel_core::sample::Sample;
use nodetel_exporters::remote_write::encode::{Compressor, RequestEncoder};
use nodetel_exporters::remote_write::proto::WriteRequest;
use prost::Message;
use sha2::{Digest, Sha256};

/// Samples per request (the default `max_samples_per_send`).
const PER_REQUEST: usize = 2000;

/// A node-sized mix: dcgm-exporter series on 8 GPUs plus node_exporter CPU series, with the
/// labels HyperPod scrape jobs and the Slurm enrichment add.
fn label_sets() -> Vec<Labels> {
    let mut out = Vec::new();
    let fields = [
        "DCGM_FI_DEV_GPU_UTIL",
        "DCGM_FI_DEV_MEM_COPY_UTIL",
        "DCGM_FI_DEV_GPU_TEMP",
        "DCGM_FI_DEV_POWER_USAGE",
        "DCGM_FI_DEV_FB_USED",
        "DCGM_FI_DEV_FB_FREE",
        "DCGM_FI_PROF_GR_ENGINE_ACTIVE",
        "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE",
        "DCGM_FI_DEV_SM_CLOCK",
        "DCGM_FI_DEV_XID_ERRORS",
    ];
    for f in fields {
        for gpu in 0..8 {
            let g = gpu.to_string();
            let uuid = format!("GPU-9b2c6c0e-{g:0>4}-4d2e-8a51-0a5f3c1f0e7d");
            let dev = format!("nvidia{g}");
            let pci = format!("00000000:{g:0>2}:00.0");
            out.push(
                Labels::from_pairs([
                    (METRIC_NAME, f),
                    ("gpu", g.as_str()),
                    ("UUID", uuid.as_str()),
                    ("device", dev.as_str()),
                    ("modelName", "NVIDIA H100 80GB HBM3"),
                    ("Hostname", "ip-10-1-206-211"),
                    ("pci_bus_id", pci.as_str()),
                    ("job", "dcgm_exporter"),
                    ("instance", "ip-10-1-206-211"),
                    ("slurm_job_id", "123456"),
                    ("rank", g.as_str()),
                ])
                .unwrap_or_else(|e| panic!("bench labels: {e}")),
            );
        }
    }
    let modes = ["idle", "user", "system", "iowait", "irq", "softirq", "steal", "nice"];
    for cpu in 0..192 {
        let c = cpu.to_string();
        for mode in modes {
            out.push(
                Labels::from_pairs([
                    (METRIC_NAME, "node_cpu_seconds_total"),
                    ("cpu", c.as_str()),
                    ("mode", mode),
                    ("job", "node_exporter"),
                    ("instance", "ip-10-1-206-211"),
                ])
                .unwrap_or_else(|e| panic!("bench labels: {e}")),
            );
        }
    }
    out
}

/// One request's worth of samples: every set once per round, values drifting like counters.
fn batch(sets: &[Labels]) -> Batch {
    let mut b = Batch::with_capacity(PER_REQUEST);
    for i in 0..PER_REQUEST {
        let ts = 1_764_000_000_000 + (i / sets.len()) as i64 * 15_000;
        b.push(sets[i % sets.len()].clone(), Sample::new(ts, 1000.0 + i as f64 * 0.37));
    }
    b
}

fn hand(b: &Batch, enc: &mut RequestEncoder, comp: &mut Compressor, out: &mut Vec<u8>) -> usize {
    enc.clear();
    for s in &b.series {
        enc.push_series(&s.labels, &s.samples);
    }
    let n = comp
        .compress_into(enc.finish(), out)
        .unwrap_or_else(|e| panic!("compress: {e}"));
    black_box(Sha256::digest(&out[..n]));
    n
}

fn with_prost(b: &Batch, comp: &mut Compressor, out: &mut Vec<u8>) -> usize {
    let raw = WriteRequest::from_batch(b, false).encode_to_vec();
    let n = comp
        .compress_into(&raw, out)
        .unwrap_or_else(|e| panic!("compress: {e}"));
    black_box(Sha256::digest(&out[..n]));
    n
}

fn bench(c: &mut Criterion) {
    let sets = label_sets();
    let b = batch(&sets);
    let mut enc = RequestEncoder::new();
    let mut comp = Compressor::new();
    let mut out = Vec::new();

    let wire = hand(&b, &mut enc, &mut comp, &mut out);
    enc.clear();
    for s in &b.series {
        enc.push_series(&s.labels, &s.samples);
    }
    let raw = enc.finish().len();
    let prost_wire = with_prost(&b, &mut comp, &mut out);
    eprintln!(
        "remote_write: {PER_REQUEST} samples/request, {:.1} B/sample uncompressed, {:.1} B/sample on the wire \
         (prost path: {:.1})",
        raw as f64 / PER_REQUEST as f64,
        wire as f64 / PER_REQUEST as f64,
        prost_wire as f64 / PER_REQUEST as f64
    );

    // Wall-clock numbers suffer when other processes share the cores; CPU time of this thread
    // (from /proc/thread-self/schedstat) gives the per-core rate regardless.
    for (name, prost_path) in [("hand", false), ("prost", true)] {
        let rounds = if prost_path { 200 } else { 2000 };
        let before = thread_cpu_ns();
        for _ in 0..rounds {
            if prost_path {
                black_box(with_prost(&b, &mut comp, &mut out));
            } else {
                black_box(hand(&b, &mut enc, &mut comp, &mut out));
            }
        }
        if let (Some(t0), Some(t1)) = (before, thread_cpu_ns()) {
            let secs = (t1 - t0) as f64 / 1e9;
            eprintln!(
                "remote_write: {name} encode+snappy+sha256: {:.2} M samples per CPU-second",
                (rounds * PER_REQUEST) as f64 / secs / 1e6
            );
        }
    }

    let mut g = c.benchmark_group("remote_write");
    g.throughput(Throughput::Elements(PER_REQUEST as u64));
    g.bench_function("encode_only_hand", |bch| {
        bch.iter(|| {
            enc.clear();
            for s in &b.series {
                enc.push_series(&s.labels, &s.samples);
            }
            black_box(enc.finish().len())
        })
    });
    g.bench_function("encode_snappy_sha256_hand", |bch| {
        bch.iter(|| hand(&b, &mut enc, &mut comp, &mut out))
    });
    g.bench_function("encode_snappy_sha256_prost", |bch| {
        bch.iter(|| with_prost(&b, &mut comp, &mut out))
    });
    g.finish();
}

/// Nanoseconds this thread has run on a CPU, where Linux reports it.
fn thread_cpu_ns() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

criterion_group!(benches, bench);
criterion_main!(benches);
