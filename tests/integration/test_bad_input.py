"""Property tests over hostile input: names, numbers, digits, PINs, slugs; and strings
Postgres cannot store (NUL, lone surrogates) in every query parameter, path and body.

Hypothesis generates the values (a sync collector, since the API is driven from the
session's event loop); each goes through the real API: never a 500, and a refusal is
always a 422 naming the field.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.conftest import RunningApp
from tests.factories import HOSTILE, fields_of, make_world

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


# ---- strings Postgres cannot store, anywhere in a request ----------------------------------

# Every hostile string with a NUL: each is refused wherever it is sent, before any route runs.
WITH_NUL = [text for text in HOSTILE if "\x00" in text]
# Lone surrogates only travel in JSON ("\ud800" escapes); httpx cannot encode them, so these
# bodies are written with json.dumps (ASCII, escapes kept).
LONE_SURROGATES = ["\ud800", "a\udfffb", "\udc00\ud800", "\ud83d"]


def string_query_parameters(document: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(method, path, name) of every query parameter that takes a string, from the OpenAPI
    document: an endpoint added later is covered without being named here."""
    schemas = document.get("components", {}).get("schemas", {})

    def takes_text(schema: dict[str, Any]) -> bool:
        if "$ref" in schema:
            return takes_text(schemas[schema["$ref"].rsplit("/", 1)[-1]])
        if schema.get("type") == "string":
            return True
        return any(takes_text(option) for option in schema.get("anyOf", []))

    found = []
    for path, item in document["paths"].items():
        for method, operation in item.items():
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "query" and takes_text(parameter.get("schema", {})):
                    found.append((method.upper(), path, parameter["name"]))
    return found


def concrete(path: str, document_path: dict[str, Any]) -> str:
    """The path with each of its parameters given a well-formed value."""
    for operation in document_path.values():
        for parameter in operation.get("parameters", []):
            if parameter["in"] == "path":
                schema = parameter.get("schema", {})
                value = (schema.get("examples") or ["1"])[0]
                path = path.replace("{" + parameter["name"] + "}", str(value))
    return path


def assert_refused(response: httpx.Response, field: str) -> None:
    assert response.status_code == 422, (field, response.status_code, response.text)
    body = response.json()
    assert body["error_id"] == "validation-failed", body
    assert fields_of(response) == {field}, body
    assert all(error["reason"] for error in body["details"]["errors"]), body


async def test_a_nul_in_any_string_query_parameter_is_a_422(
    client: httpx.AsyncClient, sessions: Sessions, running_app: RunningApp
) -> None:
    world = await make_world(client, sessions)
    document = running_app.app.openapi()
    parameters = string_query_parameters(document)
    # The ones the issue names are among them: the list really comes from the document.
    assert {("GET", "/api/v1/cdrs", "did"), ("GET", "/api/v1/audit", "object_type")} <= {
        *parameters
    }
    assert ("GET", "/api/v1/cdrs/export.csv", "linkedid") in parameters
    for method, path, name in parameters:
        url = concrete(path, document["paths"][path])
        for value in WITH_NUL:
            for headers in (world.operator_headers, world.admin.headers):
                response = await client.request(method, url, params={name: value}, headers=headers)
                assert_refused(response, f"query.{name}")


async def test_hostile_strings_in_every_string_query_parameter_are_never_a_500(
    client: httpx.AsyncClient, sessions: Sessions, running_app: RunningApp
) -> None:
    world = await make_world(client, sessions)
    document = running_app.app.openapi()
    for method, path, name in string_query_parameters(document):
        if method != "GET":
            continue  # reading only: a hostile value must not change anything here
        url = concrete(path, document["paths"][path])
        for value in HOSTILE:
            response = await client.get(url, params={name: value}, headers=world.admin.headers)
            assert response.status_code < 500, (path, name, value, response.text)
            if response.status_code == 422:
                assert f"query.{name}" in fields_of(response), (path, name, value, response.text)
            elif path.endswith(".csv") and response.status_code == 200:
                # A complete CSV: its header line, whole lines only.
                assert response.text.startswith("id,"), response.text[:200]
                assert response.text.endswith("\r\n"), response.text[-200:]


async def test_the_issue_s_requests_are_422s_in_the_usual_shape(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions)
    admin = world.admin.headers
    for url, field in [
        ("/api/v1/cdrs?did=%00", "query.did"),
        ("/api/v1/cdrs/summary?did=%00", "query.did"),
        ("/api/v1/cdrs?linkedid=%00", "query.linkedid"),
        ("/api/v1/audit?object_type=%00", "query.object_type"),
        ("/api/v1/cdrs/export.csv?did=%00", "query.did"),
        ("/api/v1/cdrs/export.csv?did=1&linkedid=x%00y", "query.linkedid"),
    ]:
        response = await client.get(url, headers=admin)
        assert_refused(response, field)
        assert response.headers["content-type"].startswith("application/json")


