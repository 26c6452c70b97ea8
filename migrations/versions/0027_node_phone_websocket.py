"""node phone websocket: where browsers reach each node's SIP WebSocket

Revision ID: 0027_node_phone_websocket
Revises: 0026_webrtc
Create Date: 2026-12-05 03:15:00+00:00

A browser phone registers with the node its tenant lives on, over that node's SIP WebSocket
(Asterisk's HTTP server, ``/ws``). Each node says where browsers reach it, as they see it
(``wss://…`` behind TLS); the console gives a tenant's agents their node's. The configured
Asterisk's may instead come from the control plane's setting (``GRAAM_SIP_WEBSOCKET_URL``, or
the sandbox's own): docs/webrtc.md.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0027_node_phone_websocket"
down_revision: str | None = "0026_webrtc"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# What the API accepts (graam_pbx/cluster/schemas.py): ws:// or wss://, a host, a path.
PATTERN = r"^wss?://[^\s/]+(/\S*)?$"


def upgrade() -> None:
    op.add_column("asterisk_nodes", sa.Column("phone_websocket", sa.String(length=255)))
    op.create_check_constraint(
        op.f("ck_asterisk_nodes_phone_websocket_url"),
        "asterisk_nodes",
        f"phone_websocket ~ '{PATTERN}'",
    )


def downgrade() -> None:
    op.drop_constraint(
        op.f("ck_asterisk_nodes_phone_websocket_url"), "asterisk_nodes", type_="check"
    )
    op.drop_column("asterisk_nodes", "phone_websocket")
