//! Remote write 1.0 `WriteRequest` bytes, written by hand over the label bytes cached in each
//! label set, then compressed with snappy (block format) and hashed for SigV4.
//!
//! Each interned label pair already holds its complete `TimeSeries.labels` field, so encoding a
//! series is one length prefix, a memcpy per pair and 11 to 20 bytes per sample. Nothing here
//! allocates per series: the request buffer is reused, and only the compressed body of a sealed
//! request is a fresh allocation (it is handed to the sender and possibly the disk queue).

use bytes::Bytes;
use nodetel_core::labels::{Labels, varint_len};
use nodetel_core::metadata::{MetricMetadata, MetricType};
use nodetel_core::sample::Sample;
use sha2::{Digest, Sha256};

/// `WriteRequest.timeseries` = 1, length-delimited.
const TAG_TIMESERIES: u8 = 0x0a;
/// `WriteRequest.metadata` = 3, length-delimited.
const TAG_METADATA: u8 = 0x1a;
/// `TimeSeries.samples` = 2, length-delimited.
const TAG_SAMPLE: u8 = 0x12;
/// `Sample.value` = 1, 64-bit.
const TAG_VALUE: u8 = 0x09;
/// `Sample.timestamp` = 2, varint.
const TAG_TIMESTAMP: u8 = 0x10;

#[inline]
fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// The protobuf enum value of a metric type in `MetricMetadata.type`.
pub fn metric_type_code(kind: MetricType) -> i32 {
    match kind {
        MetricType::Unknown => 0,
        MetricType::Counter => 1,
        MetricType::Gauge => 2,
        MetricType::Histogram => 3,
        MetricType::GaugeHistogram => 4,
        MetricType::Summary => 5,
        MetricType::Info => 6,
        MetricType::StateSet => 7,
    }
}

/// Body length of one `Sample` message. Zero fields are left out, as proto3 encoders do.
#[inline]
fn sample_body_len(s: &Sample) -> usize {
    let mut n = 0;
    if s.value.to_bits() != 0 {
        n += 9;
    }
    if s.timestamp_ms != 0 {
        n += 1 + varint_len(s.timestamp_ms as u64);
    }
    n
}

/// Length of one series' `TimeSeries` body (labels plus samples), without its own tag and length.
#[inline]
pub fn series_body_len(labels: &Labels, samples: &[Sample]) -> usize {
    labels.encoded_len() + samples_len(samples)
}

/// Encoded length of `samples` as `TimeSeries.samples` fields.
#[inline]
pub fn samples_len(samples: &[Sample]) -> usize {
    samples
        .iter()
        .map(|s| {
            let b = sample_body_len(s);
            1 + varint_len(b as u64) + b
        })
        .sum()
}

/// Accumulates encoded series (and metadata) of one request in a reused buffer.
#[derive(Debug, Default)]
pub struct RequestEncoder {
    buf: Vec<u8>,
    meta: Vec<u8>,
    samples: usize,
    series: usize,
    metadata: usize,
}

impl RequestEncoder {
    /// An empty encoder.
    pub fn new() -> RequestEncoder {
        RequestEncoder::default()
    }

    /// Appends one series. `labels_len` must be `labels.encoded_len()` (callers cache it).
    #[inline]
    pub fn push_series_with_len(&mut self, labels: &Labels, labels_len: usize, samples: &[Sample]) {
        let body = labels_len + samples_len(samples);
        self.buf.reserve(1 + varint_len(body as u64) + body);
        self.buf.push(TAG_TIMESERIES);
        put_varint(&mut self.buf, body as u64);
        labels.encode_to(&mut self.buf);
        for s in samples {
            let b = sample_body_len(s);
            self.buf.push(TAG_SAMPLE);
            put_varint(&mut self.buf, b as u64);
            if s.value.to_bits() != 0 {
                self.buf.push(TAG_VALUE);
                self.buf.extend_from_slice(&s.value.to_le_bytes());
            }
            if s.timestamp_ms != 0 {
                self.buf.push(TAG_TIMESTAMP);
                put_varint(&mut self.buf, s.timestamp_ms as u64);
            }
        }
        self.samples += samples.len();
        self.series += 1;
    }

    /// Appends one series.
    pub fn push_series(&mut self, labels: &Labels, samples: &[Sample]) {
        self.push_series_with_len(labels, labels.encoded_len(), samples);
    }

