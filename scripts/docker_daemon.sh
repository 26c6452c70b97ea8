#!/usr/bin/env bash
# A Docker daemon for docker/ (the production stack): Debian's docker.io and docker-compose
# installed when missing, and dockerd started when none answers.
#
# The daemon is started without a bridge and without touching iptables: every container of
# the stack uses host networking on loopback, and builds use the host's network. Its log is
# var/dockerd.log; it keeps running after this script (stop it by its pid, in var/dockerd.pid).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
missing=()
command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
command -v debootstrap >/dev/null 2>&1 || [ -x /usr/sbin/debootstrap ] || missing+=(debootstrap)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing Debian packages: ${missing[*]}"
  if [ "$(id -u)" -eq 0 ]; then SUDO=(); else SUDO=(sudo); fi
  "${SUDO[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
fi

if docker info >/dev/null 2>&1; then
  exit 0
fi
mkdir -p "$ROOT/var"
# It outlives this script: it must not keep any other descriptor of its caller open (a lock
# the caller holds, say, would stay held as long as the daemon runs).
for fd in /proc/$$/fd/*; do
  fd=${fd##*/}
  if [ "$fd" -gt 2 ] 2>/dev/null && [ "$fd" != 255 ]; then eval "exec $fd>&-" 2>/dev/null || true; fi
done
setsid dockerd --bridge=none --iptables=false --ip6tables=false \
  >"$ROOT/var/dockerd.log" 2>&1 </dev/null &
echo $! >"$ROOT/var/dockerd.pid"
for _ in $(seq 120); do
  if docker info >/dev/null 2>&1; then
    echo "dockerd started (pid $(cat "$ROOT/var/dockerd.pid"), log var/dockerd.log)"
    exit 0
  fi
  sleep 0.5
done
echo "dockerd did not answer within 60 s: see var/dockerd.log" >&2
tail -n 5 "$ROOT/var/dockerd.log" >&2
exit 1
