//! The `slurmattributes` processor against a real single-node Slurm with four fake GPUs: jobs
//! are started with srun and sbatch, and a batch of per-GPU series (keyed by the GPU indices
//! Slurm hands out) must carry each GPU's job, user, partition, rank and local rank within one
//! refresh of the job starting, and lose them within one refresh of it ending.
#![allow(clippy::unwrap_used)]

#[path = "../../receivers/tests/slurm_support/mod.rs"]
mod slurm_support;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use nodetel_core::{Batch, CancellationToken, ComponentId, Labels, Processor, ProcessorContext, Sample};
use nodetel_host::slurm::SlurmCli;
use nodetel_processors::slurmattributes::{SlurmAttributes, SlurmAttributesConfig};
use slurm_support::{Cluster, eventually};

const REFRESH: Duration = Duration::from_millis(1000);
/// One refresh plus the time a refresh takes and scheduling noise on a busy 2-core machine.
const ONE_REFRESH: Duration = Duration::from_millis(1000 + 2500);

fn gpu_batch(node: &str) -> Batch {
    let mut b = Batch::new();
    for gpu in 0..4 {
        let g = gpu.to_string();
        let uuid = format!("GPU-{gpu}");
        let labels = Labels::from_pairs([
            ("__name__", "DCGM_FI_DEV_GPU_UTIL"),
            ("gpu", g.as_str()),
            ("UUID", uuid.as_str()),
            ("Hostname", node),
        ])
        .unwrap();
        b.push(labels, Sample::new(1, 50.0));
    }
    b.push(
        Labels::from_pairs([("__name__", "node_load1"), ("instance", node)]).unwrap(),
        Sample::new(1, 0.5),
    );
    b
}

/// What each GPU (0..4) and the node series carry after processing.
fn view(p: &mut SlurmAttributes<SlurmCli>, node: &str) -> (Vec<BTreeMap<String, String>>, BTreeMap<String, String>) {
    let mut b = gpu_batch(node);
    p.process(&mut b);
    let pick = |l: &Labels| {
        l.iter()
            .filter(|(n, _)| n.starts_with("slurm_") || *n == "rank" || *n == "local_rank")
            .map(|(n, v)| (n.to_owned(), v.to_owned()))
            .collect::<BTreeMap<_, _>>()
    };
    let gpus = b.series[..4].iter().map(|s| pick(&s.labels)).collect();
    (gpus, pick(&b.series[4].labels))
}

/// The `rank local_rank gpu` lines the job's tasks wrote: Slurm's own account of the binding.
fn task_files(dir: &Path, prefix: &str, n: usize) -> Option<Vec<(String, String, String)>> {
    let mut out = Vec::new();
    for r in 0..n {
        let text = std::fs::read_to_string(dir.join(format!("{prefix}.{r}"))).ok()?;
        let f: Vec<&str> = text.split_whitespace().collect();
        if f.len() != 3 {
            return None;
        }
        out.push((f[0].to_owned(), f[1].to_owned(), f[2].to_owned()));
    }
    Some(out)
}

