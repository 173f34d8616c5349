//! The persistent queue: sealed requests that could not be sent, kept in segment files and
//! replayed in order.
//!
//! Layout: a directory of segment files named by a 20-digit sequence number (`…0001.seg`), each
//! a run of records `[len: u32 LE][crc32 of payload: u32 LE][payload]`, where the payload is
//! `[samples: u32 LE][series: u32 LE][snappy body]`. A `cursor` file holds the sequence number and
//! offset of the first record not yet sent, so a restart does not resend what was delivered; it is
//! replaced by rename, so a failed write keeps the previous cursor.
//!
//! Durability: every record is written with one `write` call, so a killed process loses nothing
//! that was pushed. Segments are fsynced when they are rotated and when the queue is closed; a
//! power loss can therefore lose the unsynced tail of the newest segment, and a torn record is
//! detected by its length or CRC and ends the reading of that segment. After a restart, writing
//! always starts a fresh segment, so nothing is ever appended after a torn record.
//!
//! Bounds: the segments together stay under `max_size_bytes`; when a push would pass it, whole
//! segments are dropped from the oldest end and their samples counted. Nothing is written while
//! the endpoint is healthy: the exporter only pushes here when a send fails.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use bytes::Bytes;

use crate::remote_write::encode::EncodedRequest;

const HEADER: u64 = 8;
const PAYLOAD_PREFIX: usize = 8;
/// A record larger than this is treated as corruption (requests are bounded far below).
const MAX_RECORD: u32 = 256 << 20;
const CURSOR: &str = "cursor";
const CURSOR_TMP: &str = "cursor.tmp";

/// A disk queue failure, with the file involved.
#[derive(Debug, thiserror::Error)]
#[error("disk queue: {what} {path}: {source}")]
pub struct DiskQueueError {
    what: &'static str,
    path: PathBuf,
    source: std::io::Error,
}

fn io_err(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> DiskQueueError {
    let path = path.to_path_buf();
    move |source| DiskQueueError { what, path, source }
}

#[derive(Debug, Clone)]
struct Segment {
    seq: u64,
    /// Bytes of valid records.
    bytes: u64,
    /// Records not yet consumed.
    records: u64,
    /// Samples in records not yet consumed.
    samples: u64,
}

/// What the queue dropped to stay within its size.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Evicted {
    /// Requests dropped.
    pub records: u64,
    /// Samples in them.
    pub samples: u64,
}

/// A push that failed, with what it had evicted before failing (those samples are gone too).
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct PushError {
    /// Why the write failed.
    #[source]
    pub error: DiskQueueError,
    /// Dropped from the oldest end before the write was tried.
    pub evicted: Evicted,
}

/// A FIFO of sealed requests on disk.
#[derive(Debug)]
pub struct DiskQueue {
    dir: PathBuf,
    max_bytes: u64,
    segment_bytes: u64,
    segments: VecDeque<Segment>,
    writer: Option<File>,
    /// Offset of the next unconsumed record in the oldest segment.
    read_offset: u64,
    /// The next record, read but not yet acknowledged, with its size on disk.
    peeked: Option<(EncodedRequest, u64)>,
    /// Highest sequence number used so far; never reused, so the cursor cannot point past a
    /// newer segment.
    last_seq: u64,
}

fn segment_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{seq:020}.seg"))
}

/// Reads the record at the reader's position; `Ok(None)` at the end of valid data.
fn read_record(file: &mut File) -> std::io::Result<Option<(EncodedRequest, u64)>> {
    let mut head = [0u8; HEADER as usize];
    match file.read_exact(&mut head) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
    let crc = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
    if len > MAX_RECORD || (len as usize) < PAYLOAD_PREFIX {
        return Ok(None);
    }
    let mut payload = vec![0u8; len as usize];
    match file.read_exact(&mut payload) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    if crc32fast::hash(&payload) != crc {
        return Ok(None);
    }
    let samples = u32::from_le_bytes([payload[0], payload[1], payload[2], payload[3]]);
    let series = u32::from_le_bytes([payload[4], payload[5], payload[6], payload[7]]);
    let body = Bytes::from(payload).slice(PAYLOAD_PREFIX..);
    Ok(Some((
        EncodedRequest::new(body, samples, series),
        HEADER + u64::from(len),
    )))
}

