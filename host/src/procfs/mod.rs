//! Typed readers for files under `/proc` (or a copy of it mounted elsewhere).
//!
//! Each module parses one file into a plain struct. Parsers take the file's text so they can be
//! tested without a filesystem; `read_*` helpers read the file under a given procfs root into a
//! reusable buffer first. Errors name the file and, for parse errors, the line.

mod error;
pub mod loadavg;
pub mod meminfo;
pub mod stat;

pub use error::{ReadError, read_into};
