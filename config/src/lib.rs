//! nodetel-config: loads, expands and validates the YAML config and builds the pipelines.
//!
//! The layout is the OpenTelemetry Collector's (`receivers`, `processors`, `exporters`,
//! `extensions`, `service.pipelines`), so otelcol metrics configs load as they are. Loading goes:
//! YAML → environment expansion ([`expand`]) → document checks → each component section decoded
//! and validated by its type ([`Components`]) → pipeline graph checks. Every problem is reported
//! at once, each with its YAML path ([`ConfigError`]). [`Config::build`] then wires the runtime
//! graph ([`Service`]).
//!
//! ```no_run
//! let env = |name: &str| std::env::var(name).ok();
//! let loaded = nodetel_config::load_file(std::path::Path::new("nodetel.yaml"), &env)?;
//! for warning in &loaded.warnings {
//!     eprintln!("{warning}");
//! }
//! let service = loaded.config.build(std::sync::Arc::new(nodetel_core::telemetry::Registry::new()))?;
//! # Ok::<(), nodetel_config::ConfigErrors>(())
//! ```
#![deny(missing_docs)]

mod build;
mod default;
mod document;
pub mod error;
pub mod expand;
pub mod health_check;
mod loaded;
mod locate;
pub mod registry;
mod validate;

use std::path::Path;

use serde_yaml_ng::Value;

pub use build::{DEFAULT_TELEMETRY_ADDRESS, Service, ServiceSettings};
pub use default::{DEFAULT_YAML, NVIDIA_CONTROL_DEVICE, REMOTE_WRITE_URL_VAR};
pub use error::{ConfigError, ConfigErrors};
pub use expand::Env;
pub use loaded::{Config, Loaded, Pipeline};
pub use registry::Components;

/// Loads a config file with every component type compiled into nodetel.
pub fn load_file(path: &Path, env: Env<'_>) -> Result<Loaded, ConfigErrors> {
    load_file_with(path, env, &Components::builtin())
}

/// Loads a config file with the given component types.
pub fn load_file_with(path: &Path, env: Env<'_>, components: &Components) -> Result<Loaded, ConfigErrors> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigErrors::one(ConfigError::new(&name, format!("cannot read the config file: {e}"))))?;
    load_str_with(&text, &name, env, components)
}

/// Loads a config from text; `source_name` names it in errors (a file name).
pub fn load_str(yaml: &str, source_name: &str, env: Env<'_>) -> Result<Loaded, ConfigErrors> {
    load_str_with(yaml, source_name, env, &Components::builtin())
}

/// Loads a config from text with the given component types.
pub fn load_str_with(
    yaml: &str,
    source_name: &str,
    env: Env<'_>,
    components: &Components,
) -> Result<Loaded, ConfigErrors> {
    let value = parse_yaml(yaml, source_name)?;
    load_value(value, Some(yaml), env, components, Vec::new())
}

/// The embedded default config ([`DEFAULT_YAML`]), with remote write added when
/// `AMP_REMOTE_WRITE_URL` is set and this build has the `prometheusremotewrite` exporter.
pub fn default_config(env: Env<'_>) -> Result<Loaded, ConfigErrors> {
    default_config_with(env, &Components::builtin())
}

/// The embedded default config with the given component types, for this node.
pub fn default_config_with(env: Env<'_>, components: &Components) -> Result<Loaded, ConfigErrors> {
    default_config_for(env, components, &|path| Path::new(path).exists())
}

/// The embedded default config for a node where `exists` says which paths exist (the `gpu`
/// receiver is added where the NVIDIA driver's device is).
pub fn default_config_for(
    env: Env<'_>,
    components: &Components,
    exists: &dyn Fn(&str) -> bool,
) -> Result<Loaded, ConfigErrors> {
    let mut value = parse_yaml(DEFAULT_YAML, "the embedded default config")?;
    default::apply_node_sources(&mut value, exists, components);
    let warnings = default::apply_environment(&mut value, env, components);
    // No line numbers: the document may have been extended beyond the embedded text.
    load_value(value, None, env, components, warnings)
}

fn parse_yaml(yaml: &str, source_name: &str) -> Result<Value, ConfigErrors> {
    serde_yaml_ng::from_str(yaml)
        .map_err(|e| ConfigErrors::one(ConfigError::new(source_name, format!("not valid YAML: {e}"))))
}

fn load_value(
    value: Value,
    text: Option<&str>,
    env: Env<'_>,
    components: &Components,
    mut warnings: Vec<String>,
) -> Result<Loaded, ConfigErrors> {
    let with_lines = |mut errors: Vec<ConfigError>| {
        if let Some(text) = text {
            for e in &mut errors {
                e.line = locate::line_of(text, &e.path);
            }
        }
        ConfigErrors(errors)
    };
    let expanded = expand::expand(value, env).map_err(with_lines)?;
    warnings.extend(expanded.warnings);
    let (config, unused) = validate::validate(expanded.value, &expanded.retyped, components).map_err(with_lines)?;
    warnings.extend(unused);
    Ok(Loaded { warnings, config })
}

#[cfg(test)]
mod test_components;
#[cfg(test)]
mod tests;
