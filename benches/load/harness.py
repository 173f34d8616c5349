#!/usr/bin/env python3
"""Load test: nodetel against vmagent and the Prometheus agent, one after another, on loopback.

Each sender scrapes the same synthetic targets (served by `nodetel-loadgen targets`) and
remote-writes to the same counting sink (`nodetel-loadgen sink`). The sender runs on core 0, the
targets and the sink on core 1. Per sender and load level it records samples/s delivered, CPU
seconds per million samples (the CPU time of the sender's threads, in nanoseconds from
/proc/<pid>/task/*/schedstat, checked against utime + stime of /proc/<pid>/stat), peak and steady RSS, bytes
per sample on the wire, and whether it kept up; then it finds each sender's saturation point on
one core. Results: a table on stdout, results.json, results.csv and chart.svg in --out.

`harness.py idle` measures instead the idle footprint of `nodetel run` with its default config
next to node_exporter, both scraped every 15 s, for --duration seconds.

Only the standard library is used; run.sh installs the peers and builds the binaries first.
"""

import argparse
import csv
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
TICK = os.sysconf("SC_CLK_TCK")
# Below the kernel's ephemeral range (32768 and up), so no outgoing connection holds one.
SINK_PORT = 19991
TARGET_PORT = 20000
SENDER_CORE = "0"
LOAD_CORE = "1"
# Every scrape of a target also yields up, scrape_duration_seconds, scrape_samples_scraped,
# scrape_samples_post_metric_relabeling and scrape_series_added (all three senders).
SYNTHETIC = 5
FAKE_KEY, FAKE_SECRET = "AKIDLOADTESTFAKE0000", "loadtest/fake/secret/key/not/real/000000"

SENDERS = ["nodetel", "vmagent", "vmagent-stream", "prometheus-agent"]
BASELINE = "vmagent"


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- process accounting


def cpu_seconds(pid):
    """utime + stime of the whole process (all threads), from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def cpu_seconds_precise(pid):
    """CPU time of the process's live threads in nanoseconds (/proc/<pid>/task/*/schedstat), which
    resolves the small amounts a sender spends at a node's load; utime + stime are counted in
    10 ms ticks. Falls back to /proc/<pid>/stat."""
    total = 0
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return cpu_seconds(pid)
    return total / 1e9


def status_kb(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def sink_stats():
    with urllib.request.urlopen(f"http://127.0.0.1:{SINK_PORT}/stats", timeout=5) as r:
        return json.load(r)


def wait_port(port, timeout=10.0):
    end = time.time() + timeout
    while time.time() < end:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return True
        time.sleep(0.05)
    return False


def wait_free(ports, timeout=20.0):
    """Waits until nothing listens on `ports` (a previous sender may still be shutting down)."""
    end = time.time() + timeout
    while time.time() < end:
        busy = False
        for port in ports:
            with socket.socket() as s:
                busy = busy or s.connect_ex(("127.0.0.1", port)) == 0
        if not busy:
            return
        time.sleep(0.2)


def stop(proc, timeout=15):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# ---------------------------------------------------------------- load generator


class Targets:
    """`count` targets of `series` series each, on core 1."""

    def __init__(self, loadgen, count, series):
        self.count = count
        self.proc = subprocess.Popen(
            ["taskset", "-c", LOAD_CORE, loadgen, "targets", "--port", str(TARGET_PORT), "--count", str(count),
             "--series", str(series)],
            stderr=subprocess.DEVNULL)
        if not wait_port(TARGET_PORT + count - 1, 60):
            raise SystemExit("targets did not start")
        with urllib.request.urlopen(f"http://127.0.0.1:{TARGET_PORT}/metrics", timeout=10) as r:
            self.series = sum(1 for line in r.read().splitlines() if line and not line.startswith(b"#"))

    def addresses(self):
        return [f"127.0.0.1:{TARGET_PORT + i}" for i in range(self.count)]

    def close(self):
        stop(self.proc)


# ---------------------------------------------------------------- senders


def scrape_yaml(targets, interval):
    tl = ", ".join(f'"{a}"' for a in targets.addresses())
    return (f"global: {{scrape_interval: {interval}s, scrape_timeout: {interval}s}}\n"
            f"scrape_configs:\n  - job_name: load\n    static_configs: [{{targets: [{tl}]}}]\n")


def sink_url():
    return f"http://127.0.0.1:{SINK_PORT}/api/v1/write"


def sender_command(name, bins, targets, interval, work):
    """The command line and environment that run `name` against the targets."""
    env = dict(os.environ)
    if name == "nodetel":
        tl = ", ".join(f'"{a}"' for a in targets.addresses())
        cfg = f"""receivers:
  prometheus:
    config:
      global: {{scrape_interval: {interval}s, scrape_timeout: {interval}s}}
      scrape_configs:
        - job_name: load
          static_configs: [{{targets: [{tl}]}}]
