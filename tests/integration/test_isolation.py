"""Strict tenant isolation, for every route of the API.

Tenant A gets one object of every kind (the demo tenant, plus a prompt, a hold music class,
a schedule, an outbound route, an API key and a pause reason). Tenant B's admin then calls
every route that names an object, with A's ids: each answers 404 (or the 403 its role gets
on its own tenant too, which reveals nothing). Every list B reads leaves out everything of A's.
"""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from graam_pbx.app import API_ROUTERS
from graam_pbx.auth.principal import Principal, Role
from graam_pbx.call_control.models import ClickToCall
from graam_pbx.campaigns.dispositions import ensure_catalogue
from graam_pbx.campaigns.models import Campaign, CampaignAttempt, CampaignContact, Disposition
from graam_pbx.queue_calls.models import QueueCall
from graam_pbx.queue_calls.store import write_rows
from graam_pbx.queue_calls.tracker import Outcome, QueueCallRow
from graam_pbx.recordings.models import Recording
from graam_pbx.tenants.flows import DemoTenant, seed_demo_tenant
from tests.dunning_rows import make_account, make_invoice
from tests.factories import TenantWorld, make_world, unique
from tests.unit.test_wav import make_wav

Sessions = async_sessionmaker[AsyncSession]

# Routes a tenant admin may not use at all: B's admin gets 403 on its own objects too.
OPERATOR_ONLY = {
    ("PATCH", "/api/v1/tenants/{tenant_id}"),
    # Asterisk nodes and tenants' placements on them: the operator's alone.
    ("GET", "/api/v1/nodes/{node_id}"),
    ("PATCH", "/api/v1/nodes/{node_id}"),
    ("DELETE", "/api/v1/nodes/{node_id}"),
    ("GET", "/api/v1/tenants/{tenant_id}/placement"),
    ("PUT", "/api/v1/tenants/{tenant_id}/placement"),
    ("DELETE", "/api/v1/sip-blocks/{address}"),
    # Rate decks belong to no tenant: the operator's alone.
    ("GET", "/api/v1/billing/rate-decks/{deck_id}"),
    ("GET", "/api/v1/billing/rate-decks/{deck_id}/rates"),
    ("PUT", "/api/v1/billing/rate-decks/{deck_id}/rates"),
    # The legal interest rates are the operator's table; disputes are settled by it.
    ("GET", "/api/v1/billing/legal-interest-rates/{starts_on}"),
    ("PUT", "/api/v1/billing/legal-interest-rates/{starts_on}"),
    ("PATCH", "/api/v1/billing/disputes/{dispute_id}"),
    ("POST", "/api/v1/billing/invoices/{invoice_id}/credit-notes"),
    ("POST", "/api/v1/billing/invoices/{invoice_id}/payments"),
}
# A blocked SIP source (operator-level, no tenant owns it).
BLOCKED_ADDRESS = "192.0.2.10"
# Operator-level objects shared by every tenant (readable, not tenant data).
SHARED = {"/api/v1/trunks/{trunk_id}"}
# A voicemail message's id (Asterisk's msg_id): the box it is asked of is A's.
VOICEMAIL_MSG_ID = "1796290812-0000000a"
# A call's id (its linkedid): A's click-to-call.
CALL_ID = "c2c-0123456789abcdef0123456789abcdef"


