//! OTLP/gRPC: `MetricsService/Export` on tonic. Traces and logs are answered with
//! `Unimplemented` and a message saying so; every failed call is counted as an error.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use nodetel_core::CancellationToken;
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{ExportMetricsServiceRequest, ExportMetricsServiceResponse};
use tokio::net::TcpListener;
use tonic::codec::CompressionEncoding;
use tonic::codegen::Service;
use tonic::{Request, Response, Status};

use super::ingest::Ingest;
use super::sender::{Connection, TrackedStream};

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

/// Serves OTLP/gRPC on `listener` (bound to `local`) until `shutdown` fires.
pub(crate) async fn serve(
    listener: TcpListener,
    local: std::net::SocketAddr,
    ingest: Arc<Ingest>,
    max_message_bytes: usize,
    shutdown: CancellationToken,
) -> Result<(), tonic::transport::Error> {
    let metrics = MetricsServiceServer::new(Handler { ingest: ingest.clone() })
        .max_decoding_message_size(max_message_bytes)
        .accept_compressed(CompressionEncoding::Gzip)
        .send_compressed(CompressionEncoding::Gzip);
    let identify = ingest.identify_senders();
    let service = MetricsOnly { metrics, ingest };
    // Each connection carries its own sender lookup, so it runs once per connection.
    let incoming = futures_util::stream::unfold(listener, move |listener| async move {
        let accepted = listener.accept().await.map(|(stream, peer)| {
            // Small unary exports: do not wait to coalesce the response.
            let _ = stream.set_nodelay(true);
            TrackedStream::new(stream, Connection::new(peer, local, identify))
        });
        Some((accepted, listener))
    });
    tonic::transport::Server::builder()
        .serve_with_incoming_shutdown(service, incoming, shutdown.cancelled_owned())
        .await
}
