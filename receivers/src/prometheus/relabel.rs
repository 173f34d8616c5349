//! Prometheus `relabel_config`: the config block, its validation and its application.
//!
//! Semantics follow Prometheus' `model/relabel`: regexes are fully anchored (`^(?s:re)$`),
//! `$1`, `${1}` and `$name` expand capture groups, an empty result deletes the target label, and
//! `hashmod` hashes the joined source values with MD5. Relabeling runs on a cache miss only (a
//! new target or a new series), so it works on an owned, sorted map.

use std::collections::BTreeMap;
use std::fmt;

use nodetel_core::config::FieldError;
use nodetel_core::labels::is_valid_label_name;
use regex::Regex;
use serde::{Deserialize, Deserializer};

/// A label set being relabeled: name to value, sorted by name.
pub type LabelMap = BTreeMap<String, String>;

/// A relabel action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Action {
    /// Set `target_label` to the expanded `replacement` when `regex` matches.
    #[default]
    Replace,
    /// Keep the set only when `regex` matches the joined source values.
    Keep,
    /// Drop the set when `regex` matches the joined source values.
    Drop,
    /// Keep the set only when the joined source values equal the value of `target_label`.
    KeepEqual,
    /// Drop the set when the joined source values equal the value of `target_label`.
    DropEqual,
    /// Set `target_label` to the MD5 of the joined source values modulo `modulus`.
    HashMod,
    /// Copy every label whose name matches `regex` to the name `replacement` expands to.
    LabelMap,
    /// Remove every label whose name matches `regex`.
    LabelDrop,
    /// Remove every label whose name does not match `regex`.
    LabelKeep,
    /// Set `target_label` to the lower-cased joined source values.
    Lowercase,
    /// Set `target_label` to the upper-cased joined source values.
    Uppercase,
}

impl Action {
    const ALL: [(&'static str, Action); 11] = [
        ("replace", Action::Replace),
        ("keep", Action::Keep),
        ("drop", Action::Drop),
        ("keepequal", Action::KeepEqual),
        ("dropequal", Action::DropEqual),
        ("hashmod", Action::HashMod),
        ("labelmap", Action::LabelMap),
        ("labeldrop", Action::LabelDrop),
        ("labelkeep", Action::LabelKeep),
        ("lowercase", Action::Lowercase),
        ("uppercase", Action::Uppercase),
    ];

    /// The name used in configs.
    pub fn as_str(self) -> &'static str {
        Action::ALL
            .iter()
            .find(|(_, a)| *a == self)
            .map_or("replace", |(n, _)| n)
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Action {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        // Prometheus accepts actions in any case.
        let lower = s.to_ascii_lowercase();
        Action::ALL
            .iter()
            .find(|(n, _)| *n == lower)
            .map(|(_, a)| *a)
            .ok_or_else(|| {
                let names: Vec<_> = Action::ALL.iter().map(|(n, _)| *n).collect();
                serde::de::Error::custom(format!("unknown relabel action {s:?}: use one of {}", names.join(", ")))
            })
    }
}

const DEFAULT_SEPARATOR: &str = ";";
const DEFAULT_REGEX: &str = "(.*)";
const DEFAULT_REPLACEMENT: &str = "$1";

/// One `relabel_configs` / `metric_relabel_configs` entry, with Prometheus' defaults.
#[derive(Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RelabelConfig {
    /// Labels whose values are joined with `separator` and matched against `regex`.
    pub source_labels: Vec<String>,
    /// Joins the source values; default `;`.
    pub separator: String,
    /// Matched against the whole joined value (anchored); default `(.*)`.
    pub regex: String,
    /// For `hashmod`: the modulus.
    pub modulus: u64,
    /// The label to write (`replace`, `hashmod`, `lowercase`, `uppercase`) or compare
    /// (`keepequal`, `dropequal`).
    pub target_label: String,
    /// What to write, with `$1`/`${name}` references; default `$1`.
    pub replacement: String,
    /// What to do; default `replace`.
    pub action: Action,
}

