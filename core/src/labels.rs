//! Label pairs and label sets: interned once, shared everywhere, encoded once.
//!
//! A node sends the same series every scrape, so the label work is done once per series and the
//! memory is spent once per distinct `(name, value)` pair. Each pair lives once in a global
//! interner together with its pre-encoded protobuf bytes (a remote-write `Label` field); a label
//! set is a sorted list of pointers to pairs plus a precomputed hash. Cloning a set is one atomic
//! increment, comparing two sets compares pointers, and encoding a set copies the pairs' bytes.

use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasher, BuildHasherDefault, Hash, Hasher};
use std::sync::{Arc, LazyLock, Mutex};

use hashbrown::HashTable;

/// The label that holds the metric name.
pub const METRIC_NAME: &str = "__name__";

/// Fixed seed so that hashes are stable for the life of the process (shard routing relies on it).
const HASH_SEED: u64 = 0x6e6f_6465_7465_6c00;

fn hasher() -> impl Hasher {
    foldhash::fast::FixedState::with_seed(HASH_SEED).build_hasher()
}

fn pair_hash(name: &str, value: &str) -> u64 {
    let mut h = hasher();
    h.write(name.as_bytes());
    h.write_u8(0xff);
    h.write(value.as_bytes());
    h.finish()
}

/// Why a label name or set was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LabelError {
    /// A label name outside `[a-zA-Z_][a-zA-Z0-9_]*`.
    #[error("invalid label name {0:?}: must match [a-zA-Z_][a-zA-Z0-9_]*")]
    InvalidName(String),
    /// A metric name outside `[a-zA-Z_:][a-zA-Z0-9_:]*`.
    #[error("invalid metric name {0:?}: must match [a-zA-Z_:][a-zA-Z0-9_:]*")]
    InvalidMetricName(String),
    /// The same label name appears twice in one set.
    #[error("duplicate label name {0:?}")]
    Duplicate(String),
}

/// Whether `name` is a valid Prometheus label name.
pub fn is_valid_label_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && (b[0].is_ascii_alphabetic() || b[0] == b'_')
        && b[1..].iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
}

/// Whether `name` is a valid Prometheus metric name.
pub fn is_valid_metric_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && (b[0].is_ascii_alphabetic() || b[0] == b'_' || b[0] == b':')
        && b[1..]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c == b':')
}

struct PairInner {
    hash: u64,
    name_len: usize,
    /// `name` followed by `value`.
    text: Box<str>,
    /// The remote-write `TimeSeries.labels` field for this pair: tag, length, `Label` message.
    encoded: Box<[u8]>,
}

/// One interned `(name, value)` label pair with its encoded protobuf bytes.
#[derive(Clone)]
pub struct Pair(Arc<PairInner>);

impl Pair {
    /// Interns a pair after validating the name. An empty value is allowed here; sets drop it.
    pub fn new(name: &str, value: &str) -> Result<Pair, LabelError> {
        if name == METRIC_NAME {
            if !is_valid_metric_name(value) {
                return Err(LabelError::InvalidMetricName(value.to_owned()));
            }
        } else if !is_valid_label_name(name) {
            return Err(LabelError::InvalidName(name.to_owned()));
        }
        Ok(INTERNER.intern(name, value))
    }

    /// The label name.
    pub fn name(&self) -> &str {
        &self.0.text[..self.0.name_len]
    }

    /// The label value.
    pub fn value(&self) -> &str {
        &self.0.text[self.0.name_len..]
    }

    /// The bytes of this pair as a `TimeSeries.labels` protobuf field (field 1, length-delimited).
    pub fn encoded(&self) -> &[u8] {
        &self.0.encoded
    }

