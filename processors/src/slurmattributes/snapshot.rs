//! The snapshot of this node's jobs: which labels each GPU gets and which the node gets, built
//! from Slurm's view and the task processes, and compared so the epoch only moves on change.
//!
//! Precedence when sources disagree:
//! 1. Which job holds which GPU, and the job's name, user and partition, come from Slurm
//!    (`squeue -w <node>` and the `IDX` of `scontrol -d show job`). When Slurm answers, a job
//!    it does not list on this node gets no labels, even if processes of it linger.
//! 2. When Slurm cannot be asked (slurmctld down, commands missing), the task environments in
//!    /proc stand in: `SLURM_JOB_NAME`, `SLURM_JOB_USER`, `SLURM_JOB_PARTITION` and the GPUs of
//!    `SLURM_STEP_GPUS` / `SLURM_JOB_GPUS`.
//! 3. Rank and local rank only come from processes: `RANK` / `LOCAL_RANK` (set per worker by
//!    launchers such as torchrun) over `SLURM_PROCID` / `SLURM_LOCALID`; a task of a job step
//!    over the batch script; then the lowest pid. A process names a GPU when it sees exactly
//!    one, or when `LOCAL_RANK` picks one of several. A rank is only used for a GPU that its job
//!    holds. Where environments cannot be read, `scontrol listpids` supplies ranks for steps
//!    that bind one GPU per task (`--gpus-per-task=1`): local id N drives the N-th GPU.
//! 4. Two jobs on one GPU (GPU sharing): the lowest job id wins.

use std::collections::{BTreeMap, HashMap};

use nodetel_core::Pair;
use nodetel_core::labels::LabelError;
use nodetel_host::slurm::listpids::StepPid;
use nodetel_host::slurm::tasks::TaskProcess;

use super::config::LabelNames;

/// What the processor adds, by GPU index and for the node.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Snapshot {
    /// Bumped whenever the content changes; processors cache per epoch.
    pub epoch: u64,
    /// Pairs for each GPU index held by a job.
    pub gpus: HashMap<u32, Vec<Pair>>,
    /// Pairs for node-level series: set when exactly one job runs on the node.
    pub node: Option<Vec<Pair>>,
    /// How many jobs the snapshot saw.
    pub jobs: usize,
    /// Job-level pairs (id, name, user, partition) by job id, for series that name their job.
    pub by_job: HashMap<String, Vec<Pair>>,
    /// Job and rank pairs of task processes known from `scontrol listpids` (used where
    /// environments cannot be read), by pid.
    pub by_pid: HashMap<u32, Vec<Pair>>,
}

impl Snapshot {
    /// Same labels, ignoring the epoch.
    pub fn same_content(&self, other: &Snapshot) -> bool {
        self.gpus == other.gpus && self.node == other.node && self.by_job == other.by_job && self.by_pid == other.by_pid
    }
}

/// A job on this node, from Slurm or (failing that) from a task environment.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct JobFacts {
    /// Job id.
    pub job_id: String,
    /// Job name.
    pub name: String,
    /// User name.
    pub user: String,
    /// Partition.
    pub partition: String,
    /// GPU indices the job holds on this node.
    pub gpus: Vec<u32>,
}

/// The rank of one GPU and how sure we are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct RankClaim {
    rank: Option<u32>,
    local_rank: Option<u32>,
    /// Higher wins: 3 = step task with a launcher rank, 2 = step task, 1 = batch script,
    /// 0 = listpids fallback.
    priority: u8,
}

fn job_number(id: &str) -> u64 {
    id.split(['_', '+'])
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(u64::MAX)
}

/// Inputs to [`build`].
#[derive(Debug, Default)]
pub struct Inputs<'a> {
    /// Slurm's jobs on this node; `None` when Slurm could not be asked.
    pub slurm_jobs: Option<Vec<JobFacts>>,
    /// Task processes found in /proc.
    pub tasks: &'a [TaskProcess],
    /// `scontrol listpids` rows, when environments were unreadable.
    pub listpids: &'a [StepPid],
    /// Whether `dcgm-exporter`'s `hpc_job` label is added to GPU series.
    pub hpc_job: bool,
}

