#!/usr/bin/env python3
"""Tests of check_configs.py: it must pass a sound config and name each kind of mistake it exists
to catch (undefined or unused components, foreign types, listeners off loopback, unexplained
environment variables, changed job labels)."""

from __future__ import annotations

import sys
import tempfile
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import check_configs as cc  # noqa: E402

SOUND = """# A worker.
#   AMP_REMOTE_WRITE_URL  where to send
receivers:
  node: {}
  node/efa: {job: efa_exporter, collectors: {disable_defaults: true, enabled: [amazonefa]}}
  gpu: {}
  otlp: {protocols: {grpc: {endpoint: "127.0.0.1:4317"}}}
exporters:
  prometheusremotewrite: {endpoint: "${env:AMP_REMOTE_WRITE_URL}", auth: {authenticator: sigv4auth}}
extensions:
  sigv4auth: {}
service:
  extensions: [sigv4auth]
  telemetry: {metrics: {address: "127.0.0.1:8888"}}
  pipelines:
    metrics: {receivers: [node, node/efa, gpu, otlp], exporters: [prometheusremotewrite]}
"""


class CheckConfigs(unittest.TestCase):
    def check(self, text: str, name: str = "worker.yaml") -> list[str]:
        with tempfile.TemporaryDirectory() as d:
            path = Path(d) / name
            path.write_text(text)
            return cc.check(path)

    def test_a_sound_config_passes(self):
        self.assertEqual(self.check(SOUND), [])

    def test_a_pipeline_naming_an_undefined_component_is_reported(self):
        problems = self.check(SOUND.replace("otlp]", "otlp, nvml]"))
        self.assertEqual(problems, ["worker.yaml: pipeline metrics names receiver 'nvml', which is not defined"])

    def test_a_component_in_no_pipeline_is_reported(self):
        problems = self.check(SOUND.replace("[node, node/efa, gpu, otlp]", "[node, node/efa, gpu]"))
        self.assertEqual(problems, ["worker.yaml: receivers.otlp is defined but in no pipeline"])

    def test_a_type_nodetel_does_not_have_is_reported(self):
        problems = self.check(SOUND.replace("  gpu: {}\n", "  hostmetrics: {}\n").replace(", gpu,", ", hostmetrics,"))
        self.assertTrue(any("type 'hostmetrics'" in p for p in problems), problems)

    def test_a_listener_off_loopback_is_reported(self):
        problems = self.check(SOUND.replace("127.0.0.1:4317", "0.0.0.0:4317"))
        self.assertTrue(any("0.0.0.0:4317" in p and "loopback" in p for p in problems), problems)

    def test_an_unexplained_environment_variable_is_reported(self):
        problems = self.check(SOUND.replace(", auth: {authenticator", ', headers: {x: "${env:TENANT}"}, auth: {authenticator'))
        self.assertEqual(problems, ["worker.yaml: uses ${TENANT} without explaining it in the header comment"])

    def test_a_changed_job_label_is_reported_for_hyperpod_configs_only(self):
        text = SOUND.replace("job: efa_exporter", "job: efa")
        self.assertTrue(any("dashboards expect 'efa_exporter'" in p for p in self.check(text)))
        self.assertEqual(self.check(text, name="custom.yaml"), [])

    def test_an_authenticator_not_started_is_reported(self):
        problems = self.check(SOUND.replace("  extensions: [sigv4auth]\n", "  extensions: []\n"))
        self.assertTrue(any("service.extensions lacks" in p for p in problems), problems)


if __name__ == "__main__":
    unittest.main()
