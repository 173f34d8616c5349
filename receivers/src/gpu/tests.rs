//! Whole collections through the strict fake GPU source: golden exposition output for every
//! metric, labels and units, Xid events, unsupported and failing reads, a lost GPU, label-set
//! caching, and the disabled receiver.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nodetel_core::component::Scraper;
use nodetel_core::config::{BuildContext, ReceiverConfig};
use nodetel_core::exposition::TextWriter;
use nodetel_core::telemetry::Registry;
use nodetel_core::{Batch, ComponentId, ComponentKind, MetricType};
use nodetel_host::gpu::fake::{FakeGpuSource, device_info};
use nodetel_host::gpu::{
    EccKind, GpuError, GpuField, GpuSource, NvlinkCounter, ProfilingMetric, Value, ViolationPolicy,
};

use super::*;

const T0: i64 = 1_764_371_234_000;
const STEP: i64 = 15_000;

const ALL_FIELDS: &[GpuField] = &[
    GpuField::SmClockMhz,
    GpuField::MemClockMhz,
    GpuField::GpuTempC,
    GpuField::MemoryTempC,
    GpuField::PowerUsageMw,
    GpuField::TotalEnergyMj,
    GpuField::PcieReplays,
    GpuField::GpuUtilPct,
    GpuField::MemCopyUtilPct,
    GpuField::EncoderUtilPct,
    GpuField::DecoderUtilPct,
    GpuField::ViolationNs(ViolationPolicy::Power),
    GpuField::ViolationNs(ViolationPolicy::Thermal),
    GpuField::ViolationNs(ViolationPolicy::SyncBoost),
    GpuField::ViolationNs(ViolationPolicy::BoardLimit),
    GpuField::ViolationNs(ViolationPolicy::LowUtilization),
    GpuField::ViolationNs(ViolationPolicy::Reliability),
    GpuField::FbFreeBytes,
    GpuField::FbUsedBytes,
    GpuField::FbReservedBytes,
    GpuField::Ecc(EccKind::CorrectedVolatile),
    GpuField::Ecc(EccKind::UncorrectedVolatile),
    GpuField::Ecc(EccKind::CorrectedAggregate),
    GpuField::Ecc(EccKind::UncorrectedAggregate),
    GpuField::RetiredPagesSbe,
    GpuField::RetiredPagesDbe,
    GpuField::RetiredPagesPending,
    GpuField::Nvlink(NvlinkCounter::CrcFlit),
    GpuField::Nvlink(NvlinkCounter::CrcData),
    GpuField::Nvlink(NvlinkCounter::Replay),
    GpuField::Nvlink(NvlinkCounter::Recovery),
    GpuField::NvlinkDataKibLink0,
    GpuField::RemappedRowsCorrectable,
    GpuField::RemappedRowsUncorrectable,
    GpuField::RowRemapFailure,
    GpuField::VgpuLicenseStatus,
];

const ALL_PROFILING: &[ProfilingMetric] = &[
    ProfilingMetric::GraphicsUtilPct,
    ProfilingMetric::SmUtilPct,
    ProfilingMetric::SmOccupancyPct,
    ProfilingMetric::AnyTensorUtilPct,
    ProfilingMetric::DramBwUtilPct,
    ProfilingMetric::Fp64UtilPct,
    ProfilingMetric::Fp32UtilPct,
    ProfilingMetric::Fp16UtilPct,
    ProfilingMetric::PcieTxMibPerSec,
    ProfilingMetric::PcieRxMibPerSec,
];

