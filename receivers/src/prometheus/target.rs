//! Targets: from discovered addresses and group labels to the labels and URL of a scrape
//! target, with `relabel_configs` applied the way Prometheus' `PopulateLabels` does.
//!
//! Before relabeling a target has `__address__`, `job`, `__scheme__`, `__metrics_path__`,
//! `__scrape_interval__`, `__scrape_timeout__`, `__param_<name>` and the group's labels
//! (including `__meta_*` ones from discovery). After relabeling `__meta_*` labels go,
//! `instance` defaults to the address, the `__` labels build the URL, and every label not
//! starting with `__` is attached to each scraped series.

use std::collections::BTreeMap;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

use nodetel_core::config::parse_duration;
use nodetel_core::labels::is_valid_label_name;

use super::config::{ScrapeConfig, invalid_address};
use super::relabel::{LabelMap, Relabeler};

/// A group of target addresses sharing labels, from `static_configs` or a `file_sd` file.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TargetGroup {
    /// `host:port` addresses.
    pub targets: Vec<String>,
    /// Labels of every target in the group.
    pub labels: BTreeMap<String, String>,
}

/// A target ready to scrape.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// The URL to GET.
    pub url: String,
    /// Labels attached to every series (`job`, `instance`, ...), sorted by name.
    pub labels: Vec<(String, String)>,
    /// Scrape interval (`__scrape_interval__` may override the job's).
    pub interval: Duration,
    /// Scrape timeout (`__scrape_timeout__` may override the job's).
    pub timeout: Duration,
    /// Identity of the target: spreads scrapes over the interval and tells targets apart.
    pub hash: u64,
}

impl Target {
    /// The `instance` label (the address unless relabeled).
    pub fn instance(&self) -> &str {
        self.labels
            .iter()
            .find(|(n, _)| n == "instance")
            .map_or("", |(_, v)| v.as_str())
    }
}

/// What a job contributes to its targets' labels.
#[derive(Debug, Clone)]
pub struct TargetDefaults<'a> {
    /// The job's config.
    pub config: &'a ScrapeConfig,
    /// The job's interval.
    pub interval: Duration,
    /// The job's timeout.
    pub timeout: Duration,
    /// Its compiled `relabel_configs`.
    pub relabel: &'a Relabeler,
}

fn go_duration(d: Duration) -> String {
    // Prometheus renders these labels with its model.Duration format (`15s`, `1m`, `500ms`).
    let ms = d.as_millis();
    if ms == 0 {
        return "0s".into();
    }
    let units = [
        (86_400_000 * 7, "w"),
        (86_400_000, "d"),
        (3_600_000, "h"),
        (60_000, "m"),
        (1000, "s"),
        (1, "ms"),
    ];
    let mut out = String::new();
    let mut rest = ms;
    for (size, name) in units {
        if rest >= size {
            out.push_str(&format!("{}{name}", rest / size));
            rest %= size;
        }
    }
    out
}

