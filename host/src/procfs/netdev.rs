//! `/proc/net/dev`: per network interface traffic counters.

use std::path::Path;

use super::ReadError;

/// The file's path relative to the procfs root.
pub const FILE: &str = "net/dev";

/// The counter names in file order, as node_exporter names them (`receive_` / `transmit_` + name).
pub const FIELDS: [&str; 16] = [
    "receive_bytes",
    "receive_packets",
    "receive_errs",
    "receive_drop",
    "receive_fifo",
    "receive_frame",
    "receive_compressed",
    "receive_multicast",
    "transmit_bytes",
    "transmit_packets",
    "transmit_errs",
    "transmit_drop",
    "transmit_fifo",
    "transmit_colls",
    "transmit_carrier",
    "transmit_compressed",
];

/// One interface's line: its name and the 16 counters in [`FIELDS`] order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NetDev<'a> {
    /// Interface name.
    pub device: &'a str,
    /// Counters in [`FIELDS`] order.
    pub counters: [u64; 16],
}

/// Iterates the interfaces (the two header lines are skipped).
pub fn parse<'a>(text: &'a str, path: &'a Path) -> impl Iterator<Item = Result<NetDev<'a>, ReadError>> + 'a {
    text.lines()
        .enumerate()
        .skip(2)
        .filter(|(_, line)| !line.trim().is_empty())
        .map(move |(i, line)| parse_line(line).map_err(|m| ReadError::parse(path, i + 1, m)))
}

fn parse_line(line: &str) -> Result<NetDev<'_>, String> {
    let (device, rest) = line
        .split_once(':')
        .ok_or_else(|| format!("expected \"device: counters\", found {line:?}"))?;
    let device = device.trim();
    let mut counters = [0u64; 16];
    let mut n = 0;
    for f in rest.split_ascii_whitespace() {
        if n == counters.len() {
            return Err(format!("{device} has more than 16 counters"));
        }
        counters[n] = f
            .parse()
            .map_err(|_| format!("{device}: {f:?} is not a whole number"))?;
        n += 1;
    }
    if n != counters.len() {
        return Err(format!("{device} has {n} counters, expected 16"));
    }
    Ok(NetDev { device, counters })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:   62907      62    0    0    0     0          0         0    62907      62    0    0    0     0       0          0
  eth0: 95370321    4272    1    2    3     4          5         6   287175    2774    7    8    9    10      11         12
";

    #[test]
    fn interfaces_and_counters_are_parsed() {
        let got: Vec<_> = parse(SAMPLE, Path::new("dev")).map(Result::unwrap).collect();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].device, "lo");
        assert_eq!(got[1].device, "eth0");
        assert_eq!(got[1].counters[0], 95_370_321);
        assert_eq!(
            got[1].counters[FIELDS.iter().position(|f| *f == "transmit_colls").unwrap()],
            10
        );
        assert_eq!(got[1].counters[15], 12);
    }

    #[test]
    fn malformed_lines_are_errors() {
        let bad = "h1\nh2\n  eth0: 1 2 3\n";
        let err = parse(bad, Path::new("/proc/net/dev")).next().unwrap().unwrap_err();
        assert!(err.to_string().contains("line 3"), "{err}");
        assert!(parse("h\nh\nnocolon 1\n", Path::new("d")).next().unwrap().is_err());
    }
}
