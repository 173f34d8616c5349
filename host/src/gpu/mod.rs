//! Typed access to this node's NVIDIA GPUs: the [`GpuSource`] seam, its NVML implementation
//! ([`NvmlSource`], through `nvml-wrapper`, which loads `libnvidia-ml.so.1` at run time) and, with
//! the `test-util` feature, a strict fake (`fake::FakeGpuSource`).
//!
//! Facts only, in NVML's own units (bytes, milliwatts, nanoseconds, percent); metric names,
//! unit conversions and labels live in the `gpu` receiver.

#[cfg(feature = "test-util")]
pub mod fake;
mod nvml;

use std::time::Duration;

pub use nvml::{NvmlInitError, NvmlSource};

/// Why one read of one GPU failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GpuError {
    /// This GPU or driver does not offer the value (normal: memory temperature on GDDR parts,
    /// ECC on consumer parts). Callers omit the value, as dcgm-exporter omits blank fields.
    #[error("not supported by this GPU or driver")]
    NotSupported,
    /// The value needs two samples and only one has been taken so far.
    #[error("no value yet: the first sample of a rate or profiling window was just taken")]
    NotReady,
    /// The GPU fell off the bus or is otherwise inaccessible (NVML `GpuLost`).
    #[error("the GPU has fallen off the bus or is otherwise inaccessible")]
    GpuLost,
    /// Any other NVML failure.
    #[error("{0}")]
    Other(String),
}

/// What identifies one GPU; read once when the source is opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceInfo {
    /// NVML index (what dcgm-exporter reports as `gpu` and uses in `device="nvidia<index>"`).
    pub index: u32,
    /// `GPU-…` UUID.
    pub uuid: String,
    /// Product name (`NVIDIA H100 80GB HBM3`).
    pub name: String,
    /// PCI bus id as NVML prints it (`00000000:53:00.0`).
    pub pci_bus_id: String,
}

/// A value read from a GPU.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value {
    /// An integer (counters, clocks, temperatures, bytes).
    U64(u64),
    /// A floating-point value (profiling metrics).
    F64(f64),
}

impl Value {
    /// The value as `f64` (exact for integers below 2^53).
    pub fn as_f64(self) -> f64 {
        match self {
            Value::U64(v) => v as f64,
            Value::F64(v) => v,
        }
    }
}

/// A throttling reason NVML keeps a cumulative violation time for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ViolationPolicy {
    /// Power cap.
    Power,
    /// Thermal limit.
    Thermal,
    /// Sync boost.
    SyncBoost,
    /// Board limit.
    BoardLimit,
    /// Low utilisation.
    LowUtilization,
    /// Board reliability limit.
    Reliability,
}

/// Which ECC error count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EccKind {
    /// Single-bit (corrected) errors since the driver loaded.
    CorrectedVolatile,
    /// Double-bit (uncorrected) errors since the driver loaded.
    UncorrectedVolatile,
    /// Single-bit errors over the GPU's lifetime.
    CorrectedAggregate,
    /// Double-bit errors over the GPU's lifetime.
    UncorrectedAggregate,
}

/// Which NVLink error counter, summed over all links.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NvlinkCounter {
    /// Flow-control CRC errors.
    CrcFlit,
    /// Data CRC errors.
    CrcData,
    /// Replays.
    Replay,
    /// Recoveries.
    Recovery,
}

