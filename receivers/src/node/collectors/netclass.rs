//! `netclass`: interface properties from `/sys/class/net/<iface>`: `node_network_up`,
//! `node_network_info` and one `node_network_<property>` gauge per numeric attribute.

use std::path::PathBuf;

use nodetel_core::MetricType;
use nodetel_host::sysfs::net;

use super::{CollectError, Collector};
use crate::node::config::Paths;
use crate::node::series::{Context, Family};

/// `(metric suffix, sysfs file, scale)` in node_exporter's order; a file that is missing or
/// unreadable leaves its series out.
const PROPERTIES: [(&str, &str, f64); 17] = [
    ("address_assign_type", "addr_assign_type", 1.0),
    ("carrier", "carrier", 1.0),
    ("carrier_changes_total", "carrier_changes", 1.0),
    ("carrier_up_changes_total", "carrier_up_count", 1.0),
    ("carrier_down_changes_total", "carrier_down_count", 1.0),
    ("device_id", "dev_id", 1.0),
    ("dormant", "dormant", 1.0),
    ("flags", "flags", 1.0),
    ("iface_id", "ifindex", 1.0),
    ("iface_link", "iflink", 1.0),
    ("iface_link_mode", "link_mode", 1.0),
    ("mtu_bytes", "mtu", 1.0),
    ("name_assign_type", "name_assign_type", 1.0),
    ("net_dev_group", "netdev_group", 1.0),
    // Mbit/s to bytes/s; a reported -1 (unknown) is scaled too, as node_exporter does by default.
    ("speed_bytes", "speed", 125_000.0),
    ("transmit_queue_length", "tx_queue_len", 1.0),
    ("protocol_type", "type", 1.0),
];

/// A sysfs integer: decimal, or hex with `0x` (`dev_id`, `flags`).
fn number(s: &str) -> Option<f64> {
    match s.strip_prefix("0x") {
        Some(hex) => i64::from_str_radix(hex, 16).ok().map(|v| v as f64),
        None => s.parse::<i64>().ok().map(|v| v as f64),
    }
}

pub(crate) struct NetclassCollector {
    sysfs: PathBuf,
    reader: net::NetClassReader,
    up: Family,
    info: Family,
    properties: Vec<Family>,
}

impl NetclassCollector {
    pub(crate) fn new(paths: &Paths) -> NetclassCollector {
        NetclassCollector {
            sysfs: paths.sysfs.clone(),
            reader: net::NetClassReader::default(),
            up: Family::new(
                "node_network_up",
                MetricType::Gauge,
                "Value is 1 if operstate is 'up', 0 otherwise.",
            ),
            info: Family::new(
                "node_network_info",
                MetricType::Gauge,
                "Non-numeric data from /sys/class/net/<iface>, value is always 1.",
            ),
            properties: PROPERTIES
                .iter()
                .map(|(name, _, _)| {
                    let kind = if name.ends_with("_total") {
                        MetricType::Counter
                    } else {
                        MetricType::Gauge
                    };
                    Family::new(
                        &format!("node_network_{name}"),
                        kind,
                        &format!("Network device property: {name}"),
                    )
                })
                .collect(),
        }
    }
}

impl Collector for NetclassCollector {
    fn update(&mut self, cx: &mut Context<'_>) -> Result<(), CollectError> {
        let NetclassCollector {
            sysfs,
            reader,
            up,
            info,
            properties,
        } = self;
        let mut failure = None;
        reader.read_each(sysfs, |iface| {
            if failure.is_none()
                && let Err(e) = emit(cx, iface, up, info, properties)
            {
                failure = Some(e);
            }
        })?;
        match failure {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

fn emit(
    cx: &mut Context<'_>,
    iface: &net::NetClassReader,
    up: &mut Family,
    info: &mut Family,
    properties: &mut [Family],
) -> Result<(), CollectError> {
    let device = iface.name();
    let operstate = iface.get("operstate").unwrap_or("");
    up.emit(cx, &[("device", device)], if operstate == "up" { 1.0 } else { 0.0 })?;
    let admin_up = iface.get("flags").and_then(number).map(|f| (f as i64) & 1 == 1);
    let adminstate = match admin_up {
        Some(true) => "up",
        Some(false) => "down",
        None => "",
    };
    info.emit(
        cx,
        &[
            ("address", iface.get("address").unwrap_or("")),
            ("adminstate", adminstate),
            ("broadcast", iface.get("broadcast").unwrap_or("")),
            ("device", device),
            ("duplex", iface.get("duplex").unwrap_or("")),
            ("ifalias", iface.get("ifalias").unwrap_or("")),
            ("operstate", operstate),
        ],
        1.0,
    )?;
    for (family, (_, file, scale)) in properties.iter_mut().zip(PROPERTIES) {
        if let Some(v) = iface.get(file).and_then(number) {
            family.emit(cx, &[("device", device)], v * scale)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sysfs_numbers_may_be_hex() {
        assert_eq!(number("0x1003"), Some(4099.0));
        assert_eq!(number("-1"), Some(-1.0));
        assert_eq!(number("9001"), Some(9001.0));
        assert_eq!(number("up"), None);
    }
}
