//! Loads the fixtures in testdata/ and examples/ and checks the exact errors, paths and results.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use nodetel_core::ComponentKind;
use nodetel_core::telemetry::Registry;

use crate::test_components::components;
use crate::{Components, ConfigErrors, Loaded, load_file_with, load_str_with};

fn no_env(_: &str) -> Option<String> {
    None
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata").join(name)
}

fn load(name: &str) -> Result<Loaded, ConfigErrors> {
    load_file_with(&fixture(name), &no_env, &Components::builtin())
}

#[track_caller]
fn errors_of(name: &str) -> Vec<String> {
    match load(name) {
        Ok(_) => panic!("{name} should not load"),
        Err(e) => e.messages(),
    }
}

/// Errors other than "unknown <kind> type" for a type this build does not have yet (types that
/// are being written). Once every type exists, this is every error.
fn errors_besides_missing_types(errors: &ConfigErrors, components: &Components) -> Vec<String> {
    let missing = |e: &crate::ConfigError| {
        [
            ComponentKind::Receiver,
            ComponentKind::Processor,
            ComponentKind::Exporter,
            ComponentKind::Extension,
        ]
        .into_iter()
        .any(|kind| {
            let prefix = format!("unknown {kind} type ");
            e.message.starts_with(&prefix)
                && e.path.starts_with(&format!("{kind}s."))
                && e.message[prefix.len()..]
                    .split('"')
                    .nth(1)
                    .is_some_and(|t| !components.has(kind, t))
        })
    };
    errors
        .0
        .iter()
        .filter(|e| !missing(e))
        .map(|e| format!("{}: {}", e.path, e.message))
        .collect()
}

#[test]
fn a_full_config_loads_and_warns_only_about_its_unused_exporter() {
    let loaded = load("valid_full.yaml").unwrap();
    assert_eq!(
        loaded.warnings,
        vec!["exporters.debug/unused: defined but used by no pipeline; it is not started"]
    );
    let names: Vec<_> = loaded.config.pipelines().iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, vec!["metrics", "metrics/fast"]);
    let ext: Vec<_> = loaded.config.enabled_extensions().iter().map(|e| e.as_str()).collect();
    assert_eq!(ext, vec!["health_check"]);
}

#[test]
fn a_typo_in_a_component_key_names_the_key_and_its_line() {
    let errors = load("typo_key.yaml").unwrap_err();
    assert_eq!(errors.0.len(), 1);
    let e = &errors.0[0];
    assert_eq!(e.path, "exporters.prometheus.endpont");
    assert!(
        e.message
            .starts_with("unknown field `endpont`, expected one of `endpoint`"),
        "{}",
        e.message
    );
    assert_eq!(e.line, Some(5));
}

#[test]
fn a_value_of_the_wrong_type_names_the_key() {
    assert_eq!(
        errors_of("wrong_type.yaml"),
        vec!["exporters.prometheus.endpoint: invalid type: integer `5`, expected a string"]
    );
}

