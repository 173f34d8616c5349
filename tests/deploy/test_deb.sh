#!/usr/bin/env bash
# Builds the .deb with deploy/deb/build-deb.sh, unpacks it into a throwaway root with dpkg -x and
# checks its files, metadata and that the packaged binary runs.
#
# The binary is $NODETEL_BIN, else a release build in target/ (glibc or musl). Without one, the
# package is built around a stand-in script so the layout is still checked; the run of the real
# binary is then reported as skipped.
set -uo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
failed=0
fail() { printf '  FAIL %s\n' "$*"; failed=$((failed + 1)); }
ok() { printf '  ok   %s\n' "$*"; }
# expect DESCRIPTION COMMAND...: passes when the command succeeds.
expect() {
  local what="$1"
  shift
  if "$@"; then ok "$what"; else fail "$what"; fi
}

echo "build-deb.sh:"
if ! command -v dpkg-deb >/dev/null; then
  echo "  skip: dpkg-deb is not installed"
  exit 0
fi

binary="${NODETEL_BIN:-}"
if [ -z "$binary" ]; then
  for candidate in "$repo/target/release/nodetel" "$repo/target/x86_64-unknown-linux-musl/release/nodetel"; do
    if [ -x "$candidate" ]; then binary="$candidate"; break; fi
  done
fi
real=1
if [ -z "$binary" ]; then
  real=0
  binary="$scratch/nodetel"
  printf '#!/bin/sh\necho "nodetel 0.1.0"\n' >"$binary"
  chmod +x "$binary"
fi
expected_version="$("$binary" --version | awk '{print $2}')"

deb="$("$repo/deploy/deb/build-deb.sh" --binary "$binary" --out "$scratch/out" --arch amd64)" \
  || { fail "build-deb.sh failed"; exit 1; }
expect "package built: $(basename "$deb") ($(du -k "$deb" | cut -f1) KiB)" test -f "$deb"

expect "the package is called nodetel" test "$(dpkg-deb -f "$deb" Package)" = nodetel
expect "the package version ($(dpkg-deb -f "$deb" Version)) is the binary's ($expected_version)" \
  test "$(dpkg-deb -f "$deb" Version)" = "$expected_version"

if [ "$real" -eq 1 ] && LC_ALL=C readelf -l "$binary" 2>/dev/null | grep -q 'program interpreter'; then
  expect "a dynamically linked binary depends on libc6 ($(dpkg-deb -f "$deb" Depends))" \
    grep -q '^libc6 (>= 2\.[0-9]*)$' <<<"$(dpkg-deb -f "$deb" Depends)"
else
  expect "a static binary depends on nothing" test -z "$(dpkg-deb -f "$deb" Depends)"
fi

contents="$(dpkg-deb -c "$deb" | awk '{print $6}')"
missing=""
for path in ./usr/bin/nodetel ./usr/lib/systemd/system/nodetel.service ./etc/nodetel/config.yaml \
  ./etc/nodetel/nodetel.env ./usr/share/nodetel/examples/worker.yaml ./usr/share/nodetel/examples/controller.yaml \
  ./usr/share/nodetel/examples/studio-sidecar.yaml ./usr/share/nodetel/install-nodetel.sh \
  ./usr/share/nodetel/gpu-profiling.conf \
  ./usr/share/doc/nodetel/copyright; do
  grep -qx -- "$path" <<<"$contents" || missing="$missing $path"
done
expect "expected files are packaged${missing:+; missing:$missing}" test -z "$missing"

dpkg-deb -e "$deb" "$scratch/control"
if [ "$(sort "$scratch/control/conffiles")" = "$(printf '%s\n' /etc/nodetel/config.yaml /etc/nodetel/nodetel.env)" ]; then
  ok "config files are conffiles"
else
  fail "conffiles: $(cat "$scratch/control/conffiles")"
fi
for script in postinst prerm postrm; do
  sh -n "$scratch/control/$script" || fail "$script has a syntax error"
done

root="$scratch/root"
dpkg-deb -x "$deb" "$root"
expect "the packaged unit is deploy/systemd/nodetel.service" \
  cmp -s "$root/usr/lib/systemd/system/nodetel.service" "$repo/deploy/systemd/nodetel.service"
expect "nodetel.env is private (mode $(stat -c %a "$root/etc/nodetel/nodetel.env"))" \
  test "$(stat -c %a "$root/etc/nodetel/nodetel.env")" = 600

if [ "$real" -eq 1 ]; then
  out="$("$root/usr/bin/nodetel" --version 2>&1)"
  case "$out" in
    "nodetel $expected_version"*) ok "unpacked binary runs: $out" ;;
    *) fail "unpacked nodetel --version printed: $out" ;;
  esac
  if "$root/usr/bin/nodetel" validate --config "$root/etc/nodetel/config.yaml" >"$scratch/validate.log" 2>&1; then
    ok "the packaged config validates"
  else
    fail "the packaged config does not validate: $(cat "$scratch/validate.log")"
  fi
else
  echo "  skip: no nodetel binary built (set NODETEL_BIN or cargo build --release); layout checked with a stand-in"
fi

[ "$failed" -eq 0 ]
