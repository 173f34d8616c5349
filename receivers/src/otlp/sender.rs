//! Which local process is on the other end of a connection, found once per connection.
//!
//! A training script that exports OTLP without any Slurm attributes still runs inside a Slurm
//! task; knowing its pid lets the `slurmattributes` processor give its series that task's job
//! and rank. The lookup walks `/proc` (see `nodetel_host::procfs::tcp`), so it runs on the
//! blocking pool, only for loopback peers, and at most once per connection: SDKs keep their
//! connection open between exports.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

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

/// A TCP stream that carries its [`Connection`], so tonic hands it to each request as an
/// extension.
pub(crate) struct TrackedStream {
    stream: tokio::net::TcpStream,
    connection: Arc<Connection>,
}

impl TrackedStream {
    pub(crate) fn new(stream: tokio::net::TcpStream, connection: Arc<Connection>) -> TrackedStream {
        TrackedStream { stream, connection }
    }
}

impl tonic::transport::server::Connected for TrackedStream {
    type ConnectInfo = Arc<Connection>;

    fn connect_info(&self) -> Arc<Connection> {
        self.connection.clone()
    }
}

impl tokio::io::AsyncRead for TrackedStream {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for TrackedStream {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
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
