#!/usr/bin/env bash
# Installs nodetel on a SageMaker HyperPod Slurm node, in place of HyperPod's
# install_observability.py (node_exporter, dcgm-exporter, EFA exporter, slurm_exporter and the
# otel_collector container). Call it from the lifecycle scripts on every node:
#
#   install-nodetel.sh --prometheus-remote-write-url https://aps-workspaces.<region>.amazonaws.com/workspaces/<ws>/api/v1/remote_write
#
# The node's role decides what is installed: slurmctld active -> controller (host and Slurm
# cluster metrics); slurmd active -> worker (host, GPU, EFA metrics, Slurm job labels, OTLP);
# neither -> login node, where nothing is installed (as HyperPod does). Series keep the job names
# (node_exporter, dcgm_exporter, efa_exporter, slurm_exporter) and instance=<short hostname> that
# HyperPod's dashboards select on.
#
# Every path can be moved with an environment variable or --root, so the script can be tried and
# tested against a scratch directory; see --help.
set -euo pipefail

readonly VERSION_OF_SCRIPT=1
SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
readonly SCRIPT_DIR

usage() {
  cat <<'EOF'
Usage: install-nodetel.sh [options]

Options (HyperPod's install_observability.py flags are accepted as they are):
  --prometheus-remote-write-url URL, --amp-url URL
                          the AMP workspace remote write URL (or env AMP_REMOTE_WRITE_URL)
  --region REGION         SigV4 region; default: from the cluster ARN in resource_config.json,
                          then from the URL
  --node-type TYPE        controller | worker | compute | login | auto (default auto)
  --advanced              HyperPod's advanced metrics: the advanced DCGM counter set on workers
  --binary PATH           nodetel binary to install (default: ./nodetel next to this script,
                          or an already installed one)
  --container             run the container image instead of a systemd service
  --image IMAGE           container image (default nodetel:latest, nodetel:latest-gpu on workers)
  --no-validate           do not run `nodetel validate` on the written config
  --keep-hyperpod-exporters
                          leave HyperPod's exporters and otel-collector running (by default
                          they are stopped: they send the same series)
  --uninstall             stop and remove what this script installed (keeps the disk queue)
  --purge                 with --uninstall, also remove the state directory (disk queue)
  --root DIR              install under DIR instead of / (for images and tests); this
                          machine's systemctl and docker are then only called when SYSTEMCTL
                          or DOCKER name them
  --dry-run               print what would be done; change nothing
  --print-config ROLE     print the config for ROLE (controller, worker) and exit
  -h, --help              this text

Environment (paths are inside --root):
  NODETEL_CONFIG_DIR (/etc/nodetel)   NODETEL_BIN_DIR (/usr/local/bin)
  NODETEL_UNIT_DIR (/etc/systemd/system)   NODETEL_STATE_DIR (/var/lib/nodetel)
  NODETEL_RESOURCE_CONFIG (SAGEMAKER_RESOURCE_CONFIG_PATH, else /opt/ml/config/resource_config.json)
  SYSTEMCTL (systemctl)   DOCKER (docker)   NODETEL_HOSTNAME (hostname -s)
EOF
}

