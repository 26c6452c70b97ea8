#!/usr/bin/env bash
# The production stack of docker/compose.yml on this machine (host networking, loopback).
#
# usage: docker/stack.sh up | smoke | down [--purge] | check | ps | logs [service]
#   up      secrets generated into the state dir at the first `up` (never committed), Postgres,
#           its database, `graam-pbx migrate` once, the two Asterisk nodes, the workers, the
#           APIs, Kamailio, the exporter, Prometheus (and Grafana when its image exists); each
#           waited for
#   smoke   docker/smoke.py against the running stack: calls through Kamailio to a tenant's
#           node and an agent, the active worker killed, another call (--sip HOST:PORT: the
#           phones send there instead of the edge, to check the rest alone)
#   down    stops and removes the containers; --purge also removes the state (database, logs,
#           secrets)
#   check   build (missing images), up, smoke, down: the `make docker-check` target; the
#           stack is torn down whatever happens, and every step is timed
# Environment: GRAAM_DOCKER_STATE (default var/docker: git-ignored).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
STATE="${GRAAM_DOCKER_STATE:-$ROOT/var/docker}"
SECRETS="$STATE/secrets.env"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
COMPOSE=(docker-compose --project-name graam-pbx --project-directory "$ROOT/docker"
  --file "$ROOT/docker/compose.yml" --env-file "$STATE/compose.env")
IMAGES=(app asterisk kamailio prometheus)

say() { printf '%s  %s\n' "$(date -u +%H:%M:%S)" "$*"; }
die() { printf 'stack.sh: %s\n' "$*" >&2; exit 1; }

# Waits until "$@" succeeds, at most $1 seconds; says what it waited for when it gives up.
wait_for() {
  local what="$1" budget="$2" deadline=$((SECONDS + $2))
  shift 2
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || die "$what: not ready within $budget s (docker/stack.sh logs)"
    sleep 0.5
  done
  say "  $what ready"
}

tcp_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }
http_ok() { "$PYTHON" "$ROOT/docker/app/healthcheck.py" "$1"; }

