//! Fuzzes the OTLP/HTTP decode path for JSON bodies (`Content-Type: application/json`): any
//! bytes must parse or fail with an error, and whatever parses must translate without a panic.
//!
//! Run from `fuzz/`: `cargo +nightly fuzz run otlp_json -- -max_total_time=300`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nodetel_receivers::otlp::{OtlpConfig, Translator};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;

fuzz_target!(|data: &[u8]| {
    let Ok(request) = serde_json::from_slice::<ExportMetricsServiceRequest>(data) else {
        return;
    };
    let mut translator = Translator::new(&OtlpConfig::default());
    let _ = translator.translate(&request, 1_700_000_000_000);
    let _ = translator.translate(&request, 1_700_000_015_000);
    nodetel_core::labels::sweep_interned_pairs();
});
