//! nodetel-core: the data model, the component traits, the pipeline runtime and
//! self-telemetry.
//!
//! - [`labels`]: interned label pairs with their encoded bytes, and label sets built from them.
//! - [`sample`], [`metadata`], [`batch`]: samples, family metadata, series and batches.
//! - [`component`]: component ids and the `Receiver`, `Scraper`, `Processor`, `Exporter` traits.
//! - [`runtime`]: the graph of components, run with bounded queues and supervision.
//! - [`telemetry`]: the self-metrics registry; [`http`]: the tiny server behind `/metrics`.
//! - [`exposition`]: the Prometheus text format writer.
//! - [`tls`]: server TLS (certificates, client authentication) for listeners beyond loopback.
#![deny(missing_docs)]

pub mod batch;
pub mod blocking;
pub mod component;
pub mod config;
pub mod exposition;
pub mod http;
pub mod labels;
pub mod metadata;
pub mod runtime;
pub mod sample;
pub mod telemetry;
pub mod tls;

pub use batch::{Batch, Series};
pub use component::{
    BoxError, ComponentId, ComponentKind, ExportError, Exporter, Output, Processor, ProcessorContext, Receiver,
    ReceiverContext, ScrapeReceiver, Scraper,
};
pub use labels::{Labels, LabelsBuilder, LabelsMap, Pair};
pub use metadata::{MetricMetadata, MetricType};
pub use sample::Sample;
pub use tokio_util::sync::CancellationToken;
