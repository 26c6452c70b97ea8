"""Contact lists, CSV imports, consent, do-not-call and opposition lists through the real API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from graam_pbx.campaigns import blocklists, imports
from graam_pbx.campaigns.models import Contact, ContactImport
from tests.factories import TenantWorld, fields_of, make_world, unique

Sessions = async_sessionmaker[AsyncSession]


async def make_list(
    client: httpx.AsyncClient, world: TenantWorld, region: str = "FR"
) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/contact-lists",
        headers=world.admin.headers,
        json={"name": unique("List "), "default_region": region},
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def upload(
    client: httpx.AsyncClient,
    world: TenantWorld,
    list_id: int,
    content: bytes,
    filename: str = "contacts.csv",
) -> httpx.Response:
    return await client.post(
        f"/api/v1/contact-lists/{list_id}/imports",
        headers=world.admin.headers,
        files={"file": (filename, content, "text/csv")},
    )


async def imported(
    client: httpx.AsyncClient, world: TenantWorld, list_id: int, content: bytes
) -> dict[str, Any]:
    response = await upload(client, world, list_id, content)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def all_contacts(
    client: httpx.AsyncClient, world: TenantWorld, list_id: int
) -> dict[str, dict[str, Any]]:
    """The list's contacts by number, every page."""
    found: dict[str, dict[str, Any]] = {}
    params: dict[str, Any] = {"limit": 200}
    while True:
        response = await client.get(
            f"/api/v1/contact-lists/{list_id}/contacts", headers=world.admin.headers, params=params
        )
        assert response.status_code == 200, response.text
        page = response.json()
        found.update({c["number"]: c for c in page["items"]})
        if not page.get("next_cursor"):
            return found
        params["cursor"] = page["next_cursor"]


async def refusals_of(
    client: httpx.AsyncClient, world: TenantWorld, list_id: int, import_id: int
) -> list[dict[str, Any]]:
    response = await client.get(
        f"/api/v1/contact-lists/{list_id}/imports/{import_id}/refusals",
        headers=world.supervisor.headers,
        params={"limit": 200},
    )
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def test_lists_are_made_read_renamed_and_deleted_by_role(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions)
    made = await make_list(client, world, "RE")
    assert made["default_region"] == "RE" and made["contacts"] == 0
    url = f"/api/v1/contact-lists/{made['id']}"

    taken = await client.post(
        "/api/v1/contact-lists", headers=world.admin.headers, json={"name": made["name"]}
    )
    assert taken.status_code == 409
    bad = await client.post(
        "/api/v1/contact-lists",
        headers=world.admin.headers,
        json={"name": "x", "default_region": "XX"},
    )
    assert bad.status_code == 422 and fields_of(bad) == {"body.default_region"}

    read = await client.get(url, headers=world.supervisor.headers)
    assert read.status_code == 200 and read.json()["name"] == made["name"]
    for role in ("agent",):
        assert (await client.get(url, headers=world.headers(role))).status_code == 403
        assert (
            await client.get("/api/v1/contact-lists", headers=world.headers(role))
        ).status_code == 403
    supervisor_post = await client.post(
        "/api/v1/contact-lists", headers=world.supervisor.headers, json={"name": "nope"}
    )
    assert supervisor_post.status_code == 403

    stale = await client.patch(
        url, headers={**world.admin.headers, "If-Match": '"0.0"'}, json={"name": "Renamed"}
    )
    assert stale.status_code == 412
    renamed = await client.patch(
        url,
        headers={**world.admin.headers, "If-Match": read.headers["ETag"]},
        json={"name": "Renamed", "default_region": "FR"},
    )
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["name"] == "Renamed" and renamed.json()["default_region"] == "FR"
    null = await client.patch(url, headers=world.admin.headers, json={"name": None})
    assert null.status_code == 422 and fields_of(null) == {"body.name"}

    listed = await client.get("/api/v1/contact-lists", headers=world.supervisor.headers)
    assert [item["id"] for item in listed.json()["items"]] == [made["id"]]

    assert (await client.delete(url, headers=world.supervisor.headers)).status_code == 403
    assert (await client.delete(url, headers=world.admin.headers)).status_code == 204
    assert (await client.get(url, headers=world.admin.headers)).status_code == 404


