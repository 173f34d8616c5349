//! OTLP/HTTP: `POST /v1/metrics` with a protobuf or JSON body, optionally gzip-compressed, on
//! hyper (HTTP/1.1). Errors are answered as the OTLP spec says, with a `google.rpc.Status` body in
//! the request's encoding; each one is counted as an error of the receiver, and so is each failed
//! TLS handshake when the protocol is served over TLS.

use std::convert::Infallible;
use std::io::Read;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderValue, Method, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use nodetel_core::CancellationToken;
use nodetel_core::tls::TlsAcceptor;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use prost::Message;
use tokio::net::TcpListener;

use super::ingest::Ingest;
use super::sender::{Connection, Io, TrackedStream};

const PROTOBUF: &str = "application/x-protobuf";
const JSON: &str = "application/json";
/// How long a connection may take to send a request head, and then its body.
const READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// `google.rpc.Status`, the body of OTLP/HTTP error responses.
#[derive(Clone, PartialEq, prost::Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Protobuf,
    Json,
}

impl Encoding {
    fn content_type(self) -> &'static str {
        match self {
            Encoding::Protobuf => PROTOBUF,
            Encoding::Json => JSON,
        }
    }
}

/// A refused request: the HTTP status, the gRPC code for the body, and what to tell the sender.
pub(crate) struct Refusal {
    status: StatusCode,
    code: tonic::Code,
    message: String,
}

impl Refusal {
    fn new(status: StatusCode, code: tonic::Code, message: impl Into<String>) -> Refusal {
        Refusal {
            status,
            code,
            message: message.into(),
        }
    }
}

fn response(status: StatusCode, content_type: &'static str, body: Vec<u8>) -> hyper::Response<Full<Bytes>> {
    let mut r = hyper::Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

fn refusal_response(refusal: Refusal, encoding: Option<Encoding>) -> hyper::Response<Full<Bytes>> {
    let status = RpcStatus {
        code: refusal.code as i32,
        message: refusal.message,
    };
    match encoding {
        Some(Encoding::Protobuf) => response(refusal.status, PROTOBUF, status.encode_to_vec()),
        Some(Encoding::Json) => {
            let body = serde_json::json!({"code": status.code, "message": status.message});
            response(refusal.status, JSON, body.to_string().into_bytes())
        }
        None => response(
            refusal.status,
            "text/plain; charset=utf-8",
            format!("{}\n", status.message).into_bytes(),
        ),
    }
}

fn request_encoding(req: &hyper::Request<Incoming>) -> Result<Encoding, Refusal> {
    let ct = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    match essence.as_str() {
        PROTOBUF | "application/protobuf" => Ok(Encoding::Protobuf),
        JSON => Ok(Encoding::Json),
        _ => Err(Refusal::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            tonic::Code::InvalidArgument,
            format!("unsupported Content-Type {ct:?}; send application/x-protobuf or application/json"),
        )),
    }
}

fn too_large(max: usize) -> Refusal {
    Refusal::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        tonic::Code::ResourceExhausted,
        format!(
            "the request body is over the limit of {max} bytes; send smaller batches or raise max_request_body_size"
        ),
    )
}

/// Reads, decompresses and decodes a `/v1/metrics` body.
async fn decode(
    req: hyper::Request<Incoming>,
    encoding: Encoding,
    max: usize,
) -> Result<ExportMetricsServiceRequest, Refusal> {
    let gzip = match req.headers().get(header::CONTENT_ENCODING).map(|v| v.to_str()) {
        None => false,
        Some(Ok(v)) if v.eq_ignore_ascii_case("identity") || v.is_empty() => false,
        Some(Ok(v)) if v.eq_ignore_ascii_case("gzip") => true,
        Some(other) => {
            return Err(Refusal::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                tonic::Code::InvalidArgument,
                format!("unsupported Content-Encoding {other:?}; send gzip or no encoding"),
            ));
        }
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > max) {
        return Err(too_large(max));
    }
    // A sender that declares a body and never sends it would hold the connection forever.
    let body = tokio::time::timeout(READ_TIMEOUT, Limited::new(req.into_body(), max).collect())
        .await
        .map_err(|_| {
            Refusal::new(
                StatusCode::REQUEST_TIMEOUT,
                tonic::Code::DeadlineExceeded,
                format!("the body did not arrive within {} s", READ_TIMEOUT.as_secs()),
            )
        })?
        .map_err(|e| {
            if e.is::<http_body_util::LengthLimitError>() {
                too_large(max)
            } else {
                Refusal::new(
                    StatusCode::BAD_REQUEST,
                    tonic::Code::InvalidArgument,
                    format!("reading the body failed: {e}"),
                )
            }
        })?
        .to_bytes();
    let body = if gzip { gunzip(&body, max)? } else { body };
    let bad = |what: String| Refusal::new(StatusCode::BAD_REQUEST, tonic::Code::InvalidArgument, what);
    match encoding {
        Encoding::Protobuf => ExportMetricsServiceRequest::decode(body).map_err(|e| {
            bad(format!(
                "the body is not an ExportMetricsServiceRequest in protobuf: {e}"
            ))
        }),
        Encoding::Json => serde_json::from_slice(&body).map_err(|e| {
            bad(format!(
                "the body is not an ExportMetricsServiceRequest in OTLP JSON: {e}"
            ))
        }),
    }
}

