//! `/proc/meminfo`: one `Key: value [kB]` line per memory counter.
//!
//! The set of keys differs between kernels, so the parser yields every line and leaves the choice
//! of keys to the caller. It borrows from the text and does not allocate.

use std::path::Path;

use super::ReadError;

/// The file's path relative to the procfs root.
pub const FILE: &str = "meminfo";

/// One line of `/proc/meminfo`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MeminfoField<'a> {
    /// The key as the kernel writes it, without the colon (`MemTotal`, `Active(anon)`).
    pub key: &'a str,
    /// The number as written.
    pub value: u64,
    /// Whether the line has a `kB` unit (every line but the `HugePages_*` counts).
    pub kilobytes: bool,
}

impl MeminfoField<'_> {
    /// The value in bytes for `kB` lines, the plain number otherwise.
    pub fn scaled(&self) -> u64 {
        if self.kilobytes {
            self.value.saturating_mul(1024)
        } else {
            self.value
        }
    }
}

/// Iterates the fields of `/proc/meminfo` text; a malformed line yields an error naming it.
pub fn fields<'a>(text: &'a str, path: &'a Path) -> impl Iterator<Item = Result<MeminfoField<'a>, ReadError>> + 'a {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(move |(i, line)| parse_line(line).map_err(|message| ReadError::parse(path, i + 1, message)))
}

fn parse_line(line: &str) -> Result<MeminfoField<'_>, String> {
    let (key, rest) = line
        .split_once(':')
        .ok_or_else(|| format!("expected \"Key: value [kB]\", found {line:?}"))?;
    let mut parts = rest.split_ascii_whitespace();
    let number = parts.next().ok_or_else(|| format!("{key} has no value"))?;
    let value = number
        .parse::<u64>()
        .map_err(|_| format!("the value of {key}, {number:?}, is not a whole number"))?;
    let kilobytes = match (parts.next(), parts.next()) {
        (None, None) => false,
        (Some("kB"), None) => true,
        _ => return Err(format!("expected \"Key: value [kB]\", found {line:?}")),
    };
    Ok(MeminfoField {
        key: key.trim(),
        value,
        kilobytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kilobyte_and_plain_lines() {
        let text = "MemTotal:       24684084 kB\nActive(anon):       1552 kB\nHugePages_Total:       3\n";
        let got: Vec<_> = fields(text, Path::new("meminfo")).map(Result::unwrap).collect();
        assert_eq!(got.len(), 3);
        assert_eq!(got[0].key, "MemTotal");
        assert_eq!(got[0].scaled(), 24_684_084 * 1024);
        assert_eq!(got[1].key, "Active(anon)");
        assert_eq!(got[1].scaled(), 1552 * 1024);
        assert_eq!(got[2].key, "HugePages_Total");
        assert!(!got[2].kilobytes);
        assert_eq!(got[2].scaled(), 3);
    }

    #[test]
    fn malformed_lines_are_reported_with_their_number() {
        let text = "MemTotal: 1 kB\nMemFree: lots kB\n";
        let err = fields(text, Path::new("/proc/meminfo")).find_map(Result::err).unwrap();
        let msg = err.to_string();
        assert!(msg.contains("/proc/meminfo, line 2"), "{msg}");
        assert!(msg.contains("\"lots\""), "{msg}");
        for bad in ["no colon here", "Key:", "Key: 1 MB", "Key: 1 kB extra"] {
            assert!(
                fields(bad, Path::new("m")).next().unwrap().is_err(),
                "{bad:?} should be rejected"
            );
        }
    }
}
