//! `udp_queues`: bytes queued in UDP sockets, summed from `/proc/net/udp` and `udp6`.

use std::path::PathBuf;

use nodetel_core::MetricType;
use nodetel_host::procfs::{net, read_into};

use super::{CollectError, Collector};
use crate::node::config::Paths;
use crate::node::series::{Context, Family};

pub(crate) struct UdpQueuesCollector {
    paths: [(PathBuf, &'static str); 2],
    queues: Family,
}

impl UdpQueuesCollector {
    pub(crate) fn new(paths: &Paths) -> UdpQueuesCollector {
        UdpQueuesCollector {
            paths: [
                (paths.procfs.join("net/udp"), "v4"),
                (paths.procfs.join("net/udp6"), "v6"),
            ],
            queues: Family::new(
                "node_udp_queues",
                MetricType::Gauge,
                "Number of allocated memory in the kernel for UDP datagrams in bytes.",
            ),
        }
    }
}

impl Collector for UdpQueuesCollector {
    fn update(&mut self, cx: &mut Context<'_>) -> Result<(), CollectError> {
        let mut found = 0;
        for (path, ip) in &self.paths {
            match read_into(path, cx.buf) {
                Ok(()) => {}
                Err(e) if e.is_not_found() => continue,
                Err(e) => return Err(e.into()),
            }
            let (tx, rx) = net::parse_udp_queues(cx.buf, path)?;
            self.queues.emit(cx, &[("ip", ip), ("queue", "tx")], tx as f64)?;
            self.queues.emit(cx, &[("ip", ip), ("queue", "rx")], rx as f64)?;
            found += 1;
        }
        if found == 0 {
            return Err(CollectError::NoData("no /proc/net/udp or udp6"));
        }
        Ok(())
    }
}
