//! Facts about this process from `/proc/self`: CPU time, resident memory, start time, open files.

use std::path::Path;

/// Kernel clock ticks per second for `/proc/*/stat` times. Linux has exposed USER_HZ = 100 to
/// user space on every architecture nodetel targets; node_exporter's procfs library assumes the same.
pub const USER_HZ: f64 = 100.0;

/// A snapshot of this process's resource use.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ProcessStats {
    /// User plus system CPU time, seconds.
    pub cpu_seconds: f64,
    /// Resident set size, bytes.
    pub resident_bytes: u64,
    /// Virtual memory size, bytes.
    pub virtual_bytes: u64,
    /// Start time, seconds since the Unix epoch.
    pub start_time_seconds: f64,
    /// Open file descriptors.
    pub open_fds: u64,
    /// Threads.
    pub threads: u64,
}

/// Reads the stats of the process whose `/proc/<pid>` directory is `dir`, with `proc_root` the
/// procfs mount (for the boot time). Missing pieces are left at zero.
pub fn read_process_stats(proc_root: &Path, dir: &Path) -> ProcessStats {
    let mut s = ProcessStats::default();
    if let Ok(stat) = std::fs::read_to_string(dir.join("stat")) {
        // Fields after the parenthesised command name, which may itself hold spaces.
        if let Some((_, rest)) = stat.rsplit_once(')') {
            let f: Vec<&str> = rest.split_whitespace().collect();
            let num = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
            // rest[0] is field 3 (state): utime=14, stime=15, threads=20, starttime=22, vsize=23.
            s.cpu_seconds = (num(11) + num(12)) / USER_HZ;
            s.threads = num(17) as u64;
            s.virtual_bytes = num(20) as u64;
            let btime = std::fs::read_to_string(proc_root.join("stat"))
                .ok()
                .and_then(|t| {
                    t.lines()
                        .find_map(|l| l.strip_prefix("btime ")?.trim().parse::<f64>().ok())
                })
                .unwrap_or(0.0);
            s.start_time_seconds = btime + num(19) / USER_HZ;
        }
    }
    if let Ok(status) = std::fs::read_to_string(dir.join("status")) {
        s.resident_bytes = status
            .lines()
            .find_map(|l| {
                l.strip_prefix("VmRSS:")?
                    .trim()
                    .strip_suffix("kB")?
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
            .map_or(0, |kb| kb * 1024);
    }
    s.open_fds = std::fs::read_dir(dir.join("fd")).map_or(0, |d| d.count() as u64);
    s
}

/// This process's stats.
pub fn self_stats() -> ProcessStats {
    read_process_stats(Path::new("/proc"), Path::new("/proc/self"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_spaces_in_the_command_name() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("1234");
        std::fs::create_dir_all(p.join("fd")).unwrap();
        std::fs::write(dir.path().join("stat"), "cpu  1 2 3\nbtime 1700000000\n").unwrap();
        std::fs::write(
            p.join("stat"),
            "1234 (node tel) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 7 0 12345 104857600 1500 \
             18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n",
        )
        .unwrap();
        std::fs::write(p.join("status"), "Name:\tnode tel\nVmRSS:\t    6000 kB\n").unwrap();
        std::fs::write(p.join("fd/0"), "").unwrap();
        let s = read_process_stats(dir.path(), &p);
        assert_eq!(s.cpu_seconds, 3.0);
        assert_eq!(s.threads, 7);
        assert_eq!(s.virtual_bytes, 104_857_600);
        assert!((s.start_time_seconds - 1_700_000_123.45).abs() < 1e-3);
        assert_eq!(s.resident_bytes, 6000 * 1024);
        assert_eq!(s.open_fds, 1);
    }

    #[test]
    fn reads_this_process() {
        let s = self_stats();
        assert!(
            s.resident_bytes > 0 && s.threads >= 1 && s.start_time_seconds > 1e9,
            "{s:?}"
        );
    }
}
