//! The `otlp` receiver over TLS, on loopback with certificates made by `openssl`: OTLP/gRPC and
//! OTLP/HTTP deliver over TLS and refuse plain-text clients; with `client_ca_file` a client
//! without a certificate from that CA is refused in the handshake and counted as an error, and
//! one with such a certificate is served (and still identified as the sending process); bad
//! certificate files fail validation with the file named; clients that stay silent are cut off,
//! and so are peers that stop answering HTTP/2 keepalive pings.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod otlp_support;
mod tls_support;

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use nodetel_core::config::Validate;
use nodetel_receivers::otlp::OtlpConfig;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use opentelemetry_proto::tonic::metrics::v1::number_data_point::Value;
use opentelemetry_proto::tonic::metrics::v1::{Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics};
use otlp_support::{Running, free_port, python_has_sdk, sender_script};
use prost::Message;
use tls_support::Certs;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

/// A receiver in a real pipeline; `grpc_tls` and `http_tls` are `tls:` flow maps or empty.
struct Server(Running);

impl std::ops::Deref for Server {
    type Target = Running;

    fn deref(&self) -> &Running {
        &self.0
    }
}

impl Server {
    async fn start(grpc_tls: &str, http_tls: &str) -> Server {
        let tls = |t: &str| {
            if t.is_empty() {
                String::new()
            } else {
                format!(", tls: {t}")
            }
        };
        Server::start_with(&tls(grpc_tls), &tls(http_tls)).await
    }

    /// `grpc_keys` and `http_keys` are more keys for each protocol's flow map (`, key: value`).
    async fn start_with(grpc_keys: &str, http_keys: &str) -> Server {
        let (grpc, http) = (free_port(), free_port());
        let yaml = format!(
            "protocols:\n  grpc: {{endpoint: '127.0.0.1:{grpc}'{grpc_keys}}}\n  http: {{endpoint: '127.0.0.1:{http}'{http_keys}}}\n"
        );
        let s = Server(Running::from_section(grpc, http, &yaml).await);
        s.wait_bound().await;
        s
    }

    /// The latest value of each delivered series named `name`, and the batches' sender pids.
    fn delivered(&self, name: &str) -> (Vec<f64>, Vec<Option<u32>>) {
        let seen = self.seen.lock().unwrap();
        let values = seen
            .iter()
            .flat_map(|b| b.series.iter())
            .filter(|s| s.labels.get("__name__") == Some(name))
            .flat_map(|s| s.samples.iter().map(|x| x.value))
            .collect();
        let senders = seen
            .iter()
            .filter(|b| b.series.iter().any(|s| s.labels.get("__name__") == Some(name)))
            .map(|b| b.sender_pid)
            .collect();
        (values, senders)
    }

    /// Waits (5 s at most) until the error count reaches `n`, then checks it stays there.
    async fn expect_errors(&self, n: u64) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.telemetry.errors() < n && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(self.telemetry.errors(), n, "errors counted by the receiver");
    }

    async fn stop(self) {
        self.0.stop().await;
    }
}

