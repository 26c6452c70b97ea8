"""Work that spans domains: the first run's operator, demo tenant and number catalogue.

Everything is made through the domains' own services, so the demo obeys every rule a
tenant admin's configuration does.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from decimal import Decimal

import phonenumbers
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from graam_pbx.agents import service as agents_service
from graam_pbx.agents.schemas import DeviceCreate
from graam_pbx.auth import passwords
from graam_pbx.auth import service as auth_service
from graam_pbx.auth.models import User
from graam_pbx.auth.principal import Principal, Role, Scope
from graam_pbx.auth.schemas import UserCreate
from graam_pbx.destinations.schemas import Destination, DestinationType
from graam_pbx.ivr import service as ivr_service
from graam_pbx.ivr.schemas import IvrCreate
from graam_pbx.numbers import service as numbers_service
from graam_pbx.numbers.models import PhoneNumber
from graam_pbx.numbers.schemas import CatalogueNumberIn
from graam_pbx.queues import service as queues_service
from graam_pbx.queues.schemas import MemberCreate, QueueCreate
from graam_pbx.routing import service as routing_service
from graam_pbx.routing.schemas import InboundRouteCreate
from graam_pbx.tenants import service as tenants_service
from graam_pbx.tenants.schemas import TenantCreate
from graam_pbx.voicemail import service as voicemail_service
from graam_pbx.voicemail.schemas import BoxCreate

DEMO_SLUG = "demo"
# What a fresh install sells until the operator loads its own catalogue: French numbers of
# each kind sold (the geographic ones in the ranges ARCEP keeps for fiction).
DEMO_CATALOGUE: tuple[tuple[str, str], ...] = (
    ("+33199001001", "1.50"),
    ("+33261911001", "1.50"),
    ("+33353011001", "1.50"),
    ("+33465711001", "1.50"),
    ("+33756000001", "3.00"),
    ("+33756000002", "3.00"),
    ("+33800101001", "5.00"),
    ("+33800101002", "5.00"),
    ("+33977421001", "1.00"),
    ("+33977421002", "1.00"),
)
DEMO_CURRENCY = "EUR"
# Serialises first runs of several processes against one empty database.
_FIRST_RUN_LOCK = 0x6772616D  # "gram"


@dataclass(frozen=True)
class Login:
    role: str
    email: str
    password: str


@dataclass(frozen=True)
class Phone:
    extension: str
    sip_username: str
    password: str


@dataclass
class DemoTenant:
    """What the demo tenant holds: credentials to print once, and every object's id."""

    tenant_id: int
    slug: str
    logins: list[Login] = field(default_factory=list)
    phones: list[Phone] = field(default_factory=list)
    ids: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class ForSale:
    """A catalogue entry the first run loaded."""

    e164: str
    number_type: str
    monthly_price: Decimal
    currency: str


@dataclass(frozen=True)
class FirstRun:
    operator: Login
    tenant: DemoTenant
    catalogue: list[ForSale] = field(default_factory=list)
    operator_id: int | None = None  # the operator's user id: what it made next is its own


def _password(email: str) -> str:
    return passwords.generate(email)


async def _free_demo_number(session: AsyncSession) -> str:
    """A valid French geographic number not yet in the catalogue."""
    while True:
        candidate = f"+331{secrets.randbelow(10**8):08d}"
        parsed = phonenumbers.parse(candidate, None)
        if not phonenumbers.is_valid_number(parsed):
            continue
        if await session.scalar(select(PhoneNumber.id).where(PhoneNumber.e164 == candidate)):
            continue
        return candidate


