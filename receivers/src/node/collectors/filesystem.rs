//! `filesystem`: size, free space and inodes of every mounted filesystem (statvfs), from the
//! mount table of `/proc/1/mountinfo` (falling back to `/proc/self/mountinfo`).
//!
//! Mount points and filesystem types are filtered by node_exporter's default exclude regexes.
//! Mount points under a non-`/` rootfs are reported relative to it, as node_exporter does.
//!
//! statvfs on a dead network filesystem (NFS, Lustre) can hang for minutes. As node_exporter
//! does with its 5 s mount timeout, anything but a local disk filesystem is measured on a
//! helper thread: after the timeout the mount reports `device_error 1`, and it keeps doing so
//! without another attempt until the hung call returns.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nodetel_core::MetricType;
use nodetel_host::procfs::{mountinfo, read_into};

use super::{CollectError, Collector};
use crate::node::config::Paths;
use crate::node::series::{Context, Family};

/// The numbers statvfs gives for one filesystem.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct FsStats {
    pub(crate) size: f64,
    pub(crate) free: f64,
    pub(crate) avail: f64,
    pub(crate) files: f64,
    pub(crate) files_free: f64,
}

/// How a mount point is measured; a seam so tests do not depend on this machine's mounts.
pub(crate) type StatFn = fn(&Path) -> std::io::Result<FsStats>;

/// node_exporter's default `--collector.filesystem.mount-timeout`.
pub(crate) const MOUNT_TIMEOUT: Duration = Duration::from_secs(5);

/// Filesystems on local block devices or memory, whose statvfs does not hang.
const LOCAL_TYPES: [&str; 9] = ["ext2", "ext3", "ext4", "xfs", "btrfs", "vfat", "tmpfs", "ramfs", "zfs"];

/// Paths whose statvfs is running on a helper thread; a path stays here while its call hangs.
type InFlight = Arc<Mutex<HashSet<PathBuf>>>;

/// statvfs with a timeout, on a helper thread. A path whose previous call has not returned is
/// not tried again.
fn stat_with_timeout(stat: StatFn, path: &Path, timeout: Duration, in_flight: &InFlight) -> std::io::Result<FsStats> {
    let timed_out = || std::io::Error::new(std::io::ErrorKind::TimedOut, "statvfs did not return in time");
    {
        let mut set = in_flight.lock().unwrap_or_else(|e| e.into_inner());
        if set.contains(path) {
            return Err(timed_out());
        }
        set.insert(path.to_owned());
    }
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    let owned = path.to_owned();
    let set = in_flight.clone();
    let spawned = std::thread::Builder::new().name("statvfs".into()).spawn(move || {
        let result = stat(&owned);
        // Leave the set before answering, so a caller that got the answer never sees the
        // path as still in flight.
        set.lock().unwrap_or_else(|e| e.into_inner()).remove(&owned);
        let _ = tx.send(result);
    });
    if spawned.is_err() {
        in_flight.lock().unwrap_or_else(|e| e.into_inner()).remove(path);
        return stat(path);
    }
    rx.recv_timeout(timeout).unwrap_or_else(|_| Err(timed_out()))
}

fn statvfs(path: &Path) -> std::io::Result<FsStats> {
    let s = rustix::fs::statvfs(path)?;
    // node_exporter multiplies by f_bsize (Go's Statfs_t.Bsize), so this does too.
    let bsize = s.f_bsize as f64;
    Ok(FsStats {
        size: s.f_blocks as f64 * bsize,
        free: s.f_bfree as f64 * bsize,
        avail: s.f_bavail as f64 * bsize,
        files: s.f_files as f64,
        files_free: s.f_ffree as f64,
    })
}

pub(crate) struct FilesystemCollector {
    mountinfo: [PathBuf; 2],
    rootfs: PathBuf,
    mount_points_exclude: regex::Regex,
    fs_types_exclude: regex::Regex,
    stat: StatFn,
    mount_timeout: Duration,
    in_flight: InFlight,
    size: Family,
    free: Family,
    avail: Family,
    files: Family,
    files_free: Family,
    readonly: Family,
    device_error: Family,
    mount_info: Family,
    seen: HashSet<(String, String)>,
}

impl FilesystemCollector {
    pub(crate) fn new(
        paths: &Paths,
        mount_points_exclude: regex::Regex,
        fs_types_exclude: regex::Regex,
    ) -> FilesystemCollector {
        FilesystemCollector::with_stat(paths, mount_points_exclude, fs_types_exclude, statvfs)
    }

    pub(crate) fn with_stat(
        paths: &Paths,
        mount_points_exclude: regex::Regex,
        fs_types_exclude: regex::Regex,
        stat: StatFn,
    ) -> FilesystemCollector {
        FilesystemCollector::with_stat_and_timeout(paths, mount_points_exclude, fs_types_exclude, stat, MOUNT_TIMEOUT)
    }

