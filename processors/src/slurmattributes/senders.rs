//! The job and rank of a local process that pushed a batch (the OTLP receiver names the process
//! behind each loopback connection): a training script that exports its loss without any Slurm
//! attributes still gets its job's labels and its own rank.
//!
//! The process's environment says which job and rank it runs as (children inherit it from the
//! Slurm task). It is read on the processor's thread, once per sender and refresh interval: one
//! small in-memory `/proc` file per sending process, far cheaper than a hop to the blocking
//! pool for every batch. Where environments cannot be read (not root), the ranks that `scontrol
//! listpids` gave the last refresh stand in.

use std::collections::HashMap;
use std::io::Read;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use nodetel_core::labels::LabelError;
use nodetel_core::{Labels, LabelsMap, Pair};
use nodetel_host::slurm::tasks::parse_environ;

use super::config::LabelNames;
use super::snapshot::{JobFacts, Snapshot, job_pairs, rank_pairs};

/// Past this many senders the table is dropped and rebuilt (bounds memory under pid churn).
const MAX_SENDERS: usize = 4096;

/// What is known about a sending process.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum SenderJob {
    /// It runs in a Slurm job: the job's pairs and its rank pairs.
    InJob(Vec<Pair>),
    /// Its environment was read and names no job: its series get no job labels.
    NotInJob,
    /// It could not be told (gone, or not readable): the usual rules apply.
    Unknown,
}

/// A sender and the label sets already computed for its series.
pub(crate) struct Sender {
    pub(crate) job: SenderJob,
    read_at: Instant,
    /// Output label set per input label set, for this sender.
    pub(crate) cache: LabelsMap<Labels>,
}

impl Sender {
    fn new(job: SenderJob) -> Sender {
        Sender {
            job,
            read_at: Instant::now(),
            cache: LabelsMap::default(),
        }
    }
}

/// The senders seen since the snapshot last changed.
pub(crate) struct Senders {
    proc_root: PathBuf,
    names: LabelNames,
    hpc_job: bool,
    max_age: Duration,
    table: HashMap<u32, Sender>,
    buf: Vec<u8>,
}

impl Senders {
    /// Senders looked up under `proc_root`, re-read after `max_age`.
    pub(crate) fn new(proc_root: PathBuf, names: LabelNames, hpc_job: bool, max_age: Duration) -> Senders {
        Senders {
            proc_root,
            names,
            hpc_job,
            max_age,
            table: HashMap::new(),
            buf: Vec::new(),
        }
    }

    /// Forgets every sender (the snapshot changed: jobs came or went).
    pub(crate) fn clear(&mut self) {
        self.table.clear();
    }

    /// The entry of process `pid`, read now when it is new or stale.
    pub(crate) fn get(&mut self, pid: u32, snap: &Snapshot) -> &mut Sender {
        let fresh = self.table.get(&pid).is_some_and(|s| s.read_at.elapsed() < self.max_age);
        let job = (!fresh).then(|| {
            self.read(pid, snap).unwrap_or_else(|error| {
                tracing::debug!(pid, %error, "A sender's Slurm labels are invalid; using the usual rules.");
                SenderJob::Unknown
            })
        });
        if job.is_some() && self.table.len() >= MAX_SENDERS {
            self.table.clear();
        }
        let sender = self.table.entry(pid).or_insert_with(|| Sender::new(SenderJob::Unknown));
        if let Some(job) = job {
            *sender = Sender::new(job);
        }
        sender
    }

    fn read(&mut self, pid: u32, snap: &Snapshot) -> Result<SenderJob, LabelError> {
        self.buf.clear();
        let path = self.proc_root.join(pid.to_string()).join("environ");
        let read = std::fs::File::open(path).and_then(|mut f| f.read_to_end(&mut self.buf));
        if read.is_err() {
            // Gone, or another user's process without the privilege to read it.
            return Ok(snap
                .by_pid
                .get(&pid)
                .map_or(SenderJob::Unknown, |p| SenderJob::InJob(p.clone())));
        }
        let Some(env) = parse_environ(&self.buf) else {
            return Ok(SenderJob::NotInJob);
        };
        // Slurm's view of the job when the snapshot has it; a job younger than the last refresh
        // is described by the task's own environment.
        let mut pairs = match snap.by_job.get(&env.job_id) {
            Some(p) => p.clone(),
            None => {
                let facts = JobFacts {
                    job_id: env.job_id.clone(),
                    name: env.job_name.clone().unwrap_or_default(),
                    user: env.job_user.clone().unwrap_or_default(),
                    partition: env.partition.clone().unwrap_or_default(),
                    gpus: Vec::new(),
                };
                let mut p = job_pairs(&facts, &self.names)?;
                if self.hpc_job {
                    p.push(Pair::new("hpc_job", &env.job_id)?);
                }
                p
            }
        };
        pairs.extend(rank_pairs(env.global_rank(), env.node_local_rank(), &self.names)?);
        Ok(SenderJob::InJob(pairs))
    }
}