async def test_an_import_reports_every_refused_row_with_its_line_and_reason(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions)
    made = await make_list(client, world)
    future = (datetime.now(UTC) + timedelta(days=3)).date().isoformat()
    lines = [
        "number,name,consent_at,consent_source,city",  # 1
        "0612345678,Ana,,,Paris",  # 2: accepted
        "not a number,Bob,,,Lyon",  # 3: bad number
        "0612345679,Cid,31/02/2026,form,Nice",  # 4: bad consent date
        "0612345680,Dan,,,Lille,extra",  # 5: too many columns
        f"0612345681,{'x' * 201},,,Metz",  # 6: name too long
        "",  # 7: blank, skipped
        "0612345682,Eve\x00,,,Caen",  # 8: NUL
        ",Fay,,,Brest",  # 9: no number
        "0612345683,Gus,,web form,Dijon",  # 10: a source without its date
        f"0612345684,Hal,{future},form,Tours",  # 11: consent in the future
        '0612345685,"Ivy\nNewline",,,Pau',  # 12-13: a name on two lines
        "0612345686,Jo,2026-01-15,form 12,Metz",  # 14: accepted
    ]
    content = "\r\n".join(lines).encode() + b"\r\n0612345687,\xff\xfebad,,,Laval\r\n"  # 15
    report = await imported(client, world, made["id"], content)
    assert {k: report[k] for k in ("rows_read", "rows_added", "rows_merged", "rows_refused")} == {
        "rows_read": 12,
        "rows_added": 2,
        "rows_merged": 0,
        "rows_refused": 10,
    }
    assert report["filename"] == "contacts.csv" and report["list_id"] == made["id"]
    refusals = {r["line"]: r for r in await refusals_of(client, world, made["id"], report["id"])}
    assert {line: r["field"] for line, r in refusals.items()} == {
        3: "number",
        4: "consent_at",
        5: "row",
        6: "name",
        8: "name",
        9: "number",
        10: "consent_source",
        11: "consent_at",
        12: "name",
        15: "name",
    }
    assert refusals[3]["value"] == "not a number" and refusals[3]["reason"]
    assert refusals[4]["value"] == "31/02/2026" and "not a date" in refusals[4]["reason"]
    assert "6 columns where the header has 5" in refusals[5]["reason"]
    assert refusals[6]["reason"] == "longer than 200 characters"
    assert "NUL" in refusals[8]["reason"]
    assert refusals[9]["reason"] == "missing"
    assert "future" in refusals[11]["reason"]
    assert "control characters" in refusals[12]["reason"]
    assert refusals[15]["reason"] == "not UTF-8 text" and "\ufffd" in refusals[15]["value"]
    contacts = await all_contacts(client, world, made["id"])
    assert set(contacts) == {"+33612345678", "+33612345686"}
    assert contacts["+33612345686"]["consent_at"].startswith("2026-01-15T00:00:00")
    assert contacts["+33612345686"]["consent_source"] == "form 12"

    # Pages of refusals follow the lines.
    first = await client.get(
        f"/api/v1/contact-lists/{made['id']}/imports/{report['id']}/refusals",
        headers=world.admin.headers,
        params={"limit": 2},
    )
    assert [r["line"] for r in first.json()["items"]] == [3, 4]
    second = await client.get(
        f"/api/v1/contact-lists/{made['id']}/imports/{report['id']}/refusals",
        headers=world.admin.headers,
        params={"limit": 2, "cursor": first.json()["next_cursor"]},
    )
    assert [r["line"] for r in second.json()["items"]] == [5, 6]
    history = await client.get(
        f"/api/v1/contact-lists/{made['id']}/imports", headers=world.supervisor.headers
    )
    assert [i["id"] for i in history.json()["items"]] == [report["id"]]


