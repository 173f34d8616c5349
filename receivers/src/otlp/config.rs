//! The `otlp` receiver's config, in the OpenTelemetry Collector's layout:
//!
//! ```yaml
//! otlp:
//!   protocols:
//!     grpc: {endpoint: "127.0.0.1:4317"}
//!     http:
//!       endpoint: "0.0.0.0:4318"
//!       tls: {cert_file: server.pem, key_file: server-key.pem, client_ca_file: clients-ca.pem}
//!   add_metric_suffixes: true
//!   resource_to_telemetry_conversion: {enabled: false}
//! ```
//!
//! A protocol is served when its key is present (`grpc:` with no value takes the defaults). With no
//! `protocols` section both are served on loopback: training scripts run on the node itself, so
//! nothing is exposed to the network unless the config says so, and a protocol that listens
//! beyond loopback should have `tls` with `client_ca_file` (see `nodetel_core::tls`).

use std::net::SocketAddr;

use nodetel_core::component::{BoxError, Receiver};
use nodetel_core::config::{BuildContext, FieldError, ReceiverConfig, Validate};
use nodetel_core::tls::ServerTlsConfig;
use serde::{Deserialize, Deserializer};

/// Largest request body accepted by default, on both protocols, before and after decompression.
///
/// The Collector's gRPC default is also 4 MiB; its HTTP default (20 MiB) is larger, but a training
/// script's export is a few kilobytes, so one limit for both keeps memory per request small.
pub const DEFAULT_MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// The receiver's config.
#[derive(Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct OtlpConfig {
    /// Which protocols to serve and where.
    pub protocols: Protocols,
    /// Add unit and type suffixes to metric names (`_seconds`, `_total`, `_ratio`), as the
    /// Collector's Prometheus exporters do. Default true.
    pub add_metric_suffixes: bool,
    /// Turn resource attributes into labels on every series. Default off: they go to `target_info`.
    pub resource_to_telemetry_conversion: ResourceToTelemetry,
    /// Do not add `otel_scope_name` / `otel_scope_version` labels. Default false, as in the Collector.
    pub disable_scope_info: bool,
    /// Do not emit the `target_info` series per resource. Default false.
    pub disable_target_info: bool,
    /// Find the process behind each loopback connection (once per connection, through `/proc`)
    /// so processors can give its series the sender's Slurm job and rank. Default true.
    pub identify_local_senders: bool,
}

impl Default for OtlpConfig {
    fn default() -> Self {
        OtlpConfig {
            protocols: Protocols {
                grpc: Some(GrpcConfig::default()),
                http: Some(HttpConfig::default()),
            },
            add_metric_suffixes: true,
            resource_to_telemetry_conversion: ResourceToTelemetry::default(),
            disable_scope_info: false,
            disable_target_info: false,
            identify_local_senders: true,
        }
    }
}

/// The served protocols. A missing key means the protocol is off.
#[derive(Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Protocols {
    /// OTLP/gRPC (`MetricsService/Export`).
    #[serde(default, deserialize_with = "present_means_enabled")]
    pub grpc: Option<GrpcConfig>,
    /// OTLP/HTTP (`POST /v1/metrics`, protobuf or JSON).
    #[serde(default, deserialize_with = "present_means_enabled")]
    pub http: Option<HttpConfig>,
}

/// `grpc:` written with no value enables the protocol with its defaults, as in the Collector.
fn present_means_enabled<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Some(Option::<T>::deserialize(d)?.unwrap_or_default()))
}

/// OTLP/gRPC settings.
#[derive(Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct GrpcConfig {
    /// `host:port` to listen on. Default `127.0.0.1:4317`.
    pub endpoint: String,
    /// Largest message accepted, in MiB (after decompression). Default 4.
    pub max_recv_msg_size_mib: usize,
    /// Serve over TLS (and require client certificates with `client_ca_file`). Default off.
    pub tls: Option<ServerTlsConfig>,
    /// HTTP/2 keepalive pings to clients, as in the Collector's `configgrpc`.
    pub keepalive: GrpcKeepalive,
}

impl Default for GrpcConfig {
    fn default() -> Self {
        GrpcConfig {
            endpoint: "127.0.0.1:4317".into(),
            max_recv_msg_size_mib: DEFAULT_MAX_BODY_BYTES / (1024 * 1024),
            tls: None,
            keepalive: GrpcKeepalive::default(),
        }
    }
}

