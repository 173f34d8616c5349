//! `schedstat`: per-CPU scheduler running and waiting time from `/proc/schedstat`. Kernels
//! without CONFIG_SCHEDSTATS have no data.

use std::path::PathBuf;

use nodetel_core::MetricType;
use nodetel_host::procfs::{read_into, schedstat};

use super::{CollectError, Collector};
use crate::node::config::Paths;
use crate::node::series::{Context, Family};

pub(crate) struct SchedstatCollector {
    path: PathBuf,
    running: Family,
    waiting: Family,
    timeslices: Family,
}

impl SchedstatCollector {
    pub(crate) fn new(paths: &Paths) -> SchedstatCollector {
        use MetricType::Counter;
        SchedstatCollector {
            path: paths.procfs.join(schedstat::FILE),
            running: Family::new(
                "node_schedstat_running_seconds_total",
                Counter,
                "Number of seconds CPU spent running a process.",
            ),
            waiting: Family::new(
                "node_schedstat_waiting_seconds_total",
                Counter,
                "Number of seconds spent by processing waiting for this CPU.",
            ),
            timeslices: Family::new(
                "node_schedstat_timeslices_total",
                Counter,
                "Number of timeslices executed by CPU.",
            ),
        }
    }
}

impl Collector for SchedstatCollector {
    fn update(&mut self, cx: &mut Context<'_>) -> Result<(), CollectError> {
        match read_into(&self.path, cx.buf) {
            Ok(()) => {}
            Err(e) if e.is_not_found() => return Err(CollectError::NoData("no /proc/schedstat")),
            Err(e) => return Err(e.into()),
        }
        let text = std::mem::take(cx.buf);
        let result = (|| {
            for s in schedstat::parse(&text, &self.path) {
                let s = s?;
                let cpu = [("cpu", s.cpu)];
                self.running.emit(cx, &cpu, s.running_ns as f64 / 1e9)?;
                self.waiting.emit(cx, &cpu, s.waiting_ns as f64 / 1e9)?;
                self.timeslices.emit(cx, &cpu, s.timeslices as f64)?;
            }
            Ok(())
        })();
        *cx.buf = text;
        result
    }
}
