//! The `gpu` receiver's config: interval, identity labels, which DCGM fields, where NVML is.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use nodetel_core::component::{BoxError, ComponentKind, Receiver, ScrapeReceiver};
use nodetel_core::config::{BuildContext, FieldError, ReceiverConfig, Validate, duration, validate_collection};
use nodetel_host::gpu::{GpuSource, NvmlSource};
use serde::Deserialize;

use super::collector::GpuCollector;
use super::fields::{self, CounterSet, FieldSpec};
use super::scraper::DisabledReceiver;
use nodetel_core::blocking::BlockingScraper;

/// Config of the `gpu` receiver (dcgm-exporter-compatible GPU metrics read through NVML).
///
/// ```yaml
/// receivers:
///   gpu:
///     collection_interval: 15s
///     timeout: 10s
///     job: dcgm_exporter          # the `job` label on every series
///     instance: ip-10-1-2-3       # the `instance` label; default: this node's short hostname
///     hostname: ip-10-1-2-3       # the `Hostname` label; default: this node's short hostname
///     counters: basic             # basic | advanced (HyperPod's CSVs) | default (dcgm-exporter's) | none
///     include: [DCGM_FI_DEV_FB_RESERVED]
///     exclude: [DCGM_FI_DEV_ENC_UTIL]
///     driver_version_label: false # add DCGM_FI_DRIVER_VERSION="<driver>" to every series
///     library_path: /usr/lib64/libnvidia-ml.so.1  # default: libnvidia-ml.so.1 from the loader path
/// ```
///
/// The default interval is 15 s, the scrape interval of HyperPod's collector, so every sample
/// that reaches Prometheus is fresh; dcgm-exporter itself refreshes every 30 s (set `30s` to
/// reproduce its update cadence exactly). Profiling ratios are averaged over this interval.
#[derive(Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct GpuConfig {
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
    /// Value of dcgm-exporter's `Hostname` label; `None` means the node's short hostname.
    pub hostname: Option<String>,
    /// The counter set to start from.
    pub counters: CounterSet,
    /// Metrics to add to the counter set, by DCGM name.
    pub include: Vec<String>,
    /// Metrics to remove from the counter set, by DCGM name.
    pub exclude: Vec<String>,
    /// Whether every series carries `DCGM_FI_DRIVER_VERSION` (HyperPod's CSVs do not add it).
    pub driver_version_label: bool,
    /// Where `libnvidia-ml.so.1` is; `None` lets the dynamic loader find it.
    pub library_path: Option<PathBuf>,
}

impl Default for GpuConfig {
    fn default() -> Self {
        GpuConfig {
            collection_interval: Duration::from_secs(15),
            timeout: Duration::from_secs(10),
            job: "dcgm_exporter".to_owned(),
            instance: None,
            hostname: None,
            counters: CounterSet::Basic,
            include: Vec::new(),
            exclude: Vec::new(),
            driver_version_label: false,
            library_path: None,
        }
    }
}

impl GpuConfig {
    /// The metrics to emit, in dcgm-exporter's CSV order.
    pub(crate) fn selected(&self) -> Vec<&'static FieldSpec> {
        fields::FIELDS
            .iter()
            .filter(|f| {
                let on = f.in_set(self.counters) || self.include.iter().any(|n| n == f.name);
                on && !self.exclude.iter().any(|n| n == f.name)
            })
            .collect()
    }

    /// The names of the metrics to emit.
    pub fn selected_names(&self) -> Vec<&'static str> {
        self.selected().into_iter().map(|f| f.name).collect()
    }

    /// Builds the receiver over any [`GpuSource`] (the fake in tests, NVML otherwise).
    pub fn build_with_source(
        &self,
        source: Arc<dyn GpuSource>,
        cx: &BuildContext,
    ) -> Result<Box<dyn Receiver>, BoxError> {
        let instance = self.instance.clone().unwrap_or_else(|| cx.hostname.clone());
        let hostname = self.hostname.clone().unwrap_or_else(|| cx.hostname.clone());
        if source.devices().is_empty() {
            tracing::warn!(
                unavailable = source.unavailable().len(),
                "NVML found no usable GPU; the gpu receiver is disabled."
            );
            return Ok(disabled(cx));
        }
        let collector = GpuCollector::new(source, self, &instance, &hostname)?;
        tracing::info!(gpus = collector.gpus().count(), "Collecting GPU metrics through NVML.");
        Ok(Box::new(ScrapeReceiver::new(
            BlockingScraper::new(collector),
            self.collection_interval,
            self.timeout,
        )))
    }
}

/// Whether the missing driver has been logged at warning level.
static NO_DRIVER_REPORTED: AtomicBool = AtomicBool::new(false);

fn disabled(cx: &BuildContext) -> Box<dyn Receiver> {
    cx.registry.component(&cx.id, ComponentKind::Receiver).set_up(false);
    Box::new(DisabledReceiver)
}

