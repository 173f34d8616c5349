//! OTLP from inside a Slurm job to a real Prometheus: a two-task job of the test cluster runs the
//! OpenTelemetry Python SDK sender (rank 0 over gRPC, rank 1 over HTTP) with no Slurm attributes
//! at all; `nodetel run` takes the exports with the `otlp` receiver, labels them with the
//! `slurmattributes` processor and remote-writes them to Prometheus 2.42. The test reads back
//! what Prometheus stored: names, every job and rank label, counter, gauge and histogram values.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::slurm_cluster::{Cluster, eventually};
use crate::support::{Running, free_port, http_get, nodetel, repo_path};

/// Kills the child on drop, so a failed assertion leaves no Prometheus behind.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn on_path(program: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

/// The python3 that has the OpenTelemetry SDK (the test venv, first on PATH under scripts/test).
fn python_with_sdk() -> Option<PathBuf> {
    let python = on_path("python3")?;
    let ok = Command::new(&python)
        .args(["-c", "import opentelemetry.sdk.metrics, opentelemetry.exporter.otlp"])
        .output()
        .is_ok_and(|o| o.status.success());
    ok.then_some(python)
}

/// `(labels without __name__ as {k="v",...}, value)` of every series an instant query returns.
fn query(prometheus: &str, promql: &str) -> Vec<(serde_json::Map<String, serde_json::Value>, f64)> {
    let path = format!("/api/v1/query?query={}", url_encode(promql));
    // HTTP/1.0, so the answer is not chunked.
    let Ok(mut s) = std::net::TcpStream::connect(prometheus) else {
        return Vec::new();
    };
    write!(s, "GET {path} HTTP/1.0\r\nHost: {prometheus}\r\n\r\n").unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let Some((head, body)) = raw.split_once("\r\n\r\n") else {
        return Vec::new();
    };
    if !head.starts_with("HTTP/1.0 200") && !head.starts_with("HTTP/1.1 200") {
        return Vec::new();
    }
    let v: serde_json::Value = serde_json::from_str(body).unwrap();
    v["data"]["result"]
        .as_array()
        .map(|rows| {
            rows.iter()
                .map(|r| {
                    let value = r["value"][1].as_str().unwrap().parse::<f64>().unwrap();
                    (r["metric"].as_object().unwrap().clone(), value)
                })
                .collect()
        })
        .unwrap_or_default()
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b'-' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[test]
fn a_slurm_task_sending_otlp_without_slurm_attributes_arrives_in_prometheus_with_its_job_and_rank() {
    let Some(cluster) = Cluster::start("otlp", 16861, 16862) else {
        return;
    };
    let in_ci = std::env::var_os("CI").is_some();
    let (Some(prometheus_bin), Some(python)) = (on_path("prometheus"), python_with_sdk()) else {
        assert!(!in_ci, "CI must have prometheus and the Python OpenTelemetry SDK");
        eprintln!("skipping: prometheus or the Python OpenTelemetry SDK is missing");
        return;
    };
    let dir = cluster.scratch("otlp");

    let prom_port = free_port();
    let prom_config = dir.join("prometheus.yml");
    std::fs::write(&prom_config, "global:\n  scrape_interval: 1h\n").unwrap();
    let _prometheus = Killed(
        Command::new(prometheus_bin)
            .arg(format!("--config.file={}", prom_config.display()))
            .arg(format!("--storage.tsdb.path={}", dir.join("prom-data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
            .arg("--web.enable-remote-write-receiver")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let prometheus = format!("127.0.0.1:{prom_port}");
    eventually(Duration::from_secs(20), "prometheus ready", || {
        http_get(&prometheus, "/-/ready").filter(|(s, _)| *s == 200)
    });

    let (grpc, http, own, health) = (free_port(), free_port(), free_port(), free_port());
    let config = dir.join("nodetel.yaml");
    std::fs::write(
        &config,
        format!(
            "receivers:\n  otlp:\n    protocols:\n      grpc: {{endpoint: \"127.0.0.1:{grpc}\"}}\n      http: {{endpoint: \"127.0.0.1:{http}\"}}\n\
             processors:\n  slurmattributes:\n    slurm_conf: {conf}\n    node_name: {node}\n    refresh_interval: 1s\n\
             exporters:\n  prometheusremotewrite:\n    endpoint: http://{prometheus}/api/v1/write\n    batch_send_deadline: 200ms\n\
             extensions:\n  health_check: {{endpoint: \"127.0.0.1:{health}\"}}\n\
             service:\n  extensions: [health_check]\n  telemetry: {{metrics: {{address: \"127.0.0.1:{own}\"}}}}\n  \
             pipelines:\n    metrics: {{receivers: [otlp], processors: [slurmattributes], exporters: [prometheusremotewrite]}}\n",
            conf = cluster.conf.display(),
            node = cluster.node,
        ),
    )
    .unwrap();
    let nodetel = Running::spawn(nodetel().arg("run").arg("--config").arg(&config));
    eventually(Duration::from_secs(20), "nodetel healthy", || {
        http_get(&format!("127.0.0.1:{health}"), "/").filter(|(s, _)| *s == 200)
    });

    // Rank 0 exports over gRPC, rank 1 over HTTP; neither sets any Slurm attribute. The task
    // waits a little after sending so that both ranks overlap with a refresh.
    let sender = repo_path("tests/support/otlp_sender.py");
    let task = format!(
        "if [ \"$SLURM_PROCID\" = 0 ]; then p=grpc; e=127.0.0.1:{grpc}; else p=http; e=127.0.0.1:{http}; fi; \
         {python} {sender} --protocol $p --endpoint $e --rounds 2 --no-rank > {out}/sender.$SLURM_PROCID 2>&1; \
         echo $? >> {out}/sender.$SLURM_PROCID.rc",
        python = python.display(),
        sender = sender.display(),
        out = dir.display(),
    );
    let script = format!("srun -n2 --gpu-bind=single:1 bash -c '{task}'");
    cluster.run(
        "sbatch",
        &[
            "-p",
            "gpu",
            "-n2",
            "--gres=gpu:2",
            "-J",
            "otlp-train",
            "--output=/dev/null",
            "--wrap",
            &script,
        ],
    );
    let job = cluster.wait_state("otlp-train", "RUNNING", Duration::from_secs(30));
    let (rcs, _) = eventually(Duration::from_secs(60), "both senders finish", || {
        (0..2)
            .map(|r| std::fs::read_to_string(dir.join(format!("sender.{r}.rc"))).ok())
            .collect::<Option<Vec<String>>>()
    });
    for (rank, rc) in rcs.iter().enumerate() {
        let log = std::fs::read_to_string(dir.join(format!("sender.{rank}"))).unwrap_or_default();
        assert_eq!(rc.trim(), "0", "rank {rank}'s sender failed:\n{log}");
    }

    let selector = format!("{{slurm_job_id=\"{job}\"}}");
    let (rows, _) = eventually(Duration::from_secs(20), "both ranks' series in Prometheus", || {
        let rows = query(&prometheus, &format!("train_step_duration_seconds_bucket{selector}"));
        (rows.len() == 8).then_some(rows)
    });
    for (labels, value) in &rows {
        let get = |k: &str| labels.get(k).and_then(|v| v.as_str()).unwrap_or("");
        assert_eq!(get("job"), "trainer");
        assert_eq!(get("instance"), "node-1");
        assert_eq!(get("slurm_job_name"), "otlp-train");
        assert_eq!(get("slurm_job_user"), "root");
        assert_eq!(get("slurm_partition"), "gpu");
        assert!(matches!(get("rank"), "0" | "1"), "{labels:?}");
        assert_eq!(get("local_rank"), get("rank"), "one node: local rank = rank");
        let expected = match get("le") {
            "0.1" => 2.0,
            "0.5" | "1" => 6.0,
            "+Inf" => 8.0,
            other => panic!("unexpected bucket {other}"),
        };
        assert_eq!(*value, expected, "{labels:?}");
    }
    for rank in ["0", "1"] {
        let one = |metric: &str| {
            let rows = query(
                &prometheus,
                &format!("{metric}{{slurm_job_id=\"{job}\",rank=\"{rank}\"}}"),
            );
            assert_eq!(rows.len(), 1, "{metric} rank {rank}: {rows:?}");
            rows[0].1
        };
        assert_eq!(one("train_tokens_total"), 2000.0);
        assert_eq!(one("train_queue_depth"), 6.0);
        assert_eq!(one("train_loss"), 1.25);
        assert_eq!(one("train_step_duration_seconds_count"), 8.0);
        assert!((one("train_step_duration_seconds_sum") - 5.3).abs() < 1e-9);
    }
    let (out, _) = nodetel.terminate();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}