/// `keepalive:` of the gRPC protocol.
#[derive(Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct GrpcKeepalive {
    /// When and how long to wait for pings.
    pub server_parameters: KeepaliveServerParameters,
}

/// `keepalive.server_parameters:`: a connection is pinged after `time` without traffic and
/// closed when the ping is not answered within `timeout`, so a client that vanished (a node
/// that crashed, a network partition) does not hold the connection forever.
#[derive(Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct KeepaliveServerParameters {
    /// Idle time before a ping. Default 60s (the Collector leaves gRPC's 2h).
    #[serde(deserialize_with = "nodetel_core::config::duration::deserialize")]
    pub time: std::time::Duration,
    /// How long a ping may go unanswered. Default 20s.
    #[serde(deserialize_with = "nodetel_core::config::duration::deserialize")]
    pub timeout: std::time::Duration,
}

impl Default for KeepaliveServerParameters {
    fn default() -> Self {
        KeepaliveServerParameters {
            time: std::time::Duration::from_secs(60),
            timeout: std::time::Duration::from_secs(20),
        }
    }
}

/// OTLP/HTTP settings.
#[derive(Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// `host:port` to listen on. Default `127.0.0.1:4318`.
    pub endpoint: String,
    /// Largest body accepted, in bytes, both as sent and after gzip decompression. Default 4 MiB.
    pub max_request_body_size: usize,
    /// Serve over TLS (and require client certificates with `client_ca_file`). Default off.
    pub tls: Option<ServerTlsConfig>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            endpoint: "127.0.0.1:4318".into(),
            max_request_body_size: DEFAULT_MAX_BODY_BYTES,
            tls: None,
        }
    }
}

/// Resource attributes as labels.
#[derive(Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct ResourceToTelemetry {
    /// Copy every resource attribute to every series of that resource. Default false.
    pub enabled: bool,
    /// When enabled, still leave out `service.name`, `service.namespace` and
    /// `service.instance.id` (they already become `job` and `instance`). Default false.
    pub exclude_service_attributes: bool,
}

fn check_endpoint(path: &str, endpoint: &str, errors: &mut Vec<FieldError>) {
    if endpoint.parse::<SocketAddr>().is_ok() {
        return;
    }
    // A host name is fine too (`localhost:4317`); it is resolved when the receiver binds.
    let ok = endpoint
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && !host.contains('/') && port.parse::<u16>().is_ok());
    if !ok {
        errors.push(FieldError::new(
            path,
            format!("{endpoint:?} is not host:port; write it like 127.0.0.1:4317 (no scheme, no path)"),
        ));
    }
}

impl Validate for OtlpConfig {
    fn validate(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        let p = &self.protocols;
        if p.grpc.is_none() && p.http.is_none() {
            errors.push(FieldError::new(
                "protocols",
                "no protocol is enabled; add `grpc: {}` and/or `http: {}` under protocols",
            ));
        }
        if let Some(g) = &p.grpc {
            check_endpoint("protocols.grpc.endpoint", &g.endpoint, &mut errors);
            if g.max_recv_msg_size_mib == 0 {
                errors.push(FieldError::new(
                    "protocols.grpc.max_recv_msg_size_mib",
                    "must be at least 1 (MiB); the default is 4",
                ));
            }
            if let Some(tls) = &g.tls {
                errors.extend(tls.validate_at("protocols.grpc.tls"));
            }
            let k = &g.keepalive.server_parameters;
            for (key, d) in [("time", k.time), ("timeout", k.timeout)] {
                if d.is_zero() {
                    errors.push(FieldError::new(
                        format!("protocols.grpc.keepalive.server_parameters.{key}"),
                        "must be greater than zero; use a duration like 30s",
                    ));
                }
            }
        }
        if let Some(h) = &p.http {
            check_endpoint("protocols.http.endpoint", &h.endpoint, &mut errors);
            if h.max_request_body_size == 0 {
                errors.push(FieldError::new(
                    "protocols.http.max_request_body_size",
                    "must be more than 0 bytes; the default is 4194304 (4 MiB)",
                ));
            }
            if let Some(tls) = &h.tls {
                errors.extend(tls.validate_at("protocols.http.tls"));
            }
        }
        if let (Some(g), Some(h)) = (&p.grpc, &p.http)
            && g.endpoint == h.endpoint
        {
            errors.push(FieldError::new(
                "protocols.http.endpoint",
                format!(
                    "{} is also the grpc endpoint; give each protocol its own port",
                    h.endpoint
                ),
            ));
        }
        errors
    }
}

