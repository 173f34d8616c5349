//! The `prometheus` receiver's config: the otelcol form, a Prometheus config under `config:`.
//!
//! ```yaml
//! receivers:
//!   prometheus:
//!     config:
//!       global: {scrape_interval: 15s, scrape_timeout: 10s, external_labels: {cluster: c1}}
//!       scrape_configs:
//!         - job_name: node_exporter
//!           static_configs: [{targets: ["localhost:9100"]}]
//!           relabel_configs: [{target_label: instance, replacement: ip-10-1-2-3}]
//! ```
//!
//! Keys and defaults are Prometheus' `scrape_config` ones. Unknown keys are errors.

use std::collections::BTreeMap;
use std::time::Duration;

use nodetel_core::component::{BoxError, Receiver};
use nodetel_core::config::{BuildContext, FieldError, ReceiverConfig, Validate, duration};
use nodetel_core::labels::is_valid_label_name;
use serde::{Deserialize, Deserializer};

use super::relabel::{RelabelConfig, validate_all};

/// Config of the `prometheus` receiver.
#[derive(Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PrometheusConfig {
    /// The Prometheus configuration (`global` and `scrape_configs`).
    pub config: ScrapeSection,
}

/// The Prometheus configuration held under `config:`.
#[derive(Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ScrapeSection {
    /// Defaults for every job.
    pub global: GlobalConfig,
    /// The scrape jobs.
    pub scrape_configs: Vec<ScrapeConfig>,
}

/// Prometheus' `global` block.
#[derive(Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct GlobalConfig {
    /// Default scrape interval; default 1m.
    #[serde(deserialize_with = "duration::deserialize")]
    pub scrape_interval: Duration,
    /// Default scrape timeout; default 10s (capped at a job's interval).
    #[serde(deserialize_with = "duration::deserialize")]
    pub scrape_timeout: Duration,
    /// Accepted and ignored: it paces rule evaluation, and this receiver evaluates no rules.
    /// HyperPod's collector configs set it, so rejecting it would break them.
    #[serde(deserialize_with = "duration::deserialize_option")]
    pub evaluation_interval: Option<Duration>,
    /// Labels added to every series that lacks them (as Prometheus does on remote write).
    pub external_labels: BTreeMap<String, String>,
}

impl Default for GlobalConfig {
    fn default() -> Self {
        GlobalConfig {
            scrape_interval: Duration::from_secs(60),
            scrape_timeout: Duration::from_secs(10),
            evaluation_interval: None,
            external_labels: BTreeMap::new(),
        }
    }
}

/// A byte size as Prometheus writes it (`10MB`, `512KiB`, a bare number of bytes); `0` is no limit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ByteSize(pub u64);

impl ByteSize {
    /// Parses `10MB`, `1.5GiB`, `2048`. Like Prometheus (Go `units.Base2Bytes`), `KB` means 1024.
    pub fn parse(s: &str) -> Option<ByteSize> {
        let t = s.trim();
        let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let n: f64 = num.parse().ok()?;
        let mult: u64 = match unit.trim() {
            "" | "B" => 1,
            "KB" | "KiB" | "K" => 1 << 10,
            "MB" | "MiB" | "M" => 1 << 20,
            "GB" | "GiB" | "G" => 1 << 30,
            "TB" | "TiB" | "T" => 1 << 40,
            _ => return None,
        };
        let v = n * mult as f64;
        (v.is_finite() && v >= 0.0 && v < u64::MAX as f64).then_some(ByteSize(v as u64))
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Text(String),
            Bytes(u64),
        }
        match Raw::deserialize(d)? {
            Raw::Bytes(n) => Ok(ByteSize(n)),
            Raw::Text(s) => ByteSize::parse(&s).ok_or_else(|| {
                serde::de::Error::custom(format!(
                    "invalid size {s:?}: use a number with a unit, like 10MB or 512KiB"
                ))
            }),
        }
    }
}

