//! The `node` receiver's config: interval, identity labels, filesystem roots and collectors.

use std::path::PathBuf;
use std::time::Duration;

use nodetel_core::component::{BoxError, Receiver, ScrapeReceiver};
use nodetel_core::config::{BuildContext, FieldError, ReceiverConfig, Validate, duration, validate_collection};
use serde::Deserialize;

use super::collectors;
use super::scraper::NodeCollector;
use nodetel_core::blocking::BlockingScraper;

/// Config of the `node` receiver (node_exporter-compatible host metrics).
///
/// ```yaml
/// receivers:
///   node:
///     collection_interval: 15s
///     timeout: 10s
///     job: node_exporter        # the `job` label on every series
///     instance: ip-10-1-2-3     # the `instance` label; default: this node's short hostname
///     path:
///       rootfs: /host           # like --path.rootfs; procfs and sysfs default to <rootfs>/proc, /sys
///     collectors:
///       disable_defaults: false # like --collector.disable-defaults
///       enabled: [amazonefa]    # like --collector.<name>
///       disabled: [loadavg]     # like --no-collector.<name>
/// ```
#[derive(Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct NodeConfig {
    /// How often to collect.
    #[serde(deserialize_with = "duration::deserialize")]
    pub collection_interval: Duration,
    /// Upper bound for one collection (clamped to the interval).
    #[serde(deserialize_with = "duration::deserialize")]
    pub timeout: Duration,
    /// Value of the `job` label.
    pub job: String,
    /// Value of the `instance` label; `None` means the node's short hostname.
    pub instance: Option<String>,
    /// Where the host's filesystems are.
    pub path: PathConfig,
    /// Which collectors run.
    pub collectors: CollectorsConfig,
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            collection_interval: Duration::from_secs(15),
            timeout: Duration::from_secs(10),
            job: "node_exporter".to_owned(),
            instance: None,
            path: PathConfig::default(),
            collectors: CollectorsConfig::default(),
        }
    }
}

/// Filesystem roots, like node_exporter's `--path.rootfs`, `--path.procfs` and `--path.sysfs`.
#[derive(Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PathConfig {
    /// The host's root filesystem (`/host` when running in a container with `/` mounted there).
    pub rootfs: PathBuf,
    /// The proc filesystem; default `<rootfs>/proc`.
    pub procfs: Option<PathBuf>,
    /// The sys filesystem; default `<rootfs>/sys`.
    pub sysfs: Option<PathBuf>,
}

impl Default for PathConfig {
    fn default() -> Self {
        PathConfig {
            rootfs: PathBuf::from("/"),
            procfs: None,
            sysfs: None,
        }
    }
}

impl PathConfig {
    /// The resolved roots.
    pub fn resolve(&self) -> Paths {
        Paths {
            rootfs: self.rootfs.clone(),
            procfs: self.procfs.clone().unwrap_or_else(|| self.rootfs.join("proc")),
            sysfs: self.sysfs.clone().unwrap_or_else(|| self.rootfs.join("sys")),
        }
    }
}

/// Resolved filesystem roots that collectors read under.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Paths {
    /// The host's root filesystem.
    pub rootfs: PathBuf,
    /// The proc filesystem.
    pub procfs: PathBuf,
    /// The sys filesystem.
    pub sysfs: PathBuf,
}

/// Which collectors run, by their node_exporter names, and the filters of those that have one.
#[derive(Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct CollectorsConfig {
    /// Start from no collectors instead of the default set.
    pub disable_defaults: bool,
    /// Collectors to run in addition to the defaults.
    pub enabled: Vec<String>,
    /// Default collectors not to run.
    pub disabled: Vec<String>,
    /// `diskstats` filters.
    pub diskstats: DiskstatsOptions,
    /// `filesystem` filters.
    pub filesystem: FilesystemOptions,
    /// `netstat` filters.
    pub netstat: NetstatOptions,
    /// `vmstat` filters.
    pub vmstat: VmstatOptions,
    /// `textfile` directory.
    pub textfile: TextfileOptions,
}

/// Like `--collector.textfile.directory`.
#[derive(Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct TextfileOptions {
    /// The directory of `*.prom` files; none by default.
    pub directory: Option<PathBuf>,
}

/// Like `--collector.diskstats.device-exclude`.
#[derive(Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DiskstatsOptions {
    /// Devices to leave out (regex).
    pub device_exclude: String,
}

impl Default for DiskstatsOptions {
    fn default() -> Self {
        DiskstatsOptions {
            device_exclude: collectors::DISKSTATS_DEVICE_EXCLUDE.to_owned(),
        }
    }
}

