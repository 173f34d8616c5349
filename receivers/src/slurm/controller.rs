//! Controller mode: the cluster metrics of SckyzO/slurm_exporter v1.1.0 (default) or
//! vpenso/prometheus-slurm-exporter 0.20, from the same Slurm commands they run.
//!
//! Each collector runs its commands, parses everything, and only then emits, so a failing
//! collector contributes nothing rather than half its series.

use std::collections::{BTreeMap, BTreeSet};

use nodetel_host::slurm::{CommandRunner, SlurmError, command_line, sdiag, sinfo, squeue};

use super::config::Compat;
use super::series::Round;

async fn run<R: CommandRunner>(r: &R, program: &str, args: &[&str]) -> Result<String, SlurmError> {
    r.run(program, args).await
}

fn parse_err(program: &str, args: &[&str], e: nodetel_host::slurm::ParseError) -> SlurmError {
    e.in_command(&command_line(program, args))
}

/// Runs one collector by name.
pub(crate) async fn collect<R: CommandRunner>(
    name: &str,
    r: &R,
    compat: Compat,
    round: &mut Round<'_>,
) -> Result<(), SlurmError> {
    match (name, compat) {
        ("cpus", _) => cpus(r, round).await,
        ("nodes", Compat::Sckyzo) => nodes_sckyzo(r, round).await,
        ("nodes", Compat::Vpenso) => nodes_vpenso(r, round).await,
        ("node", _) => node(r, compat, round).await,
        ("partitions", _) => partitions(r, round).await,
        ("queue", Compat::Sckyzo) => queue_sckyzo(r, round).await,
        ("queue", Compat::Vpenso) => queue_vpenso(r, round).await,
        ("scheduler", _) => scheduler(r, compat, round).await,
        ("users", _) => owners(r, "%u", "user", round).await,
        ("accounts", _) => owners(r, "%a", "account", round).await,
        ("fairshare", _) => fairshare(r, round).await,
        // vpenso registers its GPU collector only with -gpus-acct (off by default).
        ("gpus", Compat::Sckyzo) => gpus(r, round).await,
        _ => Ok(()),
    }
}

/// One `slurm_info` series: (type, binary, version, value).
pub(crate) type InfoSeries = (&'static str, &'static str, String, f64);

/// SckyzO's `info` collector: `<binary> --version` for the Slurm tools, asked once (versions do
/// not change under a running collector) and reported every round. A missing required tool
/// reads `version="not_found"` with value 0; missing submission tools are left out.
pub(crate) async fn resolve_info<R: CommandRunner>(r: &R) -> Vec<InfoSeries> {
    async fn version<R: CommandRunner>(r: &R, binary: &str) -> Option<String> {
        let out = r.run(binary, &["--version"]).await.ok()?;
        Some(out.split_whitespace().nth(1).unwrap_or("unknown").to_owned())
    }
    let mut series = Vec::new();
    let general = version(r, "sinfo").await;
    series.push((
        "general",
        "",
        general.clone().unwrap_or_else(|| "not_found".to_owned()),
        if general.is_some() { 1.0 } else { 0.0 },
    ));
    for binary in ["sinfo", "squeue", "sdiag", "scontrol", "sacct"] {
        let v = if binary == "sinfo" {
            general.clone()
        } else {
            version(r, binary).await
        };
        let value = if v.is_some() { 1.0 } else { 0.0 };
        series.push(("binary", binary, v.unwrap_or_else(|| "not_found".to_owned()), value));
    }
    for binary in ["sbatch", "salloc", "srun"] {
        if let Some(v) = version(r, binary).await {
            series.push(("binary", binary, v, 1.0));
        }
    }
    series
}

/// Emits the resolved `slurm_info` series.
pub(crate) fn emit_info(series: &[InfoSeries], round: &mut Round<'_>) {
    for (kind, binary, version, value) in series {
        round.gauge(
            "slurm_info",
            "Information on Slurm version and binaries",
            &[("type", kind), ("binary", binary), ("version", version)],
            *value,
        );
    }
}

