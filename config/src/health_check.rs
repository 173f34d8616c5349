//! The `health_check` extension: where the readiness endpoint listens (otelcol's extension of the
//! same name). The service serves it; no component reads it.

use nodetel_core::config::{ExtensionConfig, FieldError, Validate};
use serde::Deserialize;

use crate::document::is_host_port;

/// Config of the `health_check` extension.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HealthCheckConfig {
    /// `host:port` to listen on. Default `127.0.0.1:13133`.
    pub endpoint: String,
    /// The URL path that answers. Default `/`.
    pub path: String,
}

impl Default for HealthCheckConfig {
    fn default() -> Self {
        HealthCheckConfig {
            endpoint: "127.0.0.1:13133".to_owned(),
            path: "/".to_owned(),
        }
    }
}

impl Validate for HealthCheckConfig {
    fn validate(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        if !is_host_port(&self.endpoint) {
            errors.push(FieldError::new(
                "endpoint",
                format!("{:?} is not host:port; for example 127.0.0.1:13133", self.endpoint),
            ));
        }
        if !self.path.starts_with('/') {
            errors.push(FieldError::new(
                "path",
                format!("{:?} must start with /; for example /health", self.path),
            ));
        }
        errors
    }
}

impl ExtensionConfig for HealthCheckConfig {
    const TYPE: &'static str = "health_check";
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::decode;

    #[test]
    fn an_empty_section_means_the_defaults() {
        let c: HealthCheckConfig = decode(serde_yaml_ng::Value::Null).unwrap();
        assert_eq!(c, HealthCheckConfig::default());
        assert_eq!(c.endpoint, "127.0.0.1:13133");
    }

    #[test]
    fn every_bad_field_is_reported() {
        let c = HealthCheckConfig {
            endpoint: "13133".to_owned(),
            path: "health".to_owned(),
        };
        let errors: Vec<_> = c.validate().iter().map(ToString::to_string).collect();
        assert_eq!(
            errors,
            vec![
                "endpoint: \"13133\" is not host:port; for example 127.0.0.1:13133",
                "path: \"health\" must start with /; for example /health",
            ]
        );
    }

    #[test]
    fn a_typo_names_the_field() {
        let v: serde_yaml_ng::Value = serde_yaml_ng::from_str("endpont: 127.0.0.1:1").unwrap();
        let errors = decode::<HealthCheckConfig>(v).unwrap_err();
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].path, "endpont");
        assert_eq!(
            errors[0].message,
            "unknown field `endpont`, expected `endpoint` or `path`"
        );
        let v: serde_yaml_ng::Value = serde_yaml_ng::from_str("endpoint: 5").unwrap();
        let errors = decode::<HealthCheckConfig>(v).unwrap_err();
        assert_eq!(errors[0].path, "endpoint");
        assert_eq!(errors[0].message, "invalid type: integer `5`, expected a string");
    }
}