/// Decompresses at most `max` bytes, so a small compressed body cannot claim unbounded memory.
pub(crate) fn gunzip(body: &[u8], max: usize) -> Result<Bytes, Refusal> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(body)
        .take(max as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| {
            Refusal::new(
                StatusCode::BAD_REQUEST,
                tonic::Code::InvalidArgument,
                format!("the body is not valid gzip: {e}"),
            )
        })?;
    if out.len() > max {
        return Err(too_large(max));
    }
    Ok(out.into())
}

async fn handle(
    req: hyper::Request<Incoming>,
    ingest: &Ingest,
    connection: &Connection,
    max: usize,
) -> hyper::Response<Full<Bytes>> {
    let path = req.uri().path().to_owned();
    // Errors are answered in the request's encoding whenever it names one we know.
    let encoding = request_encoding(&req).ok();
    let result = match (req.method(), path.as_str()) {
        (&Method::POST, "/v1/metrics") => match request_encoding(&req) {
            Ok(e) => match decode(req, e, max).await {
                Ok(request) => match ingest.export(&request, connection.sender_pid().await).await {
                    Ok(r) => Ok((e, r)),
                    Err(err) => Err(Refusal::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        tonic::Code::Unavailable,
                        err.to_string(),
                    )),
                },
                Err(r) => Err(r),
            },
            Err(r) => Err(r),
        },
        (_, "/v1/metrics") => Err(Refusal::new(
            StatusCode::METHOD_NOT_ALLOWED,
            tonic::Code::Unimplemented,
            "use POST for /v1/metrics",
        )),
        (_, "/v1/traces" | "/v1/logs") => Err(Refusal::new(
            StatusCode::NOT_FOUND,
            tonic::Code::Unimplemented,
            format!(
                "{path}: this receiver takes metrics only (POST /v1/metrics); send traces and logs to a collector that stores them"
            ),
        )),
        _ => Err(Refusal::new(
            StatusCode::NOT_FOUND,
            tonic::Code::Unimplemented,
            format!("{path}: not found; OTLP metrics go to POST /v1/metrics"),
        )),
    };
    match result {
        Ok((e, r)) => {
            let body = match e {
                Encoding::Protobuf => r.encode_to_vec(),
                Encoding::Json => serde_json::to_vec(&r).unwrap_or_else(|_| b"{}".to_vec()),
            };
            response(StatusCode::OK, e.content_type(), body)
        }
        Err(refusal) => {
            ingest.telemetry().add_error();
            tracing::debug!(status = %refusal.status, message = %refusal.message, "OTLP/HTTP request refused.");
            refusal_response(refusal, encoding)
        }
    }
}

/// Serves OTLP/HTTP on `listener` (bound to `local`) until `shutdown` fires; open connections
/// finish their request.
pub(crate) async fn serve(
    listener: TcpListener,
    local: std::net::SocketAddr,
    ingest: Arc<Ingest>,
    max_body: usize,
    tls: Option<TlsAcceptor>,
    shutdown: CancellationToken,
) {
    loop {
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(error) => {
                    tracing::warn!(%error, "OTLP/HTTP accept failed.");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let ingest = ingest.clone();
        let telemetry = ingest.telemetry().clone();
        let connection = Connection::new(peer, local, ingest.identify_senders());
        let connection_for_stream = connection.clone();
        let served = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let served_here = served.clone();
        let service = service_fn(move |req| {
            let (ingest, connection) = (ingest.clone(), connection.clone());
            served_here.store(true, std::sync::atomic::Ordering::Relaxed);
            async move { Ok::<_, Infallible>(handle(req, &ingest, &connection, max_body).await) }
        });
        let conn_shutdown = shutdown.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let io = match tls {
                None => Io::Plain(stream),
                Some(acceptor) => match nodetel_core::tls::handshake(&acceptor, stream).await {
                    Ok(tls) => Io::Tls(Box::new(tls)),
                    Err(error) => {
                        // No or a wrong client certificate when one is required, or no TLS at all.
                        telemetry.add_error();
                        tracing::debug!(%peer, %error, "OTLP/HTTP TLS handshake refused.");
                        return;
                    }
                },
            };
            let stream = TrackedStream::new(io, connection_for_stream);
            let conn = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(READ_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            tokio::select! {
                result = conn.as_mut() => {
                    // A request head that is malformed, too large or too slow never reaches
                    // `handle`; it is refused (400, 431 or a closed connection) and counted here.
                    // A kept-alive connection that goes quiet after serving is closed, not counted.
                    let first = !served.load(std::sync::atomic::Ordering::Relaxed);
                    if let Err(error) = result && (error.is_parse() || (error.is_timeout() && first)) {
                        telemetry.add_error();
                        tracing::debug!(%error, "OTLP/HTTP request head refused.");
                    }
                }
                _ = conn_shutdown.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        });
    }
}
