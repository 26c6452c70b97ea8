"""Agents' SIP devices: one PJSIP endpoint each, with a generated password kept only as HA1."""

from __future__ import annotations

import hashlib
import secrets
import string

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from graam_pbx.agents.models import AgentDevice
from graam_pbx.agents.schemas import (
    DeviceCreate,
    DeviceUpdate,
    Transport,
    browser_codecs_rule,
    not_for_browsers,
)
from graam_pbx.audit import service as audit
from graam_pbx.auth.models import User
from graam_pbx.auth.principal import Role, Scope
from graam_pbx.db import ensure_version, flush_or_conflict, get_in_tenant, keyset_page
from graam_pbx.destinations import service as destinations
from graam_pbx.destinations.schemas import DestinationType
from graam_pbx.errors import Invalid, NotFound
from graam_pbx.tenants.models import Tenant

# The digest realm of every device; the PJSIP config names it in each auth section, and the
# HA1 we keep is only valid for it.
SIP_REALM = "graam"
# Letters and digits only: safe in SIP headers and in pjsip.conf without any quoting.
PASSWORD_ALPHABET = string.ascii_letters + string.digits
PASSWORD_LENGTH = 24  # about 143 bits

# Calls can be sent to an agent (all of its devices ring) or to one of its devices.
destinations.register_target(DestinationType.AGENT, User, User.role == Role.AGENT.value)
destinations.register_target(DestinationType.EXTENSION, AgentDevice)


def generate_password() -> str:
    """A new random SIP password."""
    return "".join(secrets.choice(PASSWORD_ALPHABET) for _ in range(PASSWORD_LENGTH))


def sip_ha1(sip_username: str, password: str) -> str:
    """HA1 = md5("user:realm:password") in hex: what PJSIP's md5_cred takes."""
    text = f"{sip_username}:{SIP_REALM}:{password}"
    return hashlib.md5(text.encode()).hexdigest()  # noqa: S324 - SIP digest is MD5 (RFC 3261)


# Who may own a device: agents take calls on theirs, supervisors and admins are called on
# theirs to supervise agents' calls (graam_pbx/supervision).
DEVICE_OWNER_ROLES = (Role.AGENT, Role.SUPERVISOR, Role.ADMIN)


async def ensure_device_owner(
    session: AsyncSession, tenant_id: int, user_id: int, field: str
) -> None:
    """Refuse (422 on ``field``) a user id that is not an agent, supervisor or admin of this
    tenant."""
    found = await session.scalar(
        select(User.id).where(
            User.id == user_id,
            User.tenant_id == tenant_id,
            User.role.in_([role.value for role in DEVICE_OWNER_ROLES]),
        )
    )
    if found is None:
        raise Invalid(field, f"no agent, supervisor or admin {user_id} in this tenant")


async def create_device(
    session: AsyncSession, scope: Scope, data: DeviceCreate
) -> tuple[AgentDevice, str]:
    """A device of one of the tenant's agents, and its password (returned once, never kept)."""
    await ensure_device_owner(session, scope.tenant_id, data.user_id, "body.user_id")
    tenant = await session.get(Tenant, scope.tenant_id)
    if tenant is None:
        raise NotFound(f"no tenant {scope.tenant_id}")
    # A slug (63) and a name (64) always fit the column (128).
    sip_username = f"{tenant.slug}-{data.name}"
    password = generate_password()
    device = AgentDevice(
        tenant_id=scope.tenant_id,
        user_id=data.user_id,
        sip_username=sip_username,
        password_ha1=sip_ha1(sip_username, password),
        extension=data.extension,
        codecs=[codec.value for codec in data.codecs],
        transport=data.transport.value,
        max_contacts=data.max_contacts,
    )
    session.add(device)
    await flush_or_conflict(session, taken=_taken(device))
    await audit.record(
        session,
        scope,
        "create",
        "agent_device",
        device.id,
        {
            "user_id": device.user_id,
            "sip_username": device.sip_username,
            "extension": device.extension,
            "codecs": device.codecs,
            "transport": device.transport,
            "max_contacts": device.max_contacts,
            "password": "set",
        },
    )
    return device, password


