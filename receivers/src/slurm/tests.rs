//! The controller and worker outputs for the recorded cluster (node `vm` in partitions `debug`
//! and `gpu`, jobs 3-7 of the fixtures), with every command answered from fixtures.

use nodetel_core::Batch;
use nodetel_host::slurm::StaticRunner;
use nodetel_host::slurm::squeue::node_jobs_args;

use super::*;

macro_rules! fixture {
    ($name:literal) => {
        include_str!(concat!("../../../host/testdata/slurm/", $name))
    };
}

fn recorded() -> StaticRunner {
    StaticRunner::new()
        .with("sinfo", &["-h", "-o", "%C"], fixture!("sinfo_-h_-o~%C.txt"))
        .with("sinfo", &["-h", "-o", "%R"], "debug\ngpu\n")
        .with("sinfo", &["-h", "-o", "%D|%T|%b", "-p", "debug"], "1|mixed|(null)\n")
        .with("sinfo", &["-h", "-o", "%D|%T|%b", "-p", "gpu"], "1|mixed|(null)\n")
        .with(
            "scontrol",
            &["show", "nodes", "-o"],
            fixture!("scontrol_show_node_-o.txt"),
        )
        .with("sinfo", &["-h", "-o %D,%T"], fixture!("sinfo_-h_-o~%D,%T.txt"))
        .with(
            "sinfo",
            &[
                "-h",
                "-N",
                "-O",
                "NodeList: ,AllocMem: ,Memory: ,CPUsState: ,StateLong: ,Partition:",
            ],
            "vm 0 21694 5/3/0/8 mixed debug\nvm 0 21694 5/3/0/8 mixed gpu\n",
        )
        .with(
            "sinfo",
            &[
                "-h",
                "-N",
                "-O",
                "NodeList: ,AllocMem: ,Memory: ,CPUsState: ,StateLong:",
            ],
            fixture!("sinfo_-h_-N_-O_NodeList:~,AllocMem:~,Memory:~,CPUsState:~,StateLong:.txt"),
        )
        .with("sinfo", &["-h", "-o%R,%C"], fixture!("sinfo_-h_-o%R,%C.txt"))
        .with(
            "squeue",
            &["-a", "-r", "-h", "-o%P", "--states=PENDING"],
            fixture!("squeue_-a_-r_-h_-o%P_--states=PENDING.txt"),
        )
        .with(
            "squeue",
            &["-h", "-o", "%P|%T|%C|%u|%r"],
            "debug|PENDING|1|root|JobHeldUser\ndebug|RUNNING|1|root|None\ndebug|RUNNING|2|nobody|None\n\
             gpu|PENDING|1|root|Resources\ngpu|RUNNING|2|root|None\n",
        )
        .with(
            "squeue",
            &["-a", "-r", "-h", "-o %A,%T,%r", "--states=all"],
            fixture!("squeue_-a_-r_-h_-o~%A,%T,%r_--states=all.txt"),
        )
        .with("sdiag", &[], fixture!("sdiag.txt"))
        .with("sinfo", &["--version"], "slurm 22.05.8\n")
        .with("squeue", &["--version"], "slurm 22.05.8\n")
        .with("srun", &["--version"], "slurm 22.05.8\n")
        .with(
            "squeue",
            &["-a", "-r", "-h", "-o", "%A|%u|%T|%C"],
            fixture!("squeue_-a_-r_-h_-o~%A+%u+%T+%C.txt"),
        )
        .with(
            "squeue",
            &["-a", "-r", "-h", "-o", "%A|%a|%T|%C"],
            fixture!("squeue_-a_-r_-h_-o~%A+%a+%T+%C.txt"),
        )
        .with("sshare", &["-n", "-P", "-o", "account,fairshare"], "")
        .with(
            "sinfo",
            &["-a", "-h", "--Format=Nodes: ,Gres: "],
            fixture!("sinfo_-a_-h_--Format=Nodes:~,Gres:.txt"),
        )
        .with(
            "sinfo",
            &["-a", "-h", "--Format=Nodes: ,GresUsed: ", "--state=allocated"],
            fixture!("sinfo_-a_-h_--Format=Nodes:~,GresUsed:_--state=allocated.txt"),
        )
        .with(
            "sinfo",
            &[
                "-a",
                "-h",
                "--Format=Nodes: ,Gres: ,GresUsed: ",
                "--state=idle,allocated",
            ],
            fixture!("phase2/sinfo_-a_-h_--Format=Nodes:~,Gres:~,GresUsed:_--state=idle,allocated.txt"),
        )
}

