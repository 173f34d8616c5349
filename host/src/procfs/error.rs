//! The error every /proc and /sys reader returns, and the buffered file read they share.

use std::io::Read;
use std::path::{Path, PathBuf};

/// Why a file could not be read or understood.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The file could not be opened or read (missing, permission denied, ...).
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// The file was read but one of its lines is not in the expected format.
    #[error("cannot parse {}, line {line}: {message}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// The 1-based line number.
        line: usize,
        /// What was expected.
        message: String,
    },
}

impl ReadError {
    /// A parse error at `line` (1-based) of `path`.
    pub fn parse(path: &Path, line: usize, message: impl Into<String>) -> ReadError {
        ReadError::Parse {
            path: path.to_owned(),
            line,
            message: message.into(),
        }
    }

    /// Whether the error means the file does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, ReadError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
    }
}

/// Reads the whole file at `path` into `buf` (cleared first), keeping `buf`'s allocation.
pub fn read_into(path: &Path, buf: &mut String) -> Result<(), ReadError> {
    buf.clear();
    let io = |source| ReadError::Io {
        path: path.to_owned(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(io)?;
    file.read_to_string(buf).map_err(io)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_file_and_line() {
        let err = ReadError::parse(Path::new("/proc/stat"), 3, "expected a number, found \"x\"");
        assert_eq!(
            err.to_string(),
            "cannot parse /proc/stat, line 3: expected a number, found \"x\""
        );
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        let mut buf = String::from("old");
        let err = read_into(&missing, &mut buf).unwrap_err();
        assert!(err.is_not_found());
        assert!(err.to_string().contains("nope"), "{err}");
    }

    #[test]
    fn read_into_replaces_the_buffer_contents() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, "new text\n").unwrap();
        let mut buf = String::from("old");
        read_into(&file, &mut buf).unwrap();
        assert_eq!(buf, "new text\n");
    }
}
