"""Contact lists and their contacts: the people a tenant's campaigns call, with their consent."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from graam_pbx.audit import service as audit
from graam_pbx.auth.principal import Scope
from graam_pbx.campaigns.models import Campaign, Contact, ContactList
from graam_pbx.campaigns.schemas.contacts import (
    ConsentUpdate,
    ContactListCreate,
    ContactListUpdate,
)
from graam_pbx.db import ensure_version, flush_or_conflict, get_in_tenant, keyset_page
from graam_pbx.errors import Conflict, NotFound

_UNIQUE_NAME = "uq_contact_lists_tenant_id_name"


async def create_list(session: AsyncSession, scope: Scope, data: ContactListCreate) -> ContactList:
    """A new, empty contact list of the tenant."""
    contact_list = ContactList(
        tenant_id=scope.tenant_id, name=data.name, default_region=data.default_region
    )
    session.add(contact_list)
    await flush_or_conflict(session, taken={_UNIQUE_NAME: ("name", data.name)})
    await audit.record(
        session,
        scope,
        "create",
        "contact_list",
        contact_list.id,
        {"name": data.name, "default_region": data.default_region},
    )
    return contact_list


async def list_lists(
    session: AsyncSession, scope: Scope, *, after_id: int | None, limit: int
) -> tuple[list[ContactList], int | None]:
    """The tenant's contact lists, by id."""
    statement = select(ContactList).where(ContactList.tenant_id == scope.tenant_id)
    return await keyset_page(session, statement, ContactList.id, after_id, limit)


async def get_list(session: AsyncSession, scope: Scope, list_id: int) -> ContactList:
    """One of the tenant's lists (another tenant's does not exist: NotFound)."""
    return await get_in_tenant(session, ContactList, scope.tenant_id, list_id)


async def contact_counts(session: AsyncSession, list_ids: list[int]) -> dict[int, int]:
    """How many contacts each list holds."""
    if not list_ids:
        return {}
    rows = await session.execute(
        select(Contact.list_id, func.count())
        .where(Contact.list_id.in_(list_ids))
        .group_by(Contact.list_id)
    )
    counts = {list_id: 0 for list_id in list_ids}
    counts.update({int(list_id): int(count) for list_id, count in rows})
    return counts


async def update_list(
    session: AsyncSession,
    scope: Scope,
    list_id: int,
    data: ContactListUpdate,
    expected: int | None,
) -> ContactList:
    """Rename a list or change how its later imports read national numbers."""
    contact_list = await get_list(session, scope, list_id)
    ensure_version(contact_list, expected)
    changes = data.model_dump(exclude_unset=True)
    for key, value in changes.items():
        setattr(contact_list, key, value)
    if changes:
        await flush_or_conflict(session, taken={_UNIQUE_NAME: ("name", contact_list.name)})
        await audit.record(session, scope, "update", "contact_list", contact_list.id, changes)
    return contact_list


async def delete_list(session: AsyncSession, scope: Scope, list_id: int) -> None:
    """Delete a list, its contacts and imports; refused while a campaign uses it."""
    contact_list = await get_list(session, scope, list_id)
    used_by = list(
        (
            await session.scalars(
                select(Campaign.name).where(
                    Campaign.list_id == contact_list.id, Campaign.tenant_id == scope.tenant_id
                )
            )
        ).all()
    )
    if used_by:
        raise Conflict(
            f"list {contact_list.name!r} is used by the campaigns: {', '.join(used_by)}",
            used_by=used_by,
        )
    name = contact_list.name
    await session.delete(contact_list)
    # A campaign made since the check: its foreign key (RESTRICT) refuses the delete.
    await flush_or_conflict(session, otherwise=f"list {list_id} was just given a campaign")
    await audit.record(session, scope, "delete", "contact_list", list_id, {"name": name})


async def list_contacts(
    session: AsyncSession, scope: Scope, list_id: int, *, after_id: int | None, limit: int
) -> tuple[list[Contact], int | None]:
    """The list's contacts, by id."""
    contact_list = await get_list(session, scope, list_id)
    statement = select(Contact).where(
        Contact.list_id == contact_list.id, Contact.tenant_id == scope.tenant_id
    )
    return await keyset_page(session, statement, Contact.id, after_id, limit)


async def get_contact(
    session: AsyncSession, scope: Scope, list_id: int, contact_id: int
) -> Contact:
    """One contact of one of the tenant's lists."""
    contact = await session.scalar(
        select(Contact).where(
            Contact.id == contact_id,
            Contact.list_id == list_id,
            Contact.tenant_id == scope.tenant_id,
        )
    )
    if contact is None:
        raise NotFound(f"no contact {contact_id} in list {list_id}")
    return contact


async def record_consent(
    session: AsyncSession, scope: Scope, list_id: int, contact_id: int, data: ConsentUpdate
) -> Contact:
    """Record (or, with no date, withdraw) the proof of a contact's consent to be called."""
    contact = await get_contact(session, scope, list_id, contact_id)
    contact.consent_at = data.consent_at
    contact.consent_source = data.consent_source if data.consent_at is not None else None
    await session.flush()
    await audit.record(
        session,
        scope,
        "consent",
        "contact",
        contact.id,
        {"consent_at": contact.consent_at, "consent_source": contact.consent_source},
    )
    return contact
