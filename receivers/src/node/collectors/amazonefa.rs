//! `amazonefa`: EFA hardware counters from `/sys/class/infiniband/<device>/ports/<port>/
//! hw_counters`, as the HyperPod EFA exporter names them: `node_amazonefa_<counter>{device,port}`,
//! typed counter although the names have no `_total`, plus `node_amazonefa_info{device}`.

use nodetel_core::MetricType;
use nodetel_host::sysfs::infiniband;

use super::{CollectError, Collector};
use crate::node::config::Paths;
use crate::node::series::{Context, Family};
use std::path::PathBuf;

/// The counters the exporter emits and their help texts. The last five exist only in exporter
/// builds from late 2025 on (newer kernels' EFA driver); a device without them omits them.
const COUNTERS: [(&str, &str); 23] = [
    ("lifespan", "Lifespan of the port"),
    ("rdma_read_bytes", "Number of bytes read with RDMA"),
    ("rdma_read_resp_bytes", "Number of read reponses bytes with RDMA"),
    ("rdma_read_wr_err", "Number of read write errors with RDMA"),
    ("rdma_read_wrs", "Number of read rs with RDMA"),
    ("rdma_write_bytes", "Number of bytes wrote with RDMA"),
    ("rdma_write_recv_bytes", "Number of bytes wrote and received with RDMA"),
    ("rdma_write_wr_err", "Number of bytes wrote wr with error RDMA"),
    ("rdma_write_wrs", "Number of bytes wrote wrs RDMA"),
    ("recv_bytes", "Number of bytes recv bytes"),
    ("recv_wrs", "Number of bytes recv wrs"),
    ("rx_bytes", "Number of bytes received"),
    ("rx_drops", "Number of packets droped"),
    ("rx_pkts", "Number of packets received"),
    ("send_bytes", "Number of bytes send"),
    ("send_wrs", "Number of wrs send"),
    ("tx_bytes", "Number of bytes transmitted"),
    ("tx_pkts", "Number of packets transmitted"),
    ("retrans_bytes", "Number of bytes retransmitted"),
    ("retrans_pkts", "Number of packets retransmitted"),
    ("retrans_timeout_events", "Number of retransmission timeout events"),
    (
        "impaired_remote_conn_events",
        "Number of impaired remote connection events",
    ),
    ("unresponsive_remote_events", "Number of unresponsive remote events"),
];

pub(crate) struct AmazonEfaCollector {
    sysfs: PathBuf,
    info: Family,
    counters: Vec<Family>,
}

impl AmazonEfaCollector {
    pub(crate) fn new(paths: &Paths) -> AmazonEfaCollector {
        AmazonEfaCollector {
            sysfs: paths.sysfs.clone(),
            info: Family::new(
                "node_amazonefa_info",
                MetricType::Gauge,
                "Non-numeric data from /sys/class/infiniband/<device>, value is always 1.",
            ),
            counters: COUNTERS
                .iter()
                .map(|(name, help)| Family::new(&format!("node_amazonefa_{name}"), MetricType::Counter, help))
                .collect(),
        }
    }
}

impl Collector for AmazonEfaCollector {
    fn update(&mut self, cx: &mut Context<'_>) -> Result<(), CollectError> {
        let devices = match infiniband::read(&self.sysfs, cx.buf) {
            Ok(d) => d,
            Err(e) if e.is_not_found() => return Err(CollectError::NoData("no /sys/class/infiniband devices")),
            Err(e) => return Err(e.into()),
        };
        for device in &devices {
            self.info.emit(cx, &[("device", &device.name)], 1.0)?;
            for port in &device.ports {
                for (name, value) in &port.counters {
                    if let Some(i) = COUNTERS.iter().position(|(n, _)| n == name) {
                        self.counters[i].emit(cx, &[("device", &device.name), ("port", &port.port)], *value as f64)?;
                    }
                }
            }
        }
        Ok(())
    }
}
