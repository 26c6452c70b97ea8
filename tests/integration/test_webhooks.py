"""Webhooks against the session's Postgres and a real HTTP receiver on loopback: endpoints
made by admins only, URLs refused on private addresses unless the operator allows them,
deliveries signed, retried with back-off, in order per call, nothing lost or doubled across a
restart of the worker, dead after the retry period with the endpoint disabled and its
admins e-mailed.

Events are written into ``webhook_events`` as the control plane's recorder writes them (the
calls that make them through Asterisk are tests/e2e/test_webhooks.py)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from email import message_from_bytes
from email.message import Message
from typing import Any

import httpx
import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlalchemy import Text, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from graam_pbx.audit.models import AuditEntry
from graam_pbx.mail import SmtpRelay
from graam_pbx.webhooks.delivery import WebhookDeliverer
from graam_pbx.webhooks.models import WebhookDelivery
from tests.conftest import RunningApp
from tests.factories import TenantWorld, make_world
from tests.waiting import until
from tests.webhook_receiver import Received, receiver

Sessions = async_sessionmaker[AsyncSession]
URL = "/api/v1/webhooks"
HOST = "127.0.0.221"  # this file's receivers; no other test uses it


async def endpoint(
    client: httpx.AsyncClient, world: TenantWorld, url: str, events: list[str]
) -> dict[str, Any]:
    made = await client.post(URL, headers=world.admin.headers, json={"url": url, "events": events})
    assert made.status_code == 201, made.text
    body: dict[str, Any] = made.json()
    return body


async def events(sessions: Sessions, tenant_id: int, rows: list[tuple[str, str]]) -> list[int]:
    """Write the tenant's events (type, ordering key) as the recorder does; their ids."""
    async with sessions() as session, session.begin():
        result = await session.execute(
            text(
                "INSERT INTO webhook_events (tenant_id, type, ordering_key, occurred_at, payload) "
                "SELECT :tenant, t, k, now(), CAST(:payload AS jsonb) "
                "FROM unnest(CAST(:types AS text[]), CAST(:keys AS text[])) AS v(t, k) "
                "RETURNING id"
            ),
            {
                "tenant": tenant_id,
                "types": [row[0] for row in rows],
                "keys": [row[1] for row in rows],
                "payload": json.dumps({"call_id": "c1"}),
            },
        )
        return [row[0] for row in result]


def event_ids(received: list[Received]) -> list[int]:
    return [int(request.json()["id"]) for request in received]


async def deliveries_of(sessions: Sessions, endpoint_id: int) -> list[WebhookDelivery]:
    async with sessions() as session:
        rows = await session.scalars(
            select(WebhookDelivery)
            .where(WebhookDelivery.endpoint_id == endpoint_id)
            .order_by(WebhookDelivery.id)
        )
        return list(rows)