/// NVML-unit values of GPU `i`: distinct per field and per GPU, so a value in the wrong series
/// or of the wrong GPU shows in the golden file.
fn raw(i: u32, field: GpuField) -> Value {
    let i = u64::from(i);
    Value::U64(match field {
        GpuField::SmClockMhz => 1980 - i * 10,
        GpuField::MemClockMhz => 2619,
        GpuField::GpuTempC => 41 + i,
        GpuField::MemoryTempC => 36 + i,
        GpuField::PowerUsageMw => 312_456 + i * 1000,
        GpuField::TotalEnergyMj => 987_654_321_000 + i,
        GpuField::PcieReplays => i,
        GpuField::GpuUtilPct => 97 - i,
        GpuField::MemCopyUtilPct => 45 + i,
        GpuField::EncoderUtilPct | GpuField::DecoderUtilPct => 0,
        GpuField::ViolationNs(p) => 1_000_000 * (p as u64 + 1) + i,
        GpuField::FbFreeBytes => (1024 + i) << 20,
        GpuField::FbUsedBytes => ((80_000 - i) << 20) + 123_456,
        GpuField::FbReservedBytes => 535 << 20,
        GpuField::Ecc(k) => 10 * (k as u64) + i,
        GpuField::RetiredPagesSbe => 2,
        GpuField::RetiredPagesDbe => 1,
        GpuField::RetiredPagesPending => 0,
        GpuField::Nvlink(c) => 100 + c as u64 + i,
        GpuField::NvlinkDataKibLink0 => 5_000_000,
        GpuField::RemappedRowsCorrectable => 3,
        GpuField::RemappedRowsUncorrectable => 0,
        GpuField::RowRemapFailure => 0,
        GpuField::VgpuLicenseStatus => 0,
    })
}

fn fake_with(gpus: u32) -> Arc<FakeGpuSource> {
    let fake = Arc::new(FakeGpuSource::new());
    for i in 0..gpus {
        fake.add_device(device_info(i, "NVIDIA H100 80GB HBM3"));
        for &f in ALL_FIELDS {
            fake.set(i, f, Ok(raw(i, f)));
        }
        for (n, &m) in ALL_PROFILING.iter().enumerate() {
            fake.set_profiling(i, m, Ok(10.0 * n as f64 + 0.5 + f64::from(i)));
        }
    }
    fake
}

fn collector(fake: &Arc<FakeGpuSource>, config: &GpuConfig) -> GpuCollector {
    GpuCollector::new(fake.clone(), config, "ip-10-1-2-3", "ip-10-1-2-3").unwrap()
}

fn collect(c: &mut GpuCollector, ts: i64) -> Batch {
    let mut batch = Batch::new();
    c.collect(ts, &mut batch);
    batch
}

/// The batch in text format with families in order and series sorted.
fn render(batch: &Batch) -> String {
    let mut writer = TextWriter::new();
    for md in &batch.metadata {
        writer.add_metadata(md);
    }
    let mut series: Vec<_> = batch.series.iter().collect();
    series.sort_by(|a, b| (a.labels.metric_name(), &a.labels).cmp(&(b.labels.metric_name(), &b.labels)));
    let mut out = String::new();
    for s in series {
        for sample in &s.samples {
            writer.write(&mut out, &s.labels, sample.value, None);
        }
    }
    out
}

/// Compares with `testdata/gpu/<name>.prom`; `NODETEL_UPDATE_GOLDEN=1` rewrites it.
#[track_caller]
fn check_golden(name: &str, got: &str) {
    let path: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/gpu")
        .join(format!("{name}.prom"));
    if std::env::var_os("NODETEL_UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, got).unwrap();
    }
    let want = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        got == want,
        "output differs from {}; rerun with NODETEL_UPDATE_GOLDEN=1 and review the diff\n--- got ---\n{got}",
        path.display()
    );
}

fn value(batch: &Batch, name: &str, gpu: &str) -> Option<f64> {
    batch
        .series
        .iter()
        .find(|s| s.labels.metric_name() == Some(name) && s.labels.get("gpu") == Some(gpu))
        .map(|s| s.samples[0].value)
}

fn names(batch: &Batch) -> Vec<&str> {
    let mut n: Vec<_> = batch.series.iter().filter_map(|s| s.labels.metric_name()).collect();
    n.sort_unstable();
    n.dedup();
    n
}

#[test]
fn basic_counter_set_matches_the_golden_output() {
    let fake = fake_with(2);
    let mut c = collector(&fake, &GpuConfig::default());
    // Profiling needs a window: the first round has no DCGM_FI_PROF_* series, the second has.
    let first = collect(&mut c, T0);
    assert!(names(&first).iter().all(|n| !n.starts_with("DCGM_FI_PROF_")));
    let second = collect(&mut c, T0 + STEP);
    check_golden("basic", &render(&second));
}

