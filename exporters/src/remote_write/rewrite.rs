//! Per-series label changes on the way out: external labels, `namespace` and `_total` suffixes.
//!
//! The result for each incoming label set is computed once and cached, so the steady state is
//! one hash lookup per series. The cache has two generations swapped every ten minutes: series
//! that stop arriving fall out after at most twenty.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::time::{Duration, Instant};

use nodetel_core::labels::Labels;
use nodetel_core::labels::{LabelsBuilder, METRIC_NAME, Pair};
use nodetel_core::metadata::MetricType;

const GENERATION: Duration = Duration::from_secs(600);

/// What to change.
#[derive(Debug, Clone, Default)]
pub struct RewriteRules {
    /// Added when the series lacks a label of that name.
    pub external_labels: Vec<(String, String)>,
    /// Prefix of metric names, without the joining `_`.
    pub namespace: String,
    /// Append `_total` to counters.
    pub add_metric_suffixes: bool,
}

impl RewriteRules {
    /// Whether the rules change nothing (then the rewriter is skipped entirely).
    pub fn is_identity(&self) -> bool {
        self.external_labels.is_empty() && self.namespace.is_empty() && !self.add_metric_suffixes
    }
}

/// Applies [`RewriteRules`] with a cache. One per shard, so no locking.
#[derive(Debug)]
pub struct Rewriter {
    external: Vec<Pair>,
    namespace: String,
    suffixes: bool,
    cur: HashMap<Labels, (Labels, usize)>,
    prev: HashMap<Labels, (Labels, usize)>,
    swapped: Instant,
    builder: LabelsBuilder,
    warned: bool,
}

impl Rewriter {
    /// A rewriter; external labels that are not valid pairs are skipped (validation rejects them
    /// before this point).
    pub fn new(rules: &RewriteRules) -> Rewriter {
        Rewriter {
            external: rules
                .external_labels
                .iter()
                .filter_map(|(n, v)| Pair::new(n, v).ok())
                .collect(),
            namespace: rules.namespace.clone(),
            suffixes: rules.add_metric_suffixes,
            cur: HashMap::new(),
            prev: HashMap::new(),
            swapped: Instant::now(),
            builder: LabelsBuilder::new(),
            warned: false,
        }
    }

    /// The outgoing label set of `labels` and its encoded length. `kind` gives the family type
    /// of a metric name (only consulted for `_total` suffixes).
    pub fn map(&mut self, labels: &Labels, kind: impl Fn(&str) -> Option<MetricType>) -> &(Labels, usize) {
        if self.swapped.elapsed() >= GENERATION {
            self.prev = std::mem::take(&mut self.cur);
            self.swapped = Instant::now();
        }
        let Rewriter {
            external,
            namespace,
            suffixes,
            cur,
            prev,
            builder,
            warned,
            ..
        } = self;
        match cur.entry(labels.clone()) {
            Entry::Occupied(o) => o.into_mut(),
            Entry::Vacant(v) => {
                let value = prev.remove(labels).unwrap_or_else(|| {
                    let out = compute(builder, external, namespace, *suffixes, warned, labels, kind);
                    let len = out.encoded_len();
                    (out, len)
                });
                v.insert(value)
            }
        }
    }

    /// Cached label sets (both generations).
    pub fn cached(&self) -> usize {
        self.cur.len() + self.prev.len()
    }
}

fn compute(
    b: &mut LabelsBuilder,
    external: &[Pair],
    namespace: &str,
    suffixes: bool,
    warned: &mut bool,
    labels: &Labels,
    kind: impl Fn(&str) -> Option<MetricType>,
) -> Labels {
    {
        b.clear();
        for p in labels.pairs() {
            b.push_pair(p.clone());
        }
        for p in external {
            if labels.get(p.name()).is_none() {
                b.push_pair(p.clone());
            }
        }
        if let Some(name) = labels.metric_name() {
            let mut new_name = String::new();
            if !namespace.is_empty() {
                new_name.push_str(namespace);
                new_name.push('_');
            }
            new_name.push_str(name);
            if suffixes && !name.ends_with("_total") && kind(name) == Some(MetricType::Counter) {
                new_name.push_str("_total");
            }
            if new_name != name
                && let Err(error) = b.set(METRIC_NAME, &new_name)
                && !*warned
            {
                *warned = true;
                tracing::warn!(%error, "Metric name rewrite failed; sending the name unchanged.");
            }
        }
        match b.build() {
            Ok(l) => l,
            Err(error) => {
                if !*warned {
                    *warned = true;
                    tracing::warn!(%error, "Label rewrite failed; sending the labels unchanged.");
                }
                labels.clone()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn external_labels_namespace_and_suffixes_apply_once() {
        let rules = RewriteRules {
            external_labels: vec![("cluster".into(), "c1".into()), ("job".into(), "ext".into())],
            namespace: "hp".into(),
            add_metric_suffixes: true,
        };
        let mut r = Rewriter::new(&rules);
        let kind = |n: &str| match n {
            "requests" => Some(MetricType::Counter),
            _ => Some(MetricType::Gauge),
        };
        let a = Labels::from_pairs([(METRIC_NAME, "requests"), ("job", "node")]).unwrap();
        let (out, len) = r.map(&a, kind).clone();
        assert_eq!(
            out.to_string(),
            r#"hp_requests_total{cluster="c1",job="node"}"#,
            "the series' job wins"
        );
        assert_eq!(len, out.encoded_len());
        let g = Labels::from_pairs([(METRIC_NAME, "temp")]).unwrap();
        assert_eq!(r.map(&g, kind).0.to_string(), r#"hp_temp{cluster="c1",job="ext"}"#);
        let again = r.map(&a, |_| panic!("cached: no second computation")).0.clone();
        assert!(again.ptr_eq(&out));
        assert_eq!(r.cached(), 2);
    }

    #[test]
    fn identity_rules_are_recognised() {
        assert!(RewriteRules::default().is_identity());
        let r = RewriteRules {
            namespace: "x".into(),
            ..RewriteRules::default()
        };
        assert!(!r.is_identity());
    }
}
