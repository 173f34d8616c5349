//! [`GpuSource`] over NVML through `nvml-wrapper`, which `dlopen`s `libnvidia-ml.so.1` at run
//! time: the binary has no link-time NVIDIA dependency and starts on machines without a driver.

use std::ffi::OsStr;
use std::path::Path;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use nvml_wrapper::bitmasks::event::EventTypes;
use nvml_wrapper::enum_wrappers::device::{
    Clock, EccCounter, GpuVirtualizationMode, MemoryError, PerformancePolicy, RetirementCause, TemperatureSensor,
};
use nvml_wrapper::enums::device::SampleValue;
use nvml_wrapper::enums::event::XidError;
use nvml_wrapper::enums::gpm::GpmMetricId;
use nvml_wrapper::error::NvmlError;
use nvml_wrapper::struct_wrappers::device::FieldValueSample;
use nvml_wrapper::structs::device::FieldId;
use nvml_wrapper::sys_exports::field_id;
use nvml_wrapper::{Device, EventSet, GpmSample, Nvml};

use super::{
    DeviceInfo, EccKind, GpuError, GpuField, GpuSource, NvlinkCounter, ProfilingMetric, Value, ViolationPolicy,
    XidEvent, XidWatcher,
};

/// The library dcgm-exporter and nvidia-smi load; found through the dynamic loader's path.
const DEFAULT_LIBRARY: &str = "libnvidia-ml.so.1";

/// The Xid NVML reports when it cannot tell which one happened (`XidError::Unknown`).
const UNKNOWN_XID: u64 = 999;

/// Why NVML could not be started.
#[derive(Debug, thiserror::Error)]
pub enum NvmlInitError {
    /// The shared library is missing: no NVIDIA driver is installed (or not where the loader
    /// looks).
    #[error("cannot load the NVIDIA management library {library}: {reason}")]
    Library {
        /// The library that was looked for.
        library: String,
        /// The loader's message.
        reason: String,
    },
    /// The library loaded but NVML did not start (kernel module not loaded, user-space and
    /// kernel driver versions differ after an upgrade, no permission).
    #[error("the NVIDIA management library loaded but did not start: {0}")]
    Start(String),
    /// NVML started but could not count the GPUs.
    #[error("NVML cannot count the GPUs: {0}")]
    Count(String),
}

// NVML is process-wide state (nvmlInit/nvmlShutdown are reference counted by the driver), and
// device handles, event sets and GPM samples borrow the `Nvml` they came from. Keeping one
// `Nvml` for the life of the process lets them be `'static`, so a source can own them without
// self-references. A failed start is not cached: a later build tries again.
static NVML: Mutex<Option<&'static Nvml>> = Mutex::new(None);

fn shared_nvml(library: Option<&Path>) -> Result<&'static Nvml, NvmlInitError> {
    let mut slot = NVML.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(nvml) = *slot {
        return Ok(nvml);
    }
    let started = match library {
        Some(path) => Nvml::builder().lib_path(path.as_os_str()).init(),
        None => Nvml::builder().lib_path(OsStr::new(DEFAULT_LIBRARY)).init(),
    };
    let nvml = started.map_err(|e| match e {
        NvmlError::LibloadingError(reason) => NvmlInitError::Library {
            library: library.map_or_else(|| DEFAULT_LIBRARY.to_owned(), |p| p.display().to_string()),
            reason: reason.to_string(),
        },
        other => NvmlInitError::Start(other.to_string()),
    })?;
    let nvml: &'static Nvml = Box::leak(Box::new(nvml));
    *slot = Some(nvml);
    Ok(nvml)
}

fn map_err(e: NvmlError) -> GpuError {
    match e {
        // A symbol an older driver lacks means the feature is not there, not a failure.
        NvmlError::NotSupported | NvmlError::FailedToLoadSymbol(_) | NvmlError::FunctionNotFound => {
            GpuError::NotSupported
        }
        NvmlError::GpuLost => GpuError::GpuLost,
        other => GpuError::Other(other.to_string()),
    }
}

/// The GPUs of this node, read through NVML.
pub struct NvmlSource {
    nvml: &'static Nvml,
    /// Indexed by NVML index; `None` for a GPU that could not be opened.
    handles: Vec<Option<Device<'static>>>,
    infos: Vec<DeviceInfo>,
    unavailable: Vec<(u32, GpuError)>,
    /// The previous GPM sample of each GPU, the start of the next profiling window.
    gpm: Mutex<Vec<Option<GpmSample<'static>>>>,
}

impl std::fmt::Debug for NvmlSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NvmlSource")
            .field("devices", &self.infos)
            .field("unavailable", &self.unavailable)
            .finish_non_exhaustive()
    }
}

