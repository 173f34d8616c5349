//! End to end with the real OpenTelemetry Python SDK (tests/support/otlp_sender.py): a counter,
//! an up-down counter, a gauge and a histogram, over gRPC and over HTTP, cumulative and delta,
//! and the exact series the receiver puts into the pipeline.
#![allow(clippy::unwrap_used)]

mod otlp_support;

use std::collections::BTreeMap;
use std::process::Command;

use otlp_support::{Running, python_has_sdk, sender_script};

macro_rules! require_python_sdk {
    () => {
        if !python_has_sdk() {
            eprintln!(
                "\n\n!!!!!!!! SKIPPED: python3 on PATH lacks opentelemetry-sdk / opentelemetry-exporter-otlp.\n\
                 !!!!!!!! Run scripts/install-test-deps and put .venv-test/bin first on PATH (scripts/test does).\n\n"
            );
            return;
        }
    };
}

/// Runs the sender to the end and returns its pid.
async fn send(protocol: &str, endpoint: std::net::SocketAddr, delta: bool, rounds: u32) -> u32 {
    let mut cmd = Command::new("python3");
    cmd.arg(sender_script())
        .args(["--protocol", protocol, "--endpoint", &endpoint.to_string()])
        .args(["--rounds", &rounds.to_string()]);
    if delta {
        cmd.arg("--delta");
    }
    let child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let out = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert!(
        out.status.success(),
        "the Python sender failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    pid
}

/// What two rounds of the sender must produce, cumulative whatever the temporality sent.
fn expected_after_two_rounds() -> BTreeMap<String, f64> {
    let labels = |name: &str, extra: &str| {
        format!(
            r#"{name}{{instance="node-1",job="trainer",{extra}otel_scope_name="train",otel_scope_version="1.0",rank="0"}}"#
        )
    };
    // The SDK sums each collection's recordings, then adds the collections (or the receiver adds
    // the deltas); the same order gives the same rounding.
    let round = [0.05, 0.3, 0.3, 2.0].iter().fold(0.0, |a, b| a + b);
    let sum = round + round;
    [
        (labels("train_tokens_total", ""), 2000.0),
        (labels("train_queue_depth", ""), 6.0),
        (labels("train_loss", ""), 1.25),
        (labels("train_step_duration_seconds_bucket", r#"le="0.1","#), 2.0),
        (labels("train_step_duration_seconds_bucket", r#"le="0.5","#), 6.0),
        (labels("train_step_duration_seconds_bucket", r#"le="1","#), 6.0),
        (labels("train_step_duration_seconds_bucket", r#"le="+Inf","#), 8.0),
        (labels("train_step_duration_seconds_count", ""), 8.0),
        (labels("train_step_duration_seconds_sum", ""), sum),
    ]
    .into_iter()
    .collect()
}

async fn check(protocol: &str, delta: bool) {
    let r = Running::start("").await;
    let endpoint = if protocol == "grpc" { r.grpc } else { r.http };
    let pid = send(protocol, endpoint, delta, 2).await;
    let expected = expected_after_two_rounds();
    let done = r
        .wait_for(|latest| expected.iter().all(|(k, v)| latest.get(k) == Some(v)))
        .await;
    let latest = r.latest();
    let mut got: BTreeMap<String, f64> = latest
        .iter()
        .filter(|(k, _)| !k.starts_with("target_info"))
        .map(|(k, v)| (k.clone(), *v))
        .collect();
    assert!(done, "{protocol} delta={delta}: got {got:#?}");
    got.retain(|k, _| !expected.contains_key(k));
    assert!(got.is_empty(), "unexpected series: {got:#?}");

    let info: Vec<_> = latest.keys().filter(|k| k.starts_with("target_info")).collect();
    assert_eq!(info.len(), 1, "{info:?}");
    for part in [
        r#"instance="node-1""#,
        r#"job="trainer""#,
        r#"telemetry_sdk_language="python""#,
        r#"telemetry_sdk_name="opentelemetry""#,
    ] {
        assert!(info[0].contains(part), "{} lacks {part}", info[0]);
    }
    assert!(
        !info[0].contains("service_name"),
        "service.name is job, not a target_info label"
    );
    assert_eq!(r.telemetry.errors(), 0);
    let senders: Vec<Option<u32>> = r.seen.lock().unwrap().iter().map(|b| b.sender_pid).collect();
    assert!(
        !senders.is_empty() && senders.iter().all(|s| *s == Some(pid)),
        "every batch names the Python process {pid} as its sender: {senders:?}"
    );
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_over_grpc_gives_the_exact_series() {
    require_python_sdk!();
    check("grpc", false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_over_http_with_gzip_gives_the_exact_series() {
    require_python_sdk!();
    check("http", false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_delta_temporality_is_accumulated_to_the_same_series() {
    require_python_sdk!();
    check("http", true).await;
    check("grpc", true).await;
}
