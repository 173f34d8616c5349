//! `/proc/stat`: per-CPU time counters and kernel activity totals.

use std::path::Path;

use super::ReadError;

/// The file's path relative to the procfs root.
pub const FILE: &str = "stat";

/// The kernel's `USER_HZ`: `/proc/stat` counts CPU time in 1/100 s on every Linux ABI.
pub const USER_HZ: f64 = 100.0;

/// Time one CPU (or all together) spent in each mode, in `USER_HZ` ticks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CpuTicks {
    /// Normal processes in user mode (includes guest time).
    pub user: u64,
    /// Niced processes in user mode (includes guest_nice time).
    pub nice: u64,
    /// Kernel mode.
    pub system: u64,
    /// Idle.
    pub idle: u64,
    /// Waiting for I/O.
    pub iowait: u64,
    /// Servicing interrupts.
    pub irq: u64,
    /// Servicing softirqs.
    pub softirq: u64,
    /// Stolen by the hypervisor.
    pub steal: u64,
    /// Running a guest.
    pub guest: u64,
    /// Running a niced guest.
    pub guest_nice: u64,
}

/// The parsed `/proc/stat`. Fields absent from the file are `None`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Stat {
    /// The `cpu` line: all CPUs together.
    pub total: Option<CpuTicks>,
    /// The `cpuN` lines, as `(N, ticks)` in file order.
    pub cpus: Vec<(u32, CpuTicks)>,
    /// `btime`: boot time, seconds since the epoch.
    pub boot_time: Option<u64>,
    /// `ctxt`: context switches since boot.
    pub context_switches: Option<u64>,
    /// First number of `intr`: interrupts serviced since boot.
    pub interrupts: Option<u64>,
    /// `processes`: forks since boot.
    pub forks: Option<u64>,
    /// `procs_running`: runnable threads now.
    pub procs_running: Option<u64>,
    /// `procs_blocked`: threads blocked on I/O now.
    pub procs_blocked: Option<u64>,
    /// First number of `softirq`: softirqs serviced since boot.
    pub softirqs: Option<u64>,
}

impl Stat {
    /// Parses `/proc/stat` text into `self`, reusing its CPU list (`path` is only used in errors).
    /// Unknown lines are ignored, so newer kernels keep working.
    pub fn parse_into(&mut self, text: &str, path: &Path) -> Result<(), ReadError> {
        self.cpus.clear();
        *self = Stat {
            cpus: std::mem::take(&mut self.cpus),
            ..Stat::default()
        };
        for (i, line) in text.lines().enumerate() {
            let err = |message: String| ReadError::parse(path, i + 1, message);
            let mut fields = line.split_ascii_whitespace();
            let Some(key) = fields.next() else { continue };
            if let Some(id) = key.strip_prefix("cpu") {
                let ticks = parse_ticks(key, fields).map_err(err)?;
                if id.is_empty() {
                    self.total = Some(ticks);
                } else {
                    let n = id
                        .parse::<u32>()
                        .map_err(|_| err(format!("{key:?} is not \"cpu\" followed by a CPU number")))?;
                    self.cpus.push((n, ticks));
                }
                continue;
            }
            let slot = match key {
                "btime" => &mut self.boot_time,
                "ctxt" => &mut self.context_switches,
                "intr" => &mut self.interrupts,
                "processes" => &mut self.forks,
                "procs_running" => &mut self.procs_running,
                "procs_blocked" => &mut self.procs_blocked,
                "softirq" => &mut self.softirqs,
                _ => continue,
            };
            *slot = Some(parse_u64(key, fields.next()).map_err(err)?);
        }
        Ok(())
    }

    /// Parses `/proc/stat` text into a new value.
    pub fn parse(text: &str, path: &Path) -> Result<Stat, ReadError> {
        let mut stat = Stat::default();
        stat.parse_into(text, path)?;
        Ok(stat)
    }
}

fn parse_u64(key: &str, field: Option<&str>) -> Result<u64, String> {
    let field = field.ok_or_else(|| format!("{key} has no value"))?;
    field
        .parse::<u64>()
        .map_err(|_| format!("{key}: {field:?} is not a whole number"))
}

fn parse_ticks<'a>(key: &str, fields: impl Iterator<Item = &'a str>) -> Result<CpuTicks, String> {
    let mut v = [0u64; 10];
    let mut n = 0;
    for field in fields {
        if n == v.len() {
            break;
        }
        v[n] = field
            .parse::<u64>()
            .map_err(|_| format!("{key}: {field:?} is not a whole number of ticks"))?;
        n += 1;
    }
    // Kernels before 2.6 had only user, nice, system and idle; later columns default to zero.
    if n < 4 {
        return Err(format!("{key} has {n} time columns, expected at least 4"));
    }
    Ok(CpuTicks {
        user: v[0],
        nice: v[1],
        system: v[2],
        idle: v[3],
        iowait: v[4],
        irq: v[5],
        softirq: v[6],
        steal: v[7],
        guest: v[8],
        guest_nice: v[9],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "cpu  8680 0 3134 78126 343 0 28 19 0 0
cpu0 4081 1 1368 39611 59 0 6 6 2 3
cpu1 4599 0 1766 38515 284 0 21 12 0 0
intr 164253 0 0 1
ctxt 241459
btime 1764370000
processes 8050
procs_running 4
procs_blocked 1
softirq 93251 0 1 2
";

    #[test]
    fn parses_cpus_and_totals() {
        let s = Stat::parse(SAMPLE, Path::new("stat")).unwrap();
        assert_eq!(s.total.unwrap().idle, 78126);
        assert_eq!(s.cpus.len(), 2);
        let (id, c0) = s.cpus[0];
        assert_eq!(id, 0);
        assert_eq!((c0.user, c0.nice, c0.system, c0.idle), (4081, 1, 1368, 39611));
        assert_eq!((c0.iowait, c0.irq, c0.softirq, c0.steal), (59, 0, 6, 6));
        assert_eq!((c0.guest, c0.guest_nice), (2, 3));
        assert_eq!(s.cpus[1].0, 1);
        assert_eq!(s.interrupts, Some(164_253));
        assert_eq!(s.context_switches, Some(241_459));
        assert_eq!(s.boot_time, Some(1_764_370_000));
        assert_eq!(s.forks, Some(8050));
        assert_eq!((s.procs_running, s.procs_blocked), (Some(4), Some(1)));
        assert_eq!(s.softirqs, Some(93_251));
    }

    #[test]
    fn reuse_clears_the_previous_contents() {
        let mut s = Stat::parse(SAMPLE, Path::new("stat")).unwrap();
        s.parse_into("cpu3 1 2 3 4\n", Path::new("stat")).unwrap();
        assert_eq!(s.cpus.len(), 1);
        assert_eq!(s.cpus[0].0, 3);
        assert_eq!(s.cpus[0].1.iowait, 0, "missing columns are zero");
        assert_eq!(s.context_switches, None);
        assert_eq!(s.total, None);
    }

    #[test]
    fn malformed_lines_name_the_file_and_line() {
        let err = Stat::parse("cpu 1 2 3 4\ncpu0 1 x 3 4\n", Path::new("/proc/stat")).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("/proc/stat, line 2"), "{msg}");
        assert!(msg.contains("\"x\""), "{msg}");
        assert!(Stat::parse("cpu0 1 2\n", Path::new("s")).is_err());
        assert!(Stat::parse("cpuX 1 2 3 4\n", Path::new("s")).is_err());
        assert!(Stat::parse("ctxt\n", Path::new("s")).is_err());
        assert!(Stat::parse("ctxt -4\n", Path::new("s")).is_err());
    }
}