fn collect(config: &SlurmConfig, runner: StaticRunner) -> Vec<String> {
    let mut s = SlurmScraper::new(config, runner, "h1", "vm".to_owned()).unwrap();
    let mut b = Batch::new();
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(s.collect(7, &mut b))
        .unwrap();
    let mut out: Vec<String> = b
        .series
        .iter()
        .map(|s| format!("{} {}", s.labels, s.samples[0].value))
        .map(|l| l.replace(r#"instance="h1",job="slurm_exporter""#, "_"))
        .collect();
    out.sort();
    out
}

fn has(out: &[String], line: &str) {
    assert!(out.iter().any(|l| l == line), "missing {line}\nin:\n{}", out.join("\n"));
}

#[test]
fn sckyzo_output_for_the_recorded_cluster() {
    let out = collect(&SlurmConfig::default(), recorded());
    has(&out, r#"slurm_cpus_alloc{_} 5"#);
    has(&out, r#"slurm_cpus_total{_} 8"#);
    has(
        &out,
        r#"slurm_nodes_mix{active_feature_set="null",_,partition="debug"} 1"#,
    );
    has(
        &out,
        r#"slurm_nodes_mix{active_feature_set="null",_,partition="gpu"} 1"#,
    );
    has(&out, r#"slurm_nodes_total{_} 1"#);
    has(
        &out,
        r#"slurm_node_status{_,node="vm",partition="gpu",status="mixed"} 1"#,
    );
    has(
        &out,
        r#"slurm_node_mem_total{_,node="vm",partition="debug",status="mixed"} 21694"#,
    );
    has(&out, r#"slurm_partition_cpus_allocated{_,partition="gpu"} 5"#);
    has(&out, r#"slurm_partition_jobs_pending{_,partition="debug"} 1"#);
    has(
        &out,
        r#"slurm_queue_pending{_,partition="debug",reason="JobHeldUser",user="root"} 1"#,
    );
    has(&out, r#"slurm_queue_running{_,partition="debug",user="nobody"} 1"#);
    has(&out, r#"slurm_cores_running{_,partition="gpu",user="root"} 2"#);
    has(&out, r#"slurm_scheduler_last_cycle{_} 116"#);
    has(&out, r#"slurm_rpc_stats{_,operation="REQUEST_JOB_INFO"} 32"#);
    has(&out, r#"slurm_user_rpc_stats_total_time{_,user="nobody"} 2342"#);
    has(&out, r#"slurm_user_jobs_running{_,user="root"} 2"#);
    has(&out, r#"slurm_user_cpus_running{_,user="root"} 3"#);
    has(&out, r#"slurm_account_jobs_pending{account="(null)",_} 2"#);
    has(&out, r#"slurm_gpus_total{_} 4"#);
    has(&out, r#"slurm_gpus_alloc{_} 4"#);
    has(&out, r#"slurm_gpus_idle{_} 1"#);
    has(&out, r#"slurm_info{_,type="general",version="22.05.8"} 1"#);
    has(
        &out,
        r#"slurm_info{binary="squeue",_,type="binary",version="22.05.8"} 1"#,
    );
    has(
        &out,
        r#"slurm_info{binary="sacct",_,type="binary",version="not_found"} 0"#,
    );
    has(&out, r#"slurm_info{binary="srun",_,type="binary",version="22.05.8"} 1"#);
    assert!(
        !out.iter().any(|l| l.contains(r#"binary="salloc""#)),
        "missing optional tools are left out"
    );
    // No zero series in this shape.
    assert!(!out.iter().any(|l| l.starts_with("slurm_nodes_idle")), "{out:?}");
    assert!(!out.iter().any(|l| l.starts_with("slurm_partition_cpus_other")));
    assert!(!out.iter().any(|l| l.starts_with("slurm_queue_completed")));
    assert!(!out.iter().any(|l| l.starts_with("slurm_queue_pending_dependency")));
}

#[test]
fn vpenso_output_for_the_recorded_cluster() {
    let config = SlurmConfig {
        compat: Compat::Vpenso,
        ..SlurmConfig::default()
    };
    let out = collect(&config, recorded());
    has(&out, r#"slurm_nodes_mix{_} 1"#);
    has(&out, r#"slurm_nodes_idle{_} 0"#);
    has(&out, r#"slurm_queue_completed{_} 1"#);
    has(&out, r#"slurm_queue_failed{_} 1"#);
    has(&out, r#"slurm_queue_pending{_} 2"#);
    has(&out, r#"slurm_queue_pending_dependency{_} 0"#);
    has(&out, r#"slurm_queue_node_fail{_} 0"#);
    has(&out, r#"slurm_node_cpu_alloc{_,node="vm",status="mixed"} 5"#);
    has(&out, r#"slurm_scheduler_threads{_} 3"#);
    let node_rows = out.iter().filter(|l| l.starts_with("slurm_node_cpu_alloc")).count();
    assert_eq!(node_rows, 1, "the node's second partition row is the same series");
    assert!(
        !out.iter().any(|l| l.starts_with("slurm_rpc_stats")),
        "no RPC stats in 0.20"
    );
    assert!(
        !out.iter().any(|l| l.starts_with("slurm_gpus_")),
        "no GPU collector by default"
    );
    assert!(
        !out.iter().any(|l| l.starts_with("slurm_info")),
        "no info collector in 0.20"
    );
    assert!(
        !out.iter()
            .any(|l| l.contains("partition=") && l.starts_with("slurm_nodes_"))
    );
    assert_eq!(out.iter().filter(|l| l.starts_with("slurm_nodes_")).count(), 10);
    assert_eq!(out.iter().filter(|l| l.starts_with("slurm_queue_")).count(), 12);
}

#[test]
fn a_failing_collector_is_skipped_and_the_rest_reported() {
    let runner = recorded().with_failure("sdiag", &[], "sdiag: error: slurmctld down");
    let out = collect(&SlurmConfig::default(), runner);
    assert!(!out.iter().any(|l| l.starts_with("slurm_scheduler_")));
    has(&out, r#"slurm_cpus_idle{_} 3"#);
}

#[test]
fn every_collector_failing_is_an_error() {
    let mut s = SlurmScraper::new(&SlurmConfig::default(), StaticRunner::new(), "h1", "vm".to_owned()).unwrap();
    let mut b = Batch::new();
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    assert!(rt.block_on(s.collect(1, &mut b)).is_err());
}

#[test]
fn worker_mode_reports_this_nodes_jobs() {
    let runner = StaticRunner::new()
        .with(
            "squeue",
            &node_jobs_args("vm"),
            "3|root|gpu|RUNNING|nt-train\n5|nobody|debug|RUNNING|nt-infer\n",
        )
        .with(
            "scontrol",
            &["-d", "show", "job", "-o", "3"],
            fixture!("scontrol_show_job_-d_-o.txt"),
        )
        .with(
            "scontrol",
            &["-d", "show", "job", "-o", "5"],
            fixture!("scontrol_show_job_-d_-o.txt"),
        );
    let config = SlurmConfig {
        mode: Mode::Worker,
        ..SlurmConfig::default()
    };
    let out = collect(&config, runner);
    has(&out, r#"slurm_node_jobs{_,node="vm"} 2"#);
    has(&out, r#"slurm_node_job_gpus{_,node="vm",slurm_job_id="5"} 2"#);
    has(
        &out,
        r#"slurm_node_job_info{_,node="vm",slurm_job_id="3",slurm_job_name="nt-train",slurm_job_user="root",slurm_partition="gpu",state="RUNNING"} 1"#,
    );
    assert_eq!(out.len(), 5);
}
