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
    let mut out = Vec::new();
    let mut reader = NetClassReader::default();
    reader.read_each(sysfs, |iface| {
        let attributes = ATTRIBUTES
            .iter()
            .filter_map(|file| Some((*file, iface.get(file)?.to_owned())))
            .collect();
        out.push(NetClass {
            name: iface.name().to_owned(),
            attributes,
        });
    })?;
    buf.clear();
    Ok(out)
}

/// Reads interfaces one at a time into buffers it keeps, so that a steady-state round only
/// allocates for the directory listing.
#[derive(Debug, Default)]
pub struct NetClassReader {
    name: String,
    values: [String; ATTRIBUTES.len()],
    present: [bool; ATTRIBUTES.len()],
    path: std::path::PathBuf,
}

impl NetClassReader {
    /// The interface being visited.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The trimmed contents of attribute `file`, if it was readable.
    pub fn get(&self, file: &str) -> Option<&str> {
        let i = ATTRIBUTES.iter().position(|f| *f == file)?;
        self.present[i].then(|| self.values[i].trim())
    }

    /// Calls `each` with this reader positioned on every interface under `<sysfs>/class/net`.
    pub fn read_each(&mut self, sysfs: &Path, mut each: impl FnMut(&NetClassReader)) -> Result<(), ReadError> {
        let dir = sysfs.join(DIR);
        for name in list_dir(&dir)? {
            self.path.clear();
            self.path.push(&dir);
            self.path.push(&name);
            if !self.path.is_dir() {
                continue;
            }
            for (i, file) in ATTRIBUTES.iter().enumerate() {
                self.path.push(file);
                self.present[i] = read_into(&self.path, &mut self.values[i]).is_ok();
                self.path.pop();
            }
            self.name.clear();
            self.name.push_str(&name);
            each(self);
        }
        Ok(())
    }
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
        let mut reader = NetClassReader::default();
        let mut seen = Vec::new();
        reader
            .read_each(root.path(), |i| {
                seen.push((i.name().to_owned(), i.get("operstate").map(str::to_owned)))
            })
            .unwrap();
        assert_eq!(seen, [("eth0".to_owned(), Some("up".to_owned()))]);
    }
}