impl NvmlSource {
    /// Starts NVML (loading `library`, default `libnvidia-ml.so.1` from the loader path) and
    /// opens every GPU. A GPU that cannot be opened is listed by [`GpuSource::unavailable`]
    /// instead of failing the whole source.
    pub fn open(library: Option<&Path>) -> Result<NvmlSource, NvmlInitError> {
        let nvml = shared_nvml(library)?;
        let count = nvml.device_count().map_err(|e| NvmlInitError::Count(e.to_string()))?;
        let mut handles = Vec::with_capacity(count as usize);
        let mut infos = Vec::new();
        let mut unavailable = Vec::new();
        for index in 0..count {
            match nvml
                .device_by_index(index)
                .and_then(|d| Ok((device_info(index, &d)?, d)))
            {
                Ok((info, device)) => {
                    infos.push(info);
                    handles.push(Some(device));
                }
                Err(e) => {
                    unavailable.push((index, map_err(e)));
                    handles.push(None);
                }
            }
        }
        let gpm = Mutex::new((0..count).map(|_| None).collect());
        Ok(NvmlSource {
            nvml,
            handles,
            infos,
            unavailable,
            gpm,
        })
    }

    fn device(&self, index: u32) -> Result<&Device<'static>, GpuError> {
        match self.handles.get(index as usize) {
            Some(Some(d)) => Ok(d),
            Some(None) => Err(GpuError::GpuLost),
            None => Err(GpuError::Other(format!("there is no GPU with index {index}"))),
        }
    }
}

fn device_info(index: u32, d: &Device<'_>) -> Result<DeviceInfo, NvmlError> {
    Ok(DeviceInfo {
        index,
        uuid: d.uuid()?,
        name: d.name()?,
        pci_bus_id: d.pci_info()?.bus_id,
    })
}

fn sample_value(sample: FieldValueSample) -> Result<Value, GpuError> {
    match sample.value.map_err(map_err)? {
        SampleValue::F64(v) => Ok(Value::F64(v)),
        SampleValue::U32(v) => Ok(Value::U64(u64::from(v))),
        SampleValue::U64(v) => Ok(Value::U64(v)),
        SampleValue::I64(v) => u64::try_from(v)
            .map(Value::U64)
            .map_err(|_| GpuError::Other(format!("NVML returned the negative value {v}"))),
    }
}

/// Reads NVML field values (`nvmlDeviceGetFieldValues`, scope 0) and adds them up.
fn field_sum(d: &Device<'_>, ids: &[u32]) -> Result<Value, GpuError> {
    let fields: Vec<FieldId> = ids.iter().map(|&id| FieldId(id)).collect();
    let mut total = 0u64;
    for sample in d.field_values_for(&fields).map_err(map_err)? {
        match sample_value(sample.map_err(map_err)?)? {
            Value::U64(v) => total = total.saturating_add(v),
            Value::F64(v) => return Ok(Value::F64(v)),
        }
    }
    Ok(Value::U64(total))
}

