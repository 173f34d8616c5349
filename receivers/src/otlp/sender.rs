//! Which local process is on the other end of a connection, found once per connection.
//!
//! A training script that exports OTLP without any Slurm attributes still runs inside a Slurm
//! task; knowing its pid lets the `slurmattributes` processor give its series that task's job
//! and rank. The lookup walks `/proc` (see `nodetel_host::procfs::tcp`), so it runs on the
//! blocking pool, only for loopback peers, and at most once per connection: SDKs keep their
//! connection open between exports.
//!
//! [`TrackedStream`] is the connection as the servers see it: plain or TLS, carrying its
//! [`Connection`], and with a deadline for the HTTP/2 preface.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use nodetel_core::telemetry::ComponentTelemetry;
use std::future::Future;
use tokio::sync::OnceCell;

/// One accepted connection and, once asked, the pid of the process that opened it.
#[derive(Debug)]
pub(crate) struct Connection {
    peer: SocketAddr,
    local: SocketAddr,
    enabled: bool,
    pid: OnceCell<Option<u32>>,
}

impl Connection {
    /// A connection from `peer` to our `local` address; `enabled` false never looks.
    pub(crate) fn new(peer: SocketAddr, local: SocketAddr, enabled: bool) -> Arc<Connection> {
        Arc::new(Connection {
            peer,
            local,
            enabled,
            pid: OnceCell::new(),
        })
    }

    /// The sending process's pid; `None` for remote peers, or when it cannot be seen.
    pub(crate) async fn sender_pid(&self) -> Option<u32> {
        if !self.enabled || !is_loopback(self.peer) {
            return None;
        }
        *self.pid.get_or_init(|| lookup(self.peer, self.local)).await
    }
}

fn is_loopback(addr: SocketAddr) -> bool {
    match addr {
        SocketAddr::V4(a) => a.ip().is_loopback(),
        SocketAddr::V6(a) => a.ip().is_loopback() || a.ip().to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()),
    }
}

async fn lookup(peer: SocketAddr, local: SocketAddr) -> Option<u32> {
    let found =
        tokio::task::spawn_blocking(move || nodetel_host::procfs::tcp::client_pid(Path::new("/proc"), peer, local))
            .await;
    match found {
        Ok(Ok(pid)) => {
            tracing::debug!(%peer, ?pid, "OTLP sender identified.");
            pid
        }
        Ok(Err(error)) => {
            tracing::debug!(%peer, %error, "Cannot tell which process sends on this connection.");
            None
        }
        Err(error) => {
            tracing::debug!(%peer, %error, "The sender lookup failed.");
            None
        }
    }
}

/// What an accepted connection reads and writes: plain TCP, or TLS over it.
pub(crate) enum Io {
    Plain(tokio::net::TcpStream),
    Tls(Box<nodetel_core::tls::TlsStream<tokio::net::TcpStream>>),
}

/// Bytes a gRPC client sends first (`PRI * HTTP/2.0...`): until they have all arrived the
/// connection is not yet HTTP/2, so neither hyper's header timeouts nor HTTP/2 keepalive pings
/// apply, and a client that stays silent would hold it forever.
const HTTP2_PREFACE_LEN: usize = 24;

/// A deadline for a connection's first bytes.
struct Preface {
    deadline: std::pin::Pin<Box<tokio::time::Sleep>>,
    left: usize,
    on_expiry: Option<Arc<ComponentTelemetry>>,
}

/// A connection that carries its [`Connection`], so tonic hands it to each request as an
/// extension, and that fails its reads once a client has not sent the HTTP/2 preface in time.
pub(crate) struct TrackedStream {
    io: Io,
    connection: Arc<Connection>,
    preface: Option<Preface>,
}

impl TrackedStream {
    pub(crate) fn new(io: Io, connection: Arc<Connection>) -> TrackedStream {
        TrackedStream {
            io,
            connection,
            preface: None,
        }
    }

    /// Fails reads after `timeout` unless the HTTP/2 preface has arrived by then; the expiry is
    /// counted as an error on `telemetry`.
    pub(crate) fn with_preface_deadline(
        mut self,
        timeout: std::time::Duration,
        telemetry: Arc<ComponentTelemetry>,
    ) -> TrackedStream {
        self.preface = Some(Preface {
            deadline: Box::pin(tokio::time::sleep(timeout)),
            left: HTTP2_PREFACE_LEN,
            on_expiry: Some(telemetry),
        });
        self
    }
}

impl tonic::transport::server::Connected for TrackedStream {
    type ConnectInfo = Arc<Connection>;

    fn connect_info(&self) -> Arc<Connection> {
        self.connection.clone()
    }
}

macro_rules! io {
    ($self:expr, $s:ident => $e:expr) => {
        match &mut $self.io {
            Io::Plain($s) => {
                let $s = std::pin::Pin::new($s);
                $e
            }
            Io::Tls($s) => {
                let $s = std::pin::Pin::new($s.as_mut());
                $e
            }
        }
    };
}

impl tokio::io::AsyncRead for TrackedStream {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let this = self.get_mut();
        if let Some(p) = &mut this.preface
            && p.deadline.as_mut().poll(cx).is_ready()
        {
            if let Some(telemetry) = p.on_expiry.take() {
                telemetry.add_error();
                tracing::debug!(peer = %this.connection.peer, "OTLP/gRPC client sent no HTTP/2 preface in time; closing.");
            }
            return std::task::Poll::Ready(Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "no HTTP/2 preface in time",
            )));
        }
        let before = buf.filled().len();
        let read = io!(this, s => s.poll_read(cx, buf));
        if let (std::task::Poll::Ready(Ok(())), Some(p)) = (&read, &mut this.preface) {
            let n = buf.filled().len() - before;
            if n >= p.left {
                this.preface = None;
            } else {
                p.left -= n;
            }
        }
        read
    }
}

impl tokio::io::AsyncWrite for TrackedStream {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        io!(self.get_mut(), s => s.poll_write(cx, buf))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        io!(self.get_mut(), s => s.poll_flush(cx))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        io!(self.get_mut(), s => s.poll_shutdown(cx))
    }

    fn poll_write_vectored(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        io!(self.get_mut(), s => s.poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        match &self.io {
            Io::Plain(s) => s.is_write_vectored(),
            Io::Tls(s) => s.is_write_vectored(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_loopback_client_in_this_process_is_found_once_and_remote_peers_never() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let local = listener.local_addr().unwrap();
        let _client = tokio::net::TcpStream::connect(local).await.unwrap();
        let (_server, peer) = listener.accept().await.unwrap();
        let c = Connection::new(peer, local, true);
        assert_eq!(c.sender_pid().await, Some(std::process::id()));
        assert_eq!(c.sender_pid().await, Some(std::process::id()), "cached");
        assert_eq!(Connection::new(peer, local, false).sender_pid().await, None);
        let remote = Connection::new("10.1.2.3:5555".parse().unwrap(), local, true);
        assert_eq!(remote.sender_pid().await, None);
    }
}