log() { printf 'install-nodetel: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# ---------------------------------------------------------------------------------------------
# Arguments and paths.

amp_url="${AMP_REMOTE_WRITE_URL:-}"
region="${AWS_REGION:-}"
node_type="auto"
advanced=0
binary=""
mode="systemd"
image=""
validate=1
keep_hyperpod=0
action="install"
purge=0
root="${NODETEL_ROOT:-/}"
dry_run=0

while [ $# -gt 0 ]; do
  case "$1" in
    --prometheus-remote-write-url | --amp-url) [ $# -ge 2 ] || die "$1 needs a value"; amp_url="$2"; shift 2 ;;
    --region) [ $# -ge 2 ] || die "$1 needs a value"; region="$2"; shift 2 ;;
    --node-type) [ $# -ge 2 ] || die "$1 needs a value"; node_type="$2"; shift 2 ;;
    --advanced) advanced=1; shift ;;
    --binary) [ $# -ge 2 ] || die "$1 needs a value"; binary="$2"; shift 2 ;;
    --container) mode="container"; shift ;;
    --image) [ $# -ge 2 ] || die "$1 needs a value"; image="$2"; shift 2 ;;
    --no-validate) validate=0; shift ;;
    --keep-hyperpod-exporters) keep_hyperpod=1; shift ;;
    --uninstall) action="uninstall"; shift ;;
    --purge) purge=1; shift ;;
    --root) [ $# -ge 2 ] || die "$1 needs a value"; root="$2"; shift 2 ;;
    --dry-run) dry_run=1; shift ;;
    --print-config) [ $# -ge 2 ] || die "$1 needs a value"; action="print-config"; node_type="$2"; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown option: $1" ;;
  esac
done

root="${root%/}"
config_dir="${NODETEL_CONFIG_DIR:-/etc/nodetel}"
bin_dir="${NODETEL_BIN_DIR:-/usr/local/bin}"
unit_dir="${NODETEL_UNIT_DIR:-/etc/systemd/system}"
state_dir="${NODETEL_STATE_DIR:-/var/lib/nodetel}"
resource_config="${NODETEL_RESOURCE_CONFIG:-${SAGEMAKER_RESOURCE_CONFIG_PATH:-/opt/ml/config/resource_config.json}}"
systemctl_cmd="${SYSTEMCTL:-systemctl}"
docker_cmd="${DOCKER:-docker}"
# Under --root the files land in a directory, not on this machine's system: leave this machine's
# services and containers alone unless SYSTEMCTL / DOCKER name what to call.
skip_service_manager() {
  case "$1" in
    is-active | is-enabled | inspect) return 3 ;;
    *) log "skipping '$*' (--root without SYSTEMCTL/DOCKER)"; return 0 ;;
  esac
}
if [ -n "$root" ]; then
  [ -n "${SYSTEMCTL:-}" ] || systemctl_cmd=skip_service_manager
  [ -n "${DOCKER:-}" ] || docker_cmd=skip_service_manager
fi
readonly container_name="nodetel"
readonly unit_name="nodetel.service"

# The path of an installed file as this run sees it (under --root).
at_root() { printf '%s%s' "$root" "$1"; }

# ---------------------------------------------------------------------------------------------
# The configs and the unit. They are kept byte-for-byte equal to deploy/configs/*.yaml and
# deploy/systemd/nodetel.service (tests/deploy/test_installer.sh checks it), so that this script
# is the only file a lifecycle script needs.

config_controller() {
  cat <<'EOF'
# nodetel on a SageMaker HyperPod Slurm controller (head) node.
#
# Replaces node_exporter (:9100), slurm_exporter (:9341) and the otel_collector container that
# HyperPod's install_observability.py sets up, with the same job names and instance labels:
#   job="node_exporter"   host metrics (node_exporter 1.9.1 names)
#   job="slurm_exporter"  cluster, partition, queue and scheduler metrics (slurm_exporter names)
#   instance=<short hostname> on every series
#
# Site values come from the environment; install-nodetel.sh writes them to
# /etc/nodetel/nodetel.env, which the systemd unit and the container both read:
#   AMP_REMOTE_WRITE_URL  the workspace's remote write URL (required)
#   AWS_REGION            the workspace's region, for SigV4 (empty: taken from the URL)
#   NODETEL_ROOTFS        the host's root filesystem: / on the host (default), /host in a container
receivers:
  node:
    path:
      rootfs: "${env:NODETEL_ROOTFS:-/}"
  slurm: {}

exporters:
  prometheusremotewrite:
    endpoint: "${env:AMP_REMOTE_WRITE_URL}"
    auth:
      authenticator: sigv4auth
    # Keeps what AMP has not accepted yet across AMP outages and restarts.
    queue:
      directory: /var/lib/nodetel/queue

extensions:
  sigv4auth:
    region: "${env:AWS_REGION:-}"
    service: aps
  health_check:
    endpoint: "127.0.0.1:13133"

service:
  extensions: [sigv4auth, health_check]
  telemetry:
    metrics:
      address: "127.0.0.1:8888"
  pipelines:
    metrics:
      receivers: [node, slurm]
      exporters: [prometheusremotewrite]
EOF
}

