#!/usr/bin/env python3
"""Checks the example configs in deploy/configs/ without a nodetel binary.

Each must be YAML in the OpenTelemetry Collector layout whose pipelines and extensions only name
components the file defines, whose component types are ones nodetel has (or has in progress),
whose listeners are on loopback only, and whose environment variables are all explained in the
file's header comment. The HyperPod ones must keep the job names the dashboards select on.

`nodetel validate` (scripts/check-deploy with NODETEL_BIN) checks the same files against the real
config structs; this check runs where no binary is built.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]

TYPES = {
    "receivers": {"node", "prometheus", "gpu", "slurm", "otlp"},
    "processors": {"slurmattributes", "batch"},
    "exporters": {"prometheus", "prometheusremotewrite", "debug"},
    "extensions": {"sigv4auth", "health_check"},
}
# Job labels HyperPod's dashboards select on, per receiver id, where the config relies on them.
EXPECTED_JOBS = {
    "worker.yaml": {"node": "node_exporter", "node/efa": "efa_exporter", "gpu": "dcgm_exporter"},
    "controller.yaml": {"node": "node_exporter"},
}
DEFAULT_JOBS = {"node": "node_exporter", "gpu": "dcgm_exporter", "slurm": "slurm_exporter"}


def listen_addresses(node, path=""):
    """(path, value) of every `endpoint` under receivers/extensions (servers, not clients)."""
    if isinstance(node, dict):
        for k, v in node.items():
            p = f"{path}.{k}" if path else str(k)
            if k == "endpoint" and isinstance(v, str):
                yield p, v
            else:
                yield from listen_addresses(v, p)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from listen_addresses(v, f"{path}[{i}]")


def check(path: Path) -> list[str]:
    problems: list[str] = []
    text = path.read_text(encoding="utf-8")
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        return [f"{path.name}: not YAML: {e}"]
    if not isinstance(doc, dict):
        return [f"{path.name}: not a mapping"]
    unknown = set(doc) - {"receivers", "processors", "exporters", "extensions", "service"}
    if unknown:
        problems.append(f"{path.name}: unknown top-level keys {sorted(unknown)}")

    defined: dict[str, set[str]] = {}
    for kind, types in TYPES.items():
        defined[kind] = set((doc.get(kind) or {}).keys())
        for cid in defined[kind]:
            ctype = cid.split("/", 1)[0]
            if ctype not in types:
                problems.append(f"{path.name}: {kind}.{cid}: type {ctype!r} is not a nodetel {kind[:-1]} type")

    service = doc.get("service") or {}
    for ext in service.get("extensions") or []:
        if ext not in defined["extensions"]:
            problems.append(f"{path.name}: service.extensions names {ext!r}, which is not defined")
    pipelines = service.get("pipelines") or {}
    if not pipelines:
        problems.append(f"{path.name}: no pipelines")
    used: dict[str, set[str]] = {k: set() for k in ("receivers", "processors", "exporters")}
    for name, pipeline in pipelines.items():
        for kind in used:
            for cid in (pipeline or {}).get(kind) or []:
                used[kind].add(cid)
                if cid not in defined[kind]:
                    problems.append(f"{path.name}: pipeline {name} names {kind[:-1]} {cid!r}, which is not defined")
    for kind in used:
        for cid in sorted(defined[kind] - used[kind]):
            problems.append(f"{path.name}: {kind}.{cid} is defined but in no pipeline")

    for cid, cfg in (doc.get("exporters") or {}).items():
        auth = ((cfg or {}).get("auth") or {}).get("authenticator")
        if auth and auth not in (service.get("extensions") or []):
            problems.append(f"{path.name}: exporters.{cid}.auth names {auth!r}, which service.extensions lacks")

    for section in ("receivers", "extensions"):
        for p, addr in listen_addresses(doc.get(section) or {}, section):
            if not (addr.startswith("127.0.0.1:") or addr.startswith("localhost:") or addr.startswith("[::1]:")):
                problems.append(f"{path.name}: {p} listens on {addr!r}; keep listeners on loopback")
    telemetry = ((service.get("telemetry") or {}).get("metrics") or {}).get("address")
    if telemetry and not telemetry.startswith("127.0.0.1:"):
        problems.append(f"{path.name}: service.telemetry.metrics.address {telemetry!r} is not on loopback")

    header = "\n".join(line for line in text.splitlines() if line.startswith("#"))
    for var in sorted(set(re.findall(r"\$\{(?:env:)?([A-Za-z_][A-Za-z0-9_]*)", text))):
        if var not in header:
            problems.append(f"{path.name}: uses ${{{var}}} without explaining it in the header comment")

    for cid, job in EXPECTED_JOBS.get(path.name, {}).items():
        cfg = (doc.get("receivers") or {}).get(cid)
        if cfg is None:
            problems.append(f"{path.name}: receivers.{cid} is missing")
            continue
        actual = (cfg or {}).get("job", DEFAULT_JOBS.get(cid.split("/")[0]))
        if actual != job:
            problems.append(f"{path.name}: receivers.{cid} has job {actual!r}; dashboards expect {job!r}")
    return problems


def main() -> int:
    files = sorted((REPO / "deploy" / "configs").glob("*.yaml"))
    if not files:
        print("check_configs: no configs in deploy/configs", file=sys.stderr)
        return 1
    problems = [p for f in files for p in check(f)]
    for p in problems:
        print(p)
    print(f"check_configs: {len(files)} configs: {'ok' if not problems else f'{len(problems)} problem(s)'}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
