//! `cpu`: `node_cpu_seconds_total` and `node_cpu_guest_seconds_total` from `/proc/stat`, plus
//! thermal throttle counts and isolated CPUs from `/sys/devices/system/cpu`.
//!
//! Like node_exporter, counters never go backwards: a value below the previous one is replaced
//! by the previous one, and an idle counter that drops by 3 s or more is taken as a CPU hotplug,
//! which resets that CPU's history.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use nodetel_core::{Labels, MetricMetadata, MetricType};
use nodetel_host::procfs::stat::{self, CpuTicks, Stat, USER_HZ};
use nodetel_host::procfs::{read_into, values};
use nodetel_host::sysfs::list_dir;

use super::{CollectError, Collector};
use crate::node::config::Paths;
use crate::node::series::{Context, Family, family};

/// An idle counter that falls by at least this many seconds means the CPU was replugged.
const JUMP_BACK_SECONDS: f64 = 3.0;

/// The series of one CPU: 8 `node_cpu_seconds_total` modes, then 2 guest modes.
const MODES: [&str; 8] = ["user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal"];
const GUEST_MODES: [&str; 2] = ["user", "nice"];
const SERIES: usize = MODES.len() + GUEST_MODES.len();
const IDLE: usize = 3;

struct CpuState {
    labels: Box<[Labels]>,
    /// Last reported values, in seconds, in series order.
    last: [f64; SERIES],
    seen: bool,
}

pub(crate) struct CpuCollector {
    path: PathBuf,
    stat: Stat,
    seconds: Arc<MetricMetadata>,
    guest: Arc<MetricMetadata>,
    cpus: HashMap<u32, CpuState>,
    sysfs_cpu: PathBuf,
    core_throttles: Family,
    package_throttles: Family,
    isolated: Family,
    aux: String,
}

impl CpuCollector {
    pub(crate) fn new(paths: &Paths) -> CpuCollector {
        CpuCollector {
            path: paths.procfs.join(stat::FILE),
            stat: Stat::default(),
            seconds: family(
                "node_cpu_seconds_total",
                MetricType::Counter,
                "Seconds the CPUs spent in each mode.",
            ),
            guest: family(
                "node_cpu_guest_seconds_total",
                MetricType::Counter,
                "Seconds the CPUs spent in guests (VMs) for each mode.",
            ),
            cpus: HashMap::new(),
            sysfs_cpu: paths.sysfs.join("devices/system/cpu"),
            core_throttles: Family::new(
                "node_cpu_core_throttles_total",
                MetricType::Counter,
                "Number of times this CPU core has been throttled.",
            ),
            package_throttles: Family::new(
                "node_cpu_package_throttles_total",
                MetricType::Counter,
                "Number of times this CPU package has been throttled.",
            ),
            isolated: Family::new(
                "node_cpu_isolated",
                MetricType::Gauge,
                "Whether each core is isolated, information from /sys/devices/system/cpu/isolated.",
            ),
            aux: String::new(),
        }
    }

    /// Reads a small unsigned number file, `None` when it is missing or malformed.
    fn number(&mut self, path: &std::path::Path) -> Option<u64> {
        read_into(path, &mut self.aux).ok()?;
        values::parse_numbers::<1>(&self.aux, path).ok().map(|[v]| v)
    }

