//! Which component types this build knows: each entry turns a component's raw YAML section into
//! its typed, validated config and a way to build the component from it.

use std::any::Any;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use nodetel_core::config::{
    BuildContext, ExporterConfig, ExtensionConfig, FieldError, ProcessorConfig, ReceiverConfig, Validate,
};
use nodetel_core::{BoxError, ComponentKind, Exporter, Processor, Receiver};
use serde::de::DeserializeOwned;
use serde_yaml_ng::{Mapping, Value};

/// Builds a component from its typed config.
pub(crate) type BuildFn<T> = Arc<dyn Fn(&BuildContext) -> Result<T, BoxError> + Send + Sync>;

/// An extension's typed config, as components read it from [`BuildContext::extensions`].
pub(crate) type ExtensionValue = Arc<dyn Any + Send + Sync>;

/// An exporter's build function and the extensions its config references.
#[derive(Clone)]
pub(crate) struct PreparedExporter {
    pub(crate) build: BuildFn<Box<dyn Exporter>>,
    /// `(path inside the section, extension id, required extension type)`.
    pub(crate) extension_refs: Vec<(String, String, &'static str)>,
}

pub(crate) type Decoder<P> = fn(Value) -> Result<P, Vec<FieldError>>;

/// The component types a config may use, by kind and type name.
///
/// [`Components::builtin`] holds every type compiled into nodetel; tests and embedders can build
/// their own set with [`Components::new`] and the `with_*` methods.
#[derive(Clone, Default)]
pub struct Components {
    receivers: BTreeMap<&'static str, Decoder<BuildFn<Box<dyn Receiver>>>>,
    processors: BTreeMap<&'static str, Decoder<BuildFn<Box<dyn Processor>>>>,
    exporters: BTreeMap<&'static str, Decoder<PreparedExporter>>,
    extensions: BTreeMap<&'static str, Decoder<ExtensionValue>>,
}

impl fmt::Debug for Components {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Components")
            .field("receivers", &self.types(ComponentKind::Receiver))
            .field("processors", &self.types(ComponentKind::Processor))
            .field("exporters", &self.types(ComponentKind::Exporter))
            .field("extensions", &self.types(ComponentKind::Extension))
            .finish()
    }
}

impl Components {
    /// No component types at all.
    pub fn new() -> Components {
        Components::default()
    }

    /// Every component type compiled into nodetel.
    pub fn builtin() -> Components {
        let mut c = Components::new();
        c.with_receiver::<nodetel_receivers::node::NodeConfig>()
            .with_receiver::<nodetel_receivers::gpu::GpuConfig>()
            .with_receiver::<nodetel_receivers::prometheus::PrometheusConfig>()
            .with_receiver::<nodetel_receivers::otlp::OtlpConfig>()
            .with_receiver::<nodetel_receivers::slurm::SlurmConfig>()
            .with_processor::<nodetel_processors::batch::BatchConfig>()
            .with_processor::<nodetel_processors::slurmattributes::SlurmAttributesConfig>()
            .with_exporter::<nodetel_exporters::debug::DebugConfig>()
            .with_exporter::<nodetel_exporters::prometheus::PrometheusConfig>()
            .with_exporter::<nodetel_exporters::otlp::OtlpExporterConfig>()
            .with_exporter::<nodetel_exporters::remote_write::RemoteWriteConfig>()
            .with_extension::<nodetel_exporters::remote_write::SigV4AuthConfig>()
            .with_extension::<crate::health_check::HealthCheckConfig>();
        c
    }

    /// Adds (or replaces) the receiver type `C`.
    pub fn with_receiver<C: ReceiverConfig>(&mut self) -> &mut Components {
        self.receivers.insert(C::TYPE, decode_receiver::<C>);
        self
    }

    /// Adds (or replaces) the processor type `C`.
    pub fn with_processor<C: ProcessorConfig>(&mut self) -> &mut Components {
        self.processors.insert(C::TYPE, decode_processor::<C>);
        self
    }

    /// Adds (or replaces) the exporter type `C`.
    pub fn with_exporter<C: ExporterConfig>(&mut self) -> &mut Components {
        self.exporters.insert(C::TYPE, decode_exporter::<C>);
        self
    }

    /// Adds (or replaces) the extension type `C`.
    pub fn with_extension<C: ExtensionConfig>(&mut self) -> &mut Components {
        self.extensions.insert(C::TYPE, decode_extension::<C>);
        self
    }