    /// Appends one family's metadata.
    pub fn push_metadata(&mut self, m: &MetricMetadata) {
        let code = metric_type_code(m.kind) as u64;
        let field = |len: usize| if len == 0 { 0 } else { 1 + varint_len(len as u64) + len };
        let body = if code == 0 { 0 } else { 1 + varint_len(code) }
            + field(m.family.len())
            + field(m.help.len())
            + field(m.unit.len());
        self.meta.push(TAG_METADATA);
        put_varint(&mut self.meta, body as u64);
        if code != 0 {
            self.meta.push(0x08);
            put_varint(&mut self.meta, code);
        }
        for (tag, text) in [(0x12u8, &m.family), (0x22, &m.help), (0x2a, &m.unit)] {
            if !text.is_empty() {
                self.meta.push(tag);
                put_varint(&mut self.meta, text.len() as u64);
                self.meta.extend_from_slice(text.as_bytes());
            }
        }
        self.metadata += 1;
    }

    /// Uncompressed size of the request so far.
    pub fn len_bytes(&self) -> usize {
        self.buf.len() + self.meta.len()
    }

    /// Samples in the request so far.
    pub fn samples(&self) -> usize {
        self.samples
    }

    /// Series in the request so far.
    pub fn series(&self) -> usize {
        self.series
    }

    /// Whether nothing was added since the last [`RequestEncoder::clear`].
    pub fn is_empty(&self) -> bool {
        self.series == 0 && self.metadata == 0
    }

    /// The complete `WriteRequest` bytes. Metadata goes after the series (field order is free).
    pub fn finish(&mut self) -> &[u8] {
        if !self.meta.is_empty() {
            self.buf.extend_from_slice(&self.meta);
            self.meta.clear();
        }
        &self.buf
    }

    /// Empties the encoder, keeping its buffers.
    pub fn clear(&mut self) {
        self.buf.clear();
        self.meta.clear();
        self.samples = 0;
        self.series = 0;
        self.metadata = 0;
    }
}

/// A sealed request: compressed body and its payload hash, ready to send, retry or persist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedRequest {
    /// Snappy block-compressed `WriteRequest`.
    pub body: Bytes,
    /// Lower-case hex SHA-256 of `body`, computed once and reused by every signing attempt.
    pub sha256: String,
    /// Samples inside.
    pub samples: u32,
    /// Series inside.
    pub series: u32,
}

impl EncodedRequest {
    /// Wraps a compressed body, hashing it.
    pub fn new(body: Bytes, samples: u32, series: u32) -> EncodedRequest {
        let sha256 = hex(&Sha256::digest(&body));
        EncodedRequest {
            body,
            sha256,
            samples,
            series,
        }
    }
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

/// Why compression failed (only on inputs beyond snappy's 4 GiB block limit).
#[derive(Debug, thiserror::Error)]
#[error("snappy compression of a {len}-byte request failed: {source}")]
pub struct CompressError {
    len: usize,
    source: snap::Error,
}

/// Snappy block compressor with a reused hash table.
pub struct Compressor {
    encoder: snap::raw::Encoder,
}

impl std::fmt::Debug for Compressor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Compressor")
    }
}

impl Default for Compressor {
    fn default() -> Self {
        Compressor::new()
    }
}

impl Compressor {
    /// A compressor.
    pub fn new() -> Compressor {
        Compressor {
            encoder: snap::raw::Encoder::new(),
        }
    }

    /// Compresses `input` into a fresh, exactly sized buffer.
    pub fn compress(&mut self, input: &[u8]) -> Result<Bytes, CompressError> {
        let mut out = vec![0u8; snap::raw::max_compress_len(input.len())];
        let n = self.encoder.compress(input, &mut out).map_err(|source| CompressError {
            len: input.len(),
            source,
        })?;
        out.truncate(n);
        Ok(Bytes::from(out))
    }