secret() { head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n'; }

# Secrets once per state dir (hex: safe in URLs and in Kamailio's and Asterisk's files).
ensure_secrets() {
  mkdir -p "$STATE"
  chmod 0700 "$STATE"
  if [ ! -s "$SECRETS" ]; then
    umask 077
    {
      echo "POSTGRES_PASSWORD=$(secret)"
      echo "AMI_SECRET_A=$(secret)"
      echo "AMI_SECRET_B=$(secret)"
      echo "SECRET_KEY=$(secret)$(secret)"
      echo "METRICS_TOKEN=$(secret)"
      echo "GRAFANA_ADMIN_PASSWORD=$(secret)"
    } >"$SECRETS"
    say "secrets generated into $SECRETS"
  fi
  (umask 077 && { cat "$SECRETS"; echo "STATE=$STATE"; } >"$STATE/compose.env")
  # shellcheck disable=SC1090
  . "$SECRETS"
  (umask 077 && printf '%s' "$METRICS_TOKEN" >"$STATE/metrics_token")
  chmod 0644 "$STATE/metrics_token" # read by Prometheus in its container
  mkdir -p "$STATE"/{postgres,prometheus,grafana,asterisk-config,sounds,workers/1,workers/2,recordings} \
    "$STATE"/kamailio/run \
    "$STATE"/nodes/a/{log,spool} "$STATE"/nodes/b/spool \
    "$STATE"/node-files/b/{config,sounds,log,recordings}
}

psql_admin() {
  "${COMPOSE[@]}" exec -T postgres setpriv --reuid=graam-postgres --regid=graam-postgres \
    --init-groups /opt/postgresql/bin/psql -h /tmp -p 5432 -U postgres -v ON_ERROR_STOP=1 \
    -qAt "$@"
}

up() {
  for image in "${IMAGES[@]}"; do
    docker image inspect "graam-pbx/$image" >/dev/null 2>&1 ||
      die "image graam-pbx/$image is missing: run docker/build.sh"
  done
  ensure_secrets
  local start=$SECONDS
  say "postgres"
  "${COMPOSE[@]}" up -d postgres
  wait_for postgres 60 psql_admin -c "select 1"
  if [ "$(psql_admin -c "select 1 from pg_database where datname = 'graam'")" != 1 ]; then
    psql_admin -c "create database graam"
  fi
  say "schema: graam-pbx migrate"
  "${COMPOSE[@]}" run --rm migrate
  say "asterisk nodes"
  "${COMPOSE[@]}" up -d asterisk-a asterisk-b
  wait_for "asterisk-a AMI" 60 tcp_open 127.0.0.142 5038
  wait_for "asterisk-b AMI" 60 tcp_open 127.0.0.143 5038
  say "workers, APIs, SIP edge, metrics"
  local services=(worker-1 worker-2 api-1 api-2 kamailio postgres-exporter prometheus)
  local profile=()
  if docker image inspect graam-pbx/grafana >/dev/null 2>&1; then
    profile=(--profile grafana)
    services+=(grafana)
  fi
  "${COMPOSE[@]}" "${profile[@]}" up -d "${services[@]}"
  wait_for worker-1 90 http_ok http://127.0.0.145:8001/healthz
  wait_for worker-2 90 http_ok http://127.0.0.146:8001/healthz
  wait_for api-1 90 http_ok http://127.0.0.145:8000/healthz
  wait_for api-2 90 http_ok http://127.0.0.146:8000/healthz
  wait_for "kamailio SIP" 30 kamailio_answers
  wait_for prometheus 30 http_ok http://127.0.0.147:9090/-/ready
  [ ${#profile[@]} -eq 0 ] || wait_for grafana 60 http_ok http://127.0.0.148:3000/api/health
  say "up in $((SECONDS - start)) s"
  "${COMPOSE[@]}" ps
}

# Kamailio is up when it answers an OPTIONS on its SIP address (from the smoke's address).
kamailio_answers() {
  "$PYTHON" -c 'import sys
from graam_pbx.sandbox.kamailio import sip_options
answer = sip_options("127.0.0.144", 5060, 0.5, source="127.0.0.149")
sys.exit(0 if answer and answer.startswith("SIP/2.0 200") else 1)'
}

smoke() {
  ensure_secrets
  "$PYTHON" "$ROOT/docker/smoke.py" --state "$STATE" "$@"
}

down() {
  [ -f "$STATE/compose.env" ] || { say "nothing to stop"; return; }
  "${COMPOSE[@]}" --profile grafana --profile tools down --remove-orphans --timeout 20
  if [ "${1:-}" = "--purge" ]; then
    rm -rf "$STATE/postgres" "$STATE/prometheus" "$STATE/grafana" "$STATE/asterisk-config" \
      "$STATE/sounds" "$STATE/nodes" "$STATE/node-files" "$STATE/workers" "$STATE/kamailio" \
      "$STATE/recordings" "$STATE/metrics_token" \
      "$STATE/compose.env" "$SECRETS"
    say "state removed"
  fi
}

check() {
  local start=$SECONDS missing=()
  for image in "${IMAGES[@]}"; do
    docker image inspect "graam-pbx/$image" >/dev/null 2>&1 || missing+=("$image")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    say "building ${missing[*]}"
    "$ROOT/docker/build.sh" "${missing[@]}"
  fi
  trap 'say "tearing down"; down --purge' EXIT
  down --purge >/dev/null 2>&1 || true
  up
  local smoke_start=$SECONDS
  smoke
  say "smoke in $((SECONDS - smoke_start)) s"
  down --purge
  trap - EXIT
  say "check (build of missing images, up, smoke, down) in $((SECONDS - start)) s"
}

case "${1:-}" in
  up) up ;;
  smoke) shift; smoke "$@" ;;
  down) shift; down "$@" ;;
  check) check ;;
  ps) ensure_secrets >/dev/null; "${COMPOSE[@]}" ps ;;
  logs) shift; ensure_secrets >/dev/null; "${COMPOSE[@]}" logs --tail 200 "$@" ;;
  *) sed -n '2,18p' "$0" >&2; exit 2 ;;
esac
