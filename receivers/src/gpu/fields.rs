//! The metrics the `gpu` receiver can emit: dcgm-exporter 4.1.1's names, types and help texts,
//! the NVML value behind each, the conversion to DCGM's unit, and which counter set (CSV) each
//! belongs to.

use nodetel_core::MetricType;
use nodetel_host::gpu::{EccKind, GpuField, NvlinkCounter, ProfilingMetric, ViolationPolicy};
use serde::Deserialize;

/// Which dcgm-exporter counter CSV the default field set mirrors.
#[derive(Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum CounterSet {
    /// HyperPod's `dcgm-metrics-basic.csv` (what HyperPod deploys unless advanced metrics are on).
    #[default]
    Basic,
    /// HyperPod's `dcgm-metrics-advanced.csv`.
    Advanced,
    /// dcgm-exporter 4.1.1's own `default-counters.csv`.
    Default,
    /// Nothing: only what `include` lists.
    None,
}

impl CounterSet {
    fn bit(self) -> u8 {
        match self {
            CounterSet::Basic => BASIC,
            CounterSet::Advanced => ADVANCED,
            CounterSet::Default => UPSTREAM,
            CounterSet::None => 0,
        }
    }
}

const BASIC: u8 = 1;
const ADVANCED: u8 = 2;
const UPSTREAM: u8 = 4;
const ALL: u8 = BASIC | ADVANCED | UPSTREAM;
const HYPERPOD: u8 = BASIC | ADVANCED;

/// How an NVML value becomes the DCGM value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Convert {
    /// Same unit.
    Same,
    /// Temperatures: DCGM drops readings above 200 °C as sensor garbage.
    Celsius,
    /// Milliwatts to watts.
    MilliToUnit,
    /// Bytes to whole MiB (DCGM shifts right by 20).
    BytesToMib,
    /// Percent to a 0–1 ratio (DCGM divides GPM percentages by 100).
    PercentToRatio,
    /// MiB/s to bytes/s.
    MibToBytes,
}

impl Convert {
    /// The DCGM value, or `None` when DCGM would drop the reading.
    pub(crate) fn apply(self, raw: nodetel_host::gpu::Value) -> Option<f64> {
        use nodetel_host::gpu::Value;
        Some(match (self, raw) {
            (Convert::Celsius, v) => {
                let c = v.as_f64();
                if c > 200.0 {
                    return None;
                }
                c
            }
            (Convert::MilliToUnit, v) => v.as_f64() / 1000.0,
            (Convert::BytesToMib, Value::U64(b)) => (b >> 20) as f64,
            (Convert::BytesToMib, Value::F64(b)) => (b / 1_048_576.0).floor(),
            (Convert::PercentToRatio, v) => v.as_f64() / 100.0,
            (Convert::MibToBytes, v) => v.as_f64() * 1_048_576.0,
            (Convert::Same, v) => v.as_f64(),
        })
    }
}

/// Where a metric's value comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    /// One NVML read per collection.
    Read(GpuField, Convert),
    /// A GPM profiling metric, averaged over the collection interval.
    Profiling(ProfilingMetric, Convert),
    /// A rate derived from a KiB counter: ΔKiB / Δms (≈ MB/s, DCGM's `BW_MBPS`); 0 on the first
    /// collection, as DCGM publishes.
    RateKibPerMs(GpuField),
    /// The last Xid seen since start (0 before any), with `err_code` and `err_msg` labels.
    LastXid,
    /// Xid events counted by code since start.
    XidCount,
}

/// One metric the receiver can emit.
#[derive(Debug)]
pub(crate) struct FieldSpec {
    /// The DCGM field name (the metric name).
    pub(crate) name: &'static str,
    /// `# TYPE` in dcgm-exporter's CSV.
    pub(crate) kind: MetricType,
    /// `# HELP` in dcgm-exporter's CSV.
    pub(crate) help: &'static str,
    /// Where the value comes from.
    pub(crate) source: Source,
    sets: u8,
}

impl FieldSpec {
    /// Whether counter set `set` contains this metric.
    pub(crate) fn in_set(&self, set: CounterSet) -> bool {
        self.sets & set.bit() != 0
    }

