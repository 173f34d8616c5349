//! Stand-in `squeue` and `scontrol` scripts whose behaviour a file switches (up, hang, fail,
//! ended), an empty fake /proc with an optional task of job 3, and a `slurmattributes` processor
//! wired to them through the real command runner. Shared by the processor's unit tests and
//! `tests/slurm_outage.rs`.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::time::Duration;

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

pub struct Fake {
    pub dir: std::path::PathBuf,
}

impl Fake {
    pub fn new(name: &str) -> Fake {
        let dir = std::env::temp_dir().join(format!("nodetel-slurm-outage-{name}-{}", std::process::id()));
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

    pub fn mode(&self, mode: &str) {
        std::fs::write(self.dir.join("bin/mode"), mode).unwrap();
    }

    /// A task of job 3 on GPU 0, visible in the fake /proc.
    pub fn task(&self, present: bool) {
        let pid = self.dir.join("proc/4242");
        if present {
            std::fs::create_dir_all(&pid).unwrap();
            let env = "SLURM_JOB_ID=3\0SLURM_STEP_ID=0\0SLURM_PROCID=0\0SLURM_LOCALID=0\0SLURM_STEP_GPUS=0\0CUDA_VISIBLE_DEVICES=0\0";
            std::fs::write(pid.join("environ"), env).unwrap();
        } else {
            std::fs::remove_dir_all(&pid).unwrap();
        }
    }

    pub fn processor(&self) -> SlurmAttributes<SlurmCli> {
        let config = SlurmAttributesConfig {
            proc_root: self.dir.join("proc"),
            ..SlurmAttributesConfig::default()
        };
        let cli = SlurmCli::new(Some(self.dir.join("bin")), Duration::from_millis(500));
        SlurmAttributes::new(&config, cli, "vm".to_owned()).unwrap()
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The job id each of GPUs 0..3 carries ("" for none).
pub fn jobs_of_gpus(p: &mut SlurmAttributes<SlurmCli>) -> Vec<String> {
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