async def _tenant_a(client: httpx.AsyncClient, sessions: Sessions) -> tuple[DemoTenant, Any]:
    world = await make_world(client, sessions)
    async with sessions() as session, session.begin():
        demo = await seed_demo_tenant(
            session,
            Principal(world.operator.user_id, Role.OPERATOR, None, world.operator.email),
            unique("iso"),
        )
    op = {**world.operator.headers, "X-Graam-Tenant": str(demo.tenant_id)}
    prompt = await client.post(
        "/api/v1/prompts",
        headers=op,
        data={"name": "hello"},
        files={"file": ("hello.wav", make_wav(), "audio/wav")},
    )
    assert prompt.status_code == 201, prompt.text
    demo.ids["prompt_id"] = prompt.json()["id"]
    moh_class = await client.post(
        "/api/v1/moh-classes",
        headers=op,
        json={"name": "calm", "prompt_ids": [demo.ids["prompt_id"]]},
    )
    assert moh_class.status_code == 201, moh_class.text
    demo.ids["moh_class_id"] = moh_class.json()["id"]
    schedule = await client.post(
        "/api/v1/schedules",
        headers=op,
        json={"name": "office", "weekly": [{"day": 0, "open": "09:00", "close": "17:00"}]},
    )
    assert schedule.status_code == 201, schedule.text
    demo.ids["schedule_id"] = schedule.json()["id"]
    trunk = await client.post(
        "/api/v1/trunks",
        headers=world.operator.headers,
        json={"name": unique("carrier"), "host": "127.0.0.2", "country": "FR"},
    )
    assert trunk.status_code == 201, trunk.text
    outbound = await client.post(
        "/api/v1/outbound-routes",
        headers=op,
        json={
            "name": "world",
            "trunk_id": trunk.json()["id"],
            "caller_id_number_id": demo.ids["number_id"],
            "allowed_countries": ["FR"],
        },
    )
    assert outbound.status_code == 201, outbound.text
    demo.ids["outbound_route_id"] = outbound.json()["id"]
    pause_reason = await client.post(
        "/api/v1/pause-reasons", headers=op, json={"code": "2", "label": "Lunch"}
    )
    assert pause_reason.status_code == 201, pause_reason.text
    demo.ids["reason_id"] = pause_reason.json()["id"]
    demo.ids["queue_call_id"] = await _queue_call(sessions, demo)
    await _click_to_call(sessions, demo)
    admin_login = next(login for login in demo.logins if login.role == "admin")
    token = (
        await client.post(
            "/api/v1/auth/token",
            json={
                "email": admin_login.email,
                "password": admin_login.password,
                "tenant": demo.slug,
            },
        )
    ).json()["access_token"]
    key = await client.post(
        "/api/v1/auth/api-keys", headers={"Authorization": f"Bearer {token}"}, json={"name": "k"}
    )
    demo.ids["key_id"] = key.json()["id"]
    support_request = await client.post(
        "/api/v1/support-requests",
        headers={"Authorization": f"Bearer {token}"},
        json={"subject": "Help", "body": "Nothing rings.", "priority": "high"},
    )
    assert support_request.status_code == 201, support_request.text
    demo.ids["request_id"] = support_request.json()["id"]
    notice = await client.post(
        "/api/v1/notices",
        headers=world.operator.headers,
        json={
            "title": "For A only",
            "body": "A change.",
            "effective_on": "2099-01-01",
            "tenant_ids": [demo.tenant_id],
        },
    )
    assert notice.status_code == 201, notice.text
    demo.ids["notice_id"] = notice.json()["id"]
    await _billing_objects(client, sessions, demo, {"Authorization": f"Bearer {token}"})
    await _contact_objects(client, demo, op)
    await _campaign_objects(sessions, demo)
    await _recording_objects(client, sessions, demo, op)
    await _webhook_objects(client, sessions, demo, op)
    await _forwarding_objects(client, demo, op)
    return demo, world


async def _forwarding_objects(
    client: httpx.AsyncClient, demo: DemoTenant, headers: dict[str, str]
) -> None:
    """A's external number, and a follow-me ringing it."""
    external = await client.post(
        "/api/v1/external-numbers",
        headers=headers,
        json={"name": "A's mobile", "number": "+33698765432"},
    )
    assert external.status_code == 201, external.text
    demo.ids["external_id"] = external.json()["id"]
    follow = await client.post(
        "/api/v1/follow-me",
        headers=headers,
        json={
            "name": "A's",
            "steps": [
                {"ring_seconds": 20, "ring": [{"type": "external", "id": demo.ids["external_id"]}]}
            ],
            "final": {"type": "hangup"},
        },
    )
    assert follow.status_code == 201, follow.text
    demo.ids["follow_me_id"] = follow.json()["id"]


async def _recording_objects(
    client: httpx.AsyncClient, sessions: Sessions, demo: DemoTenant, headers: dict[str, str]
) -> None:
    """A's recording rule, and one recording of A's (registered as the collector does)."""
    rule = await client.post(
        "/api/v1/recording-rules",
        headers=headers,
        json={"queue_id": demo.ids["queue_id"], "mode": "always"},
    )
    assert rule.status_code == 201, rule.text
    demo.ids["rule_id"] = rule.json()["id"]
    async with sessions() as session, session.begin():
        recording = Recording(
            tenant_id=demo.tenant_id,
            linkedid="isolation-a",
            uniqueid=f"isolation-a-{demo.tenant_id}",
            direction="inbound",
            queue_id=demo.ids["queue_id"],
            agent_user_id=demo.ids["user_id"],
            party_number="+33612345678",
            started_at=datetime.now(UTC),
            duration_ms=1000,
            size_bytes=0,
            sha256="0" * 64,
            media_type="audio/ogg; codecs=opus",
            storage_key=f"t{demo.tenant_id}/isolation.ogg",
        )
        session.add(recording)
        await session.flush()
        demo.ids["recording_id"] = recording.id


