//! OTLP/gRPC: `MetricsService/Export` on tonic. Traces and logs are answered with
//! `Unimplemented` and a message saying so; every failed call is counted as an error, and so is
//! every failed TLS handshake (a client without the required certificate) and every connection
//! that does not send the HTTP/2 preface in time.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use nodetel_core::CancellationToken;
use nodetel_core::tls::TlsAcceptor;
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{ExportMetricsServiceRequest, ExportMetricsServiceResponse};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tonic::codec::CompressionEncoding;
use tonic::codegen::Service;
use tonic::{Request, Response, Status};

use super::ingest::Ingest;
use super::sender::{Connection, Io, TrackedStream};

const METRICS_PREFIX: &str = "/opentelemetry.proto.collector.metrics.v1.MetricsService/";

struct Handler {
    ingest: Arc<Ingest>,
}

#[tonic::async_trait]
impl MetricsService for Handler {
    async fn export(
        &self,
        request: Request<ExportMetricsServiceRequest>,
    ) -> Result<Response<ExportMetricsServiceResponse>, Status> {
        let sender = match request.extensions().get::<Arc<Connection>>() {
            Some(c) => c.sender_pid().await,
            None => None,
        };
        match self.ingest.export(request.get_ref(), sender).await {
            Ok(r) => Ok(Response::new(r)),
            Err(e) => Err(Status::unavailable(e.to_string())),
        }
    }
}

/// Routes metrics to the generated service and refuses every other service, counting failures.
#[derive(Clone)]
struct MetricsOnly {
    metrics: MetricsServiceServer<Handler>,
    ingest: Arc<Ingest>,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<B> Service<http::Request<B>> for MetricsOnly
where
    B: tonic::codegen::Body + Send + 'static,
    B::Error: Into<tonic::codegen::StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let ingest = self.ingest.clone();
        if req.uri().path().starts_with(METRICS_PREFIX) {
            let mut metrics = self.metrics.clone();
            Box::pin(async move {
                let response = metrics.call(req).await?;
                // Failures are trailers-only responses, so their status is in the headers.
                let failed = response
                    .headers()
                    .get("grpc-status")
                    .is_some_and(|s| s.as_bytes() != b"0");
                if failed {
                    ingest.telemetry().add_error();
                }
                Ok(response)
            })
        } else {
            ingest.telemetry().add_error();
            let status = Status::unimplemented(format!(
                "{}: this receiver takes metrics only (opentelemetry.proto.collector.metrics.v1.MetricsService); \
                 send traces and logs to a collector that stores them",
                req.uri().path()
            ));
            Box::pin(std::future::ready(Ok(status.into_http())))
        }
    }
}

/// How long a connection may stay silent at each stage before it is closed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timeouts {
    /// To finish the TLS handshake.
    pub(crate) handshake: Duration,
    /// To send the HTTP/2 preface, counted from the end of the handshake (or the accept).
    pub(crate) preface: Duration,
    /// Idle time before an HTTP/2 keepalive ping; a peer that does not answer one within
    /// `ping_timeout` is gone (a crashed or partitioned node) and its connection is closed.
    pub(crate) ping_interval: Duration,
    /// How long a ping may go unanswered.
    pub(crate) ping_timeout: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            handshake: nodetel_core::tls::HANDSHAKE_TIMEOUT,
            preface: Duration::from_secs(10),
            ping_interval: Duration::from_secs(60),
            ping_timeout: Duration::from_secs(20),
        }
    }
}

/// Accepts connections and runs their TLS handshakes concurrently, so one slow client cannot
/// hold up the others; ready connections go to `ready`. Failed handshakes are counted as errors.
async fn accept(
    listener: TcpListener,
    local: SocketAddr,
    ingest: Arc<Ingest>,
    tls: Option<TlsAcceptor>,
    timeouts: Timeouts,
    ready: mpsc::Sender<TrackedStream>,
) {
    let identify = ingest.identify_senders();
    loop {
        let (stream, peer) = tokio::select! {
            // The server stopped taking connections: close the port now.
            _ = ready.closed() => return,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(error) => {
                    tracing::warn!(%error, "OTLP/gRPC accept failed.");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        // Small unary exports: do not wait to coalesce the response.
        let _ = stream.set_nodelay(true);
        // Each connection carries its own sender lookup, so it runs once per connection.
        let connection = Connection::new(peer, local, identify);
        let telemetry = ingest.telemetry().clone();
        let io = match &tls {
            None => Io::Plain(stream),
            Some(acceptor) => {
                let (acceptor, ready) = (acceptor.clone(), ready.clone());
                tokio::spawn(async move {
                    match nodetel_core::tls::handshake_within(&acceptor, stream, timeouts.handshake).await {
                        Ok(tls) => {
                            let stream = TrackedStream::new(Io::Tls(Box::new(tls)), connection)
                                .with_preface_deadline(timeouts.preface, telemetry);
                            let _ = ready.send(stream).await;
                        }
                        Err(error) => {
                            telemetry.add_error();
                            tracing::debug!(%peer, %error, "OTLP/gRPC TLS handshake refused.");
                        }
                    }
                });
                continue;
            }
        };
        let stream = TrackedStream::new(io, connection).with_preface_deadline(timeouts.preface, telemetry);
        if ready.send(stream).await.is_err() {
            return;
        }
    }
}

/// Serves OTLP/gRPC on `listener` (bound to `local`), over TLS when `tls` is given, until
/// `shutdown` fires.
pub(crate) async fn serve(
    listener: TcpListener,
    local: SocketAddr,
    ingest: Arc<Ingest>,
    max_message_bytes: usize,
    tls: Option<TlsAcceptor>,
    timeouts: Timeouts,
    shutdown: CancellationToken,
) -> Result<(), tonic::transport::Error> {
    let metrics = MetricsServiceServer::new(Handler { ingest: ingest.clone() })
        .max_decoding_message_size(max_message_bytes)
        .accept_compressed(CompressionEncoding::Gzip)
        .send_compressed(CompressionEncoding::Gzip);
    let (ready, incoming) = mpsc::channel(64);
    let acceptor = tokio::spawn(accept(listener, local, ingest.clone(), tls, timeouts, ready));
    // Stops accepting (and frees the port) however the server ends.
    let _stop_accepting = AbortOnDrop(acceptor);
    let service = MetricsOnly { metrics, ingest };
    let incoming = futures_util::stream::unfold(incoming, |mut incoming| async move {
        let stream = incoming.recv().await?;
        Some((Ok::<_, std::io::Error>(stream), incoming))
    });
    tonic::transport::Server::builder()
        .http2_keepalive_interval(Some(timeouts.ping_interval))
        .http2_keepalive_timeout(Some(timeouts.ping_timeout))
        .serve_with_incoming_shutdown(service, incoming, shutdown.cancelled_owned())
        .await
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
