//! `edac`: memory controller error counts from `/sys/devices/system/edac/mc/mc<N>` (ECC
//! errors on bare-metal nodes; virtual machines usually have no controllers and report nothing).

use std::path::{Path, PathBuf};

use nodetel_core::MetricType;
use nodetel_host::procfs::{read_into, values};
use nodetel_host::sysfs::list_dir;

use super::{CollectError, Collector};
use crate::node::config::Paths;
use crate::node::series::{Context, Family};

pub(crate) struct EdacCollector {
    dir: PathBuf,
    ce: Family,
    ue: Family,
    csrow_ce: Family,
    csrow_ue: Family,
}

/// The `N` of `<prefix>N` when it is all digits.
fn numbered<'a>(name: &'a str, prefix: &str) -> Option<&'a str> {
    let n = name.strip_prefix(prefix)?;
    (!n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())).then_some(n)
}

impl EdacCollector {
    pub(crate) fn new(paths: &Paths) -> EdacCollector {
        use MetricType::Counter;
        EdacCollector {
            dir: paths.sysfs.join("devices/system/edac/mc"),
            ce: Family::new(
                "node_edac_correctable_errors_total",
                Counter,
                "Total correctable memory errors.",
            ),
            ue: Family::new(
                "node_edac_uncorrectable_errors_total",
                Counter,
                "Total uncorrectable memory errors.",
            ),
            csrow_ce: Family::new(
                "node_edac_csrow_correctable_errors_total",
                Counter,
                "Total correctable memory errors for this csrow.",
            ),
            csrow_ue: Family::new(
                "node_edac_csrow_uncorrectable_errors_total",
                Counter,
                "Total uncorrectable memory errors for this csrow.",
            ),
        }
    }
}

fn count(path: &Path, buf: &mut String) -> Result<f64, CollectError> {
    read_into(path, buf)?;
    let [v] = values::parse_numbers::<1>(buf, path)?;
    Ok(v as f64)
}

impl Collector for EdacCollector {
    fn update(&mut self, cx: &mut Context<'_>) -> Result<(), CollectError> {
        let controllers = match list_dir(&self.dir) {
            Ok(c) => c,
            Err(e) if e.is_not_found() => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        for entry in &controllers {
            let Some(controller) = numbered(entry, "mc") else {
                continue;
            };
            let dir = self.dir.join(entry);
            let v = count(&dir.join("ce_count"), cx.buf)?;
            self.ce.emit(cx, &[("controller", controller)], v)?;
            let v = count(&dir.join("ce_noinfo_count"), cx.buf)?;
            self.csrow_ce
                .emit(cx, &[("controller", controller), ("csrow", "unknown")], v)?;
            let v = count(&dir.join("ue_count"), cx.buf)?;
            self.ue.emit(cx, &[("controller", controller)], v)?;
            let v = count(&dir.join("ue_noinfo_count"), cx.buf)?;
            self.csrow_ue
                .emit(cx, &[("controller", controller), ("csrow", "unknown")], v)?;
            for row_entry in list_dir(&dir)? {
                let Some(csrow) = numbered(&row_entry, "csrow") else {
                    continue;
                };
                let row = dir.join(&row_entry);
                let labels = [("controller", controller), ("csrow", csrow)];
                let v = count(&row.join("ce_count"), cx.buf)?;
                self.csrow_ce.emit(cx, &labels, v)?;
                let v = count(&row.join("ue_count"), cx.buf)?;
                self.csrow_ue.emit(cx, &labels, v)?;
            }
        }
        Ok(())
    }
}
