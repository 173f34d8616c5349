//! `cpufreq`: CPU frequencies and scaling governors from
//! `/sys/devices/system/cpu/cpu<N>/cpufreq` (kHz there, Hz here). Virtual machines without
//! cpufreq report nothing.

use std::path::PathBuf;

use nodetel_core::MetricType;
use nodetel_host::procfs::read_into;
use nodetel_host::sysfs::list_dir;

use super::{CollectError, Collector};
use crate::node::config::Paths;
use crate::node::series::{Context, Family};

/// `(metric, file, help)`; `cpuinfo_cur_freq` is readable by root only.
const FREQUENCIES: [(&str, &str, &str); 6] = [
    (
        "node_cpu_frequency_hertz",
        "cpuinfo_cur_freq",
        "Current CPU thread frequency in hertz.",
    ),
    (
        "node_cpu_frequency_max_hertz",
        "cpuinfo_max_freq",
        "Maximum CPU thread frequency in hertz.",
    ),
    (
        "node_cpu_frequency_min_hertz",
        "cpuinfo_min_freq",
        "Minimum CPU thread frequency in hertz.",
    ),
    (
        "node_cpu_scaling_frequency_hertz",
        "scaling_cur_freq",
        "Current scaled CPU thread frequency in hertz.",
    ),
    (
        "node_cpu_scaling_frequency_max_hertz",
        "scaling_max_freq",
        "Maximum scaled CPU thread frequency in hertz.",
    ),
    (
        "node_cpu_scaling_frequency_min_hertz",
        "scaling_min_freq",
        "Minimum scaled CPU thread frequency in hertz.",
    ),
];

pub(crate) struct CpufreqCollector {
    cpus: PathBuf,
    frequencies: Vec<Family>,
    governor: Family,
    aux: String,
}

impl CpufreqCollector {
    pub(crate) fn new(paths: &Paths) -> CpufreqCollector {
        CpufreqCollector {
            cpus: paths.sysfs.join("devices/system/cpu"),
            frequencies: FREQUENCIES
                .iter()
                .map(|(name, _, help)| Family::new(name, MetricType::Gauge, help))
                .collect(),
            governor: Family::new(
                "node_cpu_scaling_governor",
                MetricType::Gauge,
                "Current enabled CPU frequency governor.",
            ),
            aux: String::new(),
        }
    }
}

impl Collector for CpufreqCollector {
    fn update(&mut self, cx: &mut Context<'_>) -> Result<(), CollectError> {
        let entries = match list_dir(&self.cpus) {
            Ok(e) => e,
            Err(e) if e.is_not_found() => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        for entry in &entries {
            let Some(cpu) = entry.strip_prefix("cpu") else { continue };
            if cpu.is_empty() || !cpu.bytes().all(|b| b.is_ascii_digit()) {
                continue;
            }
            let dir = self.cpus.join(entry).join("cpufreq");
            if !dir.is_dir() {
                continue;
            }
            for (family, (_, file, _)) in self.frequencies.iter_mut().zip(FREQUENCIES) {
                if read_into(&dir.join(file), cx.buf).is_ok()
                    && let Ok(khz) = cx.buf.trim().parse::<u64>()
                {
                    family.emit(cx, &[("cpu", cpu)], khz as f64 * 1000.0)?;
                }
            }
            if read_into(&dir.join("scaling_governor"), cx.buf).is_err() {
                continue;
            }
            let current = cx.buf.trim().to_owned();
            if current.is_empty() || read_into(&dir.join("scaling_available_governors"), &mut self.aux).is_err() {
                continue;
            }
            for governor in self.aux.split_ascii_whitespace() {
                let state = if governor == current { 1.0 } else { 0.0 };
                self.governor.emit(cx, &[("cpu", cpu), ("governor", governor)], state)?;
            }
        }
        Ok(())
    }
}