async def test_admins_make_list_change_and_remove_endpoints_and_the_secret_is_shown_once(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions)
    made = await endpoint(client, world, f"http://{HOST}:9/hooks", ["call.ended"])
    assert made["secret"].startswith("whsec_") and made["enabled"] is True
    url = f"{URL}/{made['id']}"

    listed = await client.get(URL, headers=world.supervisor.headers)
    assert [item["id"] for item in listed.json()["items"]] == [made["id"]]
    assert "secret" not in listed.json()["items"][0]
    read = await client.get(url, headers=world.admin.headers)
    assert "secret" not in read.json()

    changed = await client.patch(
        url,
        headers={**world.admin.headers, "If-Match": read.headers["etag"]},
        json={"events": ["call.ringing", "call.ended"], "description": "CRM"},
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["events"] == ["call.ringing", "call.ended"]
    stale = await client.patch(
        url,
        headers={**world.admin.headers, "If-Match": read.headers["etag"]},
        json={"description": "stale"},
    )
    assert stale.status_code == 412

    rotated = await client.post(f"{url}/secret", headers=world.admin.headers)
    assert rotated.status_code == 200 and rotated.json()["secret"] != made["secret"]

    # Supervisors read, never write; agents neither; another tenant does not see it.
    for headers in (world.supervisor.headers, world.agent.headers):
        refused = await client.patch(url, headers=headers, json={"description": "x"})
        assert refused.status_code == 403
    assert (await client.get(URL, headers=world.agent.headers)).status_code == 403
    other = await make_world(client, sessions)
    assert (await client.get(url, headers=other.admin.headers)).status_code == 404
    assert (await client.get(f"{url}/deliveries", headers=other.admin.headers)).status_code == 404

    # Bad input: the field and the reason.
    for body, field in (
        ({"url": "ftp://crm.example.com/x", "events": ["call.ended"]}, "url"),
        ({"url": f"http://{HOST}/x", "events": []}, "events"),
        ({"url": f"http://{HOST}/x", "events": ["call.exploded"]}, "events"),
        ({"url": f"http://{HOST}/x", "events": ["call.ended", "call.ended"]}, "events"),
    ):
        bad = await client.post(URL, headers=world.admin.headers, json=body)
        assert bad.status_code == 422, (body, bad.text)
        assert field in bad.text

    deleted = await client.delete(url, headers=world.admin.headers)
    assert deleted.status_code == 204
    async with sessions() as session:
        actions = list(
            await session.scalars(
                select(AuditEntry.action)
                .where(AuditEntry.object_type == "webhook", AuditEntry.object_id == str(made["id"]))
                .order_by(AuditEntry.id)
            )
        )
        secrets_logged = await session.scalar(
            select(AuditEntry.id).where(
                AuditEntry.object_type == "webhook",
                AuditEntry.changes.cast(Text).contains("whsec_"),
            )
        )
    assert actions == ["create", "update", "rotate-secret", "delete"]
    assert secrets_logged is None


async def test_a_url_on_a_private_or_loopback_address_is_refused_unless_allowed(
    client: httpx.AsyncClient,
    sessions: Sessions,
    running_app: RunningApp,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    world = await make_world(client, sessions)
    monkeypatch.setattr(running_app.runtime.settings, "webhooks_allowed_networks", [])
    for url in (
        "http://127.0.0.1:8080/hooks",
        "http://localhost/hooks",
        "http://10.0.0.7/hooks",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/hooks",
    ):
        refused = await client.post(
            URL, headers=world.admin.headers, json={"url": url, "events": ["call.ended"]}
        )
        assert refused.status_code == 422, (url, refused.text)
        (error,) = refused.json()["details"]["errors"]
        assert error["field"] == "body.url" and "not a public address" in error["reason"]
    # The operator allows loopback (as these tests' settings do): accepted.
    monkeypatch.setattr(running_app.runtime.settings, "webhooks_allowed_networks", ["127.0.0.0/8"])
    await endpoint(client, world, "http://127.0.0.1:8080/hooks", ["call.ended"])


async def test_a_delivery_is_signed_retried_with_back_off_and_delivered_once(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions)
    async with receiver(HOST, script=[500, 500, 500]) as hooks:
        made = await endpoint(client, world, hooks.url, ["call.ended"])
        (event_id,) = await events(sessions, world.tenant_id, [("call.ended", "call:c1")])
        received = await hooks.count(4)
        (delivery,) = await deliveries_of(sessions, made["id"])

        async def delivered() -> bool:
            (row,) = await deliveries_of(sessions, made["id"])
            return row.state == "delivered"

        await until(delivered, "the delivery recorded as delivered")
    assert event_ids(received) == [event_id] * 4  # three refusals, then the one that took
    assert len({request.body for request in received}) == 1  # the same event each time
    for request in received:
        assert request.signed_by(made["secret"], time.time()), request.headers
        assert request.headers["graam-event-type"] == "call.ended"
        assert request.headers["content-type"] == "application/json"
    assert received[0].json() == {
        "id": str(event_id),
        "type": "call.ended",
        "occurred_at": received[0].json()["occurred_at"],
        "tenant_id": world.tenant_id,
        "data": {"call_id": "c1"},
    }
    (delivery,) = await deliveries_of(sessions, made["id"])
    assert (delivery.state, delivery.attempts, delivery.last_status) == ("delivered", 4, 200)
    assert len(hooks.received) == 4  # and nothing after
    listed = await client.get(
        f"{URL}/{made['id']}/deliveries", headers=world.admin.headers, params={"state": "delivered"}
    )
    assert [item["event_id"] for item in listed.json()["items"]] == [event_id]


async def test_a_calls_events_reach_an_endpoint_in_their_order_even_when_one_fails(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions)
    async with receiver(HOST, script=[503, 503]) as hooks:
        await endpoint(client, world, hooks.url, ["call.ringing", "call.answered", "call.ended"])
        ids = await events(
            sessions,
            world.tenant_id,
            [("call.ringing", "call:c1"), ("call.answered", "call:c1"), ("call.ended", "call:c1")],
        )
        received = await hooks.count(5)
    # The first failed twice: the next ones of the same call waited for it.
    assert event_ids(received) == [ids[0], ids[0], ids[0], ids[1], ids[2]]


async def test_nothing_is_lost_or_doubled_across_a_restart_of_the_worker(
    client: httpx.AsyncClient, sessions: Sessions, running_app: RunningApp
) -> None:
    world = await make_world(client, sessions)
    deliverer = running_app.runtime.webhooks
    assert deliverer is not None
    async with receiver(HOST) as hooks:
        await endpoint(client, world, hooks.url, ["agent.state_changed"])
        await deliverer.stop()  # the control plane is down: events are kept meanwhile
        try:
            ids = await events(
                sessions,
                world.tenant_id,
                [("agent.state_changed", f"agent:{n % 3}") for n in range(30)],
            )
        finally:
            await deliverer.start()
        received = await hooks.count(30)

        async def all_delivered() -> bool:
            return all(
                d.state == "delivered"
                for d in await deliveries_of(sessions, (await _endpoint_id(sessions, world)))
            )

        await until(all_delivered, "every delivery recorded")
    assert sorted(event_ids(received)) == ids  # each once
    assert len(hooks.received) == 30


async def _endpoint_id(sessions: Sessions, world: TenantWorld) -> int:
    async with sessions() as session:
        found = await session.scalar(
            text("SELECT id FROM webhook_endpoints WHERE tenant_id = :t"), {"t": world.tenant_id}
        )
    assert found is not None
    return int(found)


class Inbox:
    def __init__(self) -> None:
        self.received: list[tuple[list[str], Message]] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.received.append(
            (list(envelope.rcpt_tos), message_from_bytes(envelope.original_content or b""))
        )
        return "250 OK"


@pytest.fixture
async def inbox() -> AsyncIterator[tuple[Inbox, int]]:
    inbox = Inbox()
    server = await asyncio.get_running_loop().create_server(
        lambda: SMTP(inbox, hostname="smtp.graam.test"), "127.0.0.1", 0
    )
    yield inbox, server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()


async def test_a_delivery_failing_for_the_retry_period_is_dead_and_its_endpoint_disabled(
    client: httpx.AsyncClient,
    sessions: Sessions,
    running_app: RunningApp,
    inbox: tuple[Inbox, int],
) -> None:
    """With a retry period of two seconds (a day in production)."""
    world = await make_world(client, sessions)
    running = running_app.runtime.webhooks
    assert running is not None
    relay = SmtpRelay(host="127.0.0.1", port=inbox[1], sender="pbx@operator.example", timeout=5)
    short = WebhookDeliverer(
        sessions,
        allowed=running_app.runtime.settings.webhooks_allowed,
        retry_base=0.2,
        retry_for=2.0,
        relay=relay,
    )
    await running.stop()
    await short.start()
    try:
        async with receiver(HOST, script=[500] * 1000) as hooks:
            made = await endpoint(client, world, hooks.url, ["call.ended"])
            await events(sessions, world.tenant_id, [("call.ended", "call:c1")])

            async def disabled() -> bool:
                read = await client.get(f"{URL}/{made['id']}", headers=world.admin.headers)
                return read.json()["enabled"] is False

            await until(disabled, "the endpoint disabled", timeout=30)
            short.request()

            async def mailed() -> bool:
                return bool(inbox[0].received)

            await until(mailed, "the admins e-mailed")
    finally:
        await short.stop()
        await running.start()
    read = (await client.get(f"{URL}/{made['id']}", headers=world.admin.headers)).json()
    assert read["disabled_reason"].startswith("every delivery failed since")
    dead = await client.get(
        f"{URL}/{made['id']}/deliveries", headers=world.admin.headers, params={"state": "dead"}
    )
    (item,) = dead.json()["items"]
    assert item["last_status"] == 500 and item["last_error"].startswith("HTTP 500")
    to, mail = inbox[0].received[0]
    assert to == [world.admin.email]
    assert f"Webhook endpoint {made['id']} disabled" in mail["Subject"]

    # Enabled again and the dead delivery retried by hand: delivered.
    async with receiver(HOST) as hooks:
        enabled = await client.patch(
            f"{URL}/{made['id']}",
            headers=world.admin.headers,
            json={"url": hooks.url, "enabled": True},
        )
        assert enabled.status_code == 200, enabled.text
        retried = await client.post(
            f"{URL}/{made['id']}/deliveries/{item['id']}/retry", headers=world.admin.headers
        )
        assert retried.status_code == 202, retried.text
        (again,) = await hooks.count(1)
    assert again.signed_by(made["secret"], time.time())