async def list_devices(
    session: AsyncSession,
    scope: Scope,
    *,
    user_id: int | None,
    after_id: int | None,
    limit: int,
) -> tuple[list[AgentDevice], int | None]:
    """The tenant's devices; an agent sees only its own."""
    statement = select(AgentDevice).where(AgentDevice.tenant_id == scope.tenant_id)
    if scope.role is Role.AGENT:
        statement = statement.where(AgentDevice.user_id == scope.principal.user_id)
    if user_id is not None:
        statement = statement.where(AgentDevice.user_id == user_id)
    return await keyset_page(session, statement, AgentDevice.id, after_id, limit)


async def device_extensions(session: AsyncSession, tenant_id: int, user_id: int) -> dict[str, str]:
    """The user's devices in the tenant: SIP username → extension (empty: it has none)."""
    rows = await session.execute(
        select(AgentDevice.sip_username, AgentDevice.extension).where(
            AgentDevice.tenant_id == tenant_id, AgentDevice.user_id == user_id
        )
    )
    return {row.sip_username: row.extension for row in rows}


async def device_by_extension(
    session: AsyncSession, scope: Scope, extension: str
) -> AgentDevice | None:
    """The tenant's device with this extension, whoever's it is (a phone's ``*72`` names
    another user's extension), or None."""
    found: AgentDevice | None = await session.scalar(
        select(AgentDevice).where(
            AgentDevice.tenant_id == scope.tenant_id, AgentDevice.extension == extension
        )
    )
    return found


async def count_devices(session: AsyncSession, scope: Scope) -> int:
    """How many devices ``list_devices`` pages through (without a user filter)."""
    statement = (
        select(func.count())
        .select_from(AgentDevice)
        .where(AgentDevice.tenant_id == scope.tenant_id)
    )
    if scope.role is Role.AGENT:
        statement = statement.where(AgentDevice.user_id == scope.principal.user_id)
    return int(await session.scalar(statement) or 0)


async def get_device(session: AsyncSession, scope: Scope, device_id: int) -> AgentDevice:
    """One device of the tenant; an agent's view holds only its own devices."""
    device = await get_in_tenant(session, AgentDevice, scope.tenant_id, device_id)
    if scope.role is Role.AGENT and device.user_id != scope.principal.user_id:
        raise NotFound(f"no agent device {device_id}")
    return device


async def update_device(
    session: AsyncSession, scope: Scope, device_id: int, data: DeviceUpdate, expected: int | None
) -> AgentDevice:
    """Change a device's agent, extension or media settings (not its SIP username)."""
    device = await get_in_tenant(session, AgentDevice, scope.tenant_id, device_id)
    ensure_version(device, expected)
    changes = data.model_dump(mode="json", exclude_unset=True)
    if data.user_id is not None:
        await ensure_device_owner(session, scope.tenant_id, data.user_id, "body.user_id")
    for field, value in changes.items():
        setattr(device, field, value)
    if device.transport == Transport.WEBRTC and (other := not_for_browsers(device.codecs)):
        raise Invalid("body.codecs", browser_codecs_rule(other))
    await flush_or_conflict(session, taken=_taken(device))
    await audit.record(session, scope, "update", "agent_device", device.id, changes)
    return device


async def reset_password(
    session: AsyncSession, scope: Scope, device_id: int
) -> tuple[AgentDevice, str]:
    """A new generated password for a device (an agent: only its own); the old one stops."""
    device = await get_device(session, scope, device_id)
    password = generate_password()
    device.password_ha1 = sip_ha1(device.sip_username, password)
    await session.flush()
    await audit.record(
        session, scope, "reset-password", "agent_device", device.id, {"password": "changed"}
    )
    return device, password


async def delete_device(session: AsyncSession, scope: Scope, device_id: int) -> None:
    """Remove a device no route sends calls to any more."""
    device = await get_in_tenant(session, AgentDevice, scope.tenant_id, device_id)
    await destinations.ensure_no_references(
        session,
        scope.tenant_id,
        DestinationType.EXTENSION,
        device.id,
        f"extension {device.extension}",
    )
    await session.delete(device)
    await session.flush()
    await audit.record(
        session,
        scope,
        "delete",
        "agent_device",
        device_id,
        {"sip_username": device.sip_username, "extension": device.extension},
    )


def _taken(device: AgentDevice) -> dict[str, tuple[str, object]]:
    return {
        "uq_agent_devices_sip_username": ("sip_username", device.sip_username),
        "uq_agent_devices_tenant_id_extension": ("extension", device.extension),
    }
