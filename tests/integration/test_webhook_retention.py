"""Events past retention are purged by the delivery worker, with their deliveries, unless a
delivery of theirs is still pending, or dead for less than 30 days from its last retry period
(the event's, or a retry by hand); streams' leases that ran out go too."""

from __future__ import annotations

import httpx
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from graam_pbx.webhooks.delivery import WebhookDeliverer
from graam_pbx.webhooks.models import EventStream, WebhookDelivery, WebhookEndpoint, WebhookEvent
from tests.factories import make_world

Sessions = async_sessionmaker[AsyncSession]


async def test_old_events_go_unless_a_delivery_still_needs_them(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions)
    other = await make_world(client, sessions)
    async with sessions() as session, session.begin():
        # Disabled: nothing fans out to it, and its deliveries here are the test's alone.
        endpoint = WebhookEndpoint(
            tenant_id=world.tenant_id,
            url="http://127.0.0.1:9/hooks",
            events=["call.ended"],
            secret="whsec_test",
            enabled=False,
        )
        session.add(endpoint)
        await session.flush()
        ids = {}
        for name, days in (
            ("delivered", 8),
            ("pending", 8),
            ("dead", 8),
            ("long dead", 31),
            ("retried", 31),  # dead again after a retry by hand 8 days ago
            ("streamed", 8),  # no delivery: stored for a stream
            ("young", 6),
        ):
            ids[name] = await session.scalar(
                text(
                    "INSERT INTO webhook_events "
                    "(tenant_id, type, occurred_at, payload, created_at) "
                    "VALUES (:tenant, 'call.ended', now(), '{}', "
                    "now() - make_interval(days => :age)) RETURNING id"
                ),
                {"tenant": world.tenant_id, "age": days},
            )
        for name, state, made_days, retried_days in (
            ("delivered", "delivered", 8, None),
            ("pending", "pending", 8, None),
            ("dead", "dead", 8, None),
            ("long dead", "dead", 31, None),
            ("retried", "dead", 31, 8),
        ):
            session.add(
                WebhookDelivery(
                    tenant_id=world.tenant_id,
                    endpoint_id=endpoint.id,
                    event_id=ids[name],
                    state=state,
                    # Not due: the running worker leaves the pending one alone.
                    next_attempt_at=text("now() + interval '1 day'"),
                    created_at=text(f"now() - interval '{made_days} days'"),
                    retry_from=(
                        None
                        if retried_days is None
                        else text(f"now() - interval '{retried_days} days'")
                    ),
                )
            )
        await session.execute(
            text(
                "INSERT INTO event_streams (tenant_id, since, expires_at) VALUES "
                "(:gone, now() - interval '1 hour', now() - interval '1 minute'), "
                "(:live, now(), now() + interval '1 minute')"
            ),
            {"gone": world.tenant_id, "live": other.tenant_id},
        )

    purged = await WebhookDeliverer(sessions).purge()

    async with sessions() as session:
        kept = set(
            await session.scalars(
                select(WebhookEvent.id).where(WebhookEvent.tenant_id == world.tenant_id)
            )
        )
        states = set(
            await session.scalars(
                select(WebhookDelivery.state).where(WebhookDelivery.endpoint_id == endpoint.id)
            )
        )
        leases = set(await session.scalars(select(EventStream.tenant_id)))
    assert kept == {ids["pending"], ids["dead"], ids["retried"], ids["young"]}
    assert states == {"pending", "dead"}
    assert purged >= 3
    assert world.tenant_id not in leases and other.tenant_id in leases
