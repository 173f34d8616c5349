#!/usr/bin/env bash
# Tests deploy/studio/on-start.sh with a stand-in nodetel in a scratch home directory: it starts
# one sidecar with the right config and environment, labels it with the space name, and does
# nothing (successfully) when it is not set up. No network, nothing outside the scratch directory.
set -uo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
script="$repo/deploy/studio/on-start.sh"
scratch="$(mktemp -d)"
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  rm -rf "$scratch"
}
trap cleanup EXIT

passed=0
failed=0
fail() { printf '  FAIL %s: %s\n' "$current" "$*"; failed=$((failed + 1)); }
run_test() {
  current="$1"
  local before=$failed
  "$1"
  if [ "$failed" -eq "$before" ]; then printf '  ok   %s\n' "$1"; passed=$((passed + 1)); fi
}

readonly url="https://aps-workspaces.eu-west-1.amazonaws.com/workspaces/ws-1/api/v1/remote_write"

# A space's home with the sidecar installed; the stand-in records its arguments and environment
# and then waits like the real one.
new_space() {
  home="$scratch/$1"
  mkdir -p "$home/.nodetel" "$home/metadata"
  cat >"$home/.nodetel/nodetel" <<'EOF'
#!/usr/bin/env bash
echo "args: $*" >"$HOME/.nodetel/started"
echo "url: $AMP_REMOTE_WRITE_URL region: $AWS_REGION space: $NODETEL_STUDIO_SPACE" >>"$HOME/.nodetel/started"
exec sleep 30
EOF
  chmod +x "$home/.nodetel/nodetel"
  cp "$repo/deploy/configs/studio-sidecar.yaml" "$home/.nodetel/"
  echo '{"DomainId": "d-abc", "SpaceName": "research-space", "UserProfileName": "ana"}' >"$home/metadata/resource-metadata.json"
}

on_start() {
  env -u AWS_REGION -u AWS_DEFAULT_REGION HOME="$home" NODETEL_STUDIO_METADATA="$home/metadata/resource-metadata.json" \
    "$@" bash "$script" >>"$home/out.log" 2>&1
}

wait_for() {
  for _ in $(seq 1 50); do [ -s "$1" ] && return 0; sleep 0.1; done
  return 1
}

test_it_starts_one_sidecar_labelled_with_the_space() {
  new_space start
  on_start AMP_REMOTE_WRITE_URL="$url" AWS_DEFAULT_REGION=eu-west-1 || fail "on-start failed: $(cat "$home/out.log")"
  wait_for "$home/.nodetel/started" || { fail "nodetel was not started: $(cat "$home/out.log")"; return; }
  pids+=("$(cat "$home/.nodetel/nodetel.pid")")
  grep -qF "args: run --config $home/.nodetel/studio-sidecar.yaml" "$home/.nodetel/started" || fail "wrong arguments"
  grep -qF "url: $url region: eu-west-1 space: research-space" "$home/.nodetel/started" \
    || fail "wrong environment: $(cat "$home/.nodetel/started")"
  kill -0 "$(cat "$home/.nodetel/nodetel.pid")" 2>/dev/null || fail "the pid file does not name a running process"
  # A second run (the space's server restarted) leaves the running sidecar alone.
  rm "$home/.nodetel/started"
  on_start AMP_REMOTE_WRITE_URL="$url" || fail "second on-start failed"
  grep -q "already running" "$home/out.log" || fail "second run did not notice the running sidecar"
  sleep 0.3
  [ ! -e "$home/.nodetel/started" ] || fail "a second sidecar was started"
}

test_without_a_url_it_starts_nothing_and_succeeds() {
  new_space nourl
  on_start || fail "on-start failed without a URL (a failing lifecycle script blocks the space)"
  grep -q "AMP_REMOTE_WRITE_URL is not set" "$home/out.log" || fail "no message"
  [ ! -e "$home/.nodetel/nodetel.pid" ] || fail "something was started"
}

test_without_the_binary_it_starts_nothing_and_succeeds() {
  new_space nobinary
  rm "$home/.nodetel/nodetel"
  on_start AMP_REMOTE_WRITE_URL="$url" || fail "on-start failed without the binary"
  grep -q "is missing" "$home/out.log" || fail "no message"
}

test_without_metadata_the_space_label_falls_back() {
  new_space nometa
  rm "$home/metadata/resource-metadata.json"
  on_start AMP_REMOTE_WRITE_URL="$url" || fail "on-start failed"
  wait_for "$home/.nodetel/started" || { fail "nodetel was not started"; return; }
  pids+=("$(cat "$home/.nodetel/nodetel.pid")")
  grep -qF "space: studio" "$home/.nodetel/started" || fail "space label: $(cat "$home/.nodetel/started")"
}

echo "studio on-start.sh:"
for t in $(declare -F | awk '{print $3}' | grep '^test_'); do
  run_test "$t"
done
printf '%d passed, %d failed\n' "$passed" "$failed"
[ "$failed" -eq 0 ]
