//! `/proc/loadavg`: the 1, 5 and 15 minute load averages.

use std::path::Path;

use super::{ReadError, read_into};

/// The file's path relative to the procfs root.
pub const FILE: &str = "loadavg";

/// The load averages from `/proc/loadavg`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct LoadAvg {
    /// 1-minute load average.
    pub load1: f64,
    /// 5-minute load average.
    pub load5: f64,
    /// 15-minute load average.
    pub load15: f64,
}

/// Parses the text of `/proc/loadavg` (`path` is only used in errors).
pub fn parse(text: &str, path: &Path) -> Result<LoadAvg, ReadError> {
    let mut fields = text.split_ascii_whitespace();
    let mut next = |what: &str| -> Result<f64, ReadError> {
        let field = fields
            .next()
            .ok_or_else(|| ReadError::parse(path, 1, format!("missing the {what} load average")))?;
        field
            .parse::<f64>()
            .map_err(|_| ReadError::parse(path, 1, format!("the {what} load average {field:?} is not a number")))
    };
    Ok(LoadAvg {
        load1: next("1-minute")?,
        load5: next("5-minute")?,
        load15: next("15-minute")?,
    })
}

/// Reads and parses the loadavg file at `path`, using `buf` as the read buffer.
pub fn read(path: &Path, buf: &mut String) -> Result<LoadAvg, ReadError> {
    read_into(path, buf)?;
    parse(buf, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_three_averages() {
        let l = parse("0.23 0.26 0.13 4/107 8047\n", Path::new("loadavg")).unwrap();
        assert_eq!(
            l,
            LoadAvg {
                load1: 0.23,
                load5: 0.26,
                load15: 0.13
            }
        );
    }

    #[test]
    fn rejects_short_or_garbled_files() {
        let err = parse("0.23 0.26\n", Path::new("loadavg")).unwrap_err();
        assert!(err.to_string().contains("15-minute"), "{err}");
        let err = parse("0.23 x 0.1\n", Path::new("loadavg")).unwrap_err();
        assert!(err.to_string().contains("\"x\" is not a number"), "{err}");
        assert!(parse("", Path::new("loadavg")).is_err());
    }
}
