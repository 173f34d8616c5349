#!/usr/bin/env python3
"""Checks Grafana dashboards against what nodetel emits.

For each dashboard JSON given (default: dashboards/*.json) it checks that the file is valid JSON
with the fields Grafana needs, that panel ids are unique, that every query uses the dashboard's
data source variable and only variables the dashboard defines, and that every metric name in
every PromQL query (panel targets and template variable queries) is one docs/metrics.md lists.

docs/metrics.md names metrics in the first column of its tables, in backticks; `<...>` in a name
stands for any run of name characters (`node_memory_<Field>_bytes`).

Exit status 0 when everything checks out, 1 otherwise. Standard library only.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# PromQL words that look like names but are not metrics.
KEYWORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "offset", "bool", "and", "or", "unless",
    "atan2", "inf", "nan", "start", "end",
}
# Grafana's own variables.
BUILTIN_VARIABLES = {
    "__range", "__rate_interval", "__interval", "__interval_ms", "__range_s", "__range_ms", "__name",
    "__from", "__to", "__dashboard", "__user", "__org", "__timeFilter", "timeFilter",
}

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"


def known_metrics(metrics_md: Path) -> tuple[set[str], list[re.Pattern[str]]]:
    """Exact names and placeholder patterns from the first column of docs/metrics.md tables."""
    exact: set[str] = set()
    patterns: list[re.Pattern[str]] = []
    for line in metrics_md.read_text(encoding="utf-8").splitlines():
        m = re.match(r"^\|\s*`([^`]+)`", line)
        if not m:
            continue
        name = m.group(1)
        if "<" in name:
            regex = re.sub(r"<[^>]+>", "[a-zA-Z0-9_]+", re.escape(name).replace(r"\<", "<").replace(r"\>", ">"))
            patterns.append(re.compile(f"^{regex}$"))
        elif re.fullmatch(NAME, name):
            exact.add(name)
    return exact, patterns


def is_known(name: str, exact: set[str], patterns: list[re.Pattern[str]]) -> bool:
    return name in exact or any(p.match(name) for p in patterns)


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects, by name or by `__name__="..."`."""
    names: set[str] = set()
    # Grafana's label_values(query, label): the second argument is a label, not a metric.
    expr = re.sub(r"label_values\((.*),\s*" + NAME + r"\s*\)\s*$", r"\1", expr.strip())
    for m in re.finditer(r'__name__\s*=\s*"([^"$]+)"', expr):
        names.add(m.group(1))
    # Strings, label matchers, range and subquery brackets, and grouping clauses hold label names
    # and values, never metric names.
    stripped = re.sub(r'"(?:\\.|[^"\\])*"', '""', expr)
    stripped = re.sub(r"\{[^}]*\}", " ", stripped)
    stripped = re.sub(r"\[[^\]]*\]", " ", stripped)
    stripped = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", stripped)
    # Numbers (3.6e9, 1e9, 0x1f) before names, so their exponents are not read as names.
    stripped = re.sub(r"(?<![a-zA-Z0-9_:])(0x[0-9a-fA-F]+|\d+(\.\d*)?([eE][+-]?\d+)?)", " ", stripped)
    stripped = re.sub(r"\$\{?\w+\}?", " ", stripped)
    for m in re.finditer(NAME, stripped):
        word = m.group(0)
        following = stripped[m.end():].lstrip()
        if following.startswith("("):
            continue  # a function or aggregation
        if word.lower() in KEYWORDS:
            continue
        names.add(word)
    return names


