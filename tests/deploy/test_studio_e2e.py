#!/usr/bin/env python3
"""End-to-end run of deploy/configs/studio-sidecar.yaml with a real nodetel binary ($NODETEL_BIN).

A notebook's OTLP/HTTP export goes in on loopback; a fake remote write endpoint on loopback must
receive a SigV4-signed, snappy-compressed remote write request carrying the metric and the
sagemaker_space label. The listen ports are moved to free ones so the test can run next to
anything else; the config is otherwise the shipped one. Skipped without NODETEL_BIN. Only
127.0.0.1 is contacted; AWS credentials are dummies from the environment.
"""

from __future__ import annotations

import http.server
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def snappy_block_decompress(data: bytes) -> bytes:
    """Decodes the snappy block format (what remote write uses)."""
    length, shift, i = 0, 0, 0
    while True:
        c = data[i]
        i += 1
        length |= (c & 0x7F) << shift
        shift += 7
        if c < 0x80:
            break
    out = bytearray()
    while i < len(data):
        tag = data[i]
        i += 1
        kind = tag & 3
        if kind == 0:
            n = tag >> 2
            if n >= 60:
                width = n - 59
                n = int.from_bytes(data[i:i + width], "little")
                i += width
            n += 1
            out += data[i:i + n]
            i += n
            continue
        if kind == 1:
            n = ((tag >> 2) & 7) + 4
            offset = ((tag >> 5) << 8) | data[i]
            i += 1
        elif kind == 2:
            n = (tag >> 2) + 1
            offset = int.from_bytes(data[i:i + 2], "little")
            i += 2
        else:
            n = (tag >> 2) + 1
            offset = int.from_bytes(data[i:i + 4], "little")
            i += 4
        for _ in range(n):
            out.append(out[-offset])
    if len(out) != length:
        raise ValueError(f"snappy: decoded {len(out)} bytes, header says {length}")
    return bytes(out)


class RemoteWrite(http.server.BaseHTTPRequestHandler):
    received: list[tuple[dict, bytes]] = []

    def do_POST(self):  # noqa: N802 (http.server's naming)
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        RemoteWrite.received.append((dict(self.headers), body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


@unittest.skipUnless(os.environ.get("NODETEL_BIN"), "NODETEL_BIN is not set")
class StudioSidecar(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RemoteWrite)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        RemoteWrite.received = []
        self.proc = None
        self.log = None

    def tearDown(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.server.shutdown()
        self.server.server_close()
        if self.log:
            self.log.close()
        self.tmp.cleanup()

    def test_otlp_from_a_notebook_reaches_remote_write_signed_and_labelled(self):
        tmp = Path(self.tmp.name)
        grpc_port, http_port = free_port(), free_port()
        config = (REPO / "deploy" / "configs" / "studio-sidecar.yaml").read_text()
        config = config.replace('"127.0.0.1:4317"', f'"127.0.0.1:{grpc_port}"')
        config = config.replace('"127.0.0.1:4318"', f'"127.0.0.1:{http_port}"')
        config = config.replace('address: "127.0.0.1:8888"', 'address: "127.0.0.1:0"')
        # The service's health endpoint defaults to a fixed port; move it too.
        config = config.replace("extensions:\n  sigv4auth:",
                                'extensions:\n  health_check:\n    endpoint: "127.0.0.1:0"\n  sigv4auth:')
        config = config.replace("service:\n  extensions: [sigv4auth]", "service:\n  extensions: [sigv4auth, health_check]")
        path = tmp / "studio.yaml"
        path.write_text(config)

        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(tmp),
            "AMP_REMOTE_WRITE_URL": f"http://127.0.0.1:{self.server.server_address[1]}/workspaces/ws-test/api/v1/remote_write",
            "AWS_REGION": "us-west-2",
            "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
            "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_CONFIG_FILE": str(tmp / "aws-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(tmp / "aws-credentials"),
            "NODETEL_STUDIO_SPACE": "research-space",
        }
        self.log = open(tmp / "nodetel.log", "w")
        self.proc = subprocess.Popen([os.environ["NODETEL_BIN"], "run", "--config", str(path)], env=env,
                                     stdout=self.log, stderr=subprocess.STDOUT)

        now_ns = str(time.time_ns())
        payload = {"resourceMetrics": [{
            "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "notebook"}}]},
            "scopeMetrics": [{"metrics": [{
                "name": "train.loss",
                "gauge": {"dataPoints": [{"asDouble": 0.25, "timeUnixNano": now_ns,
                                          "attributes": [{"key": "rank", "value": {"stringValue": "0"}}]}]},
            }]}],
        }]}
        request = urllib.request.Request(f"http://127.0.0.1:{http_port}/v1/metrics", data=json.dumps(payload).encode(),
                                         headers={"Content-Type": "application/json"}, method="POST")
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(request, timeout=2) as response:
                    self.assertEqual(response.status, 200)
                break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.fail(f"OTLP endpoint never answered; log:\n{(tmp / 'nodetel.log').read_text()}")
                time.sleep(0.2)

        while not RemoteWrite.received and time.monotonic() < deadline:
            time.sleep(0.2)
        self.assertTrue(RemoteWrite.received, f"no remote write request; log:\n{(tmp / 'nodetel.log').read_text()}")
        headers, body = RemoteWrite.received[0]
        headers = {k.lower(): v for k, v in headers.items()}
        self.assertEqual(headers.get("content-encoding"), "snappy")
        self.assertEqual(headers.get("x-prometheus-remote-write-version"), "0.1.0")
        self.assertRegex(headers.get("authorization", ""),
                         r"^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/\d{8}/us-west-2/aps/aws4_request")
        decoded = b"".join(snappy_block_decompress(b) for _, b in RemoteWrite.received)
        for needle in (b"train_loss", b"sagemaker_space", b"research-space", b"rank", b"notebook"):
            self.assertIn(needle, decoded, f"{needle!r} not in the remote write requests")
        self.assertFalse(re.search(rb"AKIDEXAMPLE|wJalrXUtnFEMI", (tmp / "nodetel.log").read_bytes()),
                         "credentials appear in the log")


if __name__ == "__main__":
    unittest.main()
