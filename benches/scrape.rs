//! Scrape throughput on a realistic ~2,000-series body (node_exporter + dcgm-exporter shapes):
//! parsing alone, and the full per-scrape processing of a warm target (parse, cache lookup,
//! metric relabeling of cached series, staleness pass), in series per second.
//!
//! Times are the benchmark thread's CPU time (from `/proc/thread-self/schedstat`, wall time
//! where that is unavailable), so a busy shared machine slows the run but not the numbers.
//! Run with `cargo bench --bench scrape -- --sample-size 20` for a quicker pass.

#[path = "support/cpu_time.rs"]
mod cpu_time;

use cpu_time::measure;
use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use nodetel_core::Batch;
use nodetel_receivers::prometheus::parser::{Entry, Format, Parser};
use nodetel_receivers::prometheus::process::{SeriesProcessor, SeriesSettings};
use nodetel_receivers::prometheus::relabel::{Action, RelabelConfig, Relabeler};

const BODY: &[u8] = include_bytes!("../receivers/testdata/prometheus/node_dcgm.txt");

fn series_count() -> u64 {
    Parser::new(BODY, Format::Text)
        .filter(|e| matches!(e, Ok(Entry::Sample(_))))
        .count() as u64
}

fn scrape(c: &mut Criterion) {
    let mut g = c.benchmark_group("scrape");
    g.throughput(Throughput::Elements(series_count()));
    g.bench_function("parse", |b| {
        b.iter_custom(|iters| {
            measure(iters, || {
                let mut sum = 0.0;
                for e in Parser::new(black_box(BODY), Format::Text) {
                    if let Ok(Entry::Sample(s)) = e {
                        sum += s.value;
                    }
                }
                black_box(sum);
            })
        })
    });

    let relabel = vec![
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
    ];
    let settings = SeriesSettings {
        target_labels: vec![
            ("instance".into(), "localhost:9100".into()),
            ("job".into(), "node_exporter".into()),
        ],
        honor_timestamps: true,
        metric_relabel: Relabeler::new(&relabel).expect("valid relabel config"),
        ..SeriesSettings::default()
    };
    let mut p = SeriesProcessor::new(Arc::new(settings));
    let mut out = Batch::new();
    p.process(BODY, Format::Text, 0, &mut out)
        .expect("the bench body is valid");
    let mut ts = 0;
    g.bench_function("process_warm", |b| {
        b.iter_custom(|iters| {
            measure(iters, || {
                out.series.clear();
                out.metadata.clear();
                ts += 1;
                black_box(p.process(black_box(BODY), Format::Text, ts, &mut out).is_ok());
            })
        })
    });
    let settings = p.settings().clone();
    g.bench_function("process_cold", |b| {
        b.iter_custom(|iters| {
            measure(iters, || {
                let mut p = SeriesProcessor::new(settings.clone());
                let mut out = Batch::new();
                black_box(p.process(black_box(BODY), Format::Text, 0, &mut out).is_ok());
            })
        })
    });
    g.finish();
}

criterion_group!(benches, scrape);
criterion_main!(benches);
