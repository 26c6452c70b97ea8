"""Plans and monthly prices through the API: the one-month rule, notices to the affected
tenants only, what each tenant sees."""

from __future__ import annotations

import secrets
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from graam_pbx.audit.models import AuditEntry
from graam_pbx.billing.models import Price
from graam_pbx.notices.models import Notice
from graam_pbx.notices.service import one_month_after
from tests.dunning_rows import make_account
from tests.factories import TenantWorld, fields_of, make_world, unique

PLANS = "/api/v1/billing/plans"
PRICES = "/api/v1/billing/prices"


def today() -> date:
    return datetime.now(UTC).date()


async def new_plan(client: httpx.AsyncClient, world: TenantWorld) -> str:
    code = unique("plan-")
    made = await client.post(
        PLANS, headers=world.operator.headers, json={"code": code, "name": f"Plan {code}"}
    )
    assert made.status_code == 201, made.text
    return code


async def move_to_plan(client: httpx.AsyncClient, world: TenantWorld, code: str) -> None:
    moved = await client.patch(
        f"/api/v1/tenants/{world.tenant_id}", headers=world.operator.headers, json={"plan": code}
    )
    assert moved.status_code == 200, moved.text


async def publish(client: httpx.AsyncClient, world: TenantWorld, **body: Any) -> httpx.Response:
    body.setdefault("currency", "EUR")
    if isinstance(body.get("effective_on"), date):
        body["effective_on"] = body["effective_on"].isoformat()
    return await client.post(PRICES, headers=world.operator.headers, json=body)


async def notice_of(sessions: async_sessionmaker[AsyncSession], notice_id: int) -> Notice:
    async with sessions() as session:
        notice = await session.get(Notice, notice_id)
        assert notice is not None
        return notice


async def shown_notices(client: httpx.AsyncClient, world: TenantWorld) -> set[int]:
    answer = await client.get("/api/v1/notices", headers=world.agent.headers)
    assert answer.status_code == 200, answer.text
    return {n["id"] for n in answer.json()["items"]}


async def hold_number(client: httpx.AsyncClient, world: TenantWorld) -> str:
    e164 = f"+3314268{secrets.randbelow(10_000):04d}"
    loaded = await client.post(
        "/api/v1/catalogue/numbers",
        headers=world.operator.headers,
        json=[{"e164": e164, "monthly_price": "1.50", "currency": "EUR"}],
    )
    assert loaded.status_code == 201, loaded.text
    bought = await client.post("/api/v1/numbers", headers=world.admin.headers, json={"e164": e164})
    assert bought.status_code == 201, bought.text
    return e164