#[test]
fn advanced_counter_set_with_driver_label_matches_the_golden_output() {
    let fake = fake_with(1);
    let config = GpuConfig {
        counters: CounterSet::Advanced,
        include: vec!["DCGM_FI_DEV_FB_RESERVED".to_owned()],
        driver_version_label: true,
        ..GpuConfig::default()
    };
    let mut c = collector(&fake, &config);
    collect(&mut c, T0);
    let second = collect(&mut c, T0 + STEP);
    check_golden("advanced", &render(&second));
}

#[test]
fn every_metric_of_the_table_is_emitted_when_everything_is_supported() {
    let fake = fake_with(1);
    let all: Vec<String> = fields::FIELDS.iter().map(|f| f.name.to_owned()).collect();
    let config = GpuConfig {
        counters: CounterSet::None,
        include: all.clone(),
        ..GpuConfig::default()
    };
    let mut c = collector(&fake, &config);
    collect(&mut c, T0);
    fake.send_xid(0, 31);
    wait_for(|| {
        let b = collect(&mut c, T0 + STEP);
        value(&b, "nodetel_gpu_xid_events_total", "0").is_some()
    });
    let batch = collect(&mut c, T0 + 2 * STEP);
    let emitted = names(&batch);
    for name in &all {
        assert!(emitted.contains(&name.as_str()), "{name} was not emitted");
    }
    let families: Vec<_> = batch.metadata.iter().map(|m| &*m.family).collect();
    assert_eq!(families.len(), all.len(), "one metadata entry per family: {families:?}");
}

#[test]
fn units_are_converted_to_dcgm_units() {
    let fake = fake_with(2);
    let mut c = collector(&fake, &GpuConfig::default());
    let b = collect(&mut c, T0);
    assert_eq!(value(&b, "DCGM_FI_DEV_POWER_USAGE", "1"), Some(313.456));
    assert_eq!(value(&b, "DCGM_FI_DEV_FB_FREE", "1"), Some(1025.0));
    // Used bytes not on a MiB boundary round down, as DCGM's shift does.
    assert_eq!(value(&b, "DCGM_FI_DEV_FB_USED", "0"), Some(80_000.0));
    assert_eq!(value(&b, "DCGM_FI_DEV_GPU_TEMP", "1"), Some(42.0));
    assert_eq!(
        value(&b, "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", "0"),
        Some(987_654_321_000.0)
    );
    let b = collect(&mut c, T0 + STEP);
    // GPM percent becomes a ratio; PCIe MiB/s becomes bytes/s.
    assert_eq!(value(&b, "DCGM_FI_PROF_GR_ENGINE_ACTIVE", "0"), Some(0.005));
    assert_eq!(value(&b, "DCGM_FI_PROF_PCIE_TX_BYTES", "0"), Some(80.5 * 1_048_576.0));
}

#[test]
fn series_carry_dcgm_exporter_labels() {
    let fake = fake_with(2);
    let mut c = collector(&fake, &GpuConfig::default());
    let b = collect(&mut c, T0);
    let s = b
        .series
        .iter()
        .find(|s| s.labels.metric_name() == Some("DCGM_FI_DEV_GPU_UTIL") && s.labels.get("gpu") == Some("1"))
        .unwrap();
    assert_eq!(
        s.labels.to_string(),
        "DCGM_FI_DEV_GPU_UTIL{Hostname=\"ip-10-1-2-3\",UUID=\"GPU-00000001-1111-2222-3333-444455556666\",\
         device=\"nvidia1\",gpu=\"1\",instance=\"ip-10-1-2-3\",job=\"dcgm_exporter\",\
         modelName=\"NVIDIA H100 80GB HBM3\",pci_bus_id=\"00000000:28:00.0\"}"
    );
    assert!(
        b.series
            .iter()
            .all(|s| s.labels.get("DCGM_FI_DRIVER_VERSION").is_none())
    );
    let md = b
        .metadata
        .iter()
        .find(|m| &*m.family == "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION")
        .unwrap();
    assert_eq!(md.kind, MetricType::Counter);
    assert_eq!(&*md.help, "Total energy consumption since boot (in mJ).");
}