/// Builds the snapshot content (epoch 0; the caller sets it).
pub fn build(inputs: &Inputs<'_>, names: &LabelNames) -> Result<Snapshot, LabelError> {
    let jobs: Vec<JobFacts> = match &inputs.slurm_jobs {
        Some(jobs) => {
            let from_tasks = jobs_from_tasks(inputs.tasks);
            jobs.iter()
                .map(|j| {
                    // Slurm listed the job but its GPU detail is missing (the detail call
                    // failed): the tasks' SLURM_JOB_GPUS / SLURM_STEP_GPUS stand in.
                    let mut j = j.clone();
                    let stand_in = from_tasks.iter().find(|t| t.job_id == j.job_id);
                    if let Some(t) = stand_in.filter(|_| j.gpus.is_empty()) {
                        j.gpus.clone_from(&t.gpus);
                    }
                    j
                })
                .collect()
        }
        None => jobs_from_tasks(inputs.tasks),
    };
    let by_id: BTreeMap<&str, &JobFacts> = jobs.iter().map(|j| (j.job_id.as_str(), j)).collect();

    // GPU -> job, lowest job id first.
    let mut order: Vec<&JobFacts> = jobs.iter().collect();
    order.sort_by_key(|j| job_number(&j.job_id));
    let mut gpu_job: BTreeMap<u32, &JobFacts> = BTreeMap::new();
    for job in &order {
        for &g in &job.gpus {
            gpu_job.entry(g).or_insert(job);
        }
    }

    let mut claims: HashMap<u32, RankClaim> = HashMap::new();
    let mut claim = |gpu: u32, c: RankClaim| {
        let better = claims.get(&gpu).is_none_or(|old| c.priority > old.priority);
        if better {
            claims.insert(gpu, c);
        }
    };
    for task in inputs.tasks {
        let env = &task.env;
        let Some(gpu) = env.bound_gpu() else { continue };
        if gpu_job.get(&gpu).is_none_or(|j| j.job_id != env.job_id) {
            continue;
        }
        let priority = match (&env.step_id, env.rank.is_some()) {
            (Some(_), true) => 3,
            (Some(_), false) => 2,
            (None, _) => 1,
        };
        claim(
            gpu,
            RankClaim {
                rank: env.global_rank(),
                local_rank: env.node_local_rank(),
                priority,
            },
        );
    }
    for (job_id, step, gpus) in one_gpu_per_task_steps(inputs.listpids, &by_id) {
        for row in inputs.listpids.iter().filter(|r| r.job_id == job_id && r.step == step) {
            let Some(local) = row.local_id else { continue };
            if let Some(&gpu) = gpus.get(local as usize) {
                claim(
                    gpu,
                    RankClaim {
                        rank: row.global_id,
                        local_rank: Some(local),
                        priority: 0,
                    },
                );
            }
        }
    }

    let mut snap = Snapshot {
        jobs: jobs.len(),
        ..Snapshot::default()
    };
    for (&gpu, job) in &gpu_job {
        let mut pairs = job_pairs(job, names)?;
        if inputs.hpc_job {
            pairs.push(Pair::new("hpc_job", &job.job_id)?);
        }
        if let Some(c) = claims.get(&gpu) {
            pairs.extend(rank_pairs(c.rank, c.local_rank, names)?);
        }
        snap.gpus.insert(gpu, pairs);
    }
    if let [only] = jobs.as_slice() {
        snap.node = Some(job_pairs(only, names)?);
    }
    for job in &jobs {
        let mut pairs = job_pairs(job, names)?;
        if inputs.hpc_job {
            pairs.push(Pair::new("hpc_job", &job.job_id)?);
        }
        snap.by_job.insert(job.job_id.clone(), pairs);
    }
    for row in inputs.listpids {
        if let Some(job) = snap.by_job.get(&row.job_id) {
            let mut pairs = job.clone();
            pairs.extend(rank_pairs(row.global_id, row.local_id, names)?);
            snap.by_pid.insert(row.pid, pairs);
        }
    }
    Ok(snap)
}

