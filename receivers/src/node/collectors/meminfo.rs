//! `meminfo`: `node_memory_*` gauges from `/proc/meminfo`.
//!
//! node_exporter 1.9 reads meminfo through a fixed struct, so it emits exactly these 49 fields
//! when the kernel has them and ignores any other line (newer kernels' `Zswap`, for example).

use std::path::PathBuf;
use std::sync::Arc;

use nodetel_core::{Labels, MetricMetadata, MetricType};
use nodetel_host::procfs::{meminfo, read_into};

use super::{CollectError, Collector};
use crate::node::config::Paths;
use crate::node::series::{Context, family};

/// `(kernel key, metric name suffix)`: kB lines get `_bytes`, the HugePages counts do not.
const FIELDS: [(&str, &str); 49] = [
    ("Active", "Active_bytes"),
    ("Active(anon)", "Active_anon_bytes"),
    ("Active(file)", "Active_file_bytes"),
    ("AnonHugePages", "AnonHugePages_bytes"),
    ("AnonPages", "AnonPages_bytes"),
    ("Bounce", "Bounce_bytes"),
    ("Buffers", "Buffers_bytes"),
    ("Cached", "Cached_bytes"),
    ("CmaFree", "CmaFree_bytes"),
    ("CmaTotal", "CmaTotal_bytes"),
    ("CommitLimit", "CommitLimit_bytes"),
    ("Committed_AS", "Committed_AS_bytes"),
    ("DirectMap1G", "DirectMap1G_bytes"),
    ("DirectMap2M", "DirectMap2M_bytes"),
    ("DirectMap4k", "DirectMap4k_bytes"),
    ("Dirty", "Dirty_bytes"),
    ("HardwareCorrupted", "HardwareCorrupted_bytes"),
    ("Hugepagesize", "Hugepagesize_bytes"),
    ("Inactive", "Inactive_bytes"),
    ("Inactive(anon)", "Inactive_anon_bytes"),
    ("Inactive(file)", "Inactive_file_bytes"),
    ("KernelStack", "KernelStack_bytes"),
    ("Mapped", "Mapped_bytes"),
    ("MemAvailable", "MemAvailable_bytes"),
    ("MemFree", "MemFree_bytes"),
    ("MemTotal", "MemTotal_bytes"),
    ("Mlocked", "Mlocked_bytes"),
    ("NFS_Unstable", "NFS_Unstable_bytes"),
    ("PageTables", "PageTables_bytes"),
    ("Percpu", "Percpu_bytes"),
    ("SReclaimable", "SReclaimable_bytes"),
    ("SUnreclaim", "SUnreclaim_bytes"),
    ("Shmem", "Shmem_bytes"),
    ("ShmemHugePages", "ShmemHugePages_bytes"),
    ("ShmemPmdMapped", "ShmemPmdMapped_bytes"),
    ("Slab", "Slab_bytes"),
    ("SwapCached", "SwapCached_bytes"),
    ("SwapFree", "SwapFree_bytes"),
    ("SwapTotal", "SwapTotal_bytes"),
    ("Unevictable", "Unevictable_bytes"),
    ("VmallocChunk", "VmallocChunk_bytes"),
    ("VmallocTotal", "VmallocTotal_bytes"),
    ("VmallocUsed", "VmallocUsed_bytes"),
    ("Writeback", "Writeback_bytes"),
    ("WritebackTmp", "WritebackTmp_bytes"),
    ("HugePages_Free", "HugePages_Free"),
    ("HugePages_Rsvd", "HugePages_Rsvd"),
    ("HugePages_Surp", "HugePages_Surp"),
    ("HugePages_Total", "HugePages_Total"),
];

struct Field {
    metadata: Arc<MetricMetadata>,
    labels: Option<Labels>,
}

pub(crate) struct MeminfoCollector {
    path: PathBuf,
    fields: Vec<Field>,
}

impl MeminfoCollector {
    pub(crate) fn new(paths: &Paths) -> MeminfoCollector {
        let fields = FIELDS
            .iter()
            .map(|(_, suffix)| Field {
                metadata: family(
                    &format!("node_memory_{suffix}"),
                    MetricType::Gauge,
                    &format!("Memory information field {suffix}."),
                ),
                labels: None,
            })
            .collect();
        MeminfoCollector {
            path: paths.procfs.join(meminfo::FILE),
            fields,
        }
    }
}

impl Collector for MeminfoCollector {
    fn update(&mut self, cx: &mut Context<'_>) -> Result<(), CollectError> {
        read_into(&self.path, cx.buf)?;
        let text = std::mem::take(cx.buf);
        let result = self.emit(&text, cx);
        *cx.buf = text;
        result
    }
}

impl MeminfoCollector {
    fn emit(&mut self, text: &str, cx: &mut Context<'_>) -> Result<(), CollectError> {
        // A kernel that printed a key twice must not yield a duplicate series.
        let mut seen = 0u64;
        for field in meminfo::fields(text, &self.path) {
            let field = field?;
            let Some(i) = FIELDS.iter().position(|(key, _)| *key == field.key) else {
                continue;
            };
            if seen & (1 << i) != 0 {
                continue;
            }
            seen |= 1 << i;
            let slot = &mut self.fields[i];
            let labels = match &slot.labels {
                Some(l) => l,
                None => slot.labels.insert(cx.series.labels(&slot.metadata.family, &[])?),
            };
            cx.family(&slot.metadata);
            cx.sample(labels, field.scaled() as f64);
        }
        Ok(())
    }
}
