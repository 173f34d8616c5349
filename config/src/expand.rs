//! Environment-variable expansion in string values, the way the OpenTelemetry Collector does it:
//! `${env:VAR}`, `${VAR}`, `${env:VAR:-default}`, `${VAR:-default}`, and `$$` for a literal `$`.
//!
//! A variable that is unset and has no default expands to an empty string and is reported as a
//! warning. A value that is exactly one reference is re-read as a YAML scalar, so
//! `port: ${env:PORT}` becomes an integer. Only values are expanded, never keys.

use std::collections::BTreeMap;

use serde_yaml_ng::Value;

use crate::error::{ConfigError, join_path};

/// Looks up an environment variable; injectable so tests never touch the process environment.
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The expanded document and the warnings it produced.
#[derive(Debug)]
pub(crate) struct Expanded {
    pub(crate) value: Value,
    pub(crate) warnings: Vec<String>,
    /// Paths of values that were one reference re-read as a bool or number, with the expanded
    /// text, so a field that wants a string can get the text back.
    pub(crate) retyped: BTreeMap<String, String>,
}

/// Expands every string value in `value`; reports every syntax error with its path.
pub(crate) fn expand(value: Value, env: Env<'_>) -> Result<Expanded, Vec<ConfigError>> {
    let mut walk = Walk {
        env,
        warnings: Vec::new(),
        errors: Vec::new(),
        retyped: BTreeMap::new(),
    };
    let value = walk.value(value, "");
    if walk.errors.is_empty() {
        Ok(Expanded {
            value,
            warnings: walk.warnings,
            retyped: walk.retyped,
        })
    } else {
        Err(walk.errors)
    }
}

/// Renders a mapping key for use in a path.
pub(crate) fn key_text(key: &Value) -> String {
    match key {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null => "null".to_owned(),
        _ => "<complex key>".to_owned(),
    }
}

struct Walk<'a> {
    env: Env<'a>,
    warnings: Vec<String>,
    errors: Vec<ConfigError>,
    retyped: BTreeMap<String, String>,
}

impl Walk<'_> {
    fn value(&mut self, value: Value, path: &str) -> Value {
        match value {
            Value::String(s) => self.string(s, path),
            Value::Sequence(items) => Value::Sequence(
                items
                    .into_iter()
                    .enumerate()
                    .map(|(i, v)| self.value(v, &format!("{path}[{i}]")))
                    .collect(),
            ),
            Value::Mapping(map) => Value::Mapping(
                map.into_iter()
                    .map(|(k, v)| {
                        let child = join_path(path, &key_text(&k));
                        let v = self.value(v, &child);
                        (k, v)
                    })
                    .collect(),
            ),
            Value::Tagged(mut tagged) => {
                tagged.value = self.value(tagged.value, path);
                Value::Tagged(tagged)
            }
            other => other,
        }
    }

    fn string(&mut self, s: String, path: &str) -> Value {
        if !s.contains('$') {
            return Value::String(s);
        }
        match expand_str(&s, self.env) {
            Ok(out) => {
                for var in out.unset {
                    self.warnings.push(format!(
                        "{path}: environment variable {var} is not set; it expands to an empty string"
                    ));
                }
                if out.whole_reference {
                    let value = retype(&out.text);
                    if !value.is_string() {
                        self.retyped.insert(path.to_owned(), out.text);
                    }
                    value
                } else {
                    Value::String(out.text)
                }
            }
            Err(message) => {
                self.errors.push(ConfigError::new(path, message));
                Value::String(s)
            }
        }
    }
}

/// A value that was exactly one reference becomes a bool or number when its text reads as one.
fn retype(text: &str) -> Value {
    match serde_yaml_ng::from_str::<Value>(text) {
        Ok(v @ (Value::Bool(_) | Value::Number(_))) => v,
        _ => Value::String(text.to_owned()),
    }
}

#[derive(Debug, PartialEq, Eq)]
struct ExpandedStr {
    text: String,
    /// The input was exactly one `${...}` reference.
    whole_reference: bool,
    /// Variables that were unset and had no default.
    unset: Vec<String>,
}

fn expand_str(s: &str, env: Env<'_>) -> Result<ExpandedStr, String> {
    let mut text = String::with_capacity(s.len());
    let mut unset = Vec::new();
    let mut references = 0;
    let mut whole_reference = false;
    let mut rest = s;
    while let Some(at) = rest.find('$') {
        text.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            text.push('$');
            rest = tail;
        } else if let Some(body) = after.strip_prefix('{') {
            let Some(end) = body.find('}') else {
                return Err(format!(
                    "unclosed \"${{\" in {s:?}; close it with \"}}\", or write \"$$\" for a literal \"$\""
                ));
            };
            let (name, default) = parse_reference(&body[..end])?;
            match env(name) {
                Some(v) => text.push_str(&v),
                None => match default {
                    Some(d) => text.push_str(d),
                    None => {
                        if !unset.iter().any(|u| u == name) {
                            unset.push(name.to_owned());
                        }
                    }
                },
            }
            references += 1;
            // `${` + body + `}` spanning all of `s`: the reference starts at 0 and ends at the end.
            whole_reference = rest.len() == s.len() && at == 0 && end + 1 == body.len();
            rest = &body[end + 1..];
        } else {
            // A lone `$` is literal, as in otelcol (`$VAR` without braces is not expanded).
            text.push('$');
            rest = after;
        }
    }
    text.push_str(rest);
    Ok(ExpandedStr {
        text,
        whole_reference: whole_reference && references == 1,
        unset,
    })
}