exporters:
  prometheusremotewrite:
    endpoint: {sink_url()}
    auth: {{authenticator: sigv4auth}}
extensions:
  sigv4auth: {{region: us-east-1, service: aps}}
  health_check: {{endpoint: "127.0.0.1:19133"}}
service:
  extensions: [sigv4auth, health_check]
  telemetry: {{metrics: {{address: "127.0.0.1:19888"}}}}
  pipelines:
    metrics: {{receivers: [prometheus], exporters: [prometheusremotewrite]}}
"""
        path = os.path.join(work, "nodetel.yaml")
        with open(path, "w") as f:
            f.write(cfg)
        env.update(AWS_ACCESS_KEY_ID=FAKE_KEY, AWS_SECRET_ACCESS_KEY=FAKE_SECRET, AWS_REGION="us-east-1",
                   AWS_EC2_METADATA_DISABLED="true", NODETEL_LOG_LEVEL="warn")
        return [bins["nodetel"], "run", "--config", path], env
    if name.startswith("vmagent"):
        path = os.path.join(work, "scrape.yaml")
        with open(path, "w") as f:
            f.write(scrape_yaml(targets, interval))
        cmd = [bins["vmagent"], f"-promscrape.config={path}", f"-remoteWrite.url={sink_url()}",
               f"-remoteWrite.tmpDataPath={os.path.join(work, 'vmagent-data')}", "-httpListenAddr=127.0.0.1:19429",
               "-remoteWrite.aws.useSigv4=true", "-remoteWrite.aws.region=us-east-1",
               f"-remoteWrite.aws.accessKey={FAKE_KEY}", f"-remoteWrite.aws.secretKey={FAKE_SECRET}",
               "-remoteWrite.aws.service=aps", "-loggerLevel=ERROR"]
        if name == "vmagent-stream":
            cmd.append("-promscrape.streamParse=true")
        return cmd, env
    if name == "prometheus-agent":
        path = os.path.join(work, "prometheus.yaml")
        with open(path, "w") as f:
            f.write(scrape_yaml(targets, interval))
            # Debian's 2.42 build parses this block but sends requests unsigned (the sink counts it).
            f.write(f"remote_write:\n  - url: {sink_url()}\n"
                    f"    sigv4: {{region: us-east-1, access_key: {FAKE_KEY}, secret_key: {FAKE_SECRET}}}\n")
        return [bins["prometheus"], "--enable-feature=agent", f"--config.file={path}",
                f"--storage.agent.path={os.path.join(work, 'agent-data')}", "--web.listen-address=127.0.0.1:19190",
                "--log.level=error"], env
    raise ValueError(name)


LOADGEN_PIDS = []


def loadgen_cpu():
    total = 0.0
    for pid in LOADGEN_PIDS:
        try:
            total += cpu_seconds(pid)
        except OSError:
            pass
    return total


def measure(name, bins, targets, interval, warmup, windows, window_s, level):
    """Runs one sender against the running targets and returns its row."""
    wait_free([19888, 19429, 19190, 19133])
    work = tempfile.mkdtemp(prefix=f"load-{name}-")
    cmd, env = sender_command(name, bins, targets, interval, work)
    proc = subprocess.Popen(["taskset", "-c", SENDER_CORE] + cmd, env=env, cwd=work,
                            stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, "stderr.log"), "w"))
    pid = proc.pid
    offered = targets.count * (targets.series + SYNTHETIC) / interval
    row = {"level": level, "sender": name, "targets": targets.count, "series_per_target": targets.series,
           "active_series": targets.count * (targets.series + SYNTHETIC), "interval_s": interval,
           "offered_samples_per_s": round(offered)}
    try:
        time.sleep(warmup)
        if proc.poll() is not None:
            with open(os.path.join(work, "stderr.log")) as f:
                raise RuntimeError(f"{name} exited: {f.read()[-2000:]}")
        LOADGEN_PIDS[1:] = [targets.proc.pid]
        prev = (time.time(), cpu_seconds(pid), sink_stats(), cpu_seconds_precise(pid), loadgen_cpu())
        rss, per = [], []
        for _ in range(windows):
            end = prev[0] + window_s
            while time.time() < end:
                rss.append(status_kb(pid, "VmRSS"))
                time.sleep(min(0.5, max(0.0, end - time.time())))
            cur = (time.time(), cpu_seconds(pid), sink_stats(), cpu_seconds_precise(pid), loadgen_cpu())
            dt, dticks, dcpu = cur[0] - prev[0], cur[1] - prev[1], cur[3] - prev[3]
            # Threads that exit take their schedstat with them; their time is still in stat.
            if dcpu < dticks - 0.02:
                dcpu = dticks
            a, b = prev[2], cur[2]
            ds = b["samples"] - a["samples"]
            per.append({
                "rate": ds / dt,
                "cpu_per_m": dcpu / (ds / 1e6) if ds else float("inf"),
                "cpu_per_m_ticks": dticks / (ds / 1e6) if ds else float("inf"),
                "cpu_frac": dcpu / dt,
                "loadgen_frac": (cur[4] - prev[4]) / dt,
                "bytes_per_sample": (b["wire_bytes"] - a["wire_bytes"]) / ds if ds else 0.0,
                "raw_bytes_per_sample": (b["raw_bytes"] - a["raw_bytes"]) / ds if ds else 0.0,
                "max_lag_s": b["max_lag_ms"] / 1000,
                "scrape_duration_max_s": b["scrape_duration_max"],
                "scrape_duration_mean_s": (b["scrape_duration_sum"] / b["scrape_duration_count"]
                                           if b["scrape_duration_count"] else 0.0),
                "signed": b["signed"] - a["signed"], "unsigned": b["unsigned"] - a["unsigned"],
                "bad": b["bad"] - a["bad"],
            })
            prev = cur
        row["peak_rss_mb"] = round(status_kb(pid, "VmHWM") / 1024, 1)
    finally:
        stop(proc)
        shutil.rmtree(work, ignore_errors=True)
    med = lambda k: statistics.median(w[k] for w in per)  # noqa: E731
    rate = med("rate")
    row.update({
        "delivered_samples_per_s": round(rate),
        "cpu_s_per_million": round(med("cpu_per_m"), 3),
        "cpu_s_per_million_from_stat": round(med("cpu_per_m_ticks"), 3),
        "cpu_cores": round(med("cpu_frac"), 4),
        # Targets + sink on the other core; near 1.0 the load generator, not the sender, is the limit.
        "loadgen_cores": round(med("loadgen_frac"), 3),
        "steady_rss_mb": round(statistics.median(rss) / 1024, 1) if rss else 0.0,
        "bytes_per_sample": round(med("bytes_per_sample"), 2),
        "uncompressed_bytes_per_sample": round(med("raw_bytes_per_sample"), 1),
        "scrape_duration_max_s": round(max(w["scrape_duration_max_s"] for w in per), 3),
        "scrape_duration_mean_s": round(med("scrape_duration_mean_s"), 4),
        "max_lag_s": round(max(w["max_lag_s"] for w in per), 2),
        "signed_requests": sum(w["signed"] for w in per),
        "unsigned_requests": sum(w["unsigned"] for w in per),
        "rejected_requests": sum(w["bad"] for w in per),
        "windows": len(per),
        "window_rates": [round(w["rate"]) for w in per],
    })
    # Kept up: delivered what was offered (within 5 %), scrapes shorter than the interval, and no
    # backlog (the newest sample of every request is younger than a few intervals).
    row["kept_up"] = bool(rate >= 0.95 * offered and row["scrape_duration_max_s"] < interval
                          and row["max_lag_s"] < max(10.0, 3 * interval))
    log(f"{level:12} {name:17} offered {offered:>11,.0f}/s delivered {rate:>11,.0f}/s "
        f"cpu {row['cpu_s_per_million']:7.3f} s/M ({row['cpu_cores']:.2f} cores, loadgen {row['loadgen_cores']:.2f}) "
        f"rss {row['steady_rss_mb']:7.1f} MB "
        f"(peak {row['peak_rss_mb']}) {row['bytes_per_sample']:5.2f} B/sample lag {row['max_lag_s']} s "
        f"{'ok' if row['kept_up'] else 'BEHIND'}")
    return row


def run_level(level, bins, loadgen, senders, count, series, interval, warmup, windows, window_s):
    targets = Targets(loadgen, count, series)
    try:
        return [measure(s, bins, targets, interval, warmup, windows, window_s, level) for s in senders]
    finally:
        targets.close()


def saturation(bins, loadgen, senders, steps, series, quick):
    """Raises the offered load (1 s interval) until a sender stops keeping up; one refining step
    between the last rate it sustained and the first it did not. A sender's saturation point is
    the highest offered rate it kept up with."""
    rows, best = [], {}
    interval = 1
    for s in senders:
        passed, failed = 0, None
        tried = []

        def attempt(rate_m):
            count = max(1, round(rate_m * 1e6 / (series + SYNTHETIC)))
            targets = None
            try:
                targets = Targets(loadgen, count, series)
                # The first scrape builds every series; the windows start once the backlog is gone.
                warm = 6 + count * series / 2.5e5
                r = measure(s, bins, targets, interval, warm, 2 if quick else 3, 3, "saturation")
            except (RuntimeError, SystemExit, OSError) as e:
                log(f"saturation   {s:17} step {rate_m} M/s failed: {e}")
                r = {"level": "saturation", "sender": s, "targets": count, "series_per_target": series,
                     "offered_samples_per_s": round(count * (series + SYNTHETIC)), "delivered_samples_per_s": 0,
                     "kept_up": False, "error": str(e)[:300]}
            finally:
                if targets:
                    targets.close()
            r["step_m"] = rate_m
            rows.append(r)
            tried.append(r)
            return r

        for rate_m in steps:
            r = attempt(rate_m)
            if r["kept_up"]:
                passed = r["offered_samples_per_s"]
            else:
                failed = rate_m
                break
        if failed is not None and failed != steps[0]:
            last_ok = steps[steps.index(failed) - 1]
            mid = round((last_ok * failed) ** 0.5, 2)
            r = attempt(mid)
            if r["kept_up"]:
                passed = max(passed, r["offered_samples_per_s"])
        best[s] = {"sustained_samples_per_s": passed,
                   "highest_delivered_samples_per_s": max(r["delivered_samples_per_s"] for r in tried),
                   "capped_by_harness": failed is None}
        log(f"saturation   {s:17} sustained {passed:,.0f} samples/s on one core"
            f"{' (highest step offered)' if failed is None else ''}")
    return rows, best


# ---------------------------------------------------------------- report


COLUMNS = [
    ("delivered_samples_per_s", "samples/s", "{:,.0f}"),
    ("cpu_s_per_million", "CPU s/M", "{:.3f}"),
    ("steady_rss_mb", "RSS MB", "{:.1f}"),
    ("peak_rss_mb", "peak MB", "{:.1f}"),
    ("bytes_per_sample", "B/sample", "{:.2f}"),
    ("scrape_duration_max_s", "scrape max s", "{:.3f}"),
    ("max_lag_s", "lag s", "{:.1f}"),
]


def ratio(v, base):
    return v / base if base else float("nan")


def add_ratios(rows):
    by = {(r["level"], r["sender"]): r for r in rows}
    for r in rows:
        base = by.get((r["level"], BASELINE))
        if r["level"] == "saturation" or "error" in r:
            continue
        for k in ("cpu_s_per_million", "steady_rss_mb", "peak_rss_mb", "bytes_per_sample"):
            r[f"{k}_vs_vmagent"] = round(ratio(r[k], base[k]), 3) if base else None


def table(rows, best):
    out = []
    head = f"{'level':11} {'sender':17} " + " ".join(f"{h:>13}" for _, h, _ in COLUMNS) + "  kept up  CPU×vm  RSS×vm"
    out.append(head)
    out.append("-" * len(head))
    for r in rows:
        if "error" in r:
            out.append(f"{r['level']:11} {r['sender']:17} failed: {r['error'][:80]}")
            continue
        cells = " ".join(f"{fmt.format(r[k]):>13}" for k, _, fmt in COLUMNS)
        out.append(f"{r['level']:11} {r['sender']:17} {cells}  {'yes' if r['kept_up'] else 'NO':>7}  "
                   f"{r.get('cpu_s_per_million_vs_vmagent') or 0:6.2f}  {r.get('steady_rss_mb_vs_vmagent') or 0:6.2f}")
    out.append("")
    base = best.get(BASELINE, {}).get("sustained_samples_per_s", 0)
    out.append("saturation on one core (1 s interval, highest load kept up):")
    for s, b in best.items():
        capped = "  (the harness offered no more)" if b["capped_by_harness"] else ""
        out.append(f"  {s:17} {b['sustained_samples_per_s']:>12,.0f} samples/s  "
                   f"{ratio(b['sustained_samples_per_s'], base):5.2f}x vmagent{capped}")
    return "\n".join(out)


def write_csv(path, rows):
    keys = []
    for r in rows:
        keys += [k for k in r if k not in keys]
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        for r in rows:
            w.writerow({k: (";".join(map(str, v)) if isinstance(v, list) else v) for k, v in r.items()})


COLORS = {"nodetel": "#1b9e77", "vmagent": "#7570b3", "vmagent-stream": "#a6a1e0", "prometheus-agent": "#d95f02"}


def svg_chart(path, rows, best, title):
    """Three bar panels: CPU seconds per million samples per level, RSS per level, saturation."""
    levels = []
    for r in rows:
        if r["level"] != "saturation" and r["level"] not in levels:
            levels.append(r["level"])
    senders = [s for s in SENDERS if any(r["sender"] == s for r in rows)]
    by = {(r["level"], r["sender"]): r for r in rows}
    panels = [
        ("CPU seconds per million samples (lower is better)",
         [(lv, [by.get((lv, s), {}).get("cpu_s_per_million", 0) for s in senders]) for lv in levels], "{:.2f}"),
        ("steady RSS, MB (lower is better)",
         [(lv, [by.get((lv, s), {}).get("steady_rss_mb", 0) for s in senders]) for lv in levels], "{:.0f}"),
        ("saturation on one core, M samples/s (higher is better)",
         [("1 s interval", [best.get(s, {}).get("sustained_samples_per_s", 0) / 1e6 for s in senders])], "{:.2f}"),
    ]
    pw, ph, gap = 300, 260, 30
    width = len(panels) * (pw + gap) + gap
    height = ph + 120
    e = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
         f'font-family="sans-serif" font-size="11">',
         f'<rect width="{width}" height="{height}" fill="white"/>',
         f'<text x="{gap}" y="20" font-size="14" font-weight="bold">{title}</text>']
    for p, (ptitle, groups, fmt) in enumerate(panels):
        x0, y0 = gap + p * (pw + gap), 50
        finite = sorted(v for _, vals in groups for v in vals if v == v and v != float("inf") and v > 0)
        top = max(finite + [1e-9])
        # One sender far off the others (the Prometheus agent's RSS) would flatten every other
        # bar: clip at three times the median and mark the clipped bars.
        if finite and top > 3 * finite[len(finite) // 2] * 1.5:
            top = 3 * finite[len(finite) // 2]
        e.append(f'<text x="{x0}" y="{y0 - 8}" font-weight="bold">{ptitle}</text>')
        e.append(f'<line x1="{x0}" y1="{y0 + ph - 40}" x2="{x0 + pw}" y2="{y0 + ph - 40}" stroke="#444"/>')
        gw = pw / max(1, len(groups))
        bw = (gw - 16) / max(1, len(senders))
        for g, (label, vals) in enumerate(groups):
            gx = x0 + g * gw + 8
            for i, v in enumerate(vals):
                v = v if v == v and v != float("inf") else 0
                h = (ph - 60) * min(v, top) / top
                x, y = gx + i * bw, y0 + ph - 40 - h
                e.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{bw - 2:.1f}" height="{h:.1f}" '
                         f'fill="{COLORS.get(senders[i], "#999")}"/>')
                e.append(f'<text x="{x + (bw - 2) / 2:.1f}" y="{y - 3:.1f}" text-anchor="middle" '
                         f'font-size="9">{fmt.format(v)}</text>')
                if v > top:
                    e.append(f'<path d="M{x - 1:.1f},{y + 14:.1f} l{bw:.1f},-6 m0,6 l-{bw:.1f},6" stroke="white" '
                             f'stroke-width="2"/>')
            e.append(f'<text x="{gx + (gw - 16) / 2:.1f}" y="{y0 + ph - 26}" text-anchor="middle">{label}</text>')
    for i, s in enumerate(senders):
        x = gap + i * 170
        e.append(f'<rect x="{x}" y="{height - 30}" width="12" height="12" fill="{COLORS.get(s, "#999")}"/>')
        e.append(f'<text x="{x + 16}" y="{height - 20}">{s}</text>')
    e.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(e) + "\n")


def machine():
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "")
    except OSError:
        pass
    return {"cpus": os.cpu_count(), "cpu_model": model, "kernel": platform.release(),
            "loadavg_start": os.getloadavg()[0]}


def versions(bins):
    def first_line(cmd):
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
            return (out.stdout or out.stderr).strip().splitlines()[0]
        except (OSError, IndexError, subprocess.TimeoutExpired):
            return "unknown"
    # Debian's vmagent prints nothing for -version; the package version says the same.
    vm = first_line([bins["vmagent"], "-version"])
    if vm == "unknown":
        vm = first_line(["dpkg-query", "-W", "-f=victoria-metrics ${Version}\n", "victoria-metrics"])
    return {"nodetel": first_line([bins["nodetel"], "--version"]), "vmagent": vm,
            "prometheus": first_line([bins["prometheus"], "--version"])}


# ---------------------------------------------------------------- scenarios


def load_scenario(args, bins, loadgen):
    senders = args.senders.split(",")
    sink = subprocess.Popen(["taskset", "-c", LOAD_CORE, loadgen, "sink", "--port", str(SINK_PORT)],
                            stderr=subprocess.DEVNULL)
    if not wait_port(SINK_PORT):
        raise SystemExit("sink did not start")
    LOADGEN_PIDS[:] = [sink.pid]
    started = time.time()
    info = {"date": time.strftime("%Y-%m-%d"), "machine": machine(), "versions": versions(bins),
            "command": " ".join(["benches/load/run.sh"] + sys.argv[1:])}
    rows = []
    try:
        q = args.quick
        # A real node: node_exporter, dcgm-exporter, EFA and Slurm exporters, about 5,000 series at 15 s.
        levels = args.levels.split(",")
        if "node-5k" in levels:
            rows += run_level("node-5k", bins, loadgen, senders, 4, 1250, 15, 17, 2, 15)
        # An aggregation point: 100 targets x 5,000 series = 500,000 active series at 5 s.
        if "agg-500k" in levels:
            rows += run_level("agg-500k", bins, loadgen, senders, 100, 5000 - SYNTHETIC, 5, 12 if q else 15,
                              3 if q else 4, 5)
        best = {}
        if "saturation" in levels:
            steps = [0.1, 0.25, 0.5, 1.0, 2.0, 3.0]
            sat_rows, best = saturation(bins, loadgen, senders, steps, 10000 - SYNTHETIC, q)
            rows += sat_rows
    finally:
        stop(sink)
    info["duration_s"] = round(time.time() - started)
    info["machine"]["loadavg_end"] = os.getloadavg()[0]
    add_ratios(rows)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump({"info": info, "rows": rows, "saturation": best}, f, indent=1)
    write_csv(os.path.join(args.out, "results.csv"), rows)
    svg_chart(os.path.join(args.out, "chart.svg"), [r for r in rows if r["level"] != "saturation"], best,
              f"nodetel vs vmagent vs Prometheus agent, {info['date']}, {info['machine']['cpus']} CPUs")
    text = table(rows, best)
    with open(os.path.join(args.out, "table.txt"), "w") as f:
        f.write(text + "\n")
    print(text)
    print(f"\n{info['duration_s']} s; results in {args.out} (results.json, results.csv, chart.svg, table.txt)")


def idle_scenario(args, bins):
    """`nodetel run` with the embedded default config next to node_exporter, both scraped every 15 s."""
    ne_port = 49100
    procs = {
        "nodetel": subprocess.Popen([bins["nodetel"], "run"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                    env={k: v for k, v in os.environ.items() if k != "AMP_REMOTE_WRITE_URL"}),
        "node_exporter": subprocess.Popen([bins["node_exporter"], f"--web.listen-address=127.0.0.1:{ne_port}"],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
    }
    urls = {"nodetel": "http://127.0.0.1:9464/metrics", "node_exporter": f"http://127.0.0.1:{ne_port}/metrics"}
    ok = wait_port(9464, 20) and wait_port(ne_port, 20)
    out = {}
    try:
        if not ok:
            raise SystemExit("nodetel (:9464) or node_exporter did not start; is the port taken?")
        time.sleep(5)
        start = {n: cpu_seconds(p.pid) for n, p in procs.items()}
        t0 = time.time()
        rss = {n: [] for n in procs}
        series = {}
        next_scrape = t0
        while time.time() - t0 < args.duration:
            if time.time() >= next_scrape:
                for n, u in urls.items():
                    with urllib.request.urlopen(u, timeout=10) as r:
                        series[n] = sum(1 for line in r.read().splitlines() if line and not line.startswith(b"#"))
                next_scrape += 15
            for n, p in procs.items():
                rss[n].append(status_kb(p.pid, "VmRSS"))
            time.sleep(1)
        dt = time.time() - t0
        for n, p in procs.items():
            out[n] = {"cpu_percent": round(100 * (cpu_seconds(p.pid) - start[n]) / dt, 3),
                      "steady_rss_mb": round(statistics.median(rss[n]) / 1024, 1),
                      "peak_rss_mb": round(status_kb(p.pid, "VmHWM") / 1024, 1), "series": series.get(n, 0)}
    finally:
        for p in procs.values():
            stop(p)
    out["_info"] = {"date": time.strftime("%Y-%m-%d"), "duration_s": args.duration, "machine": machine(),
                    "versions": versions(bins)}
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "idle.json"), "w") as f:
        json.dump(out, f, indent=1)
    print(f"idle footprint over {args.duration} s, scraped every 15 s:")
    for n in ("nodetel", "node_exporter"):
        o = out[n]
        print(f"  {n:14} RSS {o['steady_rss_mb']:6.1f} MB (peak {o['peak_rss_mb']}), CPU {o['cpu_percent']:.3f} % "
              f"of a core, {o['series']} series")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("scenario", nargs="?", default="load", choices=["load", "idle"])
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    ap.add_argument("--senders", default=",".join(SENDERS))
    ap.add_argument("--quick", action="store_true", help="fewer measurement windows")
    ap.add_argument("--levels", default="node-5k,agg-500k,saturation", help="comma-separated subset")
    ap.add_argument("--duration", type=int, default=300, help="idle scenario length, seconds")
    ap.add_argument("--nodetel", default=os.path.join(ROOT, "target", "release", "nodetel"))
    ap.add_argument("--loadgen", default=os.path.join(ROOT, "target", "release", "nodetel-loadgen"))
    args = ap.parse_args()
    # Stopping the harness stops what it started (the `finally` blocks run).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    bins = {"nodetel": args.nodetel, "vmagent": shutil.which("vmagent") or "/usr/bin/vmagent",
            "prometheus": shutil.which("prometheus") or "/usr/bin/prometheus",
            "node_exporter": shutil.which("prometheus-node-exporter") or shutil.which("node_exporter") or ""}
    if args.scenario == "idle":
        idle_scenario(args, bins)
    else:
        load_scenario(args, bins, args.loadgen)


if __name__ == "__main__":
    main()