    /// `# TYPE` and `# HELP` as the CSV of `set` declares them; HyperPod's CSVs differ from
    /// upstream for the PCIe profiling fields.
    pub(crate) fn metadata(&self, set: CounterSet) -> (MetricType, &'static str) {
        match (self.name, set) {
            ("DCGM_FI_PROF_PCIE_TX_BYTES", CounterSet::Basic) => (
                MetricType::Counter,
                "The number of bytes of active pcie tx data including both header and payload.",
            ),
            ("DCGM_FI_PROF_PCIE_RX_BYTES", CounterSet::Basic) => (
                MetricType::Counter,
                "The number of bytes of active pcie rx data including both header and payload.",
            ),
            ("DCGM_FI_PROF_PCIE_TX_BYTES", CounterSet::Advanced) => (
                MetricType::Counter,
                "Total number of bytes transmitted through PCIe TX via NVML.",
            ),
            ("DCGM_FI_PROF_PCIE_RX_BYTES", CounterSet::Advanced) => (
                MetricType::Counter,
                "Total number of bytes received through PCIe RX via NVML.",
            ),
            _ => (self.kind, self.help),
        }
    }
}

const fn spec(name: &'static str, kind: MetricType, help: &'static str, source: Source, sets: u8) -> FieldSpec {
    FieldSpec {
        name,
        kind,
        help,
        source,
        sets,
    }
}

use Convert as C;
use MetricType::{Counter, Gauge};
use Source::{Profiling, Read};