    /// Whether a type of this kind exists.
    pub fn has(&self, kind: ComponentKind, type_name: &str) -> bool {
        match kind {
            ComponentKind::Receiver => self.receivers.contains_key(type_name),
            ComponentKind::Processor => self.processors.contains_key(type_name),
            ComponentKind::Exporter => self.exporters.contains_key(type_name),
            ComponentKind::Extension => self.extensions.contains_key(type_name),
        }
    }

    /// The type names of one kind, sorted.
    pub fn types(&self, kind: ComponentKind) -> Vec<&'static str> {
        match kind {
            ComponentKind::Receiver => self.receivers.keys().copied().collect(),
            ComponentKind::Processor => self.processors.keys().copied().collect(),
            ComponentKind::Exporter => self.exporters.keys().copied().collect(),
            ComponentKind::Extension => self.extensions.keys().copied().collect(),
        }
    }

    pub(crate) fn receiver(&self, type_name: &str) -> Option<Decoder<BuildFn<Box<dyn Receiver>>>> {
        self.receivers.get(type_name).copied()
    }

    pub(crate) fn processor(&self, type_name: &str) -> Option<Decoder<BuildFn<Box<dyn Processor>>>> {
        self.processors.get(type_name).copied()
    }

    pub(crate) fn exporter(&self, type_name: &str) -> Option<Decoder<PreparedExporter>> {
        self.exporters.get(type_name).copied()
    }

    pub(crate) fn extension(&self, type_name: &str) -> Option<Decoder<ExtensionValue>> {
        self.extensions.get(type_name).copied()
    }

    /// The message for a type that does not exist, listing the ones that do.
    pub(crate) fn unknown_type_message(&self, kind: ComponentKind, type_name: &str) -> String {
        let known = self.types(kind);
        if known.is_empty() {
            format!("unknown {kind} type {type_name:?}; this build has no {kind} types")
        } else {
            format!("unknown {kind} type {type_name:?}; supported: {}", known.join(", "))
        }
    }
}

/// Deserializes a section (null means all defaults) and validates it; errors carry paths
/// relative to the section.
pub(crate) fn decode<C: DeserializeOwned + Validate>(value: Value) -> Result<C, Vec<FieldError>> {
    let value = if value.is_null() {
        Value::Mapping(Mapping::new())
    } else {
        value
    };
    let config: C = serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let path = if path == "." { String::new() } else { path };
        vec![FieldError::new(path, e.into_inner().to_string())]
    })?;
    let errors = config.validate();
    if errors.is_empty() { Ok(config) } else { Err(errors) }
}

fn decode_receiver<C: ReceiverConfig>(value: Value) -> Result<BuildFn<Box<dyn Receiver>>, Vec<FieldError>> {
    let config = decode::<C>(value)?;
    Ok(Arc::new(move |cx| config.build(cx)))
}

fn decode_processor<C: ProcessorConfig>(value: Value) -> Result<BuildFn<Box<dyn Processor>>, Vec<FieldError>> {
    let config = decode::<C>(value)?;
    Ok(Arc::new(move |cx| config.build(cx)))
}

fn decode_exporter<C: ExporterConfig>(value: Value) -> Result<PreparedExporter, Vec<FieldError>> {
    let config = decode::<C>(value)?;
    let extension_refs = config.extension_refs();
    Ok(PreparedExporter {
        build: Arc::new(move |cx| config.build(cx)),
        extension_refs,
    })
}

fn decode_extension<C: ExtensionConfig>(value: Value) -> Result<ExtensionValue, Vec<FieldError>> {
    Ok(Arc::new(decode::<C>(value)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_set_has_every_component_type_sorted() {
        let c = Components::builtin();
        assert_eq!(
            c.types(ComponentKind::Receiver),
            vec!["gpu", "node", "otlp", "prometheus", "slurm"]
        );
        assert_eq!(c.types(ComponentKind::Processor), vec!["batch", "slurmattributes"]);
        assert_eq!(
            c.types(ComponentKind::Exporter),
            vec!["debug", "otlp", "prometheus", "prometheusremotewrite"]
        );
        assert_eq!(c.types(ComponentKind::Extension), vec!["health_check", "sigv4auth"]);
        assert!(!c.has(ComponentKind::Exporter, "gpu"));
        assert!(Components::new().types(ComponentKind::Receiver).is_empty());
    }

    #[test]
    fn unknown_types_list_what_exists() {
        let c = Components::builtin();
        assert_eq!(
            c.unknown_type_message(ComponentKind::Extension, "oauth2client"),
            "unknown extension type \"oauth2client\"; supported: health_check, sigv4auth"
        );
        assert_eq!(
            Components::new().unknown_type_message(ComponentKind::Processor, "batch"),
            "unknown processor type \"batch\"; this build has no processor types"
        );
    }
}
