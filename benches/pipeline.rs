//! The hot path stage by stage, and whole: metric relabeling of a new series, snappy, SigV4
//! signing of a sealed request, and scrape body → parse → series cache → `slurmattributes` →
//! remote write encode + snappy + SHA-256 + SigV4 on a 10,000-series body (node_exporter,
//! dcgm-exporter and histogram shapes) with warm caches.
//!
//! Parsing alone is in `scrape`, encoding alone in `remote_write`, the enrichment lookup alone in
//! `processors/benches/slurmattributes.rs`. Times are the benchmark thread's CPU time (from
//! `/proc/thread-self/schedstat`, wall time where that is unavailable), so a busy shared machine
//! slows the run but not the numbers. The pipeline's rate per CPU-second is printed as well.

#[path = "support/cpu_time.rs"]
mod cpu_time;

use cpu_time::{measure, thread_cpu_time};
use std::fmt::Write as _;
use std::hint::black_box;
use std::sync::Arc;
use std::time::SystemTime;

use aws_credential_types::Credentials;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use nodetel_core::{Batch, Processor};
use nodetel_exporters::remote_write::encode::{Compressor, EncodedRequest, RequestEncoder};
use nodetel_exporters::remote_write::sigv4::Signer;
use nodetel_host::slurm::StaticRunner;
use nodetel_host::slurm::squeue::node_jobs_args;
use nodetel_processors::slurmattributes::{SlurmAttributes, SlurmAttributesConfig};
use nodetel_receivers::prometheus::parser::Format;
use nodetel_receivers::prometheus::process::{SeriesProcessor, SeriesSettings};
use nodetel_receivers::prometheus::relabel::{Action, LabelMap, RelabelConfig, Relabeler};

/// Samples per remote write request (the default `max_samples_per_send`).
const PER_REQUEST: usize = 2000;
const URL: &str = "https://aps-workspaces.us-east-1.amazonaws.com/workspaces/ws-1/api/v1/remote_write";

/// A 10,000-series body: 8 GPUs' dcgm-exporter series, a large node's CPU and device series, and
/// request-latency histograms.
fn body() -> String {
    let mut b = String::new();
    let gpu_labels = |g: usize| {
        format!(
            "gpu=\"{g}\",UUID=\"GPU-9b2c6c0e-{g:0>4}-4d2e-8a51-0a5f3c1f0e7d\",device=\"nvidia{g}\",\
             modelName=\"NVIDIA H100 80GB HBM3\",Hostname=\"n1\",pci_bus_id=\"00000000:{g:0>2}:00.0\""
        )
    };
    for f in 0..50 {
        let _ = writeln!(
            b,
            "# HELP DCGM_FI_DEV_FIELD_{f} A dcgm field.\n# TYPE DCGM_FI_DEV_FIELD_{f} gauge"
        );
        for g in 0..8 {
            let _ = writeln!(b, "DCGM_FI_DEV_FIELD_{f}{{{}}} {}", gpu_labels(g), f * 100 + g);
        }
    }
    let _ = writeln!(
        b,
        "# HELP node_cpu_seconds_total Seconds.\n# TYPE node_cpu_seconds_total counter"
    );
    let modes = ["idle", "user", "system", "iowait", "irq", "softirq", "steal", "nice"];
    for cpu in 0..192 {
        for m in modes {
            let _ = writeln!(
                b,
                "node_cpu_seconds_total{{cpu=\"{cpu}\",mode=\"{m}\"}} {}.37",
                cpu * 1000 + 17
            );
        }
    }
    for f in 0..20 {
        let _ = writeln!(b, "# TYPE node_netstat_field_{f} untyped");
        for dev in 0..200 {
            let _ = writeln!(b, "node_netstat_field_{f}{{device=\"eth{dev}\"}} {}", dev * 31 + f);
        }
    }
    let _ = writeln!(b, "# TYPE http_request_duration_seconds histogram");
    let les = [
        "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "+Inf",
    ];
    for h in 0..(10_000 - 400 - 1536 - 4000) / 13 {
        for (i, le) in les.iter().enumerate() {
            let _ = writeln!(
                b,
                "http_request_duration_seconds_bucket{{handler=\"/h{h}\",le=\"{le}\"}} {}",
                i * 10
            );
        }
        let _ = writeln!(b, "http_request_duration_seconds_sum{{handler=\"/h{h}\"}} 12.5");
        let _ = writeln!(b, "http_request_duration_seconds_count{{handler=\"/h{h}\"}} 100");
    }
    b
}