impl DiskQueue {
    /// Opens (creating) the queue in `dir` and scans what an earlier run left.
    pub fn open(dir: &Path, max_bytes: u64) -> Result<DiskQueue, DiskQueueError> {
        fs::create_dir_all(dir).map_err(io_err("cannot create directory", dir))?;
        let mut seqs = Vec::new();
        for entry in fs::read_dir(dir).map_err(io_err("cannot list", dir))? {
            let entry = entry.map_err(io_err("cannot list", dir))?;
            let name = entry.file_name();
            let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(".seg")) else {
                continue;
            };
            if let Ok(seq) = stem.parse::<u64>() {
                seqs.push(seq);
            }
        }
        seqs.sort_unstable();
        let (cursor_seq, cursor_off) = read_cursor(dir);
        let last_seq = seqs.last().copied().unwrap_or(0).max(cursor_seq);
        let mut segments = VecDeque::new();
        let mut read_offset = 0;
        for seq in seqs {
            if seq < cursor_seq {
                // Fully delivered before the restart; the delete did not happen.
                let _ = fs::remove_file(segment_path(dir, seq));
                continue;
            }
            let path = segment_path(dir, seq);
            let mut f = File::open(&path).map_err(io_err("cannot open", &path))?;
            let mut seg = Segment {
                seq,
                bytes: 0,
                records: 0,
                samples: 0,
            };
            let start = if seq == cursor_seq { cursor_off } else { 0 };
            while let Some((req, size)) = read_record(&mut f).map_err(io_err("cannot read", &path))? {
                if seg.bytes >= start {
                    seg.records += 1;
                    seg.samples += u64::from(req.samples);
                }
                seg.bytes += size;
            }
            if segments.is_empty() {
                read_offset = start.min(seg.bytes);
            }
            if seg.records == 0 {
                let _ = fs::remove_file(&path);
                if segments.is_empty() {
                    read_offset = 0;
                }
                continue;
            }
            segments.push_back(seg);
        }
        Ok(DiskQueue {
            dir: dir.to_path_buf(),
            max_bytes,
            segment_bytes: (max_bytes / 8).clamp(1 << 20, 64 << 20),
            segments,
            writer: None,
            read_offset,
            peeked: None,
            last_seq,
        })
    }

    /// Requests waiting.
    pub fn records(&self) -> u64 {
        self.segments.iter().map(|s| s.records).sum()
    }

    /// Samples waiting.
    pub fn samples(&self) -> u64 {
        self.segments.iter().map(|s| s.samples).sum()
    }

    /// Bytes on disk.
    pub fn bytes(&self) -> u64 {
        self.segments.iter().map(|s| s.bytes).sum()
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.records() == 0
    }

    fn rotate(&mut self) -> Result<(), DiskQueueError> {
        if let Some(w) = self.writer.take() {
            let seq = self.segments.back().map_or(0, |s| s.seq);
            w.sync_all()
                .map_err(io_err("cannot sync", &segment_path(&self.dir, seq)))?;
        }
        self.last_seq += 1;
        let seq = self.last_seq;
        let path = segment_path(&self.dir, seq);
        let f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io_err("cannot create", &path))?;
        // Make the new file's name durable with the next directory sync; best effort.
        if let Ok(d) = File::open(&self.dir) {
            let _ = d.sync_all();
        }
        self.segments.push_back(Segment {
            seq,
            bytes: 0,
            records: 0,
            samples: 0,
        });
        self.writer = Some(f);
        Ok(())
    }

    /// Appends a request, evicting the oldest segments if the queue would outgrow its bound.
    pub fn push(&mut self, req: &EncodedRequest) -> Result<Evicted, PushError> {
        let size = HEADER + (PAYLOAD_PREFIX + req.body.len()) as u64;
        let mut evicted = Evicted::default();
        while self.bytes() + size > self.max_bytes && !self.segments.is_empty() {
            let is_writer = self.segments.len() == 1 && self.writer.is_some();
            let Some(old) = self.segments.pop_front() else { break };
            if is_writer {
                self.writer = None;
            }
            evicted.records += old.records;
            evicted.samples += old.samples;
            self.read_offset = 0;
            self.peeked = None;
            let _ = fs::remove_file(segment_path(&self.dir, old.seq));
        }
        let full = self.segments.back().is_none_or(|s| s.bytes + size > self.segment_bytes);
        if self.writer.is_none() || full {
            self.rotate().map_err(|error| PushError { error, evicted })?;
        }
        let mut record = Vec::with_capacity(size as usize);
        let mut payload_head = [0u8; PAYLOAD_PREFIX];
        payload_head[..4].copy_from_slice(&req.samples.to_le_bytes());
        payload_head[4..].copy_from_slice(&req.series.to_le_bytes());
        let mut crc = crc32fast::Hasher::new();
        crc.update(&payload_head);
        crc.update(&req.body);
        record.extend_from_slice(&((PAYLOAD_PREFIX + req.body.len()) as u32).to_le_bytes());
        record.extend_from_slice(&crc.finalize().to_le_bytes());
        record.extend_from_slice(&payload_head);
        record.extend_from_slice(&req.body);
        let Some(seg) = self.segments.back_mut() else {
            return Ok(evicted);
        };
        let path = segment_path(&self.dir, seg.seq);
        if let Some(w) = self.writer.as_mut()
            && let Err(e) = w.write_all(&record)
        {
            // A short write (disk full) leaves a torn record; records appended after it would be
            // unreadable. Cut the file back to its valid bytes, or, failing that, stop writing to
            // this segment so the next push starts a fresh one.
            if w.set_len(seg.bytes).is_err() {
                self.writer = None;
            }
            return Err(PushError {
                error: io_err("cannot write", &path)(e),
                evicted,
            });
        }
        seg.bytes += size;
        seg.records += 1;
        seg.samples += u64::from(req.samples);
        Ok(evicted)
    }

    /// The oldest request not yet acknowledged.
    pub fn peek(&mut self) -> Result<Option<EncodedRequest>, DiskQueueError> {
        loop {
            if let Some((req, _)) = &self.peeked {
                return Ok(Some(req.clone()));
            }
            let Some(seg) = self.segments.front() else {
                return Ok(None);
            };
            let path = segment_path(&self.dir, seg.seq);
            if seg.records > 0 {
                let mut f = File::open(&path).map_err(io_err("cannot open", &path))?;
                f.seek(SeekFrom::Start(self.read_offset))
                    .map_err(io_err("cannot seek", &path))?;
                if let Some(r) = read_record(&mut f).map_err(io_err("cannot read", &path))? {
                    self.peeked = Some(r);
                    continue;
                }
                tracing::warn!(path = %path.display(), lost = seg.records, "Disk queue segment is damaged; skipping its rest.");
            }
            self.drop_front();
        }
    }

    fn drop_front(&mut self) {
        if let Some(seg) = self.segments.pop_front() {
            if self.segments.is_empty() {
                self.writer = None;
            }
            let _ = fs::remove_file(segment_path(&self.dir, seg.seq));
        }
        self.read_offset = 0;
        self.peeked = None;
    }

    /// Marks the request returned by [`DiskQueue::peek`] as delivered (or dropped for good).
    pub fn ack(&mut self) -> Result<(), DiskQueueError> {
        let Some((req, size)) = self.peeked.take() else {
            return Ok(());
        };
        let Some(seg) = self.segments.front_mut() else {
            return Ok(());
        };
        seg.records = seg.records.saturating_sub(1);
        seg.samples = seg.samples.saturating_sub(u64::from(req.samples));
        self.read_offset += size;
        let is_writer = self.segments.len() == 1 && self.writer.is_some();
        let consumed = self.segments.front().is_some_and(|s| s.records == 0);
        if consumed && (!is_writer || self.read_offset >= self.segments.front().map_or(0, |s| s.bytes)) {
            self.drop_front();
        }
        let (seq, off) = match self.segments.front() {
            Some(s) => (s.seq, self.read_offset),
            None => (self.next_seq(), 0),
        };
        // Written aside and renamed over, so a full disk or a kill mid-write leaves the previous
        // cursor (some records sent again) rather than an empty one (everything sent again).
        let tmp = self.dir.join(CURSOR_TMP);
        fs::write(&tmp, format!("{seq} {off}\n")).map_err(io_err("cannot write", &tmp))?;
        let path = self.dir.join(CURSOR);
        fs::rename(&tmp, &path).map_err(io_err("cannot rename to", &path))?;
        Ok(())
    }

    fn next_seq(&self) -> u64 {
        self.last_seq + 1
    }

    /// Flushes the active segment to stable storage.
    pub fn sync(&mut self) -> Result<(), DiskQueueError> {
        if let Some(w) = &self.writer {
            let seq = self.segments.back().map_or(0, |s| s.seq);
            w.sync_all()
                .map_err(io_err("cannot sync", &segment_path(&self.dir, seq)))?;
        }
        Ok(())
    }
}