impl Default for RelabelConfig {
    fn default() -> Self {
        RelabelConfig {
            source_labels: Vec::new(),
            separator: DEFAULT_SEPARATOR.into(),
            regex: DEFAULT_REGEX.into(),
            modulus: 0,
            target_label: String::new(),
            replacement: DEFAULT_REPLACEMENT.into(),
            action: Action::Replace,
        }
    }
}

/// Whether a `replace` target is a label name, possibly with `$1`/`${name}` references.
fn is_valid_replace_target(t: &str) -> bool {
    // Prometheus: ^(?:(?:[a-zA-Z_]|\$(?:\{\w+\}|\w+))+\w*)+$
    let b = t.as_bytes();
    if b.is_empty() {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'$' {
            i += 1;
            if b.get(i) == Some(&b'{') {
                let start = i + 1;
                let Some(end) = b[start..].iter().position(|&c| c == b'}') else {
                    return false;
                };
                let inner = &b[start..start + end];
                if inner.is_empty() || !inner.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_') {
                    return false;
                }
                i = start + end + 1;
            } else {
                let start = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                    i += 1;
                }
                if i == start {
                    return false;
                }
            }
        } else if c.is_ascii_alphanumeric() || c == b'_' {
            // A digit may not start the name.
            if i == 0 && c.is_ascii_digit() {
                return false;
            }
            i += 1;
        } else {
            return false;
        }
    }
    true
}

fn anchored(regex: &str) -> Result<Regex, regex::Error> {
    Regex::new(&format!("^(?s:{regex})$"))
}

impl RelabelConfig {
    /// Every problem with this entry, with paths under `path`.
    pub fn validate(&self, path: &str) -> Vec<FieldError> {
        let mut errs = Vec::new();
        let mut err = |field: &str, msg: String| errs.push(FieldError::new(format!("{path}.{field}"), msg));
        let a = self.action;
        if let Err(e) = anchored(&self.regex) {
            err("regex", format!("invalid regular expression: {e}"));
        }
        if a == Action::HashMod && self.modulus == 0 {
            err("modulus", "the hashmod action needs a modulus above 0".into());
        }
        let needs_target = matches!(
            a,
            Action::Replace
                | Action::HashMod
                | Action::Lowercase
                | Action::Uppercase
                | Action::KeepEqual
                | Action::DropEqual
        );
        if needs_target && self.target_label.is_empty() {
            err("target_label", format!("the {a} action needs a target_label"));
        } else if a == Action::Replace && !is_valid_replace_target(&self.target_label) {
            err(
                "target_label",
                format!(
                    "{:?} is not a valid label name (letters, digits and _, with optional $1 or ${{name}} references)",
                    self.target_label
                ),
            );
        } else if needs_target && a != Action::Replace && !is_valid_label_name(&self.target_label) {
            err(
                "target_label",
                format!(
                    "{:?} is not a valid label name: use [a-zA-Z_][a-zA-Z0-9_]*",
                    self.target_label
                ),
            );
        }
        for (i, l) in self.source_labels.iter().enumerate() {
            if !is_valid_label_name(l) {
                err(
                    &format!("source_labels[{i}]"),
                    format!("{l:?} is not a valid label name: use [a-zA-Z_][a-zA-Z0-9_]*"),
                );
            }
        }
        let d = RelabelConfig::default();
        if matches!(a, Action::KeepEqual | Action::DropEqual)
            && (self.regex != d.regex
                || self.modulus != 0
                || self.separator != d.separator
                || self.replacement != d.replacement)
        {
            err(
                "action",
                format!("the {a} action takes only source_labels and target_label; remove the other fields"),
            );
        }
        if matches!(a, Action::LabelDrop | Action::LabelKeep)
            && (!self.source_labels.is_empty()
                || !self.target_label.is_empty()
                || self.modulus != 0
                || self.separator != d.separator
                || self.replacement != d.replacement)
        {
            err(
                "action",
                format!("the {a} action takes only a regex; remove the other fields"),
            );
        }
        errs
    }
}