async fn cpus<R: CommandRunner>(r: &R, round: &mut Round<'_>) -> Result<(), SlurmError> {
    let args = ["-h", "-o", "%C"];
    let out = run(r, "sinfo", &args).await?;
    let c = sinfo::parse_cpus_output(&out).map_err(|e| parse_err("sinfo", &args, e))?;
    round.gauge("slurm_cpus_alloc", "Allocated CPUs", &[], c.alloc as f64);
    round.gauge("slurm_cpus_idle", "Idle CPUs", &[], c.idle as f64);
    round.gauge("slurm_cpus_other", "Mix CPUs", &[], c.other as f64);
    round.gauge("slurm_cpus_total", "Total CPUs", &[], c.total as f64);
    Ok(())
}

/// SckyzO's node state buckets, by state prefix (flags such as `*` or `~` do not matter).
fn sckyzo_state(state: &str) -> &'static str {
    let s = state.to_ascii_lowercase();
    for (prefix, bucket) in [
        ("alloc", "alloc"),
        ("comp", "comp"),
        ("down", "down"),
        ("drain", "drain"),
        ("fail", "fail"),
        ("err", "err"),
        ("idle", "idle"),
        ("maint", "maint"),
        ("mix", "mix"),
        ("res", "resv"),
        ("planned", "planned"),
    ] {
        if s.starts_with(prefix) {
            return bucket;
        }
    }
    "other"
}

fn node_state_metric(bucket: &str) -> (&'static str, &'static str) {
    match bucket {
        "alloc" => ("slurm_nodes_alloc", "Allocated nodes"),
        "comp" => ("slurm_nodes_comp", "Completing nodes"),
        "down" => ("slurm_nodes_down", "Down nodes"),
        "drain" => ("slurm_nodes_drain", "Drain nodes"),
        "err" => ("slurm_nodes_err", "Error nodes"),
        "fail" => ("slurm_nodes_fail", "Fail nodes"),
        "idle" => ("slurm_nodes_idle", "Idle nodes"),
        "maint" => ("slurm_nodes_maint", "Maint nodes"),
        "mix" => ("slurm_nodes_mix", "Mix nodes"),
        "resv" => ("slurm_nodes_resv", "Reserved nodes"),
        "planned" => ("slurm_nodes_planned", "Planned nodes"),
        _ => ("slurm_nodes_other", "Nodes reported with an unknown state"),
    }
}

/// `%b` features as SckyzO labels them: sorted, comma-joined, `(null)` as `null`.
fn feature_set(features: &str) -> String {
    let f = features.trim();
    if f.is_empty() || f == "(null)" {
        return "null".to_owned();
    }
    let mut parts: Vec<&str> = f.split(',').map(str::trim).filter(|p| !p.is_empty()).collect();
    parts.sort_unstable();
    parts.join(",")
}

