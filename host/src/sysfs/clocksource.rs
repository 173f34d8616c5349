//! `/sys/devices/system/clocksource/clocksource<N>/{available,current}_clocksource`.

use std::path::Path;

use super::list_dir;
use crate::procfs::{ReadError, read_into};

/// The clocksource directory, relative to the sysfs root.
pub const DIR: &str = "devices/system/clocksource";

/// One clocksource device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clocksource {
    /// The `N` of `clocksource<N>`.
    pub device: String,
    /// The clocksources it could use.
    pub available: Vec<String>,
    /// The one in use.
    pub current: String,
}

/// Reads every `clocksource<N>` under `<sysfs>/devices/system/clocksource`.
pub fn read(sysfs: &Path, buf: &mut String) -> Result<Vec<Clocksource>, ReadError> {
    let dir = sysfs.join(DIR);
    let mut out = Vec::new();
    for name in list_dir(&dir)? {
        let Some(device) = name.strip_prefix("clocksource") else {
            continue;
        };
        if device.is_empty() || !device.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        read_into(&dir.join(&name).join("available_clocksource"), buf)?;
        let available = buf.split_ascii_whitespace().map(str::to_owned).collect();
        read_into(&dir.join(&name).join("current_clocksource"), buf)?;
        out.push(Clocksource {
            device: device.to_owned(),
            available,
            current: buf.trim().to_owned(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clocksources_are_read() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join(DIR).join("clocksource0");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("available_clocksource"), "kvm-clock tsc acpi_pm \n").unwrap();
        std::fs::write(dir.join("current_clocksource"), "tsc\n").unwrap();
        std::fs::create_dir_all(root.path().join(DIR).join("power")).unwrap();
        let got = read(root.path(), &mut String::new()).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].device, "0");
        assert_eq!(got[0].available, ["kvm-clock", "tsc", "acpi_pm"]);
        assert_eq!(got[0].current, "tsc");
        assert!(
            read(&root.path().join("nope"), &mut String::new())
                .unwrap_err()
                .is_not_found()
        );
    }
}