    /// Compresses `input` into `out` (reused), returning the compressed length. For benchmarks
    /// and callers that copy the body elsewhere anyway.
    pub fn compress_into(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<usize, CompressError> {
        out.resize(snap::raw::max_compress_len(input.len()), 0);
        let n = self.encoder.compress(input, out).map_err(|source| CompressError {
            len: input.len(),
            source,
        })?;
        out.truncate(n);
        Ok(n)
    }

    /// Seals the encoder's contents into a request and clears the encoder.
    pub fn seal(&mut self, enc: &mut RequestEncoder) -> Result<EncodedRequest, CompressError> {
        let samples = enc.samples() as u32;
        let series = enc.series() as u32;
        let body = self.compress(enc.finish())?;
        enc.clear();
        Ok(EncodedRequest::new(body, samples, series))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remote_write::proto;
    use nodetel_core::batch::Batch;
    use nodetel_core::labels::METRIC_NAME;
    use nodetel_core::sample::stale_nan;
    use prost::Message;
    use std::sync::Arc;

    fn batch() -> Batch {
        let mut b = Batch::new();
        let long = "x".repeat(200);
        let sets = [
            Labels::from_pairs([(METRIC_NAME, "node_cpu_seconds_total"), ("cpu", "0"), ("mode", "idle")]).unwrap(),
            Labels::from_pairs([(METRIC_NAME, "up"), ("job", "node_exporter"), ("long", long.as_str())]).unwrap(),
            Labels::from_pairs([(METRIC_NAME, "DCGM_FI_DEV_GPU_TEMP"), ("gpu", "7")]).unwrap(),
        ];
        let values = [1.5, 0.0, -2.25, f64::INFINITY, f64::NAN, stale_nan(), 1e300];
        let stamps = [1_700_000_000_123i64, 0, -5, 1];
        let mut i = 0;
        for labels in &sets {
            for _ in 0..3 {
                b.push(
                    labels.clone(),
                    Sample::new(stamps[i % stamps.len()], values[i % values.len()]),
                );
                i += 1;
            }
        }
        // A series with several samples.
        let mut s = nodetel_core::batch::Series::new(sets[0].clone(), Sample::new(10, 1.0));
        s.samples.push(Sample::new(20, 2.0));
        s.samples.push(Sample::new(30, 3.0));
        b.series.push(s);
        b.metadata.push(Arc::new(MetricMetadata::new(
            "node_cpu_seconds_total",
            MetricType::Counter,
            "Seconds the CPUs spent in each mode.",
        )));
        b.metadata.push(Arc::new(MetricMetadata {
            family: "up".into(),
            kind: MetricType::Unknown,
            help: "".into(),
            unit: "".into(),
        }));
        b
    }

    fn encode(b: &Batch, with_meta: bool) -> Vec<u8> {
        let mut enc = RequestEncoder::new();
        for s in &b.series {
            enc.push_series(&s.labels, &s.samples);
        }
        if with_meta {
            for m in &b.metadata {
                enc.push_metadata(m);
            }
        }
        enc.finish().to_vec()
    }

    #[test]
    fn hand_encoding_is_byte_identical_to_prost() {
        let b = batch();
        for with_meta in [false, true] {
            let ours = encode(&b, with_meta);
            let theirs = proto::WriteRequest::from_batch(&b, with_meta).encode_to_vec();
            assert_eq!(ours, theirs, "metadata: {with_meta}");
        }
    }

    #[test]
    fn hand_encoding_decodes_to_the_same_values() {
        let b = batch();
        let decoded = proto::WriteRequest::decode(&encode(&b, true)[..]).unwrap();
        assert_eq!(decoded.timeseries.len(), b.series.len());
        for (got, want) in decoded.timeseries.iter().zip(&b.series) {
            let names: Vec<_> = got.labels.iter().map(|l| (l.name.as_str(), l.value.as_str())).collect();
            assert_eq!(names, want.labels.iter().collect::<Vec<_>>());
            assert_eq!(got.samples.len(), want.samples.len());
            for (g, w) in got.samples.iter().zip(&want.samples) {
                assert_eq!(g.timestamp, w.timestamp_ms);
                assert_eq!(g.value.to_bits(), w.value.to_bits(), "NaN payloads survive");
            }
        }
        assert_eq!(decoded.metadata[0].r#type, proto::MetricType::Counter as i32);
        assert_eq!(decoded.metadata[0].metric_family_name, "node_cpu_seconds_total");
        assert_eq!(decoded.metadata[1].help, "");
    }

    #[test]
    fn counters_and_lengths_track_the_buffer() {
        let b = batch();
        let mut enc = RequestEncoder::new();
        assert!(enc.is_empty());
        let s = &b.series[9];
        enc.push_series(&s.labels, &s.samples);
        let body = series_body_len(&s.labels, &s.samples);
        assert_eq!(enc.len_bytes(), 1 + varint_len(body as u64) + body);
        assert_eq!((enc.series(), enc.samples()), (1, 3));
        enc.clear();
        assert!(enc.is_empty());
        assert_eq!(enc.len_bytes(), 0);
    }

    #[test]
    fn sealed_requests_decompress_and_carry_their_hash() {
        let b = batch();
        let mut enc = RequestEncoder::new();
        for s in &b.series {
            enc.push_series(&s.labels, &s.samples);
        }
        let raw = enc.finish().to_vec();
        let mut c = Compressor::new();
        let req = c.seal(&mut enc).unwrap();
        assert!(enc.is_empty(), "sealing clears the encoder");
        assert_eq!(req.samples as usize, b.sample_count());
        assert_eq!(req.series as usize, b.series.len());
        let plain = snap::raw::Decoder::new().decompress_vec(&req.body).unwrap();
        assert_eq!(plain, raw);
        assert_eq!(req.sha256, hex(&Sha256::digest(&req.body)));
        assert_eq!(req.sha256.len(), 64);
        assert_eq!(hex(&[0x00, 0xab, 0xff]), "00abff");
    }
}
