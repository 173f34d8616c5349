//! `scripts/gpu-check` against test doubles of `nvidia-smi` and `nodetel once`: matching values
//! pass, a value outside its tolerance or a missing series fails, and a machine without
//! nvidia-smi is told so.

// Test helpers may unwrap: a failure there is a test failure.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const NVIDIA_SMI: &str = r#"#!/usr/bin/env bash
[[ "$1" == "-L" ]] && { echo "GPU 0: NVIDIA H200"; exit 0; }
case "${1#--query-gpu=}" in
  index,uuid,name,pci.bus_id) echo "0, GPU-abc, NVIDIA H200, 00000000:18:00.0" ;;
  index,clocks.sm) echo "0, 1900" ;;
  index,temperature.gpu) echo "0, ${GPU_TEMP:-40}" ;;
  index,power.draw) echo "0, 120.50" ;;
  index,memory.used) echo "0, 1000" ;;
  index,ecc.errors.corrected.volatile.total) echo "0, [N/A]" ;;
  *) echo "Field is not a valid field to query." >&2; exit 2 ;;
esac
"#;

const SERIES: &str = r#"# HELP DCGM_FI_DEV_GPU_TEMP GPU temperature (in C).
# TYPE DCGM_FI_DEV_GPU_TEMP gauge
DCGM_FI_DEV_GPU_TEMP{Hostname="h",UUID="GPU-abc",device="nvidia0",gpu="0",modelName="NVIDIA H200",pci_bus_id="00000000:18:00.0"} 41 1764371234000
DCGM_FI_DEV_SM_CLOCK{Hostname="h",UUID="GPU-abc",device="nvidia0",gpu="0",modelName="NVIDIA H200",pci_bus_id="00000000:18:00.0"} 1980 1764371234000
DCGM_FI_DEV_POWER_USAGE{gpu="0"} 118.25 1764371234000
DCGM_FI_DEV_FB_USED{gpu="0"} 1001 1764371234000
"#;

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/gpu-check")
}

fn write_exe(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// Runs the script with the doubles in `dir`; `series` is what `nodetel once` prints.
fn run(dir: &Path, series: &str, env: &[(&str, &str)], with_smi: bool) -> Output {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    if with_smi {
        write_exe(&bin.join("nvidia-smi"), NVIDIA_SMI);
    }
    std::fs::write(dir.join("series.prom"), series).unwrap();
    let nodetel = dir.join("nodetel");
    write_exe(
        &nodetel,
        &format!("#!/bin/sh\ncat '{}'\n", dir.join("series.prom").display()),
    );
    let path = format!("{}:/usr/bin:/bin", bin.display());
    let mut cmd = Command::new("bash");
    cmd.arg(script()).env("PATH", path).env("NODETEL_BIN", &nodetel);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn values_within_tolerance_pass() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(dir.path(), SERIES, &[], true);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(t.contains("DCGM_FI_DEV_GPU_TEMP"), "{t}");
    assert!(t.contains("skipped (nvidia-smi has no"), "{t}");
    assert!(t.contains("skipped (not available)"), "{t}");
}

#[test]
fn a_value_outside_its_tolerance_fails() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(dir.path(), SERIES, &[("GPU_TEMP", "50")], true);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(
        t.lines()
            .any(|l| l.contains("DCGM_FI_DEV_GPU_TEMP") && l.contains("MISMATCH")),
        "{t}"
    );
}

#[test]
fn a_missing_series_fails() {
    let dir = tempfile::tempdir().unwrap();
    let series: String = SERIES
        .lines()
        .filter(|l| !l.starts_with("DCGM_FI_DEV_FB_USED"))
        .map(|l| format!("{l}\n"))
        .collect();
    let out = run(dir.path(), &series, &[], true);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(t.contains("MISSING in nodetel"), "{t}");
}

#[test]
fn without_nvidia_smi_it_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(dir.path(), SERIES, &[], false);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("nvidia-smi not found"), "{}", text(&out));
}
