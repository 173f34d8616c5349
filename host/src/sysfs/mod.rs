//! Typed readers for files under `/sys` (or a copy of it mounted elsewhere).
//!
//! Errors are the same [`ReadError`](crate::procfs::ReadError) the procfs readers use.

pub mod clocksource;
pub mod infiniband;
pub mod net;

use std::path::Path;

use crate::procfs::ReadError;

/// The names of the entries of directory `dir`, sorted (sysfs lists them in no fixed order).
pub fn list_dir(dir: &Path) -> Result<Vec<String>, ReadError> {
    let io = |source| ReadError::Io {
        path: dir.to_owned(),
        source,
    };
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        if let Some(name) = entry.file_name().to_str() {
            names.push(name.to_owned());
        }
    }
    names.sort_unstable();
    Ok(names)
}
