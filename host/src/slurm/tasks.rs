//! Slurm task processes on this node, found through `/proc/<pid>/environ`: which job, step,
//! rank and GPUs each process runs with.
//!
//! The environment is the one the process was started with; Slurm sets it for every task and
//! children inherit it, so one read gives the job, rank and GPU binding. It needs root (or the
//! same uid); processes whose environment cannot be read are counted, not guessed.

use std::io::Read;
use std::path::Path;

use super::gres::parse_index_list;

/// What a task's environment says.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TaskEnv {
    /// `SLURM_JOB_ID`.
    pub job_id: String,
    /// `SLURM_STEP_ID` (absent in the batch step).
    pub step_id: Option<String>,
    /// `SLURM_PROCID`: the global task id.
    pub procid: Option<u32>,
    /// `SLURM_LOCALID`: the task id on this node.
    pub localid: Option<u32>,
    /// `RANK`, set by launchers such as torchrun.
    pub rank: Option<u32>,
    /// `LOCAL_RANK`, set by launchers such as torchrun.
    pub local_rank: Option<u32>,
    /// `SLURM_STEP_GPUS`: global GPU indices of the step on this node.
    pub step_gpus: Option<Vec<u32>>,
    /// `SLURM_JOB_GPUS`: global GPU indices of the job on this node.
    pub job_gpus: Option<Vec<u32>>,
    /// `CUDA_VISIBLE_DEVICES` as written (indices, renumbered under cgroup device confinement,
    /// or UUIDs).
    pub cuda_visible_devices: Option<String>,
    /// `SLURM_JOB_NAME`.
    pub job_name: Option<String>,
    /// `SLURM_JOB_USER`.
    pub job_user: Option<String>,
    /// `SLURM_JOB_PARTITION`.
    pub partition: Option<String>,
}

impl TaskEnv {
    /// The global rank: `RANK` when a launcher set it (it is per worker process), else
    /// `SLURM_PROCID`.
    pub fn global_rank(&self) -> Option<u32> {
        self.rank.or(self.procid)
    }

    /// The local rank: `LOCAL_RANK` when set, else `SLURM_LOCALID`.
    pub fn node_local_rank(&self) -> Option<u32> {
        self.local_rank.or(self.localid)
    }

    /// The global GPU indices this process may use: the step's, else the job's, else numeric
    /// `CUDA_VISIBLE_DEVICES` (global only without device confinement).
    pub fn gpus(&self) -> Vec<u32> {
        if let Some(g) = self.step_gpus.as_ref().or(self.job_gpus.as_ref()) {
            return g.clone();
        }
        match &self.cuda_visible_devices {
            Some(cvd) if cvd.split(',').all(|d| d.trim().parse::<u32>().is_ok()) => parse_index_list(cvd),
            _ => Vec::new(),
        }
    }

    /// The one GPU this process drives, if it can be told: its only GPU, or the
    /// `LOCAL_RANK`-th of several (the launcher convention `cuda:LOCAL_RANK`).
    pub fn bound_gpu(&self) -> Option<u32> {
        let gpus = self.gpus();
        match gpus.len() {
            0 => None,
            1 => Some(gpus[0]),
            n => self.local_rank.filter(|&l| (l as usize) < n).map(|l| gpus[l as usize]),
        }
    }
}

fn parse_u32(v: &[u8]) -> Option<u32> {
    std::str::from_utf8(v).ok()?.trim().parse().ok()
}

fn text(v: &[u8]) -> Option<String> {
    let s = String::from_utf8_lossy(v);
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_owned())
}

/// Parses a NUL-separated environment block. `None` when it holds no `SLURM_JOB_ID`.
pub fn parse_environ(block: &[u8]) -> Option<TaskEnv> {
    let mut env = TaskEnv::default();
    let mut found = false;
    for var in block.split(|&b| b == 0) {
        let Some(eq) = var.iter().position(|&b| b == b'=') else {
            continue;
        };
        let (key, value) = (&var[..eq], &var[eq + 1..]);
        match key {
            b"SLURM_JOB_ID" => {
                env.job_id = text(value)?;
                found = true;
            }
            b"SLURM_STEP_ID" => env.step_id = text(value),
            b"SLURM_PROCID" => env.procid = parse_u32(value),
            b"SLURM_LOCALID" => env.localid = parse_u32(value),
            b"RANK" => env.rank = parse_u32(value),
            b"LOCAL_RANK" => env.local_rank = parse_u32(value),
            b"SLURM_STEP_GPUS" => env.step_gpus = text(value).map(|v| parse_index_list(&v)),
            b"SLURM_JOB_GPUS" => env.job_gpus = text(value).map(|v| parse_index_list(&v)),
            b"CUDA_VISIBLE_DEVICES" => env.cuda_visible_devices = text(value),
            b"SLURM_JOB_NAME" => env.job_name = text(value),
            b"SLURM_JOB_USER" => env.job_user = text(value),
            b"SLURM_JOB_PARTITION" => env.partition = text(value),
            _ => {}
        }
    }
    found.then_some(env)
}

/// A process with a Slurm task environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskProcess {
    /// The process id.
    pub pid: u32,
    /// Its environment.
    pub env: TaskEnv,
}

