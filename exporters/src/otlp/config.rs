//! The `otlp` exporter's config, in the OpenTelemetry Collector's layout:
//!
//! ```yaml
//! otlp:
//!   endpoint: collector.example:4317
//!   headers: {x-tenant: ml}
//!   tls: {insecure: false}
//!   timeout: 5s
//!   compression: gzip
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use nodetel_core::component::{BoxError, Exporter};
use nodetel_core::config::{BuildContext, ExporterConfig, FieldError, Validate, duration};
use serde::Deserialize;

/// The exporter's config.
#[derive(Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct OtlpExporterConfig {
    /// Where to send: `host:port`, `http://host:port` (plaintext) or `https://host:port`.
    /// Without a scheme TLS is used unless `tls.insecure` is true. Required.
    pub endpoint: String,
    /// gRPC metadata sent with every request (authentication tokens, tenant ids).
    pub headers: BTreeMap<String, String>,
    /// Transport security.
    pub tls: TlsConfig,
    /// Deadline of one export call. Default 5s.
    #[serde(deserialize_with = "duration::deserialize")]
    pub timeout: Duration,
    /// `gzip` (default) or `none`.
    pub compression: Compression,
}

impl Default for OtlpExporterConfig {
    fn default() -> Self {
        OtlpExporterConfig {
            endpoint: String::new(),
            headers: BTreeMap::new(),
            tls: TlsConfig::default(),
            timeout: Duration::from_secs(5),
            compression: Compression::Gzip,
        }
    }
}

/// `tls:` settings.
#[derive(Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// Send in plaintext when the endpoint has no scheme. Default false (TLS, with the Mozilla
    /// root certificates).
    pub insecure: bool,
}

/// Request compression.
#[derive(Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// gzip, as the Collector's default.
    #[default]
    Gzip,
    /// No compression.
    None,
}

impl OtlpExporterConfig {
    /// The endpoint as a URI with a scheme, and whether it uses TLS.
    pub(crate) fn uri(&self) -> (String, bool) {
        let e = self.endpoint.trim();
        if e.starts_with("https://") {
            (e.to_owned(), true)
        } else if e.starts_with("http://") {
            (e.to_owned(), false)
        } else if self.tls.insecure {
            (format!("http://{e}"), false)
        } else {
            (format!("https://{e}"), true)
        }
    }
}

impl Validate for OtlpExporterConfig {
    fn validate(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        if self.endpoint.trim().is_empty() {
            errors.push(FieldError::new(
                "endpoint",
                "is required: the collector to send to, like otel-collector:4317",
            ));
        } else {
            let (uri, _) = self.uri();
            match uri.parse::<http::Uri>() {
                Ok(u) if u.host().is_some() && u.path().len() <= 1 => {}
                _ => errors.push(FieldError::new(
                    "endpoint",
                    format!(
                        "{:?} is not host:port or http(s)://host:port (no path); write it like otel-collector:4317",
                        self.endpoint
                    ),
                )),
            }
        }
        for (k, v) in &self.headers {
            if tonic::metadata::MetadataKey::<tonic::metadata::Ascii>::from_bytes(k.as_bytes()).is_err()
                || k.ends_with("-bin")
            {
                errors.push(FieldError::new(
                    format!("headers.{k}"),
                    "is not a valid gRPC metadata name; use lower-case letters, digits, '-', '_' and '.'",
                ));
            } else if v
                .parse::<tonic::metadata::MetadataValue<tonic::metadata::Ascii>>()
                .is_err()
            {
                errors.push(FieldError::new(
                    format!("headers.{k}"),
                    "the value must be printable ASCII without line breaks",
                ));
            }
        }
        if self.timeout.is_zero() {
            errors.push(FieldError::new("timeout", "must be more than 0; the default is 5s"));
        }
        errors
    }
}

impl ExporterConfig for OtlpExporterConfig {
    const TYPE: &'static str = "otlp";

    fn build(&self, cx: &BuildContext) -> Result<Box<dyn Exporter>, BoxError> {
        let _ = cx;
        Ok(Box::new(super::OtlpExporter::new(self.clone())?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> OtlpExporterConfig {
        serde_yaml_ng::from_str(yaml).unwrap()
    }

    #[test]
    fn defaults_match_the_collector() {
        let c = parse("endpoint: collector:4317");
        assert_eq!(c.timeout, Duration::from_secs(5));
        assert_eq!(c.compression, Compression::Gzip);
        assert_eq!(c.uri(), ("https://collector:4317".to_owned(), true));
        assert!(c.validate().is_empty());
        let c = parse("{endpoint: 'collector:4317', tls: {insecure: true}, compression: none, timeout: 2s}");
        assert_eq!(c.uri(), ("http://collector:4317".to_owned(), false));
        assert_eq!(c.compression, Compression::None);
        assert_eq!(c.timeout, Duration::from_secs(2));
    }

    #[test]
    fn validation_reports_every_problem() {
        let c = parse("{headers: {'Bad Key': x, ok: \"line\\nbreak\"}, timeout: 0}");
        let paths: Vec<_> = c.validate().into_iter().map(|e| e.path).collect();
        assert_eq!(paths, ["endpoint", "headers.Bad Key", "headers.ok", "timeout"]);
        let c = parse("endpoint: 'http://x:1/v1/metrics'");
        assert_eq!(c.validate()[0].path, "endpoint");
        assert!(serde_yaml_ng::from_str::<OtlpExporterConfig>("{endpoint: x, compression: zstd}").is_err());
        assert!(serde_yaml_ng::from_str::<OtlpExporterConfig>("{endpoint: x, retry: {}}").is_err());
    }
}
