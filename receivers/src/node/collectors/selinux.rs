//! `selinux`: whether SELinux is enabled, and its configured and current modes when it is.

use std::path::PathBuf;

use nodetel_core::MetricType;
use nodetel_host::procfs::{read_into, values};

use super::{CollectError, Collector};
use crate::node::config::Paths;
use crate::node::series::{Context, Family};

pub(crate) struct SelinuxCollector {
    enforce: PathBuf,
    config: PathBuf,
    enabled: Family,
    config_mode: Family,
    current_mode: Family,
}

impl SelinuxCollector {
    pub(crate) fn new(paths: &Paths) -> SelinuxCollector {
        use MetricType::Gauge;
        SelinuxCollector {
            enforce: paths.sysfs.join("fs/selinux/enforce"),
            config: paths.rootfs.join("etc/selinux/config"),
            enabled: Family::new(
                "node_selinux_enabled",
                Gauge,
                "SELinux is enabled, 1 is true, 0 is false",
            ),
            config_mode: Family::new("node_selinux_config_mode", Gauge, "Configured SELinux enforcement mode"),
            current_mode: Family::new("node_selinux_current_mode", Gauge, "Current SELinux enforcement mode"),
        }
    }
}

impl Collector for SelinuxCollector {
    fn update(&mut self, cx: &mut Context<'_>) -> Result<(), CollectError> {
        // selinuxfs is mounted exactly when SELinux is enabled.
        match read_into(&self.enforce, cx.buf) {
            Ok(()) => {}
            Err(e) if e.is_not_found() => {
                self.enabled.emit(cx, &[], 0.0)?;
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        }
        let [current] = values::parse_numbers::<1>(cx.buf, &self.enforce)?;
        self.enabled.emit(cx, &[], 1.0)?;
        self.current_mode.emit(cx, &[], current as f64)?;
        if read_into(&self.config, cx.buf).is_ok() {
            let mode = cx.buf.lines().find_map(|l| l.trim().strip_prefix("SELINUX="));
            let value = match mode.map(str::trim) {
                Some("enforcing") => Some(1.0),
                Some("permissive") => Some(0.0),
                Some("disabled") => Some(-1.0),
                _ => None,
            };
            if let Some(v) = value {
                self.config_mode.emit(cx, &[], v)?;
            }
        }
        Ok(())
    }
}
