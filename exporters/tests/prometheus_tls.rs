//! The `prometheus` pull endpoint over TLS, on loopback with certificates made by `openssl`:
//! served to HTTPS scrapers that trust the CA, not to plain-text ones; with `client_ca_file` only
//! to scrapers with a client certificate from that CA (checked with reqwest and with a real
//! Prometheus); `min_version: "1.3"` refuses TLS 1.2 clients; bad files fail validation with the
//! file named.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../receivers/tests/tls_support/mod.rs"]
mod tls_support;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use nodetel_core::config::{BuildContext, ExporterConfig, Validate};
use nodetel_core::labels::METRIC_NAME;
use nodetel_core::telemetry::Registry;
use nodetel_core::{Batch, ComponentId, Exporter, Labels, Sample};
use nodetel_exporters::prometheus::PrometheusConfig;
use tls_support::Certs;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A pull endpoint serving one series, `nodetel_tls_check 42`.
async fn serve(tls: &str) -> (u16, Box<dyn Exporter>) {
    let port = free_port();
    let cfg: PrometheusConfig =
        serde_yaml_ng::from_str(&format!("{{endpoint: '127.0.0.1:{port}', tls: {tls}}}")).unwrap();
    assert!(cfg.validate().is_empty(), "{:?}", cfg.validate());
    let cx = BuildContext {
        id: ComponentId::parse("prometheus").unwrap(),
        hostname: "h1".into(),
        registry: Arc::new(Registry::new()),
        extensions: Arc::new(BTreeMap::new()),
    };
    let mut exporter = cfg.build(&cx).unwrap();
    let mut batch = Batch::new();
    batch.push(
        Labels::from_pairs([(METRIC_NAME, "nodetel_tls_check")]).unwrap(),
        Sample::new(1, 42.0),
    );
    exporter.export(Arc::new(batch)).await.unwrap();
    (port, exporter)
}

async fn scrape(port: u16, ca: &Path, identity: Option<(&Path, &Path)>) -> Result<String, String> {
    let mut client = reqwest::Client::builder()
        .use_rustls_tls()
        .add_root_certificate(reqwest::Certificate::from_pem(&Certs::read(ca)).unwrap())
        .timeout(Duration::from_secs(5));
    if let Some((cert, key)) = identity {
        client = client.identity(reqwest::Identity::from_pem(&Certs::identity_pem(cert, key)).unwrap());
    }
    let response = client
        .build()
        .unwrap()
        .get(format!("https://127.0.0.1:{port}/metrics"))
        .send()
        .await
        .map_err(|e| format!("{e:?}"))?;
    assert_eq!(response.status(), 200);
    response.text().await.map_err(|e| format!("{e:?}"))
}

#[tokio::test]
async fn the_pull_endpoint_is_served_over_tls_and_not_in_plain_text() {
    let certs = tls_support::make();
    let (port, _exporter) = serve(&certs.server_yaml(false)).await;
    assert_eq!(scrape(port, &certs.ca, None).await.unwrap(), "nodetel_tls_check 42\n");
    let plain = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .timeout(Duration::from_secs(5))
        .send()
        .await;
    assert!(
        plain.as_ref().map_or(true, |r| !r.status().is_success()),
        "a plain-text scrape was served: {plain:?}"
    );
    // A scraper that does not trust the server's CA stops in the handshake.
    let other_ca = certs.dir.path().join("other-ca.pem");
    assert!(scrape(port, &other_ca, None).await.is_err());
}

#[tokio::test]
async fn with_client_ca_file_only_scrapers_with_a_certificate_from_that_ca_are_served() {
    let certs = tls_support::make();
    let (port, _exporter) = serve(&certs.server_yaml(true)).await;
    assert!(
        scrape(port, &certs.ca, None).await.is_err(),
        "served without a client certificate"
    );
    let stranger = Some((certs.stranger_cert.as_path(), certs.stranger_key.as_path()));
    assert!(
        scrape(port, &certs.ca, stranger).await.is_err(),
        "served to another CA's client"
    );
    let trusted = Some((certs.client_cert.as_path(), certs.client_key.as_path()));
    assert_eq!(
        scrape(port, &certs.ca, trusted).await.unwrap(),
        "nodetel_tls_check 42\n"
    );
}