/// Why a relabel config could not be compiled.
#[derive(Debug, thiserror::Error)]
#[error("relabel config {index}: invalid regex {regex:?}: {source}")]
pub struct RelabelError {
    /// Which entry.
    pub index: usize,
    /// The regex as written.
    pub regex: String,
    /// The compiler's message.
    pub source: regex::Error,
}

#[derive(Debug, Clone)]
struct Rule {
    config: RelabelConfig,
    regex: Regex,
    /// `target_label` holds `$` references and must be expanded per match.
    target_has_refs: bool,
}

/// A compiled list of relabel configs.
#[derive(Debug, Clone, Default)]
pub struct Relabeler {
    rules: Vec<Rule>,
}

impl Relabeler {
    /// Compiles `configs`; call [`RelabelConfig::validate`] first for user-facing messages.
    pub fn new(configs: &[RelabelConfig]) -> Result<Relabeler, RelabelError> {
        let mut rules = Vec::with_capacity(configs.len());
        for (index, c) in configs.iter().enumerate() {
            let regex = anchored(&c.regex).map_err(|source| RelabelError {
                index,
                regex: c.regex.clone(),
                source,
            })?;
            rules.push(Rule {
                config: c.clone(),
                regex,
                target_has_refs: c.target_label.contains('$'),
            });
        }
        Ok(Relabeler { rules })
    }

    /// Whether there is nothing to apply.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Applies every rule in order; `false` when a rule dropped the set.
    pub fn apply(&self, labels: &mut LabelMap) -> bool {
        let mut joined = String::new();
        for rule in &self.rules {
            if !apply_rule(rule, labels, &mut joined) {
                return false;
            }
        }
        true
    }
}

/// Sets `name` to `value`, deleting it when the value is empty, as Prometheus' label builder does.
fn set(labels: &mut LabelMap, name: &str, value: String) {
    if value.is_empty() {
        labels.remove(name);
    } else {
        labels.insert(name.to_owned(), value);
    }
}

fn apply_rule(rule: &Rule, labels: &mut LabelMap, val: &mut String) -> bool {
    let c = &rule.config;
    val.clear();
    for (i, l) in c.source_labels.iter().enumerate() {
        if i > 0 {
            val.push_str(&c.separator);
        }
        val.push_str(labels.get(l).map_or("", String::as_str));
    }
    let val = val.as_str();
    match c.action {
        Action::Drop => return !rule.regex.is_match(val),
        Action::Keep => return rule.regex.is_match(val),
        Action::DropEqual => return labels.get(&c.target_label).map_or("", String::as_str) != val,
        Action::KeepEqual => return labels.get(&c.target_label).map_or("", String::as_str) == val,
        Action::Replace => {
            let Some(caps) = rule.regex.captures(val) else {
                return true;
            };
            let mut target = String::new();
            if rule.target_has_refs {
                caps.expand(&c.target_label, &mut target);
            } else {
                target.push_str(&c.target_label);
            }
            if !is_valid_label_name(&target) {
                return true;
            }
            let mut res = String::new();
            caps.expand(&c.replacement, &mut res);
            set(labels, &target, res);
        }
        Action::Lowercase => set(labels, &c.target_label, val.to_lowercase()),
        Action::Uppercase => set(labels, &c.target_label, val.to_uppercase()),
        Action::HashMod => {
            // Prometheus hashes with MD5 and takes the low 8 bytes, so targets land on the same shard.
            let d = <md5::Md5 as md5::Digest>::digest(val.as_bytes());
            let mut tail = [0u8; 8];
            tail.copy_from_slice(&d[8..]);
            let m = u64::from_be_bytes(tail) % c.modulus.max(1);
            set(labels, &c.target_label, m.to_string());
        }
        Action::LabelMap => {
            let matched: Vec<(String, String)> = labels
                .iter()
                .filter(|(n, _)| rule.regex.is_match(n))
                .map(|(n, v)| (rule.regex.replace(n, c.replacement.as_str()).into_owned(), v.clone()))
                .collect();
            for (n, v) in matched {
                if is_valid_label_name(&n) {
                    set(labels, &n, v);
                }
            }
        }
        Action::LabelDrop => labels.retain(|n, _| !rule.regex.is_match(n)),
        Action::LabelKeep => labels.retain(|n, _| rule.regex.is_match(n)),
    }
    true
}

