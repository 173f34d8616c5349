//! `cpu`: `node_cpu_seconds_total` and `node_cpu_guest_seconds_total` from `/proc/stat`.
//!
//! Like node_exporter, counters never go backwards: a value below the previous one is replaced
//! by the previous one, and an idle counter that drops by 3 s or more is taken as a CPU hotplug,
//! which resets that CPU's history.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use nodetel_core::{Labels, MetricMetadata, MetricType};
use nodetel_host::procfs::read_into;
use nodetel_host::procfs::stat::{self, CpuTicks, Stat, USER_HZ};

use super::{CollectError, Collector};
use crate::node::config::Paths;
use crate::node::series::{Context, family};

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
        }
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
        Ok(())
    }
}
