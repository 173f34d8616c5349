//! The Slurm client: runs Slurm's command-line tools (argument vectors, a timeout, an optional
//! binary directory) and parses their output into typed facts; finds task processes in /proc.
//!
//! Parsers take the text and return typed rows or a [`ParseError`] naming the line; a caller
//! turns it into a [`SlurmError`] with the command attached. No parser panics on any input.

pub mod cli;
pub mod error;
pub mod gres;
pub mod hostlist;
pub mod job;
pub mod kv;
pub mod listpids;
pub mod sdiag;
pub mod sinfo;
pub mod squeue;
pub mod tasks;

pub use cli::{CommandRunner, SlurmCli, StaticRunner, command_line};
pub use error::{ParseError, SlurmError};