/// `static_configs` entry.
#[derive(Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct StaticConfig {
    /// `host:port` addresses.
    pub targets: Vec<String>,
    /// Labels for every target of the group.
    pub labels: BTreeMap<String, String>,
}

/// `file_sd_configs` entry: JSON or YAML files listing target groups.
#[derive(Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct FileSdConfig {
    /// File paths; the last path element may hold a `*` glob (`targets/*.yml`).
    pub files: Vec<String>,
    /// How often the files are re-read; default 5m.
    #[serde(deserialize_with = "duration::deserialize")]
    pub refresh_interval: Duration,
}

impl Default for FileSdConfig {
    fn default() -> Self {
        FileSdConfig {
            files: Vec::new(),
            refresh_interval: Duration::from_secs(300),
        }
    }
}

/// `basic_auth`.
#[derive(Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct BasicAuth {
    /// The user name.
    pub username: String,
    /// The password.
    pub password: Option<String>,
    /// A file holding the password (read when the receiver starts).
    pub password_file: Option<String>,
}

/// `authorization`: an `Authorization: <type> <credentials>` header.
#[derive(Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Authorization {
    /// The scheme; default `Bearer`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The credentials.
    pub credentials: Option<String>,
    /// A file holding the credentials (read when the receiver starts).
    pub credentials_file: Option<String>,
}

impl Default for Authorization {
    fn default() -> Self {
        Authorization {
            kind: "Bearer".into(),
            credentials: None,
            credentials_file: None,
        }
    }
}

/// `tls_config`.
#[derive(Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// PEM file of CA certificates to trust, in addition to the system roots.
    pub ca_file: Option<String>,
    /// PEM client certificate.
    pub cert_file: Option<String>,
    /// PEM client key.
    pub key_file: Option<String>,
    /// Not supported: the HTTP client cannot override the TLS server name.
    pub server_name: Option<String>,
    /// Skip server certificate verification.
    pub insecure_skip_verify: bool,
}

/// The exposition formats a target may be asked for, as Prometheus names them.
pub const SCRAPE_PROTOCOLS: [(&str, &str); 4] = [
    ("PrometheusText0.0.4", "text/plain;version=0.0.4"),
    ("PrometheusText1.0.0", "text/plain;version=1.0.0"),
    ("OpenMetricsText1.0.0", "application/openmetrics-text;version=1.0.0"),
    ("OpenMetricsText0.0.1", "application/openmetrics-text;version=0.0.1"),
];

/// One Prometheus `scrape_config`.
#[derive(Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ScrapeConfig {
    /// The job name: the default `job` label. Required and unique.
    pub job_name: String,
    /// How often to scrape; default `global.scrape_interval`.
    #[serde(deserialize_with = "duration::deserialize_option")]
    pub scrape_interval: Option<Duration>,
    /// Scrape timeout; default `global.scrape_timeout`, capped at the interval.
    #[serde(deserialize_with = "duration::deserialize_option")]
    pub scrape_timeout: Option<Duration>,
    /// URL path; default `/metrics`.
    pub metrics_path: String,
    /// `http` (default) or `https`.
    pub scheme: String,
    /// URL query parameters.
    pub params: BTreeMap<String, Vec<String>>,
    /// Fixed target groups.
    pub static_configs: Vec<StaticConfig>,
    /// Target groups read from files.
    pub file_sd_configs: Vec<FileSdConfig>,
    /// Relabeling of targets before scraping.
    pub relabel_configs: Vec<RelabelConfig>,
    /// Relabeling of scraped series.
    pub metric_relabel_configs: Vec<RelabelConfig>,
    /// Exposed labels win over target labels; default false.
    pub honor_labels: bool,
    /// Use exposed timestamps; default true.
    pub honor_timestamps: bool,
    /// Fail a scrape with more samples than this after metric relabeling; 0 = no limit.
    pub sample_limit: usize,
    /// Fail a scrape with a series of more labels than this; 0 = no limit.
    pub label_limit: usize,
    /// Fail a scrape with a longer label name; 0 = no limit.
    pub label_name_length_limit: usize,
    /// Fail a scrape with a longer label value; 0 = no limit.
    pub label_value_length_limit: usize,
    /// Fail a scrape whose uncompressed body is larger; 0 = no limit.
    pub body_size_limit: ByteSize,
    /// Basic authentication.
    pub basic_auth: Option<BasicAuth>,
    /// Authorization header.
    pub authorization: Option<Authorization>,
    /// TLS settings for https.
    pub tls_config: TlsConfig,
    /// Ask for gzip; default true.
    pub enable_compression: bool,
    /// Formats to ask for, most preferred first; default text 0.0.4, then OpenMetrics (the text
    /// format is the cheaper one to parse and carries the same series).
    pub scrape_protocols: Vec<String>,
}