fn gauge(name: &str, v: f64) -> ExportMetricsServiceRequest {
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![Metric {
                    name: name.into(),
                    data: Some(Data::Gauge(Gauge {
                        data_points: vec![NumberDataPoint {
                            value: Some(Value::AsDouble(v)),
                            ..Default::default()
                        }],
                    })),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// One gRPC export over TLS, trusting `ca`, presenting `identity` (cert, key) when given.
async fn grpc_export(
    addr: SocketAddr,
    ca: &Path,
    identity: Option<(&Path, &Path)>,
    request: ExportMetricsServiceRequest,
) -> Result<(), String> {
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(Certs::read(ca)))
        .domain_name("127.0.0.1");
    if let Some((cert, key)) = identity {
        tls = tls.identity(Identity::from_pem(Certs::read(cert), Certs::read(key)));
    }
    let channel = Channel::from_shared(format!("https://{addr}"))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(5))
        .connect()
        .await
        .map_err(|e| format!("connect: {e:?}"))?;
    MetricsServiceClient::new(channel)
        .export(request)
        .await
        .map(|_| ())
        .map_err(|e| format!("export: {e}"))
}

/// One OTLP/HTTP export over TLS with reqwest; the HTTP status, or the transport error.
async fn http_export(
    addr: SocketAddr,
    ca: &Path,
    identity: Option<(&Path, &Path)>,
    request: ExportMetricsServiceRequest,
) -> Result<u16, String> {
    let mut client = reqwest::Client::builder()
        .use_rustls_tls()
        .add_root_certificate(reqwest::Certificate::from_pem(&Certs::read(ca)).unwrap())
        .timeout(Duration::from_secs(5));
    if let Some((cert, key)) = identity {
        client = client.identity(reqwest::Identity::from_pem(&Certs::identity_pem(cert, key)).unwrap());
    }
    client
        .build()
        .unwrap()
        .post(format!("https://{addr}/v1/metrics"))
        .header("content-type", "application/x-protobuf")
        .body(request.encode_to_vec())
        .send()
        .await
        .map(|r| r.status().as_u16())
        .map_err(|e| format!("{e:?}"))
}

#[tokio::test]
async fn both_protocols_deliver_over_tls_and_refuse_plain_text_clients() {
    let certs = tls_support::make();
    let tls = certs.server_yaml(false);
    let s = Server::start(&tls, &tls).await;

    grpc_export(s.grpc, &certs.ca, None, gauge("over_grpc", 1.0))
        .await
        .unwrap();
    assert_eq!(
        http_export(s.http, &certs.ca, None, gauge("over_http", 2.0)).await,
        Ok(200)
    );
    assert_eq!(s.delivered("over_grpc").0, [1.0]);
    assert_eq!(s.delivered("over_http").0, [2.0]);
    s.expect_errors(0).await;

    // Plain text to a TLS port: a gRPC client and an HTTP client, each refused and counted.
    let plain = Channel::from_shared(format!("http://{}", s.grpc))
        .unwrap()
        .connect_lazy();
    let refused = MetricsServiceClient::new(plain).export(gauge("plain_grpc", 3.0)).await;
    assert!(
        refused.is_err(),
        "a plain-text gRPC client was served by a TLS listener"
    );
    let refused = reqwest::Client::new()
        .post(format!("http://{}/v1/metrics", s.http))
        .header("content-type", "application/x-protobuf")
        .body(gauge("plain_http", 4.0).encode_to_vec())
        .send()
        .await;
    assert!(
        refused.as_ref().map_or(true, |r| !r.status().is_success()),
        "a plain-text HTTP client was served by a TLS listener: {refused:?}"
    );
    s.expect_errors(2).await;
    assert!(s.delivered("plain_grpc").0.is_empty() && s.delivered("plain_http").0.is_empty());

    // A client that does not trust the server's CA gives up in the handshake.
    let stranger_ca = certs.dir.path().join("other-ca.pem");
    assert!(
        grpc_export(s.grpc, &stranger_ca, None, gauge("distrust", 5.0))
            .await
            .is_err()
    );
    s.stop().await;
}

#[tokio::test]
async fn with_client_ca_file_only_clients_with_a_certificate_from_that_ca_are_served() {
    let certs = tls_support::make();
    let tls = certs.server_yaml(true);
    let s = Server::start(&tls, &tls).await;
    let trusted = Some((certs.client_cert.as_path(), certs.client_key.as_path()));
    let stranger = Some((certs.stranger_cert.as_path(), certs.stranger_key.as_path()));

    let e = grpc_export(s.grpc, &certs.ca, None, gauge("anonymous_grpc", 1.0)).await;
    assert!(e.is_err(), "a gRPC client without a certificate was served");
    s.expect_errors(1).await;
    let e = grpc_export(s.grpc, &certs.ca, stranger, gauge("stranger_grpc", 1.0)).await;
    assert!(
        e.is_err(),
        "a gRPC client with a certificate from another CA was served"
    );
    s.expect_errors(2).await;
    let e = http_export(s.http, &certs.ca, None, gauge("anonymous_http", 1.0)).await;
    assert!(e.is_err(), "an HTTP client without a certificate was served: {e:?}");
    s.expect_errors(3).await;
    let e = http_export(s.http, &certs.ca, stranger, gauge("stranger_http", 1.0)).await;
    assert!(
        e.is_err(),
        "an HTTP client with a certificate from another CA was served: {e:?}"
    );
    s.expect_errors(4).await;
    for name in ["anonymous_grpc", "stranger_grpc", "anonymous_http", "stranger_http"] {
        assert!(s.delivered(name).0.is_empty(), "{name} was delivered");
    }

    grpc_export(s.grpc, &certs.ca, trusted, gauge("trusted_grpc", 7.0))
        .await
        .unwrap();
    assert_eq!(
        http_export(s.http, &certs.ca, trusted, gauge("trusted_http", 8.0)).await,
        Ok(200)
    );
    let (values, senders) = s.delivered("trusted_grpc");
    assert_eq!(values, [7.0]);
    // Per-connection sender lookup still works under TLS: this test process sent it.
    assert_eq!(senders, [Some(std::process::id())]);
    let (values, senders) = s.delivered("trusted_http");
    assert_eq!(values, [8.0]);
    assert_eq!(senders, [Some(std::process::id())]);
    s.expect_errors(4).await;
    s.stop().await;
}

fn parse(yaml: &str) -> OtlpConfig {
    serde_yaml_ng::from_str(yaml).unwrap()
}

#[test]
fn bad_certificate_files_fail_validation_with_the_file_and_key_named() {
    let certs = tls_support::make();
    let missing = certs.dir.path().join("missing.pem");
    let (cert, key) = (certs.server_cert.display(), certs.server_key.display());
    let cfg = parse(&format!(
        "protocols:\n  grpc: {{tls: {{cert_file: '{}', key_file: '{key}'}}}}\n  http: {{tls: {{cert_file: '{cert}', key_file: '{}'}}}}",
        missing.display(),
        missing.display()
    ));
    let errors = cfg.validate();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert_eq!(errors[0].path, "protocols.grpc.tls.cert_file");
    assert!(
        errors[0].message.contains(&missing.display().to_string()),
        "{}",
        errors[0]
    );
    assert!(errors[0].message.contains("No such file"), "{}", errors[0]);
    assert_eq!(errors[1].path, "protocols.http.tls.key_file");
    assert!(
        errors[1].message.contains(&missing.display().to_string()),
        "{}",
        errors[1]
    );

    // A key that is not the certificate's, a CA file with no certificate, an old TLS version.
    let cfg = parse(&format!(
        "protocols:\n  grpc: {{tls: {{cert_file: '{cert}', key_file: '{}'}}}}\n  http: {{tls: {{cert_file: '{cert}', key_file: '{key}', client_ca_file: '{key}'}}}}",
        certs.stranger_key.display()
    ));
    let errors = cfg.validate();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert_eq!(errors[0].path, "protocols.grpc.tls.key_file");
    assert!(errors[0].message.contains("stranger-key.pem"), "{}", errors[0]);
    assert_eq!(errors[1].path, "protocols.http.tls.client_ca_file");
    assert!(errors[1].message.contains("server-key.pem"), "{}", errors[1]);
    let cfg = parse(&format!(
        "protocols:\n  grpc: {{tls: {{cert_file: '{cert}', key_file: '{key}', min_version: '1.0'}}}}"
    ));
    assert_eq!(cfg.validate()[0].path, "protocols.grpc.tls.min_version");
    let typo = serde_yaml_ng::from_str::<OtlpConfig>("protocols: {grpc: {tls: {cert: a, key_file: b}}}");
    assert!(typo.is_err());
}

/// Reads until the server closes; how long that took.
async fn time_until_closed(mut stream: tokio::net::TcpStream) -> Duration {
    let started = Instant::now();
    let mut sink = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut sink)).await;
    started.elapsed()
}

