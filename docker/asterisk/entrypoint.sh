#!/bin/sh
# One Asterisk node of the stack, from its environment (docker/compose.yml):
#   NODE_ADDRESS     the node's own loopback address: SIP, AMI, RTP and metrics bind it
#   NODE_SYSTEMNAME  asterisk.conf's systemname (it prefixes uniqueids: CDR keys never collide)
#   SIP_PORT AMI_PORT NODE_HTTP_PORT   (5060, 5038, 8088)
#   AMI_USERNAME AMI_SECRET            the control plane's AMI user (secret generated at `up`)
#   AMI_PERMIT       network the AMI user may log in from (127.0.0.0/255.0.0.0)
#   NODE_BEHIND_EDGE on (the stack's nodes sit behind its Kamailio) or off: phones' contacts
#                    kept as registered behind the edge (docs/sip-edge.md)
# These are the "files local to each installation" of the README (manager_graam.conf,
# pjsip_transports.conf), written at every start; the rest of /etc/asterisk is the image's,
# and graam/ (a volume) is written by the active worker, res_pgsql.conf's connection included.
set -eu
: "${NODE_ADDRESS:?}" "${NODE_SYSTEMNAME:?}" "${AMI_SECRET:?}"
: "${SIP_PORT:=5060}" "${AMI_PORT:=5038}" "${NODE_HTTP_PORT:=8088}"
: "${AMI_USERNAME:=graam}" "${AMI_PERMIT:=127.0.0.0/255.0.0.0}" "${NODE_BEHIND_EDGE:=on}"
case "$NODE_BEHIND_EDGE" in
  on | off) ;;
  *) echo "asterisk node: NODE_BEHIND_EDGE is on or off, not $NODE_BEHIND_EDGE" >&2; exit 2 ;;
esac
etc=/etc/asterisk

# The generated directory is a volume the workers write; the base include files seed it once.
mkdir -p "$etc/graam"
for f in /usr/share/graam-pbx/asterisk_conf/graam/*; do
  [ -e "$etc/graam/${f##*/}" ] || cp "$f" "$etc/graam/"
done

umask 077
printf 'port = %s\n\n[%s]\nsecret = %s\ndeny = 0.0.0.0/0.0.0.0\npermit = %s\nread = all\nwrite = all\nwritetimeout = 1000\n' \
  "$AMI_PORT" "$AMI_USERNAME" "$AMI_SECRET" "$AMI_PERMIT" >"$etc/manager_graam.conf"
sed -i "s/^bindaddr = .*/bindaddr = $NODE_ADDRESS/" "$etc/manager.conf"
sed -i "s/^systemname = .*/systemname = $NODE_SYSTEMNAME/" "$etc/asterisk.conf"
endpoint="media_address = $NODE_ADDRESS
bind_rtp_to_media_address = yes"
cat >"$etc/pjsip_transports.conf" <<CONF
; written by the node's entry point at every start
[transport-udp]
type = transport
protocol = udp
bind = $NODE_ADDRESS:$SIP_PORT

; browser phones: SIP over WebSocket on the HTTP server below (/ws)
[transport-ws]
type = transport
protocol = ws
bind = $NODE_ADDRESS

[graam-trunk](!)
$endpoint
CONF
printf '[general]\nenabled = yes\nbindaddr = %s\nbindport = %s\n' \
  "$NODE_ADDRESS" "$NODE_HTTP_PORT" >"$etc/http.conf"

# Phones' endpoints are rows of the SIP views: the views list the devices of the tenants this
# node holds (graam.node, its systemname) and take their media address and whether contacts
# are kept (behind the edge) from the connection's settings graam.media_address and
# graam.behind_edge, all sent by libpq from PGOPTIONS (docs/realtime-sip.md, docs/sip-edge.md).
export PGOPTIONS="-c graam.node=$NODE_SYSTEMNAME -c graam.media_address=$NODE_ADDRESS -c graam.behind_edge=$NODE_BEHIND_EDGE"
exec /usr/sbin/asterisk -f -n "$@"
