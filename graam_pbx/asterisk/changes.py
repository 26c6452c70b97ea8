"""Which tenants' Asterisk configuration a transaction changed.

Every flush notes the tenants of changed configuration rows in ``session.info``; after the
commit, the session's ``on_config_change`` callback (set by the session factory) hears
them. Nothing is applied before the data is committed, and a rolled-back change is never
applied.

A session made to notify other processes (an API process: the applier runs in the active
worker) also sends the tenants with ``pg_notify`` in the same transaction
(graam_pbx.cluster.signals).

The same transaction also bumps each changed tenant's configuration generation
(graam_pbx.asterisk.status), just before it commits: the applier says a tenant's change is
live by the generation it applied, and ``GET /api/v1/config/status`` compares the two.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session, UOWTransaction
from sqlalchemy.orm.attributes import get_history

from graam_pbx.asterisk import status
from graam_pbx.asterisk.snapshot import CONFIG_MODELS, PLATFORM_MODELS
from graam_pbx.cluster import signals
from graam_pbx.tenants.models import Tenant

ALL_TENANTS = -1  # a change every tenant's files depend on (trunks)
PENDING_KEY = "graam_config_tenants"
CALLBACK_KEY = "on_config_change"

ConfigChangeCallback = Callable[[set[int]], None]


def _tenants_of(obj: Any) -> set[int]:
    if isinstance(obj, Tenant):
        return {obj.id} if obj.id is not None else set()
    if isinstance(obj, PLATFORM_MODELS):
        return {ALL_TENANTS}
    if isinstance(obj, CONFIG_MODELS):
        # A number moving between tenants (or back to the catalogue) changes both sides.
        history = get_history(obj, "tenant_id")
        return {t for t in (obj.tenant_id, *history.deleted) if t is not None}
    return set()


@event.listens_for(Session, "after_flush")
def _note_changes(session: Session, _: UOWTransaction) -> None:
    pending: set[int] = session.info.setdefault(PENDING_KEY, set())
    for obj in (*session.new, *session.dirty, *session.deleted):
        pending |= _tenants_of(obj)


@event.listens_for(Session, "before_commit")
def _bump_generations(session: Session) -> None:
    if session.in_nested_transaction():
        return  # a savepoint: the outer transaction bumps once, when it commits
    # Flush what is still pending first: the commit's own flush comes after this hook.
    session.flush()
    pending: set[int] = session.info.get(PENDING_KEY, set())
    if pending:
        session.execute(
            status.BUMP,
            status.bump_parameters(pending - {ALL_TENANTS}, every=ALL_TENANTS in pending),
        )
        # In an API process: the active worker's applier hears it when (and if) this commits.
        signals.notify(session, signals.CONFIG_CHANNEL, pending)


@event.listens_for(Session, "after_commit")
def _announce(session: Session) -> None:
    if session.in_nested_transaction():
        return  # a savepoint released: told when the outer transaction commits, not before
    pending: set[int] = session.info.pop(PENDING_KEY, set())
    callback: ConfigChangeCallback | None = session.info.get(CALLBACK_KEY)
    if pending and callback is not None:
        callback(pending)


@event.listens_for(Session, "after_rollback")
def _forget(session: Session) -> None:
    # A savepoint rolled back leaves what the outer transaction did before it: still told
    # at its commit (a change undone costs one needless pass, never a missed one).
    if not session.in_nested_transaction():
        session.info.pop(PENDING_KEY, None)