/// Like `--collector.filesystem.mount-points-exclude` and `--collector.filesystem.fs-types-exclude`.
#[derive(Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct FilesystemOptions {
    /// Mount points to leave out (regex).
    pub mount_points_exclude: String,
    /// Filesystem types to leave out (regex).
    pub fs_types_exclude: String,
}

impl Default for FilesystemOptions {
    fn default() -> Self {
        FilesystemOptions {
            mount_points_exclude: collectors::FILESYSTEM_MOUNT_POINTS_EXCLUDE.to_owned(),
            fs_types_exclude: collectors::FILESYSTEM_FS_TYPES_EXCLUDE.to_owned(),
        }
    }
}

/// Like `--collector.netstat.fields`.
#[derive(Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct NetstatOptions {
    /// `<Proto>_<Field>` names to report (regex).
    pub fields: String,
}

impl Default for NetstatOptions {
    fn default() -> Self {
        NetstatOptions {
            fields: collectors::NETSTAT_FIELDS.to_owned(),
        }
    }
}

/// Like `--collector.vmstat.fields`.
#[derive(Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct VmstatOptions {
    /// `/proc/vmstat` field names to report (regex).
    pub fields: String,
}

impl Default for VmstatOptions {
    fn default() -> Self {
        VmstatOptions {
            fields: collectors::VMSTAT_FIELDS.to_owned(),
        }
    }
}

impl CollectorsConfig {
    /// The names of the collectors that run, in registry order.
    pub fn active(&self) -> Vec<&'static str> {
        // The filter options do not decide what runs.
        collectors::REGISTRY
            .iter()
            .filter(|c| {
                let on = (c.default_enabled && !self.disable_defaults) || self.enabled.iter().any(|n| n == c.name);
                on && !self.disabled.iter().any(|n| n == c.name)
            })
            .map(|c| c.name)
            .collect()
    }
}

impl Validate for NodeConfig {
    fn validate(&self) -> Vec<FieldError> {
        let mut errors = validate_collection(
            &[
                ("collection_interval", self.collection_interval),
                ("timeout", self.timeout),
            ],
            &self.job,
            "node_exporter",
        );
        if self.instance.as_deref().is_some_and(|i| i.trim().is_empty()) {
            errors.push(FieldError::new(
                "instance",
                "must not be empty; remove the key to use this node's hostname",
            ));
        }
        if self.path.rootfs.as_os_str().is_empty() {
            errors.push(FieldError::new("path.rootfs", "must not be empty; the default is /"));
        }
        for (key, value) in [("path.procfs", &self.path.procfs), ("path.sysfs", &self.path.sysfs)] {
            if value.as_ref().is_some_and(|p| p.as_os_str().is_empty()) {
                errors.push(FieldError::new(
                    key,
                    "must not be empty; remove the key to use the default under path.rootfs",
                ));
            }
        }
        let known = || {
            collectors::REGISTRY
                .iter()
                .map(|c| c.name)
                .collect::<Vec<_>>()
                .join(", ")
        };
        for (list_name, list) in [
            ("collectors.enabled", &self.collectors.enabled),
            ("collectors.disabled", &self.collectors.disabled),
        ] {
            for (i, name) in list.iter().enumerate() {
                if collectors::find(name).is_none() {
                    errors.push(FieldError::new(
                        format!("{list_name}[{i}]"),
                        format!("unknown collector {name:?}; known collectors: {}", known()),
                    ));
                }
            }
        }
        let c = &self.collectors;
        for (key, pattern, flag) in [
            (
                "collectors.diskstats.device_exclude",
                &c.diskstats.device_exclude,
                "diskstats.device-exclude",
            ),
            (
                "collectors.filesystem.mount_points_exclude",
                &c.filesystem.mount_points_exclude,
                "filesystem.mount-points-exclude",
            ),
            (
                "collectors.filesystem.fs_types_exclude",
                &c.filesystem.fs_types_exclude,
                "filesystem.fs-types-exclude",
            ),
            ("collectors.netstat.fields", &c.netstat.fields, "netstat.fields"),
            ("collectors.vmstat.fields", &c.vmstat.fields, "vmstat.fields"),
        ] {
            if let Err(e) = regex::Regex::new(pattern) {
                errors.push(FieldError::new(
                    key,
                    format!("is not a valid regular expression ({e}); it takes what node_exporter's --collector.{flag} takes"),
                ));
            }
        }
        for (i, name) in self.collectors.enabled.iter().enumerate() {
            if self.collectors.disabled.contains(name) {
                errors.push(FieldError::new(
                    format!("collectors.enabled[{i}]"),
                    format!("collector {name:?} is both enabled and disabled; keep it in one list"),
                ));
            }
        }
        errors
    }
}

impl ReceiverConfig for NodeConfig {
    const TYPE: &'static str = "node";