/// Builds a target from one address of a group; `Ok(None)` when relabeling dropped it.
pub fn populate(
    defaults: &TargetDefaults<'_>,
    group_labels: &BTreeMap<String, String>,
    address: &str,
) -> Result<Option<Target>, String> {
    let cfg = defaults.config;
    let mut lb: LabelMap = group_labels.clone();
    lb.insert("__address__".into(), address.into());
    let mut default = |n: &str, v: String| {
        if lb.get(n).is_none_or(|x| x.is_empty()) {
            lb.insert(n.into(), v);
        }
    };
    default("job", cfg.job_name.clone());
    default("__scrape_interval__", go_duration(defaults.interval));
    default("__scrape_timeout__", go_duration(defaults.timeout));
    default("__metrics_path__", cfg.metrics_path.clone());
    default("__scheme__", cfg.scheme.clone());
    for (name, values) in &cfg.params {
        if let Some(first) = values.first() {
            default(&format!("__param_{name}"), first.clone());
        }
    }
    if !defaults.relabel.apply(&mut lb) {
        return Ok(None);
    }
    lb.retain(|_, v| !v.is_empty());
    let Some(addr) = lb.get("__address__").cloned() else {
        return Err("no __address__ label after relabeling".into());
    };
    if let Some(why) = invalid_address(&addr) {
        return Err(format!("address {addr:?} {why}"));
    }
    let interval = lb
        .get("__scrape_interval__")
        .map_or(Ok(defaults.interval), |v| parse_duration(v))
        .map_err(|e| format!("__scrape_interval__: {e}"))?;
    let timeout = lb
        .get("__scrape_timeout__")
        .map_or(Ok(defaults.timeout), |v| parse_duration(v))
        .map_err(|e| format!("__scrape_timeout__: {e}"))?;
    if interval.is_zero() || timeout.is_zero() {
        return Err("scrape interval and timeout must be above 0".into());
    }
    if timeout > interval {
        return Err(format!(
            "scrape timeout {timeout:?} is longer than the interval {interval:?}"
        ));
    }
    lb.retain(|n, _| !n.starts_with("__meta_"));
    if !lb.contains_key("instance") {
        lb.insert("instance".into(), addr.clone());
    }
    let scheme = lb.get("__scheme__").map_or("http", String::as_str);
    let path = lb.get("__metrics_path__").map_or("/metrics", String::as_str);
    let mut url = reqwest::Url::parse(&format!("{scheme}://{addr}"))
        .map_err(|e| format!("cannot build a URL from scheme {scheme:?} and address {addr:?}: {e}"))?;
    url.set_path(path);
    let mut params: BTreeMap<&str, Vec<&str>> = cfg
        .params
        .iter()
        .map(|(k, v)| (k.as_str(), v.iter().map(String::as_str).collect()))
        .collect();
    for (n, v) in &lb {
        if let Some(k) = n.strip_prefix("__param_") {
            let e = params.entry(k).or_default();
            if e.is_empty() {
                e.push(v);
            } else {
                e[0] = v;
            }
        }
    }
    if !params.is_empty() {
        let mut q = url.query_pairs_mut();
        for (k, vs) in &params {
            for v in vs {
                q.append_pair(k, v);
            }
        }
    }
    let labels: Vec<(String, String)> = lb.into_iter().filter(|(n, _)| !n.starts_with("__")).collect();
    for (n, _) in &labels {
        if !is_valid_label_name(n) {
            return Err(format!("invalid label name {n:?} after relabeling"));
        }
    }
    let url = url.to_string();
    let mut h = foldhash::fast::FixedState::with_seed(0x7461_7267_6574).build_hasher();
    h.write(url.as_bytes());
    for (n, v) in &labels {
        h.write(n.as_bytes());
        h.write_u8(0xff);
        h.write(v.as_bytes());
        h.write_u8(0xfe);
    }
    Ok(Some(Target {
        url,
        labels,
        interval,
        timeout,
        hash: h.finish(),
    }))
}