/// The result of one walk over `/proc`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskScan {
    /// Processes that carry `SLURM_JOB_ID`.
    pub tasks: Vec<TaskProcess>,
    /// Processes whose environment could not be read (permission denied: not root).
    pub unreadable: usize,
    /// Processes looked at.
    pub scanned: usize,
}

/// Walks `<proc_root>/<pid>/environ` for every process. Processes that exit during the walk
/// are skipped. `buf` is reused between walks.
pub fn scan(proc_root: &Path, buf: &mut Vec<u8>) -> std::io::Result<TaskScan> {
    let mut out = TaskScan::default();
    let own_pid = std::process::id();
    for entry in std::fs::read_dir(proc_root)? {
        let Ok(entry) = entry else { continue };
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        // Init is never a Slurm task, and container runtimes often deny its environ even to
        // root; counting it would report a permission problem that does not matter.
        if pid == own_pid || pid == 1 {
            continue;
        }
        out.scanned += 1;
        buf.clear();
        let read = std::fs::File::open(entry.path().join("environ")).and_then(|mut f| f.read_to_end(buf));
        match read {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                out.unreadable += 1;
                continue;
            }
            Err(_) => continue,
        }
        // Cheap filter first: most processes are not Slurm tasks.
        if memchr_find(buf, b"SLURM_JOB_ID=").is_none() {
            continue;
        }
        if let Some(env) = parse_environ(buf) {
            out.tasks.push(TaskProcess { pid, env });
        }
    }
    out.tasks.sort_by_key(|t| t.pid);
    Ok(out)
}

fn memchr_find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_file(text: &str) -> Vec<u8> {
        text.lines().flat_map(|l| l.bytes().chain([0])).collect()
    }

    #[test]
    fn recorded_task_environments_parse() {
        let e = parse_environ(&env_file(include_str!(
            "../../testdata/slurm/proc/job5.step0.rank1.environ.txt"
        )))
        .unwrap();
        assert_eq!(e.job_id, "5");
        assert_eq!((e.procid, e.localid, e.global_rank()), (Some(1), Some(1), Some(1)));
        assert_eq!(e.step_gpus, Some(vec![3]));
        assert_eq!(e.bound_gpu(), Some(3));
        assert_eq!(
            (e.job_name.as_deref(), e.job_user.as_deref(), e.partition.as_deref()),
            (Some("nt-infer"), Some("nobody"), Some("debug"))
        );
        let e = parse_environ(&env_file(include_str!(
            "../../testdata/slurm/proc-4rank/rank2.environ.txt"
        )))
        .unwrap();
        assert_eq!((e.global_rank(), e.bound_gpu()), (Some(2), Some(2)));
    }

    #[test]
    fn batch_step_with_two_gpus_binds_no_single_gpu() {
        let e = parse_environ(&env_file(include_str!(
            "../../testdata/slurm/proc/job3.stepbatch.rank0.environ.txt"
        )))
        .unwrap();
        assert_eq!(e.step_id, None);
        assert_eq!(e.gpus(), [0, 1]);
        assert_eq!(e.bound_gpu(), None);
    }

    #[test]
    fn launcher_ranks_override_slurm_ids_and_pick_the_gpu() {
        let e =
            parse_environ(b"SLURM_JOB_ID=7\0SLURM_PROCID=1\0RANK=9\0LOCAL_RANK=2\0SLURM_STEP_GPUS=4,5,6,7\0").unwrap();
        assert_eq!(
            (e.global_rank(), e.node_local_rank(), e.bound_gpu()),
            (Some(9), Some(2), Some(6))
        );
    }

    #[test]
    fn non_slurm_and_garbage_environments_are_ignored() {
        assert_eq!(parse_environ(b"PATH=/bin\0HOME=/\0"), None);
        assert_eq!(parse_environ(b"SLURM_JOB_ID=\0"), None);
        for junk in [
            &b"="[..],
            b"\0\0",
            b"SLURM_JOB_ID",
            b"SLURM_JOB_ID=1\0SLURM_STEP_GPUS=x-\xff",
        ] {
            let _ = parse_environ(junk);
        }
        let e = parse_environ(b"SLURM_JOB_ID=1\0CUDA_VISIBLE_DEVICES=GPU-abc\0").unwrap();
        assert!(e.gpus().is_empty(), "UUIDs are not indices");
    }

    #[test]
    fn a_fake_proc_tree_is_scanned() {
        let dir = tempfile::tempdir().unwrap();
        for (pid, env) in [
            ("10", &b"SLURM_JOB_ID=3\0SLURM_PROCID=0\0"[..]),
            ("11", b"PATH=/bin\0"),
            ("x", b""),
        ] {
            std::fs::create_dir(dir.path().join(pid)).unwrap();
            std::fs::write(dir.path().join(pid).join("environ"), env).unwrap();
        }
        std::fs::create_dir(dir.path().join("12")).unwrap();
        let scan = scan(dir.path(), &mut Vec::new()).unwrap();
        assert_eq!(scan.tasks.len(), 1);
        assert_eq!(scan.tasks[0].pid, 10);
        assert_eq!(scan.scanned, 3);
    }
}