    fn ptr_eq(&self, other: &Pair) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl PartialEq for Pair {
    fn eq(&self, other: &Self) -> bool {
        // Interning makes pointer identity equal to value identity.
        self.ptr_eq(other)
    }
}
impl Eq for Pair {}

impl fmt::Debug for Pair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={:?}", self.name(), self.value())
    }
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Length of `v` as a protobuf varint.
pub fn varint_len(v: u64) -> usize {
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

fn encode_pair(name: &str, value: &str) -> Box<[u8]> {
    let body = 1 + varint_len(name.len() as u64) + name.len() + 1 + varint_len(value.len() as u64) + value.len();
    let mut out = Vec::with_capacity(1 + varint_len(body as u64) + body);
    out.push(0x0a); // TimeSeries.labels = 1, length-delimited
    put_varint(&mut out, body as u64);
    out.push(0x0a); // Label.name = 1
    put_varint(&mut out, name.len() as u64);
    out.extend_from_slice(name.as_bytes());
    out.push(0x12); // Label.value = 2
    put_varint(&mut out, value.len() as u64);
    out.extend_from_slice(value.as_bytes());
    out.into_boxed_slice()
}

const SHARDS: usize = 16;

/// The process-wide pair table. Sharded so that receivers building sets in parallel rarely meet.
struct Interner {
    shards: [Mutex<HashTable<Pair>>; SHARDS],
}

static INTERNER: LazyLock<Interner> = LazyLock::new(|| Interner {
    shards: std::array::from_fn(|_| Mutex::new(HashTable::new())),
});

impl Interner {
    fn intern(&self, name: &str, value: &str) -> Pair {
        let hash = pair_hash(name, value);
        let shard = &self.shards[(hash as usize) % SHARDS];
        // A poisoned shard only means another thread panicked mid-insert of a complete value;
        // the table itself is still consistent.
        let mut table = shard.lock().unwrap_or_else(|e| e.into_inner());
        let found = table.find(hash, |p| p.0.hash == hash && p.name() == name && p.value() == value);
        if let Some(p) = found {
            return p.clone();
        }
        let mut text = String::with_capacity(name.len() + value.len());
        text.push_str(name);
        text.push_str(value);
        let pair = Pair(Arc::new(PairInner {
            hash,
            name_len: name.len(),
            text: text.into_boxed_str(),
            encoded: encode_pair(name, value),
        }));
        table.insert_unique(hash, pair.clone(), |p| p.0.hash);
        pair
    }

    fn sweep(&self) -> usize {
        let mut removed = 0;
        for shard in &self.shards {
            let mut table = shard.lock().unwrap_or_else(|e| e.into_inner());
            let before = table.len();
            table.retain(|p| Arc::strong_count(&p.0) > 1);
            removed += before - table.len();
        }
        removed
    }

    fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|e| e.into_inner()).len())
            .sum()
    }
}

/// Drops interned pairs that no label set uses any more; returns how many went.
///
/// The runtime calls this periodically so the table follows the live series, not their history.
pub fn sweep_interned_pairs() -> usize {
    INTERNER.sweep()
}

/// How many distinct pairs are interned right now.
pub fn interned_pairs() -> usize {
    INTERNER.len()
}

struct LabelsInner {
    hash: u64,
    pairs: Box<[Pair]>,
}

/// An immutable, sorted set of label pairs (the identity of a series). Cheap to clone and compare.
#[derive(Clone)]
pub struct Labels(Arc<LabelsInner>);

static EMPTY: LazyLock<Labels> = LazyLock::new(|| Labels::from_sorted(Vec::new()));

impl Labels {
    /// The empty set.
    pub fn empty() -> Labels {
        EMPTY.clone()
    }

    /// Builds a set from name/value pairs (any order). Empty values are dropped.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<Labels, LabelError> {
        let mut b = LabelsBuilder::new();
        for (n, v) in pairs {
            b.push(n, v)?;
        }
        b.build()
    }

    fn from_sorted(pairs: Vec<Pair>) -> Labels {
        let mut h = hasher();
        for p in &pairs {
            h.write_u64(p.0.hash);
        }
        Labels(Arc::new(LabelsInner {
            hash: h.finish(),
            pairs: pairs.into_boxed_slice(),
        }))
    }

    /// The value of `name`, if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .pairs
            .binary_search_by(|p| p.name().cmp(name))
            .ok()
            .map(|i| self.0.pairs[i].value())
    }

    /// The metric name (`__name__`), if present.
    pub fn metric_name(&self) -> Option<&str> {
        self.get(METRIC_NAME)
    }

    /// The pairs, sorted by name.
    pub fn pairs(&self) -> &[Pair] {
        &self.0.pairs
    }

    /// Iterates `(name, value)` in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.pairs.iter().map(|p| (p.name(), p.value()))
    }

    /// Number of pairs.
    pub fn len(&self) -> usize {
        self.0.pairs.len()
    }

    /// Whether the set has no pairs.
    pub fn is_empty(&self) -> bool {
        self.0.pairs.is_empty()
    }

    /// The precomputed hash of the set (stable within this process).
    pub fn hash_value(&self) -> u64 {
        self.0.hash
    }

    /// Size of this set's pairs encoded as remote-write `TimeSeries.labels` fields.
    pub fn encoded_len(&self) -> usize {
        self.0.pairs.iter().map(|p| p.0.encoded.len()).sum()
    }

    /// Appends the encoded pairs to `out` (a memcpy per pair).
    pub fn encode_to(&self, out: &mut Vec<u8>) {
        for p in self.0.pairs.iter() {
            out.extend_from_slice(&p.0.encoded);
        }
    }

    /// Whether both handles point at the same allocation.
    pub fn ptr_eq(&self, other: &Labels) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// A builder pre-filled with this set, to derive a changed set.
    pub fn to_builder(&self) -> LabelsBuilder {
        LabelsBuilder {
            pairs: self.0.pairs.to_vec(),
        }
    }
}

