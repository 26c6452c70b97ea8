"""A tenant's webhook endpoints and their deliveries, for the API and the console.

An endpoint's URL is checked when saved: its host must resolve, to permitted addresses only
(``addresses``); its secret is made here and shown once (at creation and at each rotation).
Every change is audited, never with the secret.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from graam_pbx.audit import service as audit
from graam_pbx.auth.principal import Scope
from graam_pbx.db import ensure_version, get_in_tenant, keyset_page
from graam_pbx.errors import Invalid, NotFound
from graam_pbx.webhooks import addresses, signing
from graam_pbx.webhooks.delivery import CHANNEL
from graam_pbx.webhooks.models import DeliveryState, WebhookDelivery, WebhookEndpoint, WebhookEvent
from graam_pbx.webhooks.schemas import DeliveryOut, WebhookCreate, WebhookUpdate


async def _check_url(url: str, allowed: Sequence[addresses.Network]) -> None:
    try:
        await addresses.resolve(addresses.parse(url), allowed)
    except addresses.Refused as err:
        raise Invalid("body.url", str(err)) from err  # the cause: the reason, translatable


def _audited(endpoint: WebhookEndpoint) -> dict[str, Any]:
    return {
        "url": endpoint.url,
        "events": list(endpoint.events),
        "description": endpoint.description,
        "enabled": endpoint.enabled,
    }


async def create(
    session: AsyncSession,
    scope: Scope,
    data: WebhookCreate,
    allowed: Sequence[addresses.Network],
) -> WebhookEndpoint:
    await _check_url(data.url, allowed)
    endpoint = WebhookEndpoint(
        tenant_id=scope.tenant_id,
        url=data.url,
        events=[event.value for event in data.events],
        description=data.description,
        secret=signing.new_secret(),
    )
    session.add(endpoint)
    await session.flush()
    await audit.record(session, scope, "create", "webhook", endpoint.id, _audited(endpoint))
    return endpoint


async def list_endpoints(
    session: AsyncSession, scope: Scope, *, after_id: int | None, limit: int
) -> tuple[list[WebhookEndpoint], int | None]:
    statement = select(WebhookEndpoint).where(WebhookEndpoint.tenant_id == scope.tenant_id)
    return await keyset_page(session, statement, WebhookEndpoint.id, after_id, limit)


async def get(session: AsyncSession, scope: Scope, endpoint_id: int) -> WebhookEndpoint:
    return await get_in_tenant(session, WebhookEndpoint, scope.tenant_id, endpoint_id)


async def _kill_pending(session: AsyncSession, endpoint_id: int, reason: str) -> None:
    await session.execute(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.endpoint_id == endpoint_id,
            WebhookDelivery.state == DeliveryState.PENDING.value,
        )
        .values(state=DeliveryState.DEAD.value, last_error=reason)
    )


async def update_endpoint(
    session: AsyncSession,
    scope: Scope,
    endpoint_id: int,
    data: WebhookUpdate,
    expected: int | None,
    allowed: Sequence[addresses.Network],
) -> WebhookEndpoint:
    endpoint = await get(session, scope, endpoint_id)
    ensure_version(endpoint, expected)
    if data.url is not None and data.url != endpoint.url:
        await _check_url(data.url, allowed)
        endpoint.url = data.url
    if data.events is not None:
        endpoint.events = [event.value for event in data.events]
    if data.description is not None:
        endpoint.description = data.description
    if data.enabled is not None and data.enabled != endpoint.enabled:
        endpoint.enabled = data.enabled
        if data.enabled:
            endpoint.disabled_reason = None
            endpoint.failing_since = None
        else:
            endpoint.disabled_reason = "disabled by an administrator"
            await _kill_pending(session, endpoint.id, "endpoint disabled")
    await session.flush()
    await audit.record(session, scope, "update", "webhook", endpoint.id, _audited(endpoint))
    return endpoint


async def delete(session: AsyncSession, scope: Scope, endpoint_id: int) -> None:
    endpoint = await get(session, scope, endpoint_id)
    await audit.record(session, scope, "delete", "webhook", endpoint.id, _audited(endpoint))
    await session.delete(endpoint)
    await session.flush()


async def rotate_secret(session: AsyncSession, scope: Scope, endpoint_id: int) -> str:
    """A new secret, in force for the next delivery; the old one is no longer used."""
    endpoint = await get(session, scope, endpoint_id)
    endpoint.secret = signing.new_secret()
    await session.flush()
    await audit.record(session, scope, "rotate-secret", "webhook", endpoint.id, {})
    return endpoint.secret


async def deliveries(
    session: AsyncSession,
    scope: Scope,
    endpoint_id: int,
    state: DeliveryState | None,
    *,
    after_id: int | None,
    limit: int,
) -> tuple[list[DeliveryOut], int | None]:
    """The endpoint's deliveries, newest first."""
    await get(session, scope, endpoint_id)
    statement = (
        select(WebhookDelivery, WebhookEvent)
        .join(WebhookEvent, WebhookEvent.id == WebhookDelivery.event_id)
        .where(
            WebhookDelivery.tenant_id == scope.tenant_id,
            WebhookDelivery.endpoint_id == endpoint_id,
        )
        .order_by(WebhookDelivery.id.desc())
        .limit(limit + 1)
    )
    if state is not None:
        statement = statement.where(WebhookDelivery.state == state.value)
    if after_id is not None:
        statement = statement.where(WebhookDelivery.id < after_id)
    rows = (await session.execute(statement)).all()
    items = [
        DeliveryOut(
            id=delivery.id,
            event_id=event.id,
            type=event.type,
            occurred_at=event.occurred_at,
            state=delivery.state,
            attempts=delivery.attempts,
            next_attempt_at=delivery.next_attempt_at
            if delivery.state == DeliveryState.PENDING.value
            else None,
            last_status=delivery.last_status,
            last_error=delivery.last_error,
            delivered_at=delivery.delivered_at,
            data=event.payload,
        )
        for delivery, event in rows[:limit]
    ]
    return items, (items[-1].id if len(rows) > limit else None)


async def retry(session: AsyncSession, scope: Scope, endpoint_id: int, delivery_id: int) -> None:
    """Try a delivery again now (a dead one for another retry period); 404 for none."""
    endpoint = await get(session, scope, endpoint_id)
    changed = await session.execute(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.id == delivery_id,
            WebhookDelivery.endpoint_id == endpoint.id,
            WebhookDelivery.tenant_id == scope.tenant_id,
            WebhookDelivery.state != DeliveryState.DELIVERED.value,
        )
        .values(
            state=DeliveryState.PENDING.value,
            next_attempt_at=func.now(),
            retry_from=func.now(),
        )
        .returning(WebhookDelivery.id)
    )
    if changed.scalar_one_or_none() is None:
        raise NotFound(f"no undelivered delivery {delivery_id} of webhook {endpoint_id}")
    await audit.record(session, scope, "retry", "webhook_delivery", delivery_id, {})
    await session.execute(select(func.pg_notify(CHANNEL, "")))  # the worker, at commit
