//! Worker mode: facts about the jobs on this node only (no cluster-wide queries beyond
//! `squeue -w <node>` and one `scontrol -d show job` per new job).

use std::collections::HashMap;

use nodetel_host::slurm::{CommandRunner, SlurmError, command_line, job, squeue};

use super::series::Round;

/// Job details by id, asked once per job: a job's GPUs do not change while it runs.
#[derive(Debug, Default)]
pub(crate) struct WorkerState {
    details: HashMap<String, job::JobDetail>,
}

impl WorkerState {
    pub(crate) async fn collect<R: CommandRunner>(
        &mut self,
        r: &R,
        node: &str,
        round: &mut Round<'_>,
    ) -> Result<(), SlurmError> {
        let args = squeue::node_jobs_args(node);
        let out = r.run("squeue", &args).await?;
        let jobs = squeue::parse_node_jobs(&out).map_err(|e| e.in_command(&command_line("squeue", &args)))?;
        self.details.retain(|id, _| jobs.iter().any(|j| &j.job_id == id));
        for j in &jobs {
            if self.details.contains_key(&j.job_id) {
                continue;
            }
            let args = job::args(&j.job_id);
            match r
                .run("scontrol", &args)
                .await
                .and_then(|out| job::parse(&out).map_err(|e| e.in_command(&command_line("scontrol", &args))))
            {
                Ok(details) => {
                    if let Some(d) = details.into_iter().find(|d| d.job_id == j.job_id) {
                        self.details.insert(j.job_id.clone(), d);
                    }
                }
                Err(error) => {
                    tracing::debug!(%error, job_id = %j.job_id, "Job detail unavailable; retrying next round.")
                }
            }
        }
        round.gauge(
            "slurm_node_jobs",
            "Jobs running on this node",
            &[("node", node)],
            jobs.len() as f64,
        );
        for j in &jobs {
            round.gauge(
                "slurm_node_job_info",
                "A job on this node, with its name, user, partition and state; always 1",
                &[
                    ("node", node),
                    ("slurm_job_id", &j.job_id),
                    ("slurm_job_name", &j.name),
                    ("slurm_job_user", &j.user),
                    ("slurm_partition", &j.partition),
                    ("state", &j.state),
                ],
                1.0,
            );
            if let Some(d) = self.details.get(&j.job_id) {
                round.gauge(
                    "slurm_node_job_gpus",
                    "GPUs the job holds on this node",
                    &[("node", node), ("slurm_job_id", &j.job_id)],
                    d.gpus_on(node).len() as f64,
                );
            }
        }
        Ok(())
    }
}
