//! Configuration of the `prometheusremotewrite` exporter and the `sigv4auth` extension, in the
//! OpenTelemetry Collector layout, plus nodetel's own queue and shard settings.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use nodetel_core::config::{FieldError, Validate, duration};
use serde::Deserialize;
use serde::de::IgnoredAny;

/// Headers the exporter sets itself; the remote write spec forbids users to override them.
const RESERVED_HEADERS: [&str; 6] = [
    "content-encoding",
    "content-type",
    "x-prometheus-remote-write-version",
    "user-agent",
    "host",
    "content-length",
];

/// `tls:` of the exporter (otelcol `configtls`).
#[derive(Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// Accepted for otelcol configs; an `http://` endpoint is what turns TLS off here.
    pub insecure: bool,
    /// Skip server certificate verification (testing only).
    pub insecure_skip_verify: bool,
    /// Extra CA bundle (PEM) to trust.
    pub ca_file: Option<PathBuf>,
    /// Client certificate (PEM), with `key_file`.
    pub cert_file: Option<PathBuf>,
    /// Client key (PEM), with `cert_file`.
    pub key_file: Option<PathBuf>,
}

/// `auth:` of the exporter.
#[derive(Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Id of an enabled `sigv4auth` extension.
    pub authenticator: String,
}

/// `retry_on_failure:` (otelcol `configretry`).
#[derive(Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RetryConfig {
    /// Retry retryable failures at all.
    pub enabled: bool,
    /// First delay.
    #[serde(deserialize_with = "duration::deserialize")]
    pub initial_interval: Duration,
    /// Largest delay.
    #[serde(deserialize_with = "duration::deserialize")]
    pub max_interval: Duration,
    /// Give a request up after this long (0: never). Not applied to the disk queue, which
    /// keeps data until it is sent or evicted by size.
    #[serde(deserialize_with = "duration::deserialize")]
    pub max_elapsed_time: Duration,
    /// Growth factor of the delay.
    pub multiplier: f64,
    /// Jitter: each delay is drawn from `delay * (1 ± randomization_factor)`.
    pub randomization_factor: f64,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            enabled: true,
            initial_interval: Duration::from_millis(50),
            max_interval: Duration::from_secs(30),
            max_elapsed_time: Duration::from_secs(300),
            multiplier: 1.5,
            randomization_factor: 0.5,
        }
    }
}

/// `remote_write_queue:`.
#[derive(Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct RemoteWriteQueueConfig {
    /// With `false`, each shard buffers a single chunk (sending still happens in shards).
    pub enabled: bool,
    /// In-memory capacity in batch chunks, split over the shards.
    pub queue_size: usize,
    /// Default for `shards.max`.
    pub num_consumers: usize,
}

impl Default for RemoteWriteQueueConfig {
    fn default() -> Self {
        RemoteWriteQueueConfig {
            enabled: true,
            queue_size: 10_000,
            num_consumers: 5,
        }
    }
}

/// `resource_to_telemetry_conversion:`; scraped series already carry all their labels, so both
/// settings are accepted and have nothing to convert.
#[derive(Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct ResourceToTelemetryConfig {
    /// Accepted; no effect (there are no resource attributes).
    pub enabled: bool,
    /// Accepted; no effect.
    pub exclude_service_attributes: bool,
}

/// `target_info:`; nodetel has no OTLP resources, so no `target_info` series exists to send.
#[derive(Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct TargetInfoConfig {
    /// Accepted; no effect.
    pub enabled: bool,
}

/// `queue:` — the persistent queue (nodetel).
#[derive(Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct DiskQueueConfig {
    /// Where segment files live; unset means no disk queue.
    pub directory: Option<PathBuf>,
    /// Upper bound of the segment files; the oldest are dropped first.
    pub max_size_bytes: u64,
}

impl Default for DiskQueueConfig {
    fn default() -> Self {
        DiskQueueConfig {
            directory: None,
            max_size_bytes: 1 << 30,
        }
    }
}

/// `shards:` — how many requests may be in flight (nodetel).
#[derive(Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct ShardsConfig {
    /// Fewest shards (default 1).
    pub min: Option<usize>,
    /// Most shards (default `remote_write_queue.num_consumers`).
    pub max: Option<usize>,
}

