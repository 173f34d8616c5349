//! Xid events: a background thread waits on NVML's event set (never the scrape path) and keeps,
//! per GPU, the last Xid and a count by Xid, which collections read.
//!
//! dcgm-exporter's `DCGM_FI_DEV_XID_ERRORS` is sticky: it shows the last Xid until the exporter
//! restarts, 0 before any. The counter by Xid adds what the sticky value cannot show (two equal
//! Xids in a row, several Xids within one interval).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use nodetel_host::gpu::{GpuError, XidEvent, XidWatcher};

/// How long one wait blocks; also how quickly the thread notices it should stop.
const WAIT: Duration = Duration::from_millis(500);

/// What the watcher thread has seen, shared with collections.
#[derive(Debug, Default)]
pub(crate) struct XidState {
    inner: Mutex<XidTable>,
}

#[derive(Debug, Default, Clone)]
pub(crate) struct XidTable {
    /// Last Xid per GPU index.
    pub(crate) last: BTreeMap<u32, u64>,
    /// Events per (GPU index, Xid).
    pub(crate) counts: BTreeMap<(u32, u64), u64>,
}

impl XidState {
    pub(crate) fn record(&self, event: XidEvent) {
        let mut t = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        t.last.insert(event.device, event.xid);
        *t.counts.entry((event.device, event.xid)).or_default() += 1;
    }

    /// The last Xid of GPU `device` (0 before any) and its counts by Xid, appended to `counts`.
    pub(crate) fn read(&self, device: u32, counts: &mut Vec<(u64, u64)>) -> u64 {
        let t = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        counts.extend(
            t.counts
                .range((device, 0)..=(device, u64::MAX))
                .map(|(&(_, xid), &n)| (xid, n)),
        );
        t.last.get(&device).copied().unwrap_or(0)
    }
}

/// The watcher thread; stops (within [`WAIT`]) when dropped.
#[derive(Debug)]
pub(crate) struct XidThread {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl XidThread {
    /// Starts a thread that records every event `watcher` yields into `state`.
    pub(crate) fn spawn(mut watcher: Box<dyn XidWatcher>, state: Arc<XidState>) -> std::io::Result<XidThread> {
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let handle = std::thread::Builder::new()
            .name("nodetel-gpu-xid".to_owned())
            .spawn(move || {
                let mut failing = false;
                while !stopping.load(Ordering::Relaxed) {
                    match watcher.wait(WAIT) {
                        Ok(Some(event)) => {
                            tracing::warn!(
                                gpu = event.device,
                                xid = event.xid,
                                "GPU reported a critical Xid error."
                            );
                            state.record(event);
                            failing = false;
                        }
                        Ok(None) => failing = false,
                        Err(error) => {
                            // A lost GPU makes the wait fail until it is back; log the streak once
                            // and do not spin.
                            if !failing {
                                tracing::warn!(%error, "Waiting for Xid events failed; retrying.");
                                failing = true;
                            }
                            if error != GpuError::NotReady {
                                std::thread::sleep(WAIT);
                            }
                        }
                    }
                }
            })?;
        Ok(XidThread {
            stop,
            handle: Some(handle),
        })
    }
}

impl Drop for XidThread {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Not joined: a wait blocked inside the driver must not hold up shutdown; the thread
        // ends on its own after the current wait.
        drop(self.handle.take());
    }
}

/// dcgm-exporter's `err_msg` for an Xid: the text of its Xid table, "Unknown Error" otherwise.
pub(crate) fn message(xid: u64) -> &'static str {
    match xid {
        0 => "No Error",
        1..=4 | 6 | 11 | 32 => "Invalid or corrupted push buffer stream",
        7 => "Invalid or corrupted push buffer address",
        8 => "GPU stopped processing",
        9 => "Driver error programming GPU",
        12 => "Driver error handling GPU exception",
        13 => "Graphics Engine Exception",
        31 => "GPU memory page fault",
        43 => "GPU stopped processing",
        45 => {
            "Preemptive cleanup, due to previous errors -- Most likely to see when running multiple cuda applications and hitting a DBE"
        }
        48 => "Double Bit ECC Error",
        63 => "ECC page retirement or row remapping recording event",
        64 => "ECC page retirement or row remapper recording failure",
        74 => "NVLINK Error",
        79 => "GPU has fallen off the bus",
        92 => "High single-bit ECC error rate",
        94 => "Contained ECC error",
        95 => "Uncontained ECC error",
        _ => "Unknown Error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_xid_sticks_and_counts_add_up_per_gpu() {
        let state = XidState::default();
        let mut counts = Vec::new();
        assert_eq!(state.read(0, &mut counts), 0);
        assert!(counts.is_empty());
        for (device, xid) in [(0, 79), (1, 13), (0, 48), (0, 79)] {
            state.record(XidEvent { device, xid });
        }
        assert_eq!(state.read(0, &mut counts), 79);
        assert_eq!(counts, [(48, 1), (79, 2)]);
        counts.clear();
        assert_eq!(state.read(1, &mut counts), 13);
        assert_eq!(counts, [(13, 1)]);
    }

    #[test]
    fn messages_follow_dcgm_exporter() {
        assert_eq!(message(0), "No Error");
        assert_eq!(message(79), "GPU has fallen off the bus");
        assert_eq!(message(100_000), "Unknown Error");
    }
}
