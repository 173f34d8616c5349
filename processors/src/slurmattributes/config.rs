//! The `slurmattributes` processor's config: refresh cadence, where Slurm and /proc are, which
//! series get which label names.

use std::path::PathBuf;
use std::time::Duration;

use nodetel_core::config::{BuildContext, FieldError, ProcessorConfig, Validate, duration};
use nodetel_core::labels::is_valid_label_name;
use nodetel_core::{BoxError, Processor};
use nodetel_host::slurm::SlurmCli;
use serde::Deserialize;

use super::processor::SlurmAttributes;

/// Config of the `slurmattributes` processor (job, partition, user and rank labels).
///
/// ```yaml
/// processors:
///   slurmattributes:
///     refresh_interval: 5s      # how often the job table is rebuilt
///     command_timeout: 5s       # each Slurm command is killed after this
///     slurm_max_age: 60s        # reuse Slurm's answer while the local tasks match it (0: always ask)
///     bin_dir: /opt/slurm/bin   # where squeue/scontrol are; default: PATH
///     slurm_conf: null          # SLURM_CONF for the commands; default: Slurm's own
///     node_name: null           # the Slurm node name; default: this node's short hostname
///     proc_root: /proc
///     gpu_label: gpu            # the GPU index label of per-GPU series (dcgm-exporter's)
///     uuid_label: UUID          # matched when a series has no index label
///     node_series: true         # label node-level series when exactly one job holds the node
///     hpc_job: false            # also add dcgm-exporter's hpc_job=<job id> to per-GPU series
///     exclude_metric_prefixes: [slurm_]  # series left alone (Slurm's own cluster metrics)
///     labels: {job_id: slurm_job_id, job_name: slurm_job_name, job_user: slurm_job_user,
///              partition: slurm_partition, rank: rank, local_rank: local_rank}
/// ```
#[derive(Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SlurmAttributesConfig {
    /// How often the snapshot of this node's jobs is rebuilt.
    #[serde(deserialize_with = "duration::deserialize")]
    pub refresh_interval: Duration,
    /// Timeout of one Slurm command.
    #[serde(deserialize_with = "duration::deserialize")]
    pub command_timeout: Duration,
    /// How long Slurm's answer is reused while the jobs whose tasks run here are exactly the
    /// jobs it listed; a job starting or ending changes that set and Slurm is asked at once.
    /// Keeps slurmctld traffic low on large clusters. Zero asks Slurm every refresh.
    #[serde(deserialize_with = "duration::deserialize")]
    pub slurm_max_age: Duration,
    /// Directory of the Slurm programs; `None` searches `PATH`.
    pub bin_dir: Option<PathBuf>,
    /// `SLURM_CONF` passed to the Slurm programs; `None` leaves Slurm's default.
    pub slurm_conf: Option<PathBuf>,
    /// This node's Slurm name; `None` means the short hostname.
    pub node_name: Option<String>,
    /// The proc filesystem to look for task processes in.
    pub proc_root: PathBuf,
    /// Label holding the GPU index on per-GPU series.
    pub gpu_label: String,
    /// Label holding the GPU UUID, used when the index label is missing.
    pub uuid_label: String,
    /// Whether series without a GPU label get the job labels when one job holds the node.
    pub node_series: bool,
    /// Whether per-GPU series also get `hpc_job=<job id>` as dcgm-exporter's HPC mapping does.
    pub hpc_job: bool,
    /// Series whose metric name starts with one of these are left alone. The default keeps the
    /// `slurm` receiver's cluster metrics (which describe the whole cluster, not this node's
    /// job) free of job labels.
    pub exclude_metric_prefixes: Vec<String>,
    /// The names of the added labels.
    pub labels: LabelNames,
}

impl Default for SlurmAttributesConfig {
    fn default() -> Self {
        SlurmAttributesConfig {
            refresh_interval: Duration::from_secs(5),
            command_timeout: Duration::from_secs(5),
            slurm_max_age: Duration::from_secs(60),
            bin_dir: None,
            slurm_conf: None,
            node_name: None,
            proc_root: PathBuf::from("/proc"),
            gpu_label: "gpu".to_owned(),
            uuid_label: "UUID".to_owned(),
            node_series: true,
            hpc_job: false,
            exclude_metric_prefixes: vec!["slurm_".to_owned()],
            labels: LabelNames::default(),
        }
    }
}

/// The names of the labels the processor adds.
#[derive(Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LabelNames {
    /// The job id label.
    pub job_id: String,
    /// The job name label.
    pub job_name: String,
    /// The job's user label.
    pub job_user: String,
    /// The partition label.
    pub partition: String,
    /// The global rank (SLURM_PROCID, or RANK) label.
    pub rank: String,
    /// The node-local rank (SLURM_LOCALID, or LOCAL_RANK) label.
    pub local_rank: String,
}

impl Default for LabelNames {
    fn default() -> Self {
        LabelNames {
            job_id: "slurm_job_id".to_owned(),
            job_name: "slurm_job_name".to_owned(),
            job_user: "slurm_job_user".to_owned(),
            partition: "slurm_partition".to_owned(),
            rank: "rank".to_owned(),
            local_rank: "local_rank".to_owned(),
        }
    }
}

