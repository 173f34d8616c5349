//! `infiniband`: node_exporter's stock InfiniBand collector, limited to what EFA devices have:
//! `node_infiniband_info`, port state, physical state and rate from `/sys/class/infiniband`.
//! (Mellanox `counters/` traffic counters are not read.) Nodes without RDMA devices have no
//! data.

use std::path::PathBuf;

use nodetel_core::MetricType;
use nodetel_host::sysfs::infiniband;

use super::{CollectError, Collector};
use crate::node::config::Paths;
use crate::node::series::{Context, Family};

pub(crate) struct InfinibandCollector {
    sysfs: PathBuf,
    info: Family,
    state: Family,
    phys_state: Family,
    rate: Family,
}

impl InfinibandCollector {
    pub(crate) fn new(paths: &Paths) -> InfinibandCollector {
        use MetricType::Gauge;
        InfinibandCollector {
            sysfs: paths.sysfs.clone(),
            info: Family::new(
                "node_infiniband_info",
                Gauge,
                "Non-numeric data from /sys/class/infiniband/<device>, value is always 1.",
            ),
            state: Family::new(
                "node_infiniband_state_id",
                Gauge,
                "State of the InfiniBand port (0: no change, 1: down, 2: init, 3: armed, 4: active, 5: act defer)",
            ),
            phys_state: Family::new(
                "node_infiniband_physical_state_id",
                Gauge,
                "Physical state of the InfiniBand port (0: no change, 1: sleep, 2: polling, 3: disable, 4: shift, 5: link up, 6: link error recover, 7: phytest)",
            ),
            rate: Family::new(
                "node_infiniband_rate_bytes_per_second",
                Gauge,
                "Maximum signal transfer rate",
            ),
        }
    }
}

/// The number before the colon of `4: ACTIVE`.
fn state_id(s: &str) -> Option<f64> {
    s.split(':').next()?.trim().parse().ok()
}

/// `100 Gb/sec (4X EDR)` in bytes per second.
fn rate_bytes(s: &str) -> Option<f64> {
    let gbits: f64 = s.split_ascii_whitespace().next()?.parse().ok()?;
    Some(gbits * 125_000_000.0)
}

impl Collector for InfinibandCollector {
    fn update(&mut self, cx: &mut Context<'_>) -> Result<(), CollectError> {
        let devices = match infiniband::read(&self.sysfs, cx.buf) {
            Ok(d) => d,
            Err(e) if e.is_not_found() => return Err(CollectError::NoData("no /sys/class/infiniband devices")),
            Err(e) => return Err(e.into()),
        };
        for d in &devices {
            self.info.emit(
                cx,
                &[
                    ("board_id", d.board_id.as_deref().unwrap_or("")),
                    ("device", &d.name),
                    ("firmware_version", d.firmware_version.as_deref().unwrap_or("")),
                    ("hca_type", d.hca_type.as_deref().unwrap_or("")),
                ],
                1.0,
            )?;
            for p in &d.ports {
                let labels = [("device", d.name.as_str()), ("port", p.port.as_str())];
                if let Some(v) = p.state.as_deref().and_then(state_id) {
                    self.state.emit(cx, &labels, v)?;
                }
                if let Some(v) = p.phys_state.as_deref().and_then(state_id) {
                    self.phys_state.emit(cx, &labels, v)?;
                }
                if let Some(v) = p.rate.as_deref().and_then(rate_bytes) {
                    self.rate.emit(cx, &labels, v)?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_and_rates_are_parsed() {
        assert_eq!(state_id("4: ACTIVE"), Some(4.0));
        assert_eq!(state_id("5: LinkUp"), Some(5.0));
        assert_eq!(state_id("ACTIVE"), None);
        assert_eq!(rate_bytes("100 Gb/sec (4X EDR)"), Some(12.5e9));
        assert_eq!(rate_bytes("fast"), None);
    }
}
