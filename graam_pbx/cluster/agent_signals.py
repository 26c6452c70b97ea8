"""Agent logins, logouts, pauses and queue memberships committed in an API process, sent to
the active worker's agent worker (graam_pbx.cluster.signals says how and why).

Imported by the app: the hook then runs in every session, and acts only in those whose
factory asked for notifications (``session_factory(..., notify_changes=True)``).
"""

from __future__ import annotations

from sqlalchemy import event
from sqlalchemy.orm import Session

from graam_pbx.agents import sessions as agent_sessions
from graam_pbx.cluster import signals
from graam_pbx.db import NOTIFY_KEY


@event.listens_for(Session, "before_commit")
def _notify_agent_changes(session: Session) -> None:
    if not session.info.get(NOTIFY_KEY) or session.in_nested_transaction():
        return
    session.flush()  # queue memberships are noted as they flush
    tenants: set[int] = set(session.info.get(agent_sessions.PENDING_KEY, set()))
    signals.notify(session, signals.AGENTS_CHANNEL, tenants)
