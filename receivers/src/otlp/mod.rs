//! The `otlp` receiver: takes OpenTelemetry metrics over OTLP/gRPC and OTLP/HTTP and turns them
//! into Prometheus series, the way the OpenTelemetry Collector's Prometheus exporters name them.
//!
//! Training scripts report loss, tokens per second and step times through the OpenTelemetry SDK;
//! this receiver takes them on the node, so they leave with everything else. See [`OtlpConfig`]
//! for the options, `translate` for the naming and type rules, and README.md beside this file
//! for the operator's view.
//!
//! Limits and refusals:
//! - Bodies (gRPC messages, HTTP bodies before and after gzip) are capped at 4 MiB by default:
//!   gRPC answers `ResourceExhausted`/`OutOfRange`, HTTP 413.
//! - Malformed bodies get gRPC `Internal`/`InvalidArgument` or HTTP 400; an unknown
//!   `Content-Type` gets HTTP 415; traces and logs get gRPC `Unimplemented` or HTTP 404.
//! - An HTTP connection gets 10 s to send a request head and then 10 s for its body (else it is
//!   closed, or answered 408); a head over hyper's size limit is answered 431.
//! - Each refused request is counted in the receiver's `errors` self-metric; data points that
//!   cannot be translated (exponential histograms, out-of-order delta points) are counted as
//!   discarded (`rejected`) and reported back in the OTLP partial-success response.
//! - At most 200,000 series are tracked at once; points of further new series are rejected.
//! - With `tls` a protocol is served over TLS, and with `tls.client_ca_file` only to clients
//!   with a certificate from that CA; a failed handshake is counted in `errors`. A gRPC client
//!   gets 10 s for the handshake and then 10 s to send the HTTP/2 preface; an established gRPC
//!   connection that stops answering keepalive pings (after 60 s idle, 20 s to answer; see
//!   `keepalive.server_parameters`) is closed.
//! - A protocol bound beyond loopback without `tls` is served, with a warning at start.

mod attributes;
mod config;
mod grpc;
mod http;
mod ingest;
mod names;
mod sender;
mod translate;

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use nodetel_core::component::{BoxError, Receiver, ReceiverContext};
use nodetel_core::tls::ServerTlsConfig;

pub use config::{
    DEFAULT_MAX_BODY_BYTES, GrpcConfig, GrpcKeepalive, HttpConfig, KeepaliveServerParameters, OtlpConfig, Protocols,
    ResourceToTelemetry,
};

use ingest::Ingest;
pub use translate::{Translation, Translator};

/// Why the receiver could not start listening.
#[derive(Debug, thiserror::Error)]
#[error("otlp receiver cannot listen for {protocol} on {endpoint}: {source}")]
pub struct ListenError {
    protocol: &'static str,
    endpoint: String,
    source: std::io::Error,
}

/// The running receiver. The translator (label caches, delta accumulators) outlives restarts.
pub struct OtlpReceiver {
    config: OtlpConfig,
    translator: Arc<Mutex<Translator>>,
}

impl std::fmt::Debug for OtlpReceiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OtlpReceiver").field("config", &self.config).finish()
    }
}

impl OtlpReceiver {
    /// A receiver for a validated config.
    pub fn new(config: OtlpConfig) -> OtlpReceiver {
        let translator = Translator::new(&config);
        OtlpReceiver {
            config,
            translator: Arc::new(Mutex::new(translator)),
        }
    }
}

async fn listen(protocol: &'static str, endpoint: &str) -> Result<tokio::net::TcpListener, ListenError> {
    tokio::net::TcpListener::bind(endpoint)
        .await
        .map_err(|source| ListenError {
            protocol,
            endpoint: endpoint.to_owned(),
            source,
        })
}

fn tls_acceptor(
    protocol: &str,
    tls: Option<&ServerTlsConfig>,
    alpn: &[&[u8]],
) -> Result<Option<nodetel_core::tls::TlsAcceptor>, BoxError> {
    match tls {
        None => Ok(None),
        Some(t) => t
            .acceptor(alpn)
            .map(Some)
            .map_err(|e| format!("otlp receiver protocols.{protocol}.tls: {e}").into()),
    }
}

fn warn_if_exposed(cx: &ReceiverContext, protocol: &str, local: std::net::SocketAddr, tls: bool) {
    nodetel_core::tls::warn_if_exposed(&format!("receivers.{}.protocols.{protocol}", cx.id), local, tls);
}

#[async_trait]
impl Receiver for OtlpReceiver {
    async fn run(&mut self, cx: ReceiverContext) -> Result<(), BoxError> {
        let ingest = Arc::new(Ingest::new(
            self.translator.clone(),
            cx.output.clone(),
            self.config.identify_local_senders,
        ));
        // Load certificates and bind both before serving either, so a bad file or a taken port
        // fails the start as a whole.
        let grpc = match &self.config.protocols.grpc {
            Some(g) => Some((
                listen("gRPC", &g.endpoint).await?,
                g.max_recv_msg_size_mib * 1024 * 1024,
                tls_acceptor("grpc", g.tls.as_ref(), &[b"h2"])?,
                g.tls.is_some(),
                grpc::Timeouts {
                    ping_interval: g.keepalive.server_parameters.time,
                    ping_timeout: g.keepalive.server_parameters.timeout,
                    ..grpc::Timeouts::default()
                },
            )),
            None => None,
        };
        let http = match &self.config.protocols.http {
            Some(h) => Some((
                listen("HTTP", &h.endpoint).await?,
                h.max_request_body_size,
                tls_acceptor("http", h.tls.as_ref(), &[b"http/1.1"])?,
                h.tls.is_some(),
            )),
            None => None,
        };
        let stop = cx.shutdown.child_token();
        let mut tasks = tokio::task::JoinSet::new();
        if let Some((listener, max, tls, tls_on, timeouts)) = grpc {
            let local = listener.local_addr()?;
            tracing::info!(endpoint = %local, tls = tls_on, "OTLP/gRPC receiver listening.");
            warn_if_exposed(&cx, "grpc", local, tls_on);
            let (ingest, stop) = (ingest.clone(), stop.clone());
            tasks.spawn(async move {
                grpc::serve(listener, local, ingest, max, tls, timeouts, stop)
                    .await
                    .map_err(|e| BoxError::from(format!("otlp receiver gRPC server failed: {e}")))
            });
        }
        if let Some((listener, max, tls, tls_on)) = http {
            let local = listener.local_addr()?;
            tracing::info!(endpoint = %local, tls = tls_on, "OTLP/HTTP receiver listening.");
            warn_if_exposed(&cx, "http", local, tls_on);
            let (ingest, stop) = (ingest.clone(), stop.clone());
            tasks.spawn(async move {
                http::serve(listener, local, ingest, max, tls, stop).await;
                Ok(())
            });
        }
        // Either server ending on its own is a failure; stop the other and let the runtime restart.
        let mut result = Ok(());
        while let Some(done) = tasks.join_next().await {
            let outcome = done.map_err(|e| BoxError::from(format!("otlp receiver server task failed: {e}")));
            if let Err(e) = outcome.and_then(|r| r) {
                result = Err(e);
            }
            if !cx.shutdown.is_cancelled() && result.is_ok() {
                result = Err("otlp receiver server stopped unexpectedly".into());
            }
            stop.cancel();
        }
        tracing::info!("OTLP receiver stopped.");
        result
    }
}

#[cfg(test)]
mod tests;
