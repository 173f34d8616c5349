//! The `gpu` receiver in the real binary. Without an NVIDIA driver (CI, CPU nodes) it must not
//! stop anything else: the node receiver still reports, the gpu receiver is logged once as
//! disabled and shows `nodetel_component_up 0`. On a GPU machine the DCGM series appear instead.

use std::time::Duration;

use crate::support::{Running, eventually, free_port, http_get, nodetel, run_to_end};

fn write_config(dir: &std::path::Path, body: &str) -> std::path::PathBuf {
    let path = dir.join("gpu.yaml");
    std::fs::write(&path, body).expect("write the config");
    path
}

#[test]
fn once_with_node_and_gpu_receivers_reports_node_series_either_way() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        "receivers:\n  node:\n  gpu:\nexporters:\n  debug: {}\nservice:\n  pipelines:\n    metrics:\n      \
         receivers: [node, gpu]\n      exporters: [debug]\n",
    );
    let out = run_to_end(nodetel().arg("once").arg("--config").arg(&config));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("node_load1{"), "{stdout}");
    if stdout.contains("DCGM_FI_DEV_") {
        let line = stdout
            .lines()
            .find(|l| l.starts_with("DCGM_FI_DEV_GPU_TEMP{"))
            .unwrap_or("");
        assert!(
            line.contains("job=\"dcgm_exporter\"") && line.contains("UUID=\"GPU-"),
            "{line}"
        );
        return;
    }
    assert_eq!(
        stderr.matches("the gpu receiver is disabled").count(),
        1,
        "one clear line: {stderr}"
    );
}

#[test]
fn run_without_a_driver_marks_the_gpu_receiver_down_and_keeps_the_node_receiver() {
    let (pull, own, health) = (free_port(), free_port(), free_port());
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &format!(
            "receivers:\n  node:\n    collection_interval: 1s\n  gpu:\n    collection_interval: 1s\n\
             exporters:\n  prometheus:\n    endpoint: 127.0.0.1:{pull}\n\
             extensions:\n  health_check:\n    endpoint: 127.0.0.1:{health}\n\
             service:\n  extensions: [health_check]\n  telemetry:\n    metrics:\n      address: 127.0.0.1:{own}\n\
             \x20 pipelines:\n    metrics:\n      receivers: [node, gpu]\n      exporters: [prometheus]\n"
        ),
    );
    let proc = Running::spawn(nodetel().arg("run").arg("--config").arg(&config));
    let pull_addr = format!("127.0.0.1:{pull}");
    let (body, _) = eventually(Duration::from_secs(10), "node series", || {
        let (_, body) = http_get(&pull_addr, "/metrics")?;
        body.contains("node_load1{").then_some(body)
    });
    let own_addr = format!("127.0.0.1:{own}");
    let gpu_up = |body: &str| {
        body.lines()
            .find(|l| l.starts_with("nodetel_component_up{") && l.contains("component_id=\"gpu\""))
            .and_then(|l| l.rsplit(' ').next())
            .map(str::to_owned)
    };
    if body.contains("DCGM_FI_DEV_") {
        let (_, own_body) = http_get(&own_addr, "/metrics").unwrap();
        assert_eq!(gpu_up(&own_body).as_deref(), Some("1"));
    } else {
        eventually(Duration::from_secs(10), "gpu receiver reported down", || {
            let (_, own_body) = http_get(&own_addr, "/metrics")?;
            (gpu_up(&own_body).as_deref() == Some("0")).then_some(())
        });
        // A second look: the node receiver keeps reporting while the gpu one is down.
        let (_, body) = http_get(&pull_addr, "/metrics").unwrap();
        assert!(body.contains("node_load1{") && !body.contains("DCGM_FI_"), "{body}");
    }
    let (out, _) = proc.terminate();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}
