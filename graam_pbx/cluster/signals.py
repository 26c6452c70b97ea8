"""Committed changes made in one process, heard by the active worker in another.

An API process commits configuration changes (devices, queues, routes…) and agent logins,
logouts and pauses, but the config applier and the agent worker run in the active worker.
Its sessions (``session_factory(..., notify_changes=True)``) send ``pg_notify`` inside the
committing transaction: Postgres delivers a notification only if, and once, the transaction
commits. The active worker LISTENs on its lease's connection, so it hears every change
committed after it took the lease; what was committed before is covered by the full passes
every component makes when it starts (applier, agent reconcile). A LISTEN connection that
drops is a lost lease: the worker stops, and its successor starts with full passes again.

Configuration changes are sent by graam_pbx.asterisk.changes (with the generations it bumps),
agent changes by graam_pbx.cluster.agent_signals; this module is what both share, and imports
no domain (the applier's package may use it).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

import asyncpg
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from graam_pbx.db import NOTIFY_KEY

log = logging.getLogger(__name__)

CONFIG_CHANNEL = "graam_config_changed"
AGENTS_CHANNEL = "graam_agents_changed"
EVERYTHING = "*"
# Postgres refuses a payload of 8000 bytes or more: a larger set asks for a full pass.
MAX_PAYLOAD = 7000

Request = Callable[[Iterable[int] | None], None]


def encode(tenant_ids: Iterable[int]) -> str:
    """The payload naming these tenants (``*``: too many to name, a full pass)."""
    text = ",".join(str(tenant_id) for tenant_id in sorted(set(tenant_ids)))
    return text if len(text) <= MAX_PAYLOAD else EVERYTHING


def decode(payload: str) -> set[int] | None:
    """The tenants a payload names; None asks for everything (also for one not understood)."""
    if payload == EVERYTHING:
        return None
    try:
        return {int(part) for part in payload.split(",") if part}
    except ValueError:
        log.warning(
            "change notification not understood: full pass", extra={"payload": payload[:80]}
        )
        return None


def notify(session: Session, channel: str, tenant_ids: set[int]) -> None:
    """Send the notification inside ``session``'s transaction, if its factory asked for it."""
    if tenant_ids and session.info.get(NOTIFY_KEY):
        session.execute(select(func.pg_notify(channel, encode(tenant_ids))))


async def listen(
    connection: asyncpg.Connection, *, on_config: Request | None, on_agents: Request | None
) -> None:
    """Hand the notifications of other processes' commits to the applier and agent worker."""

    def handler(request: Request) -> Callable[[Any, int, str, str], None]:
        def heard(_: Any, pid: int, channel: str, payload: str) -> None:
            del pid, channel
            request(decode(payload))

        return heard

    if on_config is not None:
        await connection.add_listener(CONFIG_CHANNEL, handler(on_config))
    if on_agents is not None:
        await connection.add_listener(AGENTS_CHANNEL, handler(on_agents))
