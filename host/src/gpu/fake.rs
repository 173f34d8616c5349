//! A strict in-memory [`GpuSource`] for tests: GPUs, values and per-field errors are set by the
//! test; a read of a GPU that does not exist panics, so a test cannot pass by reading the wrong
//! device. Fields that were never set read as [`GpuError::NotSupported`].

use std::collections::{BTreeMap, HashMap};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use super::{DeviceInfo, GpuError, GpuField, GpuSource, ProfilingMetric, Value, XidEvent, XidWatcher};

#[derive(Debug, Default)]
struct FakeDevice {
    info: Option<DeviceInfo>,
    values: HashMap<GpuField, Result<Value, GpuError>>,
    profiling: HashMap<ProfilingMetric, Result<f64, GpuError>>,
    profiling_error: Option<GpuError>,
    profiling_calls: u32,
    lost: bool,
}

#[derive(Debug, Default)]
struct State {
    driver: Option<String>,
    devices: BTreeMap<u32, FakeDevice>,
    unavailable: Vec<(u32, GpuError)>,
    reads: HashMap<(u32, GpuField), u32>,
    xid_senders: Vec<Sender<Result<XidEvent, GpuError>>>,
    xid_error: Option<GpuError>,
}

/// A fake [`GpuSource`]; share it with `Arc` and change it between collections.
#[derive(Debug, Default)]
pub struct FakeGpuSource {
    state: Mutex<State>,
}

/// A GPU description with the usual label values derived from `index`.
pub fn device_info(index: u32, name: &str) -> DeviceInfo {
    DeviceInfo {
        index,
        uuid: format!("GPU-{index:08x}-1111-2222-3333-444455556666"),
        name: name.to_owned(),
        pci_bus_id: format!("00000000:{:02X}:00.0", 0x18 + index * 0x10),
    }
}

impl FakeGpuSource {
    /// No GPUs, driver `550.127.05`.
    pub fn new() -> FakeGpuSource {
        let fake = FakeGpuSource::default();
        fake.lock().driver = Some("550.127.05".to_owned());
        fake
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds a GPU.
    pub fn add_device(&self, info: DeviceInfo) -> &Self {
        let index = info.index;
        self.lock().devices.entry(index).or_default().info = Some(info);
        self
    }

    /// Lists a GPU that exists but could not be opened.
    pub fn add_unavailable(&self, index: u32, error: GpuError) -> &Self {
        self.lock().unavailable.push((index, error));
        self
    }

    /// Makes the driver version unreadable (`None`) or sets it.
    pub fn set_driver_version(&self, version: Option<&str>) -> &Self {
        self.lock().driver = version.map(str::to_owned);
        self
    }

    /// Sets what reading `field` of GPU `device` returns. Panics if the GPU does not exist.
    pub fn set(&self, device: u32, field: GpuField, value: Result<Value, GpuError>) -> &Self {
        self.with_device(device, |d| {
            d.values.insert(field, value);
        });
        self
    }

    /// Sets what a profiling window of GPU `device` returns for `metric` (after the first,
    /// which is always [`GpuError::NotReady`]).
    pub fn set_profiling(&self, device: u32, metric: ProfilingMetric, value: Result<f64, GpuError>) -> &Self {
        self.with_device(device, |d| {
            d.profiling.insert(metric, value);
        });
        self
    }

    /// Makes every profiling call of GPU `device` fail (`None` clears it).
    pub fn set_profiling_error(&self, device: u32, error: Option<GpuError>) -> &Self {
        self.with_device(device, |d| d.profiling_error = error);
        self
    }

    /// Makes GPU `device` fall off the bus (`true`) or come back: while lost, every read of it
    /// fails with [`GpuError::GpuLost`].
    pub fn set_lost(&self, device: u32, lost: bool) -> &Self {
        self.with_device(device, |d| d.lost = lost);
        self
    }

    /// Makes [`GpuSource::xid_watcher`] fail (`None` clears it).
    pub fn set_xid_watcher_error(&self, error: Option<GpuError>) -> &Self {
        self.lock().xid_error = error;
        self
    }

    /// Delivers an Xid event to every watcher. Panics if the GPU does not exist.
    pub fn send_xid(&self, device: u32, xid: u64) {
        let mut state = self.lock();
        assert!(
            state.devices.contains_key(&device),
            "fake GPU source: no GPU with index {device}"
        );
        state
            .xid_senders
            .retain(|tx| tx.send(Ok(XidEvent { device, xid })).is_ok());
    }

    /// Delivers a watcher error (the event wait failing) to every watcher.
    pub fn send_xid_error(&self, error: GpuError) {
        self.lock().xid_senders.retain(|tx| tx.send(Err(error.clone())).is_ok());
    }

    /// How often `field` of GPU `device` was read.
    pub fn reads(&self, device: u32, field: GpuField) -> u32 {
        self.lock().reads.get(&(device, field)).copied().unwrap_or(0)
    }

    /// How many watchers are connected.
    pub fn xid_watchers(&self) -> usize {
        self.lock().xid_senders.len()
    }

    fn with_device<T>(&self, device: u32, f: impl FnOnce(&mut FakeDevice) -> T) -> T {
        let mut state = self.lock();
        match state.devices.get_mut(&device) {
            Some(d) => f(d),
            None => panic!("fake GPU source: no GPU with index {device}"),
        }
    }
}

impl GpuSource for FakeGpuSource {
    fn driver_version(&self) -> Result<String, GpuError> {
        self.lock().driver.clone().ok_or(GpuError::NotSupported)
    }