#[test]
fn label_sets_are_built_once_and_reused() {
    let fake = fake_with(1);
    let mut c = collector(&fake, &GpuConfig::default());
    let a = collect(&mut c, T0);
    let b = collect(&mut c, T0 + STEP);
    let find = |batch: &Batch, name: &str| {
        batch
            .series
            .iter()
            .find(|s| s.labels.metric_name() == Some(name))
            .unwrap()
            .labels
            .clone()
    };
    for name in ["DCGM_FI_DEV_SM_CLOCK", "DCGM_FI_DEV_XID_ERRORS"] {
        assert!(find(&a, name).ptr_eq(&find(&b, name)), "{name} was rebuilt");
    }
}

#[test]
fn unselected_metrics_are_not_read() {
    let fake = fake_with(1);
    let config = GpuConfig {
        exclude: vec!["DCGM_FI_DEV_ENC_UTIL".to_owned()],
        ..GpuConfig::default()
    };
    let mut c = collector(&fake, &config);
    collect(&mut c, T0);
    assert_eq!(fake.reads(0, GpuField::EncoderUtilPct), 0);
    assert_eq!(
        fake.reads(0, GpuField::Ecc(EccKind::CorrectedVolatile)),
        0,
        "not in basic"
    );
    assert_eq!(fake.reads(0, GpuField::DecoderUtilPct), 1);
}

#[test]
fn unsupported_and_failing_reads_omit_only_their_series() {
    let fake = fake_with(1);
    fake.set(0, GpuField::MemoryTempC, Err(GpuError::NotSupported));
    fake.set(
        0,
        GpuField::GpuUtilPct,
        Err(GpuError::Other("Unknown Error".to_owned())),
    );
    fake.set(0, GpuField::GpuTempC, Ok(Value::U64(255)));
    let mut c = collector(&fake, &GpuConfig::default());
    let b = collect(&mut c, T0);
    let n = names(&b);
    assert!(!n.contains(&"DCGM_FI_DEV_MEMORY_TEMP"));
    assert!(!n.contains(&"DCGM_FI_DEV_GPU_UTIL"));
    assert!(
        !n.contains(&"DCGM_FI_DEV_GPU_TEMP"),
        "readings above 200 C are dropped as DCGM does"
    );
    assert!(n.contains(&"DCGM_FI_DEV_MEM_COPY_UTIL"));
    assert!(b.metadata.iter().all(|m| &*m.family != "DCGM_FI_DEV_MEMORY_TEMP"));
}

#[test]
fn a_lost_gpu_drops_its_series_and_keeps_the_others() {
    let fake = fake_with(3);
    let mut c = collector(&fake, &GpuConfig::default());
    let before = collect(&mut c, T0);
    let per_gpu = before
        .series
        .iter()
        .filter(|s| s.labels.get("gpu") == Some("1"))
        .count();
    fake.set_lost(1, true);
    let b = collect(&mut c, T0 + STEP);
    let gpu1: Vec<_> = b
        .series
        .iter()
        .filter(|s| s.labels.get("gpu") == Some("1"))
        .filter_map(|s| s.labels.metric_name())
        .collect();
    assert_eq!(
        gpu1,
        ["DCGM_FI_DEV_XID_ERRORS"],
        "only the Xid series, which does not read the GPU"
    );
    for gpu in ["0", "2"] {
        assert!(value(&b, "DCGM_FI_DEV_SM_CLOCK", gpu).is_some(), "gpu {gpu}");
        assert!(value(&b, "DCGM_FI_PROF_DRAM_ACTIVE", gpu).is_some(), "gpu {gpu}");
    }
    fake.set_lost(1, false);
    let back = collect(&mut c, T0 + 2 * STEP);
    let again = back.series.iter().filter(|s| s.labels.get("gpu") == Some("1")).count();
    assert!(again >= per_gpu, "gpu 1 reports again ({again} < {per_gpu})");
}