#[test]
fn an_unknown_type_lists_the_supported_ones_sorted() {
    let supported = Components::builtin().types(ComponentKind::Receiver);
    assert!(supported.contains(&"node"));
    assert!(supported.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(
        errors_of("unknown_type.yaml"),
        vec![format!(
            "receivers.nodee: unknown receiver type \"nodee\"; supported: {}",
            supported.join(", ")
        )]
    );
}

#[test]
fn three_different_mistakes_are_all_reported_with_paths_and_lines() {
    let errors = load("three_mistakes.yaml").unwrap_err();
    assert_eq!(
        errors.messages(),
        vec![
            "extensions.health_check.endpont: unknown field `endpont`, expected `endpoint` or `path`",
            "service.pipelines.metrics.receivers[1]: receiver \"nodee\" is not defined in receivers; defined: node",
            "service.pipelines.metrics/second.exporters: missing; list at least one exporter defined under exporters",
        ]
    );
    let lines: Vec<_> = errors.0.iter().map(|e| e.line).collect();
    // The missing list has no line of its own: the pipeline's line is the closest.
    assert_eq!(lines, vec![Some(9), Some(14), Some(16)]);
}

#[test]
fn components_missing_from_their_section_are_reported() {
    assert_eq!(
        errors_of("missing_pipeline_component.yaml"),
        vec![
            "service.pipelines.metrics.processors[0]: processor \"batch/big\" is not defined in processors; \
             defined: batch",
            "service.pipelines.metrics.exporters[1]: exporter \"prometheus\" is not defined in exporters; \
             defined: debug",
        ]
    );
}

#[test]
fn a_component_listed_twice_in_a_pipeline_is_rejected() {
    assert_eq!(
        errors_of("duplicate_in_pipeline.yaml"),
        vec!["service.pipelines.metrics.receivers[1]: receiver \"node\" is listed twice in this pipeline; remove one"]
    );
}

#[test]
fn a_config_without_pipelines_is_rejected() {
    assert_eq!(
        errors_of("no_pipelines.yaml"),
        vec![
            "service.pipelines: no pipelines; add one, for example metrics: {receivers: [node], exporters: \
             [prometheus]}"
        ]
    );
}

#[test]
fn traces_pipelines_and_connectors_are_refused() {
    assert_eq!(
        errors_of("traces_pipeline.yaml"),
        vec![
            "connectors: connectors are not supported; nodetel runs metrics pipelines only, so list the receivers \
             and exporters in the same pipeline instead",
            "service.pipelines.traces: nodetel handles metrics only; remove this traces pipeline or turn it into a \
             metrics pipeline (metrics or metrics/<name>)",
        ]
    );
}

#[test]
fn an_enabled_extension_must_be_defined() {
    assert_eq!(
        errors_of("extension_not_defined.yaml"),
        vec![
            "service.extensions[0]: extension \"health_check\" is not defined in extensions; no extensions are defined"
        ]
    );
}

#[test]
fn the_remote_write_exporter_needs_its_endpoint_and_an_enabled_authenticator() {
    // Validation stops at the section for an invalid exporter, so the missing endpoint is the one
    // error here; with the endpoint set, the extension check follows.
    assert_eq!(
        errors_of("extension_not_enabled.yaml"),
        vec!["exporters.prometheusremotewrite.endpoint: missing; set your AMP remote write URL"]
    );
    let errors = load("extension_not_defined_for_exporter.yaml").unwrap_err();
    assert_eq!(
        errors.messages(),
        vec![
            "exporters.prometheusremotewrite.auth.authenticator: extension \"sigv4auth\" is not defined; add it \
             under extensions and list it in service.extensions"
        ]
    );
    assert_eq!(errors.0[0].line, Some(7));
    let text = std::fs::read_to_string(fixture("extension_not_enabled.yaml"))
        .unwrap()
        .replace(
            "    auth:",
            "    endpoint: https://prometheus.example/api/v1/write\n    auth:",
        );
    let errors = load_str_with(&text, "x.yaml", &no_env, &Components::builtin()).unwrap_err();
    assert_eq!(
        errors.messages(),
        vec![
            "exporters.prometheusremotewrite.auth.authenticator: extension \"sigv4auth\" is not enabled; add it \
             to service.extensions"
        ]
    );
}

#[test]
fn env_references_expand_and_unset_ones_warn() {
    let env = |name: &str| match name {
        "INTERVAL" => Some("30s".to_owned()),
        "LISTEN_PORT" => Some("19100".to_owned()),
        "VERBOSITY" => Some("normal".to_owned()),
        "QUEUE" => Some("32".to_owned()),
        _ => None,
    };
    let text = std::fs::read_to_string(fixture("env_expansion.yaml")).unwrap();
    let expanded = crate::expand::expand(serde_yaml_ng::from_str(&text).unwrap(), &env).unwrap();
    let expected: serde_yaml_ng::Value = serde_yaml_ng::from_str(
        "receivers: {node: {collection_interval: 30s, instance: fallback-node}}\n\
         exporters:\n  prometheus: {endpoint: '127.0.0.1:19100', const_labels: {price: $5, cluster: ''}}\n  \
         debug: {verbosity: normal}\n\
         service: {queue_capacity: 32, pipelines: {metrics: {receivers: [node], exporters: [prometheus, debug]}}}\n",
    )
    .unwrap();
    assert_eq!(expanded.value, expected);

    let loaded = load_file_with(&fixture("env_expansion.yaml"), &env, &Components::builtin()).unwrap();
    assert_eq!(
        loaded.warnings,
        vec![
            "exporters.prometheus.const_labels.cluster: environment variable CLUSTER is not set; it expands to an \
              empty string"
        ]
    );
    assert_eq!(loaded.config.queue_capacity, 32);
}

#[test]
fn a_reference_read_as_a_number_stays_text_where_a_string_is_wanted() {
    let yaml = "receivers:\n  node:\n    instance: ${env:NODE}\n    collection_interval: ${env:SECS}\n\
                exporters:\n  prometheus:\n    const_labels: {rack: '${env:RACK}', spare: '${env:FLAG}'}\n\
                service: {pipelines: {metrics: {receivers: [node], exporters: [prometheus]}}}\n";
    let env = |name: &str| match name {
        "NODE" => Some("0123".to_owned()),
        "SECS" => Some("30".to_owned()),
        "RACK" => Some("7".to_owned()),
        "FLAG" => Some("true".to_owned()),
        _ => None,
    };
    let loaded = load_str_with(yaml, "x.yaml", &env, &Components::builtin()).unwrap();
    assert!(loaded.warnings.is_empty());
    // A literal number is still an error: only expanded values fall back to text.
    let literal = yaml.replace("'${env:RACK}'", "7");
    let errors = load_str_with(&literal, "x.yaml", &env, &Components::builtin()).unwrap_err();
    assert_eq!(
        errors.messages(),
        vec!["exporters.prometheus.const_labels.rack: invalid type: integer `7`, expected a string"]
    );
}

#[test]
fn env_syntax_errors_are_all_reported_before_anything_else() {
    let errors = load("env_bad_syntax.yaml").unwrap_err();
    let paths: Vec<_> = errors.0.iter().map(|e| (e.path.as_str(), e.line)).collect();
    assert_eq!(
        paths,
        vec![
            ("receivers.node.instance", Some(3)),
            ("exporters.prometheus.endpoint", Some(6))
        ]
    );
    assert_eq!(
        errors.0[0].message,
        "${env:}: the variable name is empty; write ${env:NAME}"
    );
    assert!(
        errors.0[1].message.starts_with("unclosed \"${\""),
        "{}",
        errors.0[1].message
    );
}

#[test]
fn a_file_that_is_not_yaml_or_missing_is_one_error_naming_it() {
    let errors = load("not_yaml.yaml").unwrap_err();
    assert_eq!(errors.0.len(), 1);
    assert!(errors.0[0].path.ends_with("not_yaml.yaml"), "{}", errors.0[0].path);
    assert!(
        errors.0[0].message.starts_with("not valid YAML: "),
        "{}",
        errors.0[0].message
    );
    assert!(errors.0[0].message.contains("line "), "{}", errors.0[0].message);

    let errors = load("does_not_exist.yaml").unwrap_err();
    assert_eq!(errors.0.len(), 1);
    assert!(errors.0[0].path.ends_with("does_not_exist.yaml"));
    assert!(errors.0[0].message.starts_with("cannot read the config file: "));
}

#[test]
fn a_key_written_twice_is_a_yaml_error_with_its_line() {
    let yaml = "receivers:\n  node:\nexporters:\n  debug:\n  debug:\n";
    let errors = load_str_with(yaml, "dup.yaml", &no_env, &Components::builtin()).unwrap_err();
    assert_eq!(errors.0.len(), 1);
    assert_eq!(errors.0[0].path, "dup.yaml");
    assert!(
        errors.0[0].message.contains("duplicate entry"),
        "{}",
        errors.0[0].message
    );
    assert!(errors.0[0].message.contains("line 4"), "{}", errors.0[0].message);
}

#[test]
fn an_empty_document_only_lacks_pipelines() {
    let errors = load_str_with("", "empty.yaml", &no_env, &Components::builtin()).unwrap_err();
    assert_eq!(errors.0.len(), 1);
    assert_eq!(errors.0[0].path, "service.pipelines");
}

#[test]
fn extension_references_must_exist_be_enabled_and_have_the_right_type() {
    let yaml = "\
receivers: {node: }
exporters:
  refsink/a: {endpoint: x, auth: {authenticator: refauth}}
  refsink/b: {endpoint: x, auth: {authenticator: refauth/missing}}
  refsink/c: {endpoint: x, auth: {authenticator: health_check}}
  refsink/unused: {endpoint: x, auth: {authenticator: nothing}}
extensions:
  refauth: {region: us-west-2}
  health_check:
service:
  extensions: [health_check]
  pipelines:
    metrics: {receivers: [node], exporters: [refsink/a, refsink/b, refsink/c]}
";
    let errors = load_str_with(yaml, "refs.yaml", &no_env, &components()).unwrap_err();
    assert_eq!(
        errors.messages(),
        vec![
            "exporters.refsink/a.auth.authenticator: extension \"refauth\" is not enabled; add it to service.extensions",
            "exporters.refsink/b.auth.authenticator: extension \"refauth/missing\" is not defined; add it under \
             extensions and list it in service.extensions",
            "exporters.refsink/c.auth.authenticator: extension \"health_check\" is a health_check extension; this \
             needs a refauth extension",
        ]
    );
}

#[test]
fn unused_components_are_accepted_with_a_warning_each() {
    let yaml = "receivers: {node: , node/spare: }\nprocessors: {batch: }\nexporters: {debug: , prometheus: }\n\
                extensions: {health_check: }\n\
                service: {pipelines: {metrics: {receivers: [node], exporters: [debug]}}}\n";
    let loaded = load_str_with(yaml, "x.yaml", &no_env, &Components::builtin()).unwrap();
    assert_eq!(
        loaded.warnings,
        vec![
            "receivers.node/spare: defined but used by no pipeline; it is not started",
            "processors.batch: defined but used by no pipeline; it is not started",
            "exporters.prometheus: defined but used by no pipeline; it is not started",
            "extensions.health_check: defined but not listed in service.extensions; it is not started",
        ]
    );
}

#[test]
fn only_one_health_check_may_be_enabled() {
    let yaml = "receivers: {node: }\nexporters: {debug: }\nextensions: {health_check: , health_check/2: }\n\
                service: {extensions: [health_check, health_check/2, health_check], pipelines: {metrics: \
                {receivers: [node], exporters: [debug]}}}\n";
    let errors = load_str_with(yaml, "x.yaml", &no_env, &Components::builtin()).unwrap_err();
    assert_eq!(
        errors.messages(),
        vec![
            "service.extensions[2]: extension \"health_check\" is listed twice in service.extensions; remove one",
            "service.extensions: 2 health_check extensions are enabled; nodetel serves one health endpoint, so \
             enable only one",
        ]
    );
}

#[test]
fn the_hyperpod_collector_config_loads_and_builds_unchanged() {
    let loaded = load("hyperpod_collector.yaml").unwrap();
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let ext: Vec<_> = loaded.config.enabled_extensions().iter().map(|e| e.as_str()).collect();
    assert_eq!(ext, vec!["sigv4auth"]);
    let service = loaded.config.build(Arc::new(Registry::new())).unwrap();
    let t = &service.topology;
    assert_eq!(
        format!("{t:?}"),
        "Topology { receivers: [\"prometheus\"], pipelines: [\"metrics\"], exporters: [\"prometheusremotewrite\"] }"
    );
    let processors: Vec<_> = t.pipelines[0].processors.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(processors, vec!["batch"]);
}

/// The site values the example configs expect from the environment.
fn example_env(name: &str) -> Option<String> {
    match name {
        "AMP_REMOTE_WRITE_URL" => {
            Some("https://aps-workspaces.us-west-2.amazonaws.com/workspaces/ws-example/api/v1/remote_write".to_owned())
        }
        "AWS_REGION" => Some("us-west-2".to_owned()),
        "HOSTNAME" => Some("ip-10-1-2-3".to_owned()),
        _ => None,
    }
}

/// Loads every YAML file in `dir`; returns how many there were. Types that are still being
/// written are tolerated; everything else must load without warnings and build.
fn check_configs_in(dir: &Path) -> usize {
    let components = Components::builtin();
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "yaml") {
            continue;
        }
        seen += 1;
        match load_file_with(&path, &example_env, &components) {
            Ok(loaded) => {
                assert!(loaded.warnings.is_empty(), "{}: {:?}", path.display(), loaded.warnings);
                loaded.config.build(Arc::new(Registry::new())).unwrap();
            }
            Err(errors) => {
                // Shown with --nocapture: which types a config still waits for.
                eprintln!("{}: waits for: {errors}", path.display());
                assert_eq!(
                    errors_besides_missing_types(&errors, &components),
                    Vec::<String>::new(),
                    "{}",
                    path.display()
                )
            }
        }
    }
    seen
}

#[test]
fn every_example_loads_and_builds() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    assert!(check_configs_in(&dir) >= 4, "examples are missing");
    // These only use types that exist, so they must load fully.
    for name in [
        "node-local.yaml",
        "node-amp.yaml",
        "hyperpod-otel-collector.yaml",
        "otlp-training.yaml",
    ] {
        load_file_with(&dir.join(name), &example_env, &Components::builtin()).unwrap();
    }
}

#[test]
fn the_deployment_configs_load() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/configs");
    if dir.is_dir() {
        check_configs_in(&dir);
    }
}
