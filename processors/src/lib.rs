//! nodetel-processors: transformations applied to batches inside a pipeline.
#![deny(missing_docs)]
pub mod batch;
pub mod slurmattributes;
