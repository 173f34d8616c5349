//! Why a Slurm command could not be run or its output could not be understood.

use std::time::Duration;

/// A Slurm command failed, timed out, or printed something the parser does not understand.
///
/// Every variant names the command (program and arguments) so that a log line alone says what
/// to try by hand.
#[derive(Debug, thiserror::Error)]
pub enum SlurmError {
    /// The program could not be started (not installed, not in `bin_dir` or `PATH`).
    #[error("cannot run `{command}`: {source}; install the Slurm client tools or set bin_dir")]
    Spawn {
        /// The command line.
        command: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The command did not finish in time and was killed.
    #[error("`{command}` did not finish within {after:?} and was killed; is slurmctld responsive?")]
    Timeout {
        /// The command line.
        command: String,
        /// The timeout that expired.
        after: Duration,
    },
    /// The command exited unsuccessfully.
    #[error("`{command}` exited with {status}: {stderr}")]
    Failed {
        /// The command line.
        command: String,
        /// The exit status, as the OS reports it.
        status: String,
        /// The first line of its standard error, trimmed.
        stderr: String,
    },
    /// A line of the output does not have the expected shape.
    #[error("cannot parse line {line_no} of `{command}` output ({reason}): {line:?}")]
    Parse {
        /// The command line.
        command: String,
        /// 1-based line number.
        line_no: usize,
        /// The offending line (truncated to 200 bytes).
        line: String,
        /// What was expected.
        reason: String,
    },
}

/// A parse problem without the command attached yet; [`ParseError::in_command`] adds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based line number.
    pub line_no: usize,
    /// The offending line (truncated).
    pub line: String,
    /// What was expected.
    pub reason: String,
}

impl ParseError {
    /// A problem on line `line_no` (1-based).
    pub fn new(line_no: usize, line: &str, reason: impl Into<String>) -> ParseError {
        let mut end = line.len().min(200);
        while !line.is_char_boundary(end) {
            end -= 1;
        }
        ParseError {
            line_no,
            line: line[..end].to_owned(),
            reason: reason.into(),
        }
    }

    /// Attaches the command whose output was being parsed.
    pub fn in_command(self, command: &str) -> SlurmError {
        SlurmError::Parse {
            command: command.to_owned(),
            line_no: self.line_no,
            line: self.line,
            reason: self.reason,
        }
    }
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {} ({}): {:?}", self.line_no, self.reason, self.line)
    }
}
