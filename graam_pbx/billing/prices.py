"""Plans and monthly prices: publishing under the one-month rule, with a notice to every
tenant the price concerns.

The contract: a change to the service (prices included) is notified one month ahead. An
item's first price (none was ever published for it) changes no price a client was told of,
so it may take effect at once; any later one takes effect one month
(``notices.service.one_month_after``) or more after its publication.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import ColumnElement, and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from graam_pbx.audit import service as audit_service
from graam_pbx.auth.principal import Principal
from graam_pbx.billing.models import BillingAccount, BillingPlan, Price
from graam_pbx.db import flush_or_conflict
from graam_pbx.errors import Conflict, Forbidden, Invalid
from graam_pbx.notices import service as notices_service
from graam_pbx.notices.schemas import NoticeCreate
from graam_pbx.numbers.models import NumberStatus, PhoneNumber
from graam_pbx.tenants.models import Tenant, TenantStatus

ITEMS = ("plan", "number", "user", "licence")
MAX_AHEAD = timedelta(days=3653)  # a price is published ten years ahead at most
_HELD = (NumberStatus.ASSIGNED.value, NumberStatus.PORT_OUT.value)
_ITEM_WORDS = {
    "plan": ("the subscription", "l'abonnement"),
    "number": ("each phone number", "chaque numéro"),
    "user": ("each user", "chaque utilisateur"),
    "licence": ("each call-centre licence", "chaque licence centre d'appels"),
}


@dataclass(frozen=True)
class PriceInput:
    """A price to publish, validated by the API's schema."""

    item: str
    plan_code: str | None
    country: str | None
    number_type: str | None
    amount: Decimal
    currency: str
    effective_on: date


def _check_item(data: PriceInput) -> None:
    if data.item == "plan" and data.plan_code is None:
        raise Invalid("body.plan_code", "a plan's price names its plan")
    if data.item == "number":
        for field, value in (("country", data.country), ("number_type", data.number_type)):
            if value is None:
                raise Invalid(f"body.{field}", "a number's price names its country and type")
    else:
        for field, value in (("country", data.country), ("number_type", data.number_type)):
            if value is not None:
                raise Invalid(f"body.{field}", "only a number's price names it")


def _now() -> datetime:
    return datetime.now(UTC)


def _operator(principal: Principal) -> None:
    if not principal.is_operator:
        raise Forbidden("only operators manage plans and prices")


async def create_plan(
    session: AsyncSession, principal: Principal, *, code: str, name: str
) -> BillingPlan:
    """A new plan (operators); its code is what a tenant's ``plan`` names."""
    _operator(principal)
    if await session.get(BillingPlan, code) is not None:
        raise Conflict(f"plan {code!r} already exists", field="body.code")
    plan = BillingPlan(code=code, name=name)
    session.add(plan)
    await flush_or_conflict(session, otherwise=f"plan {code!r} already exists")
    await audit_service.record(session, principal, "create", "billing_plan", code, {"name": name})
    return plan


async def list_plans(session: AsyncSession) -> list[BillingPlan]:
    """Every plan, by code."""
    return list((await session.scalars(select(BillingPlan).order_by(BillingPlan.code))).all())


def _same_item(data: PriceInput) -> list[ColumnElement[bool]]:
    """The rows that price this very item: its key, with NULL equal to NULL."""
    return [
        Price.item == data.item,
        Price.plan_code.is_not_distinct_from(data.plan_code),
        Price.country.is_not_distinct_from(data.country),
        Price.number_type.is_not_distinct_from(data.number_type),
    ]


async def is_first_price(session: AsyncSession, data: PriceInput) -> bool:
    """Whether no client has ever been billed this item by any price: no row of the same key,
    and (for a plan's own user, licence or number price) no price for every plan either."""
    conditions = [and_(*_same_item(data))]
    if data.plan_code is not None and data.item != "plan":
        conditions.append(
            and_(
                Price.item == data.item,
                Price.plan_code.is_(None),
                Price.country.is_not_distinct_from(data.country),
                Price.number_type.is_not_distinct_from(data.number_type),
            )
        )
    found = await session.scalar(select(Price.id).where(or_(*conditions)).limit(1))
    return found is None