#[tokio::test]
async fn silent_grpc_clients_are_cut_off_and_counted_while_others_are_served() {
    let certs = tls_support::make();
    let plain = Server::start("", "").await;
    let tls = Server::start(&certs.server_yaml(false), "").await;
    // Connects and says nothing; sends half the HTTP/2 preface; says nothing to a TLS port.
    let silent = tokio::net::TcpStream::connect(plain.grpc).await.unwrap();
    let mut half = tokio::net::TcpStream::connect(plain.grpc).await.unwrap();
    half.write_all(b"PRI * HTTP/2.0\r\n").await.unwrap();
    let silent_tls = tokio::net::TcpStream::connect(tls.grpc).await.unwrap();
    let waits = tokio::spawn(async move {
        tokio::join!(
            time_until_closed(silent),
            time_until_closed(half),
            time_until_closed(silent_tls)
        )
    });
    // Meanwhile both listeners serve others.
    let channel = Channel::from_shared(format!("http://{}", plain.grpc))
        .unwrap()
        .connect()
        .await
        .unwrap();
    MetricsServiceClient::new(channel)
        .export(gauge("meanwhile", 1.0))
        .await
        .unwrap();
    grpc_export(tls.grpc, &certs.ca, None, gauge("meanwhile", 2.0))
        .await
        .unwrap();
    let (a, b, c) = waits.await.unwrap();
    for (what, took) in [("silent", a), ("half a preface", b), ("silent over TLS", c)] {
        assert!(
            took > Duration::from_secs(8) && took < Duration::from_secs(15),
            "{what}: closed after {took:?}, expected about 10 s"
        );
    }
    plain.expect_errors(2).await;
    tls.expect_errors(1).await;
    assert_eq!(plain.delivered("meanwhile").0, [1.0]);
    assert_eq!(tls.delivered("meanwhile").0, [2.0]);
    plain.stop().await;
    tls.stop().await;
}

