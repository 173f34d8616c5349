#!/usr/bin/env bash
# Tests deploy/hyperpod/install-nodetel.sh against scratch roots, with a fake resource_config.json
# and fake systemctl, docker, nvidia-smi and nodetel commands that record how they were called.
# Nothing outside the scratch directory is touched and nothing is sent over the network.
set -uo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
installer="$repo/deploy/hyperpod/install-nodetel.sh"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT

passed=0
failed=0
current=""

fail() {
  printf '  FAIL %s: %s\n' "$current" "$*"
  failed=$((failed + 1))
}

# Runs one test function; it fails if any assertion in it failed.
run_test() {
  current="$1"
  local before=$failed
  "$1"
  if [ "$failed" -eq "$before" ]; then
    printf '  ok   %s\n' "$1"
    passed=$((passed + 1))
  fi
}

assert_file() { [ -f "$1" ] || fail "expected file $1"; }
assert_absent() { [ ! -e "$1" ] || fail "expected $1 not to exist"; }
assert_contains() { grep -qF -- "$2" "$1" 2>/dev/null || fail "expected $1 to contain '$2'"; }
assert_not_contains() { ! grep -qF -- "$2" "$1" 2>/dev/null || fail "expected $1 not to contain '$2'"; }
assert_same() { cmp -s "$1" "$2" || fail "expected $1 to equal $2: $(diff "$1" "$2" | head -5)"; }