    fn build(&self, cx: &BuildContext) -> Result<Box<dyn Receiver>, BoxError> {
        let instance = self.instance.clone().unwrap_or_else(|| cx.hostname.clone());
        let collector = NodeCollector::new(self, &instance)?;
        Ok(Box::new(ScrapeReceiver::new(
            BlockingScraper::new(collector),
            self.collection_interval,
            self.timeout,
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<NodeConfig, serde_yaml_ng::Error> {
        serde_yaml_ng::from_str(yaml)
    }

    #[test]
    fn defaults_match_node_exporter() {
        let c = parse("{}").unwrap();
        assert_eq!(c, NodeConfig::default());
        assert_eq!(c.collection_interval, Duration::from_secs(15));
        assert_eq!(c.timeout, Duration::from_secs(10));
        assert_eq!(c.job, "node_exporter");
        let p = c.path.resolve();
        assert_eq!(p.procfs, PathBuf::from("/proc"));
        assert_eq!(p.sysfs, PathBuf::from("/sys"));
        assert!(c.validate().is_empty());
        let active = c.collectors.active();
        for name in ["cpu", "meminfo", "loadavg"] {
            assert!(active.contains(&name), "{name} is on by default");
        }
        assert!(!active.contains(&"amazonefa"), "the EFA exporter's collector is opt-in");
    }

    #[test]
    fn rootfs_moves_procfs_and_sysfs_unless_they_are_set() {
        let c = parse("path: {rootfs: /host}").unwrap();
        let p = c.path.resolve();
        assert_eq!(p.procfs, PathBuf::from("/host/proc"));
        assert_eq!(p.sysfs, PathBuf::from("/host/sys"));
        let c = parse("path: {rootfs: /host, procfs: /hostproc}").unwrap();
        let p = c.path.resolve();
        assert_eq!(p.procfs, PathBuf::from("/hostproc"));
        assert_eq!(p.sysfs, PathBuf::from("/host/sys"));
    }

    #[test]
    fn durations_and_collector_lists_parse() {
        let c = parse(
            "collection_interval: 30s\ntimeout: 1500ms\ncollectors: {disable_defaults: true, enabled: [loadavg]}",
        )
        .unwrap();
        assert_eq!(c.collection_interval, Duration::from_secs(30));
        assert_eq!(c.timeout, Duration::from_millis(1500));
        assert_eq!(c.collectors.active(), ["loadavg"]);
        let c = parse("collectors: {disabled: [cpu]}").unwrap();
        assert!(!c.collectors.active().contains(&"cpu"));
        assert!(c.collectors.active().contains(&"meminfo"));
    }

    #[test]
    fn filters_default_to_node_exporter_and_can_be_set() {
        let c = parse("{}").unwrap();
        assert!(c.collectors.filesystem.fs_types_exclude.contains("overlay"));
        assert!(c.collectors.vmstat.fields.contains("oom_kill"));
        let c = parse("collectors: {filesystem: {mount_points_exclude: '^/boot$'}, vmstat: {fields: '.*'}}").unwrap();
        assert_eq!(c.collectors.filesystem.mount_points_exclude, "^/boot$");
        assert!(
            c.collectors.filesystem.fs_types_exclude.contains("overlay"),
            "the other filter keeps its default"
        );
        assert_eq!(c.collectors.vmstat.fields, ".*");
        assert!(c.validate().is_empty());
        let c = parse("collectors: {netstat: {fields: '(unclosed'}}").unwrap();
        let errors = c.validate();
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].path, "collectors.netstat.fields");
        assert!(
            errors[0].message.contains("--collector.netstat.fields"),
            "{}",
            errors[0].message
        );
        assert!(parse("collectors: {vmstat: {field: x}}").is_err());
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let err = parse("collection_intervall: 15s").unwrap_err().to_string();
        assert!(err.contains("collection_intervall"), "{err}");
        assert!(parse("path: {proc: /x}").is_err());
        assert!(parse("collectors: {enable: [cpu]}").is_err());
    }

    #[test]
    fn validation_reports_every_problem_with_its_path() {
        let c = parse(
            "collection_interval: 0\ntimeout: 0\njob: ''\ninstance: ' '\npath: {rootfs: '', sysfs: ''}\n\
             collectors: {enabled: [cpu, hwmonn], disabled: [cpu, bogus]}",
        )
        .unwrap();
        let errors = c.validate();
        let paths: Vec<_> = errors.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "collection_interval",
                "timeout",
                "job",
                "instance",
                "path.rootfs",
                "path.sysfs",
                "collectors.enabled[1]",
                "collectors.disabled[1]",
                "collectors.enabled[0]",
            ]
        );
        let unknown = &errors[6].message;
        assert!(unknown.contains("\"hwmonn\""), "{unknown}");
        assert!(unknown.contains("cpu") && unknown.contains("meminfo"), "{unknown}");
    }
}
