//! Measures what a steady-state round of the `node` receiver allocates, with a counting global
//! allocator, over the captured `this-machine` tree: label sets are built in the first round
//! only, so later rounds allocate a small, bounded amount that does not grow with the series.
// Test helpers may unwrap: a failure there is a test failure.
#![allow(clippy::unwrap_used)]

use std::alloc::System;
use std::path::Path;

use nodetel_core::Batch;
use nodetel_receivers::node::{NodeCollector, NodeConfig};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

#[test]
fn a_steady_state_round_allocates_less_than_one_allocation_per_four_series() {
    let mut config = NodeConfig::default();
    config.path.rootfs = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/node/this-machine");
    let mut collector = NodeCollector::new(&config, "testhost").unwrap();
    let mut first = Batch::new();
    let region = Region::new(GLOBAL);
    collector.collect(1, &mut first);
    let first_allocs = region.change().allocations;
    let mut warm = Batch::new();
    collector.collect(2, &mut warm);

    let mut batch = Batch::with_capacity(first.len());
    batch.metadata.reserve(first.metadata.len());
    let region = Region::new(GLOBAL);
    collector.collect(3, &mut batch);
    let steady = region.change();
    let series = batch.len();
    println!(
        "{series} series; first round {first_allocs} allocations, steady round {} allocations ({} bytes)",
        steady.allocations, steady.bytes_allocated
    );
    assert_eq!(series, first.len());
    // Directory listings and a few path joins remain; label sets and metadata are not rebuilt.
    assert!(
        steady.allocations * 4 < series,
        "{} allocations for {series} series",
        steady.allocations
    );
    assert!(steady.allocations * 4 < first_allocs);
}
