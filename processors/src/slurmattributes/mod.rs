//! The `slurmattributes` processor: labels per-GPU series with the Slurm job, user, partition,
//! rank and local rank that use the GPU, and node-level series with the job when exactly one
//! job holds the node.
//!
//! A background refresher (every `refresh_interval`, first run in `Processor::start`) asks
//! Slurm which jobs run on this node and walks /proc for their tasks; it publishes an immutable
//! snapshot behind an `Arc`. `process()` only reads that snapshot and caches its result per
//! input label set and snapshot epoch: no Slurm call on the hot path. Labels a series already
//! has are never overwritten. See [`snapshot`] for which source wins when they disagree.
//!
//! Two more rules for pushed series (OTLP from training scripts): a series that names its job
//! (`slurm_job_id`, e.g. from the sender's `slurm.job.id` resource attribute) gets that job's
//! name, user and partition; a batch whose sending process is known (a loopback connection)
//! gets that process's job and rank, read from its environment once per sender and refresh.

mod config;
mod processor;
mod refresher;
mod senders;
pub mod snapshot;
mod telemetry;

pub use config::{LabelNames, SlurmAttributesConfig};
pub use processor::SlurmAttributes;
pub use refresher::{RefreshReport, Refresher, SharedSnapshot};
pub use snapshot::Snapshot;
pub use telemetry::SlurmAttributesMetrics;
