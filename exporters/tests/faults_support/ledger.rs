//! Exact accounting of samples: a source of counter series whose every sample is known (series
//! `idx`, scrape `k`: timestamp `BASE_TS + k s`, value `k + 1`), and the tally of what a sink
//! stored against it: delivered once, duplicated, missing, or never produced.

use std::collections::BTreeMap;

use nodetel_core::batch::Batch;
use nodetel_core::labels::Labels;
use nodetel_core::sample::Sample;
use nodetel_exporters::remote_write::proto::WriteRequest;

/// Timestamp of scrape 0 (ms); one scrape is one simulated second.
pub const BASE_TS: i64 = 1_700_000_000_000;

/// Counter series that go up by one per scrape.
#[derive(Debug, Clone)]
pub struct Source {
    series: usize,
    labels: Vec<Labels>,
    /// Scrapes produced so far.
    pub scrapes: u64,
}

impl Source {
    pub fn new(series: usize) -> Source {
        Source::with_name(series, "fault_counter", "")
    }

    /// Series named `name`, each with a `pad` label (to make requests bigger) when `pad` is set.
    pub fn with_name(series: usize, name: &str, pad: &str) -> Source {
        let labels = (0..series)
            .map(|i| {
                let idx = i.to_string();
                let mut pairs = vec![("__name__", name), ("idx", idx.as_str()), ("job", "faults")];
                if !pad.is_empty() {
                    pairs.push(("pad", pad));
                }
                Labels::from_pairs(pairs).unwrap()
            })
            .collect();
        Source {
            series,
            labels,
            scrapes: 0,
        }
    }

    /// Series whose `pad` label is a distinct random string of `len` characters each, so that
    /// requests barely compress (to fill disk queues quickly).
    pub fn with_random_pad(series: usize, name: &str, len: usize) -> Source {
        let labels = (0..series)
            .map(|i| {
                let idx = i.to_string();
                let pad: String = std::iter::repeat_with(fastrand::alphanumeric).take(len).collect();
                Labels::from_pairs([
                    ("__name__", name),
                    ("idx", idx.as_str()),
                    ("job", "faults"),
                    ("pad", &pad),
                ])
                .unwrap()
            })
            .collect();
        Source {
            series,
            labels,
            scrapes: 0,
        }
    }

    /// The next scrape of every series.
    pub fn next_batch(&mut self) -> Batch {
        let k = self.scrapes;
        self.scrapes += 1;
        let mut b = Batch::with_capacity(self.series);
        for l in &self.labels {
            b.push(l.clone(), Sample::new(ts_of(k), (k + 1) as f64));
        }
        b
    }

    /// Samples produced so far.
    pub fn produced(&self) -> u64 {
        self.scrapes * self.series as u64
    }

    pub fn series(&self) -> usize {
        self.series
    }
}

/// Timestamp of scrape `k`.
pub fn ts_of(k: u64) -> i64 {
    BASE_TS + k as i64 * 1000
}

/// Scrape number of a timestamp.
pub fn scrape_of(ts: i64) -> u64 {
    ((ts - BASE_TS) / 1000) as u64
}

/// What arrived, per (series index, scrape): how many copies.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    pub copies: BTreeMap<(u32, u64), u32>,
    /// Samples whose value does not belong to their timestamp, or that no source produced.
    pub corrupt: Vec<String>,
    /// Series whose first arrivals went backwards in time.
    pub out_of_order: Vec<String>,
}

impl Tally {
    /// Counts the samples of series named `name` in `requests` (in arrival order).
    pub fn of<'a>(name: &str, requests: impl IntoIterator<Item = &'a WriteRequest>) -> Tally {
        let mut t = Tally::default();
        let mut last: BTreeMap<u32, u64> = BTreeMap::new();
        for r in requests {
            for ts in &r.timeseries {
                let label = |n: &str| ts.labels.iter().find(|l| l.name == n).map(|l| l.value.as_str());
                if label("__name__") != Some(name) {
                    continue;
                }
                let Some(idx) = label("idx").and_then(|v| v.parse::<u32>().ok()) else {
                    t.corrupt.push(format!("series without idx: {:?}", ts.labels));
                    continue;
                };
                for s in &ts.samples {
                    let k = scrape_of(s.timestamp);
                    if s.timestamp < BASE_TS || (k + 1) as f64 != s.value {
                        t.corrupt
                            .push(format!("idx {idx}: value {} at {}", s.value, s.timestamp));
                        continue;
                    }
                    let c = t.copies.entry((idx, k)).or_default();
                    *c += 1;
                    if *c == 1 {
                        if last.get(&idx).is_some_and(|&p| p > k) {
                            t.out_of_order
                                .push(format!("idx {idx}: scrape {k} after {}", last[&idx]));
                        }
                        last.insert(idx, k);
                    }
                }
            }
        }
        t
    }

    /// Distinct samples.
    pub fn unique(&self) -> u64 {
        self.copies.len() as u64
    }

    /// Extra copies beyond the first.
    pub fn duplicates(&self) -> u64 {
        self.copies.values().map(|&c| u64::from(c - 1)).sum()
    }

    /// (series, scrape) pairs of `source` that did not arrive.
    pub fn missing(&self, source: &Source) -> Vec<(u32, u64)> {
        let mut out = Vec::new();
        for k in 0..source.scrapes {
            for i in 0..source.series() as u32 {
                if !self.copies.contains_key(&(i, k)) {
                    out.push((i, k));
                }
            }
        }
        out
    }

    /// Everything arrived exactly once, in order, and nothing else arrived.
    pub fn assert_exact(&self, source: &Source) {
        self.assert_complete(source);
        assert_eq!(self.duplicates(), 0, "no duplicates expected");
    }

    /// Everything arrived at least once, first copies in order, nothing corrupt.
    pub fn assert_complete(&self, source: &Source) {
        assert!(
            self.corrupt.is_empty(),
            "corrupt samples: {:?}",
            &self.corrupt[..self.corrupt.len().min(5)]
        );
        assert!(
            self.out_of_order.is_empty(),
            "out of order: {:?}",
            &self.out_of_order[..self.out_of_order.len().min(5)]
        );
        let missing = self.missing(source);
        assert!(
            missing.is_empty(),
            "{} of {} samples missing, first {:?}",
            missing.len(),
            source.produced(),
            &missing[..missing.len().min(5)]
        );
        assert_eq!(
            self.unique(),
            source.produced(),
            "nothing arrived that was not produced"
        );
    }
}