/// Validates a list of relabel configs under `path` (`config.scrape_configs[0].relabel_configs`).
pub fn validate_all(configs: &[RelabelConfig], path: &str) -> Vec<FieldError> {
    configs
        .iter()
        .enumerate()
        .flat_map(|(i, c)| c.validate(&format!("{path}[{i}]")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses `a="1",b="2"` into a map (no escapes needed in these tests).
    fn labels(text: &str) -> LabelMap {
        let mut m = LabelMap::new();
        for pair in text.split(',').filter(|p| !p.is_empty()) {
            let (n, v) = pair.split_once('=').unwrap();
            m.insert(n.trim().into(), v.trim().trim_matches('"').into());
        }
        m
    }

    fn show(m: &LabelMap) -> String {
        m.iter()
            .map(|(n, v)| format!("{n}=\"{v}\""))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Applies `config_yaml` (a YAML list of relabel configs) to `input`; `expected` is the
    /// resulting set, or `None` when the set must be dropped.
    #[track_caller]
    fn check(config_yaml: &str, input: &str, expected: Option<&str>) {
        let configs: Vec<RelabelConfig> = serde_yaml_ng::from_str(config_yaml).unwrap();
        let errs = validate_all(&configs, "r");
        assert!(errs.is_empty(), "config should be valid: {errs:?}");
        let r = Relabeler::new(&configs).unwrap();
        let mut m = labels(input);
        let kept = r.apply(&mut m);
        match expected {
            None => assert!(!kept, "expected the set to be dropped, got {}", show(&m)),
            Some(e) => {
                assert!(kept, "expected the set to be kept");
                assert_eq!(show(&m), show(&labels(e)));
            }
        }
    }

    #[track_caller]
    fn invalid(config_yaml: &str, path_and_words: (&str, &str)) {
        let configs: Vec<RelabelConfig> = serde_yaml_ng::from_str(config_yaml).unwrap();
        let errs = validate_all(&configs, "r");
        assert!(
            errs.iter()
                .any(|e| e.path == path_and_words.0 && e.message.contains(path_and_words.1)),
            "expected {path_and_words:?} in {errs:?}"
        );
    }

    #[test]
    fn replace_action() {
        // Default regex (.*) and replacement $1 copy the joined source values.
        check(
            "[{source_labels: [a], target_label: d}]",
            r#"a="foo""#,
            Some(r#"a="foo",d="foo""#),
        );
        check(
            "[{source_labels: [a, b], target_label: d}]",
            r#"a="x",b="y""#,
            Some(r#"a="x",b="y",d="x;y""#),
        );
        check(
            "[{source_labels: [a, b], separator: '-', target_label: d}]",
            r#"a="x",b="y""#,
            Some(r#"a="x",b="y",d="x-y""#),
        );
        check(
            "[{source_labels: [a], regex: 'f(.*)', target_label: d, replacement: 'ch${1}-ch${1}'}]",
            r#"a="foo""#,
            Some(r#"a="foo",d="choo-choo""#),
        );
        // Regexes are anchored: a partial match does nothing.
        check(
            "[{source_labels: [a], regex: 'o', target_label: d, replacement: x}]",
            r#"a="foo""#,
            Some(r#"a="foo""#),
        );
        check(
            "[{source_labels: [a], regex: 'no-match', target_label: a, replacement: x}]",
            r#"a="foo""#,
            Some(r#"a="foo""#),
        );
        // An empty result deletes the target.
        check(
            "[{source_labels: [a], regex: 'foo', target_label: b, replacement: ''}]",
            r#"a="foo",b="bar""#,
            Some(r#"a="foo""#),
        );
        // Missing source labels read as empty.
        check(
            "[{source_labels: [z], target_label: b, replacement: set}]",
            r#"a="foo""#,
            Some(r#"a="foo",b="set""#),
        );
        // A constant replacement with no source labels: the HyperPod `instance` rule.
        check(
            "[{target_label: instance, replacement: ip-10-1-2-3}]",
            r#"instance="localhost:9100""#,
            Some(r#"instance="ip-10-1-2-3""#),
        );
        // Named groups and $name.
        check(
            "[{source_labels: [a], regex: '(?P<first>[a-z])(?P<rest>.*)', target_label: d, replacement: '$rest.$first'}]",
            r#"a="foo""#,
            Some(r#"a="foo",d="oo.f""#),
        );
        // $1x is the (missing) group "1x", so it expands to nothing, as in Go.
        check(
            "[{source_labels: [a], regex: '(.*)', target_label: d, replacement: '$1x'}]",
            r#"a="foo""#,
            Some(r#"a="foo""#),
        );
        // Target labels may use references; an invalid expanded name leaves the set unchanged.
        check(
            "[{source_labels: [a], regex: '(.*)', target_label: 'l_$1', replacement: v}]",
            r#"a="foo""#,
            Some(r#"a="foo",l_foo="v""#),
        );
        check(
            "[{source_labels: [a], regex: '(.*)', target_label: '${1}', replacement: v}]",
            r#"a="-x""#,
            Some(r#"a="-x""#),
        );
        // (?s) lets . match newlines.
        check(
            "[{source_labels: [a], regex: 'x.y', target_label: d, replacement: m}]",
            "a=\"x\ny\"",
            Some("a=\"x\ny\",d=\"m\""),
        );
        // Case-insensitive regexes.
        check(
            "[{source_labels: [a], regex: '(?i)FOO', target_label: d, replacement: hit}]",
            r#"a="foo""#,
            Some(r#"a="foo",d="hit""#),
        );
        // Action names are case-insensitive.
        check(
            "[{source_labels: [a], target_label: d, action: Replace}]",
            r#"a="foo""#,
            Some(r#"a="foo",d="foo""#),
        );
    }

    #[test]
    fn keep_and_drop_actions() {
        check(
            "[{source_labels: [a], regex: 'f.*', action: keep}]",
            r#"a="foo""#,
            Some(r#"a="foo""#),
        );
        check("[{source_labels: [a], regex: 'f', action: keep}]", r#"a="foo""#, None);
        check("[{source_labels: [a], regex: 'f.*', action: drop}]", r#"a="foo""#, None);
        check(
            "[{source_labels: [a], regex: 'f', action: drop}]",
            r#"a="foo""#,
            Some(r#"a="foo""#),
        );
        check(
            "[{source_labels: [a, b], regex: 'foo;bar', action: drop}]",
            r#"a="foo",b="bar""#,
            None,
        );
        // A missing label is the empty string: `keep` with regex '.+' drops sets without it.
        check("[{source_labels: [z], regex: '.+', action: keep}]", r#"a="foo""#, None);
        check(
            "[{source_labels: [z], regex: '', action: keep}]",
            r#"a="foo""#,
            Some(r#"a="foo""#),
        );
    }

    #[test]
    fn keepequal_and_dropequal_actions() {
        check(
            "[{source_labels: [a], target_label: b, action: keepequal}]",
            r#"a="x",b="x""#,
            Some(r#"a="x",b="x""#),
        );
        check(
            "[{source_labels: [a], target_label: b, action: keepequal}]",
            r#"a="x",b="y""#,
            None,
        );
        check(
            "[{source_labels: [a], target_label: b, action: dropequal}]",
            r#"a="x",b="x""#,
            None,
        );
        check(
            "[{source_labels: [a], target_label: b, action: dropequal}]",
            r#"a="x",b="y""#,
            Some(r#"a="x",b="y""#),
        );
        invalid(
            "[{source_labels: [a], target_label: b, regex: x, action: keepequal}]",
            ("r[0].action", "only source_labels and target_label"),
        );
    }

    #[test]
    fn hashmod_action() {
        // Values from Prometheus' documented algorithm: MD5, low 8 bytes big-endian, modulo.
        check(
            "[{source_labels: [c], target_label: d, modulus: 1000, action: hashmod}]",
            r#"a="foo",c="baz""#,
            Some(r#"a="foo",c="baz",d="976""#),
        );
        check(
            "[{source_labels: [a, c], target_label: d, modulus: 1000, action: hashmod}]",
            r#"a="bar",c="baz""#,
            Some(r#"a="bar",c="baz",d="82""#),
        );
        check(
            "[{source_labels: [a], target_label: d, modulus: 3, action: hashmod}]",
            r#"a="foo""#,
            Some(r#"a="foo",d="2""#),
        );
        invalid(
            "[{source_labels: [a], target_label: d, action: hashmod}]",
            ("r[0].modulus", "above 0"),
        );
    }

    #[test]
    fn labelmap_action() {
        check(
            "[{regex: '__meta_(.+)', action: labelmap}]",
            r#"__meta_x="1",__meta_yz="2",b="3""#,
            Some(r#"__meta_x="1",__meta_yz="2",b="3",x="1",yz="2""#),
        );
        check(
            "[{regex: 'a(.*)', replacement: 'b$1', action: labelmap}]",
            r#"a1="x",b1="old""#,
            Some(r#"a1="x",b1="x""#),
        );
        check("[{regex: 'q', action: labelmap}]", r#"a="x""#, Some(r#"a="x""#));
    }

    #[test]
    fn labeldrop_and_labelkeep_actions() {
        check(
            "[{regex: 'b.*', action: labeldrop}]",
            r#"a="1",b="2",bc="3",cb="4""#,
            Some(r#"a="1",cb="4""#),
        );
        check(
            "[{regex: 'b.*|__name__', action: labelkeep}]",
            r#"__name__="m",a="1",b="2",bc="3""#,
            Some(r#"__name__="m",b="2",bc="3""#),
        );
        invalid(
            "[{regex: 'b', source_labels: [a], action: labeldrop}]",
            ("r[0].action", "only a regex"),
        );
    }

    #[test]
    fn lowercase_and_uppercase_actions() {
        check(
            "[{source_labels: [a], target_label: a_lower, action: lowercase}]",
            r#"a="FoO""#,
            Some(r#"a="FoO",a_lower="foo""#),
        );
        check(
            "[{source_labels: [a, b], target_label: u, action: uppercase}]",
            r#"a="x",b="Yz""#,
            Some(r#"a="x",b="Yz",u="X;YZ""#),
        );
        check(
            "[{source_labels: [z], target_label: a, action: lowercase}]",
            r#"a="gone""#,
            Some(""),
        );
    }

    #[test]
    fn rules_apply_in_order() {
        check(
            "[{source_labels: [a], target_label: b}, {source_labels: [b], regex: 'x', action: drop}]",
            r#"a="x""#,
            None,
        );
        check(
            "[{source_labels: [a], target_label: b, replacement: 'y'}, {source_labels: [b], regex: 'x', action: drop}]",
            r#"a="x""#,
            Some(r#"a="x",b="y""#),
        );
    }

    #[test]
    fn invalid_configs_are_reported_with_paths() {
        invalid("[{source_labels: [a]}]", ("r[0].target_label", "needs a target_label"));
        invalid(
            "[{target_label: '1x'}]",
            ("r[0].target_label", "not a valid label name"),
        );
        invalid(
            "[{target_label: 'a-b'}]",
            ("r[0].target_label", "not a valid label name"),
        );
        invalid(
            "[{source_labels: [a], regex: '(', target_label: x}]",
            ("r[0].regex", "invalid regular expression"),
        );
        invalid(
            "[{source_labels: ['a b'], target_label: x}]",
            ("r[0].source_labels[0]", "not a valid label name"),
        );
        invalid(
            "[{target_label: x, action: lowercase}, {target_label: 'y.z', action: uppercase}]",
            ("r[1].target_label", "not a valid label name"),
        );
        let bad: Result<Vec<RelabelConfig>, _> = serde_yaml_ng::from_str("[{action: explode}]");
        assert!(bad.unwrap_err().to_string().contains("unknown relabel action"));
        let bad: Result<Vec<RelabelConfig>, _> = serde_yaml_ng::from_str("[{target: x}]");
        assert!(bad.is_err(), "unknown keys are errors");
    }
}
