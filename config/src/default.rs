//! The embedded default config, used when nodetel runs without a config file: node metrics on a
//! local Prometheus endpoint, plus remote write when `AMP_REMOTE_WRITE_URL` is set and this build
//! has the `prometheusremotewrite` exporter.

use serde_yaml_ng::{Mapping, Value};

use crate::expand::Env;
use crate::registry::Components;
use nodetel_core::ComponentKind;

/// The embedded default config, as YAML.
pub const DEFAULT_YAML: &str = include_str!("../default.yaml");

/// The variable that turns on remote write in the default config.
pub const REMOTE_WRITE_URL_VAR: &str = "AMP_REMOTE_WRITE_URL";

const REMOTE_WRITE: &str = "prometheusremotewrite";
const GPU: &str = "gpu";

/// The NVIDIA driver's control device: present on every node with a loaded NVIDIA driver.
pub const NVIDIA_CONTROL_DEVICE: &str = "/dev/nvidiactl";

/// Adds the native sources this node has beyond `node`: the `gpu` receiver where the NVIDIA
/// driver is loaded. `exists` answers whether a path exists (injected so tests need no GPU).
pub(crate) fn apply_node_sources(doc: &mut Value, exists: &dyn Fn(&str) -> bool, components: &Components) {
    if !exists(NVIDIA_CONTROL_DEVICE) || !components.has(ComponentKind::Receiver, GPU) {
        return;
    }
    let Value::Mapping(root) = doc else {
        return;
    };
    child(root, "receivers").insert(GPU.into(), Value::Null);
    for (_, pipeline) in child(child(root, "service"), "pipelines").iter_mut() {
        if let Value::Mapping(p) = pipeline {
            list(p, "receivers").push(GPU.into());
        }
    }
}
const SIGV4: &str = "sigv4auth";

/// Adds remote write to the default document when the environment asks for it; returns the
/// warnings for what could not be honoured.
pub(crate) fn apply_environment(doc: &mut Value, env: Env<'_>, components: &Components) -> Vec<String> {
    let Some(url) = env(REMOTE_WRITE_URL_VAR).filter(|u| !u.trim().is_empty()) else {
        return Vec::new();
    };
    if !components.has(ComponentKind::Exporter, REMOTE_WRITE) {
        return vec![format!(
            "{REMOTE_WRITE_URL_VAR} is set but this build has no {REMOTE_WRITE} exporter; remote write is off"
        )];
    }
    let mut warnings = Vec::new();
    let region = amp_region(&url);
    let sign = region.is_some() && components.has(ComponentKind::Extension, SIGV4);
    if region.is_some() && !sign {
        warnings.push(format!(
            "{REMOTE_WRITE_URL_VAR} names an AMP endpoint but this build has no {SIGV4} extension; requests \
             are sent unsigned"
        ));
    }
    add_remote_write(doc, url.trim(), region.filter(|_| sign));
    warnings
}

/// Adds a `prometheusremotewrite` exporter for `url` to every pipeline, signed with a
/// `sigv4auth` extension for `region` when one is given.
pub(crate) fn add_remote_write(doc: &mut Value, url: &str, sigv4_region: Option<&str>) {
    if !doc.is_mapping() {
        *doc = Value::Mapping(Mapping::new());
    }
    let Value::Mapping(root) = doc else {
        return;
    };
    let mut exporter = Mapping::new();
    exporter.insert("endpoint".into(), url.into());
    if let Some(region) = sigv4_region {
        let mut auth = Mapping::new();
        auth.insert("authenticator".into(), SIGV4.into());
        exporter.insert("auth".into(), auth.into());
        let mut ext = Mapping::new();
        ext.insert("region".into(), region.into());
        ext.insert("service".into(), "aps".into());
        child(root, "extensions").insert(SIGV4.into(), ext.into());
        list(child(root, "service"), "extensions").push(SIGV4.into());
    }
    child(root, "exporters").insert(REMOTE_WRITE.into(), exporter.into());
    for (_, pipeline) in child(child(root, "service"), "pipelines").iter_mut() {
        if let Value::Mapping(p) = pipeline {
            list(p, "exporters").push(REMOTE_WRITE.into());
        }
    }
}

/// The region of an AMP endpoint (`https://aps-workspaces.<region>.amazonaws.com/...`).
pub(crate) fn amp_region(url: &str) -> Option<&str> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next()?;
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = host.split_once(':').map_or(host, |(h, _)| h);
    let rest = host.strip_prefix("aps-workspaces.")?;
    let (region, domain) = rest.split_once('.')?;
    let valid = !region.is_empty()
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    (valid && (domain == "amazonaws.com" || domain == "amazonaws.com.cn")).then_some(region)
}

/// The mapping under `key`, created (or replacing a value of another kind) when needed.
fn child<'a>(map: &'a mut Mapping, key: &str) -> &'a mut Mapping {
    let entry = map.entry(key.into()).or_insert(Value::Null);
    if !entry.is_mapping() {
        *entry = Value::Mapping(Mapping::new());
    }
    match entry {
        Value::Mapping(m) => m,
        _ => unreachable!("BUG: the entry was just made a mapping"),
    }
}

