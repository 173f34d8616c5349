//! Counting inside a remote write 1.0 `WriteRequest` without decoding it into messages: samples,
//! series, the newest sample timestamp, and the values of `scrape_duration_seconds` series.

/// What one request held.
#[derive(Default, Debug, PartialEq)]
pub(crate) struct Counts {
    pub(crate) series: u64,
    pub(crate) samples: u64,
    pub(crate) max_timestamp_ms: i64,
    /// Sum, count and maximum of the `scrape_duration_seconds` samples.
    pub(crate) scrape_duration: (f64, u64, f64),
}

/// Walks the protobuf; `None` when it is malformed.
pub(crate) fn count(buf: &[u8]) -> Option<Counts> {
    let mut c = Counts::default();
    let mut r = Reader(buf);
    while !r.0.is_empty() {
        let (field, wire) = r.key()?;
        if field == 1 && wire == 2 {
            series(r.bytes()?, &mut c)?;
        } else {
            r.skip(wire)?;
        }
    }
    Some(c)
}

fn series(buf: &[u8], c: &mut Counts) -> Option<()> {
    c.series += 1;
    let mut r = Reader(buf);
    let mut is_scrape_duration = false;
    while !r.0.is_empty() {
        match r.key()? {
            (1, 2) => {
                let label = r.bytes()?;
                if label.starts_with(b"\x0a\x08__name__") {
                    is_scrape_duration = label.ends_with(b"\x12\x17scrape_duration_seconds");
                }
            }
            (2, 2) => {
                let mut s = Reader(r.bytes()?);
                c.samples += 1;
                while !s.0.is_empty() {
                    match s.key()? {
                        (1, 1) => {
                            let v = f64::from_le_bytes(s.take(8)?.try_into().ok()?);
                            if is_scrape_duration && v.is_finite() {
                                c.scrape_duration.0 += v;
                                c.scrape_duration.1 += 1;
                                c.scrape_duration.2 = c.scrape_duration.2.max(v);
                            }
                        }
                        (2, 0) => c.max_timestamp_ms = c.max_timestamp_ms.max(s.varint()? as i64),
                        (_, wire) => s.skip(wire)?,
                    }
                }
            }
            (_, wire) => r.skip(wire)?,
        }
    }
    Some(())
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let (&b, rest) = self.0.split_first()?;
            self.0 = rest;
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Some(v);
            }
        }
        None
    }

    fn key(&mut self) -> Option<(u64, u8)> {
        let k = self.varint()?;
        Some((k >> 3, (k & 7) as u8))
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.0.len() {
            return None;
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Some(a)
    }

    fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = usize::try_from(self.varint()?).ok()?;
        self.take(n)
    }

    fn skip(&mut self, wire: u8) -> Option<()> {
        match wire {
            0 => self.varint().map(drop),
            1 => self.take(8).map(drop),
            2 => self.bytes().map(drop),
            5 => self.take(4).map(drop),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn len_field(field: u8, body: &[u8], out: &mut Vec<u8>) {
        out.push(field << 3 | 2);
        out.push(body.len() as u8);
        out.extend_from_slice(body);
    }

    #[test]
    fn counts_samples_timestamps_and_scrape_durations() {
        let mut req = Vec::new();
        for (name, value, ts) in [("scrape_duration_seconds", 0.5f64, 100u8), ("up", 1.0, 90)] {
            let mut label = Vec::new();
            len_field(1, b"__name__", &mut label);
            len_field(2, name.as_bytes(), &mut label);
            let mut sample = vec![0x09];
            sample.extend_from_slice(&value.to_le_bytes());
            sample.extend_from_slice(&[0x10, ts]);
            let mut ts_msg = Vec::new();
            len_field(1, &label, &mut ts_msg);
            len_field(2, &sample, &mut ts_msg);
            len_field(2, &sample, &mut ts_msg);
            len_field(1, &ts_msg, &mut req);
        }
        let c = count(&req).unwrap_or_default();
        assert_eq!((c.series, c.samples), (2, 4));
        assert_eq!(c.max_timestamp_ms, 100);
        assert_eq!(c.scrape_duration, (1.0, 2, 0.5));
        assert!(count(&req[..req.len() - 1]).is_none());
    }
}