/// The `prometheusremotewrite` exporter's section.
#[derive(Deserialize, Clone, Debug)]
#[serde(deny_unknown_fields, default)]
pub struct RemoteWriteConfig {
    /// The remote write URL (required).
    pub endpoint: String,
    /// Extra request headers.
    pub headers: BTreeMap<String, String>,
    /// Timeout of one HTTP request.
    #[serde(deserialize_with = "duration::deserialize")]
    pub timeout: Duration,
    /// TLS settings.
    pub tls: TlsConfig,
    /// Labels added to every series; a series' own label of the same name wins, as in otelcol
    /// and Prometheus.
    pub external_labels: BTreeMap<String, String>,
    /// The authenticator extension, if any.
    pub auth: Option<AuthConfig>,
    /// Retry policy.
    pub retry_on_failure: RetryConfig,
    /// In-memory queue.
    pub remote_write_queue: RemoteWriteQueueConfig,
    /// Upper bound of one request's uncompressed size.
    pub max_batch_size_bytes: usize,
    /// Send family metadata (type, help, unit).
    pub send_metadata: bool,
    /// Accepted for otelcol configs (see the type).
    pub resource_to_telemetry_conversion: ResourceToTelemetryConfig,
    /// Accepted for otelcol configs (see the type).
    pub target_info: TargetInfoConfig,
    /// Prefix of every metric name (`<namespace>_<name>`).
    pub namespace: String,
    /// Append `_total` to counter names that lack it.
    pub add_metric_suffixes: bool,
    /// Only `snappy`.
    pub compression: String,
    /// Only `prometheus.WriteRequest` (remote write 1.0).
    pub protobuf_message: String,
    /// Persistent queue (nodetel).
    pub queue: DiskQueueConfig,
    /// Shard bounds (nodetel).
    pub shards: ShardsConfig,
    /// Upper bound of samples per request (nodetel).
    pub max_samples_per_send: usize,
    /// How long a shard holds a partial request before sending it (nodetel).
    #[serde(deserialize_with = "duration::deserialize")]
    pub batch_send_deadline: Duration,
    /// At shutdown, how long shards keep sending before the rest is persisted (with a disk
    /// queue) or dropped and counted (nodetel). Keep it below `service.shutdown_timeout`.
    #[serde(deserialize_with = "duration::deserialize")]
    pub shutdown_flush_timeout: Duration,

    // otelcol keys with no counterpart here: reported by validate() instead of ignored.
    wal: Option<IgnoredAny>,
    max_batch_request_parallelism: Option<IgnoredAny>,
    disable_scope_info: Option<IgnoredAny>,
    translation_strategy: Option<IgnoredAny>,
    export_created_metric: Option<IgnoredAny>,
    proxy_url: Option<IgnoredAny>,
    http: Option<IgnoredAny>,
    include_metadata_keys: Option<IgnoredAny>,
    convert_explicit_histograms_to_nhcb: Option<IgnoredAny>,
    keep_classic_histograms: Option<IgnoredAny>,
    read_buffer_size: Option<IgnoredAny>,
    write_buffer_size: Option<IgnoredAny>,
    max_idle_conns: Option<IgnoredAny>,
    max_idle_conns_per_host: Option<IgnoredAny>,
    max_conns_per_host: Option<IgnoredAny>,
    idle_conn_timeout: Option<IgnoredAny>,
    disable_keep_alives: Option<IgnoredAny>,
    http2_read_idle_timeout: Option<IgnoredAny>,
    http2_ping_timeout: Option<IgnoredAny>,
    cookies: Option<IgnoredAny>,
    compression_params: Option<IgnoredAny>,
}

