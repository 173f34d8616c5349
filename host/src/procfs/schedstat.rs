//! `/proc/schedstat`: per-CPU scheduler time counters.

use std::path::Path;

use super::ReadError;

/// The file's path relative to the procfs root.
pub const FILE: &str = "schedstat";

/// One `cpuN` line's last three fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SchedStat<'a> {
    /// The `N` of `cpuN`.
    pub cpu: &'a str,
    /// Nanoseconds spent running tasks.
    pub running_ns: u64,
    /// Nanoseconds tasks spent waiting to run.
    pub waiting_ns: u64,
    /// Timeslices run.
    pub timeslices: u64,
}

/// Iterates the `cpuN` lines (other lines, such as `version` and `domain`, are skipped).
pub fn parse<'a>(text: &'a str, path: &'a Path) -> impl Iterator<Item = Result<SchedStat<'a>, ReadError>> + 'a {
    text.lines().enumerate().filter_map(move |(i, line)| {
        let mut fields = line.split_ascii_whitespace();
        let cpu = fields.next()?.strip_prefix("cpu")?;
        let numbers: Vec<&str> = fields.collect();
        if numbers.len() < 9 {
            return Some(Err(ReadError::parse(
                path,
                i + 1,
                format!("cpu{cpu} has {} fields, expected 9", numbers.len()),
            )));
        }
        let field = |j: usize| {
            numbers[j]
                .parse::<u64>()
                .map_err(|_| ReadError::parse(path, i + 1, format!("{:?} is not a whole number", numbers[j])))
        };
        Some((|| {
            Ok(SchedStat {
                cpu,
                running_ns: field(6)?,
                waiting_ns: field(7)?,
                timeslices: field(8)?,
            })
        })())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lines_yield_the_last_three_fields() {
        let text = "version 15\ntimestamp 4294\ncpu0 0 0 0 0 0 0 2000000000 500 7\ndomain0 3 1 2 3\n";
        let got: Vec<_> = parse(text, Path::new("schedstat")).map(Result::unwrap).collect();
        assert_eq!(
            got,
            [SchedStat {
                cpu: "0",
                running_ns: 2_000_000_000,
                waiting_ns: 500,
                timeslices: 7
            }]
        );
        assert!(parse("cpu0 1 2\n", Path::new("s")).next().unwrap().is_err());
        assert!(
            parse("cpu0 0 0 0 0 0 0 x 0 0\n", Path::new("s"))
                .next()
                .unwrap()
                .is_err()
        );
    }
}
