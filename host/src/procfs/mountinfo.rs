//! `/proc/<pid>/mountinfo`: the mount table.

use std::borrow::Cow;
use std::path::Path;

use super::ReadError;

/// One mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount<'a> {
    /// Device major number.
    pub major: u32,
    /// Device minor number.
    pub minor: u32,
    /// Where it is mounted, with the kernel's octal escapes (`\040`) decoded.
    pub mount_point: Cow<'a, str>,
    /// Per-mount options (`rw,noatime`).
    pub options: &'a str,
    /// Filesystem type (`ext4`).
    pub fs_type: &'a str,
    /// Mount source (`/dev/nvme0n1p1`), escapes decoded.
    pub source: Cow<'a, str>,
}

impl Mount<'_> {
    /// Whether the mount is read-only.
    pub fn read_only(&self) -> bool {
        self.options.split(',').any(|o| o == "ro")
    }
}

/// Decodes the kernel's `\ooo` octal escapes (space, tab, newline, backslash).
pub fn unescape(s: &str) -> Cow<'_, str> {
    if !s.contains('\\') {
        return Cow::Borrowed(s);
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c)) {
            let v = (b[i + 1] - b'0') as u32 * 64 + (b[i + 2] - b'0') as u32 * 8 + (b[i + 3] - b'0') as u32;
            if let Ok(byte) = u8::try_from(v) {
                out.push(byte);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

/// Iterates the mounts of mountinfo text.
pub fn parse<'a>(text: &'a str, path: &'a Path) -> impl Iterator<Item = Result<Mount<'a>, ReadError>> + 'a {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(move |(i, line)| parse_line(line).map_err(|m| ReadError::parse(path, i + 1, m)))
}

fn parse_line(line: &str) -> Result<Mount<'_>, String> {
    let bad = || {
        format!(
            "expected \"id parent major:minor root mountpoint options ... - fstype source superoptions\", found {line:?}"
        )
    };
    // Spaces inside fields are escaped as \040, so whitespace separates fields.
    let mut fields = line.split_ascii_whitespace();
    let _id = fields.next().ok_or_else(bad)?;
    let _parent = fields.next().ok_or_else(bad)?;
    let (major, minor) = fields.next().and_then(|f| f.split_once(':')).ok_or_else(bad)?;
    let major = major.parse().map_err(|_| bad())?;
    let minor = minor.parse().map_err(|_| bad())?;
    let _root = fields.next().ok_or_else(bad)?;
    let mount_point = unescape(fields.next().ok_or_else(bad)?);
    let options = fields.next().ok_or_else(bad)?;
    // Optional fields (`shared:1`, `master:2`) end at a lone "-".
    fields.by_ref().find(|f| *f == "-").ok_or_else(bad)?;
    let fs_type = fields.next().ok_or_else(bad)?;
    let source = unescape(fields.next().ok_or_else(bad)?);
    Ok(Mount {
        major,
        minor,
        mount_point,
        options,
        fs_type,
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mounts_are_parsed_with_optional_fields() {
        let text = "29 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw\n\
                    40 29 0:35 / /mnt/my\\040disk ro,nosuid master:3 shared:2 - tmpfs tmp\\040fs rw,size=10k\n";
        let got: Vec<_> = parse(text, Path::new("mountinfo")).map(Result::unwrap).collect();
        assert_eq!(got[0].mount_point, "/");
        assert_eq!(got[0].fs_type, "ext4");
        assert_eq!(got[0].source, "/dev/vda");
        assert_eq!((got[0].major, got[0].minor), (254, 0));
        assert!(!got[0].read_only());
        assert_eq!(got[1].mount_point, "/mnt/my disk");
        assert_eq!(got[1].source, "tmp fs");
        assert!(got[1].read_only());
    }

    #[test]
    fn malformed_lines_are_errors() {
        let e = parse("29 1 254:0 / / rw - ext4\n1 2 x\n", Path::new("/proc/1/mountinfo"))
            .find_map(Result::err)
            .unwrap();
        assert!(e.to_string().contains("line 1"), "{e}");
        assert!(
            parse("29 1 254:0 / / rw shared:1 ext4 src rw\n", Path::new("m"))
                .next()
                .unwrap()
                .is_err()
        );
        assert_eq!(unescape("a\\134b\\"), "a\\b\\");
    }
}