impl Default for ScrapeConfig {
    fn default() -> Self {
        ScrapeConfig {
            job_name: String::new(),
            scrape_interval: None,
            scrape_timeout: None,
            metrics_path: "/metrics".into(),
            scheme: "http".into(),
            params: BTreeMap::new(),
            static_configs: Vec::new(),
            file_sd_configs: Vec::new(),
            relabel_configs: Vec::new(),
            metric_relabel_configs: Vec::new(),
            honor_labels: false,
            honor_timestamps: true,
            sample_limit: 0,
            label_limit: 0,
            label_name_length_limit: 0,
            label_value_length_limit: 0,
            body_size_limit: ByteSize(0),
            basic_auth: None,
            authorization: None,
            tls_config: TlsConfig::default(),
            enable_compression: true,
            scrape_protocols: Vec::new(),
        }
    }
}

impl ScrapeConfig {
    /// The interval in effect.
    pub fn interval(&self, global: &GlobalConfig) -> Duration {
        self.scrape_interval.unwrap_or(global.scrape_interval)
    }

    /// The timeout in effect: an explicit one, else the global one capped at the interval.
    pub fn timeout(&self, global: &GlobalConfig) -> Duration {
        self.scrape_timeout
            .unwrap_or_else(|| global.scrape_timeout.min(self.interval(global)))
    }

    /// The `Accept` header for `scrape_protocols`.
    pub fn accept_header(&self) -> String {
        let default = ["PrometheusText0.0.4", "OpenMetricsText1.0.0"];
        let names: Vec<&str> = if self.scrape_protocols.is_empty() {
            default.to_vec()
        } else {
            self.scrape_protocols.iter().map(String::as_str).collect()
        };
        let mut out = String::new();
        let mut weight = 10u32;
        for name in names {
            if let Some((_, mime)) = SCRAPE_PROTOCOLS.iter().find(|(n, _)| *n == name) {
                if !out.is_empty() {
                    out.push(',');
                }
                out.push_str(mime);
                out.push_str(&format!(";q=0.{weight}"));
                weight = weight.saturating_sub(1).max(2);
            }
        }
        out.push_str(",*/*;q=0.1");
        // q=0.10 reads as 0.1 in HTTP; keep the first entry at full weight.
        out.replacen(";q=0.10", "", 1)
    }