/// Every metric, in the order of dcgm-exporter's CSVs.
pub(crate) static FIELDS: &[FieldSpec] = &[
    spec(
        "DCGM_FI_DEV_SM_CLOCK",
        Gauge,
        "SM clock frequency (in MHz).",
        Read(GpuField::SmClockMhz, C::Same),
        ALL,
    ),
    spec(
        "DCGM_FI_DEV_MEM_CLOCK",
        Gauge,
        "Memory clock frequency (in MHz).",
        Read(GpuField::MemClockMhz, C::Same),
        ALL,
    ),
    spec(
        "DCGM_FI_DEV_MEMORY_TEMP",
        Gauge,
        "Memory temperature (in C).",
        Read(GpuField::MemoryTempC, C::Celsius),
        ALL,
    ),
    spec(
        "DCGM_FI_DEV_GPU_TEMP",
        Gauge,
        "GPU temperature (in C).",
        Read(GpuField::GpuTempC, C::Celsius),
        ALL,
    ),
    spec(
        "DCGM_FI_DEV_POWER_USAGE",
        Gauge,
        "Power draw (in W).",
        Read(GpuField::PowerUsageMw, C::MilliToUnit),
        ALL,
    ),
    spec(
        "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION",
        Counter,
        "Total energy consumption since boot (in mJ).",
        Read(GpuField::TotalEnergyMj, C::Same),
        ALL,
    ),
    spec(
        "DCGM_FI_PROF_PCIE_TX_BYTES",
        Gauge,
        "The rate of data transmitted over the PCIe bus - including both protocol headers and data payloads - in bytes per second.",
        Profiling(ProfilingMetric::PcieTxMibPerSec, C::MibToBytes),
        ALL,
    ),
    spec(
        "DCGM_FI_PROF_PCIE_RX_BYTES",
        Gauge,
        "The rate of data received over the PCIe bus - including both protocol headers and data payloads - in bytes per second.",
        Profiling(ProfilingMetric::PcieRxMibPerSec, C::MibToBytes),
        ALL,
    ),
    spec(
        "DCGM_FI_DEV_PCIE_REPLAY_COUNTER",
        Counter,
        "Total number of PCIe retries.",
        Read(GpuField::PcieReplays, C::Same),
        ALL,
    ),
    spec(
        "DCGM_FI_DEV_GPU_UTIL",
        Gauge,
        "GPU utilization (in %).",
        Read(GpuField::GpuUtilPct, C::Same),
        ALL,
    ),
    spec(
        "DCGM_FI_DEV_MEM_COPY_UTIL",
        Gauge,
        "Memory utilization (in %).",
        Read(GpuField::MemCopyUtilPct, C::Same),
        ALL,
    ),
    spec(
        "DCGM_FI_DEV_ENC_UTIL",
        Gauge,
        "Encoder utilization (in %).",
        Read(GpuField::EncoderUtilPct, C::Same),
        ALL,
    ),
    spec(
        "DCGM_FI_DEV_DEC_UTIL",
        Gauge,
        "Decoder utilization (in %).",
        Read(GpuField::DecoderUtilPct, C::Same),
        ALL,
    ),
    spec(
        "DCGM_FI_DEV_XID_ERRORS",
        Gauge,
        "Value of the last XID error encountered.",
        Source::LastXid,
        ALL,
    ),
    // The CSVs still say "(in us)" although DCGM has always reported nanoseconds; the help text
    // is kept verbatim so the metadata matches what dashboards and AMP already hold.
    spec(
        "DCGM_FI_DEV_POWER_VIOLATION",
        Counter,
        "Throttling duration due to power constraints (in us).",
        Read(GpuField::ViolationNs(ViolationPolicy::Power), C::Same),
        HYPERPOD,
    ),
    spec(
        "DCGM_FI_DEV_THERMAL_VIOLATION",
        Counter,
        "Throttling duration due to thermal constraints (in us).",
        Read(GpuField::ViolationNs(ViolationPolicy::Thermal), C::Same),
        HYPERPOD,
    ),
    spec(
        "DCGM_FI_DEV_SYNC_BOOST_VIOLATION",
        Counter,
        "Throttling duration due to sync-boost constraints (in us).",
        Read(GpuField::ViolationNs(ViolationPolicy::SyncBoost), C::Same),
        ADVANCED,
    ),
    spec(
        "DCGM_FI_DEV_BOARD_LIMIT_VIOLATION",
        Counter,
        "Throttling duration due to board limit constraints (in us).",
        Read(GpuField::ViolationNs(ViolationPolicy::BoardLimit), C::Same),
        ADVANCED,
    ),
    spec(
        "DCGM_FI_DEV_LOW_UTIL_VIOLATION",
        Counter,
        "Throttling duration due to low utilization (in us).",
        Read(GpuField::ViolationNs(ViolationPolicy::LowUtilization), C::Same),
        ADVANCED,
    ),
    spec(
        "DCGM_FI_DEV_RELIABILITY_VIOLATION",
        Counter,
        "Throttling duration due to reliability constraints (in us).",
        Read(GpuField::ViolationNs(ViolationPolicy::Reliability), C::Same),
        ADVANCED,
    ),
    spec(
        "DCGM_FI_DEV_FB_FREE",
        Gauge,
        "Framebuffer memory free (in MiB).",
        Read(GpuField::FbFreeBytes, C::BytesToMib),
        ALL,
    ),
    spec(
        "DCGM_FI_DEV_FB_USED",
        Gauge,
        "Framebuffer memory used (in MiB).",
        Read(GpuField::FbUsedBytes, C::BytesToMib),
        ALL,
    ),
    // In dcgm-exporter's defaults only after 4.1.1; available through `include`.
    spec(
        "DCGM_FI_DEV_FB_RESERVED",
        Gauge,
        "Framebuffer memory reserved (in MiB).",
        Read(GpuField::FbReservedBytes, C::BytesToMib),
        0,
    ),
    spec(
        "DCGM_FI_DEV_ECC_SBE_VOL_TOTAL",
        Counter,
        "Total number of single-bit volatile ECC errors.",
        Read(GpuField::Ecc(EccKind::CorrectedVolatile), C::Same),
        ADVANCED,
    ),
    spec(
        "DCGM_FI_DEV_ECC_DBE_VOL_TOTAL",
        Counter,
        "Total number of double-bit volatile ECC errors.",
        Read(GpuField::Ecc(EccKind::UncorrectedVolatile), C::Same),
        ADVANCED,
    ),
    spec(
        "DCGM_FI_DEV_ECC_SBE_AGG_TOTAL",
        Counter,
        "Total number of single-bit persistent ECC errors.",
        Read(GpuField::Ecc(EccKind::CorrectedAggregate), C::Same),
        ADVANCED,
    ),
    spec(
        "DCGM_FI_DEV_ECC_DBE_AGG_TOTAL",
        Counter,
        "Total number of double-bit persistent ECC errors.",
        Read(GpuField::Ecc(EccKind::UncorrectedAggregate), C::Same),
        ADVANCED,
    ),
    spec(
        "DCGM_FI_DEV_RETIRED_SBE",
        Counter,
        "Total number of retired pages due to single-bit errors.",
        Read(GpuField::RetiredPagesSbe, C::Same),
        ADVANCED,
    ),
    spec(
        "DCGM_FI_DEV_RETIRED_DBE",
        Counter,
        "Total number of retired pages due to double-bit errors.",
        Read(GpuField::RetiredPagesDbe, C::Same),
        ADVANCED,
    ),
    spec(
        "DCGM_FI_DEV_RETIRED_PENDING",
        Counter,
        "Total number of pages pending retirement.",
        Read(GpuField::RetiredPagesPending, C::Same),
        ADVANCED,
    ),
    spec(
        "DCGM_FI_DEV_NVLINK_CRC_FLIT_ERROR_COUNT_TOTAL",
        Counter,
        "Total number of NVLink flow-control CRC errors.",
        Read(GpuField::Nvlink(NvlinkCounter::CrcFlit), C::Same),
        ADVANCED,
    ),
    spec(
        "DCGM_FI_DEV_NVLINK_CRC_DATA_ERROR_COUNT_TOTAL",
        Counter,
        "Total number of NVLink data CRC errors.",
        Read(GpuField::Nvlink(NvlinkCounter::CrcData), C::Same),
        ADVANCED,
    ),
    spec(
        "DCGM_FI_DEV_NVLINK_REPLAY_ERROR_COUNT_TOTAL",
        Counter,
        "Total number of NVLink retries.",
        Read(GpuField::Nvlink(NvlinkCounter::Replay), C::Same),
        ADVANCED,
    ),
    spec(
        "DCGM_FI_DEV_NVLINK_RECOVERY_ERROR_COUNT_TOTAL",
        Counter,
        "Total number of NVLink recovery errors.",
        Read(GpuField::Nvlink(NvlinkCounter::Recovery), C::Same),
        ADVANCED,
    ),
    spec(
        "DCGM_FI_DEV_NVLINK_BANDWIDTH_L0",
        Counter,
        "The number of bytes of active NVLink rx or tx data including both header and payload.",
        Source::RateKibPerMs(GpuField::NvlinkDataKibLink0),
        ADVANCED,
    ),
    spec(
        "DCGM_FI_DEV_VGPU_LICENSE_STATUS",
        Gauge,
        "vGPU License status",
        Read(GpuField::VgpuLicenseStatus, C::Same),
        ALL,
    ),
    spec(
        "DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS",
        Counter,
        "Number of remapped rows for uncorrectable errors",
        Read(GpuField::RemappedRowsUncorrectable, C::Same),
        ALL,
    ),
    spec(
        "DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS",
        Counter,
        "Number of remapped rows for correctable errors",
        Read(GpuField::RemappedRowsCorrectable, C::Same),
        ALL,
    ),
    spec(
        "DCGM_FI_DEV_ROW_REMAP_FAILURE",
        Gauge,
        "Whether remapping of rows has failed",
        Read(GpuField::RowRemapFailure, C::Same),
        ALL,
    ),
    spec(
        "DCGM_FI_PROF_GR_ENGINE_ACTIVE",
        Gauge,
        "Ratio of time the graphics engine is active.",
        Profiling(ProfilingMetric::GraphicsUtilPct, C::PercentToRatio),
        ALL,
    ),
    spec(
        "DCGM_FI_PROF_SM_ACTIVE",
        Gauge,
        "The ratio of cycles an SM has at least 1 warp assigned.",
        Profiling(ProfilingMetric::SmUtilPct, C::PercentToRatio),
        ADVANCED,
    ),
    spec(
        "DCGM_FI_PROF_SM_OCCUPANCY",
        Gauge,
        "The ratio of number of warps resident on an SM.",
        Profiling(ProfilingMetric::SmOccupancyPct, C::PercentToRatio),
        ADVANCED,
    ),
    spec(
        "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE",
        Gauge,
        "Ratio of cycles the tensor (HMMA) pipe is active.",
        Profiling(ProfilingMetric::AnyTensorUtilPct, C::PercentToRatio),
        ALL,
    ),
    spec(
        "DCGM_FI_PROF_DRAM_ACTIVE",
        Gauge,
        "Ratio of cycles the device memory interface is active sending or receiving data.",
        Profiling(ProfilingMetric::DramBwUtilPct, C::PercentToRatio),
        ALL,
    ),
    spec(
        "DCGM_FI_PROF_PIPE_FP64_ACTIVE",
        Gauge,
        "Ratio of cycles the fp64 pipes are active.",
        Profiling(ProfilingMetric::Fp64UtilPct, C::PercentToRatio),
        ADVANCED,
    ),
    spec(
        "DCGM_FI_PROF_PIPE_FP32_ACTIVE",
        Gauge,
        "Ratio of cycles the fp32 pipes are active.",
        Profiling(ProfilingMetric::Fp32UtilPct, C::PercentToRatio),
        ADVANCED,
    ),
    spec(
        "DCGM_FI_PROF_PIPE_FP16_ACTIVE",
        Gauge,
        "Ratio of cycles the fp16 pipes are active.",
        Profiling(ProfilingMetric::Fp16UtilPct, C::PercentToRatio),
        ADVANCED,
    ),
    spec(
        "nodetel_gpu_xid_events_total",
        Counter,
        "Critical Xid events seen by nodetel since it started, by Xid.",
        Source::XidCount,
        ALL,
    ),
];

