"""webhooks: a call.ended event's CDR says which user's forwarding rule sent the leg

Revision ID: 0037_webhook_forwarded_from
Revises: 0036_follow_me
Create Date: 2026-12-06 13:30:00+00:00

``webhook_cdrs_ended()`` is made again with the CDR's ``forwarded_from``
(0035_cdr_forwarded_from) after ``device``. The rest is the function as it stands since
0031_event_streams (0029's, with the streams' lease), built by that revision's own code so
that the two cannot differ.
"""

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from alembic import op

revision: str = "0037_webhook_forwarded_from"
down_revision: str | None = "0036_follow_me"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BEFORE = "'device', c.device))"
_AFTER = "'device', c.device, 'forwarded_from', c.forwarded_from))"


def _revision(name: str) -> ModuleType:
    path = Path(__file__).with_name(f"{name}.py")
    spec = importlib.util.spec_from_file_location(f"graam_revision_{name}", path)
    assert spec is not None and spec.loader is not None  # noqa: S101 - a file of this folder
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _cdrs_ended() -> str:
    """webhook_cdrs_ended() as 0031_event_streams made it (CREATE OR REPLACE)."""
    streams = _revision("0031_event_streams")
    functions = streams._streaming_functions(streams._revision("0029_webhooks"))
    (function,) = (f for f in functions if "FUNCTION webhook_cdrs_ended()" in f)
    assert function.count(_BEFORE) == 1  # noqa: S101 - what this revision was written for
    return str(function)


def upgrade() -> None:
    op.execute(_cdrs_ended().replace(_BEFORE, _AFTER))


def downgrade() -> None:
    op.execute(_cdrs_ended())
