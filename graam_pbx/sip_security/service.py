"""Blocks of SIP sources: recorded, listed, lifted and expired in Postgres.

Postgres holds the blocks so that they survive restarts and every process agrees; the
worker turns those in force into Asterisk's deny list.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy import Select, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from graam_pbx.audit import service as audit
from graam_pbx.auth.principal import Principal
from graam_pbx.db import keyset_page
from graam_pbx.errors import Invalid, NotFound
from graam_pbx.routing.models import Trunk
from graam_pbx.sip_security.failures import Network, allowed, parse_source
from graam_pbx.sip_security.models import SipBlock

ALLOW_LIST_LABEL = "allow-list"


def in_force() -> Select[SipBlock]:
    """The blocks Asterisk must enforce now (by the database's clock)."""
    return select(SipBlock).where(SipBlock.unblocked_at.is_(None), SipBlock.expires_at > func.now())


async def block(
    session: AsyncSession, source: str, *, failures: int, reason: str, duration: float
) -> SipBlock:
    """Block ``source`` for ``duration`` seconds, or extend the block already in force.

    One statement: two processes blocking the same source at once extend one row.
    """
    await expire(session, source)
    expires = func.now() + timedelta(seconds=duration)
    statement = (
        insert(SipBlock)
        .values(address=source, reason=reason[:200], failures=failures, expires_at=expires)
        .on_conflict_do_update(
            index_elements=[SipBlock.address],
            index_where=SipBlock.unblocked_at.is_(None),
            set_={
                "failures": SipBlock.failures + failures,
                "reason": reason[:200],
                "expires_at": func.greatest(SipBlock.expires_at, expires),
            },
        )
        .returning(SipBlock)
    )
    return (await session.scalars(statement, execution_options={"populate_existing": True})).one()


async def list_blocks(
    session: AsyncSession, *, active_only: bool, after_id: int | None, limit: int
) -> tuple[list[SipBlock], int | None]:
    """Blocks by id: those in force, or every one ever made (the history)."""
    statement = in_force() if active_only else select(SipBlock)
    return await keyset_page(session, statement, SipBlock.id, after_id, limit)


async def unblock(session: AsyncSession, address: str, *, by: str, field: str) -> SipBlock:
    """Lift the block in force of ``address`` (an address, or an IPv6 /64); NotFound if none.

    ``field`` names the input in the error when ``address`` is not an address.
    """
    try:
        source = parse_source(address)
    except ValueError as err:
        raise Invalid(field, f"not an IP address: {err}") from None
    lifted = await _lift(session, in_force().where(SipBlock.address == source), by)
    if not lifted:
        raise NotFound(f"{source} is not blocked")
    return lifted[0]


async def unblock_by_operator(
    session: AsyncSession, principal: Principal, address: str, *, field: str
) -> SipBlock:
    """An operator lifts a block (audited)."""
    lifted = await unblock(session, address, by=principal.label, field=field)
    await audit.record(
        session,
        principal,
        "unblock",
        "sip_block",
        lifted.id,
        {"address": lifted.address},
        tenant_id=None,
    )
    return lifted


async def expire(session: AsyncSession, source: str | None = None) -> int:
    """Close the blocks whose time is over (``unblocked_at`` = their expiry), of ``source``
    only when given; how many."""
    statement = update(SipBlock).where(
        SipBlock.unblocked_at.is_(None), SipBlock.expires_at <= func.now()
    )
    if source is not None:
        statement = statement.where(SipBlock.address == source)
    result = await session.execute(
        statement.values(unblocked_at=SipBlock.expires_at).returning(SipBlock.id)
    )
    return len(result.all())


async def lift_allowed(session: AsyncSession, networks: Sequence[Network]) -> list[SipBlock]:
    """Lift blocks in force of sources the allow-list now covers (a trunk added later)."""
    blocks = list((await session.scalars(in_force())).all())
    covered = [b.id for b in blocks if allowed(b.address, networks)]
    if not covered:
        return []
    return await _lift(session, in_force().where(SipBlock.id.in_(covered)), ALLOW_LIST_LABEL)


async def trunk_networks(session: AsyncSession) -> list[Network]:
    """Where the operator's carriers send from: never blocked (their failures are theirs to
    fix, and blocking a carrier stops every tenant's calls)."""
    rows = (
        await session.execute(select(Trunk.host, Trunk.inbound_addresses, Trunk.resolved_addresses))
    ).all()
    networks: list[Network] = []
    for host, inbound, resolved in rows:
        for value in (host, *inbound, *resolved):
            try:
                networks.append(ipaddress.ip_network(value, strict=False))
            except ValueError:
                continue  # a host name: its addresses are in resolved
    return networks


async def _lift(session: AsyncSession, which: Select[SipBlock], by: str) -> list[SipBlock]:
    ids = select(which.subquery().c.id)
    result = await session.scalars(
        update(SipBlock)
        .where(SipBlock.id.in_(ids))
        .values(unblocked_at=func.now(), unblocked_by=by[:254])
        .returning(SipBlock),
        execution_options={"populate_existing": True},
    )
    return list(result.all())


def is_active(block: SipBlock) -> bool:
    """Whether ``block`` is in force now."""
    return block.unblocked_at is None and block.expires_at > datetime.now(UTC)