    fn validate(&self, global: &GlobalConfig, path: &str, errs: &mut Vec<FieldError>) {
        let mut err = |field: &str, msg: String| errs.push(FieldError::new(format!("{path}.{field}"), msg));
        if self.job_name.is_empty() {
            err("job_name", "required: name the job (it becomes the job label)".into());
        }
        let interval = self.interval(global);
        if interval.is_zero() {
            err("scrape_interval", "must be above 0, like 15s".into());
        }
        if let Some(t) = self.scrape_timeout {
            if t.is_zero() {
                err("scrape_timeout", "must be above 0, like 10s".into());
            } else if t > interval {
                err(
                    "scrape_timeout",
                    format!("{t:?} is longer than the scrape interval {interval:?}; lower it or raise scrape_interval"),
                );
            }
        }
        if !self.metrics_path.starts_with('/') {
            err("metrics_path", format!("{:?} must start with '/'", self.metrics_path));
        }
        if self.scheme != "http" && self.scheme != "https" {
            err(
                "scheme",
                format!("{:?} is not supported: use http or https", self.scheme),
            );
        }
        for (i, sc) in self.static_configs.iter().enumerate() {
            for (j, t) in sc.targets.iter().enumerate() {
                if let Some(why) = invalid_address(t) {
                    err(&format!("static_configs[{i}].targets[{j}]"), format!("{t:?} {why}"));
                }
            }
            for n in sc.labels.keys() {
                if !is_valid_label_name(n) {
                    err(
                        &format!("static_configs[{i}].labels.{n}"),
                        "not a valid label name: use [a-zA-Z_][a-zA-Z0-9_]*".into(),
                    );
                }
            }
        }
        for (i, fsd) in self.file_sd_configs.iter().enumerate() {
            if fsd.files.is_empty() {
                err(&format!("file_sd_configs[{i}].files"), "list at least one file".into());
            }
            for (j, f) in fsd.files.iter().enumerate() {
                if let Some(why) = invalid_sd_path(f) {
                    err(&format!("file_sd_configs[{i}].files[{j}]"), format!("{f:?} {why}"));
                }
            }
            if fsd.refresh_interval.is_zero() {
                err(
                    &format!("file_sd_configs[{i}].refresh_interval"),
                    "must be above 0, like 5m".into(),
                );
            }
        }
        for (i, p) in self.scrape_protocols.iter().enumerate() {
            if !SCRAPE_PROTOCOLS.iter().any(|(n, _)| n == p) {
                let names: Vec<_> = SCRAPE_PROTOCOLS.iter().map(|(n, _)| *n).collect();
                err(
                    &format!("scrape_protocols[{i}]"),
                    format!("unknown protocol {p:?}: use {}", names.join(", ")),
                );
            }
        }
        if let Some(b) = &self.basic_auth {
            if b.password.is_some() && b.password_file.is_some() {
                err("basic_auth", "set password or password_file, not both".into());
            }
            if b.username.is_empty() {
                err("basic_auth.username", "required with basic_auth".into());
            }
        }
        if let Some(a) = &self.authorization {
            if a.credentials.is_some() && a.credentials_file.is_some() {
                err("authorization", "set credentials or credentials_file, not both".into());
            }
            if a.kind.eq_ignore_ascii_case("basic") {
                err("authorization.type", "use basic_auth for Basic authentication".into());
            }
            if self.basic_auth.is_some() {
                err("authorization", "set basic_auth or authorization, not both".into());
            }
        }
        let tls = &self.tls_config;
        if tls.cert_file.is_some() != tls.key_file.is_some() {
            err("tls_config", "set cert_file and key_file together".into());
        }
        if tls.server_name.is_some() {
            err(
                "tls_config.server_name",
                "not supported: the target address must match the certificate; remove it".into(),
            );
        }
        let prefix = |f: &str| format!("{path}.{f}");
        errs.extend(validate_all(&self.relabel_configs, &prefix("relabel_configs")));
        errs.extend(validate_all(
            &self.metric_relabel_configs,
            &prefix("metric_relabel_configs"),
        ));
    }
}

/// Why `addr` is not a `host:port` target address, if it is not.
pub fn invalid_address(addr: &str) -> Option<&'static str> {
    if addr.is_empty() {
        return Some("is empty: use host:port");
    }
    if addr.contains('/') {
        return Some("is not a host:port address: drop the scheme and path (use scheme and metrics_path)");
    }
    if addr.contains(char::is_whitespace) {
        return Some("holds whitespace");
    }
    None
}

fn invalid_sd_path(path: &str) -> Option<&'static str> {
    let (dir, file) = path.rsplit_once('/').unwrap_or(("", path));
    if dir.contains(['*', '?', '[']) {
        return Some("may only use a glob in its last path element");
    }
    let lower = file.to_ascii_lowercase();
    if !(lower.ends_with(".json") || lower.ends_with(".yml") || lower.ends_with(".yaml")) {
        return Some("must end in .json, .yml or .yaml");
    }
    None
}

