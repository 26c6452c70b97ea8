"""Click-to-call: the agent's device rings, and once it answers the number is dialled through
the tenant's outbound routes, as if the agent's phone had dialled it.

``prepare`` runs in a transaction of its own: the same idempotency key asked before answers
with its call (a key reused for another call is a 409); otherwise it checks the call (the
tenant may call out, the agent has a device, a route reaches the number), writes the request's
row and the audit entry, and that transaction commits. ``place`` then sends the one
``Originate`` (``asterisk_conf/extensions.conf``, ``graam-click``) with the row's channel id,
which becomes the call's id and linkedid, and notes whether Asterisk took it. A retry of a
request whose ``Originate`` Asterisk certainly did not take sends it again, with the same
channel id; one whose outcome is unknown is never sent again (Asterisk may have placed it).
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from graam_pbx.agents.models import AgentDevice, AgentSession
from graam_pbx.ami import AmiActionError, AmiError, AmiInjectionError, AmiNotConnected
from graam_pbx.ami import actions as ami_actions
from graam_pbx.ami.supervisor import AmiRoutes
from graam_pbx.audit import service as audit
from graam_pbx.auth.models import User
from graam_pbx.auth.principal import Role, Scope
from graam_pbx.call_control.calls_schemas import CallPlaced, ClickToCallIn
from graam_pbx.call_control.models import ClickToCall, OriginateStatus
from graam_pbx.call_control.outbound import check_reachable, check_tenant_calls
from graam_pbx.errors import Conflict, Forbidden, GraamError, Invalid, Unavailable

log = logging.getLogger(__name__)

CONTEXT = "graam-click"  # asterisk_conf/extensions.conf
CHANNEL_PREFIX = "c2c-"  # every click-to-call's id starts so
RING_SECONDS = 30  # the agent's device rings this long


class AgentHasNoDevice(Conflict):
    """The agent has no device to ring."""

    error_id = "agent-has-no-device"


class KeyReused(Conflict):
    """The idempotency key named another call."""

    error_id = "idempotency-key-reused"


@dataclass(frozen=True)
class Placement:
    """A click-to-call written (committed by the caller), its Originate to be sent or not."""

    tenant_id: int
    call_id: str
    agent_user_id: int
    device: str
    number: str
    created_at: datetime
    send: bool  # False: a repeat whose call was already sent (or may have been)

    def out(self) -> CallPlaced:
        return CallPlaced(
            id=self.call_id,
            agent_user_id=self.agent_user_id,
            device=self.device,
            number=self.number,
            created_at=self.created_at,
        )


def _agent_of(scope: Scope, data: ClickToCallIn) -> int:
    """Whose device rings: an agent's own; anyone else names one."""
    me = scope.principal.user_id
    if scope.role is Role.AGENT:
        if data.agent_user_id not in (None, me):
            raise Forbidden("an agent places calls from its own device only")
        return me
    if data.agent_user_id is None:
        raise Invalid("body.agent_user_id", "name the user whose device rings")
    return data.agent_user_id


async def _device(session: AsyncSession, tenant_id: int, user_id: int) -> str:
    """The device that rings: the one the user is logged in with, else its first."""
    logged_in = await session.scalar(
        select(AgentDevice.sip_username)
        .join(AgentSession, AgentSession.device_id == AgentDevice.id)
        .where(
            AgentSession.tenant_id == tenant_id,
            AgentSession.user_id == user_id,
            AgentSession.ended_at.is_(None),
        )
    )
    if logged_in is not None:
        return logged_in
    first = await session.scalar(
        select(AgentDevice.sip_username)
        .where(AgentDevice.tenant_id == tenant_id, AgentDevice.user_id == user_id)
        .order_by(AgentDevice.id)
        .limit(1)
    )
    if first is None:
        raise AgentHasNoDevice(f"user {user_id} has no device to ring")
    return first


async def _stored(session: AsyncSession, tenant_id: int, key: str) -> ClickToCall | None:
    row: ClickToCall | None = await session.scalar(
        select(ClickToCall).where(
            ClickToCall.tenant_id == tenant_id, ClickToCall.idempotency_key == key
        )
    )
    return row


