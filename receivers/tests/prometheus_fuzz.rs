//! A deterministic fuzz pass that runs with the ordinary test suite: thousands of mutations of
//! the seed corpus (byte flips, inserted syntax bytes, truncations, spliced lines) go through
//! the parser and the body processor in both formats, which must never panic. The libFuzzer
//! target in `fuzz/` explores further.
// Test helpers may unwrap: a failure there is a test failure.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use nodetel_core::Batch;
use nodetel_receivers::prometheus::parser::{Format, Parser};
use nodetel_receivers::prometheus::process::{SeriesProcessor, SeriesSettings};

fn seeds() -> Vec<Vec<u8>> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/exposition");
    let mut seeds: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .collect();
    seeds.sort();
    assert!(seeds.len() >= 4, "seed corpus missing in {}", dir.display());
    seeds
}

/// xorshift64*: deterministic, so a failure reproduces.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const SYNTAX: &[u8] = b"{}\"\\\n =,#\t+-.eE0123456789NaInf\xff\x00";

fn mutate(seed: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut b = seed.to_vec();
    for _ in 0..1 + rng.below(4) {
        if b.is_empty() {
            b.push(SYNTAX[rng.below(SYNTAX.len())]);
            continue;
        }
        let i = rng.below(b.len());
        match rng.below(5) {
            0 => b[i] ^= 1 << rng.below(8),
            1 => b.insert(i, SYNTAX[rng.below(SYNTAX.len())]),
            2 => b.truncate(i),
            3 => {
                b.remove(i);
            }
            _ => {
                let j = rng.below(b.len());
                let (lo, hi) = (i.min(j), i.max(j).min(lo_cap(i.min(j), b.len())));
                let piece = b[lo..hi].to_vec();
                let at = rng.below(b.len());
                b.splice(at..at, piece);
            }
        }
    }
    b
}

fn lo_cap(lo: usize, len: usize) -> usize {
    (lo + 200).min(len)
}

fn run(body: &[u8]) -> (usize, usize) {
    let (mut ok, mut err) = (0, 0);
    for format in [Format::Text, Format::OpenMetrics] {
        for e in Parser::new(body, format) {
            let _ = e;
        }
        let settings = SeriesSettings {
            target_labels: vec![("instance".into(), "a:1".into()), ("job".into(), "j".into())],
            honor_timestamps: true,
            ..SeriesSettings::default()
        };
        let mut p = SeriesProcessor::new(Arc::new(settings));
        let mut out = Batch::new();
        match p.process(body, format, 0, &mut out) {
            Ok(_) => ok += 1,
            // Every error names what went wrong.
            Err(e) => {
                assert!(!e.to_string().is_empty());
                err += 1
            }
        }
        let _ = p.process(body, format, 1, &mut out);
    }
    (ok, err)
}

#[test]
fn thousands_of_mutated_bodies_never_panic() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let (mut ok, mut err, mut n) = (0, 0, 0);
    for seed in seeds() {
        // Every truncation point of the first 600 bytes.
        for cut in 0..seed.len().min(600) {
            let (o, e) = run(&seed[..cut]);
            ok += o;
            err += e;
            n += 1;
        }
        for _ in 0..1500 {
            let body = mutate(&seed, &mut rng);
            let (o, e) = run(&body);
            ok += o;
            err += e;
            n += 1;
        }
    }
    assert!(n >= 6_000, "{n} bodies");
    // Both outcomes occur, so the mutations reach the error paths and the success paths.
    assert!(ok > 100 && err > 100, "ok {ok}, err {err}");
}
