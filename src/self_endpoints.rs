//! nodetel's own endpoints: self-metrics (otelcol's 127.0.0.1:8888) and health
//! (otelcol's health_check, 127.0.0.1:13133).

use std::fmt::Write;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use nodetel_core::CancellationToken;
use nodetel_core::exposition::TEXT_CONTENT_TYPE;
use nodetel_core::http::{self, Response};
use nodetel_core::runtime::Health;
use nodetel_core::telemetry::{MetricSource, Registry};

/// `process_*` metrics, as every Prometheus client library exposes them.
struct ProcessMetrics;

impl MetricSource for ProcessMetrics {
    fn render(&self, out: &mut String) {
        let s = nodetel_host::process::self_stats();
        let rows: [(&str, &str, &str, f64); 6] = [
            (
                "process_cpu_seconds_total",
                "counter",
                "Total user and system CPU time spent in seconds.",
                s.cpu_seconds,
            ),
            (
                "process_resident_memory_bytes",
                "gauge",
                "Resident memory size in bytes.",
                s.resident_bytes as f64,
            ),
            (
                "process_virtual_memory_bytes",
                "gauge",
                "Virtual memory size in bytes.",
                s.virtual_bytes as f64,
            ),
            (
                "process_start_time_seconds",
                "gauge",
                "Start time of the process since unix epoch in seconds.",
                s.start_time_seconds,
            ),
            (
                "process_open_fds",
                "gauge",
                "Number of open file descriptors.",
                s.open_fds as f64,
            ),
            (
                "process_threads",
                "gauge",
                "Number of OS threads in the process.",
                s.threads as f64,
            ),
        ];
        for (name, kind, help, value) in rows {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}");
        }
        let _ = writeln!(
            out,
            "# HELP nodetel_build_info nodetel version.\n# TYPE nodetel_build_info gauge\nnodetel_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        );
    }
}

/// Binds and serves the self-metrics endpoint; the registry also gets the process metrics.
pub(crate) async fn serve_telemetry(
    addr: &str,
    registry: Arc<Registry>,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    registry.add_source(Arc::new(ProcessMetrics));
    let listener = http::bind(addr).await.context("self-metrics endpoint")?;
    let handler: http::Handler = Arc::new(move |_, path| match path {
        "/metrics" => Response::ok(TEXT_CONTENT_TYPE, registry.render()),
        _ => Response::text(404, "not found; self-metrics are on /metrics\n"),
    });
    http::serve(listener, handler, stop);
    tracing::info!(address = addr, "Serving self-metrics on /metrics.");
    Ok(())
}

/// Binds and serves the health endpoint: 200 while all pipelines run, 503 otherwise.
pub(crate) async fn serve_health(
    addr: &str,
    path: &str,
    health: Arc<Health>,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    let listener = http::bind(addr).await.context("health endpoint")?;
    let started = Instant::now();
    let wanted = path.to_owned();
    let handler: http::Handler = Arc::new(move |_, p| {
        if p != wanted {
            return Response::text(404, "not found\n");
        }
        if health.is_ready() {
            let body = format!(
                "{{\"status\":\"Server available\",\"uptime\":\"{:.0}s\"}}\n",
                started.elapsed().as_secs_f64()
            );
            Response {
                status: 200,
                content_type: "application/json",
                body: body.into(),
            }
        } else {
            Response {
                status: 503,
                content_type: "application/json",
                body: "{\"status\":\"Server not available\"}\n".into(),
            }
        }
    });
    http::serve(listener, handler, stop);
    tracing::info!(address = addr, path, "Serving health.");
    Ok(())
}
