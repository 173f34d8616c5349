//! Samples: a millisecond timestamp and an `f64`, including the Prometheus staleness marker.

/// The bit pattern Prometheus uses to mark a series stale (a NaN that no computation yields).
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

/// The staleness marker as a value.
pub fn stale_nan() -> f64 {
    f64::from_bits(STALE_NAN_BITS)
}

/// Whether `v` is the staleness marker (not just any NaN).
pub fn is_stale_nan(v: f64) -> bool {
    v.to_bits() == STALE_NAN_BITS
}

/// One value of a series at one instant.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// Milliseconds since the Unix epoch.
    pub timestamp_ms: i64,
    /// The value; may be NaN, ±Inf or the staleness marker.
    pub value: f64,
}

impl Sample {
    /// A sample.
    pub fn new(timestamp_ms: i64, value: f64) -> Sample {
        Sample { timestamp_ms, value }
    }

    /// Whether this sample marks its series stale.
    pub fn is_stale(&self) -> bool {
        is_stale_nan(self.value)
    }
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staleness_marker_is_distinct_from_ordinary_nan() {
        assert!(is_stale_nan(stale_nan()));
        assert!(stale_nan().is_nan());
        assert!(!is_stale_nan(f64::NAN));
        assert!(Sample::new(1, stale_nan()).is_stale());
        assert!(!Sample::new(1, 0.0).is_stale());
    }
}
