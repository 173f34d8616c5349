//! Validation: decodes every component section through the registry and checks the pipeline
//! graph, collecting every problem (with its path) before giving up.

use std::collections::{BTreeMap, BTreeSet};

use nodetel_core::{ComponentId, ComponentKind};
use serde_yaml_ng::Value;

use crate::document::{self, PipelineDoc, Section};
use crate::error::{ConfigError, join_path};
use crate::health_check::HealthCheckConfig;
use crate::loaded::{Config, Pipeline};
use crate::locate::{Segment, segments};
use crate::registry::{Components, Decoder};
use nodetel_core::config::{ExtensionConfig, FieldError};

/// Reads, decodes and checks an expanded document; returns the config and warnings about
/// components that are defined but unused.
///
/// `retyped` holds the values that environment expansion turned into bools or numbers, with
/// their text: a component field that wants a string gets the text instead (otelcol does the
/// same), so `password: ${env:PIN}` works when the PIN is all digits.
pub(crate) fn validate(
    root: Value,
    retyped: &BTreeMap<String, String>,
    components: &Components,
) -> Result<(Config, Vec<String>), Vec<ConfigError>> {
    let (doc, mut errors) = document::parse(root);

    let receivers = decode_all(
        ComponentKind::Receiver,
        doc.receivers,
        |t| components.receiver(t),
        components,
        retyped,
        &mut errors,
    );
    let processors = decode_all(
        ComponentKind::Processor,
        doc.processors,
        |t| components.processor(t),
        components,
        retyped,
        &mut errors,
    );
    let exporters = decode_all(
        ComponentKind::Exporter,
        doc.exporters,
        |t| components.exporter(t),
        components,
        retyped,
        &mut errors,
    );
    let extensions = decode_all(
        ComponentKind::Extension,
        doc.extensions,
        |t| components.extension(t),
        components,
        retyped,
        &mut errors,
    );

    let enabled_extensions = check_ids(
        "service.extensions",
        ComponentKind::Extension,
        &doc.service.extensions,
        &extensions.defined,
        false,
        &mut errors,
    );
    let health_checks: Vec<_> = enabled_extensions
        .iter()
        .filter(|id| id.type_name() == HealthCheckConfig::TYPE)
        .collect();
    if health_checks.len() > 1 {
        errors.push(ConfigError::new(
            "service.extensions",
            format!(
                "{} health_check extensions are enabled; nodetel serves one health endpoint, so enable only one",
                health_checks.len()
            ),
        ));
    }

    let mut pipelines = Vec::with_capacity(doc.service.pipelines.len());
    for p in &doc.service.pipelines {
        pipelines.push(check_pipeline(
            p,
            &receivers.defined,
            &processors.defined,
            &exporters.defined,
            &mut errors,
        ));
    }
    if doc.service.pipelines.is_empty() {
        errors.push(ConfigError::new(
            "service.pipelines",
            "no pipelines; add one, for example metrics: {receivers: [node], exporters: [prometheus]}",
        ));
    }

    // Extension references are checked for the exporters that are used: unused ones are not built.
    let used: BTreeSet<&ComponentId> = pipelines.iter().flat_map(|p| &p.exporters).collect();
    for id in used {
        let Some(exporter) = exporters.decoded.get(id.as_str()) else {
            continue;
        };
        for (path, ext, required) in &exporter.extension_refs {
            let path = join_path(&format!("exporters.{id}"), path);
            let message = if !extensions.defined.contains(ext.as_str()) {
                Some(format!(
                    "extension {ext:?} is not defined; add it under extensions and list it in service.extensions"
                ))
            } else if !enabled_extensions.iter().any(|e| e.as_str() == ext) {
                Some(format!(
                    "extension {ext:?} is not enabled; add it to service.extensions"
                ))
            } else {
                let ty = ext.split_once('/').map_or(ext.as_str(), |(t, _)| t);
                (ty != *required)
                    .then(|| format!("extension {ext:?} is a {ty} extension; this needs a {required} extension"))
            };
            if let Some(message) = message {
                errors.push(ConfigError::new(path, message));
            }
        }
    }

    if !errors.is_empty() {
        return Err(errors);
    }
    let warnings = unused(
        &pipelines,
        &receivers,
        &processors,
        &exporters,
        &extensions,
        &enabled_extensions,
    );
    let config = Config {
        receivers: receivers.decoded,
        processors: processors.decoded,
        exporters: exporters.decoded,
        extensions: extensions.decoded,
        enabled_extensions,
        pipelines,
        telemetry: doc.service.telemetry,
        shutdown_timeout: doc.service.shutdown_timeout,
        queue_capacity: doc.service.queue_capacity,
    };
    Ok((config, warnings))
}

/// Warnings for components that are defined but not used: otelcol accepts them, and so does
/// nodetel, but they are not started, which is worth saying.
fn unused<R, P, E, X>(
    pipelines: &[Pipeline],
    receivers: &Decoded<R>,
    processors: &Decoded<P>,
    exporters: &Decoded<E>,
    extensions: &Decoded<X>,
    enabled: &[ComponentId],
) -> Vec<String> {
    let mut warnings = Vec::new();
    let mut check = |section: &str, defined: &BTreeSet<String>, used: &dyn Fn(&str) -> bool, fix: &str| {
        for id in defined.iter().filter(|id| !used(id)) {
            warnings.push(format!("{section}.{id}: defined but {fix}; it is not started"));
        }
    };
    let in_any = |f: fn(&Pipeline) -> &Vec<ComponentId>| {
        move |id: &str| pipelines.iter().any(|p| f(p).iter().any(|x| x.as_str() == id))
    };
    check(
        "receivers",
        &receivers.defined,
        &in_any(|p| &p.receivers),
        "used by no pipeline",
    );
    check(
        "processors",
        &processors.defined,
        &in_any(|p| &p.processors),
        "used by no pipeline",
    );
    check(
        "exporters",
        &exporters.defined,
        &in_any(|p| &p.exporters),
        "used by no pipeline",
    );
    check(
        "extensions",
        &extensions.defined,
        &|id: &str| enabled.iter().any(|e| e.as_str() == id),
        "not listed in service.extensions",
    );
    warnings
}