async def _billed(session: AsyncSession, tenant_ids: list[int]) -> bool:
    """Whether any of ``tenant_ids`` is billed (has a billing account)."""
    if not tenant_ids:
        return False
    found = await session.scalar(
        select(BillingAccount.tenant_id).where(BillingAccount.tenant_id.in_(tenant_ids)).limit(1)
    )
    return found is not None


async def affected_tenants(session: AsyncSession, data: PriceInput) -> list[int]:
    """The tenants a price concerns: those on its plan (every tenant when it names none);
    for a number price, those of them holding a number of its country and type.
    Terminated tenants are no longer clients."""
    statement = select(Tenant.id).where(Tenant.status != TenantStatus.TERMINATED.value)
    if data.plan_code is not None:
        statement = statement.where(Tenant.plan == data.plan_code)
    if data.item == "number":
        statement = statement.where(
            select(PhoneNumber.id)
            .where(
                PhoneNumber.tenant_id == Tenant.id,
                PhoneNumber.country == data.country,
                PhoneNumber.number_type == data.number_type,
                PhoneNumber.status.in_(_HELD),
            )
            .exists()
        )
    return list((await session.scalars(statement.order_by(Tenant.id))).all())


def _describe(data: PriceInput) -> tuple[str, str]:
    english, french = _ITEM_WORDS[data.item]
    if data.item == "number":
        kind = (data.number_type or "").replace("_", " ")
        english = f"each {kind} phone number in {data.country}"
        french = f"chaque numéro {kind} en {data.country}"
    if data.plan_code is not None:
        english += f" (plan {data.plan_code})"
        french += f" (offre {data.plan_code})"
    return english, french


def price_notice(data: PriceInput, tenant_ids: list[int] | None) -> NoticeCreate:
    """The notice of a new price, in English and French."""
    english, french = _describe(data)
    day = data.effective_on
    notice = NoticeCreate(
        title=f"New monthly price from {day.isoformat()}: {english}"[:200],
        body=(
            f"From {day.isoformat()}, {english} costs {data.amount} {data.currency} per month "
            "(excluding VAT).\n\n"
            f"À partir du {day:%d/%m/%Y}, {french} coûte {data.amount} {data.currency} "
            "par mois (hors TVA)."
        ),
        effective_on=day,
    )
    # More tenants than a notice's own schema takes from a client are still one notice.
    return notice.model_copy(update={"tenant_ids": tenant_ids})


