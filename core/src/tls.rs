//! Server-side TLS for the listeners that may be opened beyond loopback (the `otlp` receiver and
//! the `prometheus` pull exporter), in the OpenTelemetry Collector's `configtls` shape:
//!
//! ```yaml
//! tls:
//!   cert_file: /etc/nodetel/tls/server.pem
//!   key_file: /etc/nodetel/tls/server-key.pem
//!   client_ca_file: /etc/nodetel/tls/clients-ca.pem   # optional: clients must present a certificate
//!   min_version: "1.2"                                 # "1.2" (default) or "1.3"
//! ```
//!
//! Certificates and keys are PEM files, read and checked when the config is validated, so a
//! wrong path or a key that does not match its certificate stops `nodetel validate` and the
//! start with the file named, instead of failing at the first connection.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde::Deserialize;
use tokio::net::TcpStream;

use crate::config::{FieldError, Validate};

pub use tokio_rustls::TlsAcceptor;
pub use tokio_rustls::server::TlsStream;

/// How long a client may take to complete the TLS handshake. A client that connects and sends
/// nothing must not hold a task and a descriptor forever.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The `tls:` section of a listener.
#[derive(Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ServerTlsConfig {
    /// The server's certificate chain (PEM), leaf first.
    pub cert_file: PathBuf,
    /// The private key of the leaf certificate (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
    /// CA certificates (PEM) that sign client certificates. When set, every client must present
    /// a certificate signed by one of them (mutual TLS); others are refused in the handshake.
    #[serde(default)]
    pub client_ca_file: Option<PathBuf>,
    /// The oldest TLS version accepted: "1.2" (default) or "1.3".
    #[serde(default)]
    pub min_version: Option<String>,
}

/// Why a TLS section cannot be used. Each variant names the key and the file.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file cannot be read.
    #[error("cannot read {key} {file:?}: {source}")]
    Read {
        /// The config key (`cert_file`, `key_file`, `client_ca_file`).
        key: &'static str,
        /// The file.
        file: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file does not hold what it should.
    #[error("{key} {file:?}: {what}")]
    Content {
        /// The config key.
        key: &'static str,
        /// The file.
        file: PathBuf,
        /// What is wrong with it.
        what: String,
    },
    /// `min_version` is not one rustls speaks.
    #[error("min_version {0:?} is not supported; use \"1.2\" or \"1.3\" (older versions are insecure)")]
    Version(String),
}

impl TlsError {
    /// The config key the error is about.
    pub fn key(&self) -> &'static str {
        match self {
            TlsError::Read { key, .. } | TlsError::Content { key, .. } => key,
            TlsError::Version(_) => "min_version",
        }
    }
}

fn read(key: &'static str, file: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(file).map_err(|source| TlsError::Read {
        key,
        file: file.to_owned(),
        source,
    })
}

fn certificates(key: &'static str, file: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(key, file)?;
    let content = |what: String| TlsError::Content {
        key,
        file: file.to_owned(),
        what,
    };
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| content(format!("not PEM certificates: {e}")))?;
    if certs.is_empty() {
        return Err(content("holds no PEM certificate (-----BEGIN CERTIFICATE-----)".into()));
    }
    Ok(certs)
}

fn private_key(file: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = read("key_file", file)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| TlsError::Content {
        key: "key_file",
        file: file.to_owned(),
        what: format!("holds no usable PEM private key: {e}"),
    })
}

/// The cryptography used by nodetel's servers. Chosen explicitly: more than one provider is
/// compiled in (the AWS SDK brings its own), so rustls cannot pick a default.
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