impl Default for RemoteWriteConfig {
    fn default() -> Self {
        RemoteWriteConfig {
            endpoint: String::new(),
            headers: BTreeMap::new(),
            timeout: Duration::from_secs(5),
            tls: TlsConfig::default(),
            external_labels: BTreeMap::new(),
            auth: None,
            retry_on_failure: RetryConfig::default(),
            remote_write_queue: RemoteWriteQueueConfig::default(),
            max_batch_size_bytes: 3_000_000,
            send_metadata: false,
            resource_to_telemetry_conversion: ResourceToTelemetryConfig::default(),
            target_info: TargetInfoConfig::default(),
            namespace: String::new(),
            add_metric_suffixes: false,
            compression: "snappy".into(),
            protobuf_message: "prometheus.WriteRequest".into(),
            queue: DiskQueueConfig::default(),
            shards: ShardsConfig::default(),
            max_samples_per_send: 2000,
            batch_send_deadline: Duration::from_secs(1),
            shutdown_flush_timeout: Duration::from_secs(5),
            wal: None,
            max_batch_request_parallelism: None,
            disable_scope_info: None,
            translation_strategy: None,
            export_created_metric: None,
            proxy_url: None,
            http: None,
            include_metadata_keys: None,
            convert_explicit_histograms_to_nhcb: None,
            keep_classic_histograms: None,
            read_buffer_size: None,
            write_buffer_size: None,
            max_idle_conns: None,
            max_idle_conns_per_host: None,
            max_conns_per_host: None,
            idle_conn_timeout: None,
            disable_keep_alives: None,
            http2_read_idle_timeout: None,
            http2_ping_timeout: None,
            cookies: None,
            compression_params: None,
        }
    }
}

impl RemoteWriteConfig {
    /// A config for `endpoint` with every other setting at its default.
    pub fn for_endpoint(endpoint: &str) -> RemoteWriteConfig {
        RemoteWriteConfig {
            endpoint: endpoint.to_owned(),
            ..RemoteWriteConfig::default()
        }
    }

    /// The fewest shards.
    pub fn min_shards(&self) -> usize {
        self.shards.min.unwrap_or(1).max(1)
    }

    /// The most shards.
    pub fn max_shards(&self) -> usize {
        self.shards
            .max
            .unwrap_or(self.remote_write_queue.num_consumers)
            .max(self.min_shards())
    }

    fn unsupported(&self) -> Vec<(&'static str, &'static str)> {
        let keys: [(&'static str, bool, &'static str); 21] = [
            (
                "wal",
                self.wal.is_some(),
                "use queue.directory for the persistent queue",
            ),
            (
                "max_batch_request_parallelism",
                self.max_batch_request_parallelism.is_some(),
                "use shards.max",
            ),
            (
                "disable_scope_info",
                self.disable_scope_info.is_some(),
                "nodetel adds no scope labels",
            ),
            (
                "translation_strategy",
                self.translation_strategy.is_some(),
                "names are sent as scraped; use add_metric_suffixes for _total",
            ),
            (
                "export_created_metric",
                self.export_created_metric.is_some(),
                "there are no created metrics",
            ),
            (
                "proxy_url",
                self.proxy_url.is_some(),
                "set HTTPS_PROXY in the environment",
            ),
            (
                "http",
                self.http.is_some(),
                "use the flat keys (endpoint, headers, timeout, tls)",
            ),
            (
                "include_metadata_keys",
                self.include_metadata_keys.is_some(),
                "there is no client metadata",
            ),
            (
                "convert_explicit_histograms_to_nhcb",
                self.convert_explicit_histograms_to_nhcb.is_some(),
                "native histograms are not sent",
            ),
            (
                "keep_classic_histograms",
                self.keep_classic_histograms.is_some(),
                "classic histograms are always kept",
            ),
            (
                "read_buffer_size",
                self.read_buffer_size.is_some(),
                "buffers are sized automatically",
            ),
            (
                "write_buffer_size",
                self.write_buffer_size.is_some(),
                "buffers are sized automatically",
            ),
            (
                "max_idle_conns",
                self.max_idle_conns.is_some(),
                "connections follow the shard count",
            ),
            (
                "max_idle_conns_per_host",
                self.max_idle_conns_per_host.is_some(),
                "connections follow the shard count",
            ),
            (
                "max_conns_per_host",
                self.max_conns_per_host.is_some(),
                "use shards.max",
            ),
            (
                "idle_conn_timeout",
                self.idle_conn_timeout.is_some(),
                "the default of 90s applies",
            ),
            (
                "disable_keep_alives",
                self.disable_keep_alives.is_some(),
                "keep-alive is always on",
            ),
            (
                "http2_read_idle_timeout",
                self.http2_read_idle_timeout.is_some(),
                "HTTP/2 pings are not configurable",
            ),
            (
                "http2_ping_timeout",
                self.http2_ping_timeout.is_some(),
                "HTTP/2 pings are not configurable",
            ),
            ("cookies", self.cookies.is_some(), "cookies are not kept"),
            (
                "compression_params",
                self.compression_params.is_some(),
                "snappy has no parameters",
            ),
        ];
        keys.into_iter()
            .filter(|(_, set, _)| *set)
            .map(|(k, _, hint)| (k, hint))
            .collect()
    }
}

