//! Smaller `/proc/net` tables: `softnet_stat`, `stat/nf_conntrack`, `udp`/`udp6` queues and
//! `arp`.

use std::path::Path;

use super::ReadError;

/// Per-CPU packet processing counters from `/proc/net/softnet_stat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Softnet {
    /// The CPU (its own column on kernels 5.10+, the row number before).
    pub cpu: u32,
    /// Packets processed.
    pub processed: u64,
    /// Packets dropped because the backlog was full.
    pub dropped: u64,
    /// Times the budget ran out with work left.
    pub time_squeezed: u64,
    /// Collisions taking the device lock while transmitting.
    pub cpu_collision: u64,
    /// Times the CPU was woken to process packets steered to it (RPS).
    pub received_rps: u64,
    /// Times the flow limit was reached.
    pub flow_limit_count: u64,
    /// Packets in the backlog now.
    pub backlog_len: u64,
}

fn hex(field: &str, path: &Path, line: usize) -> Result<u64, ReadError> {
    u64::from_str_radix(field, 16).map_err(|_| ReadError::parse(path, line, format!("{field:?} is not a hex number")))
}

/// Parses `/proc/net/softnet_stat` (hex columns; 9 on old kernels, 13 or more on new ones).
pub fn parse_softnet(text: &str, path: &Path) -> Result<Vec<Softnet>, ReadError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let mut v = [0u64; 13];
        let mut n = 0;
        for f in line.split_ascii_whitespace().take(13) {
            v[n] = hex(f, path, i + 1)?;
            n += 1;
        }
        if n < 9 {
            return Err(ReadError::parse(
                path,
                i + 1,
                format!("{n} columns, expected at least 9"),
            ));
        }
        out.push(Softnet {
            cpu: if n >= 13 {
                u32::try_from(v[12]).map_err(|_| ReadError::parse(path, i + 1, "CPU number out of range"))?
            } else {
                u32::try_from(out.len()).unwrap_or(u32::MAX)
            },
            processed: v[0],
            dropped: v[1],
            time_squeezed: v[2],
            cpu_collision: v[8],
            received_rps: v[9],
            flow_limit_count: v[10],
            backlog_len: v[11],
        });
    }
    Ok(out)
}

/// Sums each column of `/proc/net/stat/nf_conntrack` (a header line, then hex values per CPU)
/// and calls `each(column, sum)`.
pub fn parse_conntrack_stat(text: &str, path: &Path, mut each: impl FnMut(&str, u64)) -> Result<(), ReadError> {
    let mut lines = text.lines().enumerate();
    let Some((_, header)) = lines.next() else {
        return Ok(());
    };
    let names: Vec<&str> = header.split_ascii_whitespace().collect();
    let mut sums = vec![0u64; names.len()];
    for (i, line) in lines {
        if line.trim().is_empty() {
            continue;
        }
        let values: Vec<&str> = line.split_ascii_whitespace().collect();
        if values.len() != names.len() {
            return Err(ReadError::parse(
                path,
                i + 1,
                format!("{} values for {} columns", values.len(), names.len()),
            ));
        }
        for (sum, v) in sums.iter_mut().zip(values) {
            *sum = sum.wrapping_add(hex(v, path, i + 1)?);
        }
    }
    for (name, sum) in names.iter().zip(sums) {
        each(name, sum);
    }
    Ok(())
}

/// The summed transmit and receive queue bytes of all sockets in `/proc/net/udp` or `udp6`.
pub fn parse_udp_queues(text: &str, path: &Path) -> Result<(u64, u64), ReadError> {
    let (mut tx, mut rx) = (0u64, 0u64);
    for (i, line) in text.lines().enumerate().skip(1) {
        let Some(queues) = line.split_ascii_whitespace().nth(4) else {
            continue;
        };
        let (t, r) = queues
            .split_once(':')
            .ok_or_else(|| ReadError::parse(path, i + 1, format!("expected tx_queue:rx_queue, found {queues:?}")))?;
        tx = tx.saturating_add(hex(t, path, i + 1)?);
        rx = rx.saturating_add(hex(r, path, i + 1)?);
    }
    Ok((tx, rx))
}

/// Calls `each(device)` for every entry of `/proc/net/arp`.
pub fn parse_arp<'a>(text: &'a str, mut each: impl FnMut(&'a str)) {
    for line in text.lines().skip(1) {
        if let Some(device) = line.split_ascii_whitespace().nth(5) {
            each(device);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn softnet_rows_parse_on_old_and_new_kernels() {
        let new = "00002276 00000001 00000002 0 0 0 0 0 00000003 00000004 00000005 00000006 00000007 0 0\n";
        let s = parse_softnet(new, Path::new("softnet_stat")).unwrap();
        assert_eq!(
            s[0],
            Softnet {
                cpu: 7,
                processed: 0x2276,
                dropped: 1,
                time_squeezed: 2,
                cpu_collision: 3,
                received_rps: 4,
                flow_limit_count: 5,
                backlog_len: 6
            }
        );
        let old = "1 0 0 0 0 0 0 0 0\n2 0 0 0 0 0 0 0 0\n";
        let s = parse_softnet(old, Path::new("s")).unwrap();
        assert_eq!((s[1].cpu, s[1].processed), (1, 2));
        assert!(parse_softnet("1 2 3\n", Path::new("s")).is_err());
        assert!(parse_softnet("zz 0 0 0 0 0 0 0 0\n", Path::new("s")).is_err());
    }

    #[test]
    fn conntrack_columns_are_summed() {
        let text = "entries found drop\n00000001 00000002 0000000a\n00000001 00000003 00000000\n";
        let mut got = Vec::new();
        parse_conntrack_stat(text, Path::new("nf"), |n, v| got.push((n.to_owned(), v))).unwrap();
        assert_eq!(got, [("entries".into(), 2), ("found".into(), 5), ("drop".into(), 10)]);
        assert!(parse_conntrack_stat("a b\n1\n", Path::new("nf"), |_, _| {}).is_err());
    }

    #[test]
    fn udp_queues_are_summed() {
        let text = "  sl  local_address rem_address   st tx_queue rx_queue tr\n\
                    0: 00000000:0044 00000000:0000 07 00000010:00000020 00:00000000\n\
                    1: 00000000:0045 00000000:0000 07 00000001:00000002 00:00000000\n";
        assert_eq!(parse_udp_queues(text, Path::new("udp")).unwrap(), (0x11, 0x22));
        assert!(parse_udp_queues("h\n0: a b c 12\n", Path::new("udp")).is_err());
    }

    #[test]
    fn arp_entries_name_their_device() {
        let text = "IP address HW type Flags HW address Mask Device\n\
                    192.0.2.1 0x1 0x2 02:fc:00:00:00:05 * eth0\n192.0.2.2 0x1 0x2 02:fc:00:00:00:06 * eth0\n";
        let mut got = Vec::new();
        parse_arp(text, |d| got.push(d));
        assert_eq!(got, ["eth0", "eth0"]);
    }
}
