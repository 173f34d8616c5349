//! The Slurm components in the binary against a real single-node Slurm: `nodetel once` with the
//! `slurm` receiver (controller and worker), a `prometheus` receiver scraping dcgm-exporter-style
//! per-GPU series from a local endpoint, and the `slurmattributes` processor labelling them.
#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::Duration;

use crate::slurm_cluster::{Cluster, eventually};
use crate::support::{nodetel, run_to_end};

/// Serves one fixed /metrics body to every connection, on a thread, until the process ends.
fn serve_metrics(body: String) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    addr
}

#[test]
fn once_labels_scraped_gpu_series_with_the_slurm_job_holding_each_gpu() {
    let Some(cluster) = Cluster::start("e2e", 16857, 16858) else {
        return;
    };
    let dir = cluster.scratch("e2e");
    let script = format!(
        "srun -n2 --gpu-bind=single:1 bash -c 'echo $SLURM_PROCID $SLURM_STEP_GPUS > {}/t.$SLURM_PROCID; exec sleep 300'",
        dir.display()
    );
    cluster.run(
        "sbatch",
        &[
            "-p",
            "gpu",
            "-n2",
            "--gres=gpu:2",
            "-J",
            "e2e-train",
            "--output=/dev/null",
            "--wrap",
            &script,
        ],
    );
    let job = cluster.wait_state("e2e-train", "RUNNING", Duration::from_secs(30));
    let (ranks, _) = eventually(Duration::from_secs(20), "tasks start", || {
        (0..2)
            .map(|r| std::fs::read_to_string(dir.join(format!("t.{r}"))).ok())
            .collect::<Option<Vec<String>>>()
    });

    let mut body = String::from("# TYPE DCGM_FI_DEV_GPU_UTIL gauge\n");
    for gpu in 0..4 {
        body.push_str(&format!(
            "DCGM_FI_DEV_GPU_UTIL{{gpu=\"{gpu}\",UUID=\"GPU-{gpu}\"}} 50\n"
        ));
    }
    let target = serve_metrics(body);
    let conf = cluster.conf.display().to_string();
    let config = format!(
        "receivers:\n  slurm:\n    slurm_conf: {conf}\n  slurm/worker:\n    mode: worker\n    slurm_conf: {conf}\n    node_name: {node}\n\
         \x20 prometheus:\n    config:\n      scrape_configs:\n        - job_name: dcgm_exporter\n          static_configs: [{{targets: [\"{target}\"]}}]\n\
         processors:\n  slurmattributes:\n    slurm_conf: {conf}\n    node_name: {node}\n\
         exporters:\n  debug: {{}}\n\
         service:\n  pipelines:\n    metrics:\n      receivers: [slurm, slurm/worker, prometheus]\n      processors: [slurmattributes]\n      exporters: [debug]\n",
        node = cluster.node,
    );
    let path = dir.join("nodetel.yaml");
    std::fs::write(&path, config).unwrap();
    let out = run_to_end(nodetel().arg("once").arg("--config").arg(&path));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );

    for line in &ranks {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (rank, gpu) = (f[0], f[1]);
        let series = stdout
            .lines()
            .find(|l| l.starts_with("DCGM_FI_DEV_GPU_UTIL{") && l.contains(&format!("gpu=\"{gpu}\"")))
            .unwrap_or_else(|| panic!("no series of gpu {gpu} in:\n{stdout}"));
        for want in [
            format!("slurm_job_id=\"{job}\""),
            "slurm_job_name=\"e2e-train\"".to_owned(),
            "slurm_job_user=\"root\"".to_owned(),
            "slurm_partition=\"gpu\"".to_owned(),
            format!("rank=\"{rank}\""),
            format!("local_rank=\"{rank}\""),
        ] {
            assert!(series.contains(&want), "{want} missing on {series}");
        }
    }
    let free: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("DCGM_FI_DEV_GPU_UTIL{") && !l.contains("slurm_job_id"))
        .collect();
    assert_eq!(free.len(), 2, "two GPUs are free and stay unlabelled: {free:?}");
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("slurm_cpus_alloc{") && !l.contains("slurm_job_id"))
    );
    assert!(stdout.contains("slurm_node_job_gpus{instance="), "{stdout}");
}
