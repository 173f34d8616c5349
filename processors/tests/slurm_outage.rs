//! Slurm hanging, failing and coming back, through the real command runner with stand-in
//! `squeue` and `scontrol` scripts whose behaviour a file switches: the `slurmattributes`
//! processor keeps the last answer's labels, says so once in the log, and follows Slurm again
//! when it answers. The only test of this binary: it installs the process's log subscriber.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod slurm_fake;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use slurm_fake::{Fake, jobs_of_gpus};

/// Every event logged: (level, message).
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<(tracing::Level, String)>>>);

struct Message<'a>(&'a mut String);
impl tracing::field::Visit for Message<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            *self.0 = format!("{value:?}");
        }
    }
}

impl tracing::Subscriber for Logs {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let mut message = String::new();
        event.record(&mut Message(&mut message));
        let level = *event.metadata().level();
        self.0.lock().unwrap().push((level, message));
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

impl Logs {
    fn count(&self, level: tracing::Level, text: &str) -> usize {
        let logs = self.0.lock().unwrap();
        logs.iter().filter(|(l, m)| *l == level && m.contains(text)).count()
    }
}

const OUTAGE_LOG: &str = "Cannot ask Slurm for this node's jobs";

#[test]
fn hanging_or_failing_slurm_keeps_the_last_answer_says_so_once_and_recovers() {
    let logs = Logs::default();
    tracing::subscriber::set_global_default(logs.clone()).unwrap();
    let fake = Fake::new("logged");
    let mut p = fake.processor();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();

    assert_eq!(rt.block_on(p.refresh_now()).unwrap().slurm_jobs, Some(2));
    let answered = jobs_of_gpus(&mut p);
    assert_eq!(answered, ["3", "3", "4", ""]);

    for mode in ["hang", "hang", "fail", "fail"] {
        fake.mode(mode);
        let started = Instant::now();
        let report = rt.block_on(p.refresh_now()).unwrap();
        // A hanging command is killed at the 500 ms timeout.
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{mode}: {:?}",
            started.elapsed()
        );
        assert_eq!(report.slurm_jobs, None, "{mode}");
        assert_eq!(jobs_of_gpus(&mut p), answered, "{mode}: the last answer stands");
    }
    assert_eq!(
        logs.count(tracing::Level::WARN, OUTAGE_LOG),
        1,
        "said once: {:?}",
        logs.0.lock().unwrap()
    );

    // Back, and job 3 has ended meanwhile.
    fake.mode("ended");
    assert_eq!(rt.block_on(p.refresh_now()).unwrap().slurm_jobs, Some(1));
    assert_eq!(jobs_of_gpus(&mut p), ["", "", "4", ""]);
    assert_eq!(logs.count(tracing::Level::INFO, "Slurm answers again"), 1);
    assert_eq!(logs.count(tracing::Level::WARN, OUTAGE_LOG), 1);
}
