"""Per role, per entity: what each role may and may not do (one table, every cell tested).

A denied call answers 403 before anything is looked up; an allowed one is never 401/403
(it may be 404 or 422 when the cell's body or id names nothing). Deletes aim at an id that
does not exist, so the table runs in any order without destroying the tenant.
"""

from __future__ import annotations

import itertools
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from graam_pbx.auth.principal import Principal, Role
from graam_pbx.tenants.flows import DemoTenant, seed_demo_tenant
from tests.factories import make_operator, unique

Sessions = async_sessionmaker[AsyncSession]
MISSING = 999_999_999

ADMIN, SUPERVISOR, AGENT, OPERATOR = "admin", "supervisor", "agent", "operator"
ALL = {ADMIN, SUPERVISOR, AGENT, OPERATOR}
READERS = {ADMIN, SUPERVISOR, OPERATOR}
CONFIGURERS = {ADMIN, OPERATOR}

# (method, path, body, roles allowed). {x} is filled from the demo tenant's ids.
TABLE: list[tuple[str, str, Any, set[str]]] = [
    ("GET", "/api/v1/nodes", None, {OPERATOR}),
    ("POST", "/api/v1/nodes", {"name": "Bad"}, {OPERATOR}),
    ("GET", f"/api/v1/nodes/{MISSING}", None, {OPERATOR}),
    ("PATCH", f"/api/v1/nodes/{MISSING}", {}, {OPERATOR}),
    ("DELETE", f"/api/v1/nodes/{MISSING}", None, {OPERATOR}),
    ("GET", "/api/v1/tenants/{tenant_id}/placement", None, {OPERATOR}),
    ("PUT", "/api/v1/tenants/{tenant_id}/placement", {"node": "no-such-node"}, {OPERATOR}),
    ("GET", "/api/v1/users", None, ALL),
    ("POST", "/api/v1/users", "user", CONFIGURERS),
    ("PATCH", "/api/v1/users/{user_id}", {}, CONFIGURERS),
    ("DELETE", f"/api/v1/users/{MISSING}", None, CONFIGURERS),
    ("GET", "/api/v1/devices", None, ALL),
    ("GET", "/api/v1/devices/{device_id}", None, ALL),  # the agent owns this one
    ("POST", "/api/v1/devices", {"user_id": MISSING, "name": "x", "extension": "299"}, CONFIGURERS),
    ("PATCH", "/api/v1/devices/{device_id}", {}, CONFIGURERS),
    ("DELETE", f"/api/v1/devices/{MISSING}", None, CONFIGURERS),
    ("GET", "/api/v1/queues", None, READERS),
    ("GET", "/api/v1/queues/{queue_id}", None, READERS),
    ("POST", "/api/v1/queues", "queue", READERS),
    ("PATCH", "/api/v1/queues/{queue_id}", {}, READERS),
    ("DELETE", f"/api/v1/queues/{MISSING}", None, READERS),
    ("GET", "/api/v1/queues/{queue_id}/members", None, READERS),
    ("POST", "/api/v1/queues/{queue_id}/members", {"user_id": MISSING}, READERS),
    ("DELETE", f"/api/v1/queues/{{queue_id}}/members/{MISSING}", None, READERS),
    ("GET", "/api/v1/prompts", None, READERS),
    ("DELETE", f"/api/v1/prompts/{MISSING}", None, CONFIGURERS),
    ("GET", "/api/v1/moh-classes", None, READERS),
    ("GET", f"/api/v1/moh-classes/{MISSING}", None, READERS),
    ("POST", "/api/v1/moh-classes", {"name": "x", "prompt_ids": [MISSING]}, CONFIGURERS),
    ("PATCH", f"/api/v1/moh-classes/{MISSING}", {"prompt_ids": [MISSING]}, CONFIGURERS),
    ("DELETE", f"/api/v1/moh-classes/{MISSING}", None, CONFIGURERS),
    ("GET", "/api/v1/ivrs", None, READERS),
    ("GET", "/api/v1/ivrs/{menu_id}", None, READERS),
    ("POST", "/api/v1/ivrs", "ivr", CONFIGURERS),
    ("PATCH", "/api/v1/ivrs/{menu_id}", {}, CONFIGURERS),
    ("DELETE", f"/api/v1/ivrs/{MISSING}", None, CONFIGURERS),
    ("GET", "/api/v1/voicemail-boxes", None, READERS),
    ("POST", "/api/v1/voicemail-boxes", "box", CONFIGURERS),
    ("DELETE", f"/api/v1/voicemail-boxes/{MISSING}", None, CONFIGURERS),
    ("GET", "/api/v1/numbers", None, READERS),
    ("GET", "/api/v1/numbers/available", None, READERS),
    ("POST", "/api/v1/numbers", {"e164": "+33142685399"}, CONFIGURERS),
    ("POST", f"/api/v1/numbers/{MISSING}/release", {"port_out": False}, CONFIGURERS),
    ("GET", "/api/v1/schedules", None, READERS),
    ("POST", "/api/v1/schedules", "schedule", CONFIGURERS),
    ("DELETE", f"/api/v1/schedules/{MISSING}", None, CONFIGURERS),
    ("GET", "/api/v1/inbound-routes", None, READERS),
    ("PATCH", "/api/v1/inbound-routes/{route_id}", {}, CONFIGURERS),
    ("DELETE", f"/api/v1/inbound-routes/{MISSING}", None, CONFIGURERS),
    ("GET", "/api/v1/outbound-routes", None, READERS),
    ("DELETE", f"/api/v1/outbound-routes/{MISSING}", None, CONFIGURERS),
    ("GET", "/api/v1/trunks", None, CONFIGURERS),
    ("POST", "/api/v1/trunks", {"name": "t", "host": "127.0.0.9", "country": "FR"}, {OPERATOR}),
    ("DELETE", f"/api/v1/trunks/{MISSING}", None, {OPERATOR}),
    ("GET", "/api/v1/catalogue/numbers", None, {OPERATOR}),
    ("GET", "/api/v1/tenants/{tenant_id}", None, ALL),
    ("PATCH", "/api/v1/tenants/{tenant_id}", {}, {OPERATOR}),
    ("GET", "/api/v1/tenants/{tenant_id}/licences", None, ALL),
    ("PUT", "/api/v1/tenants/{tenant_id}/licences", {"licences": 2}, CONFIGURERS),
    ("GET", "/api/v1/audit", None, READERS),
    ("GET", "/api/v1/audit/logins", None, CONFIGURERS),
]


