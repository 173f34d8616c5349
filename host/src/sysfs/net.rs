//! `/sys/class/net/<iface>/*`: network interface properties.

use std::path::Path;

use super::list_dir;
use crate::procfs::{ReadError, read_into};

/// The class directory, relative to the sysfs root.
pub const DIR: &str = "class/net";

/// One interface's attribute files, as read. A file that cannot be read (some fail with
/// EINVAL on a down link) is `None`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NetClass {
    /// Interface name.
    pub name: String,
    /// `(file name, trimmed contents)` of every attribute that was readable.
    pub attributes: Vec<(&'static str, String)>,
}

impl NetClass {
    /// The trimmed contents of attribute `file`.
    pub fn get(&self, file: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(f, _)| *f == file)
            .map(|(_, v)| v.as_str())
    }
}

/// The attribute files read for each interface.
pub const ATTRIBUTES: [&str; 22] = [
    "addr_assign_type",
    "address",
    "broadcast",
    "carrier",
    "carrier_changes",
    "carrier_down_count",
    "carrier_up_count",
    "dev_id",
    "dormant",
    "duplex",
    "flags",
    "ifalias",
    "ifindex",
    "iflink",
    "link_mode",
    "mtu",
    "name_assign_type",
    "netdev_group",
    "operstate",
    "speed",
    "tx_queue_len",
    "type",
];

/// Reads every interface under `<sysfs>/class/net`.
pub fn read(sysfs: &Path, buf: &mut String) -> Result<Vec<NetClass>, ReadError> {
    let dir = sysfs.join(DIR);
    let mut out = Vec::new();
    for name in list_dir(&dir)? {
        let iface = dir.join(&name);
        if !iface.is_dir() {
            continue;
        }
        let mut attributes = Vec::with_capacity(ATTRIBUTES.len());
        for file in ATTRIBUTES {
            if read_into(&iface.join(file), buf).is_ok() {
                attributes.push((file, buf.trim().to_owned()));
            }
        }
        out.push(NetClass { name, attributes });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interfaces_and_readable_attributes_are_read() {
        let root = tempfile::tempdir().unwrap();
        let eth = root.path().join(DIR).join("eth0");
        std::fs::create_dir_all(&eth).unwrap();
        std::fs::write(eth.join("mtu"), "9001\n").unwrap();
        std::fs::write(eth.join("operstate"), "up\n").unwrap();
        let got = read(root.path(), &mut String::new()).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].name, "eth0");
        assert_eq!(got[0].get("mtu"), Some("9001"));
        assert_eq!(got[0].get("speed"), None);
    }
}
