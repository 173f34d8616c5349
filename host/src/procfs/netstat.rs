//! `/proc/net/netstat`, `/proc/net/snmp` (header/value line pairs) and `/proc/net/snmp6`
//! (`Name value` lines): protocol counters.

use std::path::Path;

use super::ReadError;

/// Extended TCP/IP counters, relative to the procfs root.
pub const NETSTAT: &str = "net/netstat";
/// SNMP MIB counters, relative to the procfs root.
pub const SNMP: &str = "net/snmp";
/// IPv6 SNMP counters, relative to the procfs root.
pub const SNMP6: &str = "net/snmp6";

/// Calls `each(protocol, field, value)` for every counter of a netstat or snmp file, where each
/// protocol has a header line of names followed by a line of values.
pub fn parse_pairs<'a>(
    text: &'a str,
    path: &Path,
    mut each: impl FnMut(&'a str, &'a str, f64),
) -> Result<(), ReadError> {
    let mut lines = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty());
    while let Some((i, header)) = lines.next() {
        let err = |line: usize, m: String| ReadError::parse(path, line + 1, m);
        let (protocol, names) = header
            .split_once(':')
            .ok_or_else(|| err(i, format!("expected \"Proto: names...\", found {header:?}")))?;
        let (j, values_line) = lines
            .next()
            .ok_or_else(|| err(i, format!("{protocol} has a header but no values line")))?;
        let (protocol2, values) = values_line
            .split_once(':')
            .ok_or_else(|| err(j, format!("expected \"{protocol}: values...\", found {values_line:?}")))?;
        if protocol2 != protocol {
            return Err(err(j, format!("expected values for {protocol}, found {protocol2}")));
        }
        let mut names = names.split_ascii_whitespace();
        let mut values = values.split_ascii_whitespace();
        loop {
            match (names.next(), values.next()) {
                (Some(name), Some(value)) => {
                    let v = value
                        .parse::<f64>()
                        .map_err(|_| err(j, format!("{protocol} {name}: {value:?} is not a number")))?;
                    each(protocol, name, v);
                }
                (None, None) => break,
                _ => return Err(err(j, format!("{protocol} has different numbers of names and values"))),
            }
        }
    }
    Ok(())
}

/// Calls `each(protocol, field, value)` for every line of `/proc/net/snmp6`, splitting
/// `Icmp6InMsgs` after the `6` into `Icmp6` and `InMsgs`. Lines without a `6` are skipped.
pub fn parse_snmp6<'a>(
    text: &'a str,
    path: &Path,
    mut each: impl FnMut(&'a str, &'a str, f64),
) -> Result<(), ReadError> {
    for (i, line) in text.lines().enumerate() {
        let mut fields = line.split_ascii_whitespace();
        let (Some(key), Some(value)) = (fields.next(), fields.next()) else {
            continue;
        };
        let Some(six) = key.find('6') else { continue };
        let v = value
            .parse::<f64>()
            .map_err(|_| ReadError::parse(path, i + 1, format!("{key}: {value:?} is not a number")))?;
        each(&key[..=six], &key[six + 1..], v);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_and_value_lines_are_zipped() {
        let text = "Tcp: RtoAlgorithm MaxConn ActiveOpens\nTcp: 1 -1 32\nUdp: InDatagrams\nUdp: 56\n";
        let mut got = Vec::new();
        parse_pairs(text, Path::new("snmp"), |p, f, v| got.push((p, f, v))).unwrap();
        assert_eq!(
            got,
            [
                ("Tcp", "RtoAlgorithm", 1.0),
                ("Tcp", "MaxConn", -1.0),
                ("Tcp", "ActiveOpens", 32.0),
                ("Udp", "InDatagrams", 56.0)
            ]
        );
    }

    #[test]
    fn mismatched_pairs_are_errors() {
        let e = parse_pairs("Tcp: A B\nTcp: 1\n", Path::new("/proc/net/snmp"), |_, _, _| {}).unwrap_err();
        assert!(e.to_string().contains("line 2"), "{e}");
        assert!(parse_pairs("Tcp: A\nUdp: 1\n", Path::new("s"), |_, _, _| {}).is_err());
        assert!(parse_pairs("Tcp: A\n", Path::new("s"), |_, _, _| {}).is_err());
        assert!(parse_pairs("Tcp: A\nTcp: x\n", Path::new("s"), |_, _, _| {}).is_err());
    }

    #[test]
    fn snmp6_keys_are_split_after_the_six() {
        let mut got = Vec::new();
        parse_snmp6(
            "Ip6InOctets 128\nIcmp6InMsgs 1\nUdpLite6InErrors 0\n",
            Path::new("snmp6"),
            |p, f, v| got.push((p, f, v)),
        )
        .unwrap();
        assert_eq!(
            got,
            [
                ("Ip6", "InOctets", 128.0),
                ("Icmp6", "InMsgs", 1.0),
                ("UdpLite6", "InErrors", 0.0)
            ]
        );
        assert!(parse_snmp6("Ip6InOctets x\n", Path::new("s"), |_, _, _| {}).is_err());
    }
}