async fn nodes_sckyzo<R: CommandRunner>(r: &R, round: &mut Round<'_>) -> Result<(), SlurmError> {
    let part_args = ["-h", "-o", "%R"];
    let parts_out = run(r, "sinfo", &part_args).await?;
    let partitions: BTreeSet<&str> = parts_out.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    let mut counts: BTreeMap<(String, String, &'static str), u64> = BTreeMap::new();
    for p in &partitions {
        let args = ["-h", "-o", "%D|%T|%b", "-p", p];
        let out = run(r, "sinfo", &args).await?;
        for row in squeue::split_lines(&out, '|', 3).map_err(|e| parse_err("sinfo", &args, e))? {
            let n: u64 = row[0].parse().map_err(|_| {
                parse_err(
                    "sinfo",
                    &args,
                    nodetel_host::slurm::ParseError::new(0, row[0], "%D is not a number"),
                )
            })?;
            *counts
                .entry(((*p).to_owned(), feature_set(row[2]), sckyzo_state(row[1])))
                .or_default() += n;
        }
    }
    let total_args = ["show", "nodes", "-o"];
    let total = run(r, "scontrol", &total_args).await?;
    let total = total.lines().filter(|l| l.starts_with("NodeName=")).count();
    for ((partition, features, bucket), n) in &counts {
        if *n > 0 {
            let (name, help) = node_state_metric(bucket);
            round.gauge(
                name,
                help,
                &[("partition", partition), ("active_feature_set", features)],
                *n as f64,
            );
        }
    }
    round.gauge("slurm_nodes_total", "Total number of nodes", &[], total as f64);
    Ok(())
}

async fn nodes_vpenso<R: CommandRunner>(r: &R, round: &mut Round<'_>) -> Result<(), SlurmError> {
    let args = ["-h", "-o %D,%T"];
    let out = run(r, "sinfo", &args).await?;
    // vpenso sorts and de-duplicates whole lines, so equal count,state lines of two partitions
    // collapse into one; reproduced on purpose.
    let lines: BTreeSet<&str> = out.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    let mut counts: BTreeMap<&'static str, u64> = BTreeMap::new();
    for line in lines {
        let Some((n, state)) = line.split_once(',') else {
            return Err(parse_err(
                "sinfo",
                &args,
                nodetel_host::slurm::ParseError::new(0, line, "expected %D,%T"),
            ));
        };
        let n: u64 = n.trim().parse().unwrap_or(0);
        let bucket = sckyzo_state(state);
        if !matches!(bucket, "planned" | "other") {
            *counts.entry(bucket).or_default() += n;
        }
    }
    for bucket in [
        "alloc", "comp", "down", "drain", "err", "fail", "idle", "maint", "mix", "resv",
    ] {
        let (name, help) = node_state_metric(bucket);
        round.gauge(name, help, &[], counts.get(bucket).copied().unwrap_or(0) as f64);
    }
    Ok(())
}

async fn node<R: CommandRunner>(r: &R, compat: Compat, round: &mut Round<'_>) -> Result<(), SlurmError> {
    // `Field: ` (suffix, no padding) instead of the exporters' padded 20-character columns, so
    // long node or partition names cannot run together; the values are the same.
    let format = match compat {
        Compat::Sckyzo => "NodeList: ,AllocMem: ,Memory: ,CPUsState: ,StateLong: ,Partition:",
        Compat::Vpenso => "NodeList: ,AllocMem: ,Memory: ,CPUsState: ,StateLong:",
    };
    let args = ["-h", "-N", "-O", format];
    let out = run(r, "sinfo", &args).await?;
    let rows = sinfo::parse_node_rows(&out).map_err(|e| parse_err("sinfo", &args, e))?;
    let mut seen = BTreeSet::new();
    for row in &rows {
        let mut labels = vec![("node", row.node.as_str()), ("status", row.state.as_str())];
        if compat == Compat::Sckyzo {
            // sinfo marks the default partition `debug*`; the other collectors' `%R` does not,
            // and later SckyzO releases strip it too, so one partition has one label value.
            labels.push((
                "partition",
                row.partition.as_deref().unwrap_or("").trim_end_matches('*'),
            ));
        }
        // A node in several partitions is listed once per partition; without the partition
        // label those rows are the same series, so only the first is kept.
        if !seen.insert(labels.clone()) {
            continue;
        }
        round.gauge(
            "slurm_node_cpu_alloc",
            "Allocated CPUs per node",
            &labels,
            row.cpus.alloc as f64,
        );
        round.gauge(
            "slurm_node_cpu_idle",
            "Idle CPUs per node",
            &labels,
            row.cpus.idle as f64,
        );
        round.gauge(
            "slurm_node_cpu_other",
            "Other CPUs per node",
            &labels,
            row.cpus.other as f64,
        );
        round.gauge(
            "slurm_node_cpu_total",
            "Total CPUs per node",
            &labels,
            row.cpus.total as f64,
        );
        round.gauge(
            "slurm_node_mem_alloc",
            "Allocated memory per node",
            &labels,
            row.alloc_mem as f64,
        );
        round.gauge(
            "slurm_node_mem_total",
            "Total memory per node",
            &labels,
            row.memory as f64,
        );
        if compat == Compat::Sckyzo {
            round.gauge("slurm_node_status", "Node status", &labels, 1.0);
        }
    }
    Ok(())
}

async fn partitions<R: CommandRunner>(r: &R, round: &mut Round<'_>) -> Result<(), SlurmError> {
    let args = ["-h", "-o%R,%C"];
    let out = run(r, "sinfo", &args).await?;
    let rows = squeue::split_lines(&out, ',', 2).map_err(|e| parse_err("sinfo", &args, e))?;
    let pending_args = ["-a", "-r", "-h", "-o%P", "--states=PENDING"];
    let pending_out = run(r, "squeue", &pending_args).await?;
    let mut pending: BTreeMap<&str, u64> = BTreeMap::new();
    for p in pending_out.lines().map(str::trim).filter(|l| !l.is_empty()) {
        *pending.entry(p).or_default() += 1;
    }
    for row in &rows {
        let Some(c) = sinfo::parse_cpus(row[1]) else {
            return Err(parse_err(
                "sinfo",
                &args,
                nodetel_host::slurm::ParseError::new(0, row[1], "expected A/I/O/T"),
            ));
        };
        let l = [("partition", row[0])];
        for (name, help, v) in [
            (
                "slurm_partition_cpus_allocated",
                "Allocated CPUs for partition",
                c.alloc,
            ),
            ("slurm_partition_cpus_idle", "Idle CPUs for partition", c.idle),
            ("slurm_partition_cpus_other", "Other CPUs for partition", c.other),
            ("slurm_partition_cpus_total", "Total CPUs for partition", c.total),
        ] {
            if v > 0 {
                round.gauge(name, help, &l, v as f64);
            }
        }
    }
    for (p, n) in pending {
        round.gauge(
            "slurm_partition_jobs_pending",
            "Pending jobs for partition",
            &[("partition", p)],
            n as f64,
        );
    }
    Ok(())
}

/// Job states and their metric suffixes, in vpenso's order.
const JOB_STATES: &[(&str, &str)] = &[
    ("PENDING", "pending"),
    ("RUNNING", "running"),
    ("SUSPENDED", "suspended"),
    ("CANCELLED", "cancelled"),
    ("COMPLETING", "completing"),
    ("COMPLETED", "completed"),
    ("CONFIGURING", "configuring"),
    ("FAILED", "failed"),
    ("TIMEOUT", "timeout"),
    ("PREEMPTED", "preempted"),
    ("NODE_FAIL", "node_fail"),
];

fn queue_metric(suffix: &str) -> &'static str {
    match suffix {
        "pending" => "slurm_queue_pending",
        "running" => "slurm_queue_running",
        "suspended" => "slurm_queue_suspended",
        "cancelled" => "slurm_queue_cancelled",
        "completing" => "slurm_queue_completing",
        "completed" => "slurm_queue_completed",
        "configuring" => "slurm_queue_configuring",
        "failed" => "slurm_queue_failed",
        "timeout" => "slurm_queue_timeout",
        "preempted" => "slurm_queue_preempted",
        _ => "slurm_queue_node_fail",
    }
}

