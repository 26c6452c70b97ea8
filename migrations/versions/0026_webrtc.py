"""webrtc devices: browsers registering over SIP-over-WebSocket, media in DTLS-SRTP

Revision ID: 0026_webrtc
Revises: 0025_generic_plans
Create Date: 2026-12-05 03:00:00+00:00

A device's transport may be ``webrtc``: the console's softphone, a browser. Its endpoint in
``ps_endpoints`` gets ``webrtc = yes``, which in Asterisk 22 stands for AVPF, DTLS-SRTP
(``media_encryption = dtls``, the peer checked by the fingerprint its SDP gives), ICE,
rtcp-mux and replies over the transport the request came in on. It names no SIP transport:
its REGISTER and calls come over the WebSocket transport of Asterisk's HTTP server, and its
contact says so.

DTLS needs a certificate. The control plane manages it (graam_pbx/asterisk/dtls.py): one
self-signed key and certificate per node, in a file of the generated configuration,
``dtls.pem`` (made when missing, made again within 30 days of its end). The view names it by
the connection's setting ``graam.dtls_cert_file`` (sent from PGOPTIONS, as
``graam.media_address``), else where Asterisk sees the generated configuration:
``/etc/asterisk/graam/dtls.pem``. Only the fingerprint travels (in SDP), so a
self-signed certificate is what WebRTC expects.
"""

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from alembic import op

revision: str = "0026_webrtc"
down_revision: str | None = "0025_generic_plans"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TRANSPORTS = ("udp", "tcp", "tls")
CONSTRAINT = "ck_agent_devices_transport_known"

DTLS_CERT_FILE = (
    "coalesce(nullif(current_setting('graam.dtls_cert_file', true), ''),"
    " '/etc/asterisk/graam/dtls.pem')"
)
_SIP_TRANSPORT = "CASE WHEN d.transport <> 'udp' THEN 'transport-' || d.transport END"
_SIP_TRANSPORT_WEBRTC = (
    "CASE WHEN d.transport NOT IN ('udp', 'webrtc') THEN 'transport-' || d.transport END"
)
_LAST_COLUMN = "AS bind_rtp_to_media_address\n"
_WEBRTC_COLUMNS = (
    "AS bind_rtp_to_media_address,\n"
    "    CASE WHEN d.transport = 'webrtc' THEN 'yes' END AS webrtc,\n"
    f"    CASE WHEN d.transport = 'webrtc' THEN {DTLS_CERT_FILE} END AS dtls_cert_file\n"
)


def _revision(name: str) -> ModuleType:
    """An earlier revision of this folder, whose view text this one extends."""
    path = Path(__file__).with_name(f"{name}.py")
    spec = importlib.util.spec_from_file_location(f"graam_revision_{name}", path)
    assert spec is not None and spec.loader is not None  # noqa: S101 - a file of this folder
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _endpoints_before() -> str:
    """ps_endpoints as 0024 made it."""
    view: str = _revision("0024_default_node")._views(through_function=True)[0]
    assert view.lstrip().lower().startswith("create or replace view ps_endpoints")  # noqa: S101
    return view


def _endpoints_webrtc() -> str:
    before = _endpoints_before()
    for old in (_SIP_TRANSPORT, _LAST_COLUMN):
        assert before.count(old) == 1, f"not found once in ps_endpoints: {old}"  # noqa: S101
    return before.replace(_SIP_TRANSPORT, _SIP_TRANSPORT_WEBRTC).replace(
        _LAST_COLUMN, _WEBRTC_COLUMNS
    )


def _transports(names: Sequence[str]) -> str:
    return "transport in (" + ", ".join(f"'{name}'" for name in names) + ")"


def upgrade() -> None:
    op.drop_constraint(op.f(CONSTRAINT), "agent_devices", type_="check")
    op.create_check_constraint(
        op.f(CONSTRAINT), "agent_devices", _transports([*TRANSPORTS, "webrtc"])
    )
    op.execute(_endpoints_webrtc())


def downgrade() -> None:
    # A view loses columns only by being made again.
    op.execute("DROP VIEW ps_endpoints")
    op.execute(_endpoints_before())
    op.execute("UPDATE agent_devices SET transport = 'udp' WHERE transport = 'webrtc'")
    op.drop_constraint(op.f(CONSTRAINT), "agent_devices", type_="check")
    op.create_check_constraint(op.f(CONSTRAINT), "agent_devices", _transports(TRANSPORTS))
