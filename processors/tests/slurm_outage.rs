//! Slurm hanging, failing and coming back, through the real command runner with stand-in
//! `squeue` and `scontrol` scripts whose behaviour a file switches: the `slurmattributes`
//! processor keeps the last answer's labels, says so once in the log, and follows Slurm again
//! when it answers. The only test of this binary: it installs the process's log subscriber.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nodetel_core::{Batch, Labels, Processor, Sample};
use nodetel_host::slurm::SlurmCli;
use nodetel_processors::slurmattributes::{SlurmAttributes, SlurmAttributesConfig};

const SQUEUE: &str = r#"#!/bin/sh
case "$(cat "$(dirname "$0")/mode")" in
  hang) exec sleep 30 ;;
  fail) echo "squeue: error: Unable to contact slurm controller (connect failure)" >&2; exit 1 ;;
  ended) printf '4|nobody|debug|RUNNING|other\n' ;;
  *) printf '3|root|gpu|RUNNING|nt-train\n4|nobody|debug|RUNNING|other\n' ;;
esac
"#;
const SCONTROL: &str = r#"#!/bin/sh
[ "$(cat "$(dirname "$0")/mode")" = hang ] && exec sleep 30
echo "JobId=3 JobName=nt-train UserId=root(0) Partition=gpu JobState=RUNNING NodeList=vm Nodes=vm CPU_IDs=0-1 Mem=0 GRES=gpu:2(IDX:0-1)"
echo "JobId=4 JobName=other UserId=nobody(65534) Partition=debug JobState=RUNNING NodeList=vm Nodes=vm CPU_IDs=2 Mem=0 GRES=gpu:1(IDX:2)"
"#;

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

/// Stand-in Slurm commands in a directory of their own, and an empty /proc.
struct Fake {
    dir: PathBuf,
}

impl Fake {
    fn new() -> Fake {
        let dir = std::env::temp_dir().join(format!("nodetel-slurm-outage-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("bin")).unwrap();
        std::fs::create_dir_all(dir.join("proc")).unwrap();
        for (name, text) in [("squeue", SQUEUE), ("scontrol", SCONTROL)] {
            let path = dir.join("bin").join(name);
            std::fs::write(&path, text).unwrap();
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let fake = Fake { dir };
        fake.mode("up");
        fake
    }

    fn mode(&self, mode: &str) {
        std::fs::write(self.dir.join("bin/mode"), mode).unwrap();
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The job id each of GPUs 0..3 carries ("" for none).
fn jobs_of_gpus(p: &mut SlurmAttributes<SlurmCli>) -> Vec<String> {
    let mut b = Batch::new();
    for gpu in ["0", "1", "2", "3"] {
        b.push(
            Labels::from_pairs([("__name__", "DCGM_FI_DEV_GPU_UTIL"), ("gpu", gpu)]).unwrap(),
            Sample::new(1, 1.0),
        );
    }
    p.process(&mut b);
    b.series
        .iter()
        .map(|s| s.labels.get("slurm_job_id").unwrap_or_default().to_owned())
        .collect()
}

const OUTAGE_LOG: &str = "Cannot ask Slurm for this node's jobs";

#[test]
fn hanging_or_failing_slurm_keeps_the_last_answer_says_so_once_and_recovers() {
    let logs = Logs::default();
    tracing::subscriber::set_global_default(logs.clone()).unwrap();
    let fake = Fake::new();
    let config = SlurmAttributesConfig {
        proc_root: fake.dir.join("proc"),
        ..SlurmAttributesConfig::default()
    };
    let cli = SlurmCli::new(Some(fake.dir.join("bin")), Duration::from_millis(500));
    let mut p = SlurmAttributes::new(&config, cli, "vm".to_owned()).unwrap();
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