async def _webhook_objects(
    client: httpx.AsyncClient, sessions: Sessions, demo: DemoTenant, headers: dict[str, str]
) -> None:
    """A's webhook endpoint, and one delivery of one of A's events."""
    made = await client.post(
        "/api/v1/webhooks",
        headers=headers,
        json={"url": "http://127.0.0.1:9/isolation", "events": ["campaign.finished"]},
    )
    assert made.status_code == 201, made.text
    demo.ids["endpoint_id"] = made.json()["id"]
    async with sessions() as session, session.begin():
        await session.execute(
            text(
                "INSERT INTO webhook_events (tenant_id, type, occurred_at, payload) "
                "VALUES (:t, 'campaign.finished', now(), '{}')"
            ),
            {"t": demo.tenant_id},
        )
        delivery = await session.scalar(
            text("SELECT id FROM webhook_deliveries WHERE endpoint_id = :e"),
            {"e": demo.ids["endpoint_id"]},
        )
    assert delivery is not None
    demo.ids["delivery_id"] = int(delivery)


async def _campaign_objects(sessions: Sessions, demo: DemoTenant) -> None:
    """A's running preview campaign of its contact list, with one call and the dispositions."""
    async with sessions() as session, session.begin():
        await ensure_catalogue(session, demo.tenant_id)
        disposition = await session.scalar(
            select(Disposition).where(
                Disposition.tenant_id == demo.tenant_id, Disposition.code == "interested"
            )
        )
        assert disposition is not None
        demo.ids["disposition_id"] = disposition.id
        campaign = Campaign(
            tenant_id=demo.tenant_id,
            name="a-campaign",
            list_id=demo.ids["list_id"],
            queue_id=demo.ids["queue_id"],
            caller_id_number_id=demo.ids["number_id"],
            mode="preview",
            status="running",
            calling_hours=[],
            retries={},
        )
        session.add(campaign)
        await session.flush()
        demo.ids["campaign_id"] = campaign.id
        session.add(
            CampaignContact(
                tenant_id=demo.tenant_id,
                campaign_id=campaign.id,
                contact_id=demo.ids["contact_id"],
                state="pending",
                attempts=1,
                retries_used={},
            )
        )
        attempt = CampaignAttempt(
            tenant_id=demo.tenant_id,
            campaign_id=campaign.id,
            contact_id=demo.ids["contact_id"],
            number="+33612345678",
            channel_id=unique("camp"),
            mode="preview",
            placed_at=datetime.now(UTC),
            answered_at=datetime.now(UTC),
            ended_at=datetime.now(UTC),
            outcome="answered",
            agent_user_id=demo.ids["user_id"],
        )
        session.add(attempt)
        await session.flush()
        demo.ids["attempt_id"] = attempt.id


async def _contact_objects(client: httpx.AsyncClient, demo: DemoTenant, op: dict[str, str]) -> None:
    """A's contact list with an import and a contact, a do-not-call entry, an opposition list."""
    contact_list = await client.post("/api/v1/contact-lists", headers=op, json={"name": "A's"})
    assert contact_list.status_code == 201, contact_list.text
    demo.ids["list_id"] = contact_list.json()["id"]
    contact_import = await client.post(
        f"/api/v1/contact-lists/{demo.ids['list_id']}/imports",
        headers=op,
        files={"file": ("a.csv", b"number\n0612345678\nbad\n", "text/csv")},
    )
    assert contact_import.status_code == 201, contact_import.text
    demo.ids["import_id"] = contact_import.json()["id"]
    contacts = await client.get(f"/api/v1/contact-lists/{demo.ids['list_id']}/contacts", headers=op)
    demo.ids["contact_id"] = contacts.json()["items"][0]["id"]
    entry = await client.post("/api/v1/do-not-call", headers=op, json={"number": "0612345678"})
    assert entry.status_code == 201, entry.text
    demo.ids["entry_id"] = entry.json()["id"]
    opposition = await client.post(
        "/api/v1/opposition-lists",
        headers=op,
        data={"list_date": datetime.now(UTC).date().isoformat()},
        files={"file": ("bloctel.csv", b"0612345678\n", "text/csv")},
    )
    assert opposition.status_code == 201, opposition.text
    demo.ids["opposition_list_id"] = opposition.json()["id"]


