//! `sinfo` outputs used by the cluster metrics: CPU state quadruples, node rows and GRES rows.

use super::error::ParseError;
use super::gres;

/// `%C` / `CPUsState`: allocated/idle/other/total.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CpuCounts {
    /// Allocated CPUs.
    pub alloc: u64,
    /// Idle CPUs.
    pub idle: u64,
    /// CPUs in other states (down, drained).
    pub other: u64,
    /// All CPUs.
    pub total: u64,
}

/// Parses `A/I/O/T`.
pub fn parse_cpus(s: &str) -> Option<CpuCounts> {
    let mut it = s.trim().split('/').map(|v| v.parse::<u64>().ok());
    let c = CpuCounts {
        alloc: it.next()??,
        idle: it.next()??,
        other: it.next()??,
        total: it.next()??,
    };
    it.next().is_none().then_some(c)
}

/// Parses the single line of `sinfo -h -o %C` (or `"-o %C"`).
pub fn parse_cpus_output(text: &str) -> Result<CpuCounts, ParseError> {
    let (i, line) = text
        .lines()
        .enumerate()
        .find(|(_, l)| !l.trim().is_empty())
        .ok_or_else(|| ParseError::new(1, "", "expected one line A/I/O/T, got nothing"))?;
    parse_cpus(line).ok_or_else(|| ParseError::new(i + 1, line, "expected A/I/O/T"))
}

/// One row of `sinfo -h -N -O NodeList,AllocMem,Memory,CPUsState,StateLong[,Partition]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRow {
    /// Node name.
    pub node: String,
    /// Allocated memory, MB.
    pub alloc_mem: u64,
    /// Configured memory, MB.
    pub memory: u64,
    /// CPUs by state.
    pub cpus: CpuCounts,
    /// The long state (`mixed`, `idle`, `drained*`).
    pub state: String,
    /// The partition, when the format asked for it.
    pub partition: Option<String>,
}

/// Parses whitespace-separated node rows (padded columns or `Field: ` formats alike).
pub fn parse_node_rows(text: &str) -> Result<Vec<NodeRow>, ParseError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let cols: Vec<&str> = line.split_ascii_whitespace().collect();
        if cols.is_empty() {
            continue;
        }
        let bad = |why: &str| ParseError::new(i + 1, line, why);
        if cols.len() < 5 {
            return Err(bad("expected NodeList AllocMem Memory CPUsState StateLong [Partition]"));
        }
        out.push(NodeRow {
            node: cols[0].to_owned(),
            alloc_mem: cols[1].parse().map_err(|_| bad("AllocMem is not a number"))?,
            memory: cols[2].parse().map_err(|_| bad("Memory is not a number"))?,
            cpus: parse_cpus(cols[3]).ok_or_else(|| bad("CPUsState is not A/I/O/T"))?,
            state: cols[4].to_owned(),
            partition: cols.get(5).map(|p| (*p).to_owned()),
        });
    }
    Ok(out)
}

/// One row of `sinfo -a -h --Format=Nodes: ,Gres: [,GresUsed:]`: a node count and its GPUs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GresRow {
    /// How many nodes the row stands for.
    pub nodes: u64,
    /// GPUs per node in the configured GRES column.
    pub gpus: u64,
    /// GPUs per node in the used GRES column, when present.
    pub gpus_used: Option<u64>,
}

/// Parses GRES rows. The first column is a node count; the next one or two are GRES lists.
pub fn parse_gres_rows(text: &str) -> Result<Vec<GresRow>, ParseError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let cols: Vec<&str> = line.split_ascii_whitespace().collect();
        if cols.is_empty() {
            continue;
        }
        let Ok(nodes) = cols[0].parse() else {
            return Err(ParseError::new(i + 1, line, "the node count is not a number"));
        };
        out.push(GresRow {
            nodes,
            gpus: cols.get(1).map_or(0, |g| gres::gpu_count(g)),
            gpus_used: cols.get(2).map(|g| gres::gpu_count(g)),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_states_parse() {
        assert_eq!(
            parse_cpus_output(" 5/3/0/8\n").unwrap(),
            CpuCounts {
                alloc: 5,
                idle: 3,
                other: 0,
                total: 8
            }
        );
        for bad in ["", "5/3/0", "5/3/0/8/1", "a/b/c/d", "-1/0/0/0"] {
            assert!(parse_cpus(bad).is_none(), "{bad}");
        }
        assert!(parse_cpus_output("\n").is_err());
    }

    #[test]
    fn recorded_node_rows_parse_padded_and_compact() {
        for f in [
            include_str!("../../testdata/slurm/sinfo_-h_-N_-O_NodeList,AllocMem,Memory,CPUsState,StateLong.txt"),
            include_str!(
                "../../testdata/slurm/sinfo_-h_-N_-O_NodeList:~,AllocMem:~,Memory:~,CPUsState:~,StateLong:.txt"
            ),
        ] {
            let rows = parse_node_rows(f).unwrap();
            assert_eq!(rows.len(), 2, "one row per partition");
            assert_eq!(rows[0].node, "vm");
            assert_eq!((rows[0].alloc_mem, rows[0].memory, rows[0].cpus.alloc), (0, 21694, 5));
            assert_eq!(rows[0].state, "mixed");
        }
        assert!(parse_node_rows("vm 0 x 1/2/3/4 idle\n").is_err());
    }

    #[test]
    fn gres_rows_parse_untyped_and_typed() {
        let rows = parse_gres_rows(include_str!(
            "../../testdata/slurm/typed-h100/sinfo_-a_-h_--Format=Nodes:~,Gres:~,GresUsed:_--state=idle,allocated.txt"
        ))
        .unwrap();
        assert_eq!(
            rows,
            [GresRow {
                nodes: 1,
                gpus: 4,
                gpus_used: Some(4)
            }]
        );
        let rows = parse_gres_rows("1 gpu:4 gpu:3\n2 (null) (null)\n").unwrap();
        assert_eq!(rows[0].gpus_used, Some(3));
        assert_eq!(
            rows[1],
            GresRow {
                nodes: 2,
                gpus: 0,
                gpus_used: Some(0)
            }
        );
        assert!(parse_gres_rows("x gpu:4\n").is_err());
    }
}
