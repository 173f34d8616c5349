//! Series and batches: what flows from receivers through processors to exporters.

use std::sync::Arc;

use smallvec::SmallVec;

use crate::labels::Labels;
use crate::metadata::MetricMetadata;
use crate::sample::Sample;

/// One series and its samples. A scrape yields one sample per series, which lives inline.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// The identity of the series.
    pub labels: Labels,
    /// Samples in timestamp order.
    pub samples: SmallVec<[Sample; 1]>,
}

impl Series {
    /// A series with one sample.
    pub fn new(labels: Labels, sample: Sample) -> Series {
        let mut samples = SmallVec::new();
        samples.push(sample);
        Series { labels, samples }
    }
}

/// A unit of work: series plus the metadata of their families.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Batch {
    /// The series.
    pub series: Vec<Series>,
    /// Metadata of the families in `series`, shared with the receiver that made it.
    pub metadata: Vec<Arc<MetricMetadata>>,
    /// The process on this node that pushed these series, when the receiver could tell (a
    /// loopback OTLP connection). Processors use it to attribute the series to that process's
    /// Slurm job and rank; it never becomes a label by itself.
    pub sender_pid: Option<u32>,
}

impl Batch {
    /// An empty batch.
    pub fn new() -> Batch {
        Batch::default()
    }

    /// An empty batch with room for `n` series.
    pub fn with_capacity(n: usize) -> Batch {
        Batch {
            series: Vec::with_capacity(n),
            metadata: Vec::new(),
            sender_pid: None,
        }
    }

    /// Adds one sample of a series.
    pub fn push(&mut self, labels: Labels, sample: Sample) {
        self.series.push(Series::new(labels, sample));
    }

    /// Number of series.
    pub fn len(&self) -> usize {
        self.series.len()
    }

    /// Whether there are no series.
    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }

    /// Number of samples over all series.
    pub fn sample_count(&self) -> usize {
        self.series.iter().map(|s| s.samples.len()).sum()
    }

    /// Appends another batch's series and metadata. The result keeps a sender only when both
    /// had the same one.
    pub fn append(&mut self, other: &mut Batch) {
        if self.series.is_empty() && self.metadata.is_empty() {
            self.sender_pid = other.sender_pid;
        } else if self.sender_pid != other.sender_pid {
            self.sender_pid = None;
        }
        self.series.append(&mut other.series);
        self.metadata.append(&mut other.metadata);
    }
}
