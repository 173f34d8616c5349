//! Label-set costs on the hot path: building a set for a new series, looking up a known one,
//! cloning, comparing and encoding — next to a plain `Vec<(String, String)>` for scale.

// Test code: a failed unwrap is a failed test, which is what we want.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use nodetel_core::labels::METRIC_NAME;
use nodetel_core::{Labels, LabelsBuilder, LabelsMap};

/// A dcgm-exporter-shaped series: 9 labels.
fn pairs(gpu: usize) -> Vec<(String, String)> {
    let g = gpu.to_string();
    vec![
        (METRIC_NAME.into(), "DCGM_FI_DEV_GPU_UTIL".into()),
        ("gpu".into(), g.clone()),
        ("UUID".into(), format!("GPU-9b2c6c0e-{g:0>4}-4d2e-8a51-0a5f3c1f0e7d")),
        ("device".into(), format!("nvidia{g}")),
        ("modelName".into(), "NVIDIA H100 80GB HBM3".into()),
        ("Hostname".into(), "ip-10-1-206-211".into()),
        ("pci_bus_id".into(), format!("00000000:{g:0>2}:00.0")),
        ("job".into(), "dcgm_exporter".into()),
        ("instance".into(), "ip-10-1-206-211".into()),
    ]
}

fn bench(c: &mut Criterion) {
    let inputs: Vec<_> = (0..1000).map(pairs).collect();
    let sets: Vec<Labels> = inputs
        .iter()
        .map(|p| Labels::from_pairs(p.iter().map(|(n, v)| (n.as_str(), v.as_str()))).unwrap())
        .collect();

    let mut g = c.benchmark_group("labels");
    g.throughput(Throughput::Elements(inputs.len() as u64));

    g.bench_function("build_interned_9_pairs", |b| {
        let mut builder = LabelsBuilder::new();
        b.iter(|| {
            for p in &inputs {
                for (n, v) in p {
                    builder.push(n, v).unwrap();
                }
                black_box(builder.build().unwrap());
            }
        })
    });

    g.bench_function("build_plain_vec_9_pairs", |b| {
        b.iter(|| {
            for p in &inputs {
                let mut v: Vec<(String, String)> = p.clone();
                v.sort_unstable();
                black_box(v);
            }
        })
    });

    let index: HashMap<Labels, usize> = sets.iter().cloned().enumerate().map(|(i, l)| (l, i)).collect();
    g.bench_function("lookup_known_set", |b| {
        b.iter(|| {
            for s in &sets {
                black_box(index.get(s));
            }
        })
    });

    let fast: LabelsMap<usize> = sets.iter().cloned().enumerate().map(|(i, l)| (l, i)).collect();
    g.bench_function("lookup_known_set_labels_map", |b| {
        b.iter(|| {
            for s in &sets {
                black_box(fast.get(s));
            }
        })
    });

    let plain: HashMap<Vec<(String, String)>, usize> =
        inputs.iter().cloned().enumerate().map(|(i, l)| (l, i)).collect();
    g.bench_function("lookup_plain_vec", |b| {
        b.iter(|| {
            for p in &inputs {
                black_box(plain.get(p));
            }
        })
    });

    g.bench_function("clone_and_compare", |b| {
        b.iter(|| {
            for s in &sets {
                let c = s.clone();
                black_box(c == *s);
            }
        })
    });

    g.bench_function("encode_to_protobuf", |b| {
        b.iter_batched_ref(
            || Vec::with_capacity(256 * 1024),
            |out| {
                for s in &sets {
                    s.encode_to(out);
                }
                black_box(out.len());
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
