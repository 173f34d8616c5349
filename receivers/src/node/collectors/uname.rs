//! `uname`: `node_uname_info`, labelled with what uname(2) reports.
//!
//! The kernel publishes the same strings under `/proc/sys/kernel`, which also works against a
//! host procfs mounted elsewhere; only the machine comes from the architecture this was built for.

use std::path::PathBuf;

use nodetel_core::MetricType;
use nodetel_host::procfs::read_into;

use super::{CollectError, Collector};
use crate::node::config::Paths;
use crate::node::series::{Context, Family};

/// `uname -m` for the architectures nodetel is built for.
const MACHINE: &str = std::env::consts::ARCH;

pub(crate) struct UnameCollector {
    kernel: PathBuf,
    info: Family,
    values: [String; 5],
}

impl UnameCollector {
    pub(crate) fn new(paths: &Paths) -> UnameCollector {
        UnameCollector {
            kernel: paths.procfs.join("sys/kernel"),
            info: Family::new(
                "node_uname_info",
                MetricType::Gauge,
                "Labeled system information as provided by the uname system call.",
            ),
            values: Default::default(),
        }
    }
}

impl Collector for UnameCollector {
    fn update(&mut self, cx: &mut Context<'_>) -> Result<(), CollectError> {
        for (value, file) in self
            .values
            .iter_mut()
            .zip(["ostype", "hostname", "osrelease", "version", "domainname"])
        {
            read_into(&self.kernel.join(file), cx.buf)?;
            let text = cx.buf.trim_end_matches('\n');
            if value != text {
                value.clear();
                value.push_str(text);
            }
        }
        let [sysname, nodename, release, version, domainname] = &self.values;
        self.info.emit(
            cx,
            &[
                ("domainname", domainname),
                ("machine", MACHINE),
                ("nodename", nodename),
                ("release", release),
                ("sysname", sysname),
                ("version", version),
            ],
            1.0,
        )?;
        Ok(())
    }
}