fn read_device(d: &Device<'_>, field: GpuField) -> Result<Value, NvmlError> {
    let u = |v: u32| Ok(Value::U64(u64::from(v)));
    match field {
        GpuField::SmClockMhz => u(d.clock_info(Clock::SM)?),
        GpuField::MemClockMhz => u(d.clock_info(Clock::Memory)?),
        GpuField::GpuTempC => u(d.temperature(TemperatureSensor::Gpu)?),
        GpuField::PowerUsageMw => u(d.power_usage()?),
        GpuField::TotalEnergyMj => Ok(Value::U64(d.total_energy_consumption()?)),
        GpuField::PcieReplays => u(d.pcie_replay_counter()?),
        GpuField::GpuUtilPct => u(d.utilization_rates()?.gpu),
        GpuField::MemCopyUtilPct => u(d.utilization_rates()?.memory),
        GpuField::EncoderUtilPct => u(d.encoder_utilization()?.utilization),
        GpuField::DecoderUtilPct => u(d.decoder_utilization()?.utilization),
        GpuField::ViolationNs(policy) => {
            let policy = match policy {
                ViolationPolicy::Power => PerformancePolicy::Power,
                ViolationPolicy::Thermal => PerformancePolicy::Thermal,
                ViolationPolicy::SyncBoost => PerformancePolicy::SyncBoost,
                ViolationPolicy::BoardLimit => PerformancePolicy::BoardLimit,
                ViolationPolicy::LowUtilization => PerformancePolicy::LowUtilization,
                ViolationPolicy::Reliability => PerformancePolicy::Reliability,
            };
            Ok(Value::U64(d.violation_status(policy)?.violation_time))
        }
        GpuField::FbFreeBytes => Ok(Value::U64(d.memory_info()?.free)),
        GpuField::FbUsedBytes => Ok(Value::U64(d.memory_info()?.used)),
        GpuField::FbReservedBytes => Ok(Value::U64(d.memory_info()?.reserved)),
        GpuField::Ecc(kind) => {
            let (error, counter) = match kind {
                EccKind::CorrectedVolatile => (MemoryError::Corrected, EccCounter::Volatile),
                EccKind::UncorrectedVolatile => (MemoryError::Uncorrected, EccCounter::Volatile),
                EccKind::CorrectedAggregate => (MemoryError::Corrected, EccCounter::Aggregate),
                EccKind::UncorrectedAggregate => (MemoryError::Uncorrected, EccCounter::Aggregate),
            };
            Ok(Value::U64(d.total_ecc_errors(error, counter)?))
        }
        GpuField::RetiredPagesSbe => {
            let pages = d.retired_pages(RetirementCause::MultipleSingleBitEccErrors)?;
            Ok(Value::U64(pages.len() as u64))
        }
        GpuField::RetiredPagesDbe => {
            let pages = d.retired_pages(RetirementCause::DoubleBitEccError)?;
            Ok(Value::U64(pages.len() as u64))
        }
        GpuField::VgpuLicenseStatus => match d.virtualization_mode()? {
            // DCGM asks nvmlDeviceGetGridLicensableFeatures; a GPU that is not a vGPU guest has
            // no licensable features and DCGM stores 0. A guest's status is not wrapped.
            GpuVirtualizationMode::Vgpu => Err(NvmlError::NotSupported),
            _ => Ok(Value::U64(0)),
        },
        // Field-value reads are handled by the caller (they return per-field errors).
        GpuField::MemoryTempC
        | GpuField::RetiredPagesPending
        | GpuField::Nvlink(_)
        | GpuField::NvlinkDataKibLink0
        | GpuField::RemappedRowsCorrectable
        | GpuField::RemappedRowsUncorrectable
        | GpuField::RowRemapFailure => Err(NvmlError::NotSupported),
    }
}

fn field_ids(field: GpuField) -> Option<&'static [u32]> {
    Some(match field {
        GpuField::MemoryTempC => &[field_id::NVML_FI_DEV_MEMORY_TEMP],
        GpuField::RetiredPagesPending => &[field_id::NVML_FI_DEV_RETIRED_PENDING],
        GpuField::Nvlink(NvlinkCounter::CrcFlit) => &[field_id::NVML_FI_DEV_NVLINK_CRC_FLIT_ERROR_COUNT_TOTAL],
        GpuField::Nvlink(NvlinkCounter::CrcData) => &[field_id::NVML_FI_DEV_NVLINK_CRC_DATA_ERROR_COUNT_TOTAL],
        GpuField::Nvlink(NvlinkCounter::Replay) => &[field_id::NVML_FI_DEV_NVLINK_REPLAY_ERROR_COUNT_TOTAL],
        GpuField::Nvlink(NvlinkCounter::Recovery) => &[field_id::NVML_FI_DEV_NVLINK_RECOVERY_ERROR_COUNT_TOTAL],
        GpuField::NvlinkDataKibLink0 => &[
            field_id::NVML_FI_DEV_NVLINK_THROUGHPUT_DATA_RX,
            field_id::NVML_FI_DEV_NVLINK_THROUGHPUT_DATA_TX,
        ],
        GpuField::RemappedRowsCorrectable => &[field_id::NVML_FI_DEV_REMAPPED_COR],
        GpuField::RemappedRowsUncorrectable => &[field_id::NVML_FI_DEV_REMAPPED_UNC],
        GpuField::RowRemapFailure => &[field_id::NVML_FI_DEV_REMAPPED_FAILURE],
        _ => return None,
    })
}

fn gpm_id(metric: ProfilingMetric) -> GpmMetricId {
    match metric {
        ProfilingMetric::GraphicsUtilPct => GpmMetricId::GraphicsUtil,
        ProfilingMetric::SmUtilPct => GpmMetricId::SmUtil,
        ProfilingMetric::SmOccupancyPct => GpmMetricId::SmOccupancy,
        ProfilingMetric::AnyTensorUtilPct => GpmMetricId::AnyTensorUtil,
        ProfilingMetric::DramBwUtilPct => GpmMetricId::DramBwUtil,
        ProfilingMetric::Fp64UtilPct => GpmMetricId::Fp64Util,
        ProfilingMetric::Fp32UtilPct => GpmMetricId::Fp32Util,
        ProfilingMetric::Fp16UtilPct => GpmMetricId::Fp16Util,
        ProfilingMetric::PcieTxMibPerSec => GpmMetricId::PcieTxPerSec,
        ProfilingMetric::PcieRxMibPerSec => GpmMetricId::PcieRxPerSec,
    }
}

