//! Log setup: `tracing` to stderr as text or JSON.

use anyhow::Context;
use tracing_subscriber::EnvFilter;

use nodetel_config::ServiceSettings;

use crate::cli::LogFormat;

/// Sets up logging: the command line wins over the config's `service.telemetry.logs`.
pub(crate) fn init(
    cli_level: Option<&str>,
    cli_format: Option<LogFormat>,
    settings: Option<&ServiceSettings>,
) -> anyhow::Result<()> {
    let level = cli_level
        .map(str::to_owned)
        .or_else(|| settings.and_then(|s| s.log_level.clone()))
        .unwrap_or_else(|| "info".to_owned());
    let level = level.as_str();
    let format = cli_format.unwrap_or_else(|| match settings.and_then(|s| s.log_encoding.as_deref()) {
        Some("json") => LogFormat::Json,
        _ => LogFormat::Text,
    });
    let filter = EnvFilter::try_new(level).with_context(|| format!("invalid --log-level {level:?}"))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.with_ansi(false).try_init(),
        LogFormat::Json => builder.json().try_init(),
    }
    .map_err(|e| anyhow::anyhow!("cannot set up logging: {e}"))
}