impl Validate for PrometheusConfig {
    fn validate(&self) -> Vec<FieldError> {
        let mut errs = Vec::new();
        let c = &self.config;
        let g = &c.global;
        if g.scrape_interval.is_zero() {
            errs.push(FieldError::new(
                "config.global.scrape_interval",
                "must be above 0, like 15s",
            ));
        }
        if g.scrape_timeout.is_zero() {
            errs.push(FieldError::new(
                "config.global.scrape_timeout",
                "must be above 0, like 10s",
            ));
        }
        for n in g.external_labels.keys() {
            if !is_valid_label_name(n) {
                errs.push(FieldError::new(
                    format!("config.global.external_labels.{n}"),
                    "not a valid label name: use [a-zA-Z_][a-zA-Z0-9_]*",
                ));
            }
        }
        if c.scrape_configs.is_empty() {
            errs.push(FieldError::new(
                "config.scrape_configs",
                "list at least one scrape job (job_name and static_configs)",
            ));
        }
        let mut seen = std::collections::BTreeSet::new();
        for (i, sc) in c.scrape_configs.iter().enumerate() {
            let path = format!("config.scrape_configs[{i}]");
            if !sc.job_name.is_empty() && !seen.insert(sc.job_name.as_str()) {
                errs.push(FieldError::new(
                    format!("{path}.job_name"),
                    format!("duplicate job name {:?}: every job needs its own name", sc.job_name),
                ));
            }
            sc.validate(g, &path, &mut errs);
        }
        errs
    }
}

impl ReceiverConfig for PrometheusConfig {
    const TYPE: &'static str = "prometheus";

