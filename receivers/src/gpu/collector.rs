//! One collection round over every GPU: NVML reads through a [`GpuSource`], DCGM units, label
//! sets built once per (GPU, metric), a lost GPU dropped from the round without touching the
//! others.

use std::sync::Arc;

use nodetel_core::labels::{LabelError, METRIC_NAME, Pair};
use nodetel_core::{Batch, Labels, LabelsBuilder, MetricMetadata, Sample};
use nodetel_host::gpu::{DeviceInfo, GpuError, GpuSource, ProfilingMetric, Value};

use super::config::GpuConfig;
use super::fields::{FieldSpec, Source};
use super::xid::{self, XidState, XidThread};

/// Why the `gpu` receiver could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum GpuReceiverError {
    /// A label value (job, instance, hostname, a GPU's identity) cannot be used.
    #[error("cannot build the labels of the gpu receiver: {0}")]
    Labels(#[from] LabelError),
}

struct Selected {
    spec: &'static FieldSpec,
    metadata: Arc<MetricMetadata>,
}

struct DeviceState {
    info: DeviceInfo,
    identity: Vec<Pair>,
    /// Per selected metric; `None` for the Xid metrics, whose labels depend on the value.
    labels: Vec<Option<Labels>>,
    /// `DCGM_FI_DEV_XID_ERRORS` label sets by Xid (they carry `err_code` and `err_msg`).
    last_xid: Vec<(u64, Labels)>,
    /// `nodetel_gpu_xid_events_total` label sets by Xid.
    xid_counts: Vec<(u64, Labels)>,
    /// Previous (KiB, ms) of each rate metric, by selected index.
    previous: Vec<Option<(u64, i64)>>,
    /// Per selected metric: an unexpected error was logged and has not cleared yet.
    failing: Vec<bool>,
    lost: bool,
    profiling_unsupported: bool,
    profiling_failing: bool,
}

/// Reads every GPU once per [`GpuCollector::collect`]; synchronous (NVML calls block).
pub struct GpuCollector {
    source: Arc<dyn GpuSource>,
    fields: Vec<Selected>,
    profiling: Vec<ProfilingMetric>,
    devices: Vec<DeviceState>,
    xid: Arc<XidState>,
    xid_thread: Option<XidThread>,
    builder: LabelsBuilder,
    emitted: Vec<bool>,
    counts: Vec<(u64, u64)>,
}

impl std::fmt::Debug for GpuCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuCollector")
            .field("source", &self.source)
            .field("fields", &self.fields.iter().map(|s| s.spec.name).collect::<Vec<_>>())
            .field("gpus", &self.devices.len())
            .finish_non_exhaustive()
    }
}