async def _billing_objects(
    client: httpx.AsyncClient, sessions: Sessions, demo: DemoTenant, admin: dict[str, str]
) -> None:
    """A's billing account, an invoice of A's, a dispute of it and a port-out request."""
    await make_account(sessions, demo.tenant_id)
    invoice = await make_invoice(
        sessions, demo.tenant_id, total="120.00", issued_on=datetime.now(UTC).date()
    )
    demo.ids["invoice_id"] = invoice.id
    dispute = await client.post(
        f"/api/v1/billing/invoices/{invoice.id}/disputes",
        headers=admin,
        json={"reason": "Licences billed twice."},
    )
    assert dispute.status_code == 201, dispute.text
    demo.ids["dispute_id"] = dispute.json()["id"]
    port_out = await client.post(
        "/api/v1/billing/port-outs", headers=admin, json={"number_id": demo.ids["number_id"]}
    )
    assert port_out.status_code == 201, port_out.text
    demo.ids["port_out_id"] = port_out.json()["id"]


async def _queue_call(sessions: Sessions, demo: DemoTenant) -> int:
    """One answered queue call of the tenant, by its agent, as the writer stores it."""
    moment = datetime.now(UTC)
    row = QueueCallRow(
        tenant_id=demo.tenant_id,
        queue_id=demo.ids["queue_id"],
        queue_name=f"t{demo.tenant_id}-q{demo.ids['queue_id']}",
        caller_uniqueid=unique("call"),
        entry=1,
        linkedid="1",
        caller_number="+33612345678",
        entered_at=moment,
        position_at_entry=1,
        ended_at=moment,
        answered_at=moment,
        agent_id=demo.ids["user_id"],
        outcome=Outcome.ANSWERED,
    )
    async with sessions() as session, session.begin():
        await write_rows(session, [row], "ami")
        found = await session.scalar(
            select(QueueCall.id).where(QueueCall.caller_uniqueid == row.caller_uniqueid)
        )
    assert found is not None
    return found


async def _click_to_call(sessions: Sessions, demo: DemoTenant) -> None:
    """A click-to-call of the tenant's agent, as the API writes it before its Originate."""
    async with sessions() as session, session.begin():
        session.add(
            ClickToCall(
                tenant_id=demo.tenant_id,
                idempotency_key=unique("key"),
                call_id=CALL_ID,
                agent_user_id=demo.ids["user_id"],
                device="iso-desk",
                number="+33612345678",
                requested_by=demo.ids["user_id"],
                status="sent",
            )
        )


def _routes() -> list[tuple[str, str]]:
    found = []
    for router in API_ROUTERS:
        for route in router.routes:
            if isinstance(route, APIRoute):
                found.extend((method, route.path) for method in sorted(route.methods))
    return found


def _example_body(spec: dict[str, Any], method: str, path: str) -> Any:
    """The documented example of the route's body (every schema has one), or {}."""
    operation = spec["paths"][path][method.lower()]
    content = operation.get("requestBody", {}).get("content", {})
    schema = content.get("application/json", {}).get("schema")
    if schema is None:
        return None
    ref = schema.get("$ref", "")
    component = spec["components"]["schemas"].get(ref.rsplit("/", 1)[-1], {})
    examples = component.get("examples") or [{}]
    return examples[0]


def _fill(path: str, ids: dict[str, int]) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name == "route_id" and path.startswith("/api/v1/outbound-routes"):
            return str(ids["outbound_route_id"])
        if name == "msg_id":
            return VOICEMAIL_MSG_ID
        if name == "call_id":
            return CALL_ID
        if name == "address":
            return BLOCKED_ADDRESS
        if name == "deck_id":
            return "1"  # a rate deck: no tenant's, its routes are operator-only
        if name == "node_id":
            return "1"  # an Asterisk node: no tenant's, its routes are operator-only
        if name == "starts_on":
            return "2025-07-01"  # a half-year of the legal interest rates: no tenant's
        return str(ids[name])

    return re.sub(r"\{(\w+)\}", value, path)


@pytest.fixture(scope="module")
async def tenants(client: httpx.AsyncClient, sessions: Sessions) -> tuple[DemoTenant, TenantWorld]:
    demo, _ = await _tenant_a(client, sessions)
    return demo, await make_world(client, sessions)


async def test_every_route_answers_404_on_another_tenants_objects(
    client: httpx.AsyncClient, tenants: tuple[DemoTenant, TenantWorld]
) -> None:
    a, b = tenants
    spec = (await client.get("/openapi.json")).json()
    checked = 0
    for method, path in _routes():
        if "{" not in path or path in SHARED:
            continue
        body = _example_body(spec, method, path)
        response = await client.request(
            method,
            _fill(path, a.ids),
            headers=b.admin.headers,
            json=body if body is not None else None,
        )
        expected = 403 if (method, path) in OPERATOR_ONLY else 404
        assert response.status_code == expected, (method, path, response.text)
        checked += 1
    assert checked >= 30


