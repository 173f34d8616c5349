//! The `slurm` receiver. In `controller` mode (where slurmctld runs) it reports the cluster
//! metrics of SckyzO/slurm_exporter v1.1.0 (what HyperPod installs), or with `compat: vpenso`
//! those of vpenso/prometheus-slurm-exporter 0.20, running the same Slurm commands; in `worker`
//! mode it reports the jobs on this node. Every series carries `job="slurm_exporter"` and
//! `instance=<hostname>` by default.

mod config;
mod controller;
mod scraper;
mod series;
mod worker;

#[cfg(test)]
mod tests;

pub use config::{COLLECTORS, Compat, Mode, SlurmConfig};
pub use scraper::{AllFailed, SlurmScraper};