async def test_semicolons_a_bom_custom_fields_and_overseas_numbers(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions)
    made = await make_list(client, world)
    content = (
        "\ufeffNumber;Name;Consent_At;consent_source;Ville;Montant dû\n"
        "06 12 34 56 78;Anaïs Lefèvre;2026-09-01T10:15:00+02:00;formulaire web;Paris;12,50\n"
        "+262 692 12 34 56;Réunionnais;;;Saint-Denis;\n"
        "0590 82 12 34;Guadeloupéen;;;Pointe-à-Pitre;3\n"
    ).encode()
    report = await imported(client, world, made["id"], content)
    assert (report["rows_read"], report["rows_added"], report["rows_refused"]) == (3, 3, 0)
    contacts = await all_contacts(client, world, made["id"])
    ana = contacts["+33612345678"]
    assert ana["name"] == "Anaïs Lefèvre"
    assert ana["fields"] == {"Ville": "Paris", "Montant dû": "12,50"}
    assert ana["consent_source"] == "formulaire web"
    assert datetime.fromisoformat(ana["consent_at"]) == datetime(2026, 9, 1, 8, 15, tzinfo=UTC)
    assert ana["region"] == "FR" and ana["time_zones"] == ["Europe/Paris"]
    reunion = contacts["+262692123456"]
    assert reunion["region"] == "RE" and reunion["time_zones"] == ["Indian/Reunion"]
    assert reunion["fields"] == {"Ville": "Saint-Denis"}  # an empty value is no field
    guadeloupe = contacts["+590590821234"]
    assert guadeloupe["region"] == "GP" and guadeloupe["time_zones"] == ["America/Guadeloupe"]

    listed = await client.get(f"/api/v1/contact-lists/{made['id']}", headers=world.admin.headers)
    assert listed.json()["contacts"] == 3
    one = await client.get(
        f"/api/v1/contact-lists/{made['id']}/contacts/{ana['id']}", headers=world.admin.headers
    )
    assert one.status_code == 200 and one.json() == ana


async def test_duplicates_are_merged_in_the_file_and_with_the_list(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions)
    made = await make_list(client, world)
    first = await imported(
        client,
        world,
        made["id"],
        b"number,name,consent_at,consent_source,city,plan\n"
        b"0612345678,Ana,2026-01-01,paper,Paris,gold\n"
        b"+33612345678,,,,Lyon,\n"  # the same number: the city changes, the rest stays
        b"0611111111,Bob,,,Nice,\n",
    )
    assert (first["rows_added"], first["rows_merged"], first["rows_refused"]) == (2, 1, 0)
    second = await imported(
        client,
        world,
        made["id"],
        b"number;name;consent_at;extra\n"
        b"06 12 34 56 78;Ana Maria;;x\n"  # already in the list
        b"0622222222;Cy;;\n"
        b"0622222222;;2026-02-02;y\n",  # twice in the file
    )
    assert (second["rows_read"], second["rows_added"], second["rows_merged"]) == (3, 1, 2)
    contacts = await all_contacts(client, world, made["id"])
    assert len(contacts) == 3
    ana = contacts["+33612345678"]
    assert ana["name"] == "Ana Maria"
    assert ana["fields"] == {"city": "Lyon", "plan": "gold", "extra": "x"}
    assert ana["consent_source"] == "paper" and ana["consent_at"].startswith("2026-01-01")
    cy = contacts["+33622222222"]
    assert cy["name"] == "Cy" and cy["fields"] == {"extra": "y"}
    assert cy["consent_at"].startswith("2026-02-02") and cy["consent_source"] is None


async def test_a_hundred_thousand_rows_are_imported_exactly(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions)
    made = await make_list(client, world)
    rows = ["number,name,segment"]
    for i in range(100_000):
        if i % 1000 == 999:
            rows.append(f"bad-{i},Bad {i},x")
        elif i % 500 == 250:
            rows.append(f"061{i - 250:07d},,late-{i}")  # merged into row i - 250
        else:
            rows.append(f"061{i:07d},Person {i},s{i % 7}")
    report = await imported(client, world, made["id"], ("\n".join(rows) + "\n").encode())
    assert {k: report[k] for k in ("rows_read", "rows_added", "rows_merged", "rows_refused")} == {
        "rows_read": 100_000,
        "rows_added": 99_700,
        "rows_merged": 200,
        "rows_refused": 100,
    }
    async with sessions() as session:
        stored = await session.scalar(
            select(func.count()).select_from(Contact).where(Contact.list_id == made["id"])
        )
        assert stored == 99_700
        picked = {
            c.number: c
            for c in await session.scalars(
                select(Contact).where(
                    Contact.list_id == made["id"],
                    Contact.number.in_(["+33610000000", "+33610000251", "+33610099998"]),
                )
            )
        }
    assert picked["+33610000000"].name == "Person 0"
    assert picked["+33610000000"].fields == {"segment": "late-250"}
    assert picked["+33610000251"].name == "Person 251"
    assert len(picked) == 3
    assert picked["+33610099998"].fields == {"segment": f"s{99_998 % 7}"}
    refusals = await refusals_of(client, world, made["id"], report["id"])
    assert refusals[0] == {
        "line": 1001,
        "field": "number",
        "reason": refusals[0]["reason"],
        "value": "bad-999",
    }