#[test]
fn gpus_that_cannot_be_opened_are_skipped() {
    let fake = fake_with(1);
    fake.add_unavailable(1, GpuError::GpuLost);
    let mut c = collector(&fake, &GpuConfig::default());
    assert_eq!(c.gpus().count(), 1);
    let b = collect(&mut c, T0);
    assert!(b.series.iter().all(|s| s.labels.get("gpu") == Some("0")));
}

fn wait_for(mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for the Xid thread");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn xid_series(b: &Batch, gpu: &str) -> String {
    b.series
        .iter()
        .filter(|s| s.labels.get("gpu") == Some(gpu))
        .filter(|s| {
            matches!(
                s.labels.metric_name(),
                Some("DCGM_FI_DEV_XID_ERRORS" | "nodetel_gpu_xid_events_total")
            )
        })
        .map(|s| {
            format!(
                "{} {} {}",
                s.labels.metric_name().unwrap_or(""),
                s.labels.get("err_code").or(s.labels.get("xid")).unwrap_or(""),
                s.samples[0].value
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[test]
fn xid_errors_are_sticky_and_counted_by_code() {
    let fake = fake_with(2);
    let mut c = collector(&fake, &GpuConfig::default());
    assert!(c.watching_xid());
    let b = collect(&mut c, T0);
    assert_eq!(xid_series(&b, "0"), "DCGM_FI_DEV_XID_ERRORS 0 0");
    let s = b
        .series
        .iter()
        .find(|s| s.labels.metric_name() == Some("DCGM_FI_DEV_XID_ERRORS"))
        .unwrap();
    assert_eq!(s.labels.get("err_msg"), Some("No Error"));

    fake.send_xid(1, 79);
    fake.send_xid(1, 13);
    fake.send_xid(1, 79);
    let mut last = String::new();
    wait_for(|| {
        last = xid_series(&collect(&mut c, T0 + STEP), "1");
        last.contains("nodetel_gpu_xid_events_total 79 2")
    });
    assert_eq!(
        last,
        "DCGM_FI_DEV_XID_ERRORS 79 79; nodetel_gpu_xid_events_total 13 1; nodetel_gpu_xid_events_total 79 2"
    );
    let b = collect(&mut c, T0 + 2 * STEP);
    let s = b
        .series
        .iter()
        .find(|s| s.labels.metric_name() == Some("DCGM_FI_DEV_XID_ERRORS") && s.labels.get("gpu") == Some("1"))
        .unwrap();
    assert_eq!(s.labels.get("err_msg"), Some("GPU has fallen off the bus"));
    // GPU 0 saw nothing.
    assert_eq!(xid_series(&b, "0"), "DCGM_FI_DEV_XID_ERRORS 0 0");
}

#[test]
fn the_xid_thread_survives_wait_errors_and_stops_with_the_collector() {
    let fake = fake_with(1);
    let c = collector(&fake, &GpuConfig::default());
    fake.send_xid_error(GpuError::GpuLost);
    fake.send_xid(0, 48);
    let mut c = c;
    wait_for(|| value(&collect(&mut c, T0), "DCGM_FI_DEV_XID_ERRORS", "0") == Some(48.0));
    assert_eq!(fake.xid_watchers(), 1);
    drop(c);
    // The thread drops its watcher after its current wait; sending then finds no receiver.
    wait_for(|| {
        fake.send_xid(0, 1);
        fake.xid_watchers() == 0
    });
}

#[test]
fn without_xid_events_the_xid_series_stays_zero() {
    let fake = fake_with(1);
    fake.set_xid_watcher_error(Some(GpuError::NotSupported));
    let mut c = collector(&fake, &GpuConfig::default());
    assert!(!c.watching_xid());
    assert_eq!(value(&collect(&mut c, T0), "DCGM_FI_DEV_XID_ERRORS", "0"), Some(0.0));
}

#[test]
fn nvlink_bandwidth_is_a_rate_starting_at_zero() {
    let fake = fake_with(1);
    let config = GpuConfig {
        counters: CounterSet::None,
        include: vec!["DCGM_FI_DEV_NVLINK_BANDWIDTH_L0".to_owned()],
        ..GpuConfig::default()
    };
    let mut c = collector(&fake, &config);
    let name = "DCGM_FI_DEV_NVLINK_BANDWIDTH_L0";
    assert_eq!(value(&collect(&mut c, T0), name, "0"), Some(0.0));
    fake.set(
        0,
        GpuField::NvlinkDataKibLink0,
        Ok(Value::U64(5_000_000 + 15_000 * 1234)),
    );
    assert_eq!(value(&collect(&mut c, T0 + STEP), name, "0"), Some(1234.0));
    // A counter reset (driver reload) gives 0, not a negative rate.
    fake.set(0, GpuField::NvlinkDataKibLink0, Ok(Value::U64(10)));
    assert_eq!(value(&collect(&mut c, T0 + 2 * STEP), name, "0"), Some(0.0));
}

#[test]
fn profiling_is_omitted_on_gpus_without_gpm() {
    let fake = fake_with(2);
    fake.set_profiling_error(1, Some(GpuError::NotSupported));
    let mut c = collector(&fake, &GpuConfig::default());
    collect(&mut c, T0);
    let b = collect(&mut c, T0 + STEP);
    assert!(value(&b, "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE", "0").is_some());
    assert!(value(&b, "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE", "1").is_none());
    assert!(value(&b, "DCGM_FI_DEV_GPU_UTIL", "1").is_some());
}

fn build_context(registry: &Arc<Registry>) -> BuildContext {
    BuildContext {
        id: ComponentId::parse("gpu").unwrap(),
        hostname: "ip-10-1-2-3".to_owned(),
        registry: registry.clone(),
        extensions: Arc::default(),
    }
}

fn up_line(registry: &Registry) -> String {
    registry
        .render()
        .lines()
        .find(|l| l.starts_with("nodetel_component_up") && l.contains("component_id=\"gpu\""))
        .unwrap_or("")
        .to_owned()
}

#[tokio::test]
async fn a_node_without_gpus_gets_a_disabled_receiver() {
    let registry = Arc::new(Registry::new());
    let fake: Arc<dyn GpuSource> = Arc::new(FakeGpuSource::new());
    let mut receiver = GpuConfig::default()
        .build_with_source(fake, &build_context(&registry))
        .unwrap();
    assert!(up_line(&registry).ends_with(" 0"), "{}", up_line(&registry));
    let mut out = Batch::new();
    receiver.collect_once(&mut out).await.unwrap();
    assert!(out.is_empty());
    // The same telemetry the runtime hands the receiver.
    let telemetry = registry.component(&ComponentId::parse("gpu").unwrap(), ComponentKind::Receiver);
    assert_eq!(telemetry.received(), 0);
}

#[tokio::test]
async fn the_scraper_collects_off_the_runtime() {
    let fake = fake_with(1);
    let mut scraper = nodetel_core::blocking::BlockingScraper::new(collector(&fake, &GpuConfig::default()));
    let mut out = Batch::new();
    scraper.scrape(T0, &mut out).await.unwrap();
    assert!(value(&out, "DCGM_FI_DEV_SM_CLOCK", "0").is_some());
}

#[tokio::test]
async fn a_receiver_built_over_gpus_collects_once() {
    let registry = Arc::new(Registry::new());
    let fake = fake_with(2);
    let mut receiver = GpuConfig::default()
        .build_with_source(fake, &build_context(&registry))
        .unwrap();
    let mut out = Batch::new();
    assert!(receiver.collect_once(&mut out).await.unwrap());
    assert!(value(&out, "DCGM_FI_DEV_FB_USED", "1").is_some());
    assert_eq!(<GpuConfig as ReceiverConfig>::TYPE, "gpu");
    assert!(
        up_line(&registry).is_empty() || up_line(&registry).ends_with(" 1"),
        "a working receiver is not marked down"
    );
}
