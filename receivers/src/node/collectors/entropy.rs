//! `entropy`: available bits and pool size from `/proc/sys/kernel/random`.

use std::path::PathBuf;

use nodetel_core::MetricType;
use nodetel_host::procfs::{read_into, values};

use super::{CollectError, Collector};
use crate::node::config::Paths;
use crate::node::series::{Context, Family};

pub(crate) struct EntropyCollector {
    available_path: PathBuf,
    pool_path: PathBuf,
    available: Family,
    pool: Family,
}

impl EntropyCollector {
    pub(crate) fn new(paths: &Paths) -> EntropyCollector {
        EntropyCollector {
            available_path: paths.procfs.join("sys/kernel/random/entropy_avail"),
            pool_path: paths.procfs.join("sys/kernel/random/poolsize"),
            available: Family::new(
                "node_entropy_available_bits",
                MetricType::Gauge,
                "Bits of available entropy.",
            ),
            pool: Family::new(
                "node_entropy_pool_size_bits",
                MetricType::Gauge,
                "Bits of entropy pool.",
            ),
        }
    }
}

impl Collector for EntropyCollector {
    fn update(&mut self, cx: &mut Context<'_>) -> Result<(), CollectError> {
        read_into(&self.available_path, cx.buf)?;
        let [available] = values::parse_numbers::<1>(cx.buf, &self.available_path)?;
        read_into(&self.pool_path, cx.buf)?;
        let [pool] = values::parse_numbers::<1>(cx.buf, &self.pool_path)?;
        self.available.emit(cx, &[], available as f64)?;
        self.pool.emit(cx, &[], pool as f64)?;
        Ok(())
    }
}