async def test_an_export_s_parameters_are_checked_before_it_starts(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions)
    for query, field in [
        ("until=0.5", "query.until"),
        ("since=yesterday", "query.since"),
        ("min_duration=-1", "query.min_duration"),
        ("agent_id=0", "query.agent_id"),
        ("did=" + "1" * 40, "query.did"),
    ]:
        response = await client.get(f"/api/v1/cdrs/export.csv?{query}", headers=world.admin.headers)
        assert_refused(response, field)
    # And a good one is a whole CSV (its header, even with no rows).
    ok = await client.get("/api/v1/cdrs/export.csv?did=%2B33142685300", headers=world.admin.headers)
    assert ok.status_code == 200, ok.text
    assert ok.text.startswith("id,") and ok.text.endswith("\r\n"), ok.text


async def test_unstorable_strings_in_a_json_body_name_their_field(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions)
    json_headers = {**world.admin.headers, "Content-Type": "application/json"}
    for text in [*WITH_NUL, *LONE_SURROGATES]:
        for body, field in [
            ({"name": text}, "body.name"),
            ({"name": "q", "fallback": {"type": text, "id": 1}}, "body.fallback.type"),
            ({"name": "m", "options": {text: {"type": "hangup"}}}, f"body.options.{text}"),
            (
                {"name": "m", "options": {"1": {"type": "queue", "id": 1, "x": [0, text]}}},
                "body.options.1.x.1",
            ),
        ]:
            url = "/api/v1/queues" if "fallback" in body else "/api/v1/ivrs"
            response = await client.post(url, headers=json_headers, content=json.dumps(body))
            assert_refused(response, field)
    # A reason is free text: still no NUL.
    response = await client.post(
        "/api/v1/users",
        headers=json_headers,
        content=json.dumps(
            {
                "email": "n@x.example",
                "display_name": "N\ud800",
                "role": "agent",
                "password": "long enough password",
            }
        ),
    )
    assert_refused(response, "body.display_name")


async def test_a_body_that_is_not_utf8_or_not_a_form_is_a_422(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions)
    admin = world.admin.headers
    for content_type in ("application/json", None):
        headers = {**admin, **({"Content-Type": content_type} if content_type else {})}
        response = await client.post(
            "/api/v1/queues", headers=headers, content=b'{"name": "caf\xe9"}'
        )
        assert_refused(response, "body")
    broken_form = await client.post(
        "/api/v1/prompts",
        headers={**admin, "Content-Type": "multipart/form-data; boundary=zz"},
        content=b'--zz\r\nContent-Disposition: form-data; name="name"\r\n\r\nx\r\n--z',
    )
    assert broken_form.status_code == 422, broken_form.text
    assert broken_form.json()["error_id"] == "validation-failed", broken_form.text


async def test_a_nul_in_a_path_parameter_is_a_422_naming_it(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions)
    response = await client.get(
        "/api/v1/voicemail-boxes/1/messages/1-a%00", headers=world.admin.headers
    )
    assert_refused(response, "path.msg_id")


async def test_the_openapi_document_says_what_parameters_accept(
    client: httpx.AsyncClient, running_app: RunningApp, sessions: Sessions
) -> None:
    document = running_app.app.openapi()
    for path, item in document["paths"].items():
        for method, operation in item.items():
            for parameter in operation.get("parameters", []):
                # A parameter is text on the wire: "null" is no value of any of them.
                assert "null" not in json.dumps(parameter["schema"]), (method, path, parameter)
                if parameter["name"] == "cursor":
                    assert parameter["schema"]["minLength"] == 1, (method, path)
    world = await make_world(client, sessions)
    empty_cursor = await client.get("/api/v1/queues?cursor=", headers=world.admin.headers)
    assert_refused(empty_cursor, "query.cursor")
    # An optional header left out is no tenant; sent as "null" it is refused, as documented.
    null_tenant = await client.get(
        "/api/v1/queues", headers={**world.operator.headers, "X-Graam-Tenant": "null"}
    )
    assert_refused(null_tenant, "header.x-graam-tenant")
    licences = await client.put(
        f"/api/v1/tenants/{world.tenant_id}/licences",
        headers=world.operator.headers,
        json={"licences": False},
    )
    assert_refused(licences, "body.licences")


async def test_a_405_allows_every_method_of_the_path(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions)
    response = await client.request("OPTIONS", "/api/v1/users", headers=world.admin.headers)
    assert response.status_code == 405
    assert response.json()["error_id"] == "method-not-allowed"
    assert {m.strip() for m in response.headers["allow"].split(",")} == {"GET", "HEAD", "POST"}
    one = await client.request("PUT", "/api/v1/users/1", headers=world.admin.headers)
    assert one.status_code == 405
    assert {m.strip() for m in one.headers["allow"].split(",")} == {
        "GET",
        "HEAD",
        "PATCH",
        "DELETE",
    }
