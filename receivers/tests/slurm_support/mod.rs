//! A private single-node Slurm (munged, slurmctld, slurmd, four fake GPUs) for the Slurm tests,
//! started by `scripts/slurm/up.sh` in a work dir of its own and stopped by `down.sh` when
//! the handle drops. Shared by the receiver and processor test binaries.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// A running cluster.
pub struct Cluster {
    dir: PathBuf,
    scripts: PathBuf,
    /// `SLURM_CONF` of the cluster.
    pub conf: PathBuf,
    /// The node's name (`hostname -s`).
    pub node: String,
}

fn which(program: &str) -> bool {
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|p| p.join(program).is_file()))
        .unwrap_or(false)
}

impl Cluster {
    /// Starts a cluster on the given ports, or returns `None` (with the reason printed) where
    /// Slurm cannot run here: not root, or the packages are missing. Under CI that is a failure.
    pub fn start(name: &str, ctld_port: u16, slurmd_port: u16) -> Option<Cluster> {
        let uid = std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("Uid:"))
                    .map(|l| l.split_whitespace().nth(1).unwrap_or("").to_owned())
            })
            .unwrap_or_default();
        let missing: Vec<_> = ["slurmctld", "slurmd", "munged", "srun"]
            .into_iter()
            .filter(|p| !which(p))
            .collect();
        let why = if uid != "0" {
            Some("the Slurm daemons need root".to_owned())
        } else if !missing.is_empty() {
            Some(format!("not installed: {missing:?} (see scripts/deps/apt.txt)"))
        } else {
            None
        };
        if let Some(why) = why {
            assert!(
                std::env::var_os("CI").is_none(),
                "Slurm tests cannot run under CI: {why}"
            );
            eprintln!("skipping the real-Slurm test: {why}");
            return None;
        }
        // The workspace root holds scripts/; crates' tests run one level below it.
        let scripts = Path::new(env!("CARGO_MANIFEST_DIR"))
            .ancestors()
            .map(|d| d.join("scripts/slurm"))
            .find(|d| d.join("up.sh").is_file())
            .expect("scripts/slurm/up.sh in the workspace");
        // Under the system temp dir rather than the target dir: jobs of another user (nobody)
        // must reach slurm.conf and the scratch files, whatever the checkout's permissions.
        let dir = std::env::temp_dir().join(format!("nodetel-slurm-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let out = Command::new(scripts.join("up.sh"))
            .arg(&dir)
            .env("SLURM_UP_CTLD_PORT", ctld_port.to_string())
            .env("SLURM_UP_SLURMD_PORT", slurmd_port.to_string())
            .env("SLURM_UP_CPUS", "8")
            .env("SLURM_UP_GPUS", "4")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            // up.sh already stopped what it started; only the work dir is left.
            let _ = std::fs::remove_dir_all(&dir);
            panic!("up.sh failed: {}{}", stdout, String::from_utf8_lossy(&out.stderr));
        }
        let var = |key: &str| {
            stdout
                .lines()
                .find_map(|l| l.strip_prefix(&format!("export {key}=")))
                .unwrap_or_else(|| panic!("up.sh printed no {key}: {stdout}"))
                .to_owned()
        };
        Some(Cluster {
            conf: PathBuf::from(var("SLURM_CONF")),
            node: var("SLURM_UP_NODE"),
            dir,
            scripts,
        })
    }

    /// A Slurm command aimed at this cluster.
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.env("SLURM_CONF", &self.conf).current_dir(&self.dir);
        c
    }

    /// Runs a Slurm command and returns its output; panics when it fails.
    pub fn run(&self, program: &str, args: &[&str]) -> String {
        let out = self.command(program).args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{program} {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The pid of one of the cluster's daemons (`slurmctld`, `slurmd`, `munged`).
    pub fn daemon_pid(&self, daemon: &str) -> i32 {
        let file = self.dir.join("run").join(format!("{daemon}.pid"));
        std::fs::read_to_string(&file).unwrap().trim().parse().unwrap()
    }

    /// A scratch directory inside the work dir.
    pub fn scratch(&self, name: &str) -> PathBuf {
        let p = self.dir.join("scratch").join(name);
        std::fs::create_dir_all(&p).unwrap();
        for d in [self.dir.join("scratch"), p.clone()] {
            std::fs::set_permissions(&d, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
        }
        p
    }

    /// Waits until the job named `name` is in state `state` and returns its id.
    pub fn wait_state(&self, name: &str, state: &str, timeout: Duration) -> String {
        let started = Instant::now();
        loop {
            let out = self.run("squeue", &["-h", "-n", name, "-o", "%A|%T"]);
            if let Some((id, _)) = out.lines().filter_map(|l| l.split_once('|')).find(|(_, s)| *s == state) {
                return id.to_owned();
            }
            assert!(
                started.elapsed() < timeout,
                "job {name} not {state} after {timeout:?}: {out:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until no job of this cluster is left (cancelled jobs have gone).
    pub fn wait_empty(&self, timeout: Duration) {
        let started = Instant::now();
        while !self.run("squeue", &["-h", "-o", "%A"]).trim().is_empty() {
            assert!(started.elapsed() < timeout, "jobs still listed after {timeout:?}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let status = Command::new(self.scripts.join("down.sh")).arg(&self.dir).output();
        if let Some(out) = status.ok().filter(|o| !o.status.success()) {
            eprintln!("down.sh failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Polls `f` until it returns `Some`, or panics after `timeout`.
pub fn eventually<T>(timeout: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> (T, Duration) {
    let started = Instant::now();
    loop {
        if let Some(v) = f() {
            return (v, started.elapsed());
        }
        assert!(started.elapsed() < timeout, "{what} did not happen within {timeout:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}