fn check_url(endpoint: &str) -> Option<String> {
    match reqwest::Url::parse(endpoint) {
        Ok(u) if u.scheme() == "http" || u.scheme() == "https" => {
            if u.host_str().is_none_or(str::is_empty) {
                Some("has no host; use https://host/path".into())
            } else {
                None
            }
        }
        Ok(u) => Some(format!(
            "scheme {:?} is not supported; use https:// (or http://)",
            u.scheme()
        )),
        Err(e) => Some(format!("is not a URL ({e}); set your AMP remote write URL")),
    }
}

impl Validate for RemoteWriteConfig {
    fn validate(&self) -> Vec<FieldError> {
        let mut errs = Vec::new();
        let mut err = |path: &str, msg: String| errs.push(FieldError::new(path, msg));
        if self.endpoint.trim().is_empty() {
            err("endpoint", "missing; set your AMP remote write URL".into());
        } else if let Some(m) = check_url(&self.endpoint) {
            err("endpoint", m);
        }
        for (name, value) in &self.headers {
            let path = format!("headers.{name}");
            if RESERVED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
                err(
                    &path,
                    "is set by the exporter and cannot be overridden; remove it".into(),
                );
            } else if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
                err(&path, "is not a valid HTTP header name".into());
            } else if http::HeaderValue::from_str(value).is_err() {
                err(&path, "the value holds characters HTTP headers cannot carry".into());
            }
            if name.eq_ignore_ascii_case("authorization") && self.auth.is_some() {
                err(
                    &path,
                    "conflicts with auth.authenticator, which signs the request; remove one".into(),
                );
            }
        }
        if self.timeout.is_zero() {
            err("timeout", "must be greater than 0, like 5s".into());
        }
        if self.tls.cert_file.is_some() != self.tls.key_file.is_some() {
            err("tls", "cert_file and key_file must be set together".into());
        }
        for (name, value) in &self.external_labels {
            let path = format!("external_labels.{name}");
            if name.is_empty() {
                err("external_labels", "has an empty label name; remove it".into());
            } else if !nodetel_core::labels::is_valid_label_name(name) {
                err(&path, "is not a valid label name; use [a-zA-Z_][a-zA-Z0-9_]*".into());
            }
            if value.is_empty() {
                err(&path, "has an empty value; set one or remove the label".into());
            }
        }
        if let Some(a) = &self.auth
            && a.authenticator.trim().is_empty()
        {
            err(
                "auth.authenticator",
                "is empty; name a sigv4auth extension, like sigv4auth".into(),
            );
        }
        let r = &self.retry_on_failure;
        if r.initial_interval.is_zero() {
            err(
                "retry_on_failure.initial_interval",
                "must be greater than 0, like 50ms".into(),
            );
        }
        if r.max_interval < r.initial_interval {
            err(
                "retry_on_failure.max_interval",
                "must not be smaller than initial_interval".into(),
            );
        }
        if !(r.multiplier.is_finite() && r.multiplier >= 1.0) {
            err("retry_on_failure.multiplier", "must be a number >= 1, like 1.5".into());
        }
        if !(0.0..=1.0).contains(&r.randomization_factor) {
            err(
                "retry_on_failure.randomization_factor",
                "must be between 0 and 1, like 0.5".into(),
            );
        }
        if self.remote_write_queue.queue_size == 0 {
            err("remote_write_queue.queue_size", "must be at least 1".into());
        }
        if self.remote_write_queue.num_consumers == 0 {
            err("remote_write_queue.num_consumers", "must be at least 1".into());
        }
        if self.max_batch_size_bytes < 1024 {
            err("max_batch_size_bytes", "must be at least 1024, like 3000000".into());
        }
        if self.max_samples_per_send == 0 {
            err("max_samples_per_send", "must be at least 1, like 2000".into());
        }
        if self.batch_send_deadline.is_zero() {
            err("batch_send_deadline", "must be greater than 0, like 1s".into());
        }
        if !self.namespace.is_empty() && !nodetel_core::labels::is_valid_metric_name(&self.namespace) {
            err(
                "namespace",
                "must be a valid metric name prefix, like [a-zA-Z_:][a-zA-Z0-9_:]*".into(),
            );
        }
        if self.compression != "snappy" {
            err(
                "compression",
                "only snappy is allowed by remote write 1.0; remove it or set snappy".into(),
            );
        }
        if self.protobuf_message != "prometheus.WriteRequest" {
            err(
                "protobuf_message",
                "only prometheus.WriteRequest (remote write 1.0) is supported; remove it".into(),
            );
        }
        if let Some(0) = self.shards.min {
            err("shards.min", "must be at least 1".into());
        }
        if let (Some(min), Some(max)) = (self.shards.min, self.shards.max)
            && max < min
        {
            err("shards.max", "must not be smaller than shards.min".into());
        }
        if let Some(0) = self.shards.max {
            err("shards.max", "must be at least 1".into());
        }
        if self.queue.directory.as_ref().is_some_and(|d| d.as_os_str().is_empty()) {
            err("queue.directory", "is empty; set a directory or remove the key".into());
        }
        if self.queue.max_size_bytes < 1 << 20 {
            err("queue.max_size_bytes", "must be at least 1048576 (1 MiB)".into());
        }
        for (key, hint) in self.unsupported() {
            err(key, format!("is not supported by nodetel; remove it ({hint})"));
        }
        errs
    }
}

