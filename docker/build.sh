#!/usr/bin/env bash
# Builds every image of the production stack without any container registry.
#
# These machines reach Debian's mirror and PyPI, and no registry: a `FROM` can only name an
# image made here. So the two base images are Debian roots made with debootstrap and turned
# into images with `docker import`:
#   graam-pbx/debian:bookworm     minbase Debian 12 (the host's release: its python3, kamailio
#                                 and prometheus are the versions the tests run against)
#   graam-pbx/asterisk-root:sid   the Asterisk sandbox's own root (Debian sid's asterisk), the
#                                 cache `graam-pbx asterisk up` makes, provisioned by the same code
# and every other image is `docker build` FROM one of them, installing Debian packages (and the
# project from PyPI's wheels) during the build, over the host's network.
#
# usage: docker/build.sh [--rebase] [image ...]   (images: app asterisk kamailio prometheus grafana)
#   --rebase   debootstrap and import the base images again even when they exist
# Environment: GRAAM_DOCKER_STATE (default var/docker), GRAAM_ASTERISK_ROOTFS (the cached root,
# default ~/.cache/graam-pbx/asterisk-sid), DEBIAN_MIRROR (default http://deb.debian.org/debian),
# GRAFANA_DEB (Grafana's own .deb; without it the grafana image is skipped, see docker/README.md).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
STATE="${GRAAM_DOCKER_STATE:-$ROOT/var/docker}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
ASTERISK_ROOTFS="${GRAAM_ASTERISK_ROOTFS:-$HOME/.cache/graam-pbx/asterisk-sid}"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
# The legacy builder: Debian's docker.io has no buildx; builds reach the mirror and PyPI
# through the host's network (the daemon may run without a bridge).
export DOCKER_BUILDKIT=0
BUILD=(docker build --network host)

rebase=0
images=()
for arg in "$@"; do
  case "$arg" in
    --rebase) rebase=1 ;;
    app | asterisk | kamailio | prometheus | grafana) images+=("$arg") ;;
    *) echo "build.sh: unknown argument $arg" >&2; exit 2 ;;
  esac
