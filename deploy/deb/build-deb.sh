#!/usr/bin/env bash
# Builds a Debian package of nodetel with dpkg-deb from an already built binary:
#
#   cargo build --release && deploy/deb/build-deb.sh
#   deploy/deb/build-deb.sh --binary target/x86_64-unknown-linux-musl/release/nodetel
#
# The package holds the binary, the systemd unit (not enabled: the site config comes first), the
# built-in config as /etc/nodetel/config.yaml, an environment file for site settings, the example
# configs and the HyperPod installer. Prints the path of the .deb it wrote.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
binary="$repo/target/release/nodetel"
out_dir="$repo/target/deb"
version=""
arch=""

while [ $# -gt 0 ]; do
  case "$1" in
    --binary) binary="$2"; shift 2 ;;
    --out) out_dir="$2"; shift 2 ;;
    --version) version="$2"; shift 2 ;;
    --arch) arch="$2"; shift 2 ;;
    -h | --help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "build-deb: unknown option $1" >&2; exit 2 ;;
  esac
done

[ -x "$binary" ] || { echo "build-deb: no executable at $binary; build it first (cargo build --release)" >&2; exit 1; }
command -v dpkg-deb >/dev/null || { echo "build-deb: dpkg-deb is required" >&2; exit 1; }

if [ -z "$version" ]; then
  # `nodetel --version` prints "nodetel X.Y.Z"; the package version is the binary's own.
  version="$("$binary" --version | awk '{print $2}')"
fi
case "$version" in
  [0-9]*) ;;
  *) echo "build-deb: cannot tell the version ('$version'); pass --version" >&2; exit 1 ;;
esac
if [ -z "$arch" ]; then
  case "$(od -An -t x1 -j 18 -N 2 "$binary" | tr -d ' \n')" in
    3e00) arch=amd64 ;;
    b700) arch=arm64 ;;
    *) echo "build-deb: unknown machine type of $binary; pass --arch" >&2; exit 1 ;;
  esac
fi
# A binary with a program interpreter is dynamically linked against glibc (the GPU build); the
# static musl build needs nothing.
depends=""
if LC_ALL=C readelf -l "$binary" 2>/dev/null | grep -q 'Requesting program interpreter'; then
  # The newest glibc symbol version the binary needs is the oldest libc6 it runs with.
  glibc="$(LC_ALL=C readelf -V "$binary" 2>/dev/null | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -V | tail -n 1)"
  depends="libc6 (>= ${glibc:-2.31})"
fi

stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
pkg="$stage/nodetel"

install -D -m 0755 "$binary" "$pkg/usr/bin/nodetel"
install -D -m 0644 "$repo/deploy/systemd/nodetel.service" "$pkg/usr/lib/systemd/system/nodetel.service"
install -D -m 0644 "$repo/config/default.yaml" "$pkg/etc/nodetel/config.yaml"
install -d -m 0755 "$pkg/usr/share/nodetel/examples"
install -m 0644 "$repo"/deploy/configs/*.yaml "$pkg/usr/share/nodetel/examples/"
install -D -m 0755 "$repo/deploy/hyperpod/install-nodetel.sh" "$pkg/usr/share/nodetel/install-nodetel.sh"
install -m 0644 "$repo/deploy/systemd/gpu-profiling.conf" "$pkg/usr/share/nodetel/gpu-profiling.conf"
install -m 0600 "$repo/deploy/deb/nodetel.env" "$pkg/etc/nodetel/nodetel.env"
install -d -m 0755 "$pkg/usr/share/doc/nodetel"
cat >"$pkg/usr/share/doc/nodetel/copyright" <<'EOF'
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: nodetel
Source: https://github.com/nodetel/nodetel

Files: *
Copyright: nodetel contributors
License: Apache-2.0
 On Debian systems the full text of the Apache License 2.0 is in
 /usr/share/common-licenses/Apache-2.0.
EOF

mkdir -p "$pkg/DEBIAN"
installed_size="$(du -sk --exclude=DEBIAN "$pkg" | cut -f1)"
{
  echo "Package: nodetel"
  echo "Version: $version"
  echo "Architecture: $arch"
  echo "Maintainer: nodetel maintainers <nodetel@users.noreply.github.com>"
  echo "Section: admin"
  echo "Priority: optional"
  echo "Installed-Size: $installed_size"
  [ -z "$depends" ] || echo "Depends: $depends"
  echo "Homepage: https://github.com/nodetel/nodetel"
  echo "Description: per-node telemetry collector for GPU training clusters"
  echo " One small agent in place of node_exporter, dcgm-exporter, the EFA and Slurm"
  echo " exporters and an OpenTelemetry Collector: host, GPU, EFA and Slurm metrics with"
  echo " job and rank labels, OTLP in, Prometheus remote write (SigV4) out."
} >"$pkg/DEBIAN/control"
printf '%s\n' /etc/nodetel/config.yaml /etc/nodetel/nodetel.env >"$pkg/DEBIAN/conffiles"

install -m 0755 "$repo"/deploy/deb/maintainer-scripts/{postinst,prerm,postrm} "$pkg/DEBIAN/"

mkdir -p "$out_dir"
deb="$out_dir/nodetel_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Zxz --build "$pkg" "$deb" >/dev/null
echo "$deb"