async def test_bad_files_and_limits_leave_nothing_half_imported(
    client: httpx.AsyncClient, sessions: Sessions, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = await make_world(client, sessions)
    made = await make_list(client, world)
    for content, reason in [
        (b"", "empty"),
        (b"name,city\nAna,Paris\n", "no 'number' column"),
        (b"number,city,city\n0612345678,a,b\n", "named twice"),
        (b"number,,city\n0612345678,a,b\n", "has no name"),
    ]:
        response = await upload(client, world, made["id"], content)
        assert response.status_code == 422, response.text
        assert fields_of(response) == {"body.file"}
        assert reason in response.json()["details"]["errors"][0]["reason"]
    missing = await client.post(
        f"/api/v1/contact-lists/{made['id']}/imports", headers=world.admin.headers
    )
    assert missing.status_code == 422 and fields_of(missing) == {"body.file"}

    content = b"number\n" + b"".join(f"061234{i:04d}\n".encode() for i in range(20))
    monkeypatch.setattr(imports, "MAX_IMPORT_ROWS", 10)
    monkeypatch.setattr(imports, "BATCH_ROWS", 4)
    too_many = await upload(client, world, made["id"], content)
    assert too_many.status_code == 422 and "more than 10 rows" in too_many.text
    monkeypatch.setattr(imports, "MAX_IMPORT_BYTES", 100)
    too_big = await upload(client, world, made["id"], content)
    assert too_big.status_code == 413 and too_big.json()["error_id"] == "import-too-large"

    async with sessions() as session:
        assert (
            await session.scalar(
                select(func.count()).select_from(Contact).where(Contact.list_id == made["id"])
            )
            == 0
        )
        assert (
            await session.scalar(
                select(func.count())
                .select_from(ContactImport)
                .where(ContactImport.list_id == made["id"])
            )
            == 0
        )


async def test_consent_is_recorded_and_withdrawn(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions)
    made = await make_list(client, world)
    await imported(client, world, made["id"], b"number\n0612345678\n")
    contact = (await all_contacts(client, world, made["id"]))["+33612345678"]
    url = f"/api/v1/contact-lists/{made['id']}/contacts/{contact['id']}"
    assert contact["consent_at"] is None

    body = {"consent_at": "2026-09-01T10:15:00+02:00", "consent_source": "call recording 77"}
    assert (await client.patch(url, headers=world.supervisor.headers, json=body)).status_code == 403
    recorded = await client.patch(url, headers=world.admin.headers, json=body)
    assert recorded.status_code == 200, recorded.text
    assert datetime.fromisoformat(recorded.json()["consent_at"]) == datetime(
        2026, 9, 1, 8, 15, tzinfo=UTC
    )
    assert recorded.json()["consent_source"] == "call recording 77"
    naive = await client.patch(
        url, headers=world.admin.headers, json={"consent_at": "2026-09-01T10:15:00"}
    )
    assert naive.status_code == 422 and fields_of(naive) == {"body.consent_at"}
    withdrawn = await client.patch(url, headers=world.admin.headers, json={"consent_at": None})
    assert withdrawn.status_code == 200
    assert withdrawn.json()["consent_at"] is None and withdrawn.json()["consent_source"] is None
    other_list = await make_list(client, world)
    wrong = await client.get(
        f"/api/v1/contact-lists/{other_list['id']}/contacts/{contact['id']}",
        headers=world.admin.headers,
    )
    assert wrong.status_code == 404


async def test_a_consent_date_before_year_one_in_utc_is_refused_not_a_500(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    # 0001-01-01T00:00+14:00 is a valid ISO date whose UTC instant the database cannot store.
    world = await make_world(client, sessions)
    made = await make_list(client, world)
    report = await imported(
        client,
        world,
        made["id"],
        b"number,consent_at\n0612345678,0001-01-01T00:00:00+14:00\n0612345679,2026-01-15\n",
    )
    assert (report["rows_read"], report["rows_added"], report["rows_refused"]) == (2, 1, 1)
    (refusal,) = await refusals_of(client, world, made["id"], report["id"])
    assert (refusal["line"], refusal["field"]) == (2, "consent_at")
    assert "not a date" in refusal["reason"]
    contact = (await all_contacts(client, world, made["id"]))["+33612345679"]
    url = f"/api/v1/contact-lists/{made['id']}/contacts/{contact['id']}"
    refused = await client.patch(
        url, headers=world.admin.headers, json={"consent_at": "0001-01-01T00:00:00+14:00"}
    )
    assert refused.status_code == 422, refused.text
    assert fields_of(refused) == {"body.consent_at"}


async def test_do_not_call_entries_are_added_listed_and_removed(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions)
    added = await client.post(
        "/api/v1/do-not-call",
        headers=world.admin.headers,
        json={"number": "06 12 34 56 78", "reason": "asked by phone"},
    )
    assert added.status_code == 201, added.text
    entry = added.json()
    assert entry["number"] == "+33612345678" and entry["reason"] == "asked by phone"
    again = await client.post(
        "/api/v1/do-not-call", headers=world.admin.headers, json={"number": "+33612345678"}
    )
    assert again.status_code == 409
    bad = await client.post(
        "/api/v1/do-not-call", headers=world.admin.headers, json={"number": "12"}
    )
    assert bad.status_code == 422 and fields_of(bad) == {"body.number"}
    agent = await client.post(
        "/api/v1/do-not-call", headers=world.agent.headers, json={"number": "0611111111"}
    )
    assert agent.status_code == 403
    assert (await client.get("/api/v1/do-not-call", headers=world.agent.headers)).status_code == 403

    listed = await client.get("/api/v1/do-not-call", headers=world.supervisor.headers)
    assert [e["id"] for e in listed.json()["items"]] == [entry["id"]]
    async with sessions() as session:
        on_list, opposed = await blocklists.blocked_numbers(
            session, world.tenant_id, ["+33612345678", "+33611111111"]
        )
    assert (on_list, opposed) == ({"+33612345678"}, set())
    many = [f"+3361{i:07d}" for i in range(40_000)]  # more than a query's parameters
    async with sessions() as session:
        on_list, _ = await blocklists.blocked_numbers(
            session, world.tenant_id, [*many, "+33612345678"]
        )
    assert on_list == {"+33612345678"}

    url = f"/api/v1/do-not-call/{entry['id']}"
    assert (await client.delete(url, headers=world.supervisor.headers)).status_code == 403
    assert (await client.delete(url, headers=world.admin.headers)).status_code == 204
    assert (await client.delete(url, headers=world.admin.headers)).status_code == 404
    async with sessions() as session:
        assert await blocklists.blocked_numbers(session, world.tenant_id, ["+33612345678"]) == (
            set(),
            set(),
        )


async def test_opposition_lists_are_imported_with_their_date(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions)
    today = datetime.now(UTC).date()
    content = (
        b"numero;date\n"  # a header: no number
        b"0612345678;2026-11-30\n"
        b"+33612345679\n"
        b"06 12 34 56 80\n"
        b"\n"
        b"0612345678\n"  # twice
        b"not a number\n"
    )
    posted = await client.post(
        "/api/v1/opposition-lists",
        headers=world.admin.headers,
        data={"list_date": today.isoformat()},
        files={"file": ("bloctel.csv", content, "text/csv")},
    )
    assert posted.status_code == 201, posted.text
    body = posted.json()
    assert body["numbers"] == 3 and body["lines_ignored"] == 2
    assert body["list_date"] == today.isoformat() and body["filename"] == "bloctel.csv"
    stale = await client.post(
        "/api/v1/opposition-lists",
        headers=world.admin.headers,
        data={"list_date": (today - timedelta(days=45)).isoformat()},
        files={"file": ("old.csv", b"0699999999\n", "text/csv")},
    )
    assert stale.status_code == 201, stale.text
    future = await client.post(
        "/api/v1/opposition-lists",
        headers=world.admin.headers,
        data={"list_date": (today + timedelta(days=1)).isoformat()},
        files={"file": ("f.csv", b"0699999999\n", "text/csv")},
    )
    assert future.status_code == 422 and fields_of(future) == {"body.list_date"}
    no_date = await client.post(
        "/api/v1/opposition-lists",
        headers=world.admin.headers,
        files={"file": ("f.csv", b"0699999999\n", "text/csv")},
    )
    assert no_date.status_code == 422 and "body.list_date" in fields_of(no_date)
    agent = await client.post(
        "/api/v1/opposition-lists",
        headers=world.agent.headers,
        data={"list_date": today.isoformat()},
        files={"file": ("f.csv", b"0699999999\n", "text/csv")},
    )
    assert agent.status_code == 403

    listed = await client.get("/api/v1/opposition-lists", headers=world.supervisor.headers)
    assert [o["id"] for o in listed.json()["items"]] == [body["id"], stale.json()["id"]]
    async with sessions() as session:
        assert await blocklists.latest_opposition_date(session, world.tenant_id) == today
        on_list, opposed = await blocklists.blocked_numbers(
            session,
            world.tenant_id,
            ["+33612345678", "+33612345679", "+33612345680", "+33699999999", "+33611111111"],
        )
    # The list checked 45 days ago is past the law's 30 days: it proves nothing any more.
    assert on_list == set()
    assert opposed == {"+33612345678", "+33612345679", "+33612345680"}
    async with sessions() as session:
        _, then = await blocklists.blocked_numbers(
            session, world.tenant_id, ["+33699999999"], today=today - timedelta(days=40)
        )
    assert then == {"+33699999999"}


async def test_another_tenants_lists_contacts_and_imports_are_404(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    a = await make_world(client, sessions)
    b = await make_world(client, sessions)
    made = await make_list(client, a)
    report = await imported(client, a, made["id"], b"number\n0612345678\nbad\n")
    contact = (await all_contacts(client, a, made["id"]))["+33612345678"]
    entry = await client.post(
        "/api/v1/do-not-call", headers=a.admin.headers, json={"number": "0612345678"}
    )
    base = f"/api/v1/contact-lists/{made['id']}"
    calls: list[tuple[str, str, dict[str, Any]]] = [
        ("GET", base, {}),
        ("PATCH", base, {"json": {"name": "mine"}}),
        ("DELETE", base, {}),
        ("GET", f"{base}/imports", {}),
        ("GET", f"{base}/imports/{report['id']}/refusals", {}),
        ("GET", f"{base}/contacts", {}),
        ("GET", f"{base}/contacts/{contact['id']}", {}),
        ("PATCH", f"{base}/contacts/{contact['id']}", {"json": {"consent_at": None}}),
        ("POST", f"{base}/imports", {"files": {"file": ("x.csv", b"number\n0611111111\n")}}),
        ("DELETE", f"/api/v1/do-not-call/{entry.json()['id']}", {}),
    ]
    for method, url, extra in calls:
        response = await client.request(method, url, headers=b.admin.headers, **extra)
        assert response.status_code == 404, (method, url, response.text)
    b_list = await make_list(client, b)
    # A's import and contact through B's own list: still nobody's.
    for url in (
        f"/api/v1/contact-lists/{b_list['id']}/imports/{report['id']}/refusals",
        f"/api/v1/contact-lists/{b_list['id']}/contacts/{contact['id']}",
    ):
        assert (await client.get(url, headers=b.admin.headers)).status_code == 404
    for url in ("/api/v1/contact-lists", "/api/v1/do-not-call", "/api/v1/opposition-lists"):
        items = (await client.get(url, headers=b.admin.headers)).json()["items"]
        assert all(item.get("tenant_id") != a.tenant_id for item in items)
    async with sessions() as session:
        assert await blocklists.blocked_numbers(session, b.tenant_id, ["+33612345678"]) == (
            set(),
            set(),
        )
        assert await blocklists.latest_opposition_date(session, b.tenant_id) is None