    /// Thermal throttle counts, once per package and once per (package, core), like
    /// node_exporter; CPUs without topology or throttle files are skipped.
    fn update_throttles(&mut self, cx: &mut Context<'_>) -> Result<(), CollectError> {
        let entries = match list_dir(&self.sysfs_cpu) {
            Ok(e) => e,
            Err(_) => return Ok(()),
        };
        let mut packages: Vec<(u64, u64)> = Vec::new();
        let mut cores: Vec<((u64, u64), u64)> = Vec::new();
        for entry in &entries {
            let Some(n) = entry.strip_prefix("cpu") else { continue };
            if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
                continue;
            }
            let dir = self.sysfs_cpu.join(entry);
            let (Some(package), Some(core)) = (
                self.number(&dir.join("topology/physical_package_id")),
                self.number(&dir.join("topology/core_id")),
            ) else {
                continue;
            };
            if !cores.iter().any(|(k, _)| *k == (package, core))
                && let Some(count) = self.number(&dir.join("thermal_throttle/core_throttle_count"))
            {
                cores.push(((package, core), count));
            }
            if !packages.iter().any(|(p, _)| *p == package)
                && let Some(count) = self.number(&dir.join("thermal_throttle/package_throttle_count"))
            {
                packages.push((package, count));
            }
        }
        for (package, count) in packages {
            self.package_throttles
                .emit(cx, &[("package", &package.to_string())], count as f64)?;
        }
        for ((package, core), count) in cores {
            self.core_throttles.emit(
                cx,
                &[("core", &core.to_string()), ("package", &package.to_string())],
                count as f64,
            )?;
        }
        Ok(())
    }

    /// `node_cpu_isolated` for each CPU in the `isolated` list (`2-3,5`).
    fn update_isolated(&mut self, cx: &mut Context<'_>) -> Result<(), CollectError> {
        if read_into(&self.sysfs_cpu.join("isolated"), &mut self.aux).is_err() {
            return Ok(());
        }
        let list = self.aux.trim().to_owned();
        for cpu in cpu_list(&list) {
            self.isolated.emit(cx, &[("cpu", &cpu.to_string())], 1.0)?;
        }
        Ok(())
    }

    fn new_state(&self, cpu: u32, cx: &mut Context<'_>) -> Result<CpuState, CollectError> {
        let id = cpu.to_string();
        let mut labels = Vec::with_capacity(SERIES);
        for mode in MODES {
            labels.push(
                cx.series
                    .labels(&self.seconds.family, &[("cpu", &id), ("mode", mode)])?,
            );
        }
        for mode in GUEST_MODES {
            labels.push(cx.series.labels(&self.guest.family, &[("cpu", &id), ("mode", mode)])?);
        }
        Ok(CpuState {
            labels: labels.into_boxed_slice(),
            last: [0.0; SERIES],
            seen: false,
        })
    }
}

/// The CPUs of a kernel CPU list (`0-2,5`); malformed parts are skipped.
fn cpu_list(list: &str) -> Vec<u32> {
    let mut out = Vec::new();
    for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                if let (Ok(a), Ok(b)) = (a.parse::<u32>(), b.parse::<u32>())
                    && a <= b
                    && b - a < 65_536
                {
                    out.extend(a..=b);
                }
            }
            None => out.extend(part.parse::<u32>().ok()),
        }
    }
    out
}

fn seconds(t: &CpuTicks) -> [f64; SERIES] {
    [
        t.user,
        t.nice,
        t.system,
        t.idle,
        t.iowait,
        t.irq,
        t.softirq,
        t.steal,
        t.guest,
        t.guest_nice,
    ]
    .map(|ticks| ticks as f64 / USER_HZ)
}

impl Collector for CpuCollector {
    fn update(&mut self, cx: &mut Context<'_>) -> Result<(), CollectError> {
        read_into(&self.path, cx.buf)?;
        self.stat.parse_into(cx.buf, &self.path)?;
        for state in self.cpus.values_mut() {
            state.seen = false;
        }
        cx.family(&self.seconds);
        cx.family(&self.guest);
        for i in 0..self.stat.cpus.len() {
            let (cpu, ticks) = self.stat.cpus[i];
            if !self.cpus.contains_key(&cpu) {
                let state = self.new_state(cpu, cx)?;
                self.cpus.insert(cpu, state);
            }
            let Some(state) = self.cpus.get_mut(&cpu) else { continue };
            let now = seconds(&ticks);
            if state.last[IDLE] - now[IDLE] >= JUMP_BACK_SECONDS {
                state.last = [0.0; SERIES];
            }
            for (last, now) in state.last.iter_mut().zip(now) {
                if now >= *last {
                    *last = now;
                }
            }
            state.seen = true;
            for (labels, value) in state.labels.iter().zip(state.last) {
                cx.sample(labels, value);
            }
        }
        // CPUs that went offline stop reporting; forget them so a replug starts afresh.
        self.cpus.retain(|_, s| s.seen);
        self.update_isolated(cx)?;
        self.update_throttles(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists_expand_ranges() {
        assert_eq!(cpu_list("0-2,5"), [0, 1, 2, 5]);
        assert_eq!(cpu_list(""), Vec::<u32>::new());
        assert_eq!(cpu_list("7,x,3-1"), [7]);
    }
}
