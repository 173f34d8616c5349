//! The three commands: `run`, `validate` and `once`.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use nodetel_config::{ConfigErrors, Loaded};
use nodetel_core::CancellationToken;
use nodetel_core::telemetry::Registry;

use crate::cli::{Args, Command, LogFormat};
use crate::{logging, self_endpoints};

/// The log flags, applied once the config (which may also set them) is loaded.
struct LogFlags {
    level: Option<String>,
    format: Option<LogFormat>,
}

impl LogFlags {
    fn init(&self, settings: Option<&nodetel_config::ServiceSettings>) -> anyhow::Result<()> {
        logging::init(self.level.as_deref(), self.format, settings)
    }
}

pub(crate) async fn dispatch(args: Args) -> anyhow::Result<ExitCode> {
    let flags = LogFlags {
        level: args.log_level,
        format: args.log_format,
    };
    match args.command {
        Command::Run { config } => run(config.as_deref(), &flags).await,
        Command::Validate { config } => {
            flags.init(None)?;
            Ok(validate(&config))
        }
        Command::Once { config } => once(config.as_deref(), &flags).await,
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

fn load(config: Option<&Path>) -> Result<Loaded, ConfigErrors> {
    match config {
        Some(path) => nodetel_config::load_file(path, &env),
        None => nodetel_config::default_config(&env),
    }
}

/// Loads and builds the config, then sets up logging as it (and the flags) say.
fn prepare(
    config: Option<&Path>,
    flags: &LogFlags,
    registry: Arc<Registry>,
) -> anyhow::Result<nodetel_config::Service> {
    let loaded = match load(config) {
        Ok(l) => l,
        Err(e) => {
            flags.init(None)?;
            return Err(config_failed(&e));
        }
    };
    let service = loaded.config.build(registry);
    flags.init(service.as_ref().ok().map(|s| &s.settings))?;
    for warning in &loaded.warnings {
        tracing::warn!(%warning, "Config warning.");
    }
    service.map_err(|e| config_failed(&e))
}

fn config_failed(errors: &ConfigErrors) -> anyhow::Error {
    anyhow::anyhow!(
        "invalid config ({} problem{}):\n{errors}",
        errors.0.len(),
        if errors.0.len() == 1 { "" } else { "s" }
    )
}

fn validate(path: &Path) -> ExitCode {
    let result =
        nodetel_config::load_file(path, &env).and_then(|l| l.config.build(Arc::new(Registry::new())).map(|_| l));
    match result {
        Ok(loaded) => {
            for w in &loaded.warnings {
                println!("warning: {w}");
            }
            println!("{}: valid", path.display());
            ExitCode::SUCCESS
        }
        Err(errors) => {
            println!(
                "{}: {} problem{}",
                path.display(),
                errors.0.len(),
                if errors.0.len() == 1 { "" } else { "s" }
            );
            println!("{errors}");
            ExitCode::FAILURE
        }
    }
}

async fn once(config: Option<&Path>, flags: &LogFlags) -> anyhow::Result<ExitCode> {
    let service = prepare(config, flags, Arc::new(Registry::new()))?;
    let (outputs, failed) = service
        .topology
        .collect_once()
        .await
        .context("cannot build the components")?;
    let mut text = String::new();
    let many = outputs.len() > 1;
    for (pipeline, batch) in &outputs {
        if many {
            text.push_str(&format!("# pipeline {pipeline}\n"));
        }
        nodetel_exporters::debug::render_batch(batch, true, &mut text);
    }
    print!("{text}");
    for (id, error) in &failed {
        eprintln!("nodetel: receiver {id} failed: {error}");
    }
    Ok(if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

async fn run(config: Option<&Path>, flags: &LogFlags) -> anyhow::Result<ExitCode> {
    let registry = Arc::new(Registry::new());
    let service = prepare(config, flags, registry.clone())?;
    let settings = service.settings;
    let stop_endpoints = CancellationToken::new();
    if settings.telemetry_enabled {
        self_endpoints::serve_telemetry(&settings.telemetry_address, registry.clone(), stop_endpoints.clone()).await?;
    }
    let running = service
        .topology
        .start(&registry)
        .await
        .context("cannot start the pipelines")?;
    if let Some(addr) = &settings.health_address {
        self_endpoints::serve_health(addr, &settings.health_path, running.health(), stop_endpoints.clone()).await?;
    }
    tracing::info!(version = env!("CARGO_PKG_VERSION"), "nodetel is running.");
    let signal = wait_for_signal().await?;
    tracing::info!(signal, deadline = ?settings.shutdown_timeout, "Shutting down.");
    let result = running.shutdown(settings.shutdown_timeout).await;
    stop_endpoints.cancel();
    match result {
        Ok(()) => {
            tracing::info!("Stopped cleanly.");
            Ok(ExitCode::SUCCESS)
        }
        Err(error) => {
            tracing::error!(%error, "Shutdown deadline passed; data still queued may be lost.");
            Ok(ExitCode::FAILURE)
        }
    }
}

async fn wait_for_signal() -> anyhow::Result<&'static str> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot watch SIGINT")?;
    Ok(tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    })
}