config_worker() {
  cat <<'EOF'
# nodetel on a SageMaker HyperPod Slurm worker (compute) node.
#
# Replaces node_exporter (:9100), dcgm-exporter (:9400), the EFA exporter (:9109) and the
# otel_collector container that HyperPod's install_observability.py sets up, with the same job
# names and instance labels:
#   job="node_exporter"  host metrics (node_exporter 1.9.1 names)
#   job="efa_exporter"   EFA device counters (node_amazonefa_*)
#   job="dcgm_exporter"  GPU metrics (dcgm-exporter 4.1.1 names, Hostname label)
#   instance=<short hostname> on every series
# and adds what HyperPod does not have: Slurm job and rank labels on GPU series, and an OTLP
# endpoint on loopback for training metrics (4317 gRPC, 4318 HTTP).
#
# Site values come from the environment; install-nodetel.sh writes them to
# /etc/nodetel/nodetel.env, which the systemd unit and the container both read:
#   AMP_REMOTE_WRITE_URL  the workspace's remote write URL (required)
#   AWS_REGION            the workspace's region, for SigV4 (empty: taken from the URL)
#   NODETEL_ROOTFS        the host's root filesystem: / on the host (default), /host in a container
#   NODETEL_GPU_COUNTERS  HyperPod's DCGM counter set: basic (default) or advanced (--advanced)
receivers:
  node:
    path:
      rootfs: "${env:NODETEL_ROOTFS:-/}"
    collectors:
      disabled: [amazonefa]
  # A second node receiver with only the EFA collector, so EFA series keep job="efa_exporter"
  # as HyperPod's EFA exporter gave them (and host metrics are not collected twice).
  node/efa:
    job: efa_exporter
    path:
      rootfs: "${env:NODETEL_ROOTFS:-/}"
    collectors:
      disable_defaults: true
      enabled: [amazonefa]
  gpu:
    counters: "${env:NODETEL_GPU_COUNTERS:-basic}"
  otlp:
    protocols:
      grpc:
        endpoint: "127.0.0.1:4317"
      http:
        endpoint: "127.0.0.1:4318"

processors:
  # Adds slurm_job_id, slurm_job_name, slurm_job_user, slurm_partition, rank and local_rank.
  slurmattributes: {}

exporters:
  prometheusremotewrite:
    endpoint: "${env:AMP_REMOTE_WRITE_URL}"
    auth:
      authenticator: sigv4auth
    # Keeps what AMP has not accepted yet across AMP outages and restarts.
    queue:
      directory: /var/lib/nodetel/queue

extensions:
  sigv4auth:
    region: "${env:AWS_REGION:-}"
    service: aps
  health_check:
    endpoint: "127.0.0.1:13133"

service:
  extensions: [sigv4auth, health_check]
  telemetry:
    metrics:
      address: "127.0.0.1:8888"
  pipelines:
    metrics:
      receivers: [node, node/efa, gpu, otlp]
      processors: [slurmattributes]
      exporters: [prometheusremotewrite]
EOF
}

