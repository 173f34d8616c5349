//! `os`: `node_os_info` and `node_os_version` from `<rootfs>/etc/os-release` (or
//! `/usr/lib/os-release`).

use std::path::PathBuf;

use nodetel_core::MetricType;
use nodetel_host::procfs::read_into;

use super::{CollectError, Collector};
use crate::node::config::Paths;
use crate::node::series::{Context, Family};

/// `(label, os-release key)` in node_exporter's label order.
const INFO_LABELS: [(&str, &str); 12] = [
    ("build_id", "BUILD_ID"),
    ("id", "ID"),
    ("id_like", "ID_LIKE"),
    ("image_id", "IMAGE_ID"),
    ("image_version", "IMAGE_VERSION"),
    ("name", "NAME"),
    ("pretty_name", "PRETTY_NAME"),
    ("variant", "VARIANT"),
    ("variant_id", "VARIANT_ID"),
    ("version", "VERSION"),
    ("version_codename", "VERSION_CODENAME"),
    ("version_id", "VERSION_ID"),
];

pub(crate) struct OsCollector {
    paths: [PathBuf; 2],
    info: Family,
    version: Family,
    values: [String; 12],
}

impl OsCollector {
    pub(crate) fn new(paths: &Paths) -> OsCollector {
        OsCollector {
            paths: [
                paths.rootfs.join("etc/os-release"),
                paths.rootfs.join("usr/lib/os-release"),
            ],
            info: Family::new(
                "node_os_info",
                MetricType::Gauge,
                "A metric with a constant '1' value labeled by build_id, id, id_like, image_id, image_version, name, pretty_name, variant, variant_id, version, version_codename, version_id.",
            ),
            version: Family::new(
                "node_os_version",
                MetricType::Gauge,
                "Metric containing the major.minor part of the OS version.",
            ),
            values: Default::default(),
        }
    }
}

/// The value of an os-release assignment: unquoted, with shell escapes removed.
fn unquote(raw: &str) -> String {
    let raw = raw.trim();
    let inner = match raw.as_bytes().first() {
        Some(b'"') | Some(b'\'') if raw.len() >= 2 && raw.ends_with(&raw[..1]) => &raw[1..raw.len() - 1],
        _ => raw,
    };
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(next) = chars.next() {
                out.push(next);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The leading `major[.minor]` of a version id, as a number (`"22.04"` → 22.04, `"2"` → 2).
fn major_minor(version_id: &str) -> Option<f64> {
    let mut parts = version_id.split('.');
    let major = parts
        .next()
        .filter(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))?;
    match parts
        .next()
        .filter(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
    {
        Some(minor) => format!("{major}.{minor}").parse().ok(),
        None => major.parse().ok(),
    }
}

impl Collector for OsCollector {
    fn update(&mut self, cx: &mut Context<'_>) -> Result<(), CollectError> {
        let read = match read_into(&self.paths[0], cx.buf) {
            Err(e) if e.is_not_found() => read_into(&self.paths[1], cx.buf),
            other => other,
        };
        read?;
        for v in &mut self.values {
            v.clear();
        }
        for line in cx.buf.lines() {
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            if let Some(i) = INFO_LABELS.iter().position(|(_, k)| *k == key.trim()) {
                self.values[i] = unquote(value);
            }
        }
        let mut labels: [(&str, &str); 12] = [("", ""); 12];
        for (slot, ((label, _), value)) in labels.iter_mut().zip(INFO_LABELS.iter().zip(&self.values)) {
            *slot = (label, value);
        }
        self.info.emit(cx, &labels, 1.0)?;
        if let Some(v) = major_minor(&self.values[11]) {
            let (id, id_like, name) = (&self.values[1], &self.values[2], &self.values[5]);
            self.version
                .emit(cx, &[("id", id), ("id_like", id_like), ("name", name)], v)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_unquoted_and_versions_cut_to_major_minor() {
        assert_eq!(
            unquote("\"Debian GNU/Linux 12 (bookworm)\""),
            "Debian GNU/Linux 12 (bookworm)"
        );
        assert_eq!(unquote("'a b'"), "a b");
        assert_eq!(unquote("debian"), "debian");
        assert_eq!(unquote(r#""say \"hi\"""#), r#"say "hi""#);
        assert_eq!(major_minor("22.04"), Some(22.04));
        assert_eq!(major_minor("2"), Some(2.0));
        assert_eq!(major_minor("9.3.1"), Some(9.3));
        assert_eq!(major_minor("rolling"), None);
        assert_eq!(major_minor(""), None);
    }
}
