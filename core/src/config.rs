//! What every component's config implements, and what it gets when it is built.
//!
//! Each component owns its config struct (serde, `deny_unknown_fields`, defaults through
//! `Default`). The config crate deserializes a section into it, calls [`Validate::validate`]
//! (no network and no side effects; it may read files the config names, such as TLS
//! certificates, so that `nodetel validate` reports a bad file) and later `build`. Errors carry paths relative to the
//! component's section; the config crate prefixes them with `receivers.<id>.` and so on.

use std::any::Any;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};

use crate::component::{BoxError, ComponentId, Exporter, Processor, Receiver};
use crate::telemetry::Registry;

/// A problem with one field of a component's config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// Dotted path inside the component's section (`endpoint`, `config.scrape_configs[0].job_name`).
    pub path: String,
    /// What is wrong and what to do about it.
    pub message: String,
}

impl FieldError {
    /// An error at `path`.
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> FieldError {
        FieldError {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Checks that span fields, without I/O. Report every problem, not just the first.
pub trait Validate {
    /// Every problem found; empty when the config is usable.
    fn validate(&self) -> Vec<FieldError> {
        Vec::new()
    }
}

/// Checks what every collecting receiver shares: each duration above zero and a non-empty `job`
/// label (`usual_job` names the value dashboards expect, for the message).
pub fn validate_collection(durations: &[(&str, Duration)], job: &str, usual_job: &str) -> Vec<FieldError> {
    let mut errors: Vec<FieldError> = durations
        .iter()
        .filter(|(_, d)| d.is_zero())
        .map(|(key, _)| FieldError::new(*key, "must be greater than zero; use a duration like 15s"))
        .collect();
    if job.trim().is_empty() {
        errors.push(FieldError::new(
            "job",
            format!("must not be empty; dashboards select on it ({usual_job} is the usual value)"),
        ));
    }
    errors
}

/// What a component gets when it is built.
#[derive(Debug, Clone)]
pub struct BuildContext {
    /// The component's id.
    pub id: ComponentId,
    /// This node's short hostname (the default `instance` label).
    pub hostname: String,
    /// Self-metrics registry, for components with metrics beyond the standard ones.
    pub registry: Arc<Registry>,
    /// The typed configs of the extensions enabled in `service.extensions`, by extension id.
    /// A component that references one (`auth: {authenticator: sigv4auth}`) downcasts it.
    pub extensions: Arc<BTreeMap<String, Arc<dyn Any + Send + Sync>>>,
}

impl BuildContext {
    /// The enabled extension `id`, if it exists and is of type `T`.
    pub fn extension<T: Any + Send + Sync>(&self, id: &str) -> Option<Arc<T>> {
        self.extensions.get(id)?.clone().downcast::<T>().ok()
    }
}

/// An extension type (authenticators, health check): config only; the component or service
/// that uses it reads it from [`BuildContext::extensions`].
pub trait ExtensionConfig: DeserializeOwned + Default + Validate + Clone + Send + Sync + 'static {
    /// The type name in configs (`sigv4auth`, `health_check`).
    const TYPE: &'static str;
}

/// A receiver type: its config and how to build it.
pub trait ReceiverConfig: DeserializeOwned + Default + Validate + Clone + Send + Sync + 'static {
    /// The type name in configs (`node`, `prometheus`).
    const TYPE: &'static str;
    /// Builds a receiver.
    fn build(&self, cx: &BuildContext) -> Result<Box<dyn Receiver>, BoxError>;
}

/// A processor type.
pub trait ProcessorConfig: DeserializeOwned + Default + Validate + Clone + Send + Sync + 'static {
    /// The type name in configs.
    const TYPE: &'static str;
    /// Builds a processor (one per pipeline that lists it).
    fn build(&self, cx: &BuildContext) -> Result<Box<dyn Processor>, BoxError>;
}

/// An exporter type.
pub trait ExporterConfig: DeserializeOwned + Default + Validate + Clone + Send + Sync + 'static {
    /// The type name in configs.
    const TYPE: &'static str;
    /// Builds an exporter.
    fn build(&self, cx: &BuildContext) -> Result<Box<dyn Exporter>, BoxError>;

    /// Extensions this config references, as `(path inside the section, extension id, required
    /// extension type)`, so the config crate can check they exist and are enabled.
    fn extension_refs(&self) -> Vec<(String, String, &'static str)> {
        Vec::new()
    }
}

/// Why a duration string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration {0:?}: use a number with a unit, like 500ms, 15s, 1m30s or 2h")]
pub struct InvalidDuration(String);

/// Parses a duration the way Go's `time.ParseDuration` does (`300ms`, `1.5h`, `2h45m`), which is
/// what OpenTelemetry Collector and Prometheus configs use. Units: ns, us (µs), ms, s, m, h, and
/// Prometheus' d, w, y. A bare `0` is allowed.
pub fn parse_duration(s: &str) -> Result<Duration, InvalidDuration> {
    let err = || InvalidDuration(s.to_owned());
    let t = s.trim();
    if t == "0" {
        return Ok(Duration::ZERO);
    }
    if t.is_empty() || t.starts_with('-') {
        return Err(err());
    }
    let mut rest = t.strip_prefix('+').unwrap_or(t);
    let mut total = 0f64;
    while !rest.is_empty() {
        let num_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).ok_or_else(err)?;
        let (num, tail) = rest.split_at(num_end);
        if num.is_empty() || num == "." {
            return Err(err());
        }
        let n: f64 = num.parse().map_err(|_| err())?;
        let unit_end = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_end);
        let secs = match unit {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "d" => 86_400.0,
            "w" => 604_800.0,
            "y" => 31_536_000.0,
            _ => return Err(err()),
        };
        total += n * secs;
        rest = tail;
    }
    Duration::try_from_secs_f64(total).map_err(|_| err())
}

/// Serde helpers for durations written as Go duration strings.
pub mod duration {
    use super::*;

    /// Deserializes a duration string (`15s`); a bare integer means seconds.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Text(String),
            Secs(u64),
        }
        match Raw::deserialize(d)? {
            Raw::Text(s) => parse_duration(&s).map_err(serde::de::Error::custom),
            Raw::Secs(n) => Ok(Duration::from_secs(n)),
        }
    }

    /// The same for an optional field.
    pub fn deserialize_option<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        deserialize(d).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations_parse() {
        let ok = |s: &str, ms: u64| assert_eq!(parse_duration(s), Ok(Duration::from_millis(ms)), "{s}");
        ok("0", 0);
        ok("15s", 15_000);
        ok("500ms", 500);
        ok("1m30s", 90_000);
        ok("1.5h", 5_400_000);
        ok("2h45m", 9_900_000);
        ok("1d", 86_400_000);
        for bad in ["", "15", "s", "-1s", "1x", "1.2.3s", "5 s"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} should fail");
        }
    }
}
