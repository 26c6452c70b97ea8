"""Property tests over hostile input: names, numbers, digits, PINs, slugs.

Hypothesis generates the values (a sync collector, since the API is driven from the
session's event loop); each goes through the real API: never a 500, and a refusal is
always a 422 naming the field.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.factories import make_world

Sessions = async_sessionmaker[AsyncSession]
TEXT = st.one_of(
    st.text(max_size=80),
    st.text(alphabet=st.characters(codec="ascii"), max_size=80),
    st.from_regex(r"[a-z0-9][a-z0-9_-]{0,70}", fullmatch=True),
    st.from_regex(r"\+?[0-9]{0,18}", fullmatch=True),
)


def examples(strategy: st.SearchStrategy[Any], count: int = 120) -> list[Any]:
    found: list[Any] = []

    @settings(
        max_examples=count, database=None, deadline=None, suppress_health_check=list(HealthCheck)
    )
    @given(strategy)
    def collect(value: Any) -> None:
        found.append(value)

    collect()
    return found


async def check_field(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    path: str,
    body: Callable[[Any], dict[str, Any]],
    field: str,
    values: list[Any],
) -> None:
    for value in values:
        response = await client.post(path, headers=headers, json=body(value))
        assert response.status_code < 500, (field, value, response.text)
        if response.status_code == 422:
            fields = {e["field"] for e in response.json()["details"]["errors"]}
            assert f"body.{field}" in fields or any(
                f.startswith(f"body.{field}.") for f in fields
            ), (field, value, fields)
        else:
            assert response.status_code in (201, 409), (field, value, response.text)


async def test_names_numbers_digits_and_pins(client: httpx.AsyncClient, sessions: Sessions) -> None:
    world = await make_world(client, sessions)
    admin = world.admin.headers
    await check_field(
        client, admin, "/api/v1/queues", lambda v: {"name": v}, "name", examples(TEXT)
    )
    await check_field(
        client,
        admin,
        "/api/v1/voicemail-boxes",
        lambda v: {"number": "700", "name": "Box", "pin": v},
        "pin",
        examples(TEXT),
    )
    await check_field(
        client,
        admin,
        "/api/v1/voicemail-boxes",
        lambda v: {"number": v, "name": "Box", "pin": "1234"},
        "number",
        examples(TEXT),
    )
    await check_field(
        client,
        admin,
        "/api/v1/ivrs",
        lambda v: {"name": "menu", "options": {v: {"type": "hangup"}}},
        "options",
        examples(st.text(max_size=3)),
    )
    await check_field(
        client, admin, "/api/v1/numbers", lambda v: {"e164": v}, "e164", examples(TEXT)
    )
    await check_field(
        client,
        admin,
        "/api/v1/users",
        lambda v: {
            "email": "x@y.example",
            "display_name": v,
            "role": "agent",
            "password": "long enough password",
        },
        "display_name",
        examples(TEXT, 60),
    )


async def test_tenant_slugs_and_countries(client: httpx.AsyncClient, sessions: Sessions) -> None:
    world = await make_world(client, sessions)
    operator = world.operator.headers
    base = {"name": "T", "country": "FR", "timezone": "Europe/Paris"}
    await check_field(
        client, operator, "/api/v1/tenants", lambda v: {**base, "slug": v}, "slug", examples(TEXT)
    )
    await check_field(
        client,
        operator,
        "/api/v1/tenants",
        lambda v: {**base, "slug": f"c{abs(hash(v)) % 10**9}", "country": v},
        "country",
        examples(st.text(max_size=4)),
    )
    await check_field(
        client,
        operator,
        "/api/v1/tenants",
        lambda v: {**base, "slug": f"z{abs(hash(v)) % 10**9}", "timezone": v},
        "timezone",
        examples(TEXT, 60),
    )
