//! `diskstats`: per-disk I/O counters from `/proc/diskstats`, plus `node_disk_info` (and the
//! filesystem and device-mapper info series) from udev's database and `/sys/block`.
//!
//! Partitions and virtual devices are skipped by node_exporter's default device exclude regex.

use std::collections::HashMap;
use std::path::PathBuf;

use nodetel_core::MetricType;
use nodetel_host::procfs::{diskstats, read_into};

use super::{CollectError, Collector};
use crate::node::config::Paths;
use crate::node::series::{Context, Family};

const SECTOR_BYTES: f64 = 512.0;

/// `(name, help)` of the 11 base counters then 4 discard and 2 flush counters, in file order.
const COUNTERS: [(&str, &str); 17] = [
    (
        "node_disk_reads_completed_total",
        "The total number of reads completed successfully.",
    ),
    ("node_disk_reads_merged_total", "The total number of reads merged."),
    (
        "node_disk_read_bytes_total",
        "The total number of bytes read successfully.",
    ),
    (
        "node_disk_read_time_seconds_total",
        "The total number of seconds spent by all reads.",
    ),
    (
        "node_disk_writes_completed_total",
        "The total number of writes completed successfully.",
    ),
    ("node_disk_writes_merged_total", "The number of writes merged."),
    (
        "node_disk_written_bytes_total",
        "The total number of bytes written successfully.",
    ),
    (
        "node_disk_write_time_seconds_total",
        "This is the total number of seconds spent by all writes.",
    ),
    ("node_disk_io_now", "The number of I/Os currently in progress."),
    ("node_disk_io_time_seconds_total", "Total seconds spent doing I/Os."),
    (
        "node_disk_io_time_weighted_seconds_total",
        "The weighted # of seconds spent doing I/Os.",
    ),
    (
        "node_disk_discards_completed_total",
        "The total number of discards completed successfully.",
    ),
    (
        "node_disk_discards_merged_total",
        "The total number of discards merged.",
    ),
    (
        "node_disk_discarded_sectors_total",
        "The total number of sectors discarded successfully.",
    ),
    (
        "node_disk_discard_time_seconds_total",
        "This is the total number of seconds spent by all discards.",
    ),
    (
        "node_disk_flush_requests_total",
        "The total number of flush requests completed successfully",
    ),
    (
        "node_disk_flush_requests_time_seconds_total",
        "This is the total number of seconds spent by all flush requests.",
    ),
];
const IO_NOW: usize = 8;

pub(crate) struct DiskstatsCollector {
    path: PathBuf,
    sysfs: PathBuf,
    udev: PathBuf,
    exclude: regex::Regex,
    counters: Vec<Family>,
    info: Family,
    filesystem_info: Family,
    device_mapper_info: Family,
    /// A second buffer for the per-device udev and sysfs reads while `/proc/diskstats` is held.
    aux: String,
    infos: HashMap<(u32, u32), DiskInfo>,
    round: u64,
}

impl DiskstatsCollector {
    pub(crate) fn new(paths: &Paths, exclude: regex::Regex) -> DiskstatsCollector {
        DiskstatsCollector {
            path: paths.procfs.join(diskstats::FILE),
            sysfs: paths.sysfs.join("block"),
            udev: paths.rootfs.join("run/udev/data"),
            exclude,
            counters: COUNTERS
                .iter()
                .enumerate()
                .map(|(i, (name, help))| {
                    let kind = if i == IO_NOW {
                        MetricType::Gauge
                    } else {
                        MetricType::Counter
                    };
                    Family::new(name, kind, help)
                })
                .collect(),
            info: Family::new(
                "node_disk_info",
                MetricType::Gauge,
                "Info of /sys/block/<block_device>.",
            ),
            filesystem_info: Family::new(
                "node_disk_filesystem_info",
                MetricType::Gauge,
                "Info about disk filesystem.",
            ),
            device_mapper_info: Family::new(
                "node_disk_device_mapper_info",
                MetricType::Gauge,
                "Info about disk device mapper.",
            ),
            aux: String::new(),
            infos: HashMap::new(),
            round: 0,
        }
    }

