//! `/proc/net/sockstat` and `sockstat6`: socket counts per protocol.

use std::path::Path;

use super::ReadError;

/// The IPv4 file, relative to the procfs root.
pub const FILE: &str = "net/sockstat";
/// The IPv6 file, relative to the procfs root.
pub const FILE6: &str = "net/sockstat6";

/// One `name value` pair of a protocol line (`TCP: inuse 1 orphan 0`), or of `sockets: used N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SockstatValue<'a> {
    /// The protocol (`TCP`, `UDP6`, `sockets`).
    pub protocol: &'a str,
    /// The field (`inuse`, `mem`, `used`).
    pub field: &'a str,
    /// The number.
    pub value: u64,
}

/// Calls `each` with every `(protocol, field, value)` of a sockstat file, in file order.
pub fn parse<'a>(text: &'a str, path: &Path, mut each: impl FnMut(SockstatValue<'a>)) -> Result<(), ReadError> {
    for (i, line) in text.lines().enumerate() {
        let err = |m: String| ReadError::parse(path, i + 1, m);
        if line.trim().is_empty() {
            continue;
        }
        let (protocol, rest) = line
            .split_once(':')
            .ok_or_else(|| err(format!("expected \"PROTO: name value ...\", found {line:?}")))?;
        let protocol = protocol.trim();
        let mut fields = rest.split_ascii_whitespace();
        while let Some(field) = fields.next() {
            let value = fields
                .next()
                .ok_or_else(|| err(format!("{protocol} {field} has no value")))?;
            let value = value
                .parse()
                .map_err(|_| err(format!("{protocol} {field}: {value:?} is not a whole number")))?;
            each(SockstatValue { protocol, field, value });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_lines_become_triples() {
        let text = "sockets: used 17\nTCP: inuse 1 orphan 0 tw 2 alloc 1 mem 184\nFRAG: inuse 0 memory 0\n";
        let mut got = Vec::new();
        parse(text, Path::new("sockstat"), |v| got.push(v)).unwrap();
        assert_eq!(got.len(), 1 + 5 + 2);
        assert_eq!(
            got[0],
            SockstatValue {
                protocol: "sockets",
                field: "used",
                value: 17
            }
        );
        assert_eq!((got[5].field, got[5].value), ("mem", 184));
        assert_eq!((got[7].protocol, got[7].field), ("FRAG", "memory"));
    }

    #[test]
    fn malformed_lines_are_errors() {
        assert!(parse("TCP: inuse\n", Path::new("s"), |_| {}).is_err());
        assert!(parse("TCP: inuse x\n", Path::new("s"), |_| {}).is_err());
        let err = parse("ok: a 1\ngarbage\n", Path::new("/proc/net/sockstat"), |_| {}).unwrap_err();
        assert!(err.to_string().contains("line 2"), "{err}");
    }
}
