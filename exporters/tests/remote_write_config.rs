//! The remote write exporter's config as YAML: otelcol sections load, nodetel's additions load,
//! and otelcol keys nodetel does not implement are reported by name.

// Test helpers outside #[test] functions: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use nodetel_core::config::{ExporterConfig, Validate};
use nodetel_exporters::remote_write::{RemoteWriteConfig, SigV4AuthConfig};

fn load(name: &str) -> RemoteWriteConfig {
    let path = format!("{}/testdata/remote_write/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap();
    serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn the_hyperpod_section_loads_and_validates() {
    let c = load("hyperpod.yaml");
    assert_eq!(c.validate(), vec![]);
    assert_eq!(c.timeout, Duration::from_secs(10));
    assert_eq!(c.external_labels["cluster"], "ml-cluster");
    assert_eq!(c.retry_on_failure.max_elapsed_time, Duration::from_secs(600));
    assert_eq!(c.max_shards(), 4, "num_consumers bounds the shards");
    assert_eq!(
        c.extension_refs(),
        vec![("auth.authenticator".to_owned(), "sigv4auth".to_owned(), "sigv4auth")]
    );
}

#[test]
fn nodetel_additions_load() {
    let c = load("nodetel.yaml");
    assert_eq!(c.validate(), vec![]);
    assert_eq!(c.max_samples_per_send, 5000);
    assert_eq!(c.batch_send_deadline, Duration::from_millis(500));
    assert_eq!((c.min_shards(), c.max_shards()), (2, 8));
    assert_eq!(c.queue.max_size_bytes, 512 << 20);
    assert!(c.send_metadata);
}

#[test]
fn unsupported_otelcol_keys_are_reported_by_name() {
    let c = load("unsupported.yaml");
    let errs = c.validate();
    let paths: Vec<&str> = errs.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "compression",
            "wal",
            "max_batch_request_parallelism",
            "translation_strategy"
        ]
    );
    assert!(
        errs[1].message.starts_with("is not supported by nodetel; remove it"),
        "{}",
        errs[1].message
    );
}

#[test]
fn unknown_keys_are_rejected_and_sigv4_defaults_to_aps() {
    let err = serde_yaml_ng::from_str::<RemoteWriteConfig>("endpoint: http://x\nendpiont: y\n").unwrap_err();
    assert!(err.to_string().contains("endpiont"), "{err}");
    let s: SigV4AuthConfig = serde_yaml_ng::from_str("region: us-east-1\n").unwrap();
    assert_eq!(s.service, "aps");
    assert_eq!(s.validate(), vec![]);
}
