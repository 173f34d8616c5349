//! `/proc/diskstats`: per block device I/O counters.

use std::path::Path;

use super::ReadError;

/// The file's path relative to the procfs root.
pub const FILE: &str = "diskstats";

/// One device's line. Times are in milliseconds; sectors are 512 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DiskStats<'a> {
    /// Device major number.
    pub major: u32,
    /// Device minor number.
    pub minor: u32,
    /// Device name (`nvme0n1`).
    pub device: &'a str,
    /// Reads completed.
    pub reads_completed: u64,
    /// Adjacent reads merged.
    pub reads_merged: u64,
    /// Sectors read.
    pub sectors_read: u64,
    /// Milliseconds spent reading.
    pub read_time_ms: u64,
    /// Writes completed.
    pub writes_completed: u64,
    /// Adjacent writes merged.
    pub writes_merged: u64,
    /// Sectors written.
    pub sectors_written: u64,
    /// Milliseconds spent writing.
    pub write_time_ms: u64,
    /// I/Os in flight now.
    pub io_now: u64,
    /// Milliseconds the device was busy.
    pub io_time_ms: u64,
    /// Weighted milliseconds spent doing I/O.
    pub io_weighted_ms: u64,
    /// Discards completed, merged, sectors discarded and milliseconds (kernel 4.18+).
    pub discards: Option<[u64; 4]>,
    /// Flush requests completed and milliseconds (kernel 5.5+).
    pub flushes: Option<[u64; 2]>,
}

/// Iterates the devices in `/proc/diskstats` text.
pub fn parse<'a>(text: &'a str, path: &'a Path) -> impl Iterator<Item = Result<DiskStats<'a>, ReadError>> + 'a {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(move |(i, line)| parse_line(line).map_err(|m| ReadError::parse(path, i + 1, m)))
}

fn parse_line(line: &str) -> Result<DiskStats<'_>, String> {
    let mut fields = line.split_ascii_whitespace();
    let mut id = |what: &str| -> Result<u32, String> {
        let f = fields.next().ok_or_else(|| format!("missing the {what} number"))?;
        f.parse().map_err(|_| format!("{what} {f:?} is not a device number"))
    };
    let major = id("major")?;
    let minor = id("minor")?;
    let device = fields.next().ok_or_else(|| "missing the device name".to_owned())?;
    let mut v = [0u64; 17];
    let mut n = 0;
    for f in fields.take(17) {
        v[n] = f
            .parse()
            .map_err(|_| format!("{device}: {f:?} is not a whole number"))?;
        n += 1;
    }
    if n < 11 {
        return Err(format!("{device} has {n} counters, expected at least 11"));
    }
    Ok(DiskStats {
        major,
        minor,
        device,
        reads_completed: v[0],
        reads_merged: v[1],
        sectors_read: v[2],
        read_time_ms: v[3],
        writes_completed: v[4],
        writes_merged: v[5],
        sectors_written: v[6],
        write_time_ms: v[7],
        io_now: v[8],
        io_time_ms: v[9],
        io_weighted_ms: v[10],
        discards: (n >= 15).then(|| [v[11], v[12], v[13], v[14]]),
        flushes: (n >= 17).then(|| [v[15], v[16]]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_and_new_kernel_lines_parse() {
        let text = " 254       0 vda 47816 7282 4750106 52848 6446 38041 6880928 27093 0 8752 80986 5966 67 863424 1037 160 5\n\
                    8 1 sda1 1 2 3 4 5 6 7 8 9 10 11\n";
        let got: Vec<_> = parse(text, Path::new("diskstats")).map(Result::unwrap).collect();
        assert_eq!(got[0].device, "vda");
        assert_eq!((got[0].major, got[0].minor), (254, 0));
        assert_eq!(got[0].sectors_read, 4_750_106);
        assert_eq!(got[0].io_weighted_ms, 80_986);
        assert_eq!(got[0].discards, Some([5966, 67, 863_424, 1037]));
        assert_eq!(got[0].flushes, Some([160, 5]));
        assert_eq!(got[1].device, "sda1");
        assert_eq!(got[1].discards, None);
        assert_eq!(got[1].flushes, None);
    }

    #[test]
    fn short_or_garbled_lines_are_errors() {
        let err = parse("8 0 sda 1 2 3\n", Path::new("/proc/diskstats"))
            .next()
            .unwrap()
            .unwrap_err();
        assert!(err.to_string().contains("line 1"), "{err}");
        assert!(
            parse("8 0 sda 1 2 3 4 5 6 7 8 9 x 11\n", Path::new("d"))
                .next()
                .unwrap()
                .is_err()
        );
        assert!(parse("x 0 sda\n", Path::new("d")).next().unwrap().is_err());
    }
}
