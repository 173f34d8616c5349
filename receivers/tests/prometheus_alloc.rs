//! Proves the steady state of the scrape path: processing a body whose series are all in the
//! cache makes no heap allocation at all (so none per series), measured with a counting global
//! allocator. The body is a realistic node_exporter + dcgm-exporter exposition of ~2,000 series.
// Test helpers may unwrap: a failure there is a test failure.
#![allow(clippy::unwrap_used)]

use std::alloc::System;
use std::sync::Arc;

use nodetel_core::Batch;
use nodetel_receivers::prometheus::parser::Format;
use nodetel_receivers::prometheus::process::{SeriesProcessor, SeriesSettings};
use nodetel_receivers::prometheus::relabel::{RelabelConfig, Relabeler};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const BODY: &[u8] = include_bytes!("../testdata/prometheus/node_dcgm.txt");

#[test]
fn a_body_of_known_series_is_processed_without_heap_allocations() {
    let relabel: Vec<RelabelConfig> = serde_yaml_ng::from_str(
        "[{source_labels: [__name__], regex: 'go_.*', action: drop}, {regex: 'device_error', action: labeldrop}]",
    )
    .unwrap();
    let settings = SeriesSettings {
        target_labels: vec![
            ("instance".into(), "ip-10-1-206-211".into()),
            ("job".into(), "node_exporter".into()),
        ],
        honor_timestamps: true,
        metric_relabel: Relabeler::new(&relabel).unwrap(),
        external_labels: vec![("cluster".into(), "c1".into())],
        ..SeriesSettings::default()
    };
    let mut p = SeriesProcessor::new(Arc::new(settings));
    // The first scrape builds every series; allocation is expected there.
    let mut first = Batch::new();
    let stats = p.process(BODY, Format::Text, 1_000, &mut first).unwrap();
    assert!(stats.scraped >= 2_000, "{stats:?}");
    assert!(stats.post_relabel < stats.scraped, "go_* series are dropped");
    let (series, families) = (first.series.len(), first.metadata.len());

    for round in 0..3 {
        // Output buffers sized from the previous scrape, as the scrape loop does.
        let mut out = Batch::with_capacity(series);
        out.metadata.reserve(families);
        let region = Region::new(GLOBAL);
        let stats = p.process(BODY, Format::Text, 2_000 + round, &mut out).unwrap();
        let change = region.change();
        assert_eq!(out.series.len(), series);
        assert_eq!(stats.added, 0);
        assert_eq!(
            change.allocations, 0,
            "round {round}: {} allocations, {} bytes for {} series",
            change.allocations, change.bytes_allocated, stats.scraped
        );
        assert_eq!(change.reallocations, 0);
    }

    // The allocator does count: a changed series in the body is a cache miss and allocates.
    let changed = String::from_utf8(BODY.to_vec())
        .unwrap()
        .replace("cpu=\"0\",mode=\"idle\"", "cpu=\"0\",mode=\"idle2\"");
    let mut out = Batch::with_capacity(series);
    out.metadata.reserve(families);
    let region = Region::new(GLOBAL);
    let stats = p.process(changed.as_bytes(), Format::Text, 9_000, &mut out).unwrap();
    assert_eq!(stats.added, 1);
    assert!(region.change().allocations > 0);
}