async def _repeat(
    session: AsyncSession, scope: Scope, data: ClickToCallIn, row: ClickToCall
) -> Placement:
    """The answer to a key asked before: the same call, sent again only if Asterisk never
    took it."""
    me = scope.principal.user_id
    same = row.number == data.number and data.agent_user_id in (None, row.agent_user_id)
    if scope.role is Role.AGENT:
        same = same and row.agent_user_id == me
    elif data.agent_user_id is None:
        same = False  # the first one named its agent
    if not same:
        raise KeyReused("this Idempotency-Key was used for another call")
    resend = row.status == OriginateStatus.FAILED.value
    if resend:
        await check_tenant_calls(session, scope.tenant_id)
    return Placement(
        tenant_id=row.tenant_id,
        call_id=row.call_id,
        agent_user_id=row.agent_user_id,
        device=row.device,
        number=row.number,
        created_at=row.created_at,
        send=resend,
    )


async def prepare(session: AsyncSession, scope: Scope, data: ClickToCallIn, key: str) -> Placement:
    """Check and write a click-to-call (or find the one this key already asked for), with its
    audit entry, in the caller's transaction."""
    tenant_id = scope.tenant_id
    row = await _stored(session, tenant_id, key)
    if row is not None:
        return await _repeat(session, scope, data, row)
    await check_tenant_calls(session, tenant_id)
    agent_id = _agent_of(scope, data)
    agent = await session.scalar(
        select(User.id).where(
            User.id == agent_id, User.tenant_id == tenant_id, User.disabled.is_(False)
        )
    )
    if agent is None:
        raise Invalid("body.agent_user_id", f"no user {agent_id} in this tenant")
    device = await _device(session, tenant_id, agent_id)
    await check_reachable(session, tenant_id, data.number, "body.number")
    call_id = f"{CHANNEL_PREFIX}{uuid.uuid4().hex}"
    # The same key asked at the same moment: Postgres makes this wait for the other request's
    # transaction, then inserts nothing; that request's row answers.
    written = await session.scalar(
        insert(ClickToCall)
        .values(
            tenant_id=tenant_id,
            idempotency_key=key,
            call_id=call_id,
            agent_user_id=agent_id,
            device=device,
            number=data.number,
            requested_by=scope.principal.user_id,
            status=OriginateStatus.PENDING.value,
        )
        .on_conflict_do_nothing(index_elements=["tenant_id", "idempotency_key"])
        .returning(ClickToCall.created_at)
    )
    if written is None:
        row = await _stored(session, tenant_id, key)
        if row is None:  # pragma: no cover - the conflicting row was committed
            raise Unavailable("the request could not be recorded; try again", retry_after=1)
        return await _repeat(session, scope, data, row)
    await audit.record(
        session,
        scope,
        "click-to-call",
        "call",
        call_id,
        {
            "agent_user_id": agent_id,
            "device": device,
            "number": data.number,
            "idempotency_key": key,
        },
    )
    return Placement(
        tenant_id=tenant_id,
        call_id=call_id,
        agent_user_id=agent_id,
        device=device,
        number=data.number,
        created_at=written,
        send=True,
    )


async def _note(
    sessions: async_sessionmaker[AsyncSession], call_id: str, status: OriginateStatus
) -> None:
    async with sessions() as session, session.begin():
        await session.execute(
            update(ClickToCall).where(ClickToCall.call_id == call_id).values(status=status.value)
        )


async def place(
    sessions: async_sessionmaker[AsyncSession], placement: Placement, routes: AmiRoutes
) -> None:
    """Send the click-to-call's one Originate (its row committed) and note what became of it.
    503 when Asterisk certainly did not take it: a retry with the same key sends it again."""
    tenant = f"t{placement.tenant_id}"
    try:
        ami = await routes.for_tenant(placement.tenant_id)
        await ami_actions.originate(
            ami,
            f"PJSIP/{placement.device}",
            channel_id=placement.call_id,
            context=CONTEXT,
            exten=placement.number,
            # The agent's phone shows the number it is about to call.
            caller_id=f"<{placement.number}>",
            variables={
                "GRAAM_CLICK_TENANT": str(placement.tenant_id),
                "GRAAM_CLICK_AGENT": str(placement.agent_user_id),
            },
            timeout_ms=RING_SECONDS * 1000,
            account=tenant,
        )
    except (AmiNotConnected, AmiInjectionError, AmiActionError, GraamError) as err:
        # Asterisk answered Error, or never received it: no call was placed.
        await _note(sessions, placement.call_id, OriginateStatus.FAILED)
        log.warning("click-to-call not placed id=%s error=%s", placement.call_id, err)
        raise Unavailable(
            "Asterisk did not take the call; retry with the same Idempotency-Key",
            retry_after=1,
        ) from err
    except AmiError as err:
        # No answer: the call may be ringing. Left pending, never sent again.
        log.warning("click-to-call originate unanswered id=%s error=%s", placement.call_id, err)
        return
    await _note(sessions, placement.call_id, OriginateStatus.SENT)
