//! Fuzzes every parser of Slurm command output (`squeue`, `scontrol show job -d -o`,
//! `scontrol show node`, `scontrol listpids`, `sinfo`, `sdiag`) and of task environments read
//! from `/proc/<pid>/environ`: any input must parse or fail with an error, never panic.
//!
//! Run from `fuzz/`: `cargo +nightly fuzz run slurm -- -max_total_time=300`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nodetel_host::slurm::{gres, hostlist, job, kv, listpids, sdiag, sinfo, squeue, tasks};

fuzz_target!(|data: &[u8]| {
    // The environ parser takes raw bytes (NUL-separated); the command parsers take text.
    if let Some(env) = tasks::parse_environ(data) {
        let _ = (env.global_rank(), env.node_local_rank(), env.gpus(), env.bound_gpu());
    }
    let text = String::from_utf8_lossy(data);
    if let Ok(jobs) = job::parse(&text) {
        for j in &jobs {
            let _ = j.gpus_on("node-1");
        }
    }
    let _ = listpids::parse(&text);
    let _ = sdiag::parse(&text);
    let _ = squeue::parse_node_jobs(&text);
    let _ = squeue::split_lines(&text, '|', 5);
    let _ = sinfo::parse_node_rows(&text);
    let _ = sinfo::parse_gres_rows(&text);
    let _ = sinfo::parse_cpus_output(&text);
    for line in text.lines() {
        let fields = kv::fields(line);
        if let Some(v) = kv::get(&fields, "JobName") {
            let _ = kv::name_and_id(v);
        }
        let _ = gres::parse_list(line);
        let _ = gres::gpu_indices(line);
        let _ = gres::gpu_count(line);
        let _ = gres::parse_index_list(line);
        let _ = sinfo::parse_cpus(line);
        let _ = hostlist::contains(line, "node-1");
        let _ = hostlist::expand(line, 256);
    }
});
