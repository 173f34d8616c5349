//! Fuzzes the exposition parser and the body processor: any input must parse or fail with an
//! error, never panic, in both formats.
//!
//! Run from `fuzz/`: `cargo +nightly fuzz run exposition -- -max_total_time=300`.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use nodetel_core::Batch;
use nodetel_receivers::prometheus::parser::{Format, Parser};
use nodetel_receivers::prometheus::process::{SeriesProcessor, SeriesSettings};

fuzz_target!(|data: &[u8]| {
    for format in [Format::Text, Format::OpenMetrics] {
        for entry in Parser::new(data, format) {
            let _ = entry;
        }
        let settings = SeriesSettings {
            target_labels: vec![("instance".into(), "a:1".into()), ("job".into(), "j".into())],
            honor_timestamps: true,
            ..SeriesSettings::default()
        };
        let mut p = SeriesProcessor::new(Arc::new(settings));
        let mut out = Batch::new();
        let _ = p.process(data, format, 0, &mut out);
        let _ = p.process(data, format, 1, &mut out);
    }
    // Label pairs are interned process-wide; drop the ones this input created.
    nodetel_core::labels::sweep_interned_pairs();
});