    fn devices(&self) -> Vec<DeviceInfo> {
        self.lock().devices.values().filter_map(|d| d.info.clone()).collect()
    }

    fn unavailable(&self) -> Vec<(u32, GpuError)> {
        self.lock().unavailable.clone()
    }

    fn read(&self, device: u32, field: GpuField) -> Result<Value, GpuError> {
        *self.lock().reads.entry((device, field)).or_default() += 1;
        self.with_device(device, |d| {
            if d.lost {
                return Err(GpuError::GpuLost);
            }
            d.values.get(&field).cloned().unwrap_or(Err(GpuError::NotSupported))
        })
    }

    fn profiling(&self, device: u32, metrics: &[ProfilingMetric]) -> Result<Vec<Result<f64, GpuError>>, GpuError> {
        self.with_device(device, |d| {
            if d.lost {
                return Err(GpuError::GpuLost);
            }
            if let Some(e) = &d.profiling_error {
                return Err(e.clone());
            }
            d.profiling_calls += 1;
            if d.profiling_calls == 1 {
                return Ok(metrics.iter().map(|_| Err(GpuError::NotReady)).collect());
            }
            Ok(metrics
                .iter()
                .map(|m| d.profiling.get(m).cloned().unwrap_or(Err(GpuError::NotSupported)))
                .collect())
        })
    }

    fn xid_watcher(&self) -> Result<Box<dyn XidWatcher>, GpuError> {
        let mut state = self.lock();
        if let Some(e) = &state.xid_error {
            return Err(e.clone());
        }
        let (tx, rx) = mpsc::channel();
        state.xid_senders.push(tx);
        Ok(Box::new(FakeXidWatcher { rx }))
    }
}

struct FakeXidWatcher {
    rx: Receiver<Result<XidEvent, GpuError>>,
}

impl XidWatcher for FakeXidWatcher {
    fn wait(&mut self, timeout: Duration) -> Result<Option<XidEvent>, GpuError> {
        match self.rx.recv_timeout(timeout) {
            Ok(event) => event.map(Some),
            Err(RecvTimeoutError::Timeout) => Ok(None),
            Err(RecvTimeoutError::Disconnected) => Err(GpuError::Other("the fake GPU source was dropped".to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unset_fields_are_not_supported_and_set_ones_are_returned() {
        let fake = FakeGpuSource::new();
        fake.add_device(device_info(0, "NVIDIA H100 80GB HBM3"));
        fake.set(0, GpuField::GpuTempC, Ok(Value::U64(41)));
        assert_eq!(fake.read(0, GpuField::GpuTempC), Ok(Value::U64(41)));
        assert_eq!(fake.read(0, GpuField::SmClockMhz), Err(GpuError::NotSupported));
        assert_eq!(fake.reads(0, GpuField::GpuTempC), 1);
        fake.set_lost(0, true);
        assert_eq!(fake.read(0, GpuField::GpuTempC), Err(GpuError::GpuLost));
    }

    #[test]
    #[should_panic(expected = "no GPU with index 3")]
    fn reading_a_gpu_that_does_not_exist_panics() {
        let fake = FakeGpuSource::new();
        fake.add_device(device_info(0, "x"));
        let _ = fake.read(3, GpuField::GpuTempC);
    }

    #[test]
    fn profiling_needs_two_windows() {
        let fake = FakeGpuSource::new();
        fake.add_device(device_info(0, "x"));
        fake.set_profiling(0, ProfilingMetric::SmUtilPct, Ok(55.0));
        let metrics = [ProfilingMetric::SmUtilPct];
        assert_eq!(fake.profiling(0, &metrics), Ok(vec![Err(GpuError::NotReady)]));
        assert_eq!(fake.profiling(0, &metrics), Ok(vec![Ok(55.0)]));
    }

    #[test]
    fn xid_events_reach_the_watcher() {
        let fake = FakeGpuSource::new();
        fake.add_device(device_info(1, "x"));
        let mut watcher = fake.xid_watcher().unwrap();
        assert_eq!(watcher.wait(Duration::from_millis(1)), Ok(None));
        fake.send_xid(1, 79);
        assert_eq!(
            watcher.wait(Duration::from_millis(100)),
            Ok(Some(XidEvent { device: 1, xid: 79 }))
        );
    }
}
