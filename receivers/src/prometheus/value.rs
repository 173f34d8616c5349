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
    if let Some(v) = parse_short_decimal(b) {
        return Some(v);
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

/// Exact powers of ten: every one up to 10^22 is representable in an `f64`.
const POW10: [f64; 16] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
];

/// Parses `[sign]digits.digits` with at most 15 digits in all, the shape of most non-integer
/// values exporters write (CPU seconds, temperatures, ratios); `None` for anything else.
///
/// The digits form an integer below 2^53 and the divisor is an exact power of ten, so the one
/// IEEE division is correctly rounded: the same value the full float parser returns, without the
/// UTF-8 check and the general algorithm.
fn parse_short_decimal(b: &[u8]) -> Option<f64> {
    let (neg, digits) = match b.first()? {
        b'-' => (true, &b[1..]),
        b'+' => (false, &b[1..]),
        _ => (false, b),
    };
    let dot = digits.iter().position(|&c| c == b'.')?;
    let (int, frac) = (&digits[..dot], &digits[dot + 1..]);
    if int.len() + frac.len() > 15 || int.len() + frac.len() == 0 {
        return None;
    }
    let mut n: u64 = 0;
    for &c in int.iter().chain(frac) {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        n = n * 10 + u64::from(d);
    }
    let v = n as f64 / POW10[frac.len()];
    Some(if neg { -v } else { v })
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
    fn short_decimals_match_the_full_parser_bit_for_bit() {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut cases: Vec<String> = [
            "0.0",
            "-0.0",
            "1.",
            ".5",
            "+.25",
            "0.1",
            "0.3",
            "123456789012.345",
            "9.99999999999999",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        for _ in 0..200_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let digits = (x % 15 + 1) as usize;
            let mantissa = (x >> 8) % 10u64.pow(digits as u32);
            let text = format!("{mantissa:0digits$}");
            let dot = ((x >> 4) % (digits as u64 + 1)) as usize;
            let sign = ["", "-", "+"][((x >> 60) % 3) as usize];
            cases.push(format!("{sign}{}.{}", &text[..dot], &text[dot..]));
        }
        for c in cases {
            let want: f64 = c.parse().unwrap();
            let got = parse_value(c.as_bytes()).unwrap();
            assert_eq!(got.to_bits(), want.to_bits(), "{c}");
        }
        for not_short in ["1234567890123456.5", "1.5e3", "1.2.3", ".", "-.", "1.a"] {
            assert_eq!(parse_short_decimal(not_short.as_bytes()), None, "{not_short}");
        }
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
