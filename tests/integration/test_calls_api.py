"""/api/v1/calls refused as it must be, against the real Postgres and Asterisk: bad input is a
422 naming its field; a user the caller may not ring, a tenant that may not call out, a number
no route reaches, are refused before anything is written or sent; a call that is not the
caller's is 404 after Asterisk's channels were read, and nothing else is sent. The click-to-call
row's migration matches its model; a retry after Asterisk refused the Originate sends it again
with the same channel id. (Calls placed and controlled for real: tests/e2e/test_click_to_call.py
and tests/e2e/test_call_control.py.)"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import phonenumbers
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from graam_pbx.ami import AmiNotConnected
from graam_pbx.ami import actions as ami_actions
from graam_pbx.audit.models import AuditEntry
from graam_pbx.call_control import models as call_models
from graam_pbx.call_control.models import ClickToCall
from tests.ami_actions import actions_sent
from tests.factories import TenantWorld, fields_of, make_world, unique
from tests.schema import differences_after_migrating

Sessions = async_sessionmaker[AsyncSession]
URL = "/api/v1/calls"
NUMBER = "+33612345678"
AGENT_FIELD = "body.agent_user_id"


def key() -> str:
    return f"k-{uuid.uuid4()}"


async def created(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def device_of(client: httpx.AsyncClient, world: TenantWorld, user_id: int) -> None:
    await created(
        await client.post(
            "/api/v1/devices",
            headers=world.admin.headers,
            json={"user_id": user_id, "name": unique("desk"), "extension": "201"},
        )
    )


async def route_to_france(client: httpx.AsyncClient, world: TenantWorld) -> None:
    """An outbound route reaching France, through a trunk, with a number of the tenant's."""
    e164 = ""
    while not e164 or not phonenumbers.is_valid_number(phonenumbers.parse(e164)):
        e164 = f"+331{uuid.uuid4().int % 10**8:08d}"
    entry = [{"e164": e164, "monthly_price": "1.00", "currency": "EUR"}]
    await created(
        await client.post("/api/v1/catalogue/numbers", headers=world.operator.headers, json=entry)
    )
    number = await created(
        await client.post("/api/v1/numbers", headers=world.admin.headers, json={"e164": e164})
    )
    trunk = await created(
        await client.post(
            "/api/v1/trunks",
            headers=world.operator.headers,
            json={"name": unique("carrier"), "host": "192.0.2.1", "country": "FR"},
        )
    )
    await created(
        await client.post(
            "/api/v1/outbound-routes",
            headers=world.admin.headers,
            json={
                "name": "france",
                "trunk_id": trunk["id"],
                "caller_id_number_id": number["id"],
                "allowed_countries": ["FR"],
            },
        )
    )


async def nothing_written(sessions: Sessions, tenant_id: int) -> None:
    async with sessions() as session:
        rows = await session.scalar(select(func.count()).where(ClickToCall.tenant_id == tenant_id))
        audited = await session.scalar(
            select(func.count()).where(
                AuditEntry.tenant_id == tenant_id, AuditEntry.action == "click-to-call"
            )
        )
    assert (rows, audited) == (0, 0)


async def test_the_migration_makes_the_models_table(empty_database_url: str) -> None:
    tables = {
        model.__tablename__
        for model in vars(call_models).values()
        if isinstance(model, type) and hasattr(model, "__tablename__")
    }
    assert tables == {"click_to_calls"}
    assert await differences_after_migrating(empty_database_url, tables) == []