async def seed_demo_tenant(session: AsyncSession, operator: Principal, slug: str) -> DemoTenant:
    """A tenant with an admin, a supervisor, two agents with phones, a queue, an IVR, a
    voicemail box and a number routed to the IVR."""
    tenant = await tenants_service.create_tenant(
        session,
        operator,
        TenantCreate(
            slug=slug, name="Demo Call Centre", country="FR", timezone="Europe/Paris", licences=2
        ),
    )
    demo = DemoTenant(tenant_id=tenant.id, slug=slug, ids={"tenant_id": tenant.id})
    scope = Scope(tenant.id, operator)
    users: dict[str, int] = {}
    for role, email, name in (
        ("admin", f"admin@{slug}.example", "Demo Admin"),
        ("supervisor", f"supervisor@{slug}.example", "Demo Supervisor"),
        ("agent", f"ana@{slug}.example", "Ana Agent"),
        ("agent", f"bob@{slug}.example", "Bob Agent"),
    ):
        password = _password(email)
        user = await auth_service.create_user(
            session,
            scope,
            UserCreate(email=email, display_name=name, role=Role(role), password=password),
        )
        users[email.split("@")[0]] = user.id
        demo.logins.append(Login(role, email, password))
    demo.ids["user_id"] = users["ana"]
    for local, extension in (("ana", "201"), ("bob", "202")):
        device, password = await agents_service.create_device(
            session,
            scope,
            DeviceCreate(user_id=users[local], name=f"{local}-phone", extension=extension),
        )
        demo.phones.append(Phone(extension, device.sip_username, password))
        demo.ids.setdefault("device_id", device.id)
    box = await voicemail_service.create_box(
        session, scope, BoxCreate(number="800", name="Demo voicemail", pin="4711")
    )
    demo.ids["box_id"] = box.id
    voicemail = Destination(type=DestinationType.VOICEMAIL, id=box.id)
    queue = await queues_service.create_queue(
        session,
        scope,
        QueueCreate(name="support", strategy="leastrecent", max_wait=120, fallback=voicemail),
    )
    demo.ids["queue_id"] = queue.id
    for local, penalty in (("ana", 0), ("bob", 1)):
        member = await queues_service.add_member(
            session, scope, queue.id, MemberCreate(user_id=users[local], penalty=penalty)
        )
        demo.ids.setdefault("member_id", member.id)
    to_queue = Destination(type=DestinationType.QUEUE, id=queue.id)
    menu = await ivr_service.create_menu(
        session,
        scope,
        IvrCreate(
            name="main", options={"1": to_queue, "2": voicemail}, timeout_destination=to_queue
        ),
    )
    demo.ids["menu_id"] = menu.menu.id
    e164 = await _free_demo_number(session)
    await numbers_service.load_catalogue(
        session,
        operator,
        [CatalogueNumberIn(e164=e164, monthly_price=Decimal("1.50"), currency="EUR")],
    )
    number = await numbers_service.buy_number(session, scope, e164)
    demo.ids["number_id"] = number.id
    route = await routing_service.create_inbound_route(
        session,
        scope,
        InboundRouteCreate(
            number_id=number.id,
            open_destination=Destination(type=DestinationType.IVR, id=menu.menu.id),
        ),
    )
    demo.ids["route_id"] = route.id
    return demo


async def seed_demo_catalogue(session: AsyncSession, operator: Principal) -> list[ForSale]:
    """Put the demo catalogue on sale through the numbers service (entries already there
    are left as they are)."""
    entries = [
        CatalogueNumberIn(e164=e164, monthly_price=Decimal(price), currency=DEMO_CURRENCY)
        for e164, price in DEMO_CATALOGUE
    ]
    known = set(
        await session.scalars(
            select(PhoneNumber.e164).where(PhoneNumber.e164.in_([e.e164 for e in entries]))
        )
    )
    missing = [entry for entry in entries if entry.e164 not in known]
    if not missing:
        return []
    loaded = await numbers_service.load_catalogue(session, operator, missing)
    return [ForSale(n.e164, n.number_type, n.monthly_price, n.currency) for n in loaded]


async def first_run(session: AsyncSession) -> FirstRun | None:
    """On an empty database: an operator, the demo tenant and a small catalogue of numbers
    for sale (None when users exist)."""
    await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _FIRST_RUN_LOCK})
    if await session.scalar(select(func.count()).select_from(User)):
        return None
    email = "operator@graam.example"
    password = _password(email)
    user = await auth_service.create_operator(session, email, "Operator", password)
    operator = Principal(user.id, Role.OPERATOR, None, email)
    tenant = await seed_demo_tenant(session, operator, DEMO_SLUG)
    catalogue = await seed_demo_catalogue(session, operator)
    return FirstRun(Login("operator", email, password), tenant, catalogue, operator_id=user.id)