fn read_cursor(dir: &Path) -> (u64, u64) {
    let Ok(text) = fs::read_to_string(dir.join(CURSOR)) else {
        return (0, 0);
    };
    let mut it = text.split_whitespace().map(str::parse::<u64>);
    match (it.next(), it.next()) {
        (Some(Ok(seq)), Some(Ok(off))) => (seq, off),
        _ => (0, 0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(i: u32, size: usize) -> EncodedRequest {
        let mut body = vec![(i % 251) as u8; size];
        body[..4].copy_from_slice(&i.to_le_bytes());
        EncodedRequest::new(Bytes::from(body), i, 1)
    }

    fn id(r: &EncodedRequest) -> u32 {
        u32::from_le_bytes([r.body[0], r.body[1], r.body[2], r.body[3]])
    }

    #[test]
    fn requests_come_back_in_order_across_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let mut q = DiskQueue::open(dir.path(), 64 << 20).unwrap();
        for i in 0..10 {
            q.push(&req(i, 100)).unwrap();
        }
        for i in 0..3 {
            let r = q.peek().unwrap().unwrap();
            assert_eq!(id(&r), i);
            assert_eq!(r, req(i, 100), "body, counts and hash survive the disk");
            q.ack().unwrap();
        }
        drop(q);
        let mut q = DiskQueue::open(dir.path(), 64 << 20).unwrap();
        assert_eq!(q.records(), 7, "the cursor skips what was delivered");
        q.push(&req(10, 100)).unwrap();
        let mut got = Vec::new();
        while let Some(r) = q.peek().unwrap() {
            got.push(id(&r));
            q.ack().unwrap();
        }
        assert_eq!(got, (3..=10).collect::<Vec<_>>());
        assert!(q.is_empty());
    }

    #[test]
    fn a_failed_cursor_write_keeps_the_previous_cursor() {
        let dir = tempfile::tempdir().unwrap();
        let mut q = DiskQueue::open(dir.path(), 64 << 20).unwrap();
        for i in 0..4 {
            q.push(&req(i, 100)).unwrap();
        }
        q.peek().unwrap();
        q.ack().unwrap();
        // The next cursor cannot be written (as on a full disk).
        fs::create_dir(dir.path().join(CURSOR_TMP)).unwrap();
        q.peek().unwrap();
        assert!(q.ack().is_err());
        drop(q);
        let q = DiskQueue::open(dir.path(), 64 << 20).unwrap();
        assert_eq!(
            q.records(),
            3,
            "the previous cursor holds: one record sent again, none lost"
        );
    }

    #[test]
    fn oldest_segments_are_evicted_at_the_bound() {
        let dir = tempfile::tempdir().unwrap();
        // 1 MiB segments, 3 MiB bound, 300 KiB records: about three records per segment.
        let mut q = DiskQueue::open(dir.path(), 3 << 20).unwrap();
        let mut evicted = Evicted::default();
        for i in 0..30 {
            let e = q.push(&req(i, 300 << 10)).unwrap();
            evicted.records += e.records;
            evicted.samples += e.samples;
        }
        assert!(q.bytes() <= 3 << 20, "{}", q.bytes());
        assert_eq!(
            evicted.records + q.records(),
            30,
            "every request is either kept or counted"
        );
        let first = id(&q.peek().unwrap().unwrap());
        assert_eq!(first as u64, evicted.records, "the oldest went first");
        assert_eq!(evicted.samples, (0..first as u64).sum::<u64>());
    }

    #[test]
    fn segments_written_after_a_full_eviction_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let mut q = DiskQueue::open(dir.path(), 1 << 20).unwrap();
        for i in 0..4 {
            q.push(&req(i, 200 << 10)).unwrap();
        }
        q.peek().unwrap();
        q.ack().unwrap();
        // Larger than what is left: everything older is evicted, and a new segment starts.
        q.push(&req(9, 900 << 10)).unwrap();
        drop(q);
        let mut q = DiskQueue::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(q.records(), 1);
        assert_eq!(id(&q.peek().unwrap().unwrap()), 9);
    }

    #[test]
    fn a_torn_tail_is_skipped_and_later_writes_survive() {
        let dir = tempfile::tempdir().unwrap();
        let mut q = DiskQueue::open(dir.path(), 64 << 20).unwrap();
        for i in 0..3 {
            q.push(&req(i, 1000)).unwrap();
        }
        drop(q);
        // Simulate a crash mid-write: cut the last record in half.
        let seg = segment_path(dir.path(), 1);
        let len = fs::metadata(&seg).unwrap().len();
        OpenOptions::new()
            .write(true)
            .open(&seg)
            .unwrap()
            .set_len(len - 500)
            .unwrap();
        let mut q = DiskQueue::open(dir.path(), 64 << 20).unwrap();
        assert_eq!(q.records(), 2);
        q.push(&req(7, 1000)).unwrap();
        let mut got = Vec::new();
        while let Some(r) = q.peek().unwrap() {
            got.push(id(&r));
            q.ack().unwrap();
        }
        assert_eq!(got, [0, 1, 7]);
    }

    #[test]
    fn a_corrupt_record_ends_its_segment() {
        let dir = tempfile::tempdir().unwrap();
        let mut q = DiskQueue::open(dir.path(), 64 << 20).unwrap();
        for i in 0..3 {
            q.push(&req(i, 1000)).unwrap();
        }
        drop(q);
        let seg = segment_path(dir.path(), 1);
        let mut bytes = fs::read(&seg).unwrap();
        let second = (HEADER as usize + PAYLOAD_PREFIX + 1000) + 20;
        bytes[second] ^= 0xff;
        fs::write(&seg, bytes).unwrap();
        let mut q = DiskQueue::open(dir.path(), 64 << 20).unwrap();
        assert_eq!(q.records(), 1);
        assert_eq!(id(&q.peek().unwrap().unwrap()), 0);
    }
}
