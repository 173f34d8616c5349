//! The sub-collectors of the `node` receiver, each named and defaulted as in node_exporter.

use nodetel_core::labels::LabelError;
use nodetel_host::procfs::ReadError;

use super::config::{CollectorsConfig, Paths};
use super::series::Context;

mod amazonefa;
mod arp;
mod conntrack;
mod cpu;
mod cpufreq;
mod diskstats;
mod edac;
mod entropy;
mod filefd;
pub(crate) mod filesystem;
mod infiniband;
mod loadavg;
mod meminfo;
mod netclass;
mod netdev;
mod netstat;
mod nvme;
mod os;
mod pressure;
mod schedstat;
mod selinux;
mod sockstat;
mod softnet;
mod stat;
mod textfile;
mod thermal_zone;
mod time;
mod udp_queues;
mod uname;
mod vmstat;

/// Why one collector failed this round.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CollectError {
    /// A file could not be read or parsed.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// A label set could not be built (a metric or label name derived from file contents).
    #[error("cannot build a label set: {0}")]
    Label(#[from] LabelError),
    /// The node has nothing for this collector (no PSI, no EFA devices): reported as
    /// `node_scrape_collector_success 0` like node_exporter does, but only logged at debug.
    #[error("no data: {0}")]
    NoData(&'static str),
}

/// One node_exporter collector.
pub(crate) trait Collector: Send {
    /// Collects one round into `cx`. On error the caller drops what this round pushed.
    fn update(&mut self, cx: &mut Context<'_>) -> Result<(), CollectError>;
}

type Build = fn(&Paths, &CollectorsConfig) -> Result<Box<dyn Collector>, regex::Error>;

/// node_exporter 1.9.1's default `--collector.diskstats.device-exclude`.
pub(crate) const DISKSTATS_DEVICE_EXCLUDE: &str = r"^(z?ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\d+n\d+p)\d+$";
/// node_exporter 1.9.1's default `--collector.filesystem.mount-points-exclude`.
pub(crate) const FILESYSTEM_MOUNT_POINTS_EXCLUDE: &str =
    "^/(dev|proc|run/credentials/.+|sys|var/lib/docker/.+|var/lib/containers/storage/.+)($|/)";
/// node_exporter 1.9.1's default `--collector.filesystem.fs-types-exclude`.
pub(crate) const FILESYSTEM_FS_TYPES_EXCLUDE: &str = "^(autofs|binfmt_misc|bpf|cgroup2?|configfs|debugfs|devpts|devtmpfs|fusectl|hugetlbfs|iso9660|mqueue|nsfs|overlay|proc|procfs|pstore|rpc_pipefs|securityfs|selinuxfs|squashfs|sysfs|tracefs)$";
/// node_exporter 1.9.1's default `--collector.netstat.fields`.
pub(crate) const NETSTAT_FIELDS: &str = "^(.*_(InErrors|InErrs)|Ip_Forwarding|Ip(6|Ext)_(InOctets|OutOctets)|Icmp6?_(InMsgs|OutMsgs)|TcpExt_(Listen.*|Syncookies.*|TCPSynRetrans|TCPTimeouts|TCPOFOQueue|TCPRcvQDrop)|Tcp_(ActiveOpens|InSegs|OutSegs|OutRsts|PassiveOpens|RetransSegs|CurrEstab)|Udp6?_(InDatagrams|OutDatagrams|NoPorts|RcvbufErrors|SndbufErrors))$";
/// node_exporter 1.9.1's default `--collector.vmstat.fields`.
pub(crate) const VMSTAT_FIELDS: &str = "^(oom_kill|pgpg|pswp|pg.*fault).*";

/// A collector's name, whether node_exporter enables it by default, and how to build it.
pub(crate) struct Registration {
    pub(crate) name: &'static str,
    pub(crate) default_enabled: bool,
    pub(crate) build: Build,
}

const fn on(name: &'static str, build: Build) -> Registration {
    Registration {
        name,
        default_enabled: true,
        build,
    }
}

fn re(pattern: &str) -> Result<regex::Regex, regex::Error> {
    regex::Regex::new(pattern)
}

/// Every collector, in the order they run.
pub(crate) const REGISTRY: &[Registration] = &[
    // Not a node_exporter collector: it belongs to the EFA exporter's job, so it is opt-in.
    Registration {
        name: "amazonefa",
        default_enabled: false,
        build: |p, _| Ok(Box::new(amazonefa::AmazonEfaCollector::new(p))),
    },
    on("arp", |p, _| Ok(Box::new(arp::ArpCollector::new(p)))),
    on("conntrack", |p, _| Ok(Box::new(conntrack::ConntrackCollector::new(p)))),
    on("cpu", |p, _| Ok(Box::new(cpu::CpuCollector::new(p)))),
    on("cpufreq", |p, _| Ok(Box::new(cpufreq::CpufreqCollector::new(p)))),
    on("diskstats", |p, c| {
        Ok(Box::new(diskstats::DiskstatsCollector::new(
            p,
            re(&c.diskstats.device_exclude)?,
        )))
    }),
    on("edac", |p, _| Ok(Box::new(edac::EdacCollector::new(p)))),
    on("entropy", |p, _| Ok(Box::new(entropy::EntropyCollector::new(p)))),
    on("filefd", |p, _| Ok(Box::new(filefd::FilefdCollector::new(p)))),
    on("filesystem", |p, c| {
        Ok(Box::new(filesystem::FilesystemCollector::new(
            p,
            re(&c.filesystem.mount_points_exclude)?,
            re(&c.filesystem.fs_types_exclude)?,
        )))
    }),
    on("infiniband", |p, _| {
        Ok(Box::new(infiniband::InfinibandCollector::new(p)))
    }),
    on("loadavg", |p, _| Ok(Box::new(loadavg::LoadavgCollector::new(p)))),
    on("meminfo", |p, _| Ok(Box::new(meminfo::MeminfoCollector::new(p)))),
    on("netclass", |p, _| Ok(Box::new(netclass::NetclassCollector::new(p)))),
    on("netdev", |p, _| Ok(Box::new(netdev::NetdevCollector::new(p)))),
    on("netstat", |p, c| {
        Ok(Box::new(netstat::NetstatCollector::new(p, re(&c.netstat.fields)?)))
    }),
    on("nvme", |p, _| Ok(Box::new(nvme::NvmeCollector::new(p)))),
    on("os", |p, _| Ok(Box::new(os::OsCollector::new(p)))),
    on("pressure", |p, _| Ok(Box::new(pressure::PressureCollector::new(p)))),
    on("schedstat", |p, _| Ok(Box::new(schedstat::SchedstatCollector::new(p)))),
    on("selinux", |p, _| Ok(Box::new(selinux::SelinuxCollector::new(p)))),
    on("sockstat", |p, _| Ok(Box::new(sockstat::SockstatCollector::new(p)))),
    on("softnet", |p, _| Ok(Box::new(softnet::SoftnetCollector::new(p)))),
    on("stat", |p, _| Ok(Box::new(stat::StatCollector::new(p)))),
    on("textfile", |_, c| {
        Ok(Box::new(textfile::TextfileCollector::new(c.textfile.directory.clone())))
    }),
    on("thermal_zone", |p, _| {
        Ok(Box::new(thermal_zone::ThermalZoneCollector::new(p)))
    }),
    on("time", |p, _| Ok(Box::new(time::TimeCollector::new(p)))),
    on("udp_queues", |p, _| {
        Ok(Box::new(udp_queues::UdpQueuesCollector::new(p)))
    }),
    on("uname", |p, _| Ok(Box::new(uname::UnameCollector::new(p)))),
    on("vmstat", |p, c| {
        Ok(Box::new(vmstat::VmstatCollector::new(p, re(&c.vmstat.fields)?)))
    }),
];

/// The registration of collector `name`.
pub(crate) fn find(name: &str) -> Option<&'static Registration> {
    REGISTRY.iter().find(|r| r.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_collector_builds_and_names_are_unique() {
        let paths = Paths {
            rootfs: "/nonexistent".into(),
            procfs: "/nonexistent/proc".into(),
            sysfs: "/nonexistent/sys".into(),
        };
        for (i, r) in REGISTRY.iter().enumerate() {
            assert!(
                (r.build)(&paths, &CollectorsConfig::default()).is_ok(),
                "{} builds",
                r.name
            );
            assert!(
                REGISTRY[..i].iter().all(|o| o.name != r.name),
                "{} is listed once",
                r.name
            );
        }
    }
}