impl GpuCollector {
    /// Prepares the label sets of every GPU of `source` and starts the Xid watcher thread when an
    /// Xid metric is selected. `hostname` is the `Hostname` label, `instance` the `instance` one.
    pub fn new(
        source: Arc<dyn GpuSource>,
        config: &GpuConfig,
        instance: &str,
        hostname: &str,
    ) -> Result<GpuCollector, GpuReceiverError> {
        let set = config.counters;
        let fields: Vec<Selected> = config
            .selected()
            .into_iter()
            .map(|spec| {
                let (kind, help) = spec.metadata(set);
                Selected {
                    spec,
                    metadata: Arc::new(MetricMetadata::new(spec.name, kind, help)),
                }
            })
            .collect();
        let profiling = fields
            .iter()
            .filter_map(|f| match f.spec.source {
                Source::Profiling(m, _) => Some(m),
                _ => None,
            })
            .collect();

        let mut common = vec![
            Pair::new("job", &config.job)?,
            Pair::new("instance", instance)?,
            Pair::new("Hostname", hostname)?,
        ];
        if config.driver_version_label {
            match source.driver_version() {
                Ok(version) => common.push(Pair::new("DCGM_FI_DRIVER_VERSION", &version)?),
                Err(error) => tracing::warn!(%error, "Cannot read the driver version; series go without it."),
            }
        }
        for (index, error) in source.unavailable() {
            tracing::warn!(gpu = index, %error, "GPU cannot be opened; it reports no series.");
        }

        let mut builder = LabelsBuilder::new();
        let mut devices = Vec::new();
        for info in source.devices() {
            let mut identity = common.clone();
            identity.extend([
                Pair::new("gpu", &info.index.to_string())?,
                Pair::new("UUID", &info.uuid)?,
                Pair::new("pci_bus_id", &info.pci_bus_id)?,
                Pair::new("device", &format!("nvidia{}", info.index))?,
                Pair::new("modelName", &info.name)?,
            ]);
            let mut labels = Vec::with_capacity(fields.len());
            for f in &fields {
                labels.push(match f.spec.source {
                    Source::LastXid | Source::XidCount => None,
                    _ => Some(build_labels(&mut builder, &identity, f.spec.name, &[])?),
                });
            }
            devices.push(DeviceState {
                info,
                identity,
                labels,
                last_xid: Vec::new(),
                xid_counts: Vec::new(),
                previous: vec![None; fields.len()],
                failing: vec![false; fields.len()],
                lost: false,
                profiling_unsupported: false,
                profiling_failing: false,
            });
        }

        let xid = Arc::new(XidState::default());
        let wants_xid = fields
            .iter()
            .any(|f| matches!(f.spec.source, Source::LastXid | Source::XidCount));
        let xid_thread = if wants_xid && !devices.is_empty() {
            match source.xid_watcher() {
                Ok(watcher) => match XidThread::spawn(watcher, xid.clone()) {
                    Ok(thread) => Some(thread),
                    Err(error) => {
                        tracing::warn!(%error, "Cannot start the Xid watcher thread; Xid metrics stay at 0.");
                        None
                    }
                },
                Err(error) => {
                    tracing::warn!(%error, "Xid events are not available; Xid metrics stay at 0.");
                    None
                }
            }
        } else {
            None
        };

        let emitted = vec![false; fields.len()];
        Ok(GpuCollector {
            source,
            fields,
            profiling,
            devices,
            xid,
            xid_thread,
            builder,
            emitted,
            counts: Vec::new(),
        })
    }