/// Splits the inside of `${...}` into the variable name and its default.
fn parse_reference(inner: &str) -> Result<(&str, Option<&str>), String> {
    let reference = format!("${{{inner}}}");
    let mut body = inner;
    if let Some((scheme, rest)) = inner.split_once(':')
        && !rest.starts_with('-')
        && is_name(scheme)
    {
        if scheme != "env" {
            return Err(format!(
                "{reference}: the {scheme:?} provider is not supported; only environment variables (${{env:NAME}}) are"
            ));
        }
        body = rest;
    }
    let (name, default) = match body.split_once(":-") {
        Some((n, d)) => (n, Some(d)),
        None => (body, None),
    };
    if name.is_empty() {
        return Err(format!("{reference}: the variable name is empty; write ${{env:NAME}}"));
    }
    if !is_name(name) {
        return Err(format!(
            "{reference}: {name:?} is not a valid variable name; use letters, digits and _, not starting with a digit"
        ));
    }
    Ok((name, default))
}

fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "HOST" => Some("node-1".to_owned()),
            "PORT" => Some("9100".to_owned()),
            "ON" => Some("true".to_owned()),
            "EMPTY" => Some(String::new()),
            "MAP" => Some("a: b".to_owned()),
            _ => None,
        }
    }

    #[track_caller]
    fn check(input: &str, expected: &str) {
        let out = expand_str(input, &env).unwrap();
        assert_eq!(out.text, expected, "{input:?}");
    }

    #[test]
    fn references_expand_in_every_form() {
        check("${env:HOST}", "node-1");
        check("${HOST}", "node-1");
        check("http://${env:HOST}:${PORT}/metrics", "http://node-1:9100/metrics");
        check("${env:MISSING:-fallback}", "fallback");
        check("${MISSING:-a:b}", "a:b");
        check("${env:HOST:-unused}", "node-1");
        check("${env:EMPTY:-unused}", "");
        check("${MISSING:-}", "");
        check("cost $$5 and $$${HOST}", "cost $5 and $node-1");
        check("a lone $ stays, $HOST too", "a lone $ stays, $HOST too");
        check("no references", "no references");
    }

    #[test]
    fn unset_variables_expand_to_nothing_and_are_listed_once() {
        let out = expand_str("${A}-${env:B}-${A}", &env).unwrap();
        assert_eq!(out.text, "--");
        assert_eq!(out.unset, vec!["A", "B"]);
    }

    #[test]
    fn only_a_single_whole_reference_counts_as_whole() {
        assert!(expand_str("${PORT}", &env).unwrap().whole_reference);
        assert!(!expand_str("${PORT}${PORT}", &env).unwrap().whole_reference);
        assert!(!expand_str(" ${PORT}", &env).unwrap().whole_reference);
        assert!(!expand_str("$${PORT}", &env).unwrap().whole_reference);
        assert!(!expand_str("${PORT}x", &env).unwrap().whole_reference);
    }

    #[test]
    fn bad_syntax_is_rejected_with_a_hint() {
        let err = |s: &str| expand_str(s, &env).unwrap_err();
        assert_eq!(err("${env:}"), "${env:}: the variable name is empty; write ${env:NAME}");
        assert_eq!(err("${}"), "${}: the variable name is empty; write ${env:NAME}");
        assert!(err("x ${env:HOST").starts_with("unclosed \"${\" in \"x ${env:HOST\""));
        assert!(err("${file:/etc/x}").contains("the \"file\" provider is not supported"));
        assert!(err("${1ABC}").contains("\"1ABC\" is not a valid variable name"));
        assert!(err("${A B}").contains("not a valid variable name"));
    }

    #[test]
    fn whole_references_are_retyped_and_others_stay_strings() {
        let doc: Value = serde_yaml_ng::from_str(
            "a: ${env:PORT}\nb: ${ON}\nc: port ${PORT}\nd: ${MAP}\ne: ${MISSING}\nf: ['${PORT}']\n'${HOST}': 1\n",
        )
        .unwrap();
        let out = expand(doc, &env).unwrap();
        let expected: Value =
            serde_yaml_ng::from_str("a: 9100\nb: true\nc: port 9100\nd: 'a: b'\ne: ''\nf: [9100]\n'${HOST}': 1\n")
                .unwrap();
        assert_eq!(out.value, expected);
        assert_eq!(
            out.warnings,
            vec!["e: environment variable MISSING is not set; it expands to an empty string"]
        );
        let retyped: Vec<_> = out.retyped.iter().map(|(p, t)| format!("{p}={t}")).collect();
        assert_eq!(retyped, vec!["a=9100", "b=true", "f[0]=9100"]);
    }

    #[test]
    fn every_syntax_error_is_reported_with_its_path() {
        let doc: Value =
            serde_yaml_ng::from_str("receivers:\n  node:\n    x: ${env:}\n    list: [ok, '${oops']\n").unwrap();
        let errors = expand(doc, &env).unwrap_err();
        let paths: Vec<_> = errors.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, vec!["receivers.node.x", "receivers.node.list[1]"]);
    }
}