impl PartialEq for Labels {
    fn eq(&self, other: &Self) -> bool {
        self.ptr_eq(other) || (self.0.hash == other.0.hash && self.0.pairs == other.0.pairs)
    }
}
impl Eq for Labels {}

impl Hash for Labels {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.0.hash);
    }
}

impl PartialOrd for Labels {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Labels {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.iter().cmp(other.iter())
    }
}

impl fmt::Debug for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Labels {
    /// Prometheus notation: `name{a="1",b="2"}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = String::new();
        crate::exposition::write_series_id(&mut s, self);
        f.write_str(&s)
    }
}

/// A hasher for maps keyed by [`Labels`]: the set's precomputed hash passes straight through,
/// so a lookup costs no hashing at all (the hash is already well mixed).
#[derive(Debug, Default, Clone, Copy)]
pub struct LabelsHasher(u64);

impl Hasher for LabelsHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only reached for keys other than `Labels`; still a valid (if slow) hash.
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }

    fn write_u64(&mut self, v: u64) {
        self.0 ^= v;
    }
}

/// A `HashMap` keyed by label sets that reuses their precomputed hashes.
pub type LabelsMap<V> = HashMap<Labels, V, BuildHasherDefault<LabelsHasher>>;

/// Builds label sets. Reuse one builder across series to avoid reallocating its buffer.
#[derive(Debug, Default, Clone)]
pub struct LabelsBuilder {
    pairs: Vec<Pair>,
}

impl LabelsBuilder {
    /// An empty builder.
    pub fn new() -> LabelsBuilder {
        LabelsBuilder::default()
    }

    /// Clears the builder, keeping its buffer.
    pub fn clear(&mut self) {
        self.pairs.clear();
    }

    /// Adds a pair. Duplicates are reported by [`LabelsBuilder::build`].
    pub fn push(&mut self, name: &str, value: &str) -> Result<&mut Self, LabelError> {
        self.pairs.push(Pair::new(name, value)?);
        Ok(self)
    }

    /// Adds an already interned pair.
    pub fn push_pair(&mut self, pair: Pair) -> &mut Self {
        self.pairs.push(pair);
        self
    }

    /// Sets `name` to `value`, replacing any pair of that name.
    pub fn set(&mut self, name: &str, value: &str) -> Result<&mut Self, LabelError> {
        let pair = Pair::new(name, value)?;
        self.remove(name);
        self.pairs.push(pair);
        Ok(self)
    }

    /// Removes every pair named `name`.
    pub fn remove(&mut self, name: &str) -> &mut Self {
        self.pairs.retain(|p| p.name() != name);
        self
    }

