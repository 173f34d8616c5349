//! The per-target series cache: the raw series text of a line (`name{labels}` exactly as the
//! target exposes it) to the final, relabeled label set, or to "dropped by
//! `metric_relabel_configs`".
//!
//! A known series costs one hash lookup. Each entry remembers the scrape generation it was last
//! seen in, which gives duplicate detection within a body, staleness markers for series that
//! vanished, and eviction of series not seen for [`EVICT_AFTER`] scrapes, all without a second
//! map. A cache belongs to one target and one config: a changed config builds a new receiver
//! and therefore new caches, and [`SeriesCache::clear`] drops everything explicitly.

use std::collections::HashSet;
use std::hash::BuildHasher;

use hashbrown::HashTable;
use nodetel_core::sample::stale_nan;
use nodetel_core::{Batch, Labels, Sample};

/// Entries not seen for this many scrapes are evicted.
pub const EVICT_AFTER: u32 = 4;

/// One cached series.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The final labels; `None` when metric relabeling dropped the series.
    pub labels: Option<Labels>,
    seen: u32,
    prev_seen: u32,
    /// The last sample carried its own timestamp: Prometheus writes no staleness marker then.
    explicit_timestamp: bool,
}

/// What a lookup found.
#[derive(Debug)]
pub enum Lookup<'c> {
    /// A known series, now marked as seen in this scrape.
    Hit(&'c Entry),
    /// The series already appeared earlier in this body.
    Duplicate,
    /// Not cached yet: build its labels and call [`SeriesCache::insert`].
    Miss,
}

/// A fixed-seed fast hasher: keys are exporter output, and a map is per target.
#[derive(Debug, Clone, Copy, Default)]
pub struct KeyHasher;

impl BuildHasher for KeyHasher {
    type Hasher = foldhash::fast::FoldHasher<'static>;
    fn build_hasher(&self) -> Self::Hasher {
        foldhash::fast::FixedState::with_seed(0x7072_6f6d_6361_6368).build_hasher()
    }
}

fn key_hash(key: &[u8]) -> u64 {
    KeyHasher.hash_one(key)
}

/// A cached series and its key; `key` is empty for a free slot.
#[derive(Debug)]
struct Slot {
    key: Box<[u8]>,
    entry: Entry,
}

/// The series cache of one target.
///
/// Entries live in a slab in the order they were first seen, indexed by a hash table of slot
/// numbers. An exporter writes its series in the same order every scrape, so a lookup first
/// compares the key with the slot after the previous hit: in the steady state that is the
/// answer, and the scrape walks the slab front to back without hashing a key or touching the
/// table, instead of one cache miss per series in a table spread over the heap.
#[derive(Debug, Default)]
pub struct SeriesCache {
    index: HashTable<u32>,
    slots: Vec<Slot>,
    free: Vec<u32>,
    /// The slot the next lookup tries first.
    next: usize,
    generation: u32,
    /// Every kept label set, to notice two exposed series that end up with the same labels
    /// (label order, or metric relabeling that merges them).
    kept: HashSet<Labels>,
    /// Some label set came from more than one exposed series: scrapes must deduplicate.
    collisions: bool,
}

impl SeriesCache {
    /// An empty cache.
    pub fn new() -> SeriesCache {
        SeriesCache::default()
    }

    /// Number of cached series (kept and dropped).
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Forgets every series (no staleness markers are written).
    pub fn clear(&mut self) {
        self.index.clear();
        self.slots.clear();
        self.free.clear();
        self.next = 0;
        self.kept.clear();
        self.collisions = false;
    }

    /// Whether two exposed series of this target have produced the same label set, so that a
    /// scrape must check its output for repeated label sets.
    pub fn has_collisions(&self) -> bool {
        self.collisions
    }

    /// Starts a scrape.
    pub fn begin(&mut self) {
        self.generation = self.generation.wrapping_add(1);
        self.next = 0;
    }

    fn find(&self, key: &[u8]) -> Option<usize> {
        if let Some(s) = self.slots.get(self.next)
            && *s.key == *key
            && !key.is_empty()
        {
            return Some(self.next);
        }
        let slots = &self.slots;
        self.index
            .find(key_hash(key), |&i| *slots[i as usize].key == *key)
            .map(|&i| i as usize)
    }

