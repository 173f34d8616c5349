//! `pressure`: pressure stall totals from `/proc/pressure/{cpu,io,memory,irq}`.
//!
//! As in node_exporter, cpu reports only its `some` line and irq only its `full` line; a missing
//! file is skipped (kernels before 4.20, or before 6.1 for irq), and no file at all is "no data".

use std::path::PathBuf;

use nodetel_core::MetricType;
use nodetel_host::procfs::{pressure, read_into};

use super::{CollectError, Collector};
use crate::node::config::Paths;
use crate::node::series::{Context, Family};

struct Resource {
    path: PathBuf,
    some: Option<Family>,
    full: Option<Family>,
}

pub(crate) struct PressureCollector {
    resources: Vec<Resource>,
}

fn counter(name: &str, help: &str) -> Option<Family> {
    Some(Family::new(name, MetricType::Counter, help))
}

impl PressureCollector {
    pub(crate) fn new(paths: &Paths) -> PressureCollector {
        let dir = paths.procfs.join(pressure::DIR);
        let resource = |name: &str, some, full| Resource {
            path: dir.join(name),
            some,
            full,
        };
        PressureCollector {
            resources: vec![
                resource(
                    "cpu",
                    counter(
                        "node_pressure_cpu_waiting_seconds_total",
                        "Total time in seconds that processes have waited for CPU time",
                    ),
                    None,
                ),
                resource(
                    "io",
                    counter(
                        "node_pressure_io_waiting_seconds_total",
                        "Total time in seconds that processes have waited due to IO congestion",
                    ),
                    counter(
                        "node_pressure_io_stalled_seconds_total",
                        "Total time in seconds no process could make progress due to IO congestion",
                    ),
                ),
                resource(
                    "memory",
                    counter(
                        "node_pressure_memory_waiting_seconds_total",
                        "Total time in seconds that processes have waited for memory",
                    ),
                    counter(
                        "node_pressure_memory_stalled_seconds_total",
                        "Total time in seconds no process could make progress due to memory congestion",
                    ),
                ),
                resource(
                    "irq",
                    None,
                    counter(
                        "node_pressure_irq_stalled_seconds_total",
                        "Total time in seconds no process could make progress due to IRQ congestion",
                    ),
                ),
            ],
        }
    }
}

impl Collector for PressureCollector {
    fn update(&mut self, cx: &mut Context<'_>) -> Result<(), CollectError> {
        let mut found = 0;
        for r in &mut self.resources {
            match read_into(&r.path, cx.buf) {
                Ok(()) => {}
                Err(e) if e.is_not_found() => continue,
                Err(e) => return Err(e.into()),
            }
            let p = pressure::parse(cx.buf, &r.path)?;
            for (family, total) in [(&mut r.some, p.some_total_us), (&mut r.full, p.full_total_us)] {
                if let (Some(family), Some(total)) = (family, total) {
                    family.emit(cx, &[], total as f64 / 1e6)?;
                }
            }
            found += 1;
        }
        if found == 0 {
            return Err(CollectError::NoData(
                "no pressure files; the kernel needs 4.20+ with CONFIG_PSI",
            ));
        }
        Ok(())
    }
}
