//! End-to-end tests: run the real `nodetel` binary and talk to it over loopback.

// Test code: a failed unwrap is a failed test, which is what we want.
#![allow(clippy::unwrap_used, clippy::expect_used)]

// The binary's commands: run (default config, endpoints, SIGTERM), validate, once.
mod binary;
// The gpu receiver in the binary: disabled without a driver, the rest unaffected.
mod gpu;
// Faults that need the binary: SIGKILL twenty times under load with a disk queue, nothing accepted lost.
mod faults;
// Remote write from the binary: default config with AMP_REMOTE_WRITE_URL, SIGKILL with a disk queue.
mod remote_write;
// OTLP from a task of a real Slurm job, labelled with its job and rank, stored by a real Prometheus.
mod otlp_slurm;
// Secrets (AWS credentials, scrape and remote write credentials, senders' headers) never logged.
mod secrets;
// Shared helpers: spawning the binary, HTTP GETs, free ports.
mod support;
// The Slurm receiver and slurmattributes processor in the binary, against a real Slurm.
mod slurm;
// The private single-node Slurm the Slurm tests start (shared with the crates' own tests).
#[path = "../../receivers/tests/slurm_support/mod.rs"]
mod slurm_cluster;