unit_file() {
  cat <<'EOF'
# nodetel as a host service, sandboxed.
#
# It runs as root with a capability bounding set of two, because the features that make nodetel
# worth running on a GPU node read what only root can read:
#   CAP_SYS_PTRACE       reading /proc/<pid>/environ of other users' training processes, which is
#                        how slurmattributes learns each process's job, rank and GPUs
#   CAP_DAC_READ_SEARCH  reading root-only files such as /opt/ml/config/resource_config.json and
#                        statfs on mountpoints that are not world-searchable
# Being uid 0 also lets `scontrol listpids` talk to slurmstepd, which checks the caller's uid.
# Everything else (host metrics, NVML, OTLP, remote write) works without either capability; see
# docs/deployment.md for running it as an unprivileged user instead.
#
# Site settings go in /etc/nodetel/nodetel.env (AMP_REMOTE_WRITE_URL, AWS_REGION); change them
# there, or with `systemctl edit nodetel`, rather than in this file.

[Unit]
Description=nodetel per-node telemetry collector
Documentation=https://github.com/nodetel/nodetel/blob/main/docs/deployment.md
Wants=network-online.target
After=network-online.target
# Job enrichment asks Slurm; starting after its daemons avoids a burst of failed first queries.
After=slurmd.service slurmctld.service
# Restarts are for crashes and reboots of dependencies; a unit that fails ten starts in ten
# minutes (a rejected config, a binary that cannot run) is left failed for someone to look at.
StartLimitIntervalSec=10min
StartLimitBurst=10

[Service]
Type=simple
# Slurm's programs (squeue, scontrol, sinfo, sdiag) live in /opt/slurm/bin on HyperPod, which is
# not on systemd's default PATH.
Environment=PATH=/opt/slurm/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
EnvironmentFile=-/etc/nodetel/nodetel.env
# A config that does not validate fails the start with every problem in the journal, before
# the collector itself runs with it.
ExecStartPre=/usr/bin/nodetel validate --config /etc/nodetel/config.yaml
ExecStart=/usr/bin/nodetel run --config /etc/nodetel/config.yaml
Restart=always
RestartSec=5s
# nodetel flushes what it can on SIGTERM (service.shutdown_timeout, 10s by default) and keeps
# the rest in the disk queue; leave it time for that before SIGKILL.
TimeoutStopSec=30s
StateDirectory=nodetel
StateDirectoryMode=0700
WorkingDirectory=/var/lib/nodetel
# A per-node agent must never be what runs a training node out of memory.
MemoryHigh=384M
MemoryMax=512M

# Privileges.
CapabilityBoundingSet=CAP_SYS_PTRACE CAP_DAC_READ_SEARCH
NoNewPrivileges=yes
# Filesystem: read-only everywhere except the state directory (disk queue).
ProtectSystem=strict
ProtectHome=read-only
PrivateTmp=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectHostname=yes
UMask=0077
# Devices stay visible: NVML opens /dev/nvidiactl and /dev/nvidia<N> read-write. For the same
# reason there is no PrivateDevices=, DevicePolicy= or ProtectClock= (the last adds a device
# allow-list that hides /dev/nvidia*); without CAP_SYS_TIME the clock cannot be set anyway, and
# adjtimex(2) is allowed below because reading the clock's sync state (node_timex_*) goes
# through it.
# /proc stays whole: other processes must be visible for job mapping.
ProtectProc=default
# Kernel interfaces: IP for scrapes, OTLP and remote write; UNIX for munge and slurmstepd;
# netlink for network device and socket statistics.
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
SystemCallArchitectures=native
SystemCallFilter=@system-service
SystemCallFilter=~@privileged @resources @obsolete
SystemCallFilter=adjtimex
SystemCallErrorNumber=EPERM
# NVML is a closed-source library that has not been checked for writable-executable mappings,
# so MemoryDenyWriteExecute= is left off rather than risk losing GPU metrics.

[Install]
WantedBy=multi-user.target
EOF
}

gpu_profiling_dropin() {
  cat <<'EOF'
# Drop-in for nodetel.service on GPU nodes (install-nodetel.sh writes it on workers as
# /etc/systemd/system/nodetel.service.d/gpu-profiling.conf).
#
# NVML's GPU performance monitoring, which the DCGM_FI_PROF_* series come from (tensor core,
# DRAM and graphics engine activity, PCIe bytes; part of HyperPod's basic set), is restricted to
# CAP_SYS_ADMIN by the NVIDIA driver's default NVreg_RestrictProfilingToAdminUsers=1. That is
# why HyperPod starts dcgm-exporter with --cap-add SYS_ADMIN. Without this drop-in those series
# are missing and everything else still works. The system call filter still denies mount, swap,
# module and other privileged calls.
[Service]
CapabilityBoundingSet=CAP_SYS_ADMIN
EOF
}

# ---------------------------------------------------------------------------------------------
# Node facts.

# Role from the Slurm daemons running here, as install_observability.py decides it.
detect_role() {
  if "$systemctl_cmd" is-active --quiet slurmctld 2>/dev/null; then
    echo controller
  elif "$systemctl_cmd" is-active --quiet slurmd 2>/dev/null; then
    echo worker
  else
    echo login
  fi
}

normalise_role() {
  case "$1" in
    controller | head) echo controller ;;
    worker | compute) echo worker ;;
    login) echo login ;;
    auto) detect_role ;;
    *) die "unknown node type '$1'; use controller, worker, login or auto" ;;
  esac
}

