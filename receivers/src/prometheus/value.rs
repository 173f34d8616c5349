//! Parsing sample values and timestamps from exposition bytes without building strings.
//!
//! Most values a node exports are small integers (counters of bytes, packets, jobs), so those
//! take a digit loop; everything else goes through the standard library's correctly rounded
//! float parser.

/// Parses a sample value: a decimal or exponent float, `NaN`, `+Inf`, `-Inf` (any case).
///
/// Returns `None` when the bytes are not a number. Never yields the staleness marker: a parsed
/// `NaN` is the ordinary quiet NaN.
pub fn parse_value(b: &[u8]) -> Option<f64> {
    if let Some(v) = parse_small_int(b) {
        return Some(v as f64);
    }
    let s = std::str::from_utf8(b).ok()?;
    // Rust accepts "infinity" and "nan" spelled out like Go does; it rejects Go's hex floats and
    // digit separators, which no exporter writes.
    let v: f64 = s.parse().ok()?;
    Some(if v.is_nan() { f64::NAN } else { v })
}

/// Parses an integer of at most 15 digits (exactly representable as `f64`), with an optional
/// sign; `None` for anything else, so the caller falls back to the float parser.
fn parse_small_int(b: &[u8]) -> Option<i64> {
    let (neg, digits) = match b.first()? {
        b'-' => (true, &b[1..]),
        b'+' => (false, &b[1..]),
        _ => (false, b),
    };
    if digits.is_empty() || digits.len() > 15 {
        return None;
    }
    let mut n: i64 = 0;
    for &c in digits {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        n = n * 10 + i64::from(d);
    }
    Some(if neg { -n } else { n })
}

/// Parses a text-format timestamp: integer milliseconds since the epoch, optionally negative.
pub fn parse_timestamp_ms(b: &[u8]) -> Option<i64> {
    if let Some(v) = parse_small_int(b) {
        return Some(v);
    }
    std::str::from_utf8(b).ok()?.parse().ok()
}

/// Parses an OpenMetrics timestamp: seconds since the epoch, possibly fractional, as milliseconds.
pub fn parse_timestamp_seconds(b: &[u8]) -> Option<i64> {
    let secs = parse_value(b)?;
    if !secs.is_finite() {
        return None;
    }
    let ms = (secs * 1000.0).round();
    // Outside this range the value does not fit in i64 milliseconds.
    if ms.abs() >= 9.2e18 {
        return None;
    }
    Some(ms as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_and_floats_parse_like_prometheus() {
        assert_eq!(parse_value(b"0"), Some(0.0));
        assert_eq!(parse_value(b"-12"), Some(-12.0));
        assert_eq!(parse_value(b"+7"), Some(7.0));
        assert_eq!(parse_value(b"123456789012345"), Some(123456789012345.0));
        assert_eq!(parse_value(b"1234567890123456789"), Some(1234567890123456789.0));
        assert_eq!(parse_value(b"1.5e3"), Some(1500.0));
        assert_eq!(parse_value(b"0.000123"), Some(0.000123));
        assert_eq!(parse_value(b"-0.5"), Some(-0.5));
        assert_eq!(parse_value(b"1e-05"), Some(1e-5));
    }

    #[test]
    fn special_values_parse() {
        assert_eq!(parse_value(b"+Inf"), Some(f64::INFINITY));
        assert_eq!(parse_value(b"-Inf"), Some(f64::NEG_INFINITY));
        assert_eq!(parse_value(b"Inf"), Some(f64::INFINITY));
        let nan = parse_value(b"NaN").unwrap();
        assert!(nan.is_nan());
        assert!(!nodetel_core::sample::is_stale_nan(nan));
    }

    #[test]
    fn garbage_is_rejected() {
        for bad in [&b""[..], b"-", b"+", b"abc", b"1,5", b"1.2.3", b"0x", b"\xff", b"1 2"] {
            assert_eq!(parse_value(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn timestamps_parse_in_both_formats() {
        assert_eq!(parse_timestamp_ms(b"1395066363000"), Some(1395066363000));
        assert_eq!(parse_timestamp_ms(b"-5"), Some(-5));
        assert_eq!(parse_timestamp_ms(b"1.5"), None);
        assert_eq!(parse_timestamp_seconds(b"1520879607.789"), Some(1520879607789));
        assert_eq!(parse_timestamp_seconds(b"1520879607"), Some(1520879607000));
        assert_eq!(parse_timestamp_seconds(b"NaN"), None);
        assert_eq!(parse_timestamp_seconds(b"1e300"), None);
    }
}
