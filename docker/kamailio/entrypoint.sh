#!/bin/sh
# The SIP edge, from its environment (docker/compose.yml):
#   EDGE_SIP_ADDR  EDGE_SIP_PORT (5060)   where phones and carriers send
#   EDGE_DB_URL    postgres://user:password@host:port/database, the control plane's database
#   EDGE_PIKE_DENSITY (30)  EDGE_BAN_SECONDS (300)  EDGE_AUTH_FAILURES (20)  EDGE_AUTH_WINDOW (600)
#   EDGE_RUN_DIR   runtime files and the JSON-RPC socket rpc.sock (/run/kamailio)
# written into graam-edge-local.cfg, the file kamailio.cfg includes (as the SIP edge sandbox
# writes it, graam_pbx/sandbox/kamailio.py), then Kamailio in the foreground. Arguments are
# Kamailio's (`graam-edge -c` checks the configuration).
set -eu
: "${EDGE_SIP_ADDR:?}" "${EDGE_DB_URL:?}"
: "${EDGE_SIP_PORT:=5060}" "${EDGE_PIKE_DENSITY:=30}" "${EDGE_BAN_SECONDS:=300}"
: "${EDGE_AUTH_FAILURES:=20}" "${EDGE_AUTH_WINDOW:=600}"
run="${EDGE_RUN_DIR:-/run/kamailio}"
mkdir -p "$run"
umask 077
local_cfg=/etc/kamailio/graam-edge-local.cfg
: >"$local_cfg"
value=""
for name in EDGE_SIP_ADDR EDGE_SIP_PORT EDGE_DB_URL EDGE_PIKE_DENSITY EDGE_BAN_SECONDS \
  EDGE_AUTH_FAILURES EDGE_AUTH_WINDOW; do
  eval "value=\$$name"
  # A '!' would end the #!substdef value, a quote or a backslash the cfg string.
  case "$value" in
    *'!'* | *'"'* | *\\*) echo "graam-edge: $name holds a character Kamailio cannot take" >&2; exit 2 ;;
  esac
  printf '#!substdef "!%s!%s!g"\n' "$name" "$value" >>"$local_cfg"
done
printf '#!substdef "!EDGE_RPC_SOCKET!%s!g"\n' "$run/rpc.sock" >>"$local_cfg"
rm -f "$run/rpc.sock"
if [ "${1:-}" = "-c" ]; then
  exec kamailio -c -f /etc/kamailio/kamailio.cfg
fi
exec kamailio -DD -E -f /etc/kamailio/kamailio.cfg -Y "$run" "$@"
