//! Small files that hold whitespace-separated numbers (`sys/fs/file-nr`,
//! `sys/kernel/random/entropy_avail`) and `key value` line files (`vmstat`).

use std::path::Path;

use super::ReadError;

/// Parses the first `N` whitespace-separated whole numbers of `text`.
pub fn parse_numbers<const N: usize>(text: &str, path: &Path) -> Result<[u64; N], ReadError> {
    let mut out = [0u64; N];
    let mut fields = text.split_ascii_whitespace();
    for (i, slot) in out.iter_mut().enumerate() {
        let field = fields
            .next()
            .ok_or_else(|| ReadError::parse(path, 1, format!("expected {N} numbers, found {i}")))?;
        *slot = field
            .parse()
            .map_err(|_| ReadError::parse(path, 1, format!("{field:?} is not a whole number")))?;
    }
    Ok(out)
}

/// Iterates the `key value` lines of `text` (as in `/proc/vmstat`), values as `f64` since a few
/// kernel counters can be negative.
pub fn key_values<'a>(text: &'a str, path: &'a Path) -> impl Iterator<Item = Result<(&'a str, f64), ReadError>> + 'a {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(move |(i, line)| {
            let mut fields = line.split_ascii_whitespace();
            match (fields.next(), fields.next(), fields.next()) {
                (Some(key), Some(value), None) => value.parse::<f64>().map(|v| (key, v)).map_err(|_| {
                    ReadError::parse(path, i + 1, format!("the value of {key}, {value:?}, is not a number"))
                }),
                _ => Err(ReadError::parse(
                    path,
                    i + 1,
                    format!("expected \"key value\", found {line:?}"),
                )),
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_parsed_in_order() {
        let [a, _, m] = parse_numbers::<3>("495\t0\t2466170\n", Path::new("file-nr")).unwrap();
        assert_eq!((a, m), (495, 2_466_170));
        assert!(parse_numbers::<3>("1 2\n", Path::new("f")).is_err());
        assert!(parse_numbers::<1>("x\n", Path::new("f")).is_err());
    }

    #[test]
    fn key_value_lines_are_parsed_and_checked() {
        let got: Vec<_> = key_values("pgfault 12\nnr_x -3\n", Path::new("vmstat"))
            .map(Result::unwrap)
            .collect();
        assert_eq!(got, [("pgfault", 12.0), ("nr_x", -3.0)]);
        let err = key_values("a 1\nb two\n", Path::new("vmstat"))
            .nth(1)
            .unwrap()
            .unwrap_err();
        assert!(err.to_string().contains("line 2"), "{err}");
        assert!(key_values("a 1 2\n", Path::new("v")).next().unwrap().is_err());
    }
}
