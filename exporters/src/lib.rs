//! nodetel-exporters: where data leaves a pipeline — the Prometheus pull endpoint, the debug
//! printer and Prometheus remote write.
#![deny(missing_docs)]

pub mod debug;
pub mod otlp;
pub mod prometheus;
pub mod remote_write;