def variables_used(text: str) -> set[str]:
    return {m.group(1) or m.group(2) for m in re.finditer(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)", text)}


def queries(dashboard: dict) -> list[tuple[str, str]]:
    """(where, PromQL) for every panel target and template variable query."""
    out: list[tuple[str, str]] = []

    def walk(panels: list[dict]) -> None:
        for panel in panels:
            for target in panel.get("targets", []):
                if "expr" in target:
                    out.append((f"panel {panel.get('id')} ({panel.get('title')!r}) target {target.get('refId')}",
                                target["expr"]))
            walk(panel.get("panels", []))

    walk(dashboard.get("panels", []))
    for var in dashboard.get("templating", {}).get("list", []):
        if var.get("type") == "query":
            q = var.get("query")
            text = q.get("query", "") if isinstance(q, dict) else (q or "")
            out.append((f"variable ${var.get('name')}", text))
    return out


def check(path: Path, exact: set[str], patterns: list[re.Pattern[str]]) -> list[str]:
    """Every problem in one dashboard file, each as a line naming where it is."""
    problems: list[str] = []
    try:
        dashboard = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        return [f"{path}: not valid JSON: {e}"]
    if not isinstance(dashboard, dict):
        return [f"{path}: the top level must be an object"]
    for key in ("title", "uid", "panels", "templating", "schemaVersion"):
        if key not in dashboard:
            problems.append(f"{path}: missing top-level key {key!r}")

    defined = {v.get("name") for v in dashboard.get("templating", {}).get("list", [])}
    datasource_vars = {v.get("name") for v in dashboard.get("templating", {}).get("list", [])
                       if v.get("type") == "datasource"}

    ids: dict[int, str] = {}

    def walk(panels: list[dict]) -> None:
        for panel in panels:
            where = f"{path}: panel {panel.get('id')} ({panel.get('title')!r})"
            pid = panel.get("id")
            if not isinstance(pid, int):
                problems.append(f"{where}: has no integer id")
            elif pid in ids:
                problems.append(f"{where}: id also used by {ids[pid]!r}")
            else:
                ids[pid] = str(panel.get("title"))
            if "gridPos" not in panel:
                problems.append(f"{where}: has no gridPos")
            if panel.get("type") != "row":
                uid = (panel.get("datasource") or {}).get("uid", "")
                if variables_used(uid).isdisjoint(datasource_vars):
                    problems.append(f"{where}: data source {uid!r} is not the dashboard's data source variable")
                if not panel.get("targets"):
                    problems.append(f"{where}: has no queries")
            walk(panel.get("panels", []))

    walk(dashboard.get("panels", []))

    for where, expr in queries(dashboard):
        if not expr.strip():
            problems.append(f"{path}: {where}: empty query")
            continue
        for var in variables_used(expr) - defined - BUILTIN_VARIABLES:
            problems.append(f"{path}: {where}: uses ${var}, which the dashboard does not define")
        for name in sorted(metric_names(expr)):
            if not is_known(name, exact, patterns):
                problems.append(f"{path}: {where}: {name} is not a metric nodetel emits (docs/metrics.md)")
    # Panel titles and legends may use variables too.
    text = json.dumps(dashboard.get("panels", []))
    for var in variables_used(text) - defined - BUILTIN_VARIABLES:
        problems.append(f"{path}: panels use ${var}, which the dashboard does not define")
    return problems


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dashboards", nargs="*", type=Path, help="dashboard JSON files (default: dashboards/*.json)")
    parser.add_argument("--metrics", type=Path, default=REPO / "docs" / "metrics.md",
                        help="the metric list (default: docs/metrics.md)")
    args = parser.parse_args(argv)
    files = args.dashboards or sorted((REPO / "dashboards").glob("*.json"))
    if not files:
        print("check_dashboard: no dashboards found", file=sys.stderr)
        return 1
    try:
        exact, patterns = known_metrics(args.metrics)
    except OSError as e:
        print(f"check_dashboard: cannot read the metric list: {e}", file=sys.stderr)
        return 1
    if not exact:
        print(f"check_dashboard: {args.metrics} lists no metrics", file=sys.stderr)
        return 1
    problems: list[str] = []
    total = 0
    for f in files:
        problems += check(f, exact, patterns)
        try:
            total += len(queries(json.loads(f.read_text(encoding="utf-8"))))
        except (OSError, json.JSONDecodeError):
            pass
    for p in problems:
        print(p)
    status = "ok" if not problems else f"{len(problems)} problem(s)"
    print(f"check_dashboard: {len(files)} dashboard(s), {total} queries, "
          f"{len(exact)} metric names and {len(patterns)} patterns known: {status}")
    return 0 if not problems else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
