//! Running Slurm commands: an argument vector (never a shell), an optional binary directory and
//! a timeout after which the child is killed.

use std::collections::HashMap;
use std::ffi::OsString;
use std::future::Future;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use super::error::SlurmError;

/// Runs one Slurm command and returns its standard output.
///
/// The seam between Slurm and everything that reads it: [`SlurmCli`] runs the real programs,
/// [`StaticRunner`] replays recorded outputs in tests.
pub trait CommandRunner: Send + Sync + 'static {
    /// Runs `program args...` and returns its standard output. A non-zero exit is an error.
    fn run(&self, program: &str, args: &[&str]) -> impl Future<Output = Result<String, SlurmError>> + Send;
}

/// The real Slurm command-line tools.
#[derive(Debug, Clone)]
pub struct SlurmCli {
    bin_dir: Option<PathBuf>,
    timeout: Duration,
    envs: Vec<(OsString, OsString)>,
}

impl SlurmCli {
    /// Programs are looked up in `bin_dir` (HyperPod installs Slurm to `/opt/slurm/bin`), or in
    /// `PATH` when it is `None`; each run is killed after `timeout`.
    pub fn new(bin_dir: Option<PathBuf>, timeout: Duration) -> SlurmCli {
        SlurmCli {
            bin_dir,
            timeout,
            envs: Vec::new(),
        }
    }

    /// Sets an environment variable for every command (for example `SLURM_CONF`).
    pub fn with_env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> SlurmCli {
        self.envs.push((key.into(), value.into()));
        self
    }

    /// The timeout of one command.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    fn program(&self, program: &str) -> PathBuf {
        match &self.bin_dir {
            Some(dir) => dir.join(program),
            None => PathBuf::from(program),
        }
    }
}

/// The command line as shown in errors and logs.
pub fn command_line(program: &str, args: &[&str]) -> String {
    let mut s = program.to_owned();
    for a in args {
        s.push(' ');
        if a.is_empty() || a.contains([' ', '|', '"', '\'']) {
            s.push('\'');
            s.push_str(a);
            s.push('\'');
        } else {
            s.push_str(a);
        }
    }
    s
}

impl CommandRunner for SlurmCli {
    async fn run(&self, program: &str, args: &[&str]) -> Result<String, SlurmError> {
        let mut cmd = tokio::process::Command::new(self.program(program));
        cmd.args(args)
            .envs(self.envs.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Dropping the future on timeout drops the child, which kills it; tokio reaps it.
            .kill_on_drop(true);
        let child = cmd.spawn().map_err(|source| SlurmError::Spawn {
            command: command_line(program, args),
            source,
        })?;
        let output = match tokio::time::timeout(self.timeout, child.wait_with_output()).await {
            Ok(Ok(output)) => output,
            Ok(Err(source)) => {
                return Err(SlurmError::Spawn {
                    command: command_line(program, args),
                    source,
                });
            }
            Err(_) => {
                return Err(SlurmError::Timeout {
                    command: command_line(program, args),
                    after: self.timeout,
                });
            }
        };
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let first = stderr.lines().find(|l| !l.trim().is_empty()).unwrap_or("").trim();
            return Err(SlurmError::Failed {
                command: command_line(program, args),
                status: output.status.to_string(),
                stderr: first.to_owned(),
            });
        }
        Ok(match String::from_utf8(output.stdout) {
            Ok(s) => s,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        })
    }
}

/// Replays recorded outputs: a map from the command line (as [`command_line`] writes it) to
/// its output. Unknown commands fail like a missing program. For tests and `nodetel` dry runs.
#[derive(Debug, Clone, Default)]
pub struct StaticRunner {
    outputs: Arc<HashMap<String, Result<String, String>>>,
}

impl StaticRunner {
    /// An empty runner.
    pub fn new() -> StaticRunner {
        StaticRunner::default()
    }

    /// Records the output of a command.
    pub fn with(mut self, program: &str, args: &[&str], output: impl Into<String>) -> StaticRunner {
        Arc::make_mut(&mut self.outputs).insert(command_line(program, args), Ok(output.into()));
        self
    }

    /// Records a failing command with its standard error.
    pub fn with_failure(mut self, program: &str, args: &[&str], stderr: impl Into<String>) -> StaticRunner {
        Arc::make_mut(&mut self.outputs).insert(command_line(program, args), Err(stderr.into()));
        self
    }
}

impl CommandRunner for StaticRunner {
    async fn run(&self, program: &str, args: &[&str]) -> Result<String, SlurmError> {
        let command = command_line(program, args);
        match self.outputs.get(&command) {
            Some(Ok(out)) => Ok(out.clone()),
            Some(Err(stderr)) => Err(SlurmError::Failed {
                command,
                status: "exit status: 1".to_owned(),
                stderr: stderr.clone(),
            }),
            None => Err(SlurmError::Spawn {
                command,
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "no recorded output"),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn output_of_a_successful_command_is_returned() {
        let cli = SlurmCli::new(None, Duration::from_secs(5));
        let out = rt().block_on(cli.run("echo", &["a|b", "c"])).unwrap();
        assert_eq!(out, "a|b c\n");
    }

    #[test]
    fn arguments_are_not_interpreted_by_a_shell() {
        let cli = SlurmCli::new(Some(PathBuf::from("/bin")), Duration::from_secs(5));
        let out = rt().block_on(cli.run("echo", &["$HOME;", "`id`"])).unwrap();
        assert_eq!(out, "$HOME; `id`\n");
    }

    #[test]
    fn a_slow_command_is_killed_at_the_timeout() {
        let cli = SlurmCli::new(None, Duration::from_millis(200));
        let started = std::time::Instant::now();
        let err = rt().block_on(cli.run("sleep", &["5"])).unwrap_err();
        assert!(matches!(err, SlurmError::Timeout { .. }), "{err}");
        assert!(started.elapsed() < Duration::from_secs(2));
        assert!(err.to_string().contains("sleep 5"), "{err}");
    }

    #[test]
    fn a_failing_command_reports_its_status_and_stderr() {
        let cli = SlurmCli::new(None, Duration::from_secs(5));
        let err = rt()
            .block_on(cli.run("sh", &["-c", "echo oops >&2; exit 3"]))
            .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("oops") && text.contains('3'), "{text}");
    }

    #[test]
    fn a_missing_program_is_a_spawn_error() {
        let cli = SlurmCli::new(Some(PathBuf::from("/nonexistent-dir")), Duration::from_secs(5));
        let err = rt().block_on(cli.run("squeue", &["-h"])).unwrap_err();
        assert!(matches!(err, SlurmError::Spawn { .. }), "{err}");
    }

    #[test]
    fn static_runner_replays_by_command_line() {
        let r = StaticRunner::new()
            .with("squeue", &["-h", "-o", "%A|%u"], "1|root\n")
            .with_failure("sdiag", &[], "down");
        let rt = rt();
        assert_eq!(
            rt.block_on(r.run("squeue", &["-h", "-o", "%A|%u"])).unwrap(),
            "1|root\n"
        );
        assert!(rt.block_on(r.run("sdiag", &[])).is_err());
        assert!(rt.block_on(r.run("squeue", &["-h"])).is_err());
    }
}