async def test_plans_are_the_operators_and_everyone_reads_them(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    world = await make_world(client, sessions)
    code = await new_plan(client, world)
    again = await client.post(
        PLANS, headers=world.operator.headers, json={"code": code, "name": "Again"}
    )
    assert again.status_code == 409, again.text
    by_admin = await client.post(
        PLANS, headers=world.admin.headers, json={"code": unique("p-"), "name": "x"}
    )
    assert by_admin.status_code == 403
    bad = await client.post(
        PLANS, headers=world.operator.headers, json={"code": "Not A Code", "name": "x"}
    )
    assert bad.status_code == 422
    assert fields_of(bad) == {"body.code"}
    listed = await client.get(PLANS, headers=world.agent.headers)
    assert listed.status_code == 200
    codes = [p["code"] for p in listed.json()["items"]]
    assert "standard" in codes and code in codes
    async with sessions() as session:
        audited = await session.scalar(
            select(AuditEntry.id).where(
                AuditEntry.object_type == "billing_plan", AuditEntry.object_id == code
            )
        )
    assert audited is not None


async def test_a_price_change_less_than_a_month_ahead_is_refused(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    world = await make_world(client, sessions)
    code = await new_plan(client, world)
    # The first price of a new item changes nothing for anyone: it may take effect today.
    first = await publish(
        client, world, item="plan", plan_code=code, amount="30", effective_on=today()
    )
    assert first.status_code == 201, first.text
    assert first.json()["amount"] == "30.0000"
    assert first.json()["in_force"] is True
    assert first.json()["notice_id"] is None
    earliest = one_month_after(today())
    for day in (today(), earliest - timedelta(days=1), today() - timedelta(days=400)):
        refused = await publish(
            client, world, item="plan", plan_code=code, amount="35", effective_on=day
        )
        assert refused.status_code == 422, refused.text
        assert fields_of(refused) == {"body.effective_on"}
    taken = await publish(
        client, world, item="plan", plan_code=code, amount="35.5", effective_on=earliest
    )
    assert taken.status_code == 201, taken.text
    assert taken.json()["in_force"] is False
    twice = await publish(
        client, world, item="plan", plan_code=code, amount="36", effective_on=earliest
    )
    assert twice.status_code == 409, twice.text
    # Not even a first price takes effect in the past.
    past = await publish(
        client,
        world,
        item="licence",
        plan_code=code,
        amount="9",
        effective_on=today() - timedelta(days=1),
    )
    assert past.status_code == 422
    assert fields_of(past) == {"body.effective_on"}
    async with sessions() as session:
        audited = (
            await session.scalars(
                select(AuditEntry.object_id).where(AuditEntry.object_type == "billing_price")
            )
        ).all()
    assert {str(first.json()["id"]), str(taken.json()["id"])} <= set(audited)


async def test_a_notice_goes_to_the_tenants_on_the_plan_only(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    on_plan = await make_world(client, sessions)
    other = await make_world(client, sessions)
    code = await new_plan(client, on_plan)
    await move_to_plan(client, on_plan, code)
    first = await publish(
        client, on_plan, item="licence", plan_code=code, amount="12", effective_on=today()
    )
    assert first.status_code == 201, first.text
    month_ahead = one_month_after(today())
    changed = await publish(
        client, on_plan, item="licence", plan_code=code, amount="11.5", effective_on=month_ahead
    )
    assert changed.status_code == 201, changed.text
    notice_id = changed.json()["notice_id"]
    assert notice_id is not None
    notice = await notice_of(sessions, notice_id)
    assert notice.tenant_ids == [on_plan.tenant_id]
    assert notice.effective_on == month_ahead
    assert "11.5" in notice.body
    assert notice_id in await shown_notices(client, on_plan)
    assert notice_id not in await shown_notices(client, other)

    # Nobody on a plan: the price is published without a notice.
    empty = await new_plan(client, on_plan)
    await publish(client, on_plan, item="user", plan_code=empty, amount="2", effective_on=today())
    quiet = await publish(
        client, on_plan, item="user", plan_code=empty, amount="3", effective_on=month_ahead
    )
    assert quiet.status_code == 201, quiet.text
    assert quiet.json()["notice_id"] is None

    # A plan's own price after a price for every plan is a change for the plan's tenants.
    toll_free = {"item": "number", "country": "BE", "number_type": "toll_free"}
    every = await publish(client, on_plan, **toll_free, amount="4", effective_on=today())
    assert every.status_code == 201, every.text
    own_now = await publish(
        client, on_plan, **toll_free, plan_code=code, amount="1", effective_on=today()
    )
    assert own_now.status_code == 422, own_now.text
    assert fields_of(own_now) == {"body.effective_on"}


async def test_a_price_for_every_plan_notifies_every_tenant(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    world = await make_world(client, sessions)
    month_ahead = one_month_after(today())
    answer = await publish(client, world, item="licence", amount="10", effective_on=month_ahead)
    assert answer.status_code == 201, answer.text
    notice = await notice_of(sessions, answer.json()["notice_id"])
    assert notice.tenant_ids is None  # every tenant
    assert answer.json()["notice_id"] in await shown_notices(client, world)


async def test_a_number_price_notifies_the_holders_of_such_numbers_only(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    holder = await make_world(client, sessions)
    other = await make_world(client, sessions)
    await hold_number(client, holder)
    code = await new_plan(client, holder)
    await move_to_plan(client, holder, code)
    await move_to_plan(client, other, code)
    number = {"item": "number", "plan_code": code, "country": "FR", "number_type": "geographic"}
    first = await publish(client, holder, **number, amount="1.5", effective_on=today())
    assert first.status_code == 201, first.text
    changed = await publish(
        client, holder, **number, amount="1.75", effective_on=one_month_after(today())
    )
    assert changed.status_code == 201, changed.text
    notice = await notice_of(sessions, changed.json()["notice_id"])
    assert notice.tenant_ids == [holder.tenant_id]
    assert changed.json()["notice_id"] not in await shown_notices(client, other)

    # What each tenant sees: the holder its number prices, now and upcoming; the other none.
    seen = await client.get(PRICES, headers=holder.agent.headers)
    assert seen.status_code == 200, seen.text
    mine = [p for p in seen.json()["items"] if p["item"] == "number" and p["plan_code"] == code]
    assert [(p["amount"], p["in_force"]) for p in mine] == [("1.5000", True), ("1.7500", False)]
    theirs = await client.get(PRICES, headers=other.agent.headers)
    assert not [p for p in theirs.json()["items"] if p["item"] == "number"]
    # The operator sees every price.
    everything = await client.get(PRICES, headers=holder.operator.headers)
    ids = {p["id"] for p in everything.json()["items"]}
    assert {first.json()["id"], changed.json()["id"]} <= ids


async def test_a_tenant_sees_its_plans_prices_not_another_plans(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    mine = await make_world(client, sessions)
    theirs = await make_world(client, sessions)
    my_plan = await new_plan(client, mine)
    their_plan = await new_plan(client, mine)
    await move_to_plan(client, mine, my_plan)
    await move_to_plan(client, theirs, their_plan)
    for code, amount in ((my_plan, "20"), (their_plan, "99")):
        made = await publish(
            client, mine, item="plan", plan_code=code, amount=amount, effective_on=today()
        )
        assert made.status_code == 201, made.text
    seen = await client.get(PRICES, headers=mine.admin.headers)
    plans = {(p["plan_code"], p["amount"]) for p in seen.json()["items"] if p["item"] == "plan"}
    assert plans == {(my_plan, "20.0000")}


async def test_bad_prices_are_refused_naming_the_field(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    world = await make_world(client, sessions)
    day = one_month_after(today()).isoformat()
    cases: list[tuple[dict[str, Any], str]] = [
        ({"item": "plan", "amount": "1", "effective_on": day}, "body.plan_code"),
        ({"item": "plan", "plan_code": "nope-none", "amount": "1", "effective_on": day},
         "body.plan_code"),
        ({"item": "number", "country": "FR", "amount": "1", "effective_on": day},
         "body.number_type"),
        ({"item": "number", "number_type": "mobile", "amount": "1", "effective_on": day},
         "body.country"),
        ({"item": "user", "country": "FR", "amount": "1", "effective_on": day}, "body.country"),
        ({"item": "user", "amount": "1.00001", "effective_on": day}, "body.amount"),
        ({"item": "user", "amount": "-1", "effective_on": day}, "body.amount"),
        ({"item": "user", "amount": "NaN", "effective_on": day}, "body.amount"),
        ({"item": "user", "amount": "1", "currency": "USD", "effective_on": day},
         "body.currency"),
        ({"item": "seat", "amount": "1", "effective_on": day}, "body.item"),
        ({"item": "number", "country": "XX", "number_type": "mobile", "amount": "1",
          "effective_on": day}, "body.country"),
        ({"item": "user", "amount": "1", "effective_on": "next month"}, "body.effective_on"),
    ]  # fmt: skip
    for body, field in cases:
        answer = await client.post(PRICES, headers=world.operator.headers, json=body)
        assert answer.status_code == 422, (body, answer.text)
        assert field in fields_of(answer), (body, answer.text)
    by_admin = await client.post(
        PRICES,
        headers=world.admin.headers,
        json={"item": "user", "amount": "1", "effective_on": day},
    )
    assert by_admin.status_code == 403
    async with sessions() as session:
        stored = await session.scalar(select(Price.id).where(Price.amount == -1))
    assert stored is None


async def test_a_first_price_for_a_billed_client_waits_its_month(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    world = await make_world(client, sessions)
    code = await new_plan(client, world)
    await move_to_plan(client, world, code)
    await make_account(sessions, world.tenant_id)
    # The tenant is billed and on the plan: its first plan price is a change for it.
    at_once = await publish(
        client, world, item="plan", plan_code=code, amount="30", effective_on=today()
    )
    assert at_once.status_code == 422, at_once.text
    assert fields_of(at_once) == {"body.effective_on"}
    announced = await publish(
        client,
        world,
        item="plan",
        plan_code=code,
        amount="30",
        effective_on=one_month_after(today()),
    )
    assert announced.status_code == 201, announced.text
    assert announced.json()["notice_id"] is not None
