//! `softnet`: per-CPU packet processing counters from `/proc/net/softnet_stat`.

use std::path::PathBuf;

use nodetel_core::MetricType;
use nodetel_host::procfs::{net, read_into};

use super::{CollectError, Collector};
use crate::node::config::Paths;
use crate::node::series::{Context, Family};

const FAMILIES: [(&str, &str); 7] = [
    ("node_softnet_processed_total", "Number of processed packets"),
    ("node_softnet_dropped_total", "Number of dropped packets"),
    (
        "node_softnet_times_squeezed_total",
        "Number of times processing packets ran out of quota",
    ),
    (
        "node_softnet_cpu_collision_total",
        "Number of collision occur while obtaining device lock while transmitting",
    ),
    (
        "node_softnet_received_rps_total",
        "Number of times cpu woken up received_rps",
    ),
    (
        "node_softnet_flow_limit_count_total",
        "Number of times flow limit has been reached",
    ),
    ("node_softnet_backlog_len", "Softnet backlog status"),
];

pub(crate) struct SoftnetCollector {
    path: PathBuf,
    families: Vec<Family>,
}

impl SoftnetCollector {
    pub(crate) fn new(paths: &Paths) -> SoftnetCollector {
        SoftnetCollector {
            path: paths.procfs.join("net/softnet_stat"),
            families: FAMILIES
                .iter()
                .map(|(name, help)| {
                    let kind = if name.ends_with("_total") {
                        MetricType::Counter
                    } else {
                        MetricType::Gauge
                    };
                    Family::new(name, kind, help)
                })
                .collect(),
        }
    }
}

impl Collector for SoftnetCollector {
    fn update(&mut self, cx: &mut Context<'_>) -> Result<(), CollectError> {
        read_into(&self.path, cx.buf)?;
        let rows = net::parse_softnet(cx.buf, &self.path)?;
        for row in &rows {
            let cpu = row.cpu.to_string();
            let values = [
                row.processed,
                row.dropped,
                row.time_squeezed,
                row.cpu_collision,
                row.received_rps,
                row.flow_limit_count,
                row.backlog_len,
            ];
            for (family, value) in self.families.iter_mut().zip(values) {
                family.emit(cx, &[("cpu", &cpu)], value as f64)?;
            }
        }
        Ok(())
    }
}
