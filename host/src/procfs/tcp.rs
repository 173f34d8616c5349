//! Which process on this node holds one end of a loopback TCP connection: the socket's inode
//! from `/proc/net/tcp` (or `tcp6`), then the process whose `/proc/<pid>/fd` links to it.
//!
//! Receivers that take pushed data use it to learn which local process sent it, so its series
//! can be attributed to that process's Slurm job. The walk over `fd` directories is the costly
//! part (one `readlink` per open file); callers do it once per connection, and it only looks at
//! processes of the uid that owns the socket. Reading other users' `fd` links needs root (or
//! `CAP_SYS_PTRACE`); without it those processes are simply not found.
//!
//! The kernel's netlink `sock_diag` would answer the first half without text parsing, but needs
//! raw sockets (unsafe code here); the text tables are a few kilobytes on a training node.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// One row of `/proc/net/tcp{,6}`: the two ends, the owner and the socket inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpSocket {
    /// The local end.
    pub local: SocketAddr,
    /// The remote end.
    pub remote: SocketAddr,
    /// The uid that created the socket.
    pub uid: u32,
    /// The socket's inode, as `/proc/<pid>/fd` links show it (`socket:[N]`).
    pub inode: u64,
}

/// Parses a `/proc/net/tcp` or `/proc/net/tcp6` table. Rows that do not parse are skipped: the
/// table is the kernel's, and one odd row must not hide the others.
pub fn parse_table(text: &str) -> impl Iterator<Item = TcpSocket> + '_ {
    text.lines().skip(1).filter_map(parse_row)
}

fn parse_row(line: &str) -> Option<TcpSocket> {
    // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
    let mut f = line.split_ascii_whitespace();
    let _slot = f.next()?;
    let local = parse_endpoint(f.next()?)?;
    let remote = parse_endpoint(f.next()?)?;
    let uid = f.nth(4)?.parse().ok()?;
    let inode = f.nth(1)?.parse().ok()?;
    Some(TcpSocket {
        local,
        remote,
        uid,
        inode,
    })
}

/// `0100007F:1F90` (IPv4) or 32 hex digits `:PORT` (IPv6). The kernel prints each 32-bit word of
/// the address as a number in host byte order, so the words are turned back into bytes in host
/// order; the port is a plain number.
fn parse_endpoint(s: &str) -> Option<SocketAddr> {
    let (addr, port) = s.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let word = |i: usize| -> Option<[u8; 4]> {
        let hex = addr.get(i * 8..i * 8 + 8)?;
        Some(u32::from_str_radix(hex, 16).ok()?.to_ne_bytes())
    };
    let ip = match addr.len() {
        8 => IpAddr::V4(Ipv4Addr::from(word(0)?)),
        32 => {
            let mut bytes = [0u8; 16];
            for i in 0..4 {
                bytes[i * 4..i * 4 + 4].copy_from_slice(&word(i)?);
            }
            IpAddr::V6(Ipv6Addr::from(bytes))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// Whether two addresses are the same, seeing IPv4 through IPv4-mapped IPv6 (a dual-stack
/// client socket shows `::ffff:127.0.0.1` in `tcp6`).
fn same(a: SocketAddr, b: SocketAddr) -> bool {
    let canon = |ip: IpAddr| match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    };
    a.port() == b.port() && canon(a.ip()) == canon(b.ip())
}

/// The client socket of the connection that `server` accepted from `peer`: the row whose local
/// end is `peer` and remote end is `server`.
pub fn find_client_socket(
    proc_root: &Path,
    peer: SocketAddr,
    server: SocketAddr,
) -> std::io::Result<Option<TcpSocket>> {
    for table in ["net/tcp", "net/tcp6"] {
        let text = match std::fs::read_to_string(proc_root.join(table)) {
            Ok(t) => t,
            // A kernel without IPv6 has no tcp6.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        if let Some(s) = parse_table(&text).find(|s| same(s.local, peer) && same(s.remote, server)) {
            return Ok(Some(s));
        }
    }
    Ok(None)
}

/// The process with an open descriptor on socket `inode`, among processes owned by `uid`. When
/// several share it (a fork), the lowest pid: the parent, which made the connection.
pub fn find_socket_owner(proc_root: &Path, inode: u64, uid: u32) -> std::io::Result<Option<u32>> {
    let target = format!("socket:[{inode}]");
    let mut pids: Vec<u32> = std::fs::read_dir(proc_root)?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let pid = e.file_name().to_str()?.parse::<u32>().ok()?;
            // The directory's owner is the process's effective uid; skipping other users saves
            // most of the readlinks on a shared node.
            let owner = e.metadata().ok()?.uid();
            (owner == uid).then_some(pid)
        })
        .collect();
    pids.sort_unstable();
    for pid in pids {
        let Ok(fds) = std::fs::read_dir(proc_root.join(pid.to_string()).join("fd")) else {
            continue;
        };
        for fd in fds.filter_map(|e| e.ok()) {
            if std::fs::read_link(fd.path()).is_ok_and(|l| l.as_os_str() == target.as_str()) {
                return Ok(Some(pid));
            }
        }
    }
    Ok(None)
}