_box_numbers = itertools.count(300)


def _body(kind: Any) -> Any:
    bodies: dict[str, Any] = {
        "user": {
            "email": f"{unique('u')}@x.example",
            "display_name": "U",
            "role": "agent",
            "password": "long enough password",
        },
        "queue": {"name": unique("q")},
        "ivr": {"name": unique("m")},
        "box": {"number": str(next(_box_numbers)), "name": "Box", "pin": "1234"},
        "schedule": {"name": unique("s"), "weekly": []},
    }
    return bodies[kind] if isinstance(kind, str) else kind


@pytest.fixture(scope="module")
async def demo(client: httpx.AsyncClient, sessions: Sessions) -> tuple[DemoTenant, dict[str, Any]]:
    operator = await make_operator(client, sessions)
    async with sessions() as session, session.begin():
        tenant = await seed_demo_tenant(
            session,
            Principal(operator.user_id, Role.OPERATOR, None, operator.email),
            unique("roles"),
        )
    headers: dict[str, Any] = {
        OPERATOR: {**operator.headers, "X-Graam-Tenant": str(tenant.tenant_id)},
    }
    for login in tenant.logins:
        if login.role in headers:
            continue
        token = (
            await client.post(
                "/api/v1/auth/token",
                json={
                    "email": login.email,
                    "password": login.password,
                    "tenant": tenant.slug,
                },
            )
        ).json()["access_token"]
        headers[login.role] = {"Authorization": f"Bearer {token}"}
    return tenant, headers


@pytest.mark.parametrize(
    ("method", "path", "body", "allowed"), TABLE, ids=[f"{m} {p}" for m, p, _, _ in TABLE]
)
@pytest.mark.parametrize("role", sorted(ALL))
async def test_role_table(
    client: httpx.AsyncClient,
    demo: tuple[DemoTenant, dict[str, Any]],
    role: str,
    method: str,
    path: str,
    body: Any,
    allowed: set[str],
) -> None:
    tenant, headers = demo
    url = path.format(**tenant.ids)
    response = await client.request(
        method, url, headers=headers[role], json=None if body is None else _body(body)
    )
    if role in allowed:
        assert response.status_code not in (401, 403), response.text
        assert response.status_code < 500, response.text
    else:
        assert response.status_code == 403, response.text
        assert response.json()["error_id"] == "forbidden"


async def test_an_agent_reads_itself_and_its_own_devices_only(
    client: httpx.AsyncClient, demo: tuple[DemoTenant, dict[str, Any]]
) -> None:
    tenant, headers = demo
    users = (await client.get("/api/v1/users", headers=headers[AGENT])).json()["items"]
    assert [u["id"] for u in users] == [tenant.ids["user_id"]]
    devices = (await client.get("/api/v1/devices", headers=headers[AGENT])).json()["items"]
    assert {d["user_id"] for d in devices} == {tenant.ids["user_id"]}
    other = next(
        u
        for u in (await client.get("/api/v1/users", headers=headers[ADMIN])).json()["items"]
        if u["id"] != tenant.ids["user_id"]
    )
    assert (
        await client.get(f"/api/v1/users/{other['id']}", headers=headers[AGENT])
    ).status_code == 404