fn cores_metric(suffix: &str) -> &'static str {
    match suffix {
        "pending" => "slurm_cores_pending",
        "running" => "slurm_cores_running",
        "suspended" => "slurm_cores_suspended",
        "cancelled" => "slurm_cores_cancelled",
        "completing" => "slurm_cores_completing",
        "completed" => "slurm_cores_completed",
        "configuring" => "slurm_cores_configuring",
        "failed" => "slurm_cores_failed",
        "timeout" => "slurm_cores_timeout",
        "preempted" => "slurm_cores_preempted",
        _ => "slurm_cores_node_fail",
    }
}

async fn queue_sckyzo<R: CommandRunner>(r: &R, round: &mut Round<'_>) -> Result<(), SlurmError> {
    // The exporter's `%P,%T,%C,%r,%u`, reordered so the reason (which may hold commas) is last.
    let args = ["-h", "-o", "%P|%T|%C|%u|%r"];
    let out = run(r, "squeue", &args).await?;
    let rows = squeue::split_lines(&out, '|', 5).map_err(|e| parse_err("squeue", &args, e))?;
    // (suffix, user, partition, reason) -> (jobs, cores)
    let mut agg: BTreeMap<(&str, &str, &str, &str), (u64, u64)> = BTreeMap::new();
    for row in &rows {
        let Some((_, suffix)) = JOB_STATES.iter().find(|(s, _)| *s == row[1]) else {
            continue;
        };
        let reason = if *suffix == "pending" { row[4] } else { "" };
        let e = agg.entry((suffix, row[3], row[0], reason)).or_default();
        e.0 += 1;
        e.1 += row[2].parse::<u64>().unwrap_or(0);
    }
    for ((suffix, user, partition, reason), (jobs, cores)) in agg {
        let mut labels = vec![("user", user), ("partition", partition)];
        if suffix == "pending" {
            labels.push(("reason", reason));
        }
        round.gauge(queue_metric(suffix), "Jobs in the queue by state", &labels, jobs as f64);
        round.gauge(
            cores_metric(suffix),
            "Cores of the jobs in the queue by state",
            &labels,
            cores as f64,
        );
    }
    Ok(())
}