# A fresh node: a root directory, a fake PATH, and a log of every fake command call.
new_node() {
  node="$scratch/$1"
  root="$node/root"
  fakes="$node/bin"
  calls="$node/calls.log"
  mkdir -p "$root" "$fakes"
  : >"$calls"
  cat >"$fakes/systemctl" <<'EOF'
#!/usr/bin/env bash
echo "systemctl $*" >>"$FAKE_CALLS"
if [ "$1" = is-active ] || [ "$1" = is-enabled ]; then
  for svc in $FAKE_ACTIVE; do [ "$svc" = "${!#}" ] && exit 0; done
  exit 3
fi
exit 0
EOF
  cat >"$fakes/docker" <<'EOF'
#!/usr/bin/env bash
echo "docker $*" >>"$FAKE_CALLS"
if [ "$1" = inspect ]; then
  for c in ${FAKE_HYPERPOD_CONTAINERS:-}; do [ "$c" = "$2" ] && exit 0; done
  [ -e "$FAKE_CONTAINER" ] || exit 1
fi
[ "$1" = run ] && touch "$FAKE_CONTAINER"
[ "$1" = rm ] && rm -f "$FAKE_CONTAINER"
exit 0
EOF
  cat >"$fakes/nvidia-smi" <<'EOF'
#!/usr/bin/env bash
exit "${FAKE_NVIDIA_SMI_RC:-0}"
EOF
  # The binary to install: answers --version and records validate calls.
  cat >"$node/nodetel" <<'EOF'
#!/usr/bin/env bash
if [ "$1" = --version ]; then echo "nodetel 0.0.0-test"; exit 0; fi
echo "nodetel $* AMP_REMOTE_WRITE_URL=$AMP_REMOTE_WRITE_URL AWS_REGION=$AWS_REGION" >>"$FAKE_CALLS"
if [ "$1" = validate ] && [ -n "${FAKE_INVALID:-}" ]; then
  echo "receivers.gpu: unknown receiver type" >&2
  exit 1
fi
exit 0
EOF
  chmod +x "$fakes"/* "$node/nodetel"
}

# The HyperPod agent's resource config, with a cluster ARN in eu-west-2.
write_resource_config() {
  mkdir -p "$root/opt/ml/config"
  cat >"$root/opt/ml/config/resource_config.json" <<'EOF'
{
  "ClusterConfig": {
    "ClusterArn": "arn:aws:sagemaker:eu-west-2:123456789012:cluster/abcd1234efgh",
    "ClusterName": "ml-cluster"
  },
  "InstanceGroups": [
    {"Name": "controller-machine", "Instances": [{"InstanceName": "controller-machine-1", "CustomerIpAddress": "10.1.0.10"}]},
    {"Name": "worker-group-1", "Instances": [{"InstanceName": "worker-group-1-1", "CustomerIpAddress": "10.1.0.20"}]}
  ]
}
EOF
}

readonly url="https://aps-workspaces.us-west-2.amazonaws.com/workspaces/ws-0123-abcd/api/v1/remote_write"

# Runs the installer on the current node with its fakes; extra arguments are passed on.
installer_run() {
  env -u AWS_REGION -u AMP_REMOTE_WRITE_URL -u SAGEMAKER_RESOURCE_CONFIG_PATH \
    PATH="$fakes:$PATH" SYSTEMCTL="$fakes/systemctl" DOCKER="$fakes/docker" FAKE_CALLS="$calls" FAKE_ACTIVE="${active:-}" FAKE_CONTAINER="$node/container" \
    NODETEL_HOSTNAME=ip-10-1-0-20 \
    bash "$installer" --root "$root" "$@" >"$node/out.log" 2>&1
}

files_under() { (cd "$1" && find . -type f -o -type l | sort); }

test_controller_is_detected_from_slurmctld_and_gets_the_controller_config() {
  new_node controller
  write_resource_config
  active="slurmctld munge" installer_run --prometheus-remote-write-url "$url" --binary "$node/nodetel" \
    || fail "installer failed: $(cat "$node/out.log")"
  assert_same "$root/etc/nodetel/config.yaml" "$repo/deploy/configs/controller.yaml"
  assert_contains "$root/etc/nodetel/nodetel.env" "AMP_REMOTE_WRITE_URL=$url"
  assert_contains "$root/etc/nodetel/nodetel.env" "NODETEL_ROLE=controller"
  assert_not_contains "$root/etc/nodetel/nodetel.env" "NODETEL_GPU_COUNTERS"
  # The cluster ARN's region wins over the one in the URL: it is where the cluster runs.
  assert_contains "$root/etc/nodetel/nodetel.env" "AWS_REGION=eu-west-2"
  [ "$(stat -c %a "$root/etc/nodetel/nodetel.env" 2>/dev/null)" = 600 ] || fail "nodetel.env is not mode 600"
  [ -x "$root/usr/local/bin/nodetel" ] || fail "binary not installed"
  assert_contains "$calls" "nodetel validate --config $root/etc/nodetel/config.yaml AMP_REMOTE_WRITE_URL=$url AWS_REGION=eu-west-2"
  assert_contains "$calls" "systemctl daemon-reload"
  assert_contains "$calls" "systemctl enable nodetel.service"
  assert_contains "$calls" "systemctl restart nodetel.service"
  [ -d "$root/var/lib/nodetel" ] || fail "state directory not created"
  assert_absent "$root/etc/systemd/system/nodetel.service.d"
}

test_the_installed_unit_is_the_shipped_unit_with_the_installed_binary_path() {
  new_node unit
  active="slurmd" installer_run --amp-url "$url" --binary "$node/nodetel" || fail "installer failed"
  local unit="$root/etc/systemd/system/nodetel.service"
  assert_file "$unit"
  assert_contains "$unit" "ExecStart=/usr/local/bin/nodetel run --config /etc/nodetel/config.yaml"
  assert_contains "$unit" "ExecStartPre=/usr/local/bin/nodetel validate --config /etc/nodetel/config.yaml"
  sed 's#/usr/local/bin/nodetel #/usr/bin/nodetel #g' "$unit" >"$node/unit.normalised"
  assert_same "$node/unit.normalised" "$repo/deploy/systemd/nodetel.service"
  # A worker's GPUs need CAP_SYS_ADMIN for NVML's profiling counters: the shipped drop-in.
  assert_same "$root/etc/systemd/system/nodetel.service.d/gpu-profiling.conf" "$repo/deploy/systemd/gpu-profiling.conf"
}

test_worker_is_detected_from_slurmd_and_gets_the_worker_config() {
  new_node worker
  write_resource_config
  active="slurmd" installer_run --prometheus-remote-write-url "$url" --binary "$node/nodetel" \
    || fail "installer failed: $(cat "$node/out.log")"
  assert_same "$root/etc/nodetel/config.yaml" "$repo/deploy/configs/worker.yaml"
  assert_contains "$root/etc/nodetel/nodetel.env" "NODETEL_ROLE=worker"
  assert_contains "$root/etc/nodetel/nodetel.env" "NODETEL_GPU_COUNTERS=basic"
  assert_contains "$node/out.log" "node ip-10-1-0-20: role worker, region eu-west-2, mode systemd"
}

test_login_node_gets_nothing() {
  new_node login
  write_resource_config
  active="sshd" installer_run --prometheus-remote-write-url "$url" --binary "$node/nodetel" \
    || fail "installer failed on a login node"
  [ "$(files_under "$root")" = "./opt/ml/config/resource_config.json" ] \
    || fail "files were written on a login node: $(files_under "$root")"
  assert_not_contains "$calls" "systemctl enable"
  assert_contains "$node/out.log" "login node: nothing to install"
}

test_hyperpod_flags_compute_and_advanced_are_accepted() {
  new_node compute
  # No Slurm daemon runs yet (lifecycle scripts install before slurmd starts): the flag decides.
  active="" installer_run --node-type compute --prometheus-remote-write-url "$url" --advanced \
    --binary "$node/nodetel" || fail "installer failed: $(cat "$node/out.log")"
  assert_same "$root/etc/nodetel/config.yaml" "$repo/deploy/configs/worker.yaml"
  assert_contains "$node/out.log" "--advanced"
  assert_contains "$root/etc/nodetel/nodetel.env" "NODETEL_GPU_COUNTERS=advanced"
}

test_region_falls_back_to_the_url_without_resource_config() {
  new_node noarn
  active="slurmctld" installer_run --prometheus-remote-write-url "$url" --binary "$node/nodetel" \
    || fail "installer failed"
  assert_contains "$root/etc/nodetel/nodetel.env" "AWS_REGION=us-west-2"
}

test_an_explicit_region_wins() {
  new_node explicit
  write_resource_config
  active="slurmctld" installer_run --prometheus-remote-write-url "$url" --region ap-south-1 \
    --binary "$node/nodetel" || fail "installer failed"
  assert_contains "$root/etc/nodetel/nodetel.env" "AWS_REGION=ap-south-1"
}

test_a_missing_url_is_an_error_and_writes_nothing() {
  new_node nourl
  if active="slurmd" installer_run --binary "$node/nodetel"; then fail "installer succeeded without a URL"; fi
  assert_contains "$node/out.log" "no remote write URL"
  [ -z "$(files_under "$root")" ] || fail "files were written: $(files_under "$root")"
}

test_a_plain_http_url_is_rejected() {
  new_node http
  if active="slurmd" installer_run --amp-url "http://example.com/api/v1/remote_write" --binary "$node/nodetel"; then
    fail "installer accepted a plain-http remote URL"
  fi
  assert_contains "$node/out.log" "must start with https://"
}

test_a_config_nodetel_rejects_stops_the_install() {
  new_node invalid
  if FAKE_INVALID=1 active="slurmd" installer_run --amp-url "$url" --binary "$node/nodetel"; then
    fail "installer succeeded although validate failed"
  fi
  assert_contains "$node/out.log" "--no-validate"
  assert_absent "$root/etc/systemd/system/nodetel.service"
  assert_not_contains "$calls" "systemctl enable"
  # --no-validate installs anyway and never calls validate.
  : >"$calls"
  FAKE_INVALID=1 active="slurmd" installer_run --amp-url "$url" --binary "$node/nodetel" --no-validate \
    || fail "installer failed with --no-validate"
  assert_not_contains "$calls" "nodetel validate"
  assert_file "$root/etc/systemd/system/nodetel.service"
}

test_dry_run_changes_nothing() {
  new_node dry
  write_resource_config
  active="slurmd" installer_run --amp-url "$url" --binary "$node/nodetel" --dry-run || fail "dry run failed"
  [ "$(files_under "$root")" = "./opt/ml/config/resource_config.json" ] \
    || fail "dry run wrote files: $(files_under "$root")"
  assert_not_contains "$calls" "systemctl daemon-reload"
  assert_not_contains "$calls" "nodetel validate"
  assert_contains "$node/out.log" "would write $root/etc/nodetel/config.yaml"
  assert_contains "$node/out.log" "would run: $fakes/systemctl enable nodetel.service"
}

test_uninstall_removes_everything_but_the_disk_queue_and_purge_removes_that_too() {
  new_node uninstall
  active="slurmd" installer_run --amp-url "$url" --binary "$node/nodetel" || fail "install failed"
  mkdir -p "$root/var/lib/nodetel/queue" && echo segment >"$root/var/lib/nodetel/queue/0001"
  installer_run --uninstall || fail "uninstall failed: $(cat "$node/out.log")"
  assert_contains "$calls" "systemctl disable --now nodetel.service"
  [ "$(files_under "$root")" = "./var/lib/nodetel/queue/0001" ] \
    || fail "uninstall left files: $(files_under "$root")"
  assert_absent "$root/etc/nodetel"
  installer_run --uninstall --purge || fail "purge failed"
  [ -z "$(files_under "$root")" ] || fail "purge left files: $(files_under "$root")"
  assert_absent "$root/var/lib/nodetel"
}

test_uninstall_keeps_a_packaged_binary() {
  new_node packaged
  mkdir -p "$root/usr/bin" && cp "$node/nodetel" "$root/usr/bin/nodetel"
  active="slurmctld" installer_run --amp-url "$url" || fail "install with the packaged binary failed"
  assert_contains "$root/etc/systemd/system/nodetel.service" "ExecStart=/usr/bin/nodetel run"
  assert_absent "$root/usr/local/bin/nodetel"
  installer_run --uninstall || fail "uninstall failed"
  assert_file "$root/usr/bin/nodetel"
}

test_container_mode_on_a_worker_runs_the_gpu_image_with_host_mounts() {
  new_node container
  write_resource_config
  active="slurmd" installer_run --amp-url "$url" --container || fail "container install failed: $(cat "$node/out.log")"
  assert_same "$root/etc/nodetel/config.yaml" "$repo/deploy/configs/worker.yaml"
  assert_absent "$root/etc/systemd/system/nodetel.service"
  local run_line
  run_line="$(grep '^docker run' "$calls")"
  for want in "--net=host" "--pid=host" "-v /:/host:ro,rslave" "-v /etc/nodetel:/etc/nodetel:ro" \
    "--env-file /etc/nodetel/nodetel.env" "-e NODETEL_ROOTFS=/host" "--cap-drop ALL" "--cap-add SYS_PTRACE" \
    "--gpus all" "--cap-add SYS_ADMIN" "nodetel:latest-gpu run --config /etc/nodetel/config.yaml"; do
    case "$run_line" in *"$want"*) ;; *) fail "docker run lacks '$want': $run_line" ;; esac
  done
  installer_run --uninstall || fail "uninstall failed"
  assert_contains "$calls" "docker rm -f nodetel"
}

test_container_mode_on_a_controller_runs_unprivileged_without_gpus() {
  new_node container-controller
  active="slurmctld" installer_run --amp-url "$url" --container --image registry.example/nodetel:1.2.3 \
    || fail "container install failed"
  local run_line
  run_line="$(grep '^docker run' "$calls")"
  case "$run_line" in *"--gpus"* | *"--user 0:0"* | *"SYS_PTRACE"* | *"SYS_ADMIN"*) fail "controller container is privileged: $run_line" ;; esac
  case "$run_line" in *"registry.example/nodetel:1.2.3 run"*) ;; *) fail "image not used: $run_line" ;; esac
}

test_print_config_matches_the_shipped_examples() {
  new_node print
  for role in controller worker; do
    bash "$installer" --print-config "$role" >"$node/$role.yaml" || fail "--print-config $role failed"
    assert_same "$node/$role.yaml" "$repo/deploy/configs/$role.yaml"
  done
  if bash "$installer" --print-config login >/dev/null 2>&1; then fail "--print-config login succeeded"; fi
}

test_hyperpods_own_collectors_are_stopped_so_series_are_not_sent_twice() {
  new_node retire
  FAKE_HYPERPOD_CONTAINERS="node-exporter dcgm-exporter efa-exporter otel-collector" active="slurmd slurm_exporter" \
    installer_run --amp-url "$url" --binary "$node/nodetel" || fail "installer failed: $(cat "$node/out.log")"
  for c in node-exporter dcgm-exporter efa-exporter otel-collector; do
    assert_contains "$calls" "docker update --restart=no $c"
    assert_contains "$calls" "docker stop $c"
  done
  assert_contains "$calls" "systemctl disable --now slurm_exporter"
  # They are stopped before nodetel starts.
  local stop_line start_line
  stop_line="$(grep -n "docker stop otel-collector" "$calls" | cut -d: -f1)"
  start_line="$(grep -n "systemctl restart nodetel.service" "$calls" | cut -d: -f1)"
  [ -n "$stop_line" ] && [ -n "$start_line" ] && [ "$stop_line" -lt "$start_line" ] \
    || fail "HyperPod's collector is not stopped before nodetel starts"
}

test_keep_hyperpod_exporters_leaves_them_running() {
  new_node keep
  FAKE_HYPERPOD_CONTAINERS="node-exporter otel-collector" active="slurmd" \
    installer_run --amp-url "$url" --binary "$node/nodetel" --keep-hyperpod-exporters || fail "installer failed"
  assert_not_contains "$calls" "docker stop"
  assert_contains "$calls" "systemctl restart nodetel.service"
}

test_under_root_the_machines_services_are_left_alone_unless_named() {
  new_node hands-off
  # The fakes are on PATH, but SYSTEMCTL and DOCKER are not set: nothing may call them.
  env -u SYSTEMCTL -u DOCKER -u AWS_REGION PATH="$fakes:$PATH" FAKE_CALLS="$calls" FAKE_ACTIVE="slurmd" \
    FAKE_HYPERPOD_CONTAINERS="node-exporter" \
    bash "$installer" --root "$root" --node-type worker --amp-url "$url" --binary "$node/nodetel" \
    >"$node/out.log" 2>&1 || fail "installer failed: $(cat "$node/out.log")"
  assert_not_contains "$calls" "systemctl"
  assert_not_contains "$calls" "docker"
  assert_file "$root/etc/systemd/system/nodetel.service"
  assert_contains "$node/out.log" "skipping 'daemon-reload'"
}

test_an_unknown_node_type_is_rejected_before_anything_is_written() {
  new_node badtype
  if installer_run --node-type gpu-worker --amp-url "$url" --binary "$node/nodetel"; then
    fail "unknown node type accepted"
  fi
  assert_contains "$node/out.log" "unknown node type 'gpu-worker'"
  [ -z "$(files_under "$root")" ] || fail "files were written: $(files_under "$root")"
}

test_unknown_options_are_rejected() {
  new_node badopt
  if installer_run --prometheus-url "$url"; then fail "unknown option accepted"; fi
  assert_contains "$node/out.log" "unknown option: --prometheus-url"
}

echo "install-nodetel.sh:"
for t in $(declare -F | awk '{print $3}' | grep '^test_'); do
  run_test "$t"
done
printf '%d passed, %d failed\n' "$passed" "$failed"
[ "$failed" -eq 0 ]
