//! nodetel-receivers: where data enters a pipeline. Native receivers read this node directly
//! (`node`); the `prometheus` receiver scrapes endpoints. A receiver never knows an exporter.
#![deny(missing_docs)]

pub mod gpu;
pub mod node;
pub mod otlp;
pub mod prometheus;
pub mod slurm;
