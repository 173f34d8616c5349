//! Slurm host lists (`ip-10-1-[2-4,7]`, `gpu[001-003]-ib`): expansion and membership.

/// Expands a host list into names, stopping after `limit` names (a guard against
/// `n[0-99999999]`). Malformed parts are kept as written.
pub fn expand(list: &str, limit: usize) -> Vec<String> {
    let mut out = Vec::new();
    for part in split_top_level(list) {
        if out.len() >= limit {
            break;
        }
        expand_part(part, String::new(), &mut out, limit);
    }
    out
}

/// Whether `name` is one of the hosts in `list`.
pub fn contains(list: &str, name: &str) -> bool {
    split_top_level(list).any(|part| part_contains(part, name))
}

/// Splits at commas outside brackets.
fn split_top_level(list: &str) -> impl Iterator<Item = &str> {
    let mut depth = 0i32;
    let mut start = 0;
    let mut parts = Vec::new();
    for (i, c) in list.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => depth -= 1,
            ',' if depth <= 0 => {
                parts.push(&list[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&list[start..]);
    parts.into_iter().map(str::trim).filter(|p| !p.is_empty())
}

/// `(low, high, width)` of each range in `0-3,07,9`; `None` when malformed.
fn ranges(spec: &str) -> Option<Vec<(u64, u64, usize)>> {
    spec.split(',')
        .map(|r| {
            let (lo, hi) = r.split_once('-').unwrap_or((r, r));
            let width = if lo.len() > 1 && lo.starts_with('0') {
                lo.len()
            } else {
                0
            };
            let (l, h) = (lo.parse::<u64>().ok()?, hi.parse::<u64>().ok()?);
            (l <= h).then_some((l, h, width))
        })
        .collect()
}

fn expand_part(part: &str, prefix: String, out: &mut Vec<String>, limit: usize) {
    let Some((head, rest)) = part.split_once('[') else {
        out.push(prefix + part);
        return;
    };
    let Some((spec, tail)) = rest.split_once(']') else {
        out.push(prefix + part);
        return;
    };
    let Some(rs) = ranges(spec) else {
        out.push(prefix + part);
        return;
    };
    for (lo, hi, width) in rs {
        for n in lo..=hi {
            if out.len() >= limit {
                return;
            }
            expand_part(tail, format!("{prefix}{head}{n:0width$}"), out, limit);
        }
    }
}

fn part_contains(part: &str, name: &str) -> bool {
    let Some((head, rest)) = part.split_once('[') else {
        return part == name;
    };
    let Some((spec, tail)) = rest.split_once(']') else {
        return part == name;
    };
    let Some(after_head) = name.strip_prefix(head) else {
        return false;
    };
    let Some(rs) = ranges(spec) else {
        return part == name;
    };
    // Try every split of the digits that follow the prefix; the tail may hold more brackets.
    let digits = after_head.bytes().take_while(u8::is_ascii_digit).count();
    (1..=digits).any(|len| {
        let (num, remainder) = after_head.split_at(len);
        let Ok(n) = num.parse::<u64>() else { return false };
        rs.iter().any(|&(lo, hi, width)| {
            n >= lo
                && n <= hi
                && (width == 0 || num.len() == width)
                && (width > 0 || !num.starts_with('0') || num == "0")
        }) && part_contains(tail, remainder)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_expand() {
        assert_eq!(expand("vm", 100), ["vm"]);
        assert_eq!(
            expand("ip-10-1-[2-4,7]", 100),
            ["ip-10-1-2", "ip-10-1-3", "ip-10-1-4", "ip-10-1-7"]
        );
        assert_eq!(
            expand("gpu[08-10]-ib,cpu1", 100),
            ["gpu08-ib", "gpu09-ib", "gpu10-ib", "cpu1"]
        );
        assert_eq!(expand("r[1-2]n[1-2]", 100), ["r1n1", "r1n2", "r2n1", "r2n2"]);
        assert_eq!(expand("n[0-99999999]", 3).len(), 3);
    }

    #[test]
    fn membership_matches_expansion() {
        for list in ["vm", "ip-10-1-[2-4,7]", "gpu[08-10]-ib,cpu1", "r[1-2]n[1-2]", "a[1-12]"] {
            let names = expand(list, 1000);
            for n in &names {
                assert!(contains(list, n), "{n} in {list}");
            }
            for n in ["ip-10-1-5", "gpu8-ib", "r3n1", "a13", "a01", "vm1", ""] {
                assert_eq!(contains(list, n), names.iter().any(|x| x == n), "{n} in {list}");
            }
        }
    }

    #[test]
    fn malformed_lists_do_not_panic() {
        for s in [
            "[", "]", "a[", "a[]", "a[x-y]", "a[3-1]", "a[1-2", ",,", "a[1-2]]", "[[1]]",
        ] {
            let _ = expand(s, 10);
            let _ = contains(s, "a1");
        }
    }
}