impl ReceiverConfig for OtlpConfig {
    const TYPE: &'static str = "otlp";

    fn build(&self, cx: &BuildContext) -> Result<Box<dyn Receiver>, BoxError> {
        let _ = cx;
        Ok(Box::new(super::OtlpReceiver::new(self.clone())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> OtlpConfig {
        serde_yaml_ng::from_str(yaml).unwrap()
    }

    #[test]
    fn an_empty_section_serves_both_protocols_on_loopback() {
        let c = parse("{}");
        assert_eq!(c.protocols.grpc.as_ref().unwrap().endpoint, "127.0.0.1:4317");
        assert_eq!(c.protocols.http.as_ref().unwrap().endpoint, "127.0.0.1:4318");
        assert!(c.add_metric_suffixes);
        assert!(c.validate().is_empty());
    }

    #[test]
    fn a_protocol_written_without_value_is_enabled_and_the_other_is_off() {
        let c = parse("protocols:\n  grpc:\n");
        assert_eq!(c.protocols.grpc, Some(GrpcConfig::default()));
        assert_eq!(c.protocols.http, None);
        let c = parse("protocols: {http: {endpoint: '0.0.0.0:9999'}}");
        assert_eq!(c.protocols.grpc, None);
        assert_eq!(c.protocols.http.unwrap().endpoint, "0.0.0.0:9999");
    }

    #[test]
    fn testdata_configs_load_as_documented() {
        let c = parse(include_str!("../../testdata/otlp/default.yaml"));
        assert_eq!(c, OtlpConfig::default());
        let c = parse(include_str!("../../testdata/otlp/only_grpc.yaml"));
        assert_eq!(
            c.protocols,
            Protocols {
                grpc: Some(GrpcConfig {
                    endpoint: "0.0.0.0:4317".into(),
                    max_recv_msg_size_mib: 16,
                    tls: None,
                    keepalive: GrpcKeepalive::default(),
                }),
                http: None,
            }
        );
        assert!(!c.add_metric_suffixes);
        assert!(c.resource_to_telemetry_conversion.enabled);
        assert!(c.validate().is_empty());
        let typo = serde_yaml_ng::from_str::<OtlpConfig>(include_str!("../../testdata/otlp/typo_key.yaml"));
        assert!(typo.unwrap_err().to_string().contains("endpoints"));
        let c = parse(include_str!("../../testdata/otlp/invalid.yaml"));
        assert_eq!(c.validate().len(), 5, "{:?}", c.validate());
    }

    #[test]
    fn keepalive_takes_collector_durations_and_refuses_zero() {
        let c = parse("protocols: {grpc: {keepalive: {server_parameters: {time: 2m, timeout: 5s}}}}");
        let k = &c.protocols.grpc.as_ref().unwrap().keepalive.server_parameters;
        assert_eq!((k.time.as_secs(), k.timeout.as_secs()), (120, 5));
        let c = parse("protocols: {grpc: {keepalive: {server_parameters: {time: 0s}}}}");
        let paths: Vec<_> = c.validate().into_iter().map(|e| e.path).collect();
        assert_eq!(paths, ["protocols.grpc.keepalive.server_parameters.time"]);
    }

    #[test]
    fn unknown_keys_are_rejected() {
        assert!(serde_yaml_ng::from_str::<OtlpConfig>("protocols: {grpc: {endpoit: x}}").is_err());
        assert!(serde_yaml_ng::from_str::<OtlpConfig>("protocols: {thrift: {}}").is_err());
    }

    #[test]
    fn validation_reports_every_problem_with_its_path() {
        let c = parse(
            "protocols: {grpc: {endpoint: 'http://x:1', max_recv_msg_size_mib: 0}, http: {endpoint: 'nope', max_request_body_size: 0}}",
        );
        let paths: Vec<_> = c.validate().into_iter().map(|e| e.path).collect();
        assert_eq!(
            paths,
            [
                "protocols.grpc.endpoint",
                "protocols.grpc.max_recv_msg_size_mib",
                "protocols.http.endpoint",
                "protocols.http.max_request_body_size"
            ]
        );
        let c = parse("protocols: {}");
        assert_eq!(c.validate()[0].path, "protocols");
        let c = parse("protocols: {grpc: {endpoint: 'localhost:5'}, http: {endpoint: 'localhost:5'}}");
        assert_eq!(c.validate().len(), 1);
    }
}
