//! The `batch` processor, accepted so that otelcol configs (HyperPod's among them) load unchanged.
//!
//! It passes batches through untouched. Batching lives in the exporters instead (the
//! OpenTelemetry Collector's batching RFC): the remote write exporter sizes requests by samples
//! and bytes per shard, which a pipeline-wide batcher cannot do and would only add a copy and a
//! delay. The keys are still validated so a typo is reported.

use std::time::Duration;

use nodetel_core::config::{BuildContext, FieldError, ProcessorConfig, Validate};
use nodetel_core::{Batch, BoxError, Processor};
use serde::Deserialize;

/// Config of the `batch` processor (otelcol's keys).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BatchConfig {
    /// otelcol: flush after this long. Accepted; exporters batch on their own deadline.
    #[serde(deserialize_with = "nodetel_core::config::duration::deserialize")]
    pub timeout: Duration,
    /// otelcol: flush at this many items. Accepted; exporters size requests themselves.
    pub send_batch_size: u32,
    /// otelcol: upper bound of a batch; 0 means none. Must be 0 or >= `send_batch_size`.
    pub send_batch_max_size: u32,
    /// otelcol: batch per value of these client metadata keys. Not applicable to metrics here.
    pub metadata_keys: Vec<String>,
    /// otelcol: limit of distinct metadata combinations.
    pub metadata_cardinality_limit: u32,
}

impl Default for BatchConfig {
    fn default() -> Self {
        BatchConfig {
            timeout: Duration::from_millis(200),
            send_batch_size: 8192,
            send_batch_max_size: 0,
            metadata_keys: Vec::new(),
            metadata_cardinality_limit: 1000,
        }
    }
}

impl Validate for BatchConfig {
    fn validate(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        if self.send_batch_max_size != 0 && self.send_batch_max_size < self.send_batch_size {
            errors.push(FieldError::new(
                "send_batch_max_size",
                format!(
                    "{} is below send_batch_size ({}); set it to 0 or at least send_batch_size",
                    self.send_batch_max_size, self.send_batch_size
                ),
            ));
        }
        if !self.metadata_keys.is_empty() {
            errors.push(FieldError::new(
                "metadata_keys",
                "not supported: nodetel batches per exporter shard, not per client metadata; remove it",
            ));
        }
        errors
    }
}

impl ProcessorConfig for BatchConfig {
    const TYPE: &'static str = "batch";

    fn build(&self, _cx: &BuildContext) -> Result<Box<dyn Processor>, BoxError> {
        Ok(Box::new(PassThrough))
    }
}

#[derive(Debug)]
struct PassThrough;

impl Processor for PassThrough {
    fn process(&mut self, _batch: &mut Batch) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hyperpod_settings_are_accepted_and_bad_bounds_rejected() {
        let ok = BatchConfig {
            timeout: Duration::from_secs(10),
            send_batch_size: 1024,
            ..BatchConfig::default()
        };
        assert!(ok.validate().is_empty());
        let bad = BatchConfig {
            send_batch_max_size: 10,
            metadata_keys: vec!["tenant".into()],
            ..BatchConfig::default()
        };
        let paths: Vec<_> = bad.validate().into_iter().map(|e| e.path).collect();
        assert_eq!(paths, ["send_batch_max_size", "metadata_keys"]);
    }
}