/// `rank` and `local_rank` pairs for the values that are known.
pub fn rank_pairs(rank: Option<u32>, local_rank: Option<u32>, names: &LabelNames) -> Result<Vec<Pair>, LabelError> {
    let mut pairs = Vec::with_capacity(2);
    if let Some(r) = rank {
        pairs.push(Pair::new(&names.rank, &r.to_string())?);
    }
    if let Some(l) = local_rank {
        pairs.push(Pair::new(&names.local_rank, &l.to_string())?);
    }
    Ok(pairs)
}

/// Job id, name, user and partition pairs of a job (empty values left out).
pub fn job_pairs(job: &JobFacts, names: &LabelNames) -> Result<Vec<Pair>, LabelError> {
    let mut pairs = Vec::with_capacity(6);
    for (name, value) in [
        (&names.job_id, &job.job_id),
        (&names.job_name, &job.name),
        (&names.job_user, &job.user),
        (&names.partition, &job.partition),
    ] {
        if !value.is_empty() {
            pairs.push(Pair::new(name, value)?);
        }
    }
    Ok(pairs)
}

/// Jobs as the task environments describe them (Slurm unreachable).
pub(super) fn jobs_from_tasks(tasks: &[TaskProcess]) -> Vec<JobFacts> {
    let mut jobs: BTreeMap<&str, JobFacts> = BTreeMap::new();
    for t in tasks {
        let e = &t.env;
        let job = jobs.entry(e.job_id.as_str()).or_insert_with(|| JobFacts {
            job_id: e.job_id.clone(),
            ..JobFacts::default()
        });
        for (field, value) in [
            (&mut job.name, &e.job_name),
            (&mut job.user, &e.job_user),
            (&mut job.partition, &e.partition),
        ] {
            if let Some(v) = value.as_ref().filter(|_| field.is_empty()) {
                field.clone_from(v);
            }
        }
        let gpus = e.job_gpus.clone().unwrap_or_else(|| e.gpus());
        for g in gpus {
            if !job.gpus.contains(&g) {
                job.gpus.push(g);
            }
        }
    }
    jobs.into_values()
        .map(|mut j| {
            j.gpus.sort_unstable();
            j
        })
        .collect()
}