fn expect(
    gpus: &[BTreeMap<String, String>],
    tasks: &[(String, String, String)],
    job_id: &str,
    name: &str,
    user: &str,
    partition: &str,
) -> Result<(), String> {
    for (rank, local, gpu) in tasks {
        let g: usize = gpu.parse().map_err(|_| format!("bad gpu {gpu}"))?;
        let want: BTreeMap<String, String> = [
            ("slurm_job_id", job_id),
            ("slurm_job_name", name),
            ("slurm_job_user", user),
            ("slurm_partition", partition),
            ("rank", rank.as_str()),
            ("local_rank", local.as_str()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        if gpus[g] != want {
            return Err(format!("gpu {g}: got {:?}, want {want:?}", gpus[g]));
        }
    }
    Ok(())
}

fn task_script(dir: &Path, prefix: &str) -> String {
    format!(
        "echo \"$SLURM_PROCID $SLURM_LOCALID $SLURM_STEP_GPUS\" > {}/{prefix}.$SLURM_PROCID; exec sleep 300",
        dir.display()
    )
}

fn cpu_ticks() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<u64> = after.split_whitespace().map(|v| v.parse().unwrap_or(0)).collect();
    // Fields 14-17 of stat, counted from field 3 (the state) here.
    (f[11] + f[12], f[13] + f[14])
}

#[test]
fn jobs_on_a_real_slurm_label_their_gpus_and_leave_when_they_end() {
    let Some(cluster) = Cluster::start("attrs", 16827, 16828) else {
        return;
    };
    let node = cluster.node.clone();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let config = SlurmAttributesConfig {
        refresh_interval: REFRESH,
        slurm_conf: Some(cluster.conf.clone()),
        node_name: Some(node.clone()),
        ..SlurmAttributesConfig::default()
    };
    let cli = || SlurmCli::new(None, Duration::from_secs(5)).with_env("SLURM_CONF", &cluster.conf);
    let mut p = SlurmAttributes::new(&config, cli(), node.clone()).unwrap();
    let shutdown = CancellationToken::new();
    let cx = ProcessorContext {
        id: ComponentId::parse("slurmattributes").unwrap(),
        shutdown: shutdown.clone(),
    };
    rt.block_on(p.start(cx)).unwrap();
    let (gpus, node_labels) = view(&mut p, &node);
    assert!(
        gpus.iter().all(BTreeMap::is_empty) && node_labels.is_empty(),
        "no job yet: {gpus:?}"
    );
    let dir = cluster.scratch("tasks");

    // Phase 1: one srun job, four tasks, one GPU each.
    let mut four = cluster
        .command("srun")
        .args(["-n4", "--gpus-per-task=1", "-p", "gpu", "-J", "nt-four", "bash", "-c"])
        .arg(task_script(&dir, "four"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let four_id = cluster.wait_state("nt-four", "RUNNING", Duration::from_secs(30));
    let (tasks, _) = eventually(Duration::from_secs(20), "nt-four tasks start", || {
        task_files(&dir, "four", 4)
    });
    let ((), took) = eventually(ONE_REFRESH, "nt-four labels", || {
        let (gpus, _) = view(&mut p, &node);
        expect(&gpus, &tasks, &four_id, "nt-four", "root", "gpu").ok()
    });
    println!("srun -n4 job labelled {took:?} after its tasks started");
    let (_, node_labels) = view(&mut p, &node);
    assert_eq!(
        node_labels.get("slurm_job_id"),
        Some(&four_id),
        "one job holds the node"
    );
    assert!(!node_labels.contains_key("rank"), "node series get no rank");

    cluster.run("scancel", &[&four_id]);
    cluster.wait_empty(Duration::from_secs(30));
    let _ = four.wait();
    let ((), took) = eventually(ONE_REFRESH, "nt-four labels to go", || {
        let (gpus, node_labels) = view(&mut p, &node);
        (gpus.iter().all(BTreeMap::is_empty) && node_labels.is_empty()).then_some(())
    });
    println!("srun -n4 job labels gone {took:?} after it left the queue");

    // Phase 2: a batch job of root (two GPUs, a step inside) and an srun job of nobody share
    // the node.
    let script = format!("srun -n2 --gpu-bind=single:1 bash -c '{}'", task_script(&dir, "batch"));
    cluster.run(
        "sbatch",
        &[
            "-p",
            "debug",
            "-J",
            "nt-batch",
            "-n2",
            "--gres=gpu:2",
            "--output=/dev/null",
            "--wrap",
            &script,
        ],
    );
    // The second job belongs to another user, as on a shared node.
    let mut pair = cluster
        .command("runuser")
        .args(["-u", "nobody", "--", "env"])
        .arg(format!("SLURM_CONF={}", cluster.conf.display()))
        .args([
            "srun",
            "-n2",
            "--gpus-per-task=1",
            "-p",
            "gpu",
            "-J",
            "nt-pair",
            "bash",
            "-c",
        ])
        .arg(task_script(&dir, "pair"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let batch_id = cluster.wait_state("nt-batch", "RUNNING", Duration::from_secs(30));
    let pair_id = cluster.wait_state("nt-pair", "RUNNING", Duration::from_secs(30));
    let (batch_tasks, _) = eventually(Duration::from_secs(20), "nt-batch tasks", || {
        task_files(&dir, "batch", 2)
    });
    let (pair_tasks, _) = eventually(Duration::from_secs(20), "nt-pair tasks", || task_files(&dir, "pair", 2));
    let mut last = String::new();
    let started = Instant::now();
    while let Err(e) = {
        let (gpus, _) = view(&mut p, &node);
        expect(&gpus, &batch_tasks, &batch_id, "nt-batch", "root", "debug")
            .and_then(|()| expect(&gpus, &pair_tasks, &pair_id, "nt-pair", "nobody", "gpu"))
    } {
        last = e;
        assert!(
            started.elapsed() < ONE_REFRESH,
            "two jobs not labelled within one refresh: {last}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    println!(
        "batch + srun jobs labelled {:?} after their tasks started (before that: {last})",
        started.elapsed()
    );
    let (_, node_labels) = view(&mut p, &node);
    assert!(
        node_labels.is_empty(),
        "two jobs share the node: no job labels on node series: {node_labels:?}"
    );

    // Cost of one refresh with two jobs running, on a single-threaded runtime of its own, with
    // the background refresher stopped so the process CPU is the probe's alone.
    shutdown.cancel();
    std::thread::sleep(Duration::from_millis(100));
    let measure = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut probe = SlurmAttributes::new(&config, cli(), node.clone()).unwrap();
    for (what, max_age) in [
        ("asking Slurm", Duration::ZERO),
        ("steady state", Duration::from_secs(60)),
    ] {
        let config = SlurmAttributesConfig {
            slurm_max_age: max_age,
            ..config.clone()
        };
        probe = SlurmAttributes::new(&config, cli(), node.clone()).unwrap();
        measure.block_on(probe.refresh_now());
        let rounds = 20;
        let (own0, child0) = cpu_ticks();
        let t0 = Instant::now();
        let mut commands = 0;
        let mut report = None;
        for _ in 0..rounds {
            let r = measure.block_on(probe.refresh_now()).unwrap();
            commands += r.commands;
            report = Some(r);
        }
        let wall = t0.elapsed() / rounds;
        let (own1, child1) = cpu_ticks();
        let report = report.unwrap();
        assert_eq!((report.slurm_jobs, report.unreadable), (Some(2), 0), "{report:?}");
        assert_eq!(report.slurm_asked, max_age.is_zero(), "{what}: {report:?}");
        println!(
            "refresh, {what}: {wall:?} wall, {:.1} commands, {} task processes, child CPU {:.1} ms, nodetel CPU {:.1} ms (per refresh)",
            commands as f64 / rounds as f64,
            report.tasks,
            (child1 - child0) as f64 * 10.0 / rounds as f64,
            (own1 - own0) as f64 * 10.0 / rounds as f64,
        );
    }

    cluster.run("scancel", &[&batch_id, &pair_id]);
    cluster.wait_empty(Duration::from_secs(30));
    let _ = pair.wait();
    // The background refresher is stopped; the probe's next refresh must drop both jobs.
    measure.block_on(probe.refresh_now());
    let (gpus, node_labels) = view(&mut probe, &node);
    assert!(
        gpus.iter().all(BTreeMap::is_empty) && node_labels.is_empty(),
        "{gpus:?}"
    );
}
