//! The sub-collectors of the `node` receiver, each named and defaulted as in node_exporter.

use nodetel_core::labels::LabelError;
use nodetel_host::procfs::ReadError;

use super::config::Paths;
use super::series::Context;

mod amazonefa;
mod arp;
mod conntrack;
mod cpu;
mod cpufreq;
mod diskstats;
mod entropy;
mod filefd;
pub(crate) mod filesystem;
mod loadavg;
mod meminfo;
mod netclass;
mod netdev;
mod netstat;
mod os;
mod pressure;
mod schedstat;
mod selinux;
mod sockstat;
mod softnet;
mod stat;
mod textfile;
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

type Build = fn(&Paths) -> Result<Box<dyn Collector>, regex::Error>;

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
    on("amazonefa", |p| Ok(Box::new(amazonefa::AmazonEfaCollector::new(p)))),
    on("arp", |p| Ok(Box::new(arp::ArpCollector::new(p)))),
    on("conntrack", |p| Ok(Box::new(conntrack::ConntrackCollector::new(p)))),
    on("cpu", |p| Ok(Box::new(cpu::CpuCollector::new(p)))),
    on("cpufreq", |p| Ok(Box::new(cpufreq::CpufreqCollector::new(p)))),
    on("diskstats", |p| {
        Ok(Box::new(diskstats::DiskstatsCollector::new(
            p,
            re(diskstats::DEFAULT_DEVICE_EXCLUDE)?,
        )))
    }),
    on("entropy", |p| Ok(Box::new(entropy::EntropyCollector::new(p)))),
    on("filefd", |p| Ok(Box::new(filefd::FilefdCollector::new(p)))),
    on("filesystem", |p| {
        Ok(Box::new(filesystem::FilesystemCollector::new(
            p,
            re(filesystem::DEFAULT_MOUNT_POINTS_EXCLUDE)?,
            re(filesystem::DEFAULT_FS_TYPES_EXCLUDE)?,
        )))
    }),
    on("loadavg", |p| Ok(Box::new(loadavg::LoadavgCollector::new(p)))),
    on("meminfo", |p| Ok(Box::new(meminfo::MeminfoCollector::new(p)))),
    on("netclass", |p| Ok(Box::new(netclass::NetclassCollector::new(p)))),
    on("netdev", |p| Ok(Box::new(netdev::NetdevCollector::new(p)))),
    on("netstat", |p| {
        Ok(Box::new(netstat::NetstatCollector::new(
            p,
            re(netstat::DEFAULT_FIELDS)?,
        )))
    }),
    on("os", |p| Ok(Box::new(os::OsCollector::new(p)))),
    on("pressure", |p| Ok(Box::new(pressure::PressureCollector::new(p)))),
    on("schedstat", |p| Ok(Box::new(schedstat::SchedstatCollector::new(p)))),
    on("selinux", |p| Ok(Box::new(selinux::SelinuxCollector::new(p)))),
    on("sockstat", |p| Ok(Box::new(sockstat::SockstatCollector::new(p)))),
    on("softnet", |p| Ok(Box::new(softnet::SoftnetCollector::new(p)))),
    on("stat", |p| Ok(Box::new(stat::StatCollector::new(p)))),
    on("textfile", |_| Ok(Box::new(textfile::TextfileCollector::new()))),
    on("time", |p| Ok(Box::new(time::TimeCollector::new(p)))),
    on("udp_queues", |p| Ok(Box::new(udp_queues::UdpQueuesCollector::new(p)))),
    on("uname", |p| Ok(Box::new(uname::UnameCollector::new(p)))),
    on("vmstat", |p| {
        Ok(Box::new(vmstat::VmstatCollector::new(p, re(vmstat::DEFAULT_FIELDS)?)))
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
            assert!((r.build)(&paths).is_ok(), "{} builds", r.name);
            assert!(
                REGISTRY[..i].iter().all(|o| o.name != r.name),
                "{} is listed once",
                r.name
            );
        }
    }
}
