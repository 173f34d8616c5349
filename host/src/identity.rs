//! Who this node is: its hostname, as dashboards expect it in the `instance` label.

use std::path::Path;

/// The short hostname (up to the first dot) read under `procfs`, or "localhost" when unreadable.
pub fn hostname_in(procfs: &Path) -> String {
    std::fs::read_to_string(procfs.join("sys/kernel/hostname"))
        .ok()
        .and_then(|s| s.trim().split('.').next().map(str::to_owned))
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

/// This node's short hostname.
pub fn hostname() -> String {
    hostname_in(Path::new("/proc"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostname_is_cut_at_the_first_dot() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("sys/kernel")).unwrap();
        std::fs::write(dir.path().join("sys/kernel/hostname"), "ip-10-1-2-3.ec2.internal\n").unwrap();
        assert_eq!(hostname_in(dir.path()), "ip-10-1-2-3");
        assert_eq!(hostname_in(&dir.path().join("missing")), "localhost");
    }
}