/// The targets of all groups, deduplicated; problems are returned as messages naming the address.
pub fn populate_all<'g>(
    defaults: &TargetDefaults<'_>,
    groups: impl IntoIterator<Item = &'g TargetGroup>,
) -> (Vec<Target>, Vec<String>) {
    let mut targets: Vec<Target> = Vec::new();
    let mut errors = Vec::new();
    for g in groups {
        for addr in &g.targets {
            match populate(defaults, &g.labels, addr) {
                Ok(Some(t)) => {
                    if !targets.iter().any(|x| x.hash == t.hash && x == &t) {
                        targets.push(t);
                    }
                }
                Ok(None) => {}
                Err(e) => errors.push(format!("target {addr:?}: {e}")),
            }
        }
    }
    (targets, errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(yaml: &str) -> (ScrapeConfig, Relabeler) {
        let c: ScrapeConfig = serde_yaml_ng::from_str(yaml).unwrap();
        let r = Relabeler::new(&c.relabel_configs).unwrap();
        (c, r)
    }

    fn one(yaml: &str, group: &[(&str, &str)], addr: &str) -> Result<Option<Target>, String> {
        let (c, r) = job(yaml);
        let d = TargetDefaults {
            config: &c,
            interval: Duration::from_secs(15),
            timeout: Duration::from_secs(10),
            relabel: &r,
        };
        let labels = group.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
        populate(&d, &labels, addr)
    }

    fn shown(t: &Target) -> String {
        t.labels
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join(",")
    }

    #[test]
    fn job_and_instance_default_to_the_job_name_and_address() {
        let t = one("job_name: node_exporter", &[("team", "ml")], "localhost:9100")
            .unwrap()
            .unwrap();
        assert_eq!(shown(&t), "instance=localhost:9100,job=node_exporter,team=ml");
        assert_eq!(t.url, "http://localhost:9100/metrics");
        assert_eq!(
            (t.interval, t.timeout),
            (Duration::from_secs(15), Duration::from_secs(10))
        );
    }

    #[test]
    fn the_hyperpod_instance_rule_replaces_the_address() {
        let t = one(
            "{job_name: n, relabel_configs: [{target_label: instance, replacement: ip-10-1-2-3}]}",
            &[],
            "localhost:9100",
        )
        .unwrap()
        .unwrap();
        assert_eq!(shown(&t), "instance=ip-10-1-2-3,job=n");
        assert_eq!(t.url, "http://localhost:9100/metrics");
    }

    #[test]
    fn special_labels_build_the_url_and_meta_labels_are_dropped() {
        let yaml = r#"
job_name: j
params: {module: [if_mib], x: [a b]}
relabel_configs:
  - {source_labels: [__address__], target_label: __param_target}
  - {source_labels: [__meta_host], target_label: __address__}
  - {target_label: __scheme__, replacement: https}
  - {target_label: __metrics_path__, replacement: /probe}
  - {source_labels: [__meta_host], target_label: host}
  - {target_label: __scrape_interval__, replacement: 30s}
"#;
        let t = one(yaml, &[("__meta_host", "exporter:9116")], "10.0.0.1")
            .unwrap()
            .unwrap();
        assert_eq!(t.url, "https://exporter:9116/probe?module=if_mib&target=10.0.0.1&x=a+b");
        assert_eq!(shown(&t), "host=exporter:9116,instance=exporter:9116,job=j");
        assert_eq!(t.interval, Duration::from_secs(30));
    }

    #[test]
    fn relabeling_can_drop_targets_and_bad_results_are_errors() {
        let drop = "{job_name: j, relabel_configs: [{source_labels: [__address__], regex: 'skip.*', action: drop}]}";
        assert_eq!(one(drop, &[], "skip:1").unwrap(), None);
        assert!(one(drop, &[], "keep:1").unwrap().is_some());
        let e = one(
            "{job_name: j, relabel_configs: [{target_label: __address__, replacement: 'h:1/x'}]}",
            &[],
            "a:1",
        )
        .unwrap_err();
        assert!(e.contains("not a host:port"), "{e}");
        let e = one(
            "{job_name: j, relabel_configs: [{target_label: __scrape_timeout__, replacement: 20s}]}",
            &[],
            "a:1",
        )
        .unwrap_err();
        assert!(e.contains("longer than the interval"), "{e}");
    }

    #[test]
    fn identical_targets_are_deduplicated() {
        let (c, r) = job("job_name: j");
        let d = TargetDefaults {
            config: &c,
            interval: Duration::from_secs(15),
            timeout: Duration::from_secs(10),
            relabel: &r,
        };
        let g = TargetGroup {
            targets: vec!["a:1".into(), "a:1".into(), "b:1".into()],
            labels: BTreeMap::new(),
        };
        let (ts, errs) = populate_all(&d, [&g]);
        assert!(errs.is_empty());
        assert_eq!(ts.len(), 2);
        assert_ne!(ts[0].hash, ts[1].hash);
    }

    #[test]
    fn durations_render_like_prometheus() {
        assert_eq!(go_duration(Duration::from_secs(15)), "15s");
        assert_eq!(go_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(go_duration(Duration::from_millis(1500)), "1s500ms");
    }
}
