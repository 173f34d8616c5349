//! A small HTTP/1.1 server for read-only endpoints (`/metrics`, health), on hyper, in plain text
//! or over TLS (see [`crate::tls`]).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A response from a [`Handler`].
#[derive(Debug, Clone)]
pub struct Response {
    /// HTTP status code.
    pub status: u16,
    /// `Content-Type` header.
    pub content_type: &'static str,
    /// The body.
    pub body: Bytes,
}

impl Response {
    /// A 200 response.
    pub fn ok(content_type: &'static str, body: impl Into<Bytes>) -> Response {
        Response {
            status: 200,
            content_type,
            body: body.into(),
        }
    }

    /// A plain-text response with `status`.
    pub fn text(status: u16, body: impl Into<Bytes>) -> Response {
        Response {
            status,
            content_type: "text/plain; charset=utf-8",
            body: body.into(),
        }
    }
}

/// Answers a request given its method and path.
pub type Handler = Arc<dyn Fn(&http::Method, &str) -> Response + Send + Sync>;

/// Why a listener could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {addr}: {source}")]
pub struct BindError {
    addr: String,
    source: std::io::Error,
}

/// Binds `addr` (`host:port`).
pub async fn bind(addr: &str) -> Result<TcpListener, BindError> {
    TcpListener::bind(addr).await.map_err(|source| BindError {
        addr: addr.to_owned(),
        source,
    })
}

/// How long a connection may take to send a request's headers (and how long an idle kept-alive
/// connection stays open): a client that connects and says nothing must not hold a task and a
/// descriptor forever.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves `handler` on `listener` until `shutdown` fires. Only GET and HEAD are answered.
pub fn serve(listener: TcpListener, handler: Handler, shutdown: CancellationToken) -> JoinHandle<()> {
    serve_with_timeout(listener, handler, shutdown, HEADER_READ_TIMEOUT)
}

/// [`serve`] with another header read timeout.
pub fn serve_with_timeout(
    listener: TcpListener,
    handler: Handler,
    shutdown: CancellationToken,
    header_timeout: Duration,
) -> JoinHandle<()> {
    serve_with(listener, handler, shutdown, header_timeout, None)
}

/// [`serve`] over TLS: each connection completes its handshake (within
/// [`crate::tls::HANDSHAKE_TIMEOUT`]) before its request is read; a failed handshake (no or a
/// wrong client certificate when one is required) closes the connection and is logged at debug.
pub fn serve_tls(
    listener: TcpListener,
    handler: Handler,
    shutdown: CancellationToken,
    tls: crate::tls::TlsAcceptor,
) -> JoinHandle<()> {
    serve_with(listener, handler, shutdown, HEADER_READ_TIMEOUT, Some(tls))
}

fn serve_with(
    listener: TcpListener,
    handler: Handler,
    shutdown: CancellationToken,
    header_timeout: Duration,
    tls: Option<crate::tls::TlsAcceptor>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let (stream, peer): (_, SocketAddr) = tokio::select! {
                _ = shutdown.cancelled() => return,
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(error) => {
                        tracing::warn!(%error, "Accept failed.");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let handler = handler.clone();
            let service = service_fn(move |req: hyper::Request<Incoming>| {
                let handler = handler.clone();
                async move {
                    let r = match *req.method() {
                        http::Method::GET | http::Method::HEAD => handler(req.method(), req.uri().path()),
                        _ => Response::text(405, "only GET and HEAD are supported\n"),
                    };
                    let mut resp = hyper::Response::new(Full::new(r.body));
                    *resp.status_mut() =
                        http::StatusCode::from_u16(r.status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
                    resp.headers_mut().insert(
                        http::header::CONTENT_TYPE,
                        http::HeaderValue::from_static(r.content_type),
                    );
                    Ok::<_, Infallible>(resp)
                }
            });
            let conn_shutdown = shutdown.clone();
            let tls = tls.clone();
            tokio::spawn(async move {
                match tls {
                    None => serve_connection(stream, service, header_timeout, conn_shutdown).await,
                    Some(acceptor) => match crate::tls::handshake(&acceptor, stream).await {
                        Ok(stream) => serve_connection(stream, service, header_timeout, conn_shutdown).await,
                        Err(error) => tracing::debug!(%peer, %error, "TLS handshake refused."),
                    },
                }
            });
        }
    })
}

async fn serve_connection<IO, S>(stream: IO, service: S, header_timeout: Duration, shutdown: CancellationToken)
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    S: hyper::service::Service<hyper::Request<Incoming>, Response = hyper::Response<Full<Bytes>>, Error = Infallible>,
{
    let conn = http1::Builder::new()
        .max_buf_size(64 * 1024)
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = shutdown.cancelled() => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn server(timeout: Duration) -> (SocketAddr, CancellationToken) {
        let listener = bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let handler: Handler = Arc::new(|_, path| Response::ok("text/plain", format!("{path}\n")));
        let shutdown = CancellationToken::new();
        serve_with_timeout(listener, handler, shutdown.clone(), timeout);
        (addr, shutdown)
    }

    async fn answer(stream: &mut tokio::net::TcpStream) -> String {
        let mut out = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut out)).await;
        String::from_utf8_lossy(&out).into_owned()
    }

    #[tokio::test]
    async fn a_client_that_never_finishes_its_headers_is_cut_off_and_others_are_served() {
        let (addr, shutdown) = server(Duration::from_millis(300)).await;
        let mut silent = tokio::net::TcpStream::connect(addr).await.unwrap();
        silent.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n").await.unwrap();
        let mut other = tokio::net::TcpStream::connect(addr).await.unwrap();
        other
            .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        assert!(answer(&mut other).await.ends_with("/health\n"));
        let started = std::time::Instant::now();
        let mut rest = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(5), silent.read_to_end(&mut rest)).await;
        assert!(read.is_ok(), "the half-sent request is still held after 5 s");
        assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
        shutdown.cancel();
    }

    #[tokio::test]
    async fn only_get_and_head_are_answered() {
        let (addr, shutdown) = server(HEADER_READ_TIMEOUT).await;
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        assert!(answer(&mut s).await.starts_with("HTTP/1.1 405"));
        shutdown.cancel();
    }
}