/// The sections of one kind: every id written (decoded or not) and the decoded ones.
struct Decoded<P> {
    defined: BTreeSet<String>,
    decoded: BTreeMap<String, P>,
}

fn decode_all<P>(
    kind: ComponentKind,
    sections: Vec<Section>,
    lookup: impl Fn(&str) -> Option<Decoder<P>>,
    components: &Components,
    retyped: &BTreeMap<String, String>,
    errors: &mut Vec<ConfigError>,
) -> Decoded<P> {
    let mut out = Decoded {
        defined: BTreeSet::new(),
        decoded: BTreeMap::new(),
    };
    for Section { id, value } in sections {
        let path = format!("{}s.{id}", kind.as_str());
        out.defined.insert(id.to_string());
        let Some(decoder) = lookup(id.type_name()) else {
            errors.push(ConfigError::new(
                path,
                components.unknown_type_message(kind, id.type_name()),
            ));
            continue;
        };
        match decode_with_text_fallback(decoder, value, &path, retyped) {
            Ok(p) => {
                out.decoded.insert(id.to_string(), p);
            }
            Err(field_errors) => errors.extend(field_errors.into_iter().map(|e| ConfigError::in_section(&path, e))),
        }
    }
    out
}

/// Decodes a section; where a field rejects a value that env expansion re-read as a bool or
/// number, puts the expanded text back and tries again.
fn decode_with_text_fallback<P>(
    decoder: Decoder<P>,
    mut value: Value,
    section: &str,
    retyped: &BTreeMap<String, String>,
) -> Result<P, Vec<FieldError>> {
    let inside = format!("{section}.");
    if !retyped.keys().any(|p| p.starts_with(&inside)) {
        return decoder(value);
    }
    // Each retry turns one value back into text, so this ends; the bound is a safety net.
    for _ in 0..=retyped.len() {
        let errors = match decoder(value.clone()) {
            Ok(p) => return Ok(p),
            Err(errors) => errors,
        };
        let restored = match errors.as_slice() {
            [e] if e.message.starts_with("invalid type: ") => retyped
                .get(&join_path(section, &e.path))
                .is_some_and(|text| restore_text(&mut value, &e.path, text)),
            _ => false,
        };
        if !restored {
            return Err(errors);
        }
    }
    decoder(value)
}

/// Replaces the bool or number at `path` (inside `value`) with `text`; false if there is none.
fn restore_text(value: &mut Value, path: &str, text: &str) -> bool {
    let mut at = value;
    for segment in segments(path) {
        let next = match (segment, at) {
            (Segment::Key(k), Value::Mapping(m)) => m.get_mut(k),
            (Segment::Index(i), Value::Sequence(s)) => s.get_mut(i),
            _ => None,
        };
        let Some(next) = next else { return false };
        at = next;
    }
    if matches!(at, Value::Bool(_) | Value::Number(_)) {
        *at = Value::String(text.to_owned());
        true
    } else {
        false
    }
}

fn check_pipeline(
    p: &PipelineDoc,
    receivers: &BTreeSet<String>,
    processors: &BTreeSet<String>,
    exporters: &BTreeSet<String>,
    errors: &mut Vec<ConfigError>,
) -> Pipeline {
    let path = format!("service.pipelines.{}", p.name);
    let mut list = |key: &str, kind, items: &[Option<String>], defined, required| {
        let path = format!("{path}.{key}");
        let ids = check_ids(&path, kind, items, defined, true, errors);
        if required && items.is_empty() {
            errors.push(ConfigError::new(
                path,
                format!("missing; list at least one {kind} defined under {kind}s"),
            ));
        }
        ids
    };
    Pipeline {
        name: p.name.clone(),
        receivers: list("receivers", ComponentKind::Receiver, &p.receivers, receivers, true),
        processors: list("processors", ComponentKind::Processor, &p.processors, processors, false),
        exporters: list("exporters", ComponentKind::Exporter, &p.exporters, exporters, true),
    }
}

/// Checks that each id in a list is defined and listed once; returns the valid ones.
fn check_ids(
    path: &str,
    kind: ComponentKind,
    items: &[Option<String>],
    defined: &BTreeSet<String>,
    in_pipeline: bool,
    errors: &mut Vec<ConfigError>,
) -> Vec<ComponentId> {
    let mut ids: Vec<ComponentId> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let Some(item) = item else { continue };
        let item_path = format!("{path}[{i}]");
        if !defined.contains(item.as_str()) {
            let listed = if defined.is_empty() {
                format!("no {kind}s are defined")
            } else {
                format!("defined: {}", defined.iter().cloned().collect::<Vec<_>>().join(", "))
            };
            errors.push(ConfigError::new(
                item_path,
                format!("{kind} {item:?} is not defined in {kind}s; {listed}"),
            ));
            continue;
        }
        if ids.iter().any(|id| id.as_str() == item) {
            let place = if in_pipeline {
                "this pipeline"
            } else {
                "service.extensions"
            };
            errors.push(ConfigError::new(
                item_path,
                format!("{kind} {item:?} is listed twice in {place}; remove one"),
            ));
            continue;
        }
        // Defined ids were parsed when the section was read, so this cannot fail.
        if let Ok(id) = ComponentId::parse(item) {
            ids.push(id);
        }
    }
    ids
}
