//! The `slurmattributes` hot path: a steady stream of 10k series (8 GPUs' worth of per-GPU
//! series plus node series) through `process()` with a warm cache, and the first batch after a
//! snapshot change (every series a miss); and the refresher's walk of this machine's /proc.
#![allow(missing_docs, clippy::unwrap_used)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use nodetel_core::{Batch, Labels, Processor, Sample};
use nodetel_host::slurm::StaticRunner;
use nodetel_host::slurm::squeue::node_jobs_args;
use nodetel_processors::slurmattributes::{SlurmAttributes, SlurmAttributesConfig};

const JOB: &str = "JobId=7 JobName=train UserId=alice(1000) Partition=p5 JobState=RUNNING NodeList=n1 \
                   JOB_GRES=gpu:8 Nodes=n1 CPU_IDs=0-95 Mem=0 GRES=gpu:8(IDX:0-7) MinCPUsNode=1\n";

fn batch() -> Batch {
    let mut b = Batch::with_capacity(10_000);
    for gpu in 0..8 {
        for m in 0..50 {
            let name = format!("DCGM_FI_DEV_METRIC_{m}");
            let g = gpu.to_string();
            let l = Labels::from_pairs([("__name__", name.as_str()), ("gpu", g.as_str()), ("Hostname", "n1")]).unwrap();
            b.push(l, Sample::new(1, 1.0));
        }
    }
    for i in 0..9_600 {
        let name = format!("node_metric_{}", i % 300);
        let dev = format!("d{}", i / 300);
        let l = Labels::from_pairs([
            ("__name__", name.as_str()),
            ("device", dev.as_str()),
            ("instance", "n1"),
        ])
        .unwrap();
        b.push(l, Sample::new(1, 1.0));
    }
    b
}

fn processor() -> SlurmAttributes<StaticRunner> {
    let runner = StaticRunner::new()
        .with("squeue", &node_jobs_args("n1"), "7|alice|p5|RUNNING|train\n")
        .with("scontrol", &["-d", "show", "job", "-o", "7"], JOB);
    let config = SlurmAttributesConfig {
        proc_root: std::env::temp_dir().join("nodetel-bench-no-proc"),
        ..SlurmAttributesConfig::default()
    };
    let mut p = SlurmAttributes::new(&config, runner, "n1".to_owned()).unwrap();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(p.refresh_now());
    p
}

fn bench(c: &mut Criterion) {
    let input = batch();
    let mut g = c.benchmark_group("slurmattributes");
    g.throughput(Throughput::Elements(input.len() as u64));
    let mut p = processor();
    let mut warm = input.clone();
    p.process(&mut warm);
    g.bench_function("warm_cache_10k_series", |b| {
        b.iter_batched_ref(
            || input.clone(),
            |batch| p.process(batch),
            criterion::BatchSize::LargeInput,
        )
    });
    g.bench_function("cold_cache_10k_series", |b| {
        b.iter_batched_ref(
            || (processor(), input.clone()),
            |(p, batch)| p.process(batch),
            criterion::BatchSize::LargeInput,
        )
    });
    g.finish();
    let mut buf = Vec::new();
    let procs = nodetel_host::slurm::tasks::scan(std::path::Path::new("/proc"), &mut buf)
        .unwrap()
        .scanned;
    let mut g = c.benchmark_group("slurmattributes_refresh");
    g.throughput(Throughput::Elements(procs as u64));
    g.bench_function("proc_environ_walk", |b| {
        b.iter(|| nodetel_host::slurm::tasks::scan(std::path::Path::new("/proc"), &mut buf).unwrap())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
