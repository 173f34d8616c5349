//! `nvme`: `node_nvme_info` per NVMe controller from `/sys/class/nvme/<device>`. Nodes without
//! NVMe controllers have no data.

use std::path::PathBuf;

use nodetel_core::MetricType;
use nodetel_host::procfs::read_into;
use nodetel_host::sysfs::list_dir;

use super::{CollectError, Collector};
use crate::node::config::Paths;
use crate::node::series::{Context, Family};

/// The attribute files, in label order after `device`.
const ATTRIBUTES: [(&str, &str); 4] = [
    ("firmware_revision", "firmware_rev"),
    ("model", "model"),
    ("serial", "serial"),
    ("state", "state"),
];

pub(crate) struct NvmeCollector {
    dir: PathBuf,
    info: Family,
    values: [String; 4],
}

impl NvmeCollector {
    pub(crate) fn new(paths: &Paths) -> NvmeCollector {
        NvmeCollector {
            dir: paths.sysfs.join("class/nvme"),
            info: Family::new(
                "node_nvme_info",
                MetricType::Gauge,
                "Non-numeric data from /sys/class/nvme/<device>, value is always 1.",
            ),
            values: Default::default(),
        }
    }
}

impl Collector for NvmeCollector {
    fn update(&mut self, cx: &mut Context<'_>) -> Result<(), CollectError> {
        let devices = match list_dir(&self.dir) {
            Ok(d) => d,
            Err(e) if e.is_not_found() => return Err(CollectError::NoData("no /sys/class/nvme")),
            Err(e) => return Err(e.into()),
        };
        for device in &devices {
            let dir = self.dir.join(device);
            for (value, (_, file)) in self.values.iter_mut().zip(ATTRIBUTES) {
                read_into(&dir.join(file), cx.buf)?;
                value.clear();
                value.push_str(cx.buf.trim());
            }
            let [firmware, model, serial, state] = &self.values;
            self.info.emit(
                cx,
                &[
                    ("device", device),
                    ("firmware_revision", firmware),
                    ("model", model),
                    ("serial", serial),
                    ("state", state),
                ],
                1.0,
            )?;
        }
        Ok(())
    }
}