/// The list under `key`, created (or replacing a value of another kind) when needed.
fn list<'a>(map: &'a mut Mapping, key: &str) -> &'a mut Vec<Value> {
    let entry = map.entry(key.into()).or_insert(Value::Null);
    if !entry.is_sequence() {
        *entry = Value::Sequence(Vec::new());
    }
    match entry {
        Value::Sequence(s) => s,
        _ => unreachable!("BUG: the entry was just made a list"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Components, default_config_for};

    fn default_config_with(env: Env<'_>, components: &Components) -> Result<crate::Loaded, crate::ConfigErrors> {
        default_config_for(env, components, &|_| false)
    }

    const AMP: &str = "https://aps-workspaces.us-east-1.amazonaws.com/workspaces/ws-1/api/v1/remote_write";

    fn exporters(loaded: &crate::Loaded) -> Vec<String> {
        loaded.config.pipelines()[0]
            .exporters
            .iter()
            .map(|e| e.to_string())
            .collect()
    }

    #[test]
    fn the_default_is_node_metrics_on_a_local_endpoint() {
        let loaded = default_config_with(&|_| None, &Components::builtin()).unwrap();
        assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
        let p = &loaded.config.pipelines()[0];
        assert_eq!(p.name, "metrics");
        assert_eq!(p.receivers.iter().map(|r| r.as_str()).collect::<Vec<_>>(), vec!["node"]);
        assert_eq!(exporters(&loaded), vec!["prometheus"]);
        assert!(loaded.config.enabled_extensions().is_empty());
    }

    #[test]
    fn a_node_with_the_nvidia_driver_also_gets_the_gpu_receiver() {
        let loaded = default_config_for(&|_| None, &Components::builtin(), &|p| p == NVIDIA_CONTROL_DEVICE).unwrap();
        let p = &loaded.config.pipelines()[0];
        assert_eq!(
            p.receivers.iter().map(|r| r.as_str()).collect::<Vec<_>>(),
            vec!["node", "gpu"]
        );
    }

    #[test]
    fn an_amp_url_adds_signed_remote_write() {
        let env = |name: &str| (name == REMOTE_WRITE_URL_VAR).then(|| AMP.to_owned());
        let loaded = default_config_with(&env, &Components::builtin()).unwrap();
        assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
        assert_eq!(exporters(&loaded), vec!["prometheus", "prometheusremotewrite"]);
        let ext: Vec<_> = loaded.config.enabled_extensions().iter().map(|e| e.as_str()).collect();
        assert_eq!(ext, vec!["sigv4auth"]);
        loaded.config.build(std::sync::Arc::new(Default::default())).unwrap();
    }

    #[test]
    fn another_url_adds_unsigned_remote_write() {
        let env = |name: &str| (name == REMOTE_WRITE_URL_VAR).then(|| "http://127.0.0.1:9090/api/v1/write".to_owned());
        let loaded = default_config_with(&env, &Components::builtin()).unwrap();
        assert_eq!(exporters(&loaded), vec!["prometheus", "prometheusremotewrite"]);
        assert!(loaded.config.enabled_extensions().is_empty());
    }

    #[test]
    fn without_the_exporter_type_the_url_only_warns() {
        let mut components = Components::new();
        components
            .with_receiver::<nodetel_receivers::node::NodeConfig>()
            .with_exporter::<nodetel_exporters::prometheus::PrometheusConfig>();
        let env = |name: &str| (name == REMOTE_WRITE_URL_VAR).then(|| AMP.to_owned());
        let loaded = default_config_with(&env, &components).unwrap();
        assert_eq!(exporters(&loaded), vec!["prometheus"]);
        assert_eq!(
            loaded.warnings,
            vec![
                "AMP_REMOTE_WRITE_URL is set but this build has no prometheusremotewrite exporter; remote write is off"
            ]
        );
    }

    #[test]
    fn remote_write_is_added_to_every_pipeline_with_its_extension() {
        let mut doc: Value = serde_yaml_ng::from_str(DEFAULT_YAML).unwrap();
        add_remote_write(&mut doc, AMP, Some("us-east-1"));
        let expected: Value = serde_yaml_ng::from_str(&format!(
            "receivers: {{node: }}\nexporters:\n  prometheus: {{endpoint: '127.0.0.1:9464'}}\n  \
             prometheusremotewrite: {{endpoint: '{AMP}', auth: {{authenticator: sigv4auth}}}}\n\
             extensions: {{sigv4auth: {{region: us-east-1, service: aps}}}}\n\
             service:\n  pipelines: {{metrics: {{receivers: [node], exporters: [prometheus, prometheusremotewrite]}}}}\n  \
             extensions: [sigv4auth]\n"
        ))
        .unwrap();
        assert_eq!(doc, expected);
    }

    #[test]
    fn amp_regions_come_from_the_endpoint_host() {
        assert_eq!(amp_region(AMP), Some("us-east-1"));
        assert_eq!(
            amp_region("https://aps-workspaces.eu-central-1.amazonaws.com:443/workspaces/x"),
            Some("eu-central-1")
        );
        assert_eq!(
            amp_region("https://aps-workspaces.cn-north-1.amazonaws.com.cn/x"),
            Some("cn-north-1")
        );
        for other in [
            "https://prometheus.example/api/v1/write",
            "https://aps-workspaces.amazonaws.com/x",
            "https://aps-workspaces.us-east-1.evil.com/x",
            "https://example.com/aps-workspaces.us-east-1.amazonaws.com",
            "",
        ] {
            assert_eq!(amp_region(other), None, "{other}");
        }
    }
}