/// One value NVML can read from a device, in NVML's unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum GpuField {
    /// SM clock, MHz (`nvmlDeviceGetClockInfo(NVML_CLOCK_SM)`).
    SmClockMhz,
    /// Memory clock, MHz.
    MemClockMhz,
    /// GPU temperature, °C.
    GpuTempC,
    /// HBM temperature, °C (`NVML_FI_DEV_MEMORY_TEMP`).
    MemoryTempC,
    /// Power draw, mW.
    PowerUsageMw,
    /// Energy since the driver loaded, mJ.
    TotalEnergyMj,
    /// PCIe replays.
    PcieReplays,
    /// GPU utilisation, % (`nvmlDeviceGetUtilizationRates().gpu`).
    GpuUtilPct,
    /// Memory-copy utilisation, % (`….memory`).
    MemCopyUtilPct,
    /// Encoder utilisation, %.
    EncoderUtilPct,
    /// Decoder utilisation, %.
    DecoderUtilPct,
    /// Cumulative throttling time for a reason, ns.
    ViolationNs(ViolationPolicy),
    /// Free framebuffer, bytes (`nvmlDeviceGetMemoryInfo_v2`).
    FbFreeBytes,
    /// Used framebuffer, bytes, reserved memory excluded.
    FbUsedBytes,
    /// Reserved framebuffer, bytes.
    FbReservedBytes,
    /// ECC error count.
    Ecc(EccKind),
    /// Pages retired for multiple single-bit errors.
    RetiredPagesSbe,
    /// Pages retired for a double-bit error.
    RetiredPagesDbe,
    /// Pages pending retirement (`NVML_FI_DEV_RETIRED_PENDING`).
    RetiredPagesPending,
    /// NVLink error count summed over links.
    Nvlink(NvlinkCounter),
    /// NVLink data throughput of link 0, rx + tx, KiB since the driver loaded.
    NvlinkDataKibLink0,
    /// Rows remapped for correctable errors (`NVML_FI_DEV_REMAPPED_COR`).
    RemappedRowsCorrectable,
    /// Rows remapped for uncorrectable errors.
    RemappedRowsUncorrectable,
    /// 1 when a row remapping failed.
    RowRemapFailure,
    /// vGPU licence status: 0 on a GPU that is not a vGPU guest.
    VgpuLicenseStatus,
}

/// A profiling metric from NVML's GPU Performance Monitoring (Hopper and newer), averaged over
/// the time between two samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ProfilingMetric {
    /// Graphics/compute engine active, %.
    GraphicsUtilPct,
    /// SMs with at least one warp, %.
    SmUtilPct,
    /// Warp occupancy, %.
    SmOccupancyPct,
    /// Any tensor pipe active, %.
    AnyTensorUtilPct,
    /// DRAM bandwidth used, %.
    DramBwUtilPct,
    /// FP64 pipes active, %.
    Fp64UtilPct,
    /// FP32 pipes active, %.
    Fp32UtilPct,
    /// FP16 pipes active, %.
    Fp16UtilPct,
    /// PCIe transmit, MiB/s.
    PcieTxMibPerSec,
    /// PCIe receive, MiB/s.
    PcieRxMibPerSec,
}

/// One critical Xid event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct XidEvent {
    /// NVML index of the GPU.
    pub device: u32,
    /// The Xid number; 999 when NVML could not tell.
    pub xid: u64,
}

/// Waits for Xid events; owned by one background thread.
pub trait XidWatcher: Send {
    /// The next event, or `Ok(None)` when `timeout` passed without one.
    fn wait(&mut self, timeout: Duration) -> Result<Option<XidEvent>, GpuError>;
}

/// The GPUs of this node. All reads are blocking and cheap (microseconds each); run them off
/// the async runtime.
pub trait GpuSource: Send + Sync + std::fmt::Debug {
    /// The driver version (`550.127.05`).
    fn driver_version(&self) -> Result<String, GpuError>;
    /// The GPUs that could be opened, by index. A GPU that was lost before the source opened is
    /// missing here and listed by [`GpuSource::unavailable`].
    fn devices(&self) -> Vec<DeviceInfo>;
    /// GPUs that exist but could not be opened, with why.
    fn unavailable(&self) -> Vec<(u32, GpuError)>;
    /// Reads one value of GPU `device`.
    fn read(&self, device: u32, field: GpuField) -> Result<Value, GpuError>;
    /// Profiling metrics of GPU `device`, averaged since the previous call for that device. The
    /// outer error fails all metrics (GPM unsupported, GPU lost); the first call per device
    /// returns [`GpuError::NotReady`] for each metric.
    fn profiling(&self, device: u32, metrics: &[ProfilingMetric]) -> Result<Vec<Result<f64, GpuError>>, GpuError>;
    /// Starts watching every GPU for critical Xid events.
    fn xid_watcher(&self) -> Result<Box<dyn XidWatcher>, GpuError>;
}