    /// Reads a device's static properties (udev database, rotational flag) once.
    fn read_info(&mut self, d: &diskstats::DiskStats<'_>) -> DiskInfo {
        let rotational_path = self.sysfs.join(d.device).join("queue/rotational");
        let rotational = match read_into(&rotational_path, &mut self.aux) {
            Ok(()) => self.aux.trim().to_owned(),
            Err(_) => String::new(),
        };
        // Without udev data (a container without /run/udev) the properties are empty, as in
        // node_exporter.
        let udev_path = self.udev.join(format!("b{}:{}", d.major, d.minor));
        if read_into(&udev_path, &mut self.aux).is_err() {
            self.aux.clear();
        }
        let prop = |key: &str| -> String {
            self.aux
                .lines()
                .find_map(|l| l.strip_prefix("E:")?.strip_prefix(key)?.strip_prefix('='))
                .unwrap_or("")
                .to_owned()
        };
        DiskInfo {
            major: d.major.to_string(),
            minor: d.minor.to_string(),
            info: [
                prop("ID_PATH"),
                prop("ID_WWN"),
                prop("ID_MODEL"),
                prop("ID_SERIAL_SHORT"),
                prop("ID_REVISION"),
                rotational,
            ],
            fs: [
                prop("ID_FS_TYPE"),
                prop("ID_FS_USAGE"),
                prop("ID_FS_UUID"),
                prop("ID_FS_VERSION"),
            ],
            dm: [
                prop("DM_NAME"),
                prop("DM_UUID"),
                prop("DM_VG_NAME"),
                prop("DM_LV_NAME"),
                prop("DM_LV_LAYER"),
            ],
            seen: 0,
        }
    }

    fn emit_info(&mut self, cx: &mut Context<'_>, d: &diskstats::DiskStats<'_>) -> Result<(), CollectError> {
        if !self.infos.contains_key(&(d.major, d.minor)) {
            let info = self.read_info(d);
            self.infos.insert((d.major, d.minor), info);
        }
        let Some(info) = self.infos.get_mut(&(d.major, d.minor)) else {
            return Ok(());
        };
        info.seen = self.round;
        let [path, wwn, model, serial, revision, rotational] = &info.info;
        self.info.emit(
            cx,
            &[
                ("device", d.device),
                ("major", &info.major),
                ("minor", &info.minor),
                ("path", path),
                ("wwn", wwn),
                ("model", model),
                ("serial", serial),
                ("revision", revision),
                ("rotational", rotational),
            ],
            1.0,
        )?;
        let [fs_type, usage, uuid, version] = &info.fs;
        if !fs_type.is_empty() {
            self.filesystem_info.emit(
                cx,
                &[
                    ("device", d.device),
                    ("type", fs_type),
                    ("usage", usage),
                    ("uuid", uuid),
                    ("version", version),
                ],
                1.0,
            )?;
        }
        let [name, uuid, vg_name, lv_name, lv_layer] = &info.dm;
        if !name.is_empty() {
            self.device_mapper_info.emit(
                cx,
                &[
                    ("device", d.device),
                    ("name", name),
                    ("uuid", uuid),
                    ("vg_name", vg_name),
                    ("lv_name", lv_name),
                    ("lv_layer", lv_layer),
                ],
                1.0,
            )?;
        }
        Ok(())
    }
}

/// A device's properties, which do not change while it exists.
struct DiskInfo {
    major: String,
    minor: String,
    /// path, wwn, model, serial, revision, rotational.
    info: [String; 6],
    /// type, usage, uuid, version.
    fs: [String; 4],
    /// name, uuid, vg_name, lv_name, lv_layer.
    dm: [String; 5],
    seen: u64,
}

impl Collector for DiskstatsCollector {
    fn update(&mut self, cx: &mut Context<'_>) -> Result<(), CollectError> {
        read_into(&self.path, cx.buf)?;
        self.round += 1;
        let text = std::mem::take(cx.buf);
        let path = std::mem::take(&mut self.path);
        let result = (|| {
            for d in diskstats::parse(&text, &path) {
                let d = d?;
                if self.exclude.is_match(d.device) {
                    continue;
                }
                let ms = |v: u64| v as f64 / 1000.0;
                let mut values = [0.0; COUNTERS.len()];
                let base = [
                    d.reads_completed as f64,
                    d.reads_merged as f64,
                    d.sectors_read as f64 * SECTOR_BYTES,
                    ms(d.read_time_ms),
                    d.writes_completed as f64,
                    d.writes_merged as f64,
                    d.sectors_written as f64 * SECTOR_BYTES,
                    ms(d.write_time_ms),
                    d.io_now as f64,
                    ms(d.io_time_ms),
                    ms(d.io_weighted_ms),
                ];
                values[..11].copy_from_slice(&base);
                let mut n = 11;
                if let Some([completed, merged, sectors, time]) = d.discards {
                    values[11..15].copy_from_slice(&[completed as f64, merged as f64, sectors as f64, ms(time)]);
                    n = 15;
                    if let Some([flushes, time]) = d.flushes {
                        values[15..17].copy_from_slice(&[flushes as f64, ms(time)]);
                        n = 17;
                    }
                }
                for (family, value) in self.counters.iter_mut().zip(&values[..n]) {
                    family.emit(cx, &[("device", d.device)], *value)?;
                }
                self.emit_info(cx, &d)?;
            }
            Ok(())
        })();
        *cx.buf = text;
        self.path = path;
        // Forget devices that are gone so a new device with the same numbers is read afresh.
        let round = self.round;
        self.infos.retain(|_, info| info.seen == round);
        result
    }
}