#[tokio::test]
async fn min_version_1_3_refuses_tls_1_2_clients() {
    let certs = tls_support::make();
    let tls = certs.server_yaml(false).replace('}', ", min_version: '1.3'}");
    let (port, _exporter) = serve(&tls).await;
    let client = |max: reqwest::tls::Version| {
        reqwest::Client::builder()
            .use_rustls_tls()
            .add_root_certificate(reqwest::Certificate::from_pem(&Certs::read(&certs.ca)).unwrap())
            .max_tls_version(max)
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap()
    };
    let url = format!("https://127.0.0.1:{port}/metrics");
    let old = client(reqwest::tls::Version::TLS_1_2).get(&url).send().await;
    assert!(old.is_err(), "a TLS 1.2 client was served: {old:?}");
    let new = client(reqwest::tls::Version::TLS_1_3).get(&url).send().await.unwrap();
    assert_eq!(new.text().await.unwrap(), "nodetel_tls_check 42\n");
}

#[test]
fn bad_files_fail_validation_with_the_file_named() {
    let certs = tls_support::make();
    let missing = certs.dir.path().join("nope.pem");
    let cfg: PrometheusConfig = serde_yaml_ng::from_str(&format!(
        "{{tls: {{cert_file: '{}', key_file: '{}', client_ca_file: '{}'}}}}",
        certs.server_cert.display(),
        certs.server_key.display(),
        missing.display()
    ))
    .unwrap();
    let errors = cfg.validate();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].path, "tls.client_ca_file");
    assert!(
        errors[0].message.contains(&missing.display().to_string()),
        "{}",
        errors[0]
    );
    let cfg: PrometheusConfig = serde_yaml_ng::from_str(&format!(
        "{{tls: {{cert_file: '{}', key_file: '{}'}}}}",
        certs.server_key.display(),
        certs.server_key.display()
    ))
    .unwrap();
    let errors = cfg.validate();
    assert_eq!(errors[0].path, "tls.cert_file");
    assert!(errors[0].message.contains("server-key.pem"), "{}", errors[0]);
}

/// A real Prometheus scrapes the endpoint over mutual TLS.
#[tokio::test]
async fn prometheus_scrapes_the_endpoint_over_mutual_tls() {
    if !Path::new("/usr/bin/prometheus").exists() {
        eprintln!("\n\n!!!!!!!! SKIPPED: /usr/bin/prometheus is missing; run scripts/install-test-deps.\n\n");
        return;
    }
    let certs = tls_support::make();
    let (port, _exporter) = serve(&certs.server_yaml(true)).await;
    let d = certs.dir.path();
    let web = free_port();
    let yaml = format!(
        "global: {{scrape_interval: 1s}}\nscrape_configs:\n- job_name: nodetel\n  scheme: https\n  tls_config: {{ca_file: '{}', cert_file: '{}', key_file: '{}'}}\n  static_configs: [{{targets: ['127.0.0.1:{port}']}}]\n",
        certs.ca.display(),
        certs.client_cert.display(),
        certs.client_key.display()
    );
    std::fs::write(d.join("prometheus.yml"), yaml).unwrap();
    let mut child = std::process::Command::new("/usr/bin/prometheus")
        .arg(format!("--config.file={}", d.join("prometheus.yml").display()))
        .arg(format!("--storage.tsdb.path={}", d.join("data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{web}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let query = format!("http://127.0.0.1:{web}/api/v1/query?query=nodetel_tls_check");
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last = String::new();
    let found = loop {
        if let Ok(r) = reqwest::get(&query).await {
            last = r.text().await.unwrap_or_default();
            if last.contains("\"42\"") {
                break true;
            }
        }
        if Instant::now() > deadline {
            break false;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let _ = child.kill();
    let _ = child.wait();
    assert!(found, "Prometheus never stored the scraped value: {last}");
}