    /// The value of `name` in the builder, if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs.iter().find(|p| p.name() == name).map(|p| p.value())
    }

    /// Sorts, drops empty values, rejects duplicate names and returns the set.
    /// The builder is left empty and ready for the next set.
    pub fn build(&mut self) -> Result<Labels, LabelError> {
        self.pairs.retain(|p| !p.value().is_empty());
        self.pairs.sort_unstable_by(|a, b| a.name().cmp(b.name()));
        if let Some(w) = self.pairs.windows(2).find(|w| w[0].name() == w[1].name()) {
            let name = w[0].name().to_owned();
            self.pairs.clear();
            return Err(LabelError::Duplicate(name));
        }
        let pairs = std::mem::take(&mut self.pairs);
        // Keep a buffer of similar size for the next set so steady-state building reuses it.
        self.pairs = Vec::with_capacity(pairs.len());
        Ok(Labels::from_sorted(pairs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_are_sorted_and_interned() {
        let a = Labels::from_pairs([("job", "node"), (METRIC_NAME, "up"), ("instance", "h1")]).unwrap();
        let b = Labels::from_pairs([("instance", "h1"), ("job", "node"), (METRIC_NAME, "up")]).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.hash_value(), b.hash_value());
        let names: Vec<_> = a.iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["__name__", "instance", "job"]);
        assert!(a.pairs()[0] == b.pairs()[0], "pairs are the same interned object");
        assert_eq!(a.metric_name(), Some("up"));
        assert_eq!(a.get("job"), Some("node"));
        assert_eq!(a.get("nope"), None);
    }

    #[test]
    fn empty_values_are_dropped_and_duplicates_rejected() {
        let a = Labels::from_pairs([(METRIC_NAME, "m"), ("x", "")]).unwrap();
        assert_eq!(a.len(), 1);
        let err = Labels::from_pairs([(METRIC_NAME, "m"), ("x", "1"), ("x", "2")]).unwrap_err();
        assert_eq!(err, LabelError::Duplicate("x".into()));
    }

    #[test]
    fn invalid_names_are_rejected() {
        assert!(matches!(Pair::new("1abc", "v"), Err(LabelError::InvalidName(_))));
        assert!(matches!(Pair::new("a-b", "v"), Err(LabelError::InvalidName(_))));
        assert!(matches!(
            Pair::new(METRIC_NAME, "a b"),
            Err(LabelError::InvalidMetricName(_))
        ));
        assert!(Pair::new(METRIC_NAME, "ns:metric_total").is_ok());
        assert!(Pair::new("_x9", "any \"value\" ✓").is_ok());
    }

    #[test]
    fn different_sets_differ() {
        let a = Labels::from_pairs([(METRIC_NAME, "m"), ("cpu", "0")]).unwrap();
        let b = Labels::from_pairs([(METRIC_NAME, "m"), ("cpu", "1")]).unwrap();
        assert_ne!(a, b);
        assert_ne!(a.hash_value(), b.hash_value());
    }

    #[test]
    fn encoded_pair_is_a_valid_protobuf_label_field() {
        let p = Pair::new("job", "node_exporter").unwrap();
        let mut expect = vec![0x0a, 2 + 3 + 2 + 13, 0x0a, 3];
        expect.extend_from_slice(b"job");
        expect.extend_from_slice(&[0x12, 13]);
        expect.extend_from_slice(b"node_exporter");
        assert_eq!(p.encoded(), &expect[..]);
        let long = "v".repeat(300);
        let p = Pair::new("k", &long).unwrap();
        // 300 needs a two-byte varint: 0xac 0x02.
        assert_eq!(&p.encoded()[..2], &[0x0a, 0xb2, 0x02][..2]);
        let set = Labels::from_pairs([("k", long.as_str()), ("job", "x")]).unwrap();
        assert_eq!(
            set.encoded_len(),
            set.pairs().iter().map(|p| p.encoded().len()).sum::<usize>()
        );
    }

    #[test]
    fn varint_len_matches_encoding() {
        for v in [0u64, 1, 127, 128, 16383, 16384, u32::MAX as u64, u64::MAX] {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            assert_eq!(out.len(), varint_len(v), "{v}");
        }
    }

    #[test]
    fn unused_pairs_are_swept() {
        let value = "sweep-me-0c1f";
        let set = Labels::from_pairs([("sweep_test", value)]).unwrap();
        let count = || {
            let shard = &INTERNER.shards[(pair_hash("sweep_test", value) as usize) % SHARDS];
            let t = shard.lock().unwrap();
            t.iter().filter(|p| p.value() == value).count()
        };
        sweep_interned_pairs();
        assert_eq!(count(), 1, "a pair in use survives a sweep");
        drop(set);
        sweep_interned_pairs();
        assert_eq!(count(), 0, "an unused pair is swept");
    }

    #[test]
    fn labels_map_finds_equal_sets() {
        let mut m: LabelsMap<u32> = LabelsMap::default();
        m.insert(Labels::from_pairs([(METRIC_NAME, "a"), ("x", "1")]).unwrap(), 1);
        m.insert(Labels::from_pairs([(METRIC_NAME, "a"), ("x", "2")]).unwrap(), 2);
        assert_eq!(
            m.get(&Labels::from_pairs([("x", "2"), (METRIC_NAME, "a")]).unwrap()),
            Some(&2)
        );
        assert_eq!(m.get(&Labels::from_pairs([(METRIC_NAME, "b")]).unwrap()), None);
    }

    #[test]
    fn builder_set_and_remove() {
        let base = Labels::from_pairs([(METRIC_NAME, "m"), ("a", "1")]).unwrap();
        let mut b = base.to_builder();
        b.set("a", "2").unwrap().push("b", "3").unwrap();
        let derived = b.build().unwrap();
        assert_eq!(derived.to_string(), r#"m{a="2",b="3"}"#);
        let mut b = derived.to_builder();
        b.remove("b");
        assert_eq!(b.build().unwrap().to_string(), r#"m{a="2"}"#);
    }
}
