//! TLS sections of listeners through the whole config: a file that cannot be read is reported
//! with its full path in the config (`receivers.otlp.protocols.grpc.tls.cert_file`) and its file
//! name, and the shipped examples, none of which set TLS, still load.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use nodetel_config::{Components, load_str_with};

fn no_env(_: &str) -> Option<String> {
    None
}

#[test]
fn unreadable_tls_files_are_reported_with_their_config_path_and_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("server.pem");
    let yaml = format!(
        r#"
receivers:
  otlp:
    protocols:
      grpc: {{endpoint: "0.0.0.0:4317", tls: {{cert_file: "{m}", key_file: "{m}"}}}}
exporters:
  prometheus:
    endpoint: "0.0.0.0:9464"
    tls: {{cert_file: "{m}", key_file: "{m}", min_version: "1.3"}}
service:
  pipelines:
    metrics: {{receivers: [otlp], exporters: [prometheus]}}
"#,
        m = missing.display()
    );
    let errors = load_str_with(&yaml, "x.yaml", &no_env, &Components::builtin())
        .expect_err("a config with unreadable certificates must not load")
        .messages();
    assert_eq!(errors.len(), 2, "{errors:?}");
    for (error, path) in errors.iter().zip([
        "receivers.otlp.protocols.grpc.tls.cert_file",
        "exporters.prometheus.tls.cert_file",
    ]) {
        assert!(error.starts_with(&format!("{path}: ")), "{error}");
        assert!(error.contains(&missing.display().to_string()), "{error}");
    }
}
