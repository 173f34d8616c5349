//! The `slurm` receiver against a real single-node Slurm (node in partitions `debug` and `gpu`,
//! 8 CPUs, 4 fake GPUs) running a known workload: the controller output must be exactly the
//! expected metric set, in both compatibility modes, and worker mode must list the node's jobs.
#![allow(clippy::unwrap_used)]

mod slurm_support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use nodetel_core::Batch;
use nodetel_receivers::slurm::{Compat, Mode, SlurmConfig, SlurmScraper};
use slurm_support::Cluster;

/// Series (with `job`/`instance` written as `_`) to value.
fn collect(cluster: &Cluster, config: SlurmConfig) -> BTreeMap<String, f64> {
    let config = SlurmConfig {
        slurm_conf: Some(cluster.conf.clone()),
        ..config
    };
    let mut s = SlurmScraper::new(&config, config.cli(), "h1", cluster.node.clone()).unwrap();
    let mut b = Batch::new();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(s.collect(1, &mut b)).unwrap();
    let mut out = BTreeMap::new();
    for series in &b.series {
        let id = series
            .labels
            .to_string()
            .replace(r#"instance="h1",job="slurm_exporter""#, "_");
        assert!(
            out.insert(id.clone(), series.samples[0].value).is_none(),
            "duplicate series {id}"
        );
    }
    out
}

/// Compares the output with the expected series: `Some(v)` checks the value, `None` only that
/// the series exists. Series whose name starts with one of `dynamic` are not compared.
fn assert_series(got: &BTreeMap<String, f64>, want: &[(String, Option<f64>)], dynamic: &[&str]) {
    let got_ids: Vec<&String> = got
        .keys()
        .filter(|k| !dynamic.iter().any(|d| k.starts_with(d)))
        .collect();
    let mut want_ids: Vec<&String> = want.iter().map(|(k, _)| k).collect();
    want_ids.sort();
    assert_eq!(got_ids, want_ids, "series differ");
    for (id, value) in want {
        if let Some(v) = value {
            assert_eq!(got[id], *v, "{id}");
        }
    }
}

fn s(id: &str, v: impl Into<Option<f64>>) -> (String, Option<f64>) {
    (id.to_owned(), v.into())
}

#[test]
fn controller_output_matches_the_cluster_state_in_both_compat_modes() {
    let Some(cluster) = Cluster::start("ctl", 16837, 16838) else {
        return;
    };
    let sbatch = |args: &[&str]| {
        let mut a = vec!["--output=/dev/null"];
        a.extend_from_slice(args);
        cluster.run("sbatch", &a);
    };
    sbatch(&["-J", "nt-ok", "--wrap", "true"]);
    sbatch(&[
        "-p",
        "gpu",
        "-n2",
        "--gres=gpu:2",
        "-J",
        "nt-train",
        "--wrap",
        "exec sleep 300",
    ]);
    sbatch(&["-p", "debug", "-n1", "-J", "nt-cpu", "--wrap", "exec sleep 300"]);
    sbatch(&["-H", "-p", "debug", "-J", "nt-held", "--wrap", "true"]);
    cluster.wait_state("nt-train", "RUNNING", Duration::from_secs(30));
    cluster.wait_state("nt-cpu", "RUNNING", Duration::from_secs(30));
    let started = Instant::now();
    while !cluster
        .run("squeue", &["-h", "--states=all", "-n", "nt-ok", "-o", "%T"])
        .contains("COMPLETED")
    {
        assert!(started.elapsed() < Duration::from_secs(30), "nt-ok did not complete");
        std::thread::sleep(Duration::from_millis(100));
    }
    let node_line = cluster.run("scontrol", &["show", "node", "-o", &cluster.node]);
    let real_mem: f64 = node_line
        .split_whitespace()
        .find_map(|f| f.strip_prefix("RealMemory="))
        .unwrap()
        .parse()
        .unwrap();
    let node = cluster.node.as_str();

    // SckyzO v1.1.0: labelled, only non-zero combinations.
    let got = collect(&cluster, SlurmConfig::default());
    let mut want = vec![
        s("slurm_cpus_alloc{_}", 3.0),
        s("slurm_cpus_idle{_}", 5.0),
        s("slurm_cpus_other{_}", 0.0),
        s("slurm_cpus_total{_}", 8.0),
        s(r#"slurm_nodes_mix{active_feature_set="null",_,partition="debug"}"#, 1.0),
        s(r#"slurm_nodes_mix{active_feature_set="null",_,partition="gpu"}"#, 1.0),
        s("slurm_nodes_total{_}", 1.0),
        s(r#"slurm_partition_jobs_pending{_,partition="debug"}"#, 1.0),
        s(r#"slurm_queue_running{_,partition="gpu",user="root"}"#, 1.0),
        s(r#"slurm_cores_running{_,partition="gpu",user="root"}"#, 2.0),
        s(r#"slurm_queue_running{_,partition="debug",user="root"}"#, 1.0),
        s(r#"slurm_cores_running{_,partition="debug",user="root"}"#, 1.0),
        s(
            r#"slurm_queue_pending{_,partition="debug",reason="JobHeldUser",user="root"}"#,
            1.0,
        ),
        s(
            r#"slurm_cores_pending{_,partition="debug",reason="JobHeldUser",user="root"}"#,
            1.0,
        ),
        s(r#"slurm_user_jobs_running{_,user="root"}"#, 2.0),
        s(r#"slurm_user_cpus_running{_,user="root"}"#, 3.0),
        s(r#"slurm_user_jobs_pending{_,user="root"}"#, 1.0),
        s(r#"slurm_account_jobs_running{account="(null)",_}"#, 2.0),
        s(r#"slurm_account_cpus_running{account="(null)",_}"#, 3.0),
        s(r#"slurm_account_jobs_pending{account="(null)",_}"#, 1.0),
        s("slurm_gpus_total{_}", 4.0),
        s("slurm_gpus_alloc{_}", 2.0),
        s("slurm_gpus_idle{_}", 2.0),
        s("slurm_gpus_other{_}", 0.0),
        s("slurm_gpus_utilization{_}", 0.5),
    ];
    for p in ["debug", "gpu"] {
        let part = format!(r#"partition="{p}""#);
        want.push(s(&format!("slurm_partition_cpus_allocated{{_,{part}}}"), 3.0));
        want.push(s(&format!("slurm_partition_cpus_idle{{_,{part}}}"), 5.0));
        want.push(s(&format!("slurm_partition_cpus_total{{_,{part}}}"), 8.0));
        let labels = format!(r#"_,node="{node}",{part},status="mixed""#);
        for (m, v) in [
            ("cpu_alloc", Some(3.0)),
            ("cpu_idle", Some(5.0)),
            ("cpu_other", Some(0.0)),
            ("cpu_total", Some(8.0)),
            ("mem_alloc", None),
            ("mem_total", Some(real_mem)),
            ("status", Some(1.0)),
        ] {
            want.push((format!("slurm_node_{m}{{{labels}}}"), v));
        }
    }
    for m in SCHEDULER {
        want.push(s(&format!("{m}{{_}}"), None));
    }
    let version = cluster.run("sinfo", &["--version"]);
    let version = version.split_whitespace().nth(1).unwrap();
    want.push(s(
        &format!(r#"slurm_info{{_,type="general",version="{version}"}}"#),
        1.0,
    ));
    for b in [
        "sinfo", "squeue", "sdiag", "scontrol", "sacct", "sbatch", "salloc", "srun",
    ] {
        want.push(s(
            &format!(r#"slurm_info{{binary="{b}",_,type="binary",version="{version}"}}"#),
            1.0,
        ));
    }
    assert_series(&got, &want, &["slurm_rpc_stats", "slurm_user_rpc_stats"]);
    assert!(
        got.contains_key(r#"slurm_rpc_stats{_,operation="REQUEST_SUBMIT_BATCH_JOB"}"#),
        "{got:?}"
    );
    assert!(got.contains_key(r#"slurm_user_rpc_stats{_,user="root"}"#));

    // vpenso 0.20: unlabelled, zero-filled, terminal states from --states=all.
    let got = collect(
        &cluster,
        SlurmConfig {
            compat: Compat::Vpenso,
            ..SlurmConfig::default()
        },
    );
    let mut want = vec![
        s("slurm_cpus_alloc{_}", 3.0),
        s("slurm_cpus_idle{_}", 5.0),
        s("slurm_cpus_other{_}", 0.0),
        s("slurm_cpus_total{_}", 8.0),
        s(r#"slurm_partition_jobs_pending{_,partition="debug"}"#, 1.0),
        s(r#"slurm_user_jobs_running{_,user="root"}"#, 2.0),
        s(r#"slurm_user_cpus_running{_,user="root"}"#, 3.0),
        s(r#"slurm_user_jobs_pending{_,user="root"}"#, 1.0),
        s(r#"slurm_account_jobs_running{account="(null)",_}"#, 2.0),
        s(r#"slurm_account_cpus_running{account="(null)",_}"#, 3.0),
        s(r#"slurm_account_jobs_pending{account="(null)",_}"#, 1.0),
        s("slurm_queue_pending_dependency{_}", 0.0),
    ];
    for (state, n) in [
        ("alloc", 0.0),
        ("comp", 0.0),
        ("down", 0.0),
        ("drain", 0.0),
        ("err", 0.0),
        ("fail", 0.0),
        ("idle", 0.0),
        ("maint", 0.0),
        ("mix", 1.0),
        ("resv", 0.0),
    ] {
        want.push(s(&format!("slurm_nodes_{state}{{_}}"), n));
    }
    for (state, n) in [
        ("pending", 1.0),
        ("running", 2.0),
        ("suspended", 0.0),
        ("cancelled", 0.0),
        ("completing", 0.0),
        ("completed", 1.0),
        ("configuring", 0.0),
        ("failed", 0.0),
        ("timeout", 0.0),
        ("preempted", 0.0),
        ("node_fail", 0.0),
    ] {
        want.push(s(&format!("slurm_queue_{state}{{_}}"), n));
    }
    for p in ["debug", "gpu"] {
        let part = format!(r#"partition="{p}""#);
        want.push(s(&format!("slurm_partition_cpus_allocated{{_,{part}}}"), 3.0));
        want.push(s(&format!("slurm_partition_cpus_idle{{_,{part}}}"), 5.0));
        want.push(s(&format!("slurm_partition_cpus_total{{_,{part}}}"), 8.0));
    }
    let labels = format!(r#"_,node="{node}",status="mixed""#);
    for (m, v) in [
        ("cpu_alloc", Some(3.0)),
        ("cpu_idle", Some(5.0)),
        ("cpu_other", Some(0.0)),
        ("cpu_total", Some(8.0)),
        ("mem_alloc", None),
        ("mem_total", Some(real_mem)),
    ] {
        want.push((format!("slurm_node_{m}{{{labels}}}"), v));
    }
    for m in SCHEDULER {
        want.push(s(&format!("{m}{{_}}"), None));
    }
    assert_series(&got, &want, &[]);

    // Worker mode: this node's running jobs.
    let got = collect(
        &cluster,
        SlurmConfig {
            mode: Mode::Worker,
            ..SlurmConfig::default()
        },
    );
    assert_eq!(got[&format!(r#"slurm_node_jobs{{_,node="{node}"}}"#)], 2.0, "{got:?}");
    let gpus: Vec<f64> = got
        .iter()
        .filter(|(k, _)| k.starts_with("slurm_node_job_gpus"))
        .map(|(_, v)| *v)
        .collect();
    let mut sorted = gpus.clone();
    sorted.sort_by(f64::total_cmp);
    assert_eq!(sorted, [0.0, 2.0], "nt-cpu holds no GPU, nt-train two");
    assert!(
        got.keys()
            .any(|k| k.contains(r#"slurm_job_name="nt-train""#) && k.contains(r#"slurm_partition="gpu""#))
    );
}

const SCHEDULER: [&str; 12] = [
    "slurm_scheduler_threads",
    "slurm_scheduler_queue_size",
    "slurm_scheduler_dbd_queue_size",
    "slurm_scheduler_last_cycle",
    "slurm_scheduler_mean_cycle",
    "slurm_scheduler_cycle_per_minute",
    "slurm_scheduler_backfill_last_cycle",
    "slurm_scheduler_backfill_mean_cycle",
    "slurm_scheduler_backfill_depth_mean",
    "slurm_scheduler_backfilled_jobs_since_start_total",
    "slurm_scheduler_backfilled_jobs_since_cycle_total",
    "slurm_scheduler_backfilled_heterogeneous_total",
];
