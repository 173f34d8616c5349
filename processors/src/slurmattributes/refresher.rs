//! The background refresher: asks Slurm which jobs run here, walks /proc for their tasks, builds
//! a [`Snapshot`] and swaps it in when it changed. Never runs on the hot path.

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use nodetel_host::slurm::tasks::{self, TaskScan};
use nodetel_host::slurm::{CommandRunner, SlurmError, command_line, job, listpids, squeue};

use super::config::LabelNames;
use super::snapshot::{self, Inputs, JobFacts, Snapshot};
use super::telemetry::SlurmAttributesMetrics;

/// Jobs with a task visible here, from task environments or `scontrol listpids`.
fn local_jobs(scan: &TaskScan, pids: &[listpids::StepPid]) -> BTreeSet<String> {
    scan.tasks
        .iter()
        .map(|t| t.env.job_id.clone())
        .chain(pids.iter().map(|p| p.job_id.clone()))
        .collect()
}

/// The snapshot shared between the refresher (writer) and the processors (readers).
pub type SharedSnapshot = Arc<RwLock<Arc<Snapshot>>>;

/// What one refresh saw, for logs and tests.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RefreshReport {
    /// Wall time of the refresh.
    pub elapsed: Duration,
    /// Jobs Slurm listed on this node; `None` when Slurm could not be asked.
    pub slurm_jobs: Option<usize>,
    /// Task processes found in /proc.
    pub tasks: usize,
    /// Processes whose environment could not be read.
    pub unreadable: usize,
    /// Slurm commands run.
    pub commands: usize,
    /// Whether the snapshot changed (and the epoch moved).
    pub changed: bool,
    /// Whether Slurm was asked (false: the last answer still matched the local tasks).
    pub slurm_asked: bool,
}

/// Builds snapshots for one node.
pub struct Refresher<R> {
    runner: R,
    node: String,
    proc_root: PathBuf,
    names: LabelNames,
    hpc_job: bool,
    shared: SharedSnapshot,
    /// Job details by id: a job's GPUs do not change while it runs, so each is asked once.
    details: HashMap<String, job::JobDetail>,
    buf: Vec<u8>,
    slurm_failing: bool,
    told_unreadable: bool,
    metrics: Arc<SlurmAttributesMetrics>,
    /// The last Slurm answer and when it came.
    last_slurm: Option<(Instant, Vec<JobFacts>)>,
    /// The last Slurm answer, kept through outages, and which of its jobs had tasks visible here.
    kept: Option<(Vec<JobFacts>, BTreeSet<String>)>,
    slurm_max_age: Duration,
}

impl<R> std::fmt::Debug for Refresher<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Refresher").field("node", &self.node).finish()
    }
}

impl<R: CommandRunner> Refresher<R> {
    /// A refresher for `node`, publishing into `shared`.
    pub fn new(
        runner: R,
        node: String,
        proc_root: PathBuf,
        names: LabelNames,
        hpc_job: bool,
        shared: SharedSnapshot,
    ) -> Refresher<R> {
        Refresher {
            runner,
            node,
            proc_root,
            names,
            hpc_job,
            shared,
            details: HashMap::new(),
            buf: Vec::with_capacity(64 * 1024),
            slurm_failing: false,
            told_unreadable: false,
            metrics: SlurmAttributesMetrics::detached("slurmattributes"),
            last_slurm: None,
            kept: None,
            slurm_max_age: Duration::ZERO,
        }
    }

    /// Reuses a Slurm answer for up to `max_age` while the local tasks match it (zero: ask
    /// Slurm every refresh).
    pub fn with_slurm_max_age(mut self, max_age: Duration) -> Refresher<R> {
        self.slurm_max_age = max_age;
        self
    }

