//! The `slurmattributes` processor against a real single-node Slurm whose controller stops
//! answering: slurmctld is frozen (SIGSTOP, so its RPCs hang like a controller that is down or
//! wedged) while a job runs. The job's GPUs keep their labels through the outage, and once
//! slurmctld resumes the processor follows Slurm again: the job, cancelled, loses its labels.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../receivers/tests/slurm_support/mod.rs"]
mod slurm_support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use nodetel_core::{Batch, CancellationToken, ComponentId, Labels, Processor, ProcessorContext, Sample};
use nodetel_host::slurm::SlurmCli;
use nodetel_processors::slurmattributes::{SlurmAttributes, SlurmAttributesConfig};
use slurm_support::{Cluster, eventually};

const REFRESH: Duration = Duration::from_millis(1000);
const COMMAND_TIMEOUT: Duration = Duration::from_secs(2);
/// One refresh, a command timing out, and scheduling noise on a busy 2-core machine.
const ONE_REFRESH: Duration = Duration::from_millis(1000 + 2000 + 2500);

/// The `slurm_job_id` of each of GPUs 0..3 ("" for none).
fn jobs_of_gpus(p: &mut SlurmAttributes<SlurmCli>, node: &str) -> Vec<String> {
    let mut b = Batch::new();
    for gpu in ["0", "1", "2", "3"] {
        let labels = Labels::from_pairs([("__name__", "DCGM_FI_DEV_GPU_UTIL"), ("gpu", gpu), ("Hostname", node)]);
        b.push(labels.unwrap(), Sample::new(1, 1.0));
    }
    p.process(&mut b);
    b.series
        .iter()
        .map(|s| s.labels.get("slurm_job_id").unwrap_or_default().to_owned())
        .collect()
}

/// Every label the processor adds to GPU 0.
fn gpu0(p: &mut SlurmAttributes<SlurmCli>, node: &str) -> BTreeMap<String, String> {
    let mut b = Batch::new();
    let labels = Labels::from_pairs([("__name__", "DCGM_FI_DEV_GPU_UTIL"), ("gpu", "0"), ("Hostname", node)]);
    b.push(labels.unwrap(), Sample::new(1, 1.0));
    p.process(&mut b);
    b.series[0]
        .labels
        .iter()
        .filter(|(n, _)| n.starts_with("slurm_") || *n == "rank" || *n == "local_rank")
        .map(|(n, v)| (n.to_owned(), v.to_owned()))
        .collect()
}

/// Freezes a process until dropped, so a failing test never leaves slurmctld stopped.
struct Frozen(i32);

impl Frozen {
    fn new(pid: i32) -> Frozen {
        signal(pid, "STOP");
        Frozen(pid)
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        signal(self.0, "CONT");
    }
}

fn signal(pid: i32, name: &str) {
    let ok = std::process::Command::new("kill")
        .args([&format!("-{name}"), &pid.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -{name} {pid}");
}

#[test]
fn a_frozen_slurmctld_keeps_the_labels_and_once_resumed_slurm_is_followed_again() {
    let Some(cluster) = Cluster::start("down", 16871, 16872) else {
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
        command_timeout: COMMAND_TIMEOUT,
        // Ask Slurm every refresh, so the outage is met at once.
        slurm_max_age: Duration::ZERO,
        slurm_conf: Some(cluster.conf.clone()),
        node_name: Some(node.clone()),
        ..SlurmAttributesConfig::default()
    };
    let cli = SlurmCli::new(None, COMMAND_TIMEOUT).with_env("SLURM_CONF", &cluster.conf);
    let mut p = SlurmAttributes::new(&config, cli, node.clone()).unwrap();
    let shutdown = CancellationToken::new();
    let cx = ProcessorContext {
        id: ComponentId::parse("slurmattributes").unwrap(),
        shutdown: shutdown.clone(),
    };
    rt.block_on(p.start(cx)).unwrap();

    let mut job = cluster
        .command("srun")
        .args(["-n2", "--gpus-per-task=1", "-p", "gpu", "-J", "nt-down", "sleep", "300"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let id = cluster.wait_state("nt-down", "RUNNING", Duration::from_secs(30));
    let want = vec![id.clone(), id.clone(), String::new(), String::new()];
    eventually(ONE_REFRESH, "nt-down labels", || {
        (jobs_of_gpus(&mut p, &node) == want).then_some(())
    });
    let labelled = gpu0(&mut p, &node);
    assert_eq!(labelled.get("slurm_job_name").map(String::as_str), Some("nt-down"));

    {
        let _frozen = Frozen::new(cluster.daemon_pid("slurmctld"));
        // The controller is really gone: a client gives up.
        let started = Instant::now();
        let squeue = cluster.command("timeout").args(["3", "squeue", "-h"]).output().unwrap();
        assert!(!squeue.status.success(), "squeue answered while slurmctld was stopped");
        assert!(started.elapsed() >= Duration::from_secs(2));
        // Several refreshes meet the outage; the labels stay, whole.
        let until = Instant::now() + 3 * ONE_REFRESH;
        while Instant::now() < until {
            assert_eq!(gpu0(&mut p, &node), labelled, "during the outage");
            assert_eq!(jobs_of_gpus(&mut p, &node), want, "during the outage");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    // slurmctld is back: the processor follows Slurm again.
    cluster.run("scancel", &[&id]);
    let _ = job.wait();
    cluster.wait_empty(Duration::from_secs(30));
    let ((), took) = eventually(ONE_REFRESH, "nt-down labels to go", || {
        jobs_of_gpus(&mut p, &node).iter().all(String::is_empty).then_some(())
    });
    println!("labels gone {took:?} after the job left the queue");
    shutdown.cancel();
}
