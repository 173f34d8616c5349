//! nodetel-config: loads, expands and validates the YAML config and builds the pipelines.
#![deny(missing_docs)]

pub mod error;
pub mod expand;
mod document;