impl Validate for GpuConfig {
    fn validate(&self) -> Vec<FieldError> {
        let mut errors = validate_collection(
            &[
                ("collection_interval", self.collection_interval),
                ("timeout", self.timeout),
            ],
            &self.job,
            "dcgm_exporter",
        );
        for (key, value) in [("instance", &self.instance), ("hostname", &self.hostname)] {
            if value.as_deref().is_some_and(|v| v.trim().is_empty()) {
                errors.push(FieldError::new(
                    key,
                    "must not be empty; remove the key to use this node's hostname",
                ));
            }
        }
        for (list_name, list) in [("include", &self.include), ("exclude", &self.exclude)] {
            for (i, name) in list.iter().enumerate() {
                if fields::find(name).is_none() {
                    errors.push(FieldError::new(
                        format!("{list_name}[{i}]"),
                        format!("unknown metric {name:?}; known metrics: {}", fields::known_names()),
                    ));
                }
            }
        }
        for (i, name) in self.include.iter().enumerate() {
            if self.exclude.contains(name) {
                errors.push(FieldError::new(
                    format!("include[{i}]"),
                    format!("metric {name:?} is both included and excluded; keep it in one list"),
                ));
            }
        }
        if self.library_path.as_ref().is_some_and(|p| p.as_os_str().is_empty()) {
            errors.push(FieldError::new(
                "library_path",
                "must not be empty; remove the key to let the loader find libnvidia-ml.so.1",
            ));
        }
        if errors.is_empty() && self.selected().is_empty() {
            errors.push(FieldError::new(
                "include",
                "no metric is selected; pick a counter set (basic, advanced, default) or list metrics here",
            ));
        }
        errors
    }
}

impl ReceiverConfig for GpuConfig {
    const TYPE: &'static str = "gpu";

    /// Starts NVML. Without a driver or a GPU the receiver is built disabled (reported down,
    /// emitting nothing) instead of failing, so the same config runs on CPU-only nodes.
    fn build(&self, cx: &BuildContext) -> Result<Box<dyn Receiver>, BoxError> {
        match NvmlSource::open(self.library_path.as_deref()) {
            Ok(source) => self.build_with_source(Arc::new(source), cx),
            Err(error) => {
                // Builds repeat (validation, restarts); say it once per process.
                if !NO_DRIVER_REPORTED.swap(true, Ordering::Relaxed) {
                    tracing::warn!(%error, "No NVIDIA driver or GPU found; the gpu receiver is disabled.");
                } else {
                    tracing::debug!(%error, "No NVIDIA driver or GPU found; the gpu receiver is disabled.");
                }
                Ok(disabled(cx))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<GpuConfig, serde_yaml_ng::Error> {
        serde_yaml_ng::from_str(yaml)
    }

    #[test]
    fn defaults_mirror_hyperpod_basic() {
        let c = parse("{}").unwrap();
        assert_eq!(c, GpuConfig::default());
        assert_eq!(c.collection_interval, Duration::from_secs(15));
        assert_eq!(c.job, "dcgm_exporter");
        assert_eq!(c.counters, CounterSet::Basic);
        assert!(c.validate().is_empty());
        let names = c.selected_names();
        assert!(names.contains(&"DCGM_FI_DEV_GPU_UTIL"));
        assert!(names.contains(&"DCGM_FI_DEV_POWER_VIOLATION"));
        assert!(!names.contains(&"DCGM_FI_DEV_ECC_SBE_VOL_TOTAL"));
    }

    #[test]
    fn include_and_exclude_adjust_the_counter_set() {
        let c =
            parse("counters: advanced\ninclude: [DCGM_FI_DEV_FB_RESERVED]\nexclude: [DCGM_FI_DEV_ENC_UTIL]").unwrap();
        let names = c.selected_names();
        assert!(names.contains(&"DCGM_FI_DEV_FB_RESERVED"));
        assert!(names.contains(&"DCGM_FI_DEV_ECC_SBE_VOL_TOTAL"));
        assert!(!names.contains(&"DCGM_FI_DEV_ENC_UTIL"));
        let c = parse("counters: none\ninclude: [DCGM_FI_DEV_GPU_TEMP]").unwrap();
        assert_eq!(c.selected_names(), ["DCGM_FI_DEV_GPU_TEMP"]);
    }

    #[test]
    fn unknown_keys_and_counter_sets_are_rejected() {
        assert!(parse("collection_intervall: 15s").is_err());
        let err = parse("counters: basik").unwrap_err().to_string();
        assert!(err.contains("basik"), "{err}");
    }

    #[test]
    fn validation_reports_every_problem_with_its_path() {
        let c = parse(
            "collection_interval: 0\ntimeout: 0\njob: ''\ninstance: ''\nhostname: ' '\n\
             include: [DCGM_FI_DEV_GPU_TEMP, DCGM_FI_DEV_GPU_TEMPP]\nexclude: [bogus, DCGM_FI_DEV_GPU_TEMP]\nlibrary_path: ''",
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
                "hostname",
                "include[1]",
                "exclude[0]",
                "include[0]",
                "library_path"
            ]
        );
        assert!(
            errors[5].message.contains("DCGM_FI_DEV_GPU_UTIL"),
            "{}",
            errors[5].message
        );
    }

    #[test]
    fn an_empty_selection_is_an_error() {
        let c = parse("counters: none").unwrap();
        let errors = c.validate();
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].path, "include");
    }
}