    /// Reports refreshes into `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<SlurmAttributesMetrics>) -> Refresher<R> {
        self.metrics = metrics;
        self
    }

    async fn slurm_jobs(&mut self, commands: &mut usize) -> Result<Vec<JobFacts>, SlurmError> {
        let args = squeue::node_jobs_args(&self.node);
        *commands += 1;
        let out = self.runner.run("squeue", &args).await?;
        let jobs = squeue::parse_node_jobs(&out).map_err(|e| e.in_command(&command_line("squeue", &args)))?;
        self.details.retain(|id, _| jobs.iter().any(|j| &j.job_id == id));
        let mut facts = Vec::with_capacity(jobs.len());
        for j in jobs {
            if !self.details.contains_key(&j.job_id) {
                let args = job::args(&j.job_id);
                *commands += 1;
                let detail = self
                    .runner
                    .run("scontrol", &args)
                    .await
                    .and_then(|out| job::parse(&out).map_err(|e| e.in_command(&command_line("scontrol", &args))));
                match detail.map(|d| d.into_iter().find(|d| d.job_id == j.job_id)) {
                    Ok(Some(d)) => {
                        self.details.insert(j.job_id.clone(), d);
                    }
                    // The job ended between the two calls; it will be gone from squeue next time.
                    Ok(None) => {}
                    Err(error) => {
                        tracing::debug!(%error, job_id = %j.job_id, "Job detail unavailable; retrying next refresh.")
                    }
                }
            }
            let gpus = self
                .details
                .get(&j.job_id)
                .map(|d| d.gpus_on(&self.node))
                .unwrap_or_default();
            facts.push(JobFacts {
                job_id: j.job_id,
                name: j.name,
                user: j.user,
                partition: j.partition,
                gpus,
            });
        }
        Ok(facts)
    }

    async fn scan_tasks(&mut self) -> TaskScan {
        let root = self.proc_root.clone();
        let mut buf = std::mem::take(&mut self.buf);
        let joined = tokio::task::spawn_blocking(move || {
            let scan = tasks::scan(&root, &mut buf);
            (scan, buf)
        })
        .await;
        match joined {
            Ok((scan, buf)) => {
                self.buf = buf;
                scan.unwrap_or_else(|error| {
                    tracing::warn!(%error, path = %self.proc_root.display(), "Cannot list processes; no rank labels this round.");
                    TaskScan::default()
                })
            }
            Err(error) => {
                tracing::warn!(%error, "The /proc walk failed; no rank labels this round.");
                TaskScan::default()
            }
        }
    }

    /// Whether the last Slurm answer can stand for this refresh: it is younger than
    /// `slurm_max_age` and lists exactly the jobs whose tasks are visible here. A job that
    /// starts or ends changes the visible set, so Slurm is asked again at once.
    fn reusable(&self, scan: &TaskScan, pids: &[listpids::StepPid]) -> Option<Vec<JobFacts>> {
        let (at, jobs) = self.last_slurm.as_ref()?;
        // Unreadable environments hide jobs unless listpids could stand in for them.
        if at.elapsed() >= self.slurm_max_age || (scan.unreadable > 0 && pids.is_empty()) {
            return None;
        }
        let local: BTreeSet<&str> = scan
            .tasks
            .iter()
            .map(|t| t.env.job_id.as_str())
            .chain(pids.iter().map(|p| p.job_id.as_str()))
            .collect();
        let listed: BTreeSet<&str> = jobs.iter().map(|j| j.job_id.as_str()).collect();
        (local == listed).then(|| jobs.clone())
    }

    /// Runs one refresh and publishes the result.
    pub async fn refresh(&mut self) -> RefreshReport {
        let started = Instant::now();
        let mut commands = 0;
        let scan = self.scan_tasks().await;
        let mut pids = Vec::new();
        if scan.unreadable > 0 {
            if !self.told_unreadable {
                tracing::warn!(
                    unreadable = scan.unreadable,
                    "Cannot read the environment of some processes (nodetel is not root, or lacks ptrace access); their ranks come from scontrol listpids where it can tell, and are missing otherwise."
                );
                self.told_unreadable = true;
            }
            commands += 1;
            match self.runner.run("scontrol", &["listpids"]).await {
                Ok(out) => match listpids::parse(&out) {
                    Ok(rows) => pids = rows,
                    Err(error) => tracing::debug!(%error, "Cannot parse scontrol listpids."),
                },
                // rc=1 with "There are no steps" when nothing runs here.
                Err(error) => tracing::debug!(%error, "scontrol listpids failed."),
            }
        }
        let reused = self.reusable(&scan, &pids);
        let slurm_asked = reused.is_none();
        let slurm_jobs = match reused {
            Some(jobs) => Some(jobs),
            None => match self.slurm_jobs(&mut commands).await {
                Ok(jobs) => {
                    if self.slurm_failing {
                        tracing::info!("Slurm answers again; job labels come from Slurm.");
                        self.slurm_failing = false;
                    }
                    self.last_slurm = Some((Instant::now(), jobs.clone()));
                    self.kept = Some((jobs.clone(), local_jobs(&scan, &pids)));
                    Some(jobs)
                }
                Err(error) => {
                    if !self.slurm_failing {
                        tracing::warn!(%error, "Cannot ask Slurm for this node's jobs; keeping the jobs of its last answer (less those whose tasks ended) and adding jobs seen in task environments until it answers.");
                        self.slurm_failing = true;
                    }
                    self.details.clear();
                    self.last_slurm = None;
                    None
                }
            },
        };
        let report_jobs = slurm_jobs.as_ref().map(Vec::len);
        // A controller outage must not strip the labels of jobs that still run here.
        let slurm_jobs = slurm_jobs.or_else(|| self.kept_jobs(&scan, &pids));
        let inputs = Inputs {
            slurm_jobs,
            tasks: &scan.tasks,
            listpids: &pids,
            hpc_job: self.hpc_job,
        };
        let mut inputs_jobs = 0;
        let changed = match snapshot::build(&inputs, &self.names) {
            Ok(snap) => {
                inputs_jobs = snap.jobs;
                self.publish(snap)
            }
            Err(error) => {
                tracing::warn!(%error, "A job attribute cannot be a label value; keeping the previous snapshot.");
                false
            }
        };
        let elapsed = started.elapsed();
        self.metrics.refreshed(report_jobs.is_some(), elapsed, inputs_jobs);
        RefreshReport {
            elapsed,
            slurm_jobs: report_jobs,
            tasks: scan.tasks.len(),
            unreadable: scan.unreadable,
            commands,
            changed,
            slurm_asked,
        }
    }

    /// While Slurm does not answer: its last answer, without the jobs whose tasks were visible
    /// then and are gone now, plus the jobs known only from task environments. `None` when
    /// Slurm never answered (the snapshot then comes from task environments alone).
    fn kept_jobs(&self, scan: &TaskScan, pids: &[listpids::StepPid]) -> Option<Vec<JobFacts>> {
        let (jobs, had_tasks) = self.kept.as_ref()?;
        let local = local_jobs(scan, pids);
        let mut out: Vec<JobFacts> = jobs
            .iter()
            .filter(|j| !had_tasks.contains(&j.job_id) || local.contains(&j.job_id))
            .cloned()
            .collect();
        for j in snapshot::jobs_from_tasks(&scan.tasks) {
            if !out.iter().any(|k| k.job_id == j.job_id) {
                out.push(j);
            }
        }
        Some(out)
    }

    fn publish(&self, mut snap: Snapshot) -> bool {
        let mut guard = self.shared.write().unwrap_or_else(|e| e.into_inner());
        if guard.same_content(&snap) {
            return false;
        }
        snap.epoch = guard.epoch + 1;
        *guard = Arc::new(snap);
        true
    }
}
