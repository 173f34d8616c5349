//! nodetel-host: typed access to this node — /proc and /sys readers and node identity. Facts
//! only; metric names and semantics live in the receivers.
#![deny(missing_docs)]

pub mod gpu;
pub mod identity;
pub mod process;
pub mod procfs;
pub mod slurm;
pub mod sysfs;
