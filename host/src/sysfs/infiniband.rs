//! `/sys/class/infiniband/<device>/ports/<port>/hw_counters/*`: RDMA device counters (EFA
//! devices expose their traffic counters here).

use std::path::Path;

use super::list_dir;
use crate::procfs::{ReadError, read_into};

/// The class directory, relative to the sysfs root.
pub const DIR: &str = "class/infiniband";

/// One port's state and hardware counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortCounters {
    /// The port number directory name (`1`).
    pub port: String,
    /// `state` (`4: ACTIVE`), if readable.
    pub state: Option<String>,
    /// `phys_state` (`5: LinkUp`), if readable.
    pub phys_state: Option<String>,
    /// `rate` (`100 Gb/sec (4X EDR)`), if readable.
    pub rate: Option<String>,
    /// `(counter file name, value)`, sorted by name. Unreadable or non-numeric files are left out.
    pub counters: Vec<(String, u64)>,
}

/// One RDMA device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    /// Device name (`rdmap79s0`, `efa_0`).
    pub name: String,
    /// `board_id`, if readable.
    pub board_id: Option<String>,
    /// `fw_ver`, if readable.
    pub firmware_version: Option<String>,
    /// `hca_type`, if readable.
    pub hca_type: Option<String>,
    /// Its ports.
    pub ports: Vec<PortCounters>,
}

/// Reads every device under `<sysfs>/class/infiniband`. A missing class directory is an error
/// for which [`ReadError::is_not_found`] holds (no RDMA devices).
pub fn read(sysfs: &Path, buf: &mut String) -> Result<Vec<Device>, ReadError> {
    let dir = sysfs.join(DIR);
    let mut devices = Vec::new();
    let attribute = |path: &Path, buf: &mut String| read_into(path, buf).ok().map(|()| buf.trim().to_owned());
    for name in list_dir(&dir)? {
        let device_dir = dir.join(&name);
        let board_id = attribute(&device_dir.join("board_id"), buf);
        let firmware_version = attribute(&device_dir.join("fw_ver"), buf);
        let hca_type = attribute(&device_dir.join("hca_type"), buf);
        let ports_dir = device_dir.join("ports");
        let mut ports = Vec::new();
        let port_names = match list_dir(&ports_dir) {
            Ok(p) => p,
            Err(e) if e.is_not_found() => Vec::new(),
            Err(e) => return Err(e),
        };
        for port in port_names {
            let port_dir = ports_dir.join(&port);
            let state = attribute(&port_dir.join("state"), buf);
            let phys_state = attribute(&port_dir.join("phys_state"), buf);
            let rate = attribute(&port_dir.join("rate"), buf);
            let hw = port_dir.join("hw_counters");
            let files = match list_dir(&hw) {
                Ok(f) => f,
                Err(e) if e.is_not_found() => Vec::new(),
                Err(e) => return Err(e),
            };
            let mut counters = Vec::with_capacity(files.len());
            for file in files {
                // Some counters are not readable or not supported by a device; skip them.
                if read_into(&hw.join(&file), buf).is_err() {
                    continue;
                }
                if let Ok(v) = buf.trim().parse::<u64>() {
                    counters.push((file, v));
                }
            }
            ports.push(PortCounters {
                port,
                state,
                phys_state,
                rate,
                counters,
            });
        }
        devices.push(Device {
            name,
            board_id,
            firmware_version,
            hca_type,
            ports,
        });
    }
    Ok(devices)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_ports_and_counters_are_read() {
        let root = tempfile::tempdir().unwrap();
        let hw = root.path().join(DIR).join("rdmap79s0/ports/1/hw_counters");
        std::fs::create_dir_all(&hw).unwrap();
        std::fs::write(hw.join("tx_bytes"), "1234\n").unwrap();
        std::fs::write(hw.join("rx_pkts"), "7\n").unwrap();
        std::fs::write(hw.join("garbage"), "n/a\n").unwrap();
        std::fs::write(hw.join("../state"), "4: ACTIVE\n").unwrap();
        std::fs::write(root.path().join(DIR).join("rdmap79s0/hca_type"), "efa\n").unwrap();
        let got = read(root.path(), &mut String::new()).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].name, "rdmap79s0");
        assert_eq!(got[0].ports[0].port, "1");
        assert_eq!(got[0].ports[0].state.as_deref(), Some("4: ACTIVE"));
        assert_eq!(got[0].ports[0].rate, None);
        assert_eq!(got[0].hca_type.as_deref(), Some("efa"));
        assert_eq!(got[0].board_id, None);
        assert_eq!(
            got[0].ports[0].counters,
            [("rx_pkts".to_owned(), 7), ("tx_bytes".to_owned(), 1234)]
        );
        assert!(
            read(&root.path().join("none"), &mut String::new())
                .unwrap_err()
                .is_not_found()
        );
    }
}