/// `assume_role:` of `sigv4auth`.
#[derive(Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AssumeRoleConfig {
    /// Role to assume; unset means use the default credentials directly.
    pub arn: String,
    /// Region of the STS endpoint (default: the signing region).
    pub sts_region: String,
    /// Session name (default `nodetel`).
    pub session_name: String,
    /// External id, if the role's trust policy asks for one.
    pub external_id: String,
    web_identity_token_file: Option<IgnoredAny>,
}

/// The `sigv4auth` extension's section.
#[derive(Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SigV4AuthConfig {
    /// Signing region; inferred from an `aps-workspaces.<region>.amazonaws.com` endpoint, then
    /// from the AWS environment, when empty.
    pub region: String,
    /// Signing service name.
    pub service: String,
    /// Optional role to assume.
    pub assume_role: AssumeRoleConfig,
}

impl Default for SigV4AuthConfig {
    fn default() -> Self {
        SigV4AuthConfig {
            region: String::new(),
            service: "aps".into(),
            assume_role: AssumeRoleConfig::default(),
        }
    }
}

impl Validate for SigV4AuthConfig {
    fn validate(&self) -> Vec<FieldError> {
        let mut errs = Vec::new();
        let region_ok = |r: &str| {
            r.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        };
        if !region_ok(&self.region) {
            errs.push(FieldError::new("region", "is not an AWS region name, like us-west-2"));
        }
        if self.service.trim().is_empty() {
            errs.push(FieldError::new("service", "is empty; AMP uses aps"));
        }
        let a = &self.assume_role;
        if !a.arn.is_empty() && !a.arn.starts_with("arn:") {
            errs.push(FieldError::new(
                "assume_role.arn",
                "is not an ARN; use arn:aws:iam::<account>:role/<name>",
            ));
        }
        if !region_ok(&a.sts_region) {
            errs.push(FieldError::new(
                "assume_role.sts_region",
                "is not an AWS region name, like us-west-2",
            ));
        }
        if a.arn.is_empty() && (!a.session_name.is_empty() || !a.sts_region.is_empty() || !a.external_id.is_empty()) {
            errs.push(FieldError::new(
                "assume_role.arn",
                "missing; the other assume_role keys need a role",
            ));
        }
        if a.web_identity_token_file.is_some() {
            errs.push(FieldError::new(
                "assume_role.web_identity_token_file",
                "is not supported by nodetel; remove it (set AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN \
                 in the environment instead)",
            ));
        }
        errs
    }
}