    fn build(&self, cx: &BuildContext) -> Result<Box<dyn Receiver>, BoxError> {
        Ok(Box::new(super::receiver::PrometheusReceiver::new(self, cx)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> PrometheusConfig {
        serde_yaml_ng::from_str(yaml).unwrap()
    }

    #[test]
    fn hyperpod_config_parses_with_defaults() {
        let c = parse(
            r#"
config:
  global:
    scrape_interval: 15s
    evaluation_interval: 15s
  scrape_configs:
    - job_name: node_exporter
      static_configs: [{targets: ["localhost:9100"]}]
      relabel_configs: [{target_label: instance, replacement: ip-10-1-206-211}]
    - job_name: dcgm_exporter
      scrape_interval: 30s
      static_configs: [{targets: ["localhost:9400"], labels: {team: ml}}]
"#,
        );
        assert!(c.validate().is_empty(), "{:?}", c.validate());
        let g = &c.config.global;
        let j = &c.config.scrape_configs[0];
        assert_eq!(j.interval(g), Duration::from_secs(15));
        assert_eq!(j.timeout(g), Duration::from_secs(10));
        assert_eq!((j.metrics_path.as_str(), j.scheme.as_str()), ("/metrics", "http"));
        assert!(j.honor_timestamps && !j.honor_labels && j.enable_compression);
        assert_eq!(c.config.scrape_configs[1].interval(g), Duration::from_secs(30));
        assert_eq!(c.config.scrape_configs[1].static_configs[0].labels["team"], "ml");
    }

    #[test]
    fn global_defaults_are_prometheus_defaults() {
        let c = parse("config: {scrape_configs: [{job_name: a, scrape_interval: 5s}]}");
        assert_eq!(c.config.global.scrape_interval, Duration::from_secs(60));
        // The global 10s timeout is capped at the job's 5s interval.
        assert_eq!(
            c.config.scrape_configs[0].timeout(&c.config.global),
            Duration::from_secs(5)
        );
    }

    #[test]
    fn unknown_keys_are_errors() {
        for yaml in [
            "config: {scrape_configs: [{job_name: a, scrape_intervall: 5s}]}",
            "config: {global: {scrape_interval: 5s, unknown: 1}}",
            "nonsense: 1",
        ] {
            assert!(serde_yaml_ng::from_str::<PrometheusConfig>(yaml).is_err(), "{yaml}");
        }
    }

    #[test]
    fn every_problem_is_reported_with_its_path() {
        let c = parse(
            r#"
config:
  global: {external_labels: {"bad-name": x}}
  scrape_configs:
    - job_name: x
      static_configs: [{targets: ["http://h:1/metrics", ""]}]
      scrape_interval: 5s
      scrape_timeout: 10s
    - job_name: x
      metrics_path: metrics
      scheme: ftp
      metric_relabel_configs: [{source_labels: [a]}]
      file_sd_configs: [{files: ["/etc/*/t.yml", "t.txt"]}]
      basic_auth: {username: u, password: p, password_file: f}
      tls_config: {cert_file: c}
      scrape_protocols: [Nope]
    - {}
"#,
        );
        let errs: Vec<String> = c.validate().iter().map(|e| e.to_string()).collect();
        let expect = [
            "config.global.external_labels.bad-name: not a valid label name",
            "config.scrape_configs[0].static_configs[0].targets[0]: \"http://h:1/metrics\" is not a host:port",
            "config.scrape_configs[0].static_configs[0].targets[1]: \"\" is empty",
            "config.scrape_configs[0].scrape_timeout: 10s is longer than the scrape interval 5s",
            "config.scrape_configs[1].job_name: duplicate job name \"x\"",
            "config.scrape_configs[1].metrics_path: \"metrics\" must start with '/'",
            "config.scrape_configs[1].scheme: \"ftp\" is not supported",
            "config.scrape_configs[1].metric_relabel_configs[0].target_label: the replace action needs a target_label",
            "config.scrape_configs[1].file_sd_configs[0].files[0]: \"/etc/*/t.yml\" may only use a glob",
            "config.scrape_configs[1].file_sd_configs[0].files[1]: \"t.txt\" must end in .json",
            "config.scrape_configs[1].basic_auth: set password or password_file, not both",
            "config.scrape_configs[1].tls_config: set cert_file and key_file together",
            "config.scrape_configs[1].scrape_protocols[0]: unknown protocol \"Nope\"",
            "config.scrape_configs[2].job_name: required",
        ];
        for e in expect {
            assert!(errs.iter().any(|x| x.starts_with(e)), "missing {e:?} in {errs:#?}");
        }
        assert_eq!(errs.len(), expect.len(), "{errs:#?}");
        assert!(!parse("config: {}").validate().is_empty(), "no scrape job is an error");
    }

    #[test]
    fn byte_sizes_parse_like_prometheus() {
        assert_eq!(ByteSize::parse("10MB"), Some(ByteSize(10 << 20)));
        assert_eq!(ByteSize::parse("512KiB"), Some(ByteSize(512 << 10)));
        assert_eq!(ByteSize::parse("2048"), Some(ByteSize(2048)));
        assert_eq!(ByteSize::parse("1.5GB"), Some(ByteSize(3 << 29)));
        assert_eq!(ByteSize::parse("ten"), None);
        assert_eq!(ByteSize::parse("10XB"), None);
        let c = parse("config: {scrape_configs: [{job_name: a, body_size_limit: 1KB}]}");
        assert_eq!(c.config.scrape_configs[0].body_size_limit, ByteSize(1024));
    }

    #[test]
    fn accept_header_prefers_the_text_format_by_default() {
        let j = ScrapeConfig::default();
        assert_eq!(
            j.accept_header(),
            "text/plain;version=0.0.4,application/openmetrics-text;version=1.0.0;q=0.9,*/*;q=0.1"
        );
        let j = ScrapeConfig {
            scrape_protocols: vec!["OpenMetricsText1.0.0".into(), "PrometheusText0.0.4".into()],
            ..ScrapeConfig::default()
        };
        assert!(
            j.accept_header()
                .starts_with("application/openmetrics-text;version=1.0.0,text/plain")
        );
    }
}