/// The metric called `name`.
pub(crate) fn find(name: &str) -> Option<&'static FieldSpec> {
    FIELDS.iter().find(|f| f.name == name)
}

/// The names of all metrics, comma-separated, for error messages.
pub(crate) fn known_names() -> String {
    FIELDS.iter().map(|f| f.name).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use nodetel_host::gpu::Value;

    #[test]
    fn names_are_unique_and_valid_metric_names() {
        for (i, f) in FIELDS.iter().enumerate() {
            assert!(nodetel_core::labels::is_valid_metric_name(f.name), "{}", f.name);
            assert!(FIELDS[i + 1..].iter().all(|g| g.name != f.name), "{} twice", f.name);
            assert!(!f.help.is_empty(), "{} has no help", f.name);
        }
    }

    #[test]
    fn hyperpod_basic_set_has_the_csv_rows() {
        let basic: Vec<_> = FIELDS
            .iter()
            .filter(|f| f.in_set(CounterSet::Basic))
            .map(|f| f.name)
            .collect();
        for name in [
            "DCGM_FI_DEV_SM_CLOCK",
            "DCGM_FI_DEV_POWER_VIOLATION",
            "DCGM_FI_DEV_THERMAL_VIOLATION",
            "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE",
            "DCGM_FI_DEV_XID_ERRORS",
        ] {
            assert!(basic.contains(&name), "{name} missing from basic");
        }
        for name in [
            "DCGM_FI_DEV_ECC_DBE_VOL_TOTAL",
            "DCGM_FI_PROF_SM_ACTIVE",
            "DCGM_FI_DEV_FB_RESERVED",
        ] {
            assert!(!basic.contains(&name), "{name} is not in basic");
        }
        assert!(!find("DCGM_FI_DEV_POWER_VIOLATION").unwrap().in_set(CounterSet::Default));
        assert!(
            find("DCGM_FI_DEV_ECC_DBE_VOL_TOTAL")
                .unwrap()
                .in_set(CounterSet::Advanced)
        );
        assert!(FIELDS.iter().all(|f| !f.in_set(CounterSet::None)));
    }

    #[test]
    fn pcie_profiling_metadata_follows_the_counter_set() {
        let tx = find("DCGM_FI_PROF_PCIE_TX_BYTES").unwrap();
        assert_eq!(tx.metadata(CounterSet::Default).0, MetricType::Gauge);
        assert_eq!(tx.metadata(CounterSet::Basic).0, MetricType::Counter);
        assert!(tx.metadata(CounterSet::Advanced).1.contains("via NVML"));
        assert!(
            tx.metadata(CounterSet::Basic)
                .1
                .starts_with("The number of bytes of active pcie tx")
        );
    }

    #[test]
    fn conversions_match_dcgm_units() {
        assert_eq!(Convert::MilliToUnit.apply(Value::U64(312_456)), Some(312.456));
        assert_eq!(
            Convert::BytesToMib.apply(Value::U64((81_559 << 20) + 1_048_575)),
            Some(81_559.0)
        );
        assert_eq!(Convert::Celsius.apply(Value::U64(201)), None);
        assert_eq!(Convert::Celsius.apply(Value::U64(200)), Some(200.0));
        assert_eq!(Convert::PercentToRatio.apply(Value::F64(42.5)), Some(0.425));
        assert_eq!(Convert::MibToBytes.apply(Value::F64(2.0)), Some(2_097_152.0));
        assert_eq!(Convert::Same.apply(Value::U64(7)), Some(7.0));
    }
}
