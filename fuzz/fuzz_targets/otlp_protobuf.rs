//! Fuzzes the OTLP/HTTP and gRPC decode path for protobuf bodies: any bytes must decode or fail
//! with an error, and whatever decodes must translate into series without a panic, twice (the
//! second pass takes the cached path and the delta accumulators).
//!
//! Run from `fuzz/`: `cargo +nightly fuzz run otlp_protobuf -- -max_total_time=300`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nodetel_receivers::otlp::{OtlpConfig, Translator};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use prost::Message;

fuzz_target!(|data: &[u8]| {
    let Ok(request) = ExportMetricsServiceRequest::decode(data) else {
        return;
    };
    let mut config = OtlpConfig::default();
    let mut translator = Translator::new(&config);
    let _ = translator.translate(&request, 1_700_000_000_000);
    let _ = translator.translate(&request, 1_700_000_015_000);
    // The naming options change the label and name paths taken.
    config.add_metric_suffixes = !config.add_metric_suffixes;
    config.resource_to_telemetry_conversion.enabled = true;
    let _ = Translator::new(&config).translate(&request, 0);
    nodetel_core::labels::sweep_interned_pairs();
});