impl LabelNames {
    fn all(&self) -> [(&'static str, &str); 6] {
        [
            ("job_id", &self.job_id),
            ("job_name", &self.job_name),
            ("job_user", &self.job_user),
            ("partition", &self.partition),
            ("rank", &self.rank),
            ("local_rank", &self.local_rank),
        ]
    }
}

impl Validate for SlurmAttributesConfig {
    fn validate(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        if self.refresh_interval < Duration::from_millis(100) {
            errors.push(FieldError::new(
                "refresh_interval",
                "must be at least 100ms; use a duration like 5s",
            ));
        }
        if self.command_timeout.is_zero() {
            errors.push(FieldError::new(
                "command_timeout",
                "must be greater than zero; use a duration like 5s",
            ));
        }
        if self.node_name.as_deref().is_some_and(|n| n.trim().is_empty()) {
            errors.push(FieldError::new(
                "node_name",
                "must not be empty; remove the key to use this node's hostname",
            ));
        }
        if self.proc_root.as_os_str().is_empty() {
            errors.push(FieldError::new("proc_root", "must not be empty; the default is /proc"));
        }
        for (key, value) in [("gpu_label", &self.gpu_label), ("uuid_label", &self.uuid_label)] {
            if !is_valid_label_name(value) {
                errors.push(FieldError::new(
                    key,
                    format!("{value:?} is not a label name; use [a-zA-Z_][a-zA-Z0-9_]*"),
                ));
            }
        }
        let names = self.labels.all();
        for (i, (key, value)) in names.iter().enumerate() {
            if !is_valid_label_name(value) {
                errors.push(FieldError::new(
                    format!("labels.{key}"),
                    format!("{value:?} is not a label name; use [a-zA-Z_][a-zA-Z0-9_]*"),
                ));
            } else if names[..i].iter().any(|(_, other)| other == value) {
                errors.push(FieldError::new(
                    format!("labels.{key}"),
                    format!("{value:?} is already used by another label; give each label its own name"),
                ));
            }
        }
        errors
    }
}

impl ProcessorConfig for SlurmAttributesConfig {
    const TYPE: &'static str = "slurmattributes";

    fn build(&self, cx: &BuildContext) -> Result<Box<dyn Processor>, BoxError> {
        let mut cli = SlurmCli::new(self.bin_dir.clone(), self.command_timeout);
        if let Some(conf) = &self.slurm_conf {
            cli = cli.with_env("SLURM_CONF", conf);
        }
        let node = self.node_name.clone().unwrap_or_else(|| cx.hostname.clone());
        let metrics = super::telemetry::SlurmAttributesMetrics::registered(&cx.registry, &cx.id);
        Ok(Box::new(SlurmAttributes::new(self, cli, node)?.with_metrics(metrics)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<SlurmAttributesConfig, serde_yaml_ng::Error> {
        serde_yaml_ng::from_str(yaml)
    }

    #[test]
    fn defaults_are_documented_values() {
        let c = parse("{}").unwrap();
        assert_eq!(c, SlurmAttributesConfig::default());
        assert_eq!(c.refresh_interval, Duration::from_secs(5));
        assert_eq!(c.labels.job_id, "slurm_job_id");
        assert_eq!(c.gpu_label, "gpu");
        assert!(c.validate().is_empty());
    }

    #[test]
    fn builds_from_defaults_and_passes_batches_through_before_start() {
        let cx = BuildContext {
            id: nodetel_core::ComponentId::parse("slurmattributes").unwrap(),
            hostname: "vm".to_owned(),
            registry: std::sync::Arc::new(nodetel_core::telemetry::Registry::new()),
            extensions: Default::default(),
        };
        let mut p = SlurmAttributesConfig::default().build(&cx).unwrap();
        let labels = nodetel_core::Labels::from_pairs([("__name__", "m"), ("gpu", "0")]).unwrap();
        let mut b = nodetel_core::Batch::new();
        b.push(labels.clone(), nodetel_core::Sample::new(1, 1.0));
        p.process(&mut b);
        assert_eq!(b.series[0].labels, labels);
        assert!(
            cx.registry
                .render()
                .contains("nodetel_slurmattributes_cache_lookups_total")
        );
    }

    #[test]
    fn unknown_keys_are_rejected() {
        assert!(parse("refresh: 5s").is_err());
        assert!(parse("labels: {jobid: x}").is_err());
    }

    #[test]
    fn validation_reports_every_problem_with_its_path() {
        let c = parse(
            "refresh_interval: 10ms\ncommand_timeout: 0\nnode_name: ''\ngpu_label: 'a-b'\n\
             labels: {job_name: slurm_job_id, rank: '1x'}",
        )
        .unwrap();
        let errors = c.validate();
        let paths: Vec<_> = errors.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "refresh_interval",
                "command_timeout",
                "node_name",
                "gpu_label",
                "labels.job_name",
                "labels.rank"
            ]
        );
        assert!(errors[4].message.contains("already used"), "{}", errors[4].message);
    }
}
