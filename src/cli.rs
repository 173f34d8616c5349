//! Command-line arguments.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// One lightweight per-node telemetry collector for GPU training clusters.
#[derive(Debug, Parser)]
#[command(name = "nodetel", version, about, propagate_version = true)]
pub(crate) struct Args {
    /// Log level: error, warn, info, debug, trace, or a tracing filter such as `info,nodetel_core=debug`.
    /// Overrides `service.telemetry.logs.level`; default info.
    #[arg(long, global = true, env = "NODETEL_LOG_LEVEL")]
    pub(crate) log_level: Option<String>,

    /// Log format. Overrides `service.telemetry.logs.encoding`; default text.
    #[arg(long, global = true, value_enum, env = "NODETEL_LOG_FORMAT")]
    pub(crate) log_format: Option<LogFormat>,

    #[command(subcommand)]
    pub(crate) command: Command,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run the pipelines until SIGTERM or SIGINT. Without --config, runs the embedded default
    /// (native node metrics on 127.0.0.1:9464, plus remote write when AMP_REMOTE_WRITE_URL is set).
    Run {
        /// Config file (OpenTelemetry Collector layout).
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Check a config file and print every problem; exit 1 if there is any.
    Validate {
        /// Config file to check.
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Collect every receiver once, run the processors, print the series and exit.
    Once {
        /// Config file; the embedded default when omitted.
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
}