async fn queue_vpenso<R: CommandRunner>(r: &R, round: &mut Round<'_>) -> Result<(), SlurmError> {
    let args = ["-a", "-r", "-h", "-o %A,%T,%r", "--states=all"];
    let out = run(r, "squeue", &args).await?;
    let rows = squeue::split_lines(&out, ',', 3).map_err(|e| parse_err("squeue", &args, e))?;
    let mut counts: BTreeMap<&str, u64> = BTreeMap::new();
    let mut dependency = 0u64;
    for row in &rows {
        if let Some((_, suffix)) = JOB_STATES.iter().find(|(s, _)| *s == row[1]) {
            *counts.entry(suffix).or_default() += 1;
            if *suffix == "pending" && row[2] == "Dependency" {
                dependency += 1;
            }
        }
    }
    for (_, suffix) in JOB_STATES {
        round.gauge(
            queue_metric(suffix),
            "Jobs in the queue by state",
            &[],
            counts.get(suffix).copied().unwrap_or(0) as f64,
        );
        if *suffix == "pending" {
            round.gauge(
                "slurm_queue_pending_dependency",
                "Pending jobs because of dependency",
                &[],
                dependency as f64,
            );
        }
    }
    Ok(())
}

async fn scheduler<R: CommandRunner>(r: &R, compat: Compat, round: &mut Round<'_>) -> Result<(), SlurmError> {
    let out = run(r, "sdiag", &[]).await?;
    let s = sdiag::parse(&out);
    let v = |x: Option<f64>| x.unwrap_or(0.0);
    for (name, help, value) in [
        (
            "slurm_scheduler_threads",
            "Information provided by the Slurm sdiag command, number of scheduler threads",
            s.threads,
        ),
        (
            "slurm_scheduler_queue_size",
            "Information provided by the Slurm sdiag command, length of the scheduler queue",
            s.queue_size,
        ),
        (
            "slurm_scheduler_dbd_queue_size",
            "Information provided by the Slurm sdiag command, length of the DBD agent queue",
            s.dbd_queue_size,
        ),
        (
            "slurm_scheduler_last_cycle",
            "Information provided by the Slurm sdiag command, scheduler last cycle time in (microseconds)",
            s.last_cycle,
        ),
        (
            "slurm_scheduler_mean_cycle",
            "Information provided by the Slurm sdiag command, scheduler mean cycle time in (microseconds)",
            s.mean_cycle,
        ),
        (
            "slurm_scheduler_cycle_per_minute",
            "Information provided by the Slurm sdiag command, number scheduler cycles per minute",
            s.cycles_per_minute,
        ),
        (
            "slurm_scheduler_backfill_last_cycle",
            "Information provided by the Slurm sdiag command, scheduler backfill last cycle time in (microseconds)",
            s.backfill_last_cycle,
        ),
        (
            "slurm_scheduler_backfill_mean_cycle",
            "Information provided by the Slurm sdiag command, scheduler backfill mean cycle time in (microseconds)",
            s.backfill_mean_cycle,
        ),
        (
            "slurm_scheduler_backfill_depth_mean",
            "Information provided by the Slurm sdiag command, scheduler backfill mean depth",
            s.backfill_depth_mean,
        ),
        (
            "slurm_scheduler_backfilled_jobs_since_start_total",
            "Information provided by the Slurm sdiag command, number of jobs started thanks to backfilling since last slurm start",
            s.backfilled_since_start,
        ),
        (
            "slurm_scheduler_backfilled_jobs_since_cycle_total",
            "Information provided by the Slurm sdiag command, number of jobs started thanks to backfilling since last time stats where reset",
            s.backfilled_since_cycle,
        ),
        (
            "slurm_scheduler_backfilled_heterogeneous_total",
            "Information provided by the Slurm sdiag command, number of heterogeneous job components started thanks to backfilling since last Slurm start",
            s.backfilled_heterogeneous,
        ),
    ] {
        round.gauge(name, help, &[], v(value));
    }
    if compat == Compat::Sckyzo {
        for rpc in &s.rpc_by_type {
            let l = [("operation", rpc.name.as_str())];
            round.gauge("slurm_rpc_stats", "RPC count by message type", &l, rpc.count);
            round.gauge(
                "slurm_rpc_stats_avg_time",
                "RPC average time by message type",
                &l,
                rpc.ave_time,
            );
            round.gauge(
                "slurm_rpc_stats_total_time",
                "RPC total time by message type",
                &l,
                rpc.total_time,
            );
        }
        for rpc in &s.rpc_by_user {
            let l = [("user", rpc.name.as_str())];
            round.gauge("slurm_user_rpc_stats", "RPC count by user", &l, rpc.count);
            round.gauge(
                "slurm_user_rpc_stats_avg_time",
                "RPC average time by user",
                &l,
                rpc.ave_time,
            );
            round.gauge(
                "slurm_user_rpc_stats_total_time",
                "RPC total time by user",
                &l,
                rpc.total_time,
            );
        }
    }
    Ok(())
}