async def test_bad_input_is_a_422_naming_the_field(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions)
    agent = world.agent.headers
    for headers, body, field in [
        (agent, {"number": NUMBER}, "header.idempotency-key"),
        ({"Idempotency-Key": "has space"}, {"number": NUMBER}, "header.idempotency-key"),
        ({"Idempotency-Key": "x" * 256}, {"number": NUMBER}, "header.idempotency-key"),
        ({"Idempotency-Key": key()}, {}, "body.number"),
        ({"Idempotency-Key": key()}, {"number": "0612345678"}, "body.number"),
        ({"Idempotency-Key": key()}, {"number": "+3361"}, "body.number"),
        ({"Idempotency-Key": key()}, {"number": "+33 6 12 34 56 78"}, "body.number"),
        (
            {"Idempotency-Key": key()},
            {"number": NUMBER, "agent_user_id": "1"},
            "body.agent_user_id",
        ),
        ({"Idempotency-Key": key()}, {"number": NUMBER, "agent_user_id": 0}, "body.agent_user_id"),
        ({"Idempotency-Key": key()}, {"number": NUMBER, "extra": 1}, "body.extra"),
    ]:
        response = await client.post(URL, headers={**agent, **headers}, json=body)
        assert response.status_code == 422, (body, response.text)
        assert fields_of(response) == {field}, (body, response.text)

    for path in ("bad id!", "x" * 151, "-starts-with-a-dash"):
        response = await client.get(f"{URL}/{path}", headers=agent)
        assert response.status_code == 422, (path, response.text)
        assert fields_of(response) == {"path.call_id"}, response.text

    call = f"{URL}/graam-1796519646.0"
    for action, body, field in [
        ("transfer", {}, "body.to"),
        ("transfer", {"to": {"type": "queue"}}, "body.to"),
        ("transfer", {"to": {"type": "fax", "id": 1}}, "body.to.type"),
        ("transfer", {"to": {"type": "extension", "extension": "0"}}, "body.to.extension"),
        ("transfer", {"to": {"type": "number", "number": "12"}}, "body.to.number"),
        ("transfer", {"to": {"type": "queue", "id": 1, "number": NUMBER}}, "body.to"),
        ("transfer", {"to": {"type": "queue", "id": 1}, "attended": "yes"}, "body.attended"),
        ("dtmf", {}, "body.digits"),
        ("dtmf", {"digits": ""}, "body.digits"),
        ("dtmf", {"digits": "12x"}, "body.digits"),
        ("dtmf", {"digits": "1" * 33}, "body.digits"),
    ]:
        response = await client.post(f"{call}/{action}", headers=agent, json=body)
        assert response.status_code == 422, (action, body, response.text)
        assert fields_of(response) == {field}, (action, body, response.text)
    await nothing_written(sessions, world.tenant_id)