const JOB: &str = "JobId=7 JobName=train UserId=alice(1000) Partition=p5 JobState=RUNNING NodeList=n1 \
                   JOB_GRES=gpu:8 Nodes=n1 CPU_IDs=0-95 Mem=0 GRES=gpu:8(IDX:0-7) MinCPUsNode=1\n";

fn enrichment(rt: &tokio::runtime::Runtime) -> SlurmAttributes<StaticRunner> {
    let runner = StaticRunner::new()
        .with("squeue", &node_jobs_args("n1"), "7|alice|p5|RUNNING|train\n")
        .with("scontrol", &["-d", "show", "job", "-o", "7"], JOB);
    let config = SlurmAttributesConfig {
        proc_root: std::env::temp_dir().join("nodetel-bench-no-proc"),
        ..SlurmAttributesConfig::default()
    };
    let mut p = SlurmAttributes::new(&config, runner, "n1".to_owned()).unwrap_or_else(|e| panic!("processor: {e}"));
    rt.block_on(p.refresh_now());
    p
}

fn scrape_settings() -> Arc<SeriesSettings> {
    let relabel = vec![RelabelConfig {
        source_labels: vec!["__name__".into()],
        regex: "go_.*".into(),
        action: Action::Drop,
        ..RelabelConfig::default()
    }];
    Arc::new(SeriesSettings {
        target_labels: vec![("instance".into(), "n1".into()), ("job".into(), "node_exporter".into())],
        honor_timestamps: true,
        metric_relabel: Relabeler::new(&relabel).unwrap_or_else(|e| panic!("relabel: {e}")),
        ..SeriesSettings::default()
    })
}

/// Encodes a batch into sealed (compressed, hashed) requests of [`PER_REQUEST`] samples.
fn seal_all(batch: &Batch, enc: &mut RequestEncoder, comp: &mut Compressor, out: &mut Vec<EncodedRequest>) {
    out.clear();
    for s in &batch.series {
        enc.push_series(&s.labels, &s.samples);
        if enc.samples() >= PER_REQUEST {
            out.push(comp.seal(enc).unwrap_or_else(|e| panic!("seal: {e}")));
        }
    }
    if !enc.is_empty() {
        out.push(comp.seal(enc).unwrap_or_else(|e| panic!("seal: {e}")));
    }
}

const HEADERS: [(&str, &str); 4] = [
    ("content-encoding", "snappy"),
    ("content-type", "application/x-protobuf"),
    ("x-prometheus-remote-write-version", "0.1.0"),
    ("host", "aps-workspaces.us-east-1.amazonaws.com"),
];

