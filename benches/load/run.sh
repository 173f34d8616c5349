#!/usr/bin/env bash
# Load test entry point: installs the peers when missing (Debian packages victoria-metrics, which
# ships vmagent, and prometheus), builds nodetel and the load generator in release mode, then runs
# the harness. Arguments go to harness.py: `run.sh` for the load test, `run.sh idle` for the idle
# footprint, `run.sh --help` for the options.
set -euo pipefail
cd "$(dirname "$0")/../.."

missing=()
command -v vmagent >/dev/null || missing+=(victoria-metrics)
command -v prometheus >/dev/null || missing+=(prometheus)
command -v prometheus-node-exporter >/dev/null || command -v node_exporter >/dev/null || missing+=(prometheus-node-exporter)
command -v taskset >/dev/null || missing+=(util-linux)
command -v python3 >/dev/null || missing+=(python3)
if ((${#missing[@]})); then
    sudo=""
    [[ $(id -u) -eq 0 ]] || sudo=sudo
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
    # The packages start their services; the test wants the machine quiet and the ports free.
    for unit in prometheus prometheus-node-exporter; do
        $sudo systemctl disable --now "$unit" >/dev/null 2>&1 || true
    done
fi

cargo build --release --locked --bin nodetel -p nodetel -p nodetel-loadgen
exec python3 benches/load/harness.py "$@"
