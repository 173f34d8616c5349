//! The `slurm` receiver's config: mode, compatibility target, cadence, where Slurm is.

use std::path::PathBuf;
use std::time::Duration;

use nodetel_core::component::{BoxError, Receiver, ScrapeReceiver};
use nodetel_core::config::{BuildContext, FieldError, ReceiverConfig, Validate, duration, validate_collection};
use nodetel_host::slurm::SlurmCli;
use serde::Deserialize;

use super::scraper::SlurmScraper;

/// Where the receiver runs and what it reports.
#[derive(Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Cluster metrics, as a Slurm exporter beside slurmctld reports them.
    #[default]
    Controller,
    /// Facts about the jobs on this node only.
    Worker,
}

/// Which exporter's metric names and labels the controller mode reproduces.
#[derive(Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum Compat {
    /// SckyzO/slurm_exporter v1.1.0, what HyperPod installs: labelled, non-zero series only.
    #[default]
    Sckyzo,
    /// vpenso/prometheus-slurm-exporter 0.20, what dashboard 4323 was built for: unlabelled,
    /// zero-filled, terminal job states included.
    Vpenso,
}

/// The controller-mode collectors, by the exporters' names.
pub const COLLECTORS: &[&str] = &[
    "accounts",
    "cpus",
    "fairshare",
    "gpus",
    "info",
    "node",
    "nodes",
    "partitions",
    "queue",
    "scheduler",
    "users",
];

/// Config of the `slurm` receiver.
///
/// ```yaml
/// receivers:
///   slurm:
///     mode: controller          # or worker
///     compat: sckyzo            # or vpenso
///     collection_interval: 15s
///     timeout: 10s              # one round
///     command_timeout: 5s       # one Slurm command (the exporter's --command.timeout)
///     bin_dir: /opt/slurm/bin   # default: PATH
///     slurm_conf: null          # SLURM_CONF for the commands
///     node_name: null           # worker mode: the Slurm node name; default: short hostname
///     job: slurm_exporter
///     instance: null            # default: short hostname
///     disabled_collectors: [fairshare]
/// ```
#[derive(Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SlurmConfig {
    /// Controller (cluster metrics) or worker (this node's jobs).
    pub mode: Mode,
    /// The exporter whose names the controller mode reproduces.
    pub compat: Compat,
    /// How often to collect.
    #[serde(deserialize_with = "duration::deserialize")]
    pub collection_interval: Duration,
    /// Upper bound of one collection (clamped to the interval).
    #[serde(deserialize_with = "duration::deserialize")]
    pub timeout: Duration,
    /// Timeout of one Slurm command; the command is killed after it.
    #[serde(deserialize_with = "duration::deserialize")]
    pub command_timeout: Duration,
    /// Directory of the Slurm programs; `None` searches `PATH`.
    pub bin_dir: Option<PathBuf>,
    /// `SLURM_CONF` for the commands; `None` leaves Slurm's default.
    pub slurm_conf: Option<PathBuf>,
    /// Worker mode: this node's Slurm name; `None` means the short hostname.
    pub node_name: Option<String>,
    /// Value of the `job` label.
    pub job: String,
    /// Value of the `instance` label; `None` means the short hostname.
    pub instance: Option<String>,
    /// Controller collectors not to run.
    pub disabled_collectors: Vec<String>,
}

impl Default for SlurmConfig {
    fn default() -> Self {
        SlurmConfig {
            mode: Mode::Controller,
            compat: Compat::Sckyzo,
            collection_interval: Duration::from_secs(15),
            timeout: Duration::from_secs(10),
            command_timeout: Duration::from_secs(5),
            bin_dir: None,
            slurm_conf: None,
            node_name: None,
            job: "slurm_exporter".to_owned(),
            instance: None,
            disabled_collectors: Vec::new(),
        }
    }
}

impl SlurmConfig {
    /// The Slurm command runner this config describes.
    pub fn cli(&self) -> SlurmCli {
        let cli = SlurmCli::new(self.bin_dir.clone(), self.command_timeout);
        match &self.slurm_conf {
            Some(conf) => cli.with_env("SLURM_CONF", conf),
            None => cli,
        }
    }

    /// Whether controller collector `name` runs.
    pub fn collector_enabled(&self, name: &str) -> bool {
        !self.disabled_collectors.iter().any(|d| d == name)
    }
}

impl Validate for SlurmConfig {
    fn validate(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        errors.extend(validate_collection(
            &[
                ("collection_interval", self.collection_interval),
                ("timeout", self.timeout),
                ("command_timeout", self.command_timeout),
            ],
            &self.job,
            "slurm_exporter",
        ));
        for (key, value) in [("instance", &self.instance), ("node_name", &self.node_name)] {
            if value.as_deref().is_some_and(|v| v.trim().is_empty()) {
                errors.push(FieldError::new(
                    key,
                    "must not be empty; remove the key to use this node's hostname",
                ));
            }
        }
        for (i, name) in self.disabled_collectors.iter().enumerate() {
            if !COLLECTORS.contains(&name.as_str()) {
                errors.push(FieldError::new(
                    format!("disabled_collectors[{i}]"),
                    format!(
                        "unknown collector {name:?}; known collectors: {}",
                        COLLECTORS.join(", ")
                    ),
                ));
            }
        }
        errors
    }
}

impl ReceiverConfig for SlurmConfig {
    const TYPE: &'static str = "slurm";

    fn build(&self, cx: &BuildContext) -> Result<Box<dyn Receiver>, BoxError> {
        let instance = self.instance.clone().unwrap_or_else(|| cx.hostname.clone());
        let node = self.node_name.clone().unwrap_or_else(|| cx.hostname.clone());
        let scraper = SlurmScraper::new(self, self.cli(), &instance, node)?;
        Ok(Box::new(ScrapeReceiver::new(
            scraper,
            self.collection_interval,
            self.timeout,
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<SlurmConfig, serde_yaml_ng::Error> {
        serde_yaml_ng::from_str(yaml)
    }

    #[test]
    fn defaults_match_hyperpods_exporter() {
        let c = parse("{}").unwrap();
        assert_eq!(c, SlurmConfig::default());
        assert_eq!((c.mode, c.compat), (Mode::Controller, Compat::Sckyzo));
        assert_eq!(c.job, "slurm_exporter");
        assert_eq!(c.command_timeout, Duration::from_secs(5));
        assert!(c.validate().is_empty());
    }

    #[test]
    fn modes_and_compat_parse_and_typos_are_rejected() {
        let c = parse("mode: worker\ncompat: vpenso\nbin_dir: /opt/slurm/bin").unwrap();
        assert_eq!((c.mode, c.compat), (Mode::Worker, Compat::Vpenso));
        assert!(parse("mode: workers").is_err());
        assert!(parse("compt: vpenso").is_err());
    }

    #[test]
    fn validation_reports_every_problem_with_its_path() {
        let c = parse("timeout: 0\njob: ''\ninstance: ' '\ndisabled_collectors: [cpus, gpu]").unwrap();
        let paths: Vec<_> = c.validate().into_iter().map(|e| e.path).collect();
        assert_eq!(paths, ["timeout", "job", "instance", "disabled_collectors[1]"]);
    }
}
