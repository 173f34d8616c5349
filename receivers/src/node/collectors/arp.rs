//! `arp`: neighbour table entries per device, counted from `/proc/net/arp`.

use std::path::PathBuf;

use nodetel_core::MetricType;
use nodetel_host::procfs::{net, read_into};

use super::{CollectError, Collector};
use crate::node::config::Paths;
use crate::node::series::{Context, Family};

pub(crate) struct ArpCollector {
    path: PathBuf,
    entries: Family,
    counts: Vec<(String, u64)>,
}

impl ArpCollector {
    pub(crate) fn new(paths: &Paths) -> ArpCollector {
        ArpCollector {
            path: paths.procfs.join("net/arp"),
            entries: Family::new("node_arp_entries", MetricType::Gauge, "ARP entries by device"),
            counts: Vec::new(),
        }
    }
}

impl Collector for ArpCollector {
    fn update(&mut self, cx: &mut Context<'_>) -> Result<(), CollectError> {
        read_into(&self.path, cx.buf)?;
        for (_, n) in &mut self.counts {
            *n = 0;
        }
        let counts = &mut self.counts;
        net::parse_arp(cx.buf, |device| match counts.iter_mut().find(|(d, _)| d == device) {
            Some((_, n)) => *n += 1,
            None => counts.push((device.to_owned(), 1)),
        });
        self.counts.retain(|(_, n)| *n > 0);
        for (device, n) in &self.counts {
            self.entries.emit(cx, &[("device", device)], *n as f64)?;
        }
        Ok(())
    }
}