fn stages(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap_or_else(|e| panic!("runtime: {e}"));
    let signer = Signer::with_credentials(
        "us-east-1",
        "aps",
        Credentials::new(
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            None,
            None,
            "bench",
        ),
    );

    // Relabeling runs once per new series (a known series is a cache hit): three rules of the
    // usual kinds on a dcgm-exporter label set.
    let rules = Relabeler::new(&[
        RelabelConfig {
            source_labels: vec!["__name__".into()],
            regex: "go_.*".into(),
            action: Action::Drop,
            ..RelabelConfig::default()
        },
        RelabelConfig {
            target_label: "instance".into(),
            replacement: "ip-10-1-206-211".into(),
            ..RelabelConfig::default()
        },
        RelabelConfig {
            regex: "pci_bus_id".into(),
            action: Action::LabelDrop,
            ..RelabelConfig::default()
        },
    ])
    .unwrap_or_else(|e| panic!("relabel: {e}"));
    let mut base = LabelMap::new();
    for (n, v) in [
        ("__name__", "DCGM_FI_DEV_GPU_UTIL"),
        ("gpu", "3"),
        ("UUID", "GPU-9b2c6c0e-0003-4d2e-8a51-0a5f3c1f0e7d"),
        ("device", "nvidia3"),
        ("modelName", "NVIDIA H100 80GB HBM3"),
        ("Hostname", "n1"),
        ("pci_bus_id", "00000000:03:00.0"),
        ("instance", "localhost:9400"),
        ("job", "dcgm_exporter"),
    ] {
        base.insert(n.into(), v.into());
    }
    let mut g = c.benchmark_group("stages");
    g.throughput(Throughput::Elements(1));
    g.bench_function("relabel_new_series", |b| {
        b.iter_custom(|iters| {
            measure(iters, || {
                let mut m = base.clone();
                black_box(rules.apply(&mut m));
                black_box(m);
            })
        })
    });

    // One request's worth of the 10k body, encoded once; snappy and signing on their own.
    let text = body();
    let mut scrape = SeriesProcessor::new(scrape_settings());
    let mut batch = Batch::new();
    scrape
        .process(text.as_bytes(), Format::Text, 1, &mut batch)
        .unwrap_or_else(|e| panic!("bench body: {e}"));
    let mut enc = RequestEncoder::new();
    for s in batch.series.iter().take(PER_REQUEST) {
        enc.push_series(&s.labels, &s.samples);
    }
    let raw = enc.finish().to_vec();
    let mut comp = Compressor::new();
    let mut out = Vec::new();
    g.throughput(Throughput::Elements(PER_REQUEST as u64));
    g.bench_function("snappy_2000_samples", |b| {
        b.iter_custom(|iters| {
            measure(iters, || {
                black_box(comp.compress_into(black_box(&raw), &mut out).is_ok());
            })
        })
    });
    let sealed = comp.seal(&mut enc).unwrap_or_else(|e| panic!("seal: {e}"));
    g.throughput(Throughput::Elements(1));
    g.bench_function("sigv4_sign_request", |b| {
        b.iter_custom(|iters| {
            measure(iters, || {
                let h = rt.block_on(signer.sign(URL, &HEADERS, &sealed.sha256, SystemTime::now()));
                black_box(h.is_ok());
            })
        })
    });
    g.finish();

    // The whole path on 10,000 series with warm caches, as on a busy node every interval.
    let mut enrich = enrichment(&rt);
    let mut requests = Vec::new();
    let mut batch = Batch::with_capacity(10_500);
    let mut ts = 1_764_000_000_000i64;
    let mut round = |batch: &mut Batch, requests: &mut Vec<EncodedRequest>| {
        batch.series.clear();
        batch.metadata.clear();
        ts += 15_000;
        scrape
            .process(text.as_bytes(), Format::Text, ts, batch)
            .unwrap_or_else(|e| panic!("bench body: {e}"));
        enrich.process(batch);
        seal_all(batch, &mut enc, &mut comp, requests);
        for r in requests.iter() {
            black_box(
                rt.block_on(signer.sign(URL, &HEADERS, &r.sha256, SystemTime::now()))
                    .is_ok(),
            );
        }
    };
    round(&mut batch, &mut requests);
    let series = batch.len();
    let wire: usize = requests.iter().map(|r| r.body.len()).sum();
    let cpu0 = thread_cpu_time();
    let rounds = 50;
    for _ in 0..rounds {
        round(&mut batch, &mut requests);
    }
    if let (Some(a), Some(b)) = (cpu0, thread_cpu_time()) {
        eprintln!(
            "pipeline: {series} series/scrape, {:.1} B/sample on the wire, {:.2} M samples per CPU-second \
             (scrape body -> parse -> cache -> slurmattributes -> encode -> snappy -> sha256 -> sigv4)",
            wire as f64 / series as f64,
            (rounds * series) as f64 / (b - a).as_secs_f64() / 1e6
        );
    }
    let mut g = c.benchmark_group("pipeline");
    g.throughput(Throughput::Elements(series as u64));
    g.sample_size(20);
    g.bench_function("10k_series_warm", |b| {
        b.iter_custom(|iters| measure(iters, || round(&mut batch, &mut requests)))
    });
    g.finish();
}

criterion_group!(benches, stages);
criterion_main!(benches);