async def publish_price(
    session: AsyncSession,
    principal: Principal,
    data: PriceInput,
    *,
    now: datetime | None = None,
) -> Price:
    """Publish a monthly price (operators) under the one-month rule, with a notice to every
    tenant it concerns (none when no tenant is concerned)."""
    _operator(principal)
    _check_item(data)
    moment = now or _now()
    if data.plan_code is not None and await session.get(BillingPlan, data.plan_code) is None:
        raise Invalid("body.plan_code", f"no plan {data.plan_code!r}")
    earliest = notices_service.earliest_effective_date(moment)
    tenants = await affected_tenants(session, data)
    # An item's first price changes nothing only while no client is billed for it: once a
    # tenant with a billing account holds the item, even a first price gives a month's notice.
    first = await is_first_price(session, data) and not await _billed(session, tenants)
    today = moment.astimezone(UTC).date()
    if data.effective_on > today + MAX_AHEAD:
        raise Invalid("body.effective_on", "must be within the next ten years")
    if first and data.effective_on < today:
        raise Invalid("body.effective_on", "a first price may take effect today, not earlier")
    if not first and data.effective_on < earliest:
        raise Invalid(
            "body.effective_on",
            f"must be at least one month after publication: {earliest.isoformat()} or later "
            "(only an item's first price, billed to no client yet, may take effect at once)",
        )
    duplicate = await session.scalar(
        select(Price.id).where(*_same_item(data), Price.effective_on == data.effective_on)
    )
    if duplicate is not None:
        raise Conflict(
            f"a price of this item already takes effect on {data.effective_on.isoformat()} "
            f"(price {duplicate})",
            field="body.effective_on",
        )
    price = Price(
        item=data.item,
        plan_code=data.plan_code,
        country=data.country,
        number_type=data.number_type,
        amount=data.amount,
        currency=data.currency,
        effective_on=data.effective_on,
        published_at=moment,
        published_by=principal.label,
    )
    # A first price taking effect within the month changes no announced price: notices are
    # for changes, and notices.publish keeps its month's rule for every one it publishes.
    if tenants and data.effective_on >= earliest:
        every = data.plan_code is None and data.item != "number"
        notice = await notices_service.publish(
            session, principal, price_notice(data, None if every else tenants), now=moment
        )
        price.notice_id = notice.id
    session.add(price)
    await flush_or_conflict(session, otherwise="a price of this item already takes effect then")
    await session.refresh(price)  # the amount as stored (4 decimals)
    await audit_service.record(
        session,
        principal,
        "publish",
        "billing_price",
        price.id,
        {
            "item": data.item,
            "plan_code": data.plan_code,
            "country": data.country,
            "number_type": data.number_type,
            "amount": str(data.amount),
            "currency": data.currency,
            "effective_on": data.effective_on.isoformat(),
            "first_price": first,
            "notice_id": price.notice_id,
            "tenants_notified": len(tenants) if price.notice_id else 0,
        },
    )
    return price


async def list_prices(session: AsyncSession, principal: Principal) -> list[Price]:
    """Every price (operators), by item and effective date."""
    _operator(principal)
    statement = select(Price).order_by(
        Price.item, Price.plan_code, Price.country, Price.number_type, Price.effective_on
    )
    return list((await session.scalars(statement)).all())


async def prices_for_tenant(
    session: AsyncSession, tenant_id: int, *, today: date | None = None
) -> list[Price]:
    """The prices that concern a tenant: for each item of its plan (its own or every plan's),
    the one in force today and every later one published; numbers only of a country and type
    it holds."""
    day = today or _now().date()
    tenant = await session.get(Tenant, tenant_id)
    if tenant is None:
        return []
    held_rows = await session.execute(
        select(PhoneNumber.country, PhoneNumber.number_type).where(
            PhoneNumber.tenant_id == tenant_id, PhoneNumber.status.in_(_HELD)
        )
    )
    held = {(country, kind) for country, kind in held_rows}
    rows = (
        await session.scalars(
            select(Price)
            .where(or_(Price.plan_code.is_(None), Price.plan_code == tenant.plan))
            .order_by(Price.item, Price.country, Price.number_type, Price.effective_on)
        )
    ).all()
    in_force: dict[tuple[str, str | None, str | None, str | None], Price] = {}
    upcoming: list[Price] = []
    for row in rows:
        if row.item == "number" and (row.country, row.number_type) not in held:
            continue
        if row.effective_on > day:
            upcoming.append(row)
            continue
        key = (row.item, row.plan_code, row.country, row.number_type)
        if key not in in_force or row.effective_on > in_force[key].effective_on:
            in_force[key] = row
    # A plan's own price wins over the price for every plan: only the one that applies shows.
    shown = [
        row
        for key, row in in_force.items()
        if key[1] is not None or (key[0], tenant.plan, key[2], key[3]) not in in_force
    ]
    return sorted(
        [*shown, *upcoming],
        key=lambda p: (p.item, p.country or "", p.number_type or "", p.effective_on, p.id),
    )