done
[ ${#images[@]} -gt 0 ] || images=(app asterisk kamailio prometheus grafana)

say() { printf '%s  %s\n' "$(date -u +%H:%M:%S)" "$*"; }
die() { printf 'build.sh: %s\n' "$*" >&2; exit 1; }
has_image() { docker image inspect "$1" >/dev/null 2>&1; }
timed() { local start=$SECONDS; "$@"; say "  done in $((SECONDS - start)) s"; }

command -v docker >/dev/null || die "docker is missing: apt-get install docker.io"
docker info >/dev/null 2>&1 || die "the Docker daemon does not answer: start it (dockerd &, see docker/README.md)"
mkdir -p "$STATE/roots" "$STATE/logs"

# A root becomes an image: apt's caches out, apt told to keep images small and not to refuse a
# mirror whose Release file lags the clock (signatures are still checked).
import_root() {
  local root="$1" tag="$2"
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
  mkdir -p "$root/etc/apt/apt.conf.d"
  printf 'Acquire::Check-Valid-Until "false";\nAPT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n' \
    >"$root/etc/apt/apt.conf.d/99graam-image"
  tar --numeric-owner -C "$root" -c . |
    docker import \
      -c 'ENV LANG=C.UTF-8' -c 'ENV DEBIAN_FRONTEND=noninteractive' -c 'CMD ["/bin/bash"]' \
      -m "imported from a debootstrap root" - "$tag" >/dev/null
}

base_bookworm() {
  local tag=graam-pbx/debian:bookworm root="$STATE/roots/bookworm"
  if has_image "$tag" && [ $rebase -eq 0 ]; then return; fi
  say "base $tag: debootstrap --variant=minbase bookworm ($MIRROR)"
  if [ ! -x "$root/usr/bin/apt-get" ] || [ $rebase -eq 1 ]; then
    rm -rf "$root" "$root.partial"
    debootstrap --variant=minbase bookworm "$root.partial" "$MIRROR" \
      >"$STATE/logs/debootstrap-bookworm.log" 2>&1 ||
      die "debootstrap failed: see $STATE/logs/debootstrap-bookworm.log"
    mv "$root.partial" "$root"
  fi
  say "base $tag: docker import"
  import_root "$root" "$tag"
  rm -rf "$root"
}

base_asterisk() {
  local tag=graam-pbx/asterisk-root:sid
  if has_image "$tag" && [ $rebase -eq 0 ]; then return; fi
  # The sandbox's own provisioning: the same debootstrap and package list (ROOT_PACKAGES), the
  # same cache, so the image's Asterisk is the one the tests ran against.
  say "base $tag: provisioning $ASTERISK_ROOTFS (debootstrap sid on first use)"
  [ -x "$PYTHON" ] || die "$PYTHON is missing: run make venv first"
  ROOTFS="$ASTERISK_ROOTFS" "$PYTHON" - <<'EOF'
import asyncio, os, tempfile
from pathlib import Path
from graam_pbx.sandbox.asterisk import AsteriskSandbox, AsteriskSandboxConfig
with tempfile.TemporaryDirectory() as state:
    config = AsteriskSandboxConfig(
        rootfs=Path(os.environ["ROOTFS"]), state_dir=Path(state), ami_port=5038, ami_username="x"
    )
    asyncio.run(AsteriskSandbox(config).provision())
EOF
  say "base $tag: docker import (a copy of the cache: the cache itself is never changed)"
  local copy="$STATE/roots/asterisk-sid"
  rm -rf "$copy"
  cp -a "$ASTERISK_ROOTFS" "$copy"
  import_root "$copy" "$tag"
  rm -rf "$copy"
}

# The repository as git sees it (tracked and new files, nothing ignored: no venv, no var/):
# the one build context of the images that copy project files.
context_tar() {
  local out="$STATE/context.tar"
  (
    cd "$ROOT"
    git ls-files -z --cached --others --exclude-standard |
      while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done |
      tar --null -T - -cf "$out"
  )
  # The build host's own certificate authorities (a network that intercepts TLS on its way
  # to PyPI has one there): the app image trusts them too, or pip cannot reach PyPI.
  local cas="$STATE/build-ca"
  rm -rf "$cas"
  mkdir -p "$cas/docker/build-ca"
  find /usr/local/share/ca-certificates -maxdepth 2 -name '*.crt' -type f \
    -exec cp {} "$cas/docker/build-ca/" \; 2>/dev/null || true
  tar -C "$cas" -rf "$out" docker/build-ca
  rm -rf "$cas"
  printf '%s' "$out"
}

# A build's output goes to its log; a failed build shows the log's end.
build_logged() {
  local name="$1" log="$STATE/logs/build-$1.log"
  shift
  if ! "${BUILD[@]}" -t "graam-pbx/$name" "$@" >"$log" 2>&1; then
    tail -n 30 "$log" >&2
    die "building graam-pbx/$name failed: see $log"
  fi
}

build_from_repo() {
  say "image graam-pbx/$1"
  build_logged "$1" -f "docker/$1/Dockerfile" - <"$CONTEXT"
}

need_repo_path() {
  [ -e "$ROOT/$1" ] || die "$1 is missing: the $2 image copies it from the repository (it is not duplicated under docker/)"
}

start=$SECONDS
base_bookworm
CONTEXT=""
for image in "${images[@]}"; do
  case "$image" in
    app)
      [ -n "$CONTEXT" ] || CONTEXT="$(context_tar)"
      timed build_from_repo app
      ;;
    asterisk)
      base_asterisk
      [ -n "$CONTEXT" ] || CONTEXT="$(context_tar)"
      timed build_from_repo asterisk
      ;;
    kamailio)
      need_repo_path kamailio_conf/kamailio.cfg kamailio
      [ -n "$CONTEXT" ] || CONTEXT="$(context_tar)"
      timed build_from_repo kamailio
      ;;
    prometheus)
      [ -n "$CONTEXT" ] || CONTEXT="$(context_tar)"
      timed build_from_repo prometheus
      ;;
    grafana)
      if [ -z "${GRAFANA_DEB:-}" ]; then
        say "image graam-pbx/grafana: skipped (Grafana is in no registry these machines reach;"
        say "  set GRAFANA_DEB=/path/to/grafana_<version>_amd64.deb, see docker/README.md)"
        continue
      fi
      [ -f "$GRAFANA_DEB" ] || die "GRAFANA_DEB=$GRAFANA_DEB is not a file"
      say "image graam-pbx/grafana (from $GRAFANA_DEB)"
      rm -rf "$STATE/grafana-context"
      mkdir -p "$STATE/grafana-context"
      cp -a "$ROOT/docker/grafana/." "$STATE/grafana-context/"
      cp "$GRAFANA_DEB" "$STATE/grafana-context/grafana.deb"
      timed build_logged grafana "$STATE/grafana-context"
      rm -rf "$STATE/grafana-context"
      ;;
  esac
done
[ -z "$CONTEXT" ] || rm -f "$CONTEXT"
say "built in $((SECONDS - start)) s"
docker image ls --format '{{.Repository}}:{{.Tag}}\t{{.Size}}' | grep '^graam-pbx/' | sort