impl nodetel_core::config::ExtensionConfig for SigV4AuthConfig {
    const TYPE: &'static str = "sigv4auth";
}

/// The region of an `aps-workspaces.<region>.amazonaws.com` endpoint.
pub fn region_from_endpoint(endpoint: &str) -> Option<String> {
    let url = reqwest::Url::parse(endpoint).ok()?;
    let host = url.host_str()?;
    let rest = host.strip_prefix("aps-workspaces.")?;
    let (region, _) = rest.split_once('.')?;
    (!region.is_empty()).then(|| region.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(errs: &[FieldError]) -> Vec<&str> {
        errs.iter().map(|e| e.path.as_str()).collect()
    }

    #[test]
    fn missing_endpoint_says_what_to_set() {
        let errs = RemoteWriteConfig::default().validate();
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(errs[0].path, "endpoint");
        assert_eq!(errs[0].message, "missing; set your AMP remote write URL");
    }

    #[test]
    fn defaults_follow_otelcol() {
        let c = RemoteWriteConfig::for_endpoint(
            "https://aps-workspaces.us-west-2.amazonaws.com/workspaces/ws-1/api/v1/remote_write",
        );
        assert!(c.validate().is_empty());
        assert_eq!(c.timeout, Duration::from_secs(5));
        assert_eq!(c.retry_on_failure.initial_interval, Duration::from_millis(50));
        assert_eq!(c.retry_on_failure.max_elapsed_time, Duration::from_secs(300));
        assert_eq!(c.remote_write_queue.queue_size, 10_000);
        assert_eq!(c.max_batch_size_bytes, 3_000_000);
        assert_eq!((c.min_shards(), c.max_shards()), (1, 5));
        assert!(!c.send_metadata);
    }

    #[test]
    fn every_problem_is_reported() {
        let mut c = RemoteWriteConfig::for_endpoint("ftp://x");
        c.headers.insert("Content-Type".into(), "text/plain".into());
        c.external_labels.insert("cluster".into(), "".into());
        c.external_labels.insert("bad-name".into(), "x".into());
        c.retry_on_failure.randomization_factor = 2.0;
        c.compression = "zstd".into();
        c.shards.min = Some(4);
        c.shards.max = Some(2);
        c.wal = Some(IgnoredAny);
        let errs = c.validate();
        let p = paths(&errs);
        for want in [
            "endpoint",
            "headers.Content-Type",
            "external_labels.cluster",
            "external_labels.bad-name",
            "retry_on_failure.randomization_factor",
            "compression",
            "shards.max",
            "wal",
        ] {
            assert!(p.contains(&want), "{want} missing from {p:?}");
        }
        let wal = errs.iter().find(|e| e.path == "wal").unwrap();
        assert!(wal.message.contains("not supported"), "{}", wal.message);
    }

    #[test]
    fn region_is_read_from_amp_endpoints_only() {
        assert_eq!(
            region_from_endpoint("https://aps-workspaces.eu-west-1.amazonaws.com/workspaces/ws-1/api/v1/remote_write"),
            Some("eu-west-1".into())
        );
        assert_eq!(region_from_endpoint("https://example.com/api/v1/write"), None);
        assert_eq!(region_from_endpoint("not a url"), None);
    }

    #[test]
    fn sigv4_config_checks_role_and_region() {
        assert!(SigV4AuthConfig::default().validate().is_empty());
        let c = SigV4AuthConfig {
            region: "US West".into(),
            assume_role: AssumeRoleConfig {
                arn: "role/x".into(),
                ..AssumeRoleConfig::default()
            },
            ..SigV4AuthConfig::default()
        };
        assert_eq!(paths(&c.validate()), ["region", "assume_role.arn"]);
    }
}
