//! The steady state of a GPU collection: after the first round builds every label set, a round
//! over 8 GPUs allocates only what the source hands back (one profiling vector per GPU) and the
//! growth of the caller's batch, never per series. Measured with a counting global allocator.
#![allow(clippy::unwrap_used)]

use std::alloc::System;
use std::sync::Arc;
use std::time::Instant;

use nodetel_core::Batch;
use nodetel_host::gpu::fake::{FakeGpuSource, device_info};
use nodetel_host::gpu::{GpuField, ProfilingMetric, Value};
use nodetel_receivers::gpu::{CounterSet, GpuCollector, GpuConfig};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const GPUS: u32 = 8;

fn fake() -> Arc<FakeGpuSource> {
    let fake = Arc::new(FakeGpuSource::new());
    let fields = [
        GpuField::SmClockMhz,
        GpuField::MemClockMhz,
        GpuField::GpuTempC,
        GpuField::MemoryTempC,
        GpuField::PowerUsageMw,
        GpuField::TotalEnergyMj,
        GpuField::PcieReplays,
        GpuField::GpuUtilPct,
        GpuField::MemCopyUtilPct,
        GpuField::FbFreeBytes,
        GpuField::FbUsedBytes,
        GpuField::RemappedRowsCorrectable,
        GpuField::VgpuLicenseStatus,
    ];
    for i in 0..GPUS {
        fake.add_device(device_info(i, "NVIDIA H100 80GB HBM3"));
        for f in fields {
            fake.set(i, f, Ok(Value::U64(1000 + u64::from(i))));
        }
        for m in [ProfilingMetric::AnyTensorUtilPct, ProfilingMetric::DramBwUtilPct] {
            fake.set_profiling(i, m, Ok(42.0));
        }
    }
    fake
}

#[test]
fn a_steady_round_allocates_nothing_per_series() {
    let config = GpuConfig {
        counters: CounterSet::Advanced,
        ..GpuConfig::default()
    };
    let mut c = GpuCollector::new(fake(), &config, "h", "h").unwrap();
    let mut first = Batch::new();
    c.collect(1_000, &mut first);
    c.collect(2_000, &mut Batch::new());
    let series = {
        let mut b = Batch::new();
        c.collect(3_000, &mut b);
        b.len()
    };
    // 13 reads less two temperatures above 200 C (dropped), two profiling ratios, the Xid series.
    assert_eq!(series, 14 * GPUS as usize);

    let mut batch = Batch::with_capacity(series);
    batch.metadata.reserve(64);
    let region = Region::new(GLOBAL);
    c.collect(4_000, &mut batch);
    let stats = region.change();
    assert_eq!(batch.len(), series);
    // One profiling vector per GPU comes from the source; the collector itself adds nothing.
    assert!(
        stats.allocations <= GPUS as usize,
        "{} allocations for {series} series over {GPUS} GPUs",
        stats.allocations
    );

    // Not a benchmark, a guard against something quadratic: 200 rounds of 8 GPUs through the
    // fake take well under a second.
    let started = Instant::now();
    for round in 0..200 {
        let mut b = Batch::with_capacity(series);
        c.collect(5_000 + round, &mut b);
    }
    let per_round = started.elapsed() / 200;
    assert!(per_round.as_millis() < 20, "{per_round:?} per round");
}