    pub(crate) fn with_stat_and_timeout(
        paths: &Paths,
        mount_points_exclude: regex::Regex,
        fs_types_exclude: regex::Regex,
        stat: StatFn,
        mount_timeout: Duration,
    ) -> FilesystemCollector {
        use MetricType::Gauge;
        FilesystemCollector {
            mountinfo: [paths.procfs.join("1/mountinfo"), paths.procfs.join("self/mountinfo")],
            rootfs: paths.rootfs.clone(),
            mount_points_exclude,
            fs_types_exclude,
            stat,
            mount_timeout,
            in_flight: InFlight::default(),
            size: Family::new("node_filesystem_size_bytes", Gauge, "Filesystem size in bytes."),
            free: Family::new("node_filesystem_free_bytes", Gauge, "Filesystem free space in bytes."),
            avail: Family::new(
                "node_filesystem_avail_bytes",
                Gauge,
                "Filesystem space available to non-root users in bytes.",
            ),
            files: Family::new("node_filesystem_files", Gauge, "Filesystem total file nodes."),
            files_free: Family::new("node_filesystem_files_free", Gauge, "Filesystem total free file nodes."),
            readonly: Family::new("node_filesystem_readonly", Gauge, "Filesystem read-only status."),
            device_error: Family::new(
                "node_filesystem_device_error",
                Gauge,
                "Whether an error occurred while getting statistics for the given device.",
            ),
            mount_info: Family::new("node_filesystem_mount_info", Gauge, "Filesystem mount information."),
            seen: HashSet::new(),
        }
    }

    /// The mount point as reported: relative to a non-`/` rootfs.
    fn reported<'m>(&self, mount_point: &'m str) -> Option<&'m str> {
        if self.rootfs == Path::new("/") {
            return Some(mount_point);
        }
        let root = self.rootfs.to_str()?.trim_end_matches('/');
        match mount_point.strip_prefix(root) {
            Some("") => Some("/"),
            Some(rest) if rest.starts_with('/') => Some(rest),
            // Not under the rootfs: the host's own view of its mounts (/proc/1 of the host).
            _ => Some(mount_point),
        }
    }

    fn emit_mount(&mut self, cx: &mut Context<'_>, m: &mountinfo::Mount<'_>) -> Result<(), CollectError> {
        let Some(mount_point) = self.reported(&m.mount_point) else {
            return Ok(());
        };
        if self.mount_points_exclude.is_match(mount_point) || self.fs_types_exclude.is_match(m.fs_type) {
            return Ok(());
        }
        // The same filesystem over-mounted at one place would yield duplicate series.
        if !self.seen.insert((m.source.to_string(), mount_point.to_owned())) {
            return Ok(());
        }
        let labels = [
            ("device", &*m.source),
            ("fstype", m.fs_type),
            ("mountpoint", mount_point),
        ];
        let path = self.rootfs.join(mount_point.trim_start_matches('/'));
        let readonly = if m.read_only() { 1.0 } else { 0.0 };
        let measured = if LOCAL_TYPES.contains(&m.fs_type) {
            (self.stat)(&path)
        } else {
            stat_with_timeout(self.stat, &path, self.mount_timeout, &self.in_flight)
        };
        match measured {
            Ok(s) => {
                self.size.emit(cx, &labels, s.size)?;
                self.free.emit(cx, &labels, s.free)?;
                self.avail.emit(cx, &labels, s.avail)?;
                self.files.emit(cx, &labels, s.files)?;
                self.files_free.emit(cx, &labels, s.files_free)?;
                self.readonly.emit(cx, &labels, readonly)?;
                self.device_error.emit(cx, &labels, 0.0)?;
            }
            Err(error) => {
                tracing::debug!(%error, mount_point, "Cannot stat filesystem.");
                self.readonly.emit(cx, &labels, readonly)?;
                self.device_error.emit(cx, &labels, 1.0)?;
            }
        }
        let (major, minor) = (m.major.to_string(), m.minor.to_string());
        self.mount_info.emit(
            cx,
            &[
                ("device", &m.source),
                ("major", &major),
                ("minor", &minor),
                ("mountpoint", mount_point),
            ],
            1.0,
        )?;
        Ok(())
    }
}

impl Collector for FilesystemCollector {
    fn update(&mut self, cx: &mut Context<'_>) -> Result<(), CollectError> {
        let path = match read_into(&self.mountinfo[0], cx.buf) {
            Ok(()) => self.mountinfo[0].clone(),
            Err(e) if e.is_not_found() => {
                read_into(&self.mountinfo[1], cx.buf)?;
                self.mountinfo[1].clone()
            }
            Err(e) => return Err(e.into()),
        };
        let text = std::mem::take(cx.buf);
        self.seen.clear();
        let result = (|| {
            for m in mountinfo::parse(&text, &path) {
                self.emit_mount(cx, &m?)?;
            }
            Ok(())
        })();
        *cx.buf = text;
        result
    }
}