# The region is the 4th field of ClusterConfig.ClusterArn (arn:aws:sagemaker:<region>:...).
region_from_resource_config() {
  local file arn=""
  file="$(at_root "$resource_config")"
  [ -r "$file" ] || return 0
  if command -v python3 >/dev/null 2>&1; then
    arn="$(python3 -c 'import json,sys
try:
    print(json.load(open(sys.argv[1]))["ClusterConfig"]["ClusterArn"])
except Exception:
    pass' "$file")"
  else
    arn="$(sed -n 's/.*"ClusterArn"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/p' "$file" | head -n 1)"
  fi
  case "$arn" in
    arn:*:sagemaker:*:*:cluster/*) printf '%s\n' "$arn" | cut -d: -f4 ;;
    "") ;;
    *) log "warning: ignoring ClusterArn '$arn' in $resource_config: not a SageMaker cluster ARN" ;;
  esac
}

region_from_url() {
  printf '%s\n' "$1" | sed -n 's#^https://aps-workspaces\.\([a-z0-9-]*\)\.amazonaws\.com/.*#\1#p'
}

short_hostname() {
  if [ -n "${NODETEL_HOSTNAME:-}" ]; then
    printf '%s\n' "$NODETEL_HOSTNAME"
  else
    hostname -s 2>/dev/null || uname -n | cut -d. -f1
  fi
}

# ---------------------------------------------------------------------------------------------
# Side effects; each one prints instead of acting under --dry-run.

run() {
  if [ "$dry_run" -eq 1 ]; then
    log "would run: $*"
  else
    "$@"
  fi
}

# Writes stdin to a path under the root, atomically, with a mode.
write_file() {
  local path="$1" mode="$2" dest tmp
  dest="$(at_root "$path")"
  if [ "$dry_run" -eq 1 ]; then
    log "would write $dest (mode $mode)"
    cat >/dev/null
    return 0
  fi
  mkdir -p "$(dirname "$dest")"
  tmp="$(mktemp "$dest.XXXXXX")"
  cat >"$tmp"
  chmod "$mode" "$tmp"
  mv -f "$tmp" "$dest"
  log "wrote $dest"
}

remove_file() {
  local dest
  dest="$(at_root "$1")"
  if [ -e "$dest" ] || [ -L "$dest" ]; then
    if [ "$dry_run" -eq 1 ]; then
      log "would remove $dest"
    else
      rm -f "$dest"
      log "removed $dest"
    fi
  fi
}

# ---------------------------------------------------------------------------------------------
# Install.

env_file() {
  printf '# Written by install-nodetel.sh (version %s); read by nodetel.service and the container.\n' "$VERSION_OF_SCRIPT"
  printf 'AMP_REMOTE_WRITE_URL=%s\n' "$amp_url"
  printf 'AWS_REGION=%s\n' "$region"
  printf 'NODETEL_ROLE=%s\n' "$role"
  if [ "$role" = worker ]; then
    if [ "$advanced" -eq 1 ]; then echo "NODETEL_GPU_COUNTERS=advanced"; else echo "NODETEL_GPU_COUNTERS=basic"; fi
  fi
}

# Picks the binary to run: an explicit one, one shipped next to this script, or one already
# installed (by the .deb package, say). Prints the path the unit should start.
install_binary() {
  local source="$binary"
  if [ -z "$source" ] && [ -x "$SCRIPT_DIR/nodetel" ]; then
    source="$SCRIPT_DIR/nodetel"
  fi
  if [ -n "$source" ]; then
    [ -x "$source" ] || die "--binary $source is not an executable file"
    local dest="$bin_dir/nodetel"
    if [ "$dry_run" -eq 1 ]; then
      log "would install $source as $(at_root "$dest")"
    else
      mkdir -p "$(at_root "$bin_dir")"
      install -m 0755 "$source" "$(at_root "$dest")"
      log "installed $(at_root "$dest")"
    fi
    printf '%s\n' "$dest"
    return 0
  fi
  local candidate
  for candidate in "$bin_dir/nodetel" /usr/bin/nodetel; do
    if [ -x "$(at_root "$candidate")" ]; then
      printf '%s\n' "$candidate"
      return 0
    fi
  done
  if [ "$dry_run" -eq 1 ]; then
    log "would need a nodetel binary: pass --binary or install the nodetel package"
    printf '%s\n' "$bin_dir/nodetel"
    return 0
  fi
  die "no nodetel binary: pass --binary PATH, put nodetel next to this script, or install the nodetel package"
}

validate_config() {
  local exe="$1" config_path
  config_path="$(at_root "$config_dir/config.yaml")"
  if [ "$validate" -eq 0 ] || [ "$dry_run" -eq 1 ]; then
    return 0
  fi
  if [ ! -x "$(at_root "$exe")" ]; then
    log "skipping validation: $(at_root "$exe") is not executable"
    return 0
  fi
  AMP_REMOTE_WRITE_URL="$amp_url" AWS_REGION="$region" \
    "$(at_root "$exe")" validate --config "$config_path" \
    || die "nodetel rejected $config_path (problems above); rerun with --no-validate to install anyway"
}

# HyperPod's own collectors (install_observability.py) send the same series under the same job
# and instance labels; with both running every sample would be written twice. Stop them as
# stop_observability.py does, and keep Docker's restart policy from bringing them back.
retire_hyperpod_collectors() {
  if [ "$keep_hyperpod" -eq 1 ]; then
    log "keeping HyperPod's exporters running (--keep-hyperpod-exporters)"
    return 0
  fi
  local name
  if command -v "$docker_cmd" >/dev/null 2>&1; then
    for name in node-exporter dcgm-exporter efa-exporter otel-collector; do
      if "$docker_cmd" inspect "$name" >/dev/null 2>&1; then
        run "$docker_cmd" update --restart=no "$name" >/dev/null || true
        if run "$docker_cmd" stop "$name" >/dev/null; then
          log "stopped HyperPod's $name container (docker start $name brings it back)"
        else
          log "warning: could not stop HyperPod's $name container"
        fi
      fi
    done
  fi
  if "$systemctl_cmd" is-enabled --quiet slurm_exporter 2>/dev/null \
    || "$systemctl_cmd" is-active --quiet slurm_exporter 2>/dev/null; then
    if run "$systemctl_cmd" disable --now slurm_exporter; then
      log "stopped HyperPod's slurm_exporter service"
    else
      log "warning: could not stop HyperPod's slurm_exporter service"
    fi
  fi
}

install_systemd() {
  local exe
  exe="$(install_binary)"
  validate_config "$exe"
  unit_file | sed "s#/usr/bin/nodetel #$exe #g" | write_file "$unit_dir/$unit_name" 0644
  if [ "$role" = worker ]; then
    gpu_profiling_dropin | write_file "$unit_dir/$unit_name.d/gpu-profiling.conf" 0644
  fi
  run mkdir -p "$(at_root "$state_dir")"
  retire_hyperpod_collectors
  run "$systemctl_cmd" daemon-reload
  run "$systemctl_cmd" enable "$unit_name"
  run "$systemctl_cmd" restart "$unit_name"
}

install_container() {
  local img="$image"
  if [ -z "$img" ]; then
    if [ "$role" = worker ]; then img="nodetel:latest-gpu"; else img="nodetel:latest"; fi
  fi
  # shellcheck disable=SC2054 # "ro,rslave" is one mount option list, not two array elements.
  local args=(run -d --name "$container_name" --restart always --net=host --pid=host
    -v /:/host:ro,rslave
    -v "$config_dir:/etc/nodetel:ro"
    -v "$state_dir:/var/lib/nodetel"
    --env-file "$config_dir/nodetel.env"
    -e NODETEL_ROOTFS=/host)
  if [ "$role" = worker ]; then
    # Root inside the container with two capabilities, as the systemd unit has them: job mapping
    # reads other users' /proc/<pid>/environ. --gpus makes the NVIDIA runtime mount /dev/nvidia*
    # and libnvidia-ml.so.1.
    # SYS_ADMIN: NVML's profiling counters (DCGM_FI_PROF_*), as dcgm-exporter is given it.
    args+=(--user 0:0 --cap-drop ALL --cap-add SYS_PTRACE --cap-add DAC_READ_SEARCH --cap-add SYS_ADMIN)
    if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi >/dev/null 2>&1; then
      args+=(--gpus all)
    else
      log "warning: nvidia-smi does not work here; starting without --gpus (no GPU metrics)"
    fi
  else
    args+=(--cap-drop ALL)
  fi
  args+=("$img" run --config /etc/nodetel/config.yaml)
  run mkdir -p "$(at_root "$state_dir")"
  # The image runs as uid 65532 unless told otherwise; the disk queue must be writable by it.
  if [ "$role" != worker ]; then
    run chown 65532:65532 "$(at_root "$state_dir")" || log "warning: could not hand $state_dir to uid 65532"
  fi
  retire_hyperpod_collectors
  # A container from an earlier install would hold the name.
  if [ "$dry_run" -eq 0 ]; then "$docker_cmd" rm -f "$container_name" >/dev/null 2>&1 || true; fi
  run "$docker_cmd" "${args[@]}"
}

install_all() {
  if [ "$role" = login ]; then
    log "login node: nothing to install (HyperPod installs no collector on login nodes)"
    return 0
  fi
  [ -n "$amp_url" ] || die "no remote write URL: pass --prometheus-remote-write-url or set AMP_REMOTE_WRITE_URL"
  case "$amp_url" in
    https://* | http://127.0.0.1* | http://localhost*) ;;
    *) die "remote write URL '$amp_url' must start with https://" ;;
  esac
  if [ -z "$region" ]; then region="$(region_from_resource_config)"; fi
  if [ -z "$region" ]; then region="$(region_from_url "$amp_url")"; fi
  [ -n "$region" ] || log "warning: no region found; nodetel will take it from the AWS environment"
  if [ "$advanced" -eq 1 ]; then
    log "--advanced: GPUs report HyperPod's advanced DCGM counter set; node_exporter's extra advanced collectors are not available"
  fi
  log "node $(short_hostname): role $role, region ${region:-unknown}, mode $mode"

  "config_$role" | write_file "$config_dir/config.yaml" 0644
  # The URL names the workspace, which is not a secret, but keep the file private anyway: sites
  # add AWS_* settings to it.
  env_file | write_file "$config_dir/nodetel.env" 0600
  if [ "$mode" = container ]; then install_container; else install_systemd; fi
  log "done: nodetel runs as the $role collector"
}

# ---------------------------------------------------------------------------------------------
# Uninstall: undo every step above, whichever mode was used.

uninstall_all() {
  if [ -e "$(at_root "$unit_dir/$unit_name")" ]; then
    run "$systemctl_cmd" disable --now "$unit_name" || log "warning: could not stop $unit_name"
    remove_file "$unit_dir/$unit_name"
    remove_file "$unit_dir/$unit_name.d/gpu-profiling.conf"
    if [ "$dry_run" -eq 0 ]; then rmdir "$(at_root "$unit_dir/$unit_name.d")" 2>/dev/null || true; fi
    run "$systemctl_cmd" daemon-reload || true
  fi
  if command -v "$docker_cmd" >/dev/null 2>&1 && "$docker_cmd" inspect "$container_name" >/dev/null 2>&1; then
    run "$docker_cmd" rm -f "$container_name" || log "warning: could not remove the $container_name container"
  fi
  remove_file "$config_dir/config.yaml"
  remove_file "$config_dir/nodetel.env"
  # Only a binary this script put there; the package's /usr/bin/nodetel belongs to dpkg.
  remove_file "$bin_dir/nodetel"
  local dir
  dir="$(at_root "$config_dir")"
  if [ -d "$dir" ] && [ "$dry_run" -eq 0 ]; then rmdir "$dir" 2>/dev/null || true; fi
  if [ "$purge" -eq 1 ]; then
    dir="$(at_root "$state_dir")"
    if [ -d "$dir" ]; then
      if [ "$dry_run" -eq 1 ]; then log "would remove $dir"; else rm -rf "$dir"; log "removed $dir"; fi
    fi
  else
    log "kept $(at_root "$state_dir") (disk queue); --purge removes it"
  fi
  log "done: nodetel removed"
}

case "$action" in
  print-config)
    role="$(normalise_role "$node_type")"
    [ "$role" != login ] || die "login nodes get no config"
    "config_$role"
    ;;
  uninstall) uninstall_all ;;
  install)
    role="$(normalise_role "$node_type")"
    install_all
    ;;
esac
