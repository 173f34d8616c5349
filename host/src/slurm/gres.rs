//! Generic resources (GRES) strings: `gpu:4`, `gpu:h100:2(IDX:0-1)`, `gpu:h100:0(IDX:N/A)`,
//! `gpu:a100:8(S:0-1),nvme:1`, as `scontrol` and `sinfo` print them.

/// One GRES entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gres {
    /// The GRES name (`gpu`).
    pub name: String,
    /// The type (`h100`), if configured.
    pub kind: Option<String>,
    /// How many.
    pub count: u64,
    /// Device indices, when the string carries `(IDX:...)`.
    pub indices: Option<Vec<u32>>,
}

/// Parses a comma-separated GRES list. `(null)`, `N/A` and empty give an empty list; entries
/// that do not parse are skipped (Slurm versions add decorations over time).
pub fn parse_list(s: &str) -> Vec<Gres> {
    let s = s.trim();
    if matches!(s, "" | "(null)" | "N/A") {
        return Vec::new();
    }
    split_top_level(s).filter_map(parse_one).collect()
}

/// The GPU indices of a GRES list (all `gpu` entries), sorted and de-duplicated.
pub fn gpu_indices(s: &str) -> Vec<u32> {
    let mut out: Vec<u32> = parse_list(s)
        .into_iter()
        .filter(|g| g.name == "gpu")
        .flat_map(|g| g.indices.unwrap_or_default())
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// The number of GPUs in a GRES list (sum over `gpu` entries).
pub fn gpu_count(s: &str) -> u64 {
    parse_list(s).iter().filter(|g| g.name == "gpu").map(|g| g.count).sum()
}

fn split_top_level(s: &str) -> impl Iterator<Item = &str> {
    let mut depth = 0i32;
    let mut start = 0;
    let mut parts = Vec::new();
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth <= 0 => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts.into_iter().map(str::trim).filter(|p| !p.is_empty())
}

fn parse_count(s: &str) -> Option<u64> {
    let (digits, mult) = match s.as_bytes().last()? {
        b'K' | b'k' => (&s[..s.len() - 1], 1024),
        b'M' | b'm' => (&s[..s.len() - 1], 1024 * 1024),
        _ => (s, 1),
    };
    digits.parse::<u64>().ok()?.checked_mul(mult)
}

fn parse_one(entry: &str) -> Option<Gres> {
    let (spec, detail) = match entry.split_once('(') {
        Some((spec, rest)) => (spec, Some(rest.trim_end_matches(')'))),
        None => (entry, None),
    };
    // Older `sinfo` prints `gpu:4` or `gpu:h100:4`; a bare `gpu` means one.
    let mut parts = spec.split(':');
    let name = parts.next()?.trim();
    if name.is_empty() {
        return None;
    }
    let rest: Vec<&str> = parts.collect();
    let (kind, count) = match rest.as_slice() {
        [] => (None, 1),
        [c] => match parse_count(c) {
            Some(n) => (None, n),
            None => (Some(*c), 1),
        },
        [t, c, ..] => (Some(*t), parse_count(c)?),
    };
    let indices = detail.and_then(|d| {
        d.split(' ')
            .find_map(|item| item.strip_prefix("IDX:"))
            .map(parse_index_list)
    });
    Some(Gres {
        name: name.to_owned(),
        kind: kind.filter(|k| !k.is_empty()).map(str::to_owned),
        count,
        indices,
    })
}

/// Parses `0-1,3` into `[0, 1, 3]`; `N/A` and malformed ranges give nothing. At most 4096
/// indices, so a corrupt range cannot exhaust memory.
pub fn parse_index_list(s: &str) -> Vec<u32> {
    let mut out = Vec::new();
    if s == "N/A" {
        return out;
    }
    for r in s.split(',') {
        let (lo, hi) = r.split_once('-').unwrap_or((r, r));
        let (Ok(lo), Ok(hi)) = (lo.trim().parse::<u32>(), hi.trim().parse::<u32>()) else {
            continue;
        };
        for i in lo..=hi.min(lo.saturating_add(4095)) {
            if out.len() >= 4096 {
                return out;
            }
            out.push(i);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn untyped_and_typed_gpus_parse() {
        assert_eq!(
            parse_list("gpu:4"),
            [Gres {
                name: "gpu".into(),
                kind: None,
                count: 4,
                indices: None
            }]
        );
        assert_eq!(
            parse_list("gpu:h100:2(IDX:0-1)"),
            [Gres {
                name: "gpu".into(),
                kind: Some("h100".into()),
                count: 2,
                indices: Some(vec![0, 1])
            }]
        );
        assert_eq!(gpu_indices("gpu:2(IDX:2-3)"), [2, 3]);
        assert_eq!(gpu_indices("gpu:h100:3(IDX:0,2-3),nic:1(IDX:0)"), [0, 2, 3]);
        assert_eq!(gpu_indices("gpu:h100:0(IDX:N/A)"), Vec::<u32>::new());
        assert_eq!(gpu_count("gpu:a100:8(S:0-1),nvme:1"), 8);
        assert_eq!(gpu_count("gpu:a100:4,gpu:v100:2"), 6);
        assert_eq!(gpu_count("(null)"), 0);
    }

    #[test]
    fn bad_entries_are_skipped_without_panicking() {
        for s in [
            "gpu:x:y",
            ":",
            "(",
            ")",
            "gpu:(IDX:",
            "gpu:2(IDX:9-1)",
            "gpu:1(IDX:0-4294967295)",
            ",,",
            "gpu:99999999999999999999",
        ] {
            let _ = parse_list(s);
            let _ = gpu_indices(s);
        }
        assert!(gpu_indices("gpu:1(IDX:0-4294967295)").len() <= 4096);
    }
}