    /// The GPUs that report series.
    pub fn gpus(&self) -> impl Iterator<Item = &DeviceInfo> + '_ {
        self.devices.iter().map(|d| &d.info)
    }

    /// Whether the Xid watcher thread runs.
    pub fn watching_xid(&self) -> bool {
        self.xid_thread.is_some()
    }

    /// Reads every GPU once, appending its series to `out` stamped with `timestamp_ms`.
    pub fn collect(&mut self, timestamp_ms: i64, out: &mut Batch) {
        self.emitted.fill(false);
        for d in 0..self.devices.len() {
            let mark = out.series.len();
            let lost = self.collect_device(d, timestamp_ms, out);
            let dev = &mut self.devices[d];
            if lost {
                // The reads before the failing one are from the same round and still valid, but a
                // GPU with half its series would confuse dashboards more than a gap.
                out.series.truncate(mark);
                if !dev.lost {
                    tracing::warn!(
                        gpu = dev.info.index,
                        uuid = %dev.info.uuid,
                        "GPU has fallen off the bus or is inaccessible; its series stop until it is back."
                    );
                    dev.lost = true;
                }
            } else if dev.lost {
                tracing::info!(gpu = dev.info.index, uuid = %dev.info.uuid, "GPU is accessible again.");
                dev.lost = false;
            }
            if let Err(error) = self.collect_xid(d, timestamp_ms, out) {
                tracing::warn!(%error, "Cannot label an Xid series; skipping it.");
            }
        }
        for (f, emitted) in self.fields.iter().zip(&self.emitted) {
            if *emitted {
                out.metadata.push(f.metadata.clone());
            }
        }
    }

    /// The NVML-backed series of GPU `d`; `true` when the GPU turned out to be lost.
    fn collect_device(&mut self, d: usize, timestamp_ms: i64, out: &mut Batch) -> bool {
        let dev = &mut self.devices[d];
        let index = dev.info.index;
        let mut window = None;
        if !self.profiling.is_empty() && !dev.profiling_unsupported {
            match self.source.profiling(index, &self.profiling) {
                Ok(values) => {
                    dev.profiling_failing = false;
                    window = Some(values);
                }
                Err(GpuError::GpuLost) => return true,
                Err(GpuError::NotSupported) => {
                    tracing::info!(
                        gpu = index,
                        "GPU has no NVML profiling (GPM); DCGM_FI_PROF_* series are omitted."
                    );
                    dev.profiling_unsupported = true;
                }
                Err(GpuError::NotReady) => {}
                Err(error) => {
                    if !dev.profiling_failing {
                        tracing::warn!(gpu = index, %error, "Profiling read failed; DCGM_FI_PROF_* series are omitted.");
                        dev.profiling_failing = true;
                    }
                }
            }
        }
        for (i, f) in self.fields.iter().enumerate() {
            let read = match f.spec.source {
                Source::Read(field, convert) => self.source.read(index, field).map(|v| convert.apply(v)),
                Source::Profiling(metric, convert) => {
                    let Some(values) = &window else { continue };
                    match self
                        .profiling
                        .iter()
                        .position(|&m| m == metric)
                        .and_then(|p| values.get(p))
                    {
                        Some(Ok(v)) => Ok(convert.apply(Value::F64(*v))),
                        Some(Err(e)) => Err(e.clone()),
                        None => continue,
                    }
                }
                Source::RateKibPerMs(field) => self.source.read(index, field).map(|v| {
                    let kib = match v {
                        Value::U64(k) => k,
                        Value::F64(k) => k.max(0.0) as u64,
                    };
                    let rate = match dev.previous[i] {
                        Some((prev, at)) if timestamp_ms > at && kib >= prev => {
                            ((kib - prev) as f64 / (timestamp_ms - at) as f64).floor()
                        }
                        _ => 0.0,
                    };
                    dev.previous[i] = Some((kib, timestamp_ms));
                    Some(rate)
                }),
                Source::LastXid | Source::XidCount => continue,
            };
            match read {
                Ok(Some(value)) => {
                    if let Some(labels) = &dev.labels[i] {
                        out.push(labels.clone(), Sample::new(timestamp_ms, value));
                        self.emitted[i] = true;
                    }
                    dev.failing[i] = false;
                }
                Ok(None) | Err(GpuError::NotSupported) | Err(GpuError::NotReady) => dev.failing[i] = false,
                Err(GpuError::GpuLost) => return true,
                Err(GpuError::Other(error)) => {
                    if !dev.failing[i] {
                        tracing::warn!(gpu = index, metric = f.spec.name, %error, "GPU read failed; omitting the series.");
                        dev.failing[i] = true;
                    }
                }
            }
        }
        false
    }

    /// The Xid series of GPU `d`, from what the watcher thread recorded.
    fn collect_xid(&mut self, d: usize, timestamp_ms: i64, out: &mut Batch) -> Result<(), LabelError> {
        let dev = &mut self.devices[d];
        self.counts.clear();
        let last = self.xid.read(dev.info.index, &mut self.counts);
        for (i, f) in self.fields.iter().enumerate() {
            match f.spec.source {
                Source::LastXid => {
                    let labels = match dev.last_xid.iter().find(|(x, _)| *x == last) {
                        Some((_, l)) => l.clone(),
                        None => {
                            let code = last.to_string();
                            let extra = [("err_code", code.as_str()), ("err_msg", xid::message(last))];
                            let l = build_labels(&mut self.builder, &dev.identity, f.spec.name, &extra)?;
                            dev.last_xid.push((last, l.clone()));
                            l
                        }
                    };
                    out.push(labels, Sample::new(timestamp_ms, last as f64));
                    self.emitted[i] = true;
                }
                Source::XidCount => {
                    for &(xid, n) in &self.counts {
                        let labels = match dev.xid_counts.iter().find(|(x, _)| *x == xid) {
                            Some((_, l)) => l.clone(),
                            None => {
                                let code = xid.to_string();
                                let l = build_labels(&mut self.builder, &dev.identity, f.spec.name, &[("xid", &code)])?;
                                dev.xid_counts.push((xid, l.clone()));
                                l
                            }
                        };
                        out.push(labels, Sample::new(timestamp_ms, n as f64));
                        self.emitted[i] = true;
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }
}

fn build_labels(
    builder: &mut LabelsBuilder,
    identity: &[Pair],
    name: &str,
    extra: &[(&str, &str)],
) -> Result<Labels, LabelError> {
    builder.clear();
    for pair in identity {
        builder.push_pair(pair.clone());
    }
    builder.push(METRIC_NAME, name)?;
    for (n, v) in extra {
        builder.push(n, v)?;
    }
    builder.build()
}