async def test_operator_only_routes_refuse_tenant_admins_on_their_own_tenant(
    client: httpx.AsyncClient, tenants: tuple[DemoTenant, TenantWorld]
) -> None:
    _, b = tenants
    for method, path in OPERATOR_ONLY:
        response = await client.request(
            method,
            path.replace("{tenant_id}", str(b.tenant_id)).replace("{address}", BLOCKED_ADDRESS),
            headers=b.admin.headers,
            json={},
        )
        assert response.status_code == 403


async def test_no_list_shows_another_tenants_objects(
    client: httpx.AsyncClient, tenants: tuple[DemoTenant, TenantWorld]
) -> None:
    a, b = tenants
    lists = {
        "/api/v1/users": "user_id",
        "/api/v1/devices": "device_id",
        "/api/v1/queues": "queue_id",
        "/api/v1/prompts": "prompt_id",
        "/api/v1/moh-classes": "moh_class_id",
        "/api/v1/ivrs": "menu_id",
        "/api/v1/voicemail-boxes": "box_id",
        "/api/v1/numbers": "number_id",
        "/api/v1/schedules": "schedule_id",
        "/api/v1/inbound-routes": "route_id",
        "/api/v1/outbound-routes": "outbound_route_id",
        "/api/v1/tenants": "tenant_id",
        "/api/v1/auth/api-keys": "key_id",
        "/api/v1/api-keys": "key_id",
        "/api/v1/pause-reasons": "reason_id",
        "/api/v1/queue-calls": "queue_call_id",
        "/api/v1/support-requests": "request_id",
        "/api/v1/notices": "notice_id",
        "/api/v1/contact-lists": "list_id",
        "/api/v1/do-not-call": "entry_id",
        "/api/v1/opposition-lists": "opposition_list_id",
        "/api/v1/campaigns": "campaign_id",
        "/api/v1/dispositions": "disposition_id",
    }
    spec = (await client.get("/openapi.json")).json()
    for method, path in _routes():
        # Not lists: the caller itself, and its own tenant's billing account (404 until made).
        if method != "GET" or "{" in path or path in ("/api/v1/auth/me", "/api/v1/billing/account"):
            continue
        if "text/event-stream" in spec["paths"][path]["get"]["responses"]["200"]["content"]:
            continue  # a stream never ends: test_event_stream checks it sends only B's events
        if path in ("/api/v1/campaign-calls/current", "/api/v1/my-call/recording"):
            continue  # the caller's own call (404 or 409 with none), not a list
        response = await client.get(path, headers=b.admin.headers, params={"limit": 200})
        if response.status_code == 403:
            continue  # operator-only listings
        assert response.status_code == 200, (path, response.text)
        if response.headers["content-type"].startswith("application/zip"):
            continue  # the tenant's whole export: test_billing_export checks it holds only B's
        if response.headers["content-type"].startswith("text/csv"):  # exports
            body = list(csv.DictReader(io.StringIO(response.text)))
        else:
            body = response.json()
        items = body["items"] if isinstance(body, dict) and "items" in body else body
        if isinstance(body, dict) and "buckets" in body:  # statistics: buckets and totals
            items = body["buckets"] + body["totals"]
        if isinstance(items, dict):  # one object (the caller's tenant's), not a list
            assert items.get("tenant_id") == b.tenant_id, (path, items)
            items = [items]
        for item in items:
            assert item.get("tenant_id") != a.tenant_id, (path, item)
            assert item.get("tenant_slug") != a.slug, (path, item)
            assert str(item.get("queue_id")) != str(a.ids["queue_id"]), (path, item)
            assert str(item.get("agent_id")) != str(a.ids["user_id"]), (path, item)
            if path in lists:
                assert item["id"] != a.ids[lists[path]], (path, item)


async def test_the_operator_header_cannot_take_a_tenant_user_elsewhere(
    client: httpx.AsyncClient, tenants: tuple[DemoTenant, TenantWorld]
) -> None:
    a, b = tenants
    headers = {**b.admin.headers, "X-Graam-Tenant": str(a.tenant_id)}
    response = await client.get(f"/api/v1/queues/{a.ids['queue_id']}", headers=headers)
    assert response.status_code == 404
    listed = await client.get("/api/v1/queues", headers=headers)
    assert all(q["id"] != a.ids["queue_id"] for q in listed.json()["items"])
