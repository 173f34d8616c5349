//! The `gpu` receiver: NVIDIA GPU metrics read through NVML under dcgm-exporter 4.1.1's names,
//! labels, types and help texts (`DCGM_FI_DEV_GPU_UTIL{gpu,UUID,pci_bus_id,device,modelName,
//! Hostname}` ...), so dashboards built for dcgm-exporter keep working without DCGM.
//!
//! Values are read through [`nodetel_host::gpu::GpuSource`]; Xid events arrive on a background
//! thread. Without a driver or a GPU the receiver is built disabled and emits nothing. See
//! `README.md` beside this file for the metric list and what NVML cannot provide.

mod collector;
mod config;
mod fields;
mod scraper;
mod xid;

#[cfg(test)]
mod tests;

pub use collector::{GpuCollector, GpuReceiverError};
pub use config::GpuConfig;
pub use fields::CounterSet;
pub use scraper::DisabledReceiver;
