#!/usr/bin/env bash
# SageMaker Studio lifecycle configuration (JupyterLab or Code Editor space): starts nodetel as a
# sidecar that takes OTLP metrics from the space's notebooks and scripts on 127.0.0.1:4317/4318
# and remote-writes them to Amazon Managed Service for Prometheus with the space's execution role.
#
# Attach it as the space's lifecycle configuration with the workspace URL filled in below (or set
# AMP_REMOTE_WRITE_URL in the environment), and keep the nodetel binary and
# deploy/configs/studio-sidecar.yaml where NODETEL_HOME points (default ~/.nodetel; the home
# directory persists across restarts of the space). Studio runs this script as the space's user,
# so nothing here needs root.
set -euo pipefail

AMP_REMOTE_WRITE_URL="${AMP_REMOTE_WRITE_URL:-}"
NODETEL_HOME="${NODETEL_HOME:-$HOME/.nodetel}"
metadata="${NODETEL_STUDIO_METADATA:-/opt/ml/metadata/resource-metadata.json}"

if [ -z "$AMP_REMOTE_WRITE_URL" ]; then
  echo "nodetel: AMP_REMOTE_WRITE_URL is not set; not starting" >&2
  exit 0
fi
if [ ! -x "$NODETEL_HOME/nodetel" ] || [ ! -f "$NODETEL_HOME/studio-sidecar.yaml" ]; then
  echo "nodetel: $NODETEL_HOME/nodetel or studio-sidecar.yaml is missing; not starting" >&2
  exit 0
fi

# The space name labels every series (sagemaker_space), so metrics of different spaces sharing a
# workspace stay apart.
space=""
if [ -r "$metadata" ] && command -v python3 >/dev/null 2>&1; then
  space="$(python3 -c 'import json,sys
try:
    print(json.load(open(sys.argv[1])).get("SpaceName", ""))
except Exception:
    pass' "$metadata")"
fi

# A restart of the space's server runs this again; one sidecar is enough.
if [ -f "$NODETEL_HOME/nodetel.pid" ] && kill -0 "$(cat "$NODETEL_HOME/nodetel.pid")" 2>/dev/null; then
  echo "nodetel: already running (pid $(cat "$NODETEL_HOME/nodetel.pid"))"
  exit 0
fi

export AMP_REMOTE_WRITE_URL
export AWS_REGION="${AWS_REGION:-${AWS_DEFAULT_REGION:-}}"
export NODETEL_STUDIO_SPACE="${space:-studio}"
# Lifecycle scripts must return quickly; the sidecar detaches and logs next to its config.
nohup "$NODETEL_HOME/nodetel" run --config "$NODETEL_HOME/studio-sidecar.yaml" \
  >>"$NODETEL_HOME/nodetel.log" 2>&1 </dev/null &
echo $! >"$NODETEL_HOME/nodetel.pid"
echo "nodetel: started (pid $!), OTLP on 127.0.0.1:4317 and 127.0.0.1:4318"
