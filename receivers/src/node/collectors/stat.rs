//! `stat`: boot time, context switches, forks, interrupts and process counts from `/proc/stat`.

use std::path::PathBuf;

use nodetel_core::MetricType;
use nodetel_host::procfs::read_into;
use nodetel_host::procfs::stat::{self, Stat};

use super::{CollectError, Collector};
use crate::node::config::Paths;
use crate::node::series::{Context, Family};

pub(crate) struct StatCollector {
    path: PathBuf,
    stat: Stat,
    families: [Family; 6],
}

impl StatCollector {
    pub(crate) fn new(paths: &Paths) -> StatCollector {
        use MetricType::{Counter, Gauge};
        StatCollector {
            path: paths.procfs.join(stat::FILE),
            stat: Stat::default(),
            families: [
                Family::new("node_intr_total", Counter, "Total number of interrupts serviced."),
                Family::new(
                    "node_context_switches_total",
                    Counter,
                    "Total number of context switches.",
                ),
                Family::new("node_forks_total", Counter, "Total number of forks."),
                Family::new("node_boot_time_seconds", Gauge, "Node boot time, in unixtime."),
                Family::new("node_procs_running", Gauge, "Number of processes in runnable state."),
                Family::new(
                    "node_procs_blocked",
                    Gauge,
                    "Number of processes blocked waiting for I/O to complete.",
                ),
            ],
        }
    }
}

impl Collector for StatCollector {
    fn update(&mut self, cx: &mut Context<'_>) -> Result<(), CollectError> {
        read_into(&self.path, cx.buf)?;
        self.stat.parse_into(cx.buf, &self.path)?;
        let s = &self.stat;
        // node_exporter reports absent lines as zero.
        let values = [
            s.interrupts,
            s.context_switches,
            s.forks,
            s.boot_time,
            s.procs_running,
            s.procs_blocked,
        ];
        for (family, value) in self.families.iter_mut().zip(values) {
            family.emit(cx, &[], value.unwrap_or(0) as f64)?;
        }
        Ok(())
    }
}
