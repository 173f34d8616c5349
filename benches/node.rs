//! One full collection of the `node` receiver with every default collector, over the captured
//! `this-machine` testdata tree: the per-round cost a node pays every collection interval.

use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use nodetel_core::Batch;
use nodetel_receivers::node::{NodeCollector, NodeConfig};

fn bench(c: &mut Criterion) {
    let mut config = NodeConfig::default();
    config.path.rootfs = Path::new(env!("CARGO_MANIFEST_DIR")).join("receivers/testdata/node/this-machine");
    let mut collector = NodeCollector::new(&config, "bench-host").expect("the default config builds");
    let mut probe = Batch::new();
    collector.collect(0, &mut probe);
    let mut group = c.benchmark_group("node");
    group.throughput(Throughput::Elements(probe.len() as u64));
    group.bench_function("collect_all_default_collectors", |b| {
        b.iter(|| {
            let mut batch = Batch::new();
            collector.collect(black_box(1), &mut batch);
            black_box(batch)
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