/// The pid of the local process that opened the connection `server` accepted from `peer`, or
/// `None` when the peer is not on this node (or its process cannot be seen).
pub fn client_pid(proc_root: &Path, peer: SocketAddr, server: SocketAddr) -> std::io::Result<Option<u32>> {
    match find_client_socket(proc_root, peer, server)? {
        Some(s) => find_socket_owner(proc_root, s.inode, s.uid),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:10E1 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 41234 1 0000000000000000 100 0 0 10 0
   1: 0100007F:D431 0100007F:10E1 01 00000000:00000000 00:00000000 00000000  1000        0 55821 1 0000000000000000 20 4 30 10 -1
   2: garbage
";

    const TCP6: &str = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0000000000000000FFFF00000100007F:D432 0000000000000000FFFF00000100007F:10E1 01 00000000:00000000 00:00000000 00000000     0        0 66001 1 0000000000000000 20 4 30 10 -1
   1: 00000000000000000000000001000000:9C40 00000000000000000000000001000000:10E2 01 00000000:00000000 00:00000000 00000000     7        0 66002 1 0000000000000000 20 4 30 10 -1
";

    #[test]
    fn ipv4_rows_parse_in_host_byte_order() {
        let rows: Vec<TcpSocket> = parse_table(TCP).collect();
        assert_eq!(rows.len(), 2, "the garbage row is skipped");
        assert_eq!(rows[1].local, "127.0.0.1:54321".parse().unwrap());
        assert_eq!(rows[1].remote, "127.0.0.1:4321".parse().unwrap());
        assert_eq!((rows[1].uid, rows[1].inode), (1000, 55821));
    }

    #[test]
    fn ipv6_rows_parse_and_mapped_ipv4_matches_ipv4() {
        let rows: Vec<TcpSocket> = parse_table(TCP6).collect();
        assert_eq!(rows[1].local, "[::1]:40000".parse().unwrap());
        assert!(same(rows[0].local, "127.0.0.1:54322".parse().unwrap()));
        assert!(!same(rows[0].local, "127.0.0.1:54323".parse().unwrap()));
    }

    #[test]
    fn a_fake_proc_tree_names_the_owner() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("net")).unwrap();
        std::fs::write(root.path().join("net/tcp"), TCP).unwrap();
        let uid = std::fs::metadata(root.path()).unwrap().uid();
        let table = TCP.replace("  1000        0 55821", &format!("{uid:>6}        0 55821"));
        std::fs::write(root.path().join("net/tcp"), table).unwrap();
        for (pid, link) in [(300, "socket:[55821]"), (200, "pipe:[9]"), (400, "socket:[55821]")] {
            let fd = root.path().join(format!("{pid}/fd"));
            std::fs::create_dir_all(&fd).unwrap();
            std::os::unix::fs::symlink(link, fd.join("3")).unwrap();
        }
        let pid = client_pid(
            root.path(),
            "127.0.0.1:54321".parse().unwrap(),
            "127.0.0.1:4321".parse().unwrap(),
        )
        .unwrap();
        assert_eq!(pid, Some(300), "the lowest of the processes sharing the socket");
        let none = client_pid(
            root.path(),
            "127.0.0.1:1".parse().unwrap(),
            "127.0.0.1:4321".parse().unwrap(),
        )
        .unwrap();
        assert_eq!(none, None);
    }

    #[test]
    fn a_real_loopback_connection_is_traced_to_this_process() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (_accepted, peer) = listener.accept().unwrap();
        assert_eq!(peer, client.local_addr().unwrap());
        let pid = client_pid(Path::new("/proc"), peer, listener.local_addr().unwrap()).unwrap();
        assert_eq!(pid, Some(std::process::id()));
    }
}
