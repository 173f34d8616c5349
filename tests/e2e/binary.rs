//! The binary's commands, end to end.

use std::time::{Duration, Instant};

use crate::support::*;

#[test]
fn run_without_config_serves_node_series_self_metrics_and_health_then_stops_on_sigterm() {
    let _ports = DEFAULT_PORTS.lock().unwrap_or_else(|e| e.into_inner());
    let started = Instant::now();
    let proc = Running::spawn(nodetel().arg("run"));
    let (body, _) = eventually(Duration::from_secs(10), "node series on 127.0.0.1:9464", || {
        let (status, body) = http_get("127.0.0.1:9464", "/metrics")?;
        (status == 200 && body.contains("node_cpu_seconds_total{")).then_some(body)
    });
    let first_series_after = started.elapsed();
    assert!(
        first_series_after < Duration::from_secs(2),
        "node series appeared only after {first_series_after:?}"
    );
    let host = nodetel_host::identity::hostname();
    assert!(body.contains("# TYPE node_cpu_seconds_total counter"), "{body}");
    assert!(body.contains(&format!("instance=\"{host}\"")), "{body}");
    assert!(body.contains("job=\"node_exporter\""));
    for name in ["node_memory_MemTotal_bytes{", "node_load1{"] {
        assert!(body.contains(name), "missing {name} in\n{body}");
    }

    let (status, own) = http_get("127.0.0.1:8888", "/metrics").expect("self-metrics endpoint answers");
    assert_eq!(status, 200);
    let node = r#"component_id="node",component_kind="receiver",component_type="node""#;
    assert!(
        own.contains(&format!("nodetel_component_sent_series_total{{{node}}}")),
        "{own}"
    );
    assert!(own.contains("process_resident_memory_bytes "), "{own}");
    assert!(own.contains("process_cpu_seconds_total "), "{own}");

    let (status, health) = http_get("127.0.0.1:13133", "/").expect("health endpoint answers");
    assert_eq!(status, 200, "{health}");
    assert!(health.contains("Server available"));

    let (out, took) = proc.terminate();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "exit {:?}\n{stderr}", out.status);
    assert!(took < Duration::from_secs(10), "shutdown took {took:?}");
    assert!(stderr.contains("Stopped cleanly."), "{stderr}");
}

#[test]
fn validate_reports_every_mistake_with_its_path() {
    let out = run_to_end(
        nodetel()
            .args(["validate", "--config"])
            .arg(repo_path("tests/testdata/three_mistakes.yaml")),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    for expected in [
        "receivers.node.collection_interval (line 4): invalid duration \"fifteen seconds\"",
        "exporters.prometheus.endpoint (line 7): invalid type: integer `9464`, expected a string",
        "service.pipelines.metrics.exporters[1] (line 12): exporter \"prometheusremote\" is not defined",
    ] {
        assert!(stdout.contains(expected), "missing {expected:?} in\n{stdout}");
    }
    assert!(stdout.contains("3 problems"), "{stdout}");
}

#[test]
fn validate_accepts_every_example_config() {
    let dir = repo_path("config/examples");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "yaml") {
            continue;
        }
        let out = run_to_end(
            nodetel()
                .args(["validate", "--config"])
                .arg(&path)
                .env(
                    "AMP_REMOTE_WRITE_URL",
                    "https://aps-workspaces.us-east-1.amazonaws.com/workspaces/ws-x/api/v1/remote_write",
                )
                .env("HOSTNAME", "ip-10-1-2-3"),
        );
        assert!(
            out.status.success(),
            "{}:\n{}",
            path.display(),
            String::from_utf8_lossy(&out.stdout)
        );
        checked += 1;
    }
    assert!(checked >= 1, "no example configs found in {}", dir.display());
}

#[test]
fn once_prints_attributed_node_series_and_exits() {
    let out = run_to_end(nodetel().arg("once"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("# TYPE node_load1 gauge"), "{stdout}");
    let line = stdout
        .lines()
        .find(|l| l.starts_with("node_cpu_seconds_total{"))
        .expect("a cpu series");
    assert!(line.contains("mode=\"idle\"") || stdout.contains("mode=\"idle\""));
    // Samples carry their collection timestamp.
    let ts: i64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(ts > 1_600_000_000_000, "{line}");
}

#[test]
fn run_with_a_config_file_uses_its_addresses() {
    let (pull, own, health) = (free_port(), free_port(), free_port());
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.yaml");
    std::fs::write(
        &config,
        format!(
            "receivers:\n  node:\n    collection_interval: 1s\nexporters:\n  prometheus:\n    endpoint: 127.0.0.1:{pull}\n\
             extensions:\n  health_check:\n    endpoint: 127.0.0.1:{health}\n\
             service:\n  extensions: [health_check]\n  telemetry:\n    metrics:\n      address: 127.0.0.1:{own}\n\
             \x20 pipelines:\n    metrics:\n      receivers: [node]\n      exporters: [prometheus]\n"
        ),
    )
    .unwrap();
    let proc = Running::spawn(nodetel().arg("run").arg("--config").arg(&config));
    let pull_addr = format!("127.0.0.1:{pull}");
    eventually(Duration::from_secs(10), "node series", || {
        let (_, body) = http_get(&pull_addr, "/metrics")?;
        body.contains("node_load1{").then_some(())
    });
    assert_eq!(
        http_get(&format!("127.0.0.1:{own}"), "/metrics").map(|r| r.0),
        Some(200)
    );
    assert_eq!(http_get(&format!("127.0.0.1:{health}"), "/").map(|r| r.0), Some(200));
    let (out, _) = proc.terminate();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}