impl ServerTlsConfig {
    fn versions(&self) -> Result<&'static [&'static rustls::SupportedProtocolVersion], TlsError> {
        static ALL: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS13, &rustls::version::TLS12];
        static TLS13: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS13];
        match self.min_version.as_deref() {
            None | Some("1.2") => Ok(ALL),
            Some("1.3") => Ok(TLS13),
            Some(other) => Err(TlsError::Version(other.to_owned())),
        }
    }

    /// Reads the files and builds the rustls server config, offering `alpn` protocols
    /// (`h2` for gRPC, `http/1.1` for HTTP/1 servers).
    pub fn load(&self, alpn: &[&[u8]]) -> Result<Arc<rustls::ServerConfig>, TlsError> {
        let versions = self.versions()?;
        let certs = certificates("cert_file", &self.cert_file)?;
        let key = private_key(&self.key_file)?;
        let provider = provider();
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(versions)
            .map_err(|e| TlsError::Version(format!("{:?}: {e}", self.min_version)))?;
        let builder = match &self.client_ca_file {
            None => builder.with_no_client_auth(),
            Some(file) => {
                let content = |what: String| TlsError::Content {
                    key: "client_ca_file",
                    file: file.clone(),
                    what,
                };
                let mut roots = rustls::RootCertStore::empty();
                for cert in certificates("client_ca_file", file)? {
                    roots
                        .add(cert)
                        .map_err(|e| content(format!("not a usable CA certificate: {e}")))?;
                }
                let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                    .build()
                    .map_err(|e| content(format!("cannot verify clients with these certificates: {e}")))?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let mut config = builder.with_single_cert(certs, key).map_err(|e| TlsError::Content {
            key: "key_file",
            file: self.key_file.clone(),
            what: format!("does not go with cert_file {:?}: {e}", self.cert_file),
        })?;
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Ok(Arc::new(config))
    }

    /// [`ServerTlsConfig::load`] as an acceptor for tokio streams.
    pub fn acceptor(&self, alpn: &[&[u8]]) -> Result<TlsAcceptor, TlsError> {
        Ok(TlsAcceptor::from(self.load(alpn)?))
    }

    /// [`Validate::validate`] with each path under `prefix` (`protocols.grpc.tls`).
    pub fn validate_at(&self, prefix: &str) -> Vec<FieldError> {
        self.validate()
            .into_iter()
            .map(|e| FieldError::new(format!("{prefix}.{}", e.path), e.message))
            .collect()
    }
}

impl Validate for ServerTlsConfig {
    /// Unlike most sections this reads files: a listener that cannot present its certificate
    /// must be caught by `nodetel validate`, not by the first client.
    fn validate(&self) -> Vec<FieldError> {
        match self.load(&[]) {
            Ok(_) => Vec::new(),
            Err(e) => vec![FieldError::new(e.key(), e.to_string())],
        }
    }
}

/// Runs the TLS handshake on an accepted connection, giving up after [`HANDSHAKE_TIMEOUT`].
pub async fn handshake(acceptor: &TlsAcceptor, stream: TcpStream) -> std::io::Result<TlsStream<TcpStream>> {
    handshake_within(acceptor, stream, HANDSHAKE_TIMEOUT).await
}

/// [`handshake`] with another timeout.
pub async fn handshake_within(
    acceptor: &TlsAcceptor,
    stream: TcpStream,
    timeout: Duration,
) -> std::io::Result<TlsStream<TcpStream>> {
    match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
        Ok(r) => r,
        Err(_) => Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("the TLS handshake did not finish within {} s", timeout.as_secs_f64()),
        )),
    }
}

/// Logs one warning when `component` listens on `addr`, which is not loopback, without `tls`:
/// anyone who can reach the node can then send data or read it. Not refused, since some
/// clusters (HyperPod among them) rely on plain listeners on the node's network.
pub fn warn_if_exposed(component: &str, addr: SocketAddr, tls: bool) -> bool {
    let exposed = !addr.ip().is_loopback() && !tls;
    if exposed {
        tracing::warn!(
            component,
            %addr,
            "Listening beyond loopback without TLS: anyone who can reach this address can connect. \
             Set tls (cert_file, key_file and client_ca_file) or bind 127.0.0.1."
        );
    }
    exposed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_files_and_bad_versions_are_named() {
        let c = ServerTlsConfig {
            cert_file: "/nonexistent/cert.pem".into(),
            key_file: "/nonexistent/key.pem".into(),
            client_ca_file: None,
            min_version: None,
        };
        let errors = c.validate_at("tls");
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].path, "tls.cert_file");
        assert!(
            errors[0].message.contains("/nonexistent/cert.pem"),
            "{}",
            errors[0].message
        );
        let c = ServerTlsConfig {
            min_version: Some("1.1".into()),
            ..c
        };
        assert_eq!(c.validate()[0].path, "min_version");
    }

    #[test]
    fn a_file_without_certificates_is_refused() {
        let dir = std::env::temp_dir().join(format!("nodetel-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("empty.pem");
        std::fs::write(&file, "not pem\n").unwrap();
        let c = ServerTlsConfig {
            cert_file: file.clone(),
            key_file: file.clone(),
            client_ca_file: None,
            min_version: None,
        };
        let e = c.validate();
        assert_eq!(e[0].path, "cert_file");
        assert!(e[0].message.contains("no PEM certificate"), "{}", e[0].message);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn only_non_loopback_plain_listeners_are_warned_about() {
        let any: SocketAddr = "0.0.0.0:4317".parse().unwrap();
        let lo: SocketAddr = "127.0.0.1:4317".parse().unwrap();
        assert!(warn_if_exposed("otlp", any, false));
        assert!(!warn_if_exposed("otlp", any, true));
        assert!(!warn_if_exposed("otlp", lo, false));
    }
}