async def test_who_rings_is_checked_before_anything_is_written_or_sent(
    client: httpx.AsyncClient, sessions: Sessions, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = await make_world(client, sessions)
    other = await make_world(client, sessions)
    await route_to_france(client, world)

    def ask(headers: dict[str, str], **body: Any) -> Any:
        return client.post(
            URL, headers={**headers, "Idempotency-Key": key()}, json={"number": NUMBER, **body}
        )

    with actions_sent(monkeypatch) as sent:
        # Supervisors, admins and operators name whose device rings.
        for headers in (world.admin.headers, world.supervisor.headers, world.operator_headers):
            response = await ask(headers)
            assert response.status_code == 422, response.text
            assert fields_of(response) == {"body.agent_user_id"}
        # Nobody of another tenant, nor anybody who does not exist.
        for user in (other.agent.user_id, 10**12):
            response = await ask(world.admin.headers, agent_user_id=user)
            assert response.status_code == 422, response.text
            assert fields_of(response) == {"body.agent_user_id"}
        # An agent rings its own device only.
        response = await ask(world.agent.headers, agent_user_id=world.supervisor.user_id)
        assert response.status_code == 403, response.text
        # Without a device there is nothing to ring.
        for response in (
            await ask(world.agent.headers),
            await ask(world.agent.headers, agent_user_id=world.agent.user_id),
            await ask(world.admin.headers, agent_user_id=world.agent.user_id),
        ):
            assert response.status_code == 409, response.text
            assert response.json()["error_id"] == "agent-has-no-device"
        # A number no route of the tenant reaches: known before Asterisk dials it.
        await device_of(client, world, world.agent.user_id)
        for number in ("+442079460000", "+12025550143"):
            response = await ask(world.agent.headers, number=number)
            assert response.status_code == 422, response.text
            assert fields_of(response) == {"body.number"}
            assert number in response.json()["details"]["errors"][0]["reason"]
        # A tenant with no route at all reaches nothing.
        await device_of(client, other, other.agent.user_id)
        response = await ask(other.agent.headers)
        assert response.status_code == 422, response.text
        assert fields_of(response) == {"body.number"}
    assert sent == []
    await nothing_written(sessions, world.tenant_id)
    await nothing_written(sessions, other.tenant_id)


async def test_a_suspended_tenant_is_refused_with_the_reason(
    client: httpx.AsyncClient, sessions: Sessions, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = await make_world(client, sessions)
    await route_to_france(client, world)
    await device_of(client, world, world.agent.user_id)
    suspended = await client.patch(
        f"/api/v1/tenants/{world.tenant_id}",
        headers=world.operator.headers,
        json={"status": "suspended"},
    )
    assert suspended.status_code == 200, suspended.text
    with actions_sent(monkeypatch) as sent:
        response = await client.post(
            URL,
            headers={**world.agent.headers, "Idempotency-Key": key()},
            json={"number": NUMBER},
        )
    assert response.status_code == 409, response.text
    assert response.json()["error_id"] == "tenant-calls-refused"
    assert response.json()["details"] == {"reason": "suspended"}
    assert sent == []
    await nothing_written(sessions, world.tenant_id)


@pytest.mark.parametrize("role", ["admin", "supervisor", "agent", "operator"])
async def test_a_call_that_is_not_the_callers_is_404_after_reading_the_channels_only(
    client: httpx.AsyncClient,
    sessions: Sessions,
    monkeypatch: pytest.MonkeyPatch,
    role: str,
) -> None:
    world = await make_world(client, sessions)
    headers = world.headers(role)
    call = f"{URL}/graam-1796519646.{uuid.uuid4().int % 1000}"
    with actions_sent(monkeypatch) as sent:
        response = await client.get(call, headers=headers)
        assert response.status_code == 404, response.text
        assert response.json()["error_id"] == "call-not-found"
        for action, body in [
            ("hangup", None),
            ("hold", None),
            ("resume", None),
            ("dtmf", {"digits": "1#"}),
            ("transfer", {"to": {"type": "number", "number": NUMBER}}),
        ]:
            response = await client.post(f"{call}/{action}", headers=headers, json=body)
            assert response.status_code == 404, (action, response.text)
            assert response.json()["error_id"] == "call-not-found"
        listed = await client.get(URL, headers=headers)
        assert listed.status_code == 200, listed.text
    assert {name for name, _ in sent} == {"CoreShowChannels"}
    async with sessions() as session:
        audited = await session.scalar(
            select(func.count()).where(
                AuditEntry.tenant_id == world.tenant_id, AuditEntry.object_type == "call"
            )
        )
    assert audited == 0


async def test_a_retry_sends_again_what_asterisk_never_took_with_the_same_call_id(
    client: httpx.AsyncClient, sessions: Sessions, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = await make_world(client, sessions)
    await route_to_france(client, world)
    await device_of(client, world, world.agent.user_id)
    sent: list[str] = []
    originate = ami_actions.originate

    async def refused_once(ami: Any, channel: str, **fields: Any) -> Any:
        sent.append(fields["channel_id"])
        if len(sent) == 1:
            raise AmiNotConnected("not connected to AMI")
        return await originate(ami, channel, **fields)

    monkeypatch.setattr(ami_actions, "originate", refused_once)
    headers = {**world.agent.headers, "Idempotency-Key": key()}
    first = await client.post(URL, headers=headers, json={"number": NUMBER})
    assert first.status_code == 503, first.text
    async with sessions() as session:
        row = await session.scalar(
            select(ClickToCall).where(ClickToCall.tenant_id == world.tenant_id)
        )
    assert row is not None and row.status == "failed"
    state = await client.get(f"{URL}/{row.call_id}", headers=world.agent.headers)
    assert state.status_code == 200, state.text
    assert state.json()["state"] == "not-placed"

    retried = await client.post(URL, headers=headers, json={"number": NUMBER})
    assert retried.status_code == 202, retried.text
    assert retried.json()["id"] == row.call_id
    again = await client.post(URL, headers=headers, json={"number": NUMBER})
    assert again.status_code == 202, again.text
    assert again.json()["id"] == row.call_id
    # Sent twice with one channel id: once refused, once taken; never a third time.
    assert sent == [row.call_id, row.call_id]
    async with sessions() as session:
        status = await session.scalar(
            select(ClickToCall.status).where(ClickToCall.call_id == row.call_id)
        )
        audited = await session.scalar(
            select(func.count()).where(
                AuditEntry.tenant_id == world.tenant_id, AuditEntry.action == "click-to-call"
            )
        )
    assert (status, audited) == ("sent", 1)
