//! `netdev`: per-interface traffic counters from `/proc/net/dev`, named as node_exporter names
//! them (`node_network_receive_bytes_total{device}`).
//!
//! node_exporter 1.9 reads the same kernel counters over rtnetlink; the kernel folds them into
//! `/proc/net/dev` columns the same way (drop includes missed errors, frame the length, overrun
//! and CRC errors, carrier the aborted, window and heartbeat errors). The one counter only
//! netlink has, `receive_nohandler`, is read from `/sys/class/net/<dev>/statistics/rx_nohandler`.

use std::path::PathBuf;

use nodetel_core::MetricType;
use nodetel_host::procfs::{netdev, read_into, values};

use super::{CollectError, Collector};
use crate::node::config::Paths;
use crate::node::series::{Context, Family};

pub(crate) struct NetdevCollector {
    path: PathBuf,
    sysfs_net: PathBuf,
    counters: Vec<Family>,
    nohandler: Family,
    aux: String,
    nohandler_path: PathBuf,
}

impl NetdevCollector {
    pub(crate) fn new(paths: &Paths) -> NetdevCollector {
        let family = |field: &str| {
            Family::new(
                &format!("node_network_{field}_total"),
                MetricType::Counter,
                &format!("Network device statistic {field}."),
            )
        };
        NetdevCollector {
            path: paths.procfs.join(netdev::FILE),
            sysfs_net: paths.sysfs.join("class/net"),
            counters: netdev::FIELDS.iter().map(|f| family(f)).collect(),
            nohandler: family("receive_nohandler"),
            aux: String::new(),
            nohandler_path: PathBuf::new(),
        }
    }
}

impl Collector for NetdevCollector {
    fn update(&mut self, cx: &mut Context<'_>) -> Result<(), CollectError> {
        read_into(&self.path, cx.buf)?;
        let text = std::mem::take(cx.buf);
        let result = (|| {
            for dev in netdev::parse(&text, &self.path) {
                let dev = dev?;
                for (family, value) in self.counters.iter_mut().zip(dev.counters) {
                    family.emit(cx, &[("device", dev.device)], value as f64)?;
                }
                self.nohandler_path.clear();
                self.nohandler_path.push(&self.sysfs_net);
                self.nohandler_path.push(dev.device);
                self.nohandler_path.push("statistics/rx_nohandler");
                if read_into(&self.nohandler_path, &mut self.aux).is_ok()
                    && let Ok([v]) = values::parse_numbers::<1>(&self.aux, &self.nohandler_path)
                {
                    self.nohandler.emit(cx, &[("device", dev.device)], v as f64)?;
                }
            }
            Ok(())
        })();
        *cx.buf = text;
        result
    }
}
