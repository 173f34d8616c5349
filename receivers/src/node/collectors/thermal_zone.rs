//! `thermal_zone`: zone temperatures and cooling device states from `/sys/class/thermal`.

use std::path::PathBuf;

use nodetel_core::MetricType;
use nodetel_host::procfs::{read_into, values};
use nodetel_host::sysfs::list_dir;

use super::{CollectError, Collector};
use crate::node::config::Paths;
use crate::node::series::{Context, Family};

pub(crate) struct ThermalZoneCollector {
    dir: PathBuf,
    temp: Family,
    cur_state: Family,
    max_state: Family,
    kind: String,
}

impl ThermalZoneCollector {
    pub(crate) fn new(paths: &Paths) -> ThermalZoneCollector {
        use MetricType::Gauge;
        ThermalZoneCollector {
            dir: paths.sysfs.join("class/thermal"),
            temp: Family::new("node_thermal_zone_temp", Gauge, "Zone temperature in Celsius"),
            cur_state: Family::new(
                "node_cooling_device_cur_state",
                Gauge,
                "Current throttle state of the cooling device",
            ),
            max_state: Family::new(
                "node_cooling_device_max_state",
                Gauge,
                "Maximum throttle state of the cooling device",
            ),
            kind: String::new(),
        }
    }
}

impl Collector for ThermalZoneCollector {
    fn update(&mut self, cx: &mut Context<'_>) -> Result<(), CollectError> {
        let entries = match list_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.is_not_found() => return Err(CollectError::NoData("no /sys/class/thermal")),
            Err(e) => return Err(e.into()),
        };
        for entry in &entries {
            let dir = self.dir.join(entry);
            // Sensors that cannot be read right now (EAGAIN, ENODATA) are skipped, as in
            // node_exporter.
            if read_into(&dir.join("type"), &mut self.kind).is_err() {
                continue;
            }
            let kind = self.kind.trim().to_owned();
            if let Some(zone) = entry.strip_prefix("thermal_zone") {
                let path = dir.join("temp");
                if read_into(&path, cx.buf).is_err() {
                    continue;
                }
                // Millidegrees, and may be negative.
                let Ok(milli) = cx.buf.trim().parse::<i64>() else {
                    continue;
                };
                self.temp
                    .emit(cx, &[("type", &kind), ("zone", zone)], milli as f64 / 1000.0)?;
            } else if let Some(name) = entry.strip_prefix("cooling_device") {
                let (cur, max) = (dir.join("cur_state"), dir.join("max_state"));
                if read_into(&cur, cx.buf).is_err() {
                    continue;
                }
                let Ok([cur_state]) = values::parse_numbers::<1>(cx.buf, &cur) else {
                    continue;
                };
                if read_into(&max, cx.buf).is_err() {
                    continue;
                }
                let Ok([max_state]) = values::parse_numbers::<1>(cx.buf, &max) else {
                    continue;
                };
                let labels = [("name", name), ("type", kind.as_str())];
                self.cur_state.emit(cx, &labels, cur_state as f64)?;
                self.max_state.emit(cx, &labels, max_state as f64)?;
            }
        }
        Ok(())
    }
}
