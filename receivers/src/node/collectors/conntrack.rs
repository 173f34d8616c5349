//! `conntrack`: connection tracking table size and statistics from
//! `/proc/sys/net/netfilter/nf_conntrack_{count,max}` and `/proc/net/stat/nf_conntrack`. Nodes
//! without the nf_conntrack module have no data.

use std::path::PathBuf;

use nodetel_core::MetricType;
use nodetel_host::procfs::{net, read_into, values};

use super::{CollectError, Collector};
use crate::node::config::Paths;
use crate::node::series::{Context, Family};

/// `(column of /proc/net/stat/nf_conntrack, help)`.
const STATS: [(&str, &str); 8] = [
    ("found", "Number of searched entries which were successful."),
    ("invalid", "Number of packets seen which can not be tracked."),
    (
        "ignore",
        "Number of packets seen which are already connected to a conntrack entry.",
    ),
    ("insert", "Number of entries inserted into the list."),
    (
        "insert_failed",
        "Number of entries for which list insertion was attempted but failed.",
    ),
    ("drop", "Number of packets dropped due to conntrack failure."),
    (
        "early_drop",
        "Number of dropped conntrack entries to make room for new ones, if maximum table size was reached.",
    ),
    (
        "search_restart",
        "Number of conntrack table lookups which had to be restarted due to hashtable resizes.",
    ),
];

pub(crate) struct ConntrackCollector {
    count: PathBuf,
    max: PathBuf,
    stat: PathBuf,
    entries: Family,
    limit: Family,
    stats: Vec<Family>,
}

impl ConntrackCollector {
    pub(crate) fn new(paths: &Paths) -> ConntrackCollector {
        ConntrackCollector {
            count: paths.procfs.join("sys/net/netfilter/nf_conntrack_count"),
            max: paths.procfs.join("sys/net/netfilter/nf_conntrack_max"),
            stat: paths.procfs.join("net/stat/nf_conntrack"),
            entries: Family::new(
                "node_nf_conntrack_entries",
                MetricType::Gauge,
                "Number of currently allocated flow entries for connection tracking.",
            ),
            limit: Family::new(
                "node_nf_conntrack_entries_limit",
                MetricType::Gauge,
                "Maximum size of connection tracking table.",
            ),
            stats: STATS
                .iter()
                .map(|(name, help)| Family::new(&format!("node_nf_conntrack_stat_{name}"), MetricType::Gauge, help))
                .collect(),
        }
    }
}

impl Collector for ConntrackCollector {
    fn update(&mut self, cx: &mut Context<'_>) -> Result<(), CollectError> {
        match read_into(&self.count, cx.buf) {
            Ok(()) => {}
            Err(e) if e.is_not_found() => return Err(CollectError::NoData("the nf_conntrack module is not loaded")),
            Err(e) => return Err(e.into()),
        }
        let [count] = values::parse_numbers::<1>(cx.buf, &self.count)?;
        read_into(&self.max, cx.buf)?;
        let [max] = values::parse_numbers::<1>(cx.buf, &self.max)?;
        self.entries.emit(cx, &[], count as f64)?;
        self.limit.emit(cx, &[], max as f64)?;
        match read_into(&self.stat, cx.buf) {
            Ok(()) => {}
            Err(e) if e.is_not_found() => return Ok(()),
            Err(e) => return Err(e.into()),
        }
        let mut sums = [0u64; STATS.len()];
        net::parse_conntrack_stat(cx.buf, &self.stat, |column, sum| {
            if let Some(i) = STATS.iter().position(|(n, _)| *n == column) {
                sums[i] = sum;
            }
        })?;
        for (family, sum) in self.stats.iter_mut().zip(sums) {
            family.emit(cx, &[], sum as f64)?;
        }
        Ok(())
    }
}