    /// Looks up a series and marks it seen in this scrape.
    pub fn lookup(&mut self, key: &[u8], explicit_timestamp: bool) -> Lookup<'_> {
        let generation = self.generation;
        let Some(i) = self.find(key) else {
            return Lookup::Miss;
        };
        self.next = i + 1;
        let e = &mut self.slots[i].entry;
        if e.seen == generation {
            return Lookup::Duplicate;
        }
        e.prev_seen = e.seen;
        e.seen = generation;
        e.explicit_timestamp = explicit_timestamp;
        Lookup::Hit(e)
    }

    /// Caches a new series, seen in this scrape.
    pub fn insert(&mut self, key: &[u8], labels: Option<Labels>, explicit_timestamp: bool) {
        if let Some(l) = &labels
            && !self.collisions
            && !self.kept.insert(l.clone())
        {
            self.collisions = true;
            self.kept = HashSet::new();
        }
        let entry = Entry {
            labels,
            seen: self.generation,
            // Rolled back, a new entry reads as long gone: no marker, evicted at once.
            prev_seen: self.generation.wrapping_sub(EVICT_AFTER + 1),
            explicit_timestamp,
        };
        let hash = key_hash(key);
        let slots = &self.slots;
        if let Some(&i) = self.index.find(hash, |&i| *slots[i as usize].key == *key) {
            // Only reachable for a key inserted twice without a lookup in between.
            self.slots[i as usize].entry = entry;
            self.next = i as usize + 1;
            return;
        }
        let slot = Slot { key: key.into(), entry };
        let i = match self.free.pop() {
            Some(i) => {
                self.slots[i as usize] = slot;
                i as usize
            }
            None => {
                self.slots.push(slot);
                self.slots.len() - 1
            }
        };
        let slots = &self.slots;
        self.index
            .insert_unique(hash, i as u32, |&j| key_hash(&slots[j as usize].key));
        self.next = i + 1;
    }

    fn live(&self) -> impl Iterator<Item = &Entry> {
        self.slots.iter().filter(|s| !s.key.is_empty()).map(|s| &s.entry)
    }

    /// Undoes the "seen" marks of a scrape that failed part way, so that it counts as a scrape
    /// that saw nothing.
    pub fn rollback(&mut self) {
        let generation = self.generation;
        for s in self.slots.iter_mut().filter(|s| !s.key.is_empty()) {
            if s.entry.seen == generation {
                s.entry.seen = s.entry.prev_seen;
            }
        }
    }

    /// Ends a scrape: appends a staleness marker at `timestamp_ms` for every kept series seen in
    /// the previous scrape but not in this one, and evicts series not seen for a while.
    pub fn finish(&mut self, timestamp_ms: i64, out: &mut Batch) {
        let generation = self.generation;
        let previous = generation.wrapping_sub(1);
        for (i, s) in self.slots.iter_mut().enumerate() {
            if s.key.is_empty() {
                continue;
            }
            let e = &s.entry;
            if e.seen == previous
                && !e.explicit_timestamp
                && let Some(labels) = &e.labels
            {
                out.push(labels.clone(), Sample::new(timestamp_ms, stale_nan()));
            }
            if generation.wrapping_sub(e.seen) <= EVICT_AFTER {
                continue;
            }
            if let Some(labels) = &e.labels {
                self.kept.remove(labels);
            }
            if let Ok(found) = self.index.find_entry(key_hash(&s.key), |&j| j as usize == i) {
                found.remove();
            }
            s.key = Box::default();
            s.entry.labels = None;
            self.free.push(i as u32);
        }
        // Give the memory back once most of the slab is free (a target that shrank for good).
        if self.free.len() > 1024 && self.free.len() > self.slots.len() / 2 {
            self.compact();
        }
        // Growing by doubling leaves up to half the slab unused after the first scrape.
        let len = self.slots.len();
        if self.slots.capacity() > len + len / 4 + 16 {
            self.slots.shrink_to(len + len / 8);
        }
    }

    /// Rebuilds the slab without its free slots, keeping the order of the live ones.
    fn compact(&mut self) {
        self.slots.retain(|s| !s.key.is_empty());
        self.slots.shrink_to_fit();
        self.free = Vec::new();
        self.index.clear();
        let slots = &self.slots;
        for (i, s) in slots.iter().enumerate() {
            self.index
                .insert_unique(key_hash(&s.key), i as u32, |&j| key_hash(&slots[j as usize].key));
        }
        self.index.shrink_to_fit(|&j| key_hash(&slots[j as usize].key));
    }

    /// Appends a staleness marker for every kept series of the last scrape (the target went
    /// away), and starts a new generation so they are not marked twice.
    pub fn stale_all(&mut self, timestamp_ms: i64, out: &mut Batch) {
        let generation = self.generation;
        for e in self.live() {
            if e.seen == generation
                && !e.explicit_timestamp
                && let Some(labels) = &e.labels
            {
                out.push(labels.clone(), Sample::new(timestamp_ms, stale_nan()));
            }
        }
        self.generation = self.generation.wrapping_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(name: &str) -> Labels {
        Labels::from_pairs([("__name__", name)]).unwrap()
    }

    fn stale_names(out: &Batch) -> Vec<String> {
        let mut v: Vec<String> = out
            .series
            .iter()
            .inspect(|s| assert!(s.samples[0].is_stale()))
            .map(|s| s.labels.metric_name().unwrap().to_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn a_known_series_is_a_hit_and_a_repeat_is_a_duplicate() {
        let mut c = SeriesCache::new();
        c.begin();
        assert!(matches!(c.lookup(b"a", false), Lookup::Miss));
        c.insert(b"a", Some(labels("a")), false);
        assert!(matches!(c.lookup(b"a", false), Lookup::Duplicate));
        c.begin();
        match c.lookup(b"a", false) {
            Lookup::Hit(e) => assert_eq!(e.labels, Some(labels("a"))),
            other => panic!("expected a hit, got {other:?}"),
        }
        assert!(matches!(c.lookup(b"a", false), Lookup::Duplicate));
    }

    #[test]
    fn vanished_series_get_one_staleness_marker() {
        let mut c = SeriesCache::new();
        c.begin();
        for k in ["a", "b", "dropped"] {
            c.lookup(k.as_bytes(), false);
            let l = (k != "dropped").then(|| labels(k));
            c.insert(k.as_bytes(), l, false);
        }
        let mut out = Batch::new();
        c.finish(1, &mut out);
        assert!(out.is_empty());
        c.begin();
        assert!(matches!(c.lookup(b"a", false), Lookup::Hit(_)));
        c.finish(2, &mut out);
        assert_eq!(
            stale_names(&out),
            ["b"],
            "b vanished; the dropped series never had a marker"
        );
        assert_eq!(out.series[0].samples[0].timestamp_ms, 2);
        let mut out = Batch::new();
        c.begin();
        c.lookup(b"a", false);
        c.finish(3, &mut out);
        assert!(out.is_empty(), "b is marked stale only once");
    }

    #[test]
    fn series_with_their_own_timestamps_get_no_marker() {
        let mut c = SeriesCache::new();
        c.begin();
        c.insert(b"t", Some(labels("t")), true);
        let mut out = Batch::new();
        c.finish(1, &mut out);
        c.begin();
        c.finish(2, &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn a_failed_scrape_marks_the_previous_series_stale_once() {
        let mut c = SeriesCache::new();
        c.begin();
        c.insert(b"a", Some(labels("a")), false);
        c.insert(b"b", Some(labels("b")), false);
        let mut out = Batch::new();
        c.finish(1, &mut out);
        // The next scrape sees "a", then fails.
        c.begin();
        c.lookup(b"a", false);
        c.rollback();
        c.finish(2, &mut out);
        assert_eq!(stale_names(&out), ["a", "b"]);
        // A second failure writes nothing more.
        let mut out = Batch::new();
        c.begin();
        c.rollback();
        c.finish(3, &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn series_unseen_for_a_few_scrapes_are_evicted() {
        let mut c = SeriesCache::new();
        c.begin();
        c.insert(b"old", Some(labels("old")), false);
        let mut out = Batch::new();
        for _ in 0..EVICT_AFTER {
            c.begin();
            c.finish(0, &mut out);
            assert_eq!(c.len(), 1);
        }
        c.begin();
        c.finish(0, &mut out);
        assert_eq!(c.len(), 0);
    }

    #[test]
    fn two_exposed_series_with_one_label_set_are_noticed() {
        let mut c = SeriesCache::new();
        c.begin();
        c.insert(b"a{x=\"1\",y=\"2\"}", Some(labels("a")), false);
        c.insert(b"b", Some(labels("b")), false);
        c.insert(b"dropped", None, false);
        assert!(!c.has_collisions());
        c.insert(b"a{y=\"2\",x=\"1\"}", Some(labels("a")), false);
        assert!(c.has_collisions());
        c.clear();
        assert!(!c.has_collisions());
    }

    #[test]
    fn lookups_find_series_in_any_order_and_after_slots_are_reused() {
        let keys: Vec<String> = (0..3000).map(|i| format!("m_{i}")).collect();
        let mut c = SeriesCache::new();
        let mut out = Batch::new();
        c.begin();
        for k in &keys {
            assert!(matches!(c.lookup(k.as_bytes(), false), Lookup::Miss));
            c.insert(k.as_bytes(), Some(labels(k)), false);
        }
        c.finish(1, &mut out);
        // Same order, reversed order, and a body that drops every third series for good.
        for order in [false, true] {
            c.begin();
            let seq: Vec<&String> = if order {
                keys.iter().rev().collect()
            } else {
                keys.iter().collect()
            };
            for k in seq {
                match c.lookup(k.as_bytes(), false) {
                    Lookup::Hit(e) => assert_eq!(e.labels, Some(labels(k))),
                    other => panic!("{k}: expected a hit, got {other:?}"),
                }
                assert!(matches!(c.lookup(k.as_bytes(), false), Lookup::Duplicate));
            }
            c.finish(2, &mut out);
        }
        assert!(out.is_empty());
        for _ in 0..=EVICT_AFTER {
            c.begin();
            for k in keys.iter().enumerate().filter(|(i, _)| i % 3 != 0).map(|(_, k)| k) {
                assert!(matches!(c.lookup(k.as_bytes(), false), Lookup::Hit(_)));
            }
            c.finish(3, &mut out);
        }
        assert_eq!(c.len(), 2000);
        // New series take the freed slots; old and new are all found.
        c.begin();
        for (i, k) in keys.iter().enumerate() {
            let k2 = format!("{k}_new");
            if i % 3 == 0 {
                assert!(matches!(c.lookup(k2.as_bytes(), false), Lookup::Miss));
                c.insert(k2.as_bytes(), Some(labels(&k2)), false);
                assert!(matches!(c.lookup(k.as_bytes(), false), Lookup::Miss), "{k} was evicted");
            } else {
                assert!(matches!(c.lookup(k.as_bytes(), false), Lookup::Hit(_)));
            }
        }
        c.finish(4, &mut out);
        assert_eq!(c.len(), 3000);
        // A target that shrinks for good gives its slab back, and what is left still resolves.
        let survivors: Vec<&String> = keys.iter().skip(1).step_by(3).take(10).collect();
        for _ in 0..=EVICT_AFTER {
            c.begin();
            for k in &survivors {
                assert!(matches!(c.lookup(k.as_bytes(), false), Lookup::Hit(_)));
            }
            c.finish(5, &mut out);
        }
        assert_eq!(c.len(), 10);
        assert!(c.slots.len() < 100, "compacted to {} slots", c.slots.len());
        c.begin();
        for k in survivors.iter().rev() {
            assert!(matches!(c.lookup(k.as_bytes(), false), Lookup::Hit(_)));
        }
    }

    #[test]
    fn stale_all_marks_the_last_scrape_once() {
        let mut c = SeriesCache::new();
        c.begin();
        c.insert(b"a", Some(labels("a")), false);
        let mut out = Batch::new();
        c.stale_all(5, &mut out);
        assert_eq!(stale_names(&out), ["a"]);
        let mut out = Batch::new();
        c.stale_all(6, &mut out);
        assert!(out.is_empty());
    }
}
