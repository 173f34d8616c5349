//! `sdiag`: scheduler statistics and RPC counts, parsed the way the Slurm exporters do.

/// The values both exporters take from `sdiag` (`None` when the line is missing).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Sdiag {
    /// `Server thread count:`.
    pub threads: Option<f64>,
    /// `Agent queue size:`.
    pub queue_size: Option<f64>,
    /// `DBD Agent queue size:`.
    pub dbd_queue_size: Option<f64>,
    /// First `Last cycle:` (main scheduler), µs.
    pub last_cycle: Option<f64>,
    /// First `Mean cycle:`, µs.
    pub mean_cycle: Option<f64>,
    /// `Cycles per minute:`.
    pub cycles_per_minute: Option<f64>,
    /// Second `Last cycle:` (backfill), µs.
    pub backfill_last_cycle: Option<f64>,
    /// Second `Mean cycle:` (backfill), µs.
    pub backfill_mean_cycle: Option<f64>,
    /// `Depth Mean:`.
    pub backfill_depth_mean: Option<f64>,
    /// `Total backfilled jobs (since last slurm start):`.
    pub backfilled_since_start: Option<f64>,
    /// `Total backfilled jobs (since last stats cycle start):`.
    pub backfilled_since_cycle: Option<f64>,
    /// `Total backfilled heterogeneous job components:`.
    pub backfilled_heterogeneous: Option<f64>,
    /// Per RPC message type: (type, count, average µs, total µs).
    pub rpc_by_type: Vec<RpcStat>,
    /// Per user: (user, count, average µs, total µs).
    pub rpc_by_user: Vec<RpcStat>,
}

/// One line of the RPC statistics.
#[derive(Debug, Clone, PartialEq)]
pub struct RpcStat {
    /// The message type (`REQUEST_JOB_INFO`) or user name.
    pub name: String,
    /// `count:`.
    pub count: f64,
    /// `ave_time:`, µs.
    pub ave_time: f64,
    /// `total_time:`, µs.
    pub total_time: f64,
}

fn value(rest: &str) -> Option<f64> {
    rest.split_ascii_whitespace().next()?.parse().ok()
}

fn rpc_line(line: &str) -> Option<RpcStat> {
    let name = line.split_ascii_whitespace().next()?;
    let field = |key: &str| -> Option<f64> {
        let at = line.find(key)? + key.len();
        value(&line[at..])
    };
    Some(RpcStat {
        name: name.to_owned(),
        count: field("count:")?,
        ave_time: field("ave_time:")?,
        total_time: field("total_time:")?,
    })
}

/// Parses `sdiag` text. Unknown lines are ignored, so new Slurm versions keep working.
pub fn parse(text: &str) -> Sdiag {
    #[derive(PartialEq)]
    enum Section {
        Other,
        ByType,
        ByUser,
    }
    let mut s = Sdiag::default();
    let mut section = Section::Other;
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with("Remote Procedure Call statistics by message type") {
            section = Section::ByType;
            continue;
        }
        if trimmed.starts_with("Remote Procedure Call statistics by user") {
            section = Section::ByUser;
            continue;
        }
        if section != Section::Other {
            if trimmed.is_empty() || !trimmed.contains("count:") {
                section = Section::Other;
                continue;
            }
            if let Some(stat) = rpc_line(trimmed) {
                match section {
                    Section::ByType => s.rpc_by_type.push(stat),
                    _ => s.rpc_by_user.push(stat),
                }
            }
            continue;
        }
        let Some((key, rest)) = trimmed.split_once(':') else {
            continue;
        };
        let v = value(rest);
        match key {
            "Server thread count" => s.threads = v,
            "Agent queue size" => s.queue_size = v,
            "DBD Agent queue size" => s.dbd_queue_size = v,
            "Last cycle" if s.last_cycle.is_none() => s.last_cycle = v,
            "Last cycle" => s.backfill_last_cycle = v,
            "Mean cycle" if s.mean_cycle.is_none() => s.mean_cycle = v,
            "Mean cycle" => s.backfill_mean_cycle = v,
            "Cycles per minute" => s.cycles_per_minute = v,
            "Depth Mean" => s.backfill_depth_mean = v,
            "Total backfilled jobs (since last slurm start)" => s.backfilled_since_start = v,
            "Total backfilled jobs (since last stats cycle start)" => s.backfilled_since_cycle = v,
            "Total backfilled heterogeneous job components" => s.backfilled_heterogeneous = v,
            _ => {}
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_sdiag_parses() {
        let s = parse(include_str!("../../testdata/slurm/sdiag.txt"));
        assert_eq!(s.threads, Some(3.0));
        assert_eq!(s.queue_size, Some(0.0));
        assert_eq!(s.last_cycle, Some(116.0));
        assert_eq!(s.mean_cycle, Some(615.0));
        assert_eq!(s.backfill_last_cycle, Some(0.0));
        assert_eq!(s.backfill_mean_cycle, None, "no backfill cycle ran yet");
        assert_eq!(s.backfilled_since_start, Some(0.0));
        assert_eq!(s.rpc_by_type.len(), 15);
        assert_eq!(s.rpc_by_type[0].name, "REQUEST_PARTITION_INFO");
        assert_eq!(s.rpc_by_type[0].count, 42.0);
        assert_eq!(s.rpc_by_user[1].name, "nobody");
        assert_eq!(s.rpc_by_user[1].total_time, 2342.0);
    }

    #[test]
    fn truncated_or_garbled_sdiag_does_not_panic() {
        let text = include_str!("../../testdata/slurm/sdiag.txt");
        for cut in (0..text.len()).step_by(37) {
            if text.is_char_boundary(cut) {
                let _ = parse(&text[..cut]);
            }
        }
        let _ = parse("Remote Procedure Call statistics by user\n count: ave_time: total_time:\n");
    }
}
