#!/usr/bin/env bash
# Builds the ksync agent image (radar + Syncthing in one image; the agent pod runs it as two
# containers) from local files, with no registry: a root filesystem is assembled from the
# radar binary, Debian's syncthing and the shared libraries both need, then `docker import`ed.
#
# usage: deploy/build-agent-image.sh [--radar PATH] [--syncthing PATH] [--tag TAG]
#   --radar      radar binary to ship (default: build it with `cargo build --release -p radar`)
#   --syncthing  Syncthing binary (default: the one on PATH; `apt-get install syncthing`)
#   --tag        image tag (default: ksync/agent:<workspace version>)
# Prints the tag on success.
set -euo pipefail
cd "$(dirname "$0")/.."

version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
radar=""
syncthing="$(command -v syncthing || true)"
tag="ksync/agent:${version}"
while [ $# -gt 0 ]; do
  case "$1" in
    --radar) radar="$2"; shift 2 ;;
    --syncthing) syncthing="$2"; shift 2 ;;
    --tag) tag="$2"; shift 2 ;;
    *) echo "build-agent-image: unknown argument $1" >&2; exit 2 ;;
  esac
done

if [ -z "$radar" ]; then
  cargo build --release -p radar >&2
  radar="${CARGO_TARGET_DIR:-target}/release/radar"
fi
[ -x "$radar" ] || { echo "build-agent-image: no radar binary at $radar" >&2; exit 1; }
[ -n "$syncthing" ] && [ -x "$syncthing" ] || {
  echo "build-agent-image: syncthing not found; install it with: apt-get install syncthing" >&2
  exit 1
}

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/usr/bin "$root"/etc/ksync "$root"/tmp "$root"/var/syncthing
chmod 1777 "$root"/tmp
install -m 0755 "$radar" "$root"/usr/bin/radar
install -m 0755 "$syncthing" "$root"/usr/bin/syncthing

# The shared libraries of both binaries, and the dynamic loader, at their usual paths.
for bin in "$radar" "$syncthing"; do
  ldd "$bin" | awk '/=>/ && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}' | sort -u |
    while read -r lib; do cp --parents -L "$lib" "$root"; done
done

printf 'root:x:0:0:root:/var/syncthing:/usr/sbin/nologin\n' > "$root"/etc/passwd
printf 'root:x:0:\n' > "$root"/etc/group

(cd "$root" && tar --numeric-owner --owner=0 --group=0 -c .) |
  docker import \
    --change 'ENV PATH=/usr/bin' \
    --change 'ENV STNODEFAULTFOLDER=1' \
    --change 'ENV STNOUPGRADE=1' \
    --change 'ENV HOME=/var/syncthing' \
    --change 'WORKDIR /' \
    --change "LABEL org.opencontainers.image.title=ksync-agent org.opencontainers.image.version=${version}" \
    - "$tag" >/dev/null
echo "$tag"