/// Jobs and CPUs per user (`%u`) or account (`%a`); only non-zero values.
async fn owners<R: CommandRunner>(
    r: &R,
    field: &str,
    label: &'static str,
    round: &mut Round<'_>,
) -> Result<(), SlurmError> {
    let format = format!("%A|{field}|%T|%C");
    let args = ["-a", "-r", "-h", "-o", format.as_str()];
    let out = run(r, "squeue", &args).await?;
    let rows = squeue::split_lines(&out, '|', 4).map_err(|e| parse_err("squeue", &args, e))?;
    // owner -> (pending, running, running cpus, suspended)
    let mut agg: BTreeMap<&str, [u64; 4]> = BTreeMap::new();
    for row in &rows {
        let e = agg.entry(row[1]).or_default();
        let state = row[2].to_ascii_lowercase();
        let cpus = row[3].parse::<u64>().unwrap_or(0);
        if state.starts_with("pending") {
            e[0] += 1;
        } else if state.starts_with("running") {
            e[1] += 1;
            e[2] += cpus;
        } else if state.starts_with("suspended") {
            e[3] += 1;
        }
    }
    let names: [(&'static str, &'static str); 4] = if label == "user" {
        [
            ("slurm_user_jobs_pending", "Pending jobs for user"),
            ("slurm_user_jobs_running", "Running jobs for user"),
            ("slurm_user_cpus_running", "Running cpus for user"),
            ("slurm_user_jobs_suspended", "Suspended jobs for user"),
        ]
    } else {
        [
            ("slurm_account_jobs_pending", "Pending jobs for account"),
            ("slurm_account_jobs_running", "Running jobs for account"),
            ("slurm_account_cpus_running", "Running cpus for account"),
            ("slurm_account_jobs_suspended", "Suspended jobs for account"),
        ]
    };
    for (owner, values) in &agg {
        for ((name, help), v) in names.iter().zip(values) {
            if *v > 0 {
                round.gauge(name, help, &[(label, owner)], *v as f64);
            }
        }
    }
    Ok(())
}

