//! `filefd`: allocated and maximum file handles from `/proc/sys/fs/file-nr`.

use std::path::PathBuf;

use nodetel_core::MetricType;
use nodetel_host::procfs::{read_into, values};

use super::{CollectError, Collector};
use crate::node::config::Paths;
use crate::node::series::{Context, Family};

pub(crate) struct FilefdCollector {
    path: PathBuf,
    allocated: Family,
    maximum: Family,
}

impl FilefdCollector {
    pub(crate) fn new(paths: &Paths) -> FilefdCollector {
        FilefdCollector {
            path: paths.procfs.join("sys/fs/file-nr"),
            allocated: Family::new(
                "node_filefd_allocated",
                MetricType::Gauge,
                "File descriptor statistics: allocated.",
            ),
            maximum: Family::new(
                "node_filefd_maximum",
                MetricType::Gauge,
                "File descriptor statistics: maximum.",
            ),
        }
    }
}

impl Collector for FilefdCollector {
    fn update(&mut self, cx: &mut Context<'_>) -> Result<(), CollectError> {
        read_into(&self.path, cx.buf)?;
        let [allocated, _, maximum] = values::parse_numbers::<3>(cx.buf, &self.path)?;
        self.allocated.emit(cx, &[], allocated as f64)?;
        self.maximum.emit(cx, &[], maximum as f64)?;
        Ok(())
    }
}