/// Steps whose task count on this node equals the job's GPU count here: the one-GPU-per-task
/// layout, where local id N drives the N-th GPU.
fn one_gpu_per_task_steps<'a>(
    rows: &'a [StepPid],
    jobs: &BTreeMap<&str, &'a JobFacts>,
) -> Vec<(&'a str, &'a str, &'a [u32])> {
    let mut steps: BTreeMap<(&str, &str), Vec<u32>> = BTreeMap::new();
    for r in rows {
        if let Some(l) = r.local_id {
            steps.entry((&r.job_id, &r.step)).or_default().push(l);
        }
    }
    let mut out = Vec::new();
    for ((job_id, step), mut locals) in steps {
        if matches!(step, "batch" | "extern") {
            continue;
        }
        let Some(job) = jobs.get(job_id) else { continue };
        locals.sort_unstable();
        locals.dedup();
        let dense = locals.iter().enumerate().all(|(i, &l)| i as u32 == l);
        if job.gpus.len() > 1 && dense && locals.len() == job.gpus.len() {
            out.push((job_id, step, job.gpus.as_slice()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use nodetel_host::slurm::tasks::{TaskEnv, parse_environ};
    use nodetel_host::slurm::{job, listpids, squeue};

    const JOBS: &str = include_str!("../../../host/testdata/slurm/scontrol_show_job_-d_-o.txt");
    const SQUEUE: &str = include_str!("../../../host/testdata/slurm/squeue-h-w-HOST.txt");

    fn env_file(text: &str) -> Vec<u8> {
        text.lines().flat_map(|l| l.bytes().chain([0])).collect()
    }

    fn task(pid: u32, file: &str) -> TaskProcess {
        TaskProcess {
            pid,
            env: parse_environ(&env_file(file)).unwrap(),
        }
    }

    /// Slurm's view of the recorded cluster: squeue's 3-field fixture lacks our format, so the
    /// jobs come from the detail file restricted to running ones.
    fn recorded_jobs() -> Vec<JobFacts> {
        let _ = SQUEUE;
        job::parse(JOBS)
            .unwrap()
            .into_iter()
            .filter(|j| j.state == "RUNNING")
            .map(|j| JobFacts {
                gpus: j.gpus_on("vm"),
                job_id: j.job_id,
                name: j.name,
                user: j.user,
                partition: j.partition,
            })
            .collect()
    }

    fn labels(pairs: &[Pair]) -> Vec<String> {
        pairs.iter().map(|p| format!("{}={}", p.name(), p.value())).collect()
    }

    #[test]
    fn recorded_cluster_maps_each_gpu_to_its_job_and_rank() {
        let tasks = [
            task(
                1213,
                include_str!("../../../host/testdata/slurm/proc/job5.step0.rank0.environ.txt"),
            ),
            task(
                1214,
                include_str!("../../../host/testdata/slurm/proc/job5.step0.rank1.environ.txt"),
            ),
            task(
                1215,
                include_str!("../../../host/testdata/slurm/proc/job3.stepbatch.rank0.environ.txt"),
            ),
            task(
                1276,
                include_str!("../../../host/testdata/slurm/proc/job3.step0.rank0.environ.txt"),
            ),
            task(
                1277,
                include_str!("../../../host/testdata/slurm/proc/job3.step0.rank1.environ.txt"),
            ),
        ];
        let inputs = Inputs {
            slurm_jobs: Some(recorded_jobs()),
            tasks: &tasks,
            ..Inputs::default()
        };
        let snap = build(&inputs, &LabelNames::default()).unwrap();
        assert_eq!(snap.jobs, 3);
        assert_eq!(
            labels(&snap.gpus[&3]),
            [
                "slurm_job_id=5",
                "slurm_job_name=nt-infer",
                "slurm_job_user=nobody",
                "slurm_partition=debug",
                "rank=1",
                "local_rank=1"
            ]
        );
        let g0 = labels(&snap.gpus[&0]);
        assert!(
            g0.contains(&"slurm_job_id=3".to_owned()) && g0.contains(&"rank=0".to_owned()),
            "{g0:?}"
        );
        assert!(labels(&snap.gpus[&1]).contains(&"rank=1".to_owned()));
        assert_eq!(snap.node, None, "three jobs share the node");
    }

    #[test]
    fn slurm_unreachable_falls_back_to_task_environments() {
        let tasks = [task(
            1214,
            include_str!("../../../host/testdata/slurm/proc/job5.step0.rank1.environ.txt"),
        )];
        let snap = build(
            &Inputs {
                slurm_jobs: None,
                tasks: &tasks,
                ..Inputs::default()
            },
            &LabelNames::default(),
        )
        .unwrap();
        let g3 = labels(&snap.gpus[&3]);
        assert!(g3.contains(&"slurm_job_name=nt-infer".to_owned()), "{g3:?}");
        assert!(snap.node.is_some(), "one job known: node series get its labels");
    }

    #[test]
    fn a_listed_job_without_gpu_detail_takes_its_gpus_from_its_tasks() {
        let tasks = [task(
            1214,
            include_str!("../../../host/testdata/slurm/proc/job5.step0.rank1.environ.txt"),
        )];
        let jobs = vec![JobFacts {
            job_id: "5".into(),
            name: "from-slurm".into(),
            ..JobFacts::default()
        }];
        let snap = build(
            &Inputs {
                slurm_jobs: Some(jobs),
                tasks: &tasks,
                ..Inputs::default()
            },
            &LabelNames::default(),
        )
        .unwrap();
        let g3 = labels(&snap.gpus[&3]);
        assert!(
            g3.contains(&"slurm_job_name=from-slurm".to_owned()),
            "Slurm's name wins: {g3:?}"
        );
        assert!(g3.contains(&"rank=1".to_owned()), "{g3:?}");
    }

    #[test]
    fn a_job_slurm_no_longer_lists_gets_no_labels() {
        let tasks = [task(
            1214,
            include_str!("../../../host/testdata/slurm/proc/job5.step0.rank1.environ.txt"),
        )];
        let snap = build(
            &Inputs {
                slurm_jobs: Some(Vec::new()),
                tasks: &tasks,
                ..Inputs::default()
            },
            &LabelNames::default(),
        )
        .unwrap();
        assert!(snap.gpus.is_empty());
        assert!(snap.node.is_none());
    }

    #[test]
    fn launcher_rank_beats_slurm_procid_and_lowest_job_wins_a_shared_gpu() {
        let mk = |pid, job: &str, env: &[u8]| {
            let mut block = format!("SLURM_JOB_ID={job}\0").into_bytes();
            block.extend_from_slice(env);
            TaskProcess {
                pid,
                env: parse_environ(&block).unwrap(),
            }
        };
        let tasks = [
            mk(10, "20", b"SLURM_STEP_ID=0\0SLURM_PROCID=0\0SLURM_STEP_GPUS=0\0"),
            mk(
                11,
                "20",
                b"SLURM_STEP_ID=0\0SLURM_PROCID=0\0RANK=8\0LOCAL_RANK=0\0SLURM_STEP_GPUS=0\0",
            ),
        ];
        let jobs = vec![
            JobFacts {
                job_id: "21".into(),
                gpus: vec![0],
                ..JobFacts::default()
            },
            JobFacts {
                job_id: "20".into(),
                name: "a".into(),
                gpus: vec![0, 1],
                ..JobFacts::default()
            },
        ];
        let snap = build(
            &Inputs {
                slurm_jobs: Some(jobs),
                tasks: &tasks,
                hpc_job: true,
                ..Inputs::default()
            },
            &LabelNames::default(),
        )
        .unwrap();
        let g0 = labels(&snap.gpus[&0]);
        assert!(
            g0.contains(&"slurm_job_id=20".to_owned()) && g0.contains(&"hpc_job=20".to_owned()),
            "{g0:?}"
        );
        assert!(g0.contains(&"rank=8".to_owned()), "{g0:?}");
        assert!(!labels(&snap.gpus[&1]).iter().any(|l| l.starts_with("rank=")));
        let _ = TaskEnv::default();
    }

    #[test]
    fn listpids_gives_ranks_for_one_gpu_per_task_steps() {
        let rows = listpids::parse(include_str!("../../../host/testdata/slurm/scontrol_listpids.txt")).unwrap();
        let snap = build(
            &Inputs {
                slurm_jobs: Some(recorded_jobs()),
                listpids: &rows,
                ..Inputs::default()
            },
            &LabelNames::default(),
        )
        .unwrap();
        // Job 5 (2 tasks, GPUs 2-3) and job 3's step 0 (2 tasks, GPUs 0-1) both fit the layout.
        assert!(labels(&snap.gpus[&3]).contains(&"rank=1".to_owned()));
        assert!(labels(&snap.gpus[&2]).contains(&"local_rank=0".to_owned()));
        // Every task pid of a job on this node is known with its ranks, for pushed series.
        let row = rows.iter().find(|r| r.global_id == Some(1) && r.job_id == "5").unwrap();
        let by_pid = labels(&snap.by_pid[&row.pid]);
        assert!(
            by_pid.contains(&"slurm_job_id=5".to_owned()) && by_pid.contains(&"rank=1".to_owned()),
            "{by_pid:?}"
        );
        let _ = squeue::NODE_JOBS_FORMAT;
    }

    #[test]
    fn equal_content_is_detected_regardless_of_epoch() {
        let a = build(
            &Inputs {
                slurm_jobs: Some(recorded_jobs()),
                ..Inputs::default()
            },
            &LabelNames::default(),
        )
        .unwrap();
        let mut b = a.clone();
        b.epoch = 9;
        assert!(a.same_content(&b));
        let c = build(
            &Inputs {
                slurm_jobs: Some(Vec::new()),
                ..Inputs::default()
            },
            &LabelNames::default(),
        )
        .unwrap();
        assert!(!a.same_content(&c));
    }
}
