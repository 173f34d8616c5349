//! Slurm failing before or during a job, through the real command runner with stand-in
//! `squeue` and `scontrol` (`slurm_fake`): which labels survive an outage. Hanging commands, the
//! log line and recovery: `tests/slurm_outage.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod slurm_fake;

use slurm_fake::{Fake, jobs_of_gpus};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn during_an_outage_a_job_whose_tasks_ended_loses_its_labels() {
    let fake = Fake::new("ended");
    fake.task(true);
    let rt = rt();
    let mut p = fake.processor();
    rt.block_on(p.refresh_now()).unwrap();
    assert_eq!(jobs_of_gpus(&mut p), ["3", "3", "4", ""]);
    fake.mode("fail");
    rt.block_on(p.refresh_now()).unwrap();
    assert_eq!(jobs_of_gpus(&mut p), ["3", "3", "4", ""], "job 3 still has its task");
    fake.task(false);
    rt.block_on(p.refresh_now()).unwrap();
    // Job 3's task was seen and is gone: it ended. Job 4 was never visible here (another
    // user's tasks without the rights to read them): Slurm's last word stands.
    assert_eq!(jobs_of_gpus(&mut p), ["", "", "4", ""]);
}

#[test]
fn an_outage_before_the_first_answer_labels_from_task_environments() {
    let fake = Fake::new("never");
    fake.task(true);
    fake.mode("fail");
    let rt = rt();
    let mut p = fake.processor();
    assert_eq!(rt.block_on(p.refresh_now()).unwrap().slurm_jobs, None);
    assert_eq!(jobs_of_gpus(&mut p), ["3", "", "", ""]);
}