impl GpuSource for NvmlSource {
    fn driver_version(&self) -> Result<String, GpuError> {
        self.nvml.sys_driver_version().map_err(map_err)
    }

    fn devices(&self) -> Vec<DeviceInfo> {
        self.infos.clone()
    }

    fn unavailable(&self) -> Vec<(u32, GpuError)> {
        self.unavailable.clone()
    }

    fn read(&self, device: u32, field: GpuField) -> Result<Value, GpuError> {
        let d = self.device(device)?;
        match field_ids(field) {
            Some(ids) => field_sum(d, ids),
            None => read_device(d, field).map_err(map_err),
        }
    }

    fn profiling(&self, device: u32, metrics: &[ProfilingMetric]) -> Result<Vec<Result<f64, GpuError>>, GpuError> {
        let d = self.device(device)?;
        if !d.gpm_support().map_err(map_err)? {
            return Err(GpuError::NotSupported);
        }
        let sample = d.gpm_sample().map_err(map_err)?;
        let mut slots = self.gpm.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(slot) = slots.get_mut(device as usize) else {
            return Err(GpuError::Other(format!("there is no GPU with index {device}")));
        };
        let Some(previous) = slot.replace(sample) else {
            return Ok(metrics.iter().map(|_| Err(GpuError::NotReady)).collect());
        };
        let Some(current) = slot.as_ref() else {
            return Err(GpuError::NotReady);
        };
        let ids: Vec<GpmMetricId> = metrics.iter().map(|&m| gpm_id(m)).collect();
        let results = nvml_wrapper::gpm::gpm_metrics_get(self.nvml, &previous, current, &ids).map_err(map_err)?;
        Ok(results
            .into_iter()
            .map(|r| r.map(|m| m.value).map_err(map_err))
            .collect())
    }

    fn xid_watcher(&self) -> Result<Box<dyn XidWatcher>, GpuError> {
        let mut set = self.nvml.create_event_set().map_err(map_err)?;
        let mut registered = 0;
        for d in self.handles.iter().flatten() {
            // A GPU that cannot say (lost, too old) is left out rather than failing the others.
            match d.supported_event_types() {
                Ok(supported) if supported.contains(EventTypes::CRITICAL_XID_ERROR) => {}
                _ => continue,
            }
            set = d
                .register_events(EventTypes::CRITICAL_XID_ERROR, set)
                .map_err(|e| map_err(e.error))?;
            registered += 1;
        }
        if registered == 0 {
            return Err(GpuError::NotSupported);
        }
        Ok(Box::new(NvmlXidWatcher { set }))
    }
}

struct NvmlXidWatcher {
    set: EventSet<'static>,
}

impl XidWatcher for NvmlXidWatcher {
    fn wait(&mut self, timeout: Duration) -> Result<Option<XidEvent>, GpuError> {
        let ms = u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX);
        match self.set.wait(ms) {
            Ok(event) => {
                let xid = match event.event_data {
                    Some(XidError::Value(xid)) => xid,
                    Some(XidError::Unknown) => UNKNOWN_XID,
                    None => return Ok(None),
                };
                let device = event.device.index().map_err(map_err)?;
                Ok(Some(XidEvent { device, xid }))
            }
            Err(NvmlError::Timeout) => Ok(None),
            Err(e) => Err(map_err(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nvml_errors_map_to_omit_lost_or_other() {
        assert_eq!(map_err(NvmlError::NotSupported), GpuError::NotSupported);
        assert_eq!(map_err(NvmlError::FunctionNotFound), GpuError::NotSupported);
        assert_eq!(map_err(NvmlError::GpuLost), GpuError::GpuLost);
        assert!(matches!(map_err(NvmlError::NoPermission), GpuError::Other(m) if !m.is_empty()));
    }

    #[test]
    fn a_missing_library_is_reported_by_name() {
        let missing = Path::new("libnvidia-ml-that-does-not-exist.so.1");
        // Another test (or a real driver) may already have started NVML in this process; then
        // the shared instance is returned and there is nothing to check here.
        if NVML.lock().unwrap_or_else(PoisonError::into_inner).is_some() {
            return;
        }
        let err = NvmlSource::open(Some(missing)).unwrap_err();
        assert!(matches!(err, NvmlInitError::Library { .. }), "{err:?}");
        let text = err.to_string();
        assert!(text.contains("libnvidia-ml-that-does-not-exist.so.1"), "{text}");
    }
}
