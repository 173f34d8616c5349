#!/usr/bin/env python3
"""Tests of check_dashboard.py: what it counts as a metric name, and that it catches the mistakes
it exists for (unknown metrics, undefined variables, duplicate ids, broken JSON)."""

from __future__ import annotations

import json
import sys
import tempfile
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import check_dashboard as cd  # noqa: E402

METRICS_MD = """
| metric | labels |
| --- | --- |
| `DCGM_FI_DEV_GPU_UTIL` | gpu |
| `DCGM_FI_DEV_FB_USED` | gpu |
| `nodetel_gpu_xid_events_total` | xid |
| `node_memory_<Field>_bytes` | |
Not a table row: `not_a_metric`.
"""


def dashboard(exprs: list[str], variables: list[str] = ("job_id",), panel_ids: list[int] | None = None) -> dict:
    ds = {"type": "prometheus", "uid": "${datasource}"}
    ids = panel_ids or list(range(1, len(exprs) + 1))
    return {
        "title": "t", "uid": "u", "schemaVersion": 39,
        "templating": {"list": [{"name": "datasource", "type": "datasource", "query": "prometheus"}]
                       + [{"name": v, "type": "custom", "query": "a,b"} for v in variables]},
        "panels": [{"id": i, "type": "timeseries", "title": f"p{i}", "datasource": ds,
                    "gridPos": {"h": 1, "w": 1, "x": 0, "y": 0},
                    "targets": [{"refId": "A", "datasource": ds, "expr": e}]} for i, e in zip(ids, exprs)],
    }


class MetricNames(unittest.TestCase):
    def test_functions_groupings_matchers_ranges_and_numbers_are_not_metric_names(self):
        expr = ('sum by (rank, instance) (increase(nodetel_gpu_xid_events_total{slurm_job_id="$job_id", '
                'rank=~"a|b"}[$__rate_interval])) / 3.6e9 > bool 0')
        self.assertEqual(cd.metric_names(expr), {"nodetel_gpu_xid_events_total"})

    def test_every_operand_of_a_binary_expression_is_found(self):
        expr = "DCGM_FI_DEV_FB_USED{a=\"1\"} / (DCGM_FI_DEV_FB_USED + DCGM_FI_DEV_FB_FREE) * on(gpu) group_left(x) up"
        self.assertEqual(cd.metric_names(expr), {"DCGM_FI_DEV_FB_USED", "DCGM_FI_DEV_FB_FREE", "up"})

    def test_name_matchers_count_and_variables_do_not(self):
        self.assertEqual(cd.metric_names('{__name__="foo_total", job="x"}'), {"foo_total"})
        self.assertEqual(cd.metric_names('{__name__="$training_metric"}'), set())

    def test_label_values_takes_the_metric_from_its_first_argument_only(self):
        self.assertEqual(cd.metric_names('label_values(DCGM_FI_DEV_GPU_UTIL{slurm_job_id!=""}, slurm_job_id)'),
                         {"DCGM_FI_DEV_GPU_UTIL"})
        self.assertEqual(cd.metric_names('label_values({rank!=""}, __name__)'), set())


class Check(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        md = Path(self.dir.name) / "metrics.md"
        md.write_text(METRICS_MD)
        self.exact, self.patterns = cd.known_metrics(md)

    def tearDown(self):
        self.dir.cleanup()

    def run_check(self, dash) -> list[str]:
        path = Path(self.dir.name) / "d.json"
        path.write_text(dash if isinstance(dash, str) else json.dumps(dash))
        return cd.check(path, self.exact, self.patterns)

    def test_the_metric_list_is_read_from_table_rows_only(self):
        self.assertIn("DCGM_FI_DEV_GPU_UTIL", self.exact)
        self.assertNotIn("not_a_metric", self.exact)
        self.assertTrue(cd.is_known("node_memory_MemFree_bytes", self.exact, self.patterns))
        self.assertFalse(cd.is_known("node_memory_MemFree", self.exact, self.patterns))

    def test_a_dashboard_of_known_metrics_passes(self):
        self.assertEqual(self.run_check(dashboard(['avg(DCGM_FI_DEV_GPU_UTIL{slurm_job_id="$job_id"})'])), [])

    def test_an_unknown_metric_is_reported_with_its_panel(self):
        problems = self.run_check(dashboard(["DCGM_FI_DEV_GPU_UTILISATION"]))
        self.assertEqual(len(problems), 1, problems)
        self.assertIn("DCGM_FI_DEV_GPU_UTILISATION is not a metric nodetel emits", problems[0])
        self.assertIn("panel 1", problems[0])

    def test_an_undefined_variable_is_reported(self):
        problems = self.run_check(dashboard(['DCGM_FI_DEV_GPU_UTIL{rank="$rnak"}']))
        self.assertTrue(any("$rnak" in p for p in problems), problems)

    def test_duplicate_panel_ids_are_reported(self):
        problems = self.run_check(dashboard(["DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_FB_USED"], panel_ids=[7, 7]))
        self.assertTrue(any("id also used" in p for p in problems), problems)

    def test_broken_json_is_reported(self):
        problems = self.run_check('{"title": "x",')
        self.assertEqual(len(problems), 1)
        self.assertIn("not valid JSON", problems[0])

    def test_the_shipped_dashboard_passes_against_the_shipped_metric_list(self):
        exact, patterns = cd.known_metrics(cd.REPO / "docs" / "metrics.md")
        for path in sorted((cd.REPO / "dashboards").glob("*.json")):
            self.assertEqual(cd.check(path, exact, patterns), [], path)


if __name__ == "__main__":
    unittest.main()