async fn fairshare<R: CommandRunner>(r: &R, round: &mut Round<'_>) -> Result<(), SlurmError> {
    let args = ["-n", "-P", "-o", "account,fairshare"];
    let out = run(r, "sshare", &args).await?;
    for line in out.lines() {
        // User rows are indented under their account.
        if line.starts_with("  ") {
            continue;
        }
        let Some((account, value)) = line.trim().split_once('|') else {
            continue;
        };
        if let Ok(v) = value.trim().parse::<f64>() {
            round.gauge(
                "slurm_account_fairshare",
                "FairShare for account",
                &[("account", account)],
                v,
            );
        }
    }
    Ok(())
}

async fn gpus<R: CommandRunner>(r: &R, round: &mut Round<'_>) -> Result<(), SlurmError> {
    let total_args = ["-a", "-h", "--Format=Nodes: ,Gres: "];
    let alloc_args = ["-a", "-h", "--Format=Nodes: ,GresUsed: ", "--state=allocated"];
    let idle_args = [
        "-a",
        "-h",
        "--Format=Nodes: ,Gres: ,GresUsed: ",
        "--state=idle,allocated",
    ];
    let mut sums = [0u64; 3];
    for (i, args) in [&total_args[..], &alloc_args[..], &idle_args[..]]
        .into_iter()
        .enumerate()
    {
        let out = run(r, "sinfo", args).await?;
        let rows = sinfo::parse_gres_rows(&out).map_err(|e| parse_err("sinfo", args, e))?;
        sums[i] = rows
            .iter()
            .map(|row| match i {
                2 => row.nodes * row.gpus.saturating_sub(row.gpus_used.unwrap_or(0)),
                _ => row.nodes * row.gpus,
            })
            .sum();
    }
    let [total, alloc, idle] = sums;
    let other = total.saturating_sub(alloc + idle);
    let utilization = if total > 0 { alloc as f64 / total as f64 } else { 0.0 };
    round.gauge("slurm_gpus_alloc", "Allocated GPUs", &[], alloc as f64);
    round.gauge("slurm_gpus_idle", "Idle GPUs", &[], idle as f64);
    round.gauge("slurm_gpus_other", "Other GPUs", &[], other as f64);
    round.gauge("slurm_gpus_total", "Total GPUs", &[], total as f64);
    round.gauge("slurm_gpus_utilization", "Total GPU utilization", &[], utilization);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_states_bucket_by_prefix_with_flags() {
        for (state, bucket) in [
            ("mixed", "mix"),
            ("allocated*", "alloc"),
            ("drained~", "drain"),
            ("draining", "drain"),
            ("reserved", "resv"),
            ("planned", "planned"),
            ("inval", "other"),
            ("IDLE", "idle"),
        ] {
            assert_eq!(sckyzo_state(state), bucket, "{state}");
        }
    }

    #[test]
    fn feature_sets_are_sorted_and_null_is_named() {
        assert_eq!(feature_set("(null)"), "null");
        assert_eq!(feature_set("ib,a100"), "a100,ib");
    }
}
