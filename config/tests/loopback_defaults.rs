//! Every component that listens binds to loopback unless the config says otherwise: the OTLP
//! receiver (gRPC and HTTP), the Prometheus pull exporter, the health endpoint and the
//! self-metrics endpoint, whether their section is empty or absent, and in the embedded default
//! config. Binding beyond loopback is always an explicit choice in the config.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::sync::Arc;

use nodetel_config::health_check::HealthCheckConfig;
use nodetel_config::{Components, DEFAULT_TELEMETRY_ADDRESS, DEFAULT_YAML, load_str_with};
use nodetel_core::telemetry::Registry;
use nodetel_exporters::prometheus::PrometheusConfig;
use nodetel_receivers::otlp::OtlpConfig;

/// Every address `endpoint` may resolve to is a loopback address.
fn assert_loopback(what: &str, endpoint: &str) {
    let addrs: Vec<SocketAddr> = endpoint
        .to_socket_addrs()
        .unwrap_or_else(|e| panic!("{what}: {endpoint:?} does not resolve: {e}"))
        .collect();
    assert!(!addrs.is_empty(), "{what}: {endpoint:?}");
    for a in addrs {
        let loopback = match a.ip() {
            IpAddr::V4(ip) => ip.is_loopback(),
            IpAddr::V6(ip) => ip.is_loopback(),
        };
        assert!(loopback, "{what} listens on {a} ({endpoint:?}) by default");
    }
}

fn no_env(_: &str) -> Option<String> {
    None
}

#[test]
fn otlp_receiver_protocols_default_to_loopback() {
    for yaml in ["{}", "protocols: {grpc: , http: }", "protocols: {grpc: {}, http: {}}"] {
        let c: OtlpConfig = serde_yaml_ng::from_str(yaml).unwrap();
        assert_loopback("otlp grpc", &c.protocols.grpc.unwrap().endpoint);
        assert_loopback("otlp http", &c.protocols.http.unwrap().endpoint);
    }
}

#[test]
fn prometheus_exporter_defaults_to_loopback() {
    let c: PrometheusConfig = serde_yaml_ng::from_str("{}").unwrap();
    assert_loopback("prometheus exporter", &c.endpoint);
}

#[test]
fn health_and_self_metrics_endpoints_default_to_loopback() {
    assert_loopback("health_check", &HealthCheckConfig::default().endpoint);
    let c: HealthCheckConfig = serde_yaml_ng::from_str("{}").unwrap();
    assert_loopback("health_check", &c.endpoint);
    assert_loopback("self-metrics", DEFAULT_TELEMETRY_ADDRESS);

    // A config that names neither: the service settings the binary serves them from.
    for yaml in [
        "receivers: {node: }\nexporters: {debug: }\nservice:\n  pipelines: {metrics: {receivers: [node], exporters: [debug]}}\n",
        "receivers: {node: }\nexporters: {debug: }\nextensions: {health_check: }\nservice:\n  extensions: [health_check]\n  \
         telemetry: {metrics: {level: detailed}}\n  pipelines: {metrics: {receivers: [node], exporters: [debug]}}\n",
    ] {
        let loaded = load_str_with(yaml, "x.yaml", &no_env, &Components::builtin()).unwrap();
        let service = loaded.config.build(Arc::new(Registry::new())).unwrap();
        assert_loopback("self-metrics", &service.settings.telemetry_address);
        assert_loopback("health", service.settings.health_address.as_deref().unwrap());
    }
}

/// Every `endpoint` or `address` under a listening component of a YAML document.
fn listen_addresses(v: &serde_yaml_ng::Value, path: &str, out: &mut Vec<(String, String)>) {
    match v {
        serde_yaml_ng::Value::Mapping(m) => {
            for (k, v) in m {
                let key = k.as_str().unwrap_or_default();
                let here = format!("{path}.{key}");
                // Exporters other than the pull endpoint connect out; their endpoints are URLs.
                let connects_out = path == ".exporters" && key != "prometheus";
                if (key == "endpoint" || key == "address") && v.is_string() {
                    out.push((here, v.as_str().unwrap().to_owned()));
                } else if !connects_out {
                    listen_addresses(v, &here, out);
                }
            }
        }
        serde_yaml_ng::Value::Sequence(s) => s.iter().for_each(|v| listen_addresses(v, path, out)),
        _ => {}
    }
}

#[test]
fn the_embedded_default_config_listens_on_loopback_only() {
    let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(DEFAULT_YAML).unwrap();
    let mut found = Vec::new();
    listen_addresses(&doc, "", &mut found);
    assert!(
        found.iter().any(|(p, _)| p == ".exporters.prometheus.endpoint"),
        "{found:?}"
    );
    for (path, endpoint) in &found {
        assert_loopback(path, endpoint);
    }
    let loaded = load_str_with(DEFAULT_YAML, "default", &no_env, &Components::builtin()).unwrap();
    let service = loaded.config.build(Arc::new(Registry::new())).unwrap();
    assert_loopback("self-metrics", &service.settings.telemetry_address);
    assert_loopback("health", service.settings.health_address.as_deref().unwrap());
}