#[tokio::test]
async fn a_grpc_peer_that_stops_answering_keepalive_pings_is_disconnected() {
    let s = Server::start_with(", keepalive: {server_parameters: {time: 300ms, timeout: 300ms}}", "").await;
    // A client that sends the HTTP/2 preface and its SETTINGS, then never answers anything, as
    // a peer that vanished would.
    let mut gone = tokio::net::TcpStream::connect(s.grpc).await.unwrap();
    gone.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        .await
        .unwrap();
    let took = time_until_closed(gone).await;
    assert!(
        took < Duration::from_secs(5),
        "an unresponsive peer was held for {took:?}"
    );
    // A real client answers the pings and keeps its connection through several of them.
    let channel = Channel::from_shared(format!("http://{}", s.grpc))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = MetricsServiceClient::new(channel);
    client.export(gauge("alive", 1.0)).await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    client.export(gauge("alive", 2.0)).await.unwrap();
    assert_eq!(s.delivered("alive").0, [1.0, 2.0]);
    s.stop().await;
}

/// Runs the Python SDK sender over TLS; its pid, or its output when it failed.
async fn python_send(protocol: &str, endpoint: SocketAddr, certs: &Certs, identity: bool) -> Result<u32, String> {
    let mut cmd = Command::new("python3");
    // requests lets these replace the CA the exporter is given.
    cmd.env_remove("REQUESTS_CA_BUNDLE").env_remove("CURL_CA_BUNDLE");
    cmd.arg(sender_script())
        .args(["--protocol", protocol, "--endpoint", &endpoint.to_string()])
        .arg("--ca")
        .arg(&certs.ca);
    if identity {
        cmd.arg("--cert")
            .arg(&certs.client_cert)
            .arg("--key")
            .arg(&certs.client_key);
    }
    let child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let out = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    if out.status.success() {
        Ok(pid)
    } else {
        Err(format!(
            "{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

#[tokio::test]
async fn the_opentelemetry_python_sdk_exports_over_mutual_tls() {
    if !python_has_sdk() {
        eprintln!(
            "\n\n!!!!!!!! SKIPPED: python3 on PATH lacks opentelemetry-sdk / opentelemetry-exporter-otlp.\n\
             !!!!!!!! Run scripts/install-test-deps and put .venv-test/bin first on PATH (scripts/test does).\n\n"
        );
        return;
    }
    let certs = tls_support::make();
    let tls = certs.server_yaml(true);
    let s = Server::start(&tls, &tls).await;
    for protocol in ["grpc", "http"] {
        let endpoint = if protocol == "grpc" { s.grpc } else { s.http };
        let before = s.telemetry.errors();
        let refused = python_send(protocol, endpoint, &certs, false).await;
        assert!(
            refused.is_err(),
            "{protocol}: the SDK without a client certificate was served"
        );
        assert!(
            s.telemetry.errors() > before,
            "{protocol}: the refused SDK client was not counted"
        );
        s.seen.lock().unwrap().clear();
        let pid = python_send(protocol, endpoint, &certs, true).await.unwrap();
        let (values, senders) = s.delivered("train_loss");
        // One export per round and one more at shutdown.
        assert!(
            !values.is_empty() && values.iter().all(|v| *v == 2.5),
            "{protocol}: {values:?}"
        );
        assert!(
            senders.iter().all(|p| *p == Some(pid)),
            "{protocol}: {senders:?} is not {pid}"
        );
    }
    s.stop().await;
}
