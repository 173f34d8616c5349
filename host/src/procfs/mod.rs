//! Typed readers for files under `/proc` (or a copy of it mounted elsewhere).
//!
//! Each module parses one kind of file. Parsers take the file's text so they can be tested
//! without a filesystem, borrow from it instead of allocating, and report malformed input as a
//! [`ReadError`] naming the file and line. [`read_into`] reads a file into a reusable buffer.

pub mod diskstats;
mod error;
pub mod loadavg;
pub mod meminfo;
pub mod mountinfo;
pub mod net;
pub mod netdev;
pub mod netstat;
pub mod pressure;
pub mod schedstat;
pub mod sockstat;
pub mod stat;
pub mod tcp;
pub mod values;

pub use error::{ReadError, read_into};
