//! `/proc/pressure/<resource>`: pressure stall information (PSI) totals.

use std::path::Path;

use super::ReadError;

/// The directory of the PSI files, relative to the procfs root.
pub const DIR: &str = "pressure";

/// The `some` and `full` stall totals of one resource, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pressure {
    /// Time at least one task stalled on the resource.
    pub some_total_us: Option<u64>,
    /// Time all non-idle tasks stalled at once.
    pub full_total_us: Option<u64>,
}

/// Parses a PSI file (`some avg10=0.00 avg60=0.00 avg300=0.00 total=123`).
pub fn parse(text: &str, path: &Path) -> Result<Pressure, ReadError> {
    let mut out = Pressure::default();
    for (i, line) in text.lines().enumerate() {
        let mut fields = line.split_ascii_whitespace();
        let slot = match fields.next() {
            Some("some") => &mut out.some_total_us,
            Some("full") => &mut out.full_total_us,
            Some(other) => return Err(ReadError::parse(path, i + 1, format!("unknown line kind {other:?}"))),
            None => continue,
        };
        let total = fields
            .find_map(|f| f.strip_prefix("total="))
            .ok_or_else(|| ReadError::parse(path, i + 1, "missing total="))?;
        *slot = Some(
            total
                .parse()
                .map_err(|_| ReadError::parse(path, i + 1, format!("total={total:?} is not a whole number")))?,
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn some_and_full_totals_are_read() {
        let p = parse(
            "some avg10=0.00 avg60=0.00 avg300=0.00 total=4587244\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=4104135\n",
            Path::new("io"),
        )
        .unwrap();
        assert_eq!(p.some_total_us, Some(4_587_244));
        assert_eq!(p.full_total_us, Some(4_104_135));
        let cpu = parse("some avg10=1.00 avg60=0.00 avg300=0.00 total=7\n", Path::new("cpu")).unwrap();
        assert_eq!((cpu.some_total_us, cpu.full_total_us), (Some(7), None));
        assert!(parse("some avg10=0.00\n", Path::new("x")).is_err());
        assert!(parse("half total=1\n", Path::new("x")).is_err());
    }
}
