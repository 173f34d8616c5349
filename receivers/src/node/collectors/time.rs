//! `time`: the system clock, the local time zone offset and the clocksources.
//!
//! The zone comes from `<rootfs>/etc/localtime`'s TZif footer. Zones with a fixed offset (UTC,
//! as on cloud nodes) are reported; zones with daylight-saving rules are left out rather than
//! guessed. No `/etc/localtime` means UTC, as in Go.

use std::path::PathBuf;

use nodetel_core::MetricType;
use nodetel_host::sysfs::clocksource;

use super::{CollectError, Collector};
use crate::node::config::Paths;
use crate::node::series::{Context, Family};

pub(crate) struct TimeCollector {
    localtime: PathBuf,
    sysfs: PathBuf,
    now: Family,
    zone: Family,
    available: Family,
    current: Family,
    zone_cache: Option<ZoneCache>,
}

/// The zone read from `localtime` (name and offset, if fixed) and the file's modification time
/// it was read at.
type ZoneCache = (Option<std::time::SystemTime>, Option<(String, i64)>);

impl TimeCollector {
    pub(crate) fn new(paths: &Paths) -> TimeCollector {
        use MetricType::Gauge;
        TimeCollector {
            localtime: paths.rootfs.join("etc/localtime"),
            sysfs: paths.sysfs.clone(),
            now: Family::new("node_time_seconds", Gauge, "System time in seconds since epoch (1970)."),
            zone: Family::new(
                "node_time_zone_offset_seconds",
                Gauge,
                "System time zone offset in seconds.",
            ),
            available: Family::new(
                "node_time_clocksource_available_info",
                Gauge,
                "Available clocksources read from '/sys/devices/system/clocksource'.",
            ),
            current: Family::new(
                "node_time_clocksource_current_info",
                Gauge,
                "Current clocksource read from '/sys/devices/system/clocksource'.",
            ),
            zone_cache: None,
        }
    }
}

/// The zone name and UTC offset (seconds east) of a POSIX TZ string without DST rules, such as
/// `UTC0`, `JST-9` or `<+0530>-5:30`.
pub(crate) fn fixed_zone(tz: &str) -> Option<(String, i64)> {
    let (name, rest) = if let Some(quoted) = tz.strip_prefix('<') {
        let end = quoted.find('>')?;
        (&quoted[..end], &quoted[end + 1..])
    } else {
        let end = tz.find(|c: char| !c.is_ascii_alphabetic()).unwrap_or(tz.len());
        (&tz[..end], &tz[end..])
    };
    if name.len() < 3 {
        return None;
    }
    let (sign, digits) = match rest.as_bytes().first()? {
        b'-' => (1, &rest[1..]),
        b'+' => (-1, &rest[1..]),
        _ => (-1, rest),
    };
    let mut seconds = 0i64;
    let mut unit = 3600;
    for part in digits.split(':') {
        if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) || unit == 0 {
            // Anything else (a DST zone name, rules) is not a fixed zone.
            return None;
        }
        seconds += part.parse::<i64>().ok()? * unit;
        unit /= 60;
    }
    // POSIX offsets are west of UTC; Prometheus reports east.
    Some((name.to_owned(), sign * seconds))
}

/// The TZ string at the end of a TZif (version 2+) file.
fn tzif_footer(data: &[u8]) -> Option<&str> {
    if !data.starts_with(b"TZif") || data.get(4).is_none_or(|v| *v < b'2') {
        return None;
    }
    let body = data.strip_suffix(b"\n")?;
    let start = body.iter().rposition(|b| *b == b'\n')? + 1;
    std::str::from_utf8(&body[start..]).ok()
}

impl Collector for TimeCollector {
    fn update(&mut self, cx: &mut Context<'_>) -> Result<(), CollectError> {
        let now = cx.timestamp_ms() as f64 / 1000.0;
        self.now.emit(cx, &[], now)?;
        // The zone file rarely changes: parse it again only when its modification time does.
        let modified = std::fs::metadata(&self.localtime).and_then(|m| m.modified()).ok();
        if self.zone_cache.as_ref().is_none_or(|(m, _)| *m != modified) {
            let zone = match std::fs::read(&self.localtime) {
                Ok(data) => tzif_footer(&data).and_then(fixed_zone),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some(("UTC".to_owned(), 0)),
                Err(_) => None,
            };
            self.zone_cache = Some((modified, zone));
        }
        if let Some((_, Some((name, offset)))) = &self.zone_cache {
            self.zone.emit(cx, &[("time_zone", name)], *offset as f64)?;
        }
        let sources = match clocksource::read(&self.sysfs, cx.buf) {
            Ok(s) => s,
            // No clocksource directory: report the clock only, like node_exporter.
            Err(e) if e.is_not_found() => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        for s in &sources {
            for a in &s.available {
                self.available
                    .emit(cx, &[("clocksource", a), ("device", &s.device)], 1.0)?;
            }
            self.current
                .emit(cx, &[("clocksource", &s.current), ("device", &s.device)], 1.0)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_zones_are_understood_and_dst_zones_are_not() {
        assert_eq!(fixed_zone("UTC0"), Some(("UTC".to_owned(), 0)));
        assert_eq!(fixed_zone("JST-9"), Some(("JST".to_owned(), 9 * 3600)));
        assert_eq!(fixed_zone("<+0530>-5:30"), Some(("+0530".to_owned(), 5 * 3600 + 1800)));
        assert_eq!(fixed_zone("EST5"), Some(("EST".to_owned(), -5 * 3600)));
        assert_eq!(fixed_zone("CET-1CEST,M3.5.0,M10.5.0/3"), None);
        assert_eq!(fixed_zone("X0"), None);
        assert_eq!(fixed_zone(""), None);
    }

    #[test]
    fn the_tzif_footer_is_found() {
        let mut data = b"TZif2".to_vec();
        data.extend_from_slice(&[0; 40]);
        data.extend_from_slice(b"\nUTC0\n");
        assert_eq!(tzif_footer(&data), Some("UTC0"));
        assert_eq!(tzif_footer(b"TZif\0\0\0"), None, "version 1 files have no footer");
        assert_eq!(tzif_footer(b"garbage\n"), None);
    }
}
