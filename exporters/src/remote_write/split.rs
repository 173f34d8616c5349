//! Splitting a sealed request in two, for endpoints that answer 413 (request too large).
//!
//! The request is decompressed and its top-level protobuf fields are cut at a series boundary:
//! the first half keeps the first half of the series and all metadata, the second half the rest.
//! Nothing is re-encoded, so the halves carry exactly the bytes of the original series. This runs
//! only after a 413, which a well-sized `max_batch_size_bytes` makes rare.

use bytes::Bytes;

use crate::remote_write::encode::{Compressor, EncodedRequest};

/// `WriteRequest.timeseries`.
const FIELD_TIMESERIES: u64 = 1;
/// `TimeSeries.samples`.
const FIELD_SAMPLES: u64 = 2;

/// Why a request could not be split.
#[derive(Debug, thiserror::Error)]
pub enum SplitError {
    /// The body is not valid snappy.
    #[error("cannot decompress the request: {0}")]
    Snappy(#[from] snap::Error),
    /// The body is not a well-formed `WriteRequest`.
    #[error("malformed WriteRequest at byte {0}")]
    Malformed(usize),
    /// A half could not be compressed.
    #[error(transparent)]
    Compress(#[from] crate::remote_write::encode::CompressError),
}

fn varint(buf: &[u8], pos: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *buf.get(*pos)?;
        *pos += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return Some(v);
        }
    }
    None
}

/// One top-level field: its number and byte range (tag included).
fn fields(buf: &[u8]) -> Result<Vec<(u64, std::ops::Range<usize>)>, SplitError> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < buf.len() {
        let start = pos;
        let key = varint(buf, &mut pos).ok_or(SplitError::Malformed(start))?;
        let end = match key & 7 {
            0 => {
                varint(buf, &mut pos).ok_or(SplitError::Malformed(start))?;
                pos
            }
            1 => pos + 8,
            2 => {
                let len = varint(buf, &mut pos).ok_or(SplitError::Malformed(start))?;
                pos.checked_add(usize::try_from(len).map_err(|_| SplitError::Malformed(start))?)
                    .ok_or(SplitError::Malformed(start))?
            }
            5 => pos + 4,
            _ => return Err(SplitError::Malformed(start)),
        };
        if end > buf.len() {
            return Err(SplitError::Malformed(start));
        }
        pos = end;
        out.push((key >> 3, start..end));
    }
    Ok(out)
}

/// Samples in one encoded `TimeSeries` field (tag and length included).
fn samples_in(field: &[u8]) -> Result<u32, SplitError> {
    let mut pos = 0;
    varint(field, &mut pos).ok_or(SplitError::Malformed(0))?;
    varint(field, &mut pos).ok_or(SplitError::Malformed(0))?;
    let n = fields(&field[pos..])?
        .iter()
        .filter(|(f, _)| *f == FIELD_SAMPLES)
        .count();
    Ok(n as u32)
}

/// The two halves of `req`, or `None` when it holds a single series (nothing left to split).
pub fn split_in_halves(req: &EncodedRequest) -> Result<Option<(EncodedRequest, EncodedRequest)>, SplitError> {
    let raw = snap::raw::Decoder::new().decompress_vec(&req.body)?;
    let all = fields(&raw)?;
    let series: Vec<&std::ops::Range<usize>> = all
        .iter()
        .filter(|(f, _)| *f == FIELD_TIMESERIES)
        .map(|(_, r)| r)
        .collect();
    if series.len() < 2 {
        return Ok(None);
    }
    let mid = series.len() / 2;
    let mut comp = Compressor::new();
    let mut half = |parts: &[&std::ops::Range<usize>], extra: &mut dyn Iterator<Item = &std::ops::Range<usize>>| {
        let mut buf = Vec::with_capacity(raw.len() / 2 + 64);
        let mut samples = 0u32;
        for r in parts {
            samples += samples_in(&raw[(*r).clone()])?;
            buf.extend_from_slice(&raw[(*r).clone()]);
        }
        for r in extra {
            buf.extend_from_slice(&raw[r.clone()]);
        }
        let body: Bytes = comp.compress(&buf)?;
        Ok::<_, SplitError>(EncodedRequest::new(body, samples, parts.len() as u32))
    };
    let mut others = all.iter().filter(|(f, _)| *f != FIELD_TIMESERIES).map(|(_, r)| r);
    let first = half(&series[..mid], &mut others)?;
    let second = half(&series[mid..], &mut std::iter::empty())?;
    Ok(Some((first, second)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remote_write::encode::RequestEncoder;
    use crate::remote_write::proto::WriteRequest;
    use nodetel_core::labels::Labels;
    use nodetel_core::metadata::{MetricMetadata, MetricType};
    use nodetel_core::sample::Sample;
    use prost::Message;

    fn request(series: usize) -> EncodedRequest {
        let mut enc = RequestEncoder::new();
        for i in 0..series {
            let idx = i.to_string();
            let l = Labels::from_pairs([("__name__", "m"), ("i", idx.as_str())]).unwrap();
            let samples: Vec<Sample> = (0..=i as i64).map(|t| Sample::new(t + 1, t as f64)).collect();
            enc.push_series(&l, &samples);
        }
        enc.push_metadata(&MetricMetadata::new("m", MetricType::Gauge, "help"));
        Compressor::new().seal(&mut enc).unwrap()
    }

    fn decode(r: &EncodedRequest) -> WriteRequest {
        WriteRequest::decode(&snap::raw::Decoder::new().decompress_vec(&r.body).unwrap()[..]).unwrap()
    }

    #[test]
    fn halves_hold_every_series_once_with_counts_and_metadata() {
        let req = request(5);
        assert_eq!((req.series, req.samples), (5, 15));
        let (a, b) = split_in_halves(&req).unwrap().unwrap();
        assert_eq!((a.series, a.samples, b.series, b.samples), (2, 3, 3, 12));
        let (da, db) = (decode(&a), decode(&b));
        let whole = decode(&req);
        let mut joined = da.timeseries.clone();
        joined.extend(db.timeseries.clone());
        assert_eq!(joined, whole.timeseries);
        assert_eq!(da.metadata, whole.metadata);
        assert!(db.metadata.is_empty());
        assert_ne!(a.sha256, b.sha256);
    }

    #[test]
    fn one_series_cannot_be_split_and_garbage_is_an_error() {
        assert!(split_in_halves(&request(1)).unwrap().is_none());
        let bad = EncodedRequest::new(Bytes::from_static(b"\x05\x10\xff\xff"), 1, 1);
        assert!(split_in_halves(&bad).is_err());
    }
}
