"""Prompt uploads through the real API and database: WAV checks, audio, usage, roles."""

from __future__ import annotations

import hashlib
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from graam_pbx.prompts.wav import MAX_BYTES
from tests.factories import HOSTILE, NAME_ALPHABET, TenantWorld, fields_of, make_world, unique
from tests.unit.test_wav import make_wav

Sessions = async_sessionmaker[AsyncSession]
GREETING = make_wav(rate=8000, seconds=0.5)


async def upload(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    name: str,
    audio: bytes = GREETING,
    filename: str = "greeting.wav",
) -> httpx.Response:
    return await client.post(
        "/api/v1/prompts",
        headers=headers,
        data={"name": name},
        files={"file": (filename, audio, "audio/wav")},
    )


async def create_prompt(
    client: httpx.AsyncClient, world: TenantWorld, audio: bytes = GREETING
) -> dict[str, Any]:
    response = await upload(client, world.admin.headers, unique("p"), audio)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def reasons_of(response: httpx.Response) -> list[str]:
    return [error["reason"] for error in response.json()["details"]["errors"]]


async def test_upload_then_read_metadata_and_audio(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions)
    audio = make_wav(rate=16000, seconds=2.5)
    response = await upload(client, world.admin.headers, "welcome", audio)
    assert response.status_code == 201, response.text
    prompt = response.json()
    assert response.headers["ETag"] == f'"{prompt["id"]}.1"'
    assert {k: v for k, v in prompt.items() if k not in ("id", "created_at", "updated_at")} == {
        "name": "welcome",
        "sample_rate": 16000,
        "duration_ms": 2500,
        "size_bytes": len(audio),
        "sha256": hashlib.sha256(audio).hexdigest(),
        "version": 1,
    }
    url = f"/api/v1/prompts/{prompt['id']}"
    one = await client.get(url, headers=world.supervisor.headers)
    assert one.json() == prompt
    assert one.headers["ETag"] == response.headers["ETag"]
    played = await client.get(f"{url}/audio", headers=world.supervisor.headers)
    assert played.status_code == 200
    assert played.headers["content-type"] == "audio/wav"
    assert played.content == audio
    listed = await client.get("/api/v1/prompts", headers=world.admin.headers)
    assert listed.json()["items"] == [prompt]
    assert "audio" not in listed.text


@pytest.mark.parametrize(
    ("audio", "reason"),
    [
        (make_wav(channels=2), "stereo audio: greetings must be mono"),
        (make_wav(rate=44100), "44100 Hz: greetings must be 8000 or 16000 Hz"),
        (make_wav(width=1), "8-bit samples: greetings must be 16-bit PCM"),
        (make_wav(seconds=0.05), "too short: greetings last at least 0.1 s"),
        (make_wav()[:-200], "truncated: the audio data is shorter than the header says"),
        (b"ID3\x04\x00\x00\x00\x00\x00\x00" + b"\xff\xfb\x90\x64" * 100, "not a WAV file"),
        (b"", "not a WAV file (RIFF/WAVE header expected)"),
    ],
    ids=["stereo", "44.1k", "8-bit", "too-short", "truncated", "mp3", "empty"],
)
async def test_bad_audio_is_refused_on_the_file_field(
    client: httpx.AsyncClient, sessions: Sessions, audio: bytes, reason: str
) -> None:
    world = await make_world(client, sessions)
    response = await upload(client, world.admin.headers, "bad", audio)
    assert response.status_code == 422, response.text
    assert fields_of(response) == {"body.file"}
    assert reasons_of(response)[0].startswith(reason)
    listed = await client.get("/api/v1/prompts", headers=world.admin.headers)
    assert listed.json()["items"] == []


async def test_a_file_over_20_mb_is_refused(client: httpx.AsyncClient, sessions: Sessions) -> None:
    world = await make_world(client, sessions)
    huge = GREETING + bytes(MAX_BYTES)
    response = await upload(client, world.admin.headers, "huge", huge)
    assert response.status_code == 422
    assert fields_of(response) == {"body.file"}
    assert reasons_of(response)[0].startswith("file too large")


async def test_missing_parts_are_named(client: httpx.AsyncClient, sessions: Sessions) -> None:
    world = await make_world(client, sessions)
    no_file = await client.post("/api/v1/prompts", headers=world.admin.headers, data={"name": "x"})
    assert no_file.status_code == 422
    assert fields_of(no_file) == {"body.file"}
    no_name = await client.post(
        "/api/v1/prompts",
        headers=world.admin.headers,
        files={"file": ("g.wav", GREETING, "audio/wav")},
    )
    assert no_name.status_code == 422
    assert fields_of(no_name) == {"body.name"}
    as_json = await client.post("/api/v1/prompts", headers=world.admin.headers, json={"name": "x"})
    assert as_json.status_code == 422


async def test_name_is_unique_per_tenant_and_can_be_changed(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions)
    other = await make_world(client, sessions)
    first = await upload(client, world.admin.headers, "hold")
    assert first.status_code == 201
    twin = await upload(client, world.admin.headers, "hold")
    assert twin.status_code == 409
    assert twin.json()["details"]["field"] == "name"
    assert (await upload(client, other.admin.headers, "hold")).status_code == 201

    url = f"/api/v1/prompts/{first.json()['id']}"
    etag = first.headers["ETag"]
    renamed = await client.patch(
        url, headers={**world.admin.headers, "If-Match": etag}, json={"name": "hold-music"}
    )
    assert renamed.status_code == 200
    assert renamed.json()["name"] == "hold-music"
    assert renamed.headers["ETag"] == f'"{first.json()["id"]}.2"'
    stale = await client.patch(
        url, headers={**world.admin.headers, "If-Match": etag}, json={"name": "other"}
    )
    assert stale.status_code == 412
    second = await upload(client, world.admin.headers, "second")
    clash = await client.patch(
        f"/api/v1/prompts/{second.json()['id']}",
        headers=world.admin.headers,
        json={"name": "hold-music"},
    )
    assert clash.status_code == 409
    for body, field in [
        ({"name": "Hold Music"}, "body.name"),
        ({"name": None}, "body.name"),
        ({}, "body.name"),
        ({"name": "ok", "sha256": "0" * 64}, "body.sha256"),
    ]:
        bad = await client.patch(url, headers=world.admin.headers, json=body)
        assert bad.status_code == 422, body
        assert fields_of(bad) == {field}


async def test_delete_refused_while_used(client: httpx.AsyncClient, sessions: Sessions) -> None:
    world = await make_world(client, sessions)
    greeting = await create_prompt(client, world)
    url = f"/api/v1/prompts/{greeting['id']}"
    menu = await client.post(
        "/api/v1/ivrs",
        headers=world.admin.headers,
        json={"name": "main", "greeting_prompt_id": greeting["id"]},
    )
    box = await client.post(
        "/api/v1/voicemail-boxes",
        headers=world.admin.headers,
        json={"number": "801", "name": "Box", "pin": "1234", "greeting_prompt_id": greeting["id"]},
    )
    queue = await client.post(
        "/api/v1/queues",
        headers=world.admin.headers,
        json={"name": "q", "fallback": {"type": "announcement", "id": greeting["id"]}},
    )
    assert {menu.status_code, box.status_code, queue.status_code} == {201}
    refused = await client.delete(url, headers=world.admin.headers)
    assert refused.status_code == 409
    assert refused.json()["details"]["used_by"] == [
        f"IVR menu {menu.json()['id']} (greeting)",
        f"voicemail box {box.json()['id']} (greeting)",
        f"queue {queue.json()['id']}",
    ]

    await client.patch(
        f"/api/v1/ivrs/{menu.json()['id']}",
        headers=world.admin.headers,
        json={"greeting_prompt_id": None},
    )
    await client.patch(
        f"/api/v1/voicemail-boxes/{box.json()['id']}",
        headers=world.admin.headers,
        json={"greeting_prompt_id": None},
    )
    still = await client.delete(url, headers=world.admin.headers)
    assert still.status_code == 409
    assert still.json()["details"]["used_by"] == [f"queue {queue.json()['id']}"]
    await client.patch(
        f"/api/v1/queues/{queue.json()['id']}", headers=world.admin.headers, json={"fallback": None}
    )
    assert (await client.delete(url, headers=world.admin.headers)).status_code == 204
    assert (await client.get(url, headers=world.admin.headers)).status_code == 404
    assert (await client.get(f"{url}/audio", headers=world.admin.headers)).status_code == 404


# upload, list, get, audio, rename, delete
@pytest.mark.parametrize(
    ("role", "expected"),
    [
        ("admin", (201, 200, 200, 200, 200, 204)),
        ("operator", (201, 200, 200, 200, 200, 204)),
        ("supervisor", (403, 200, 200, 200, 403, 403)),
        ("agent", (403, 403, 403, 403, 403, 403)),
    ],
)
async def test_role_matrix(
    client: httpx.AsyncClient, sessions: Sessions, role: str, expected: tuple[int, ...]
) -> None:
    world = await make_world(client, sessions)
    prompt = await create_prompt(client, world)
    headers = world.headers(role)
    url = f"/api/v1/prompts/{prompt['id']}"
    got = (
        (await upload(client, headers, "by-" + role)).status_code,
        (await client.get("/api/v1/prompts", headers=headers)).status_code,
        (await client.get(url, headers=headers)).status_code,
        (await client.get(f"{url}/audio", headers=headers)).status_code,
        (await client.patch(url, headers=headers, json={"name": "renamed"})).status_code,
        (await client.delete(url, headers=headers)).status_code,
    )
    assert got == expected
    assert (await client.get("/api/v1/prompts")).status_code == 401


async def test_other_tenants_prompts_do_not_exist(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions)
    other = await make_world(client, sessions)
    prompt = await create_prompt(client, world)
    url = f"/api/v1/prompts/{prompt['id']}"
    for headers in (other.admin.headers, other.supervisor.headers, other.operator_headers):
        listed = await client.get("/api/v1/prompts", headers=headers)
        assert prompt["id"] not in {p["id"] for p in listed.json()["items"]}
        assert (await client.get(url, headers=headers)).status_code == 404
        assert (await client.get(f"{url}/audio", headers=headers)).status_code == 404
    for headers in (other.admin.headers, other.operator_headers):
        assert (
            await client.patch(url, headers=headers, json={"name": "stolen"})
        ).status_code == 404
        assert (await client.delete(url, headers=headers)).status_code == 404
        greeting = await client.post(
            "/api/v1/ivrs",
            headers=headers,
            json={"name": unique("m"), "greeting_prompt_id": prompt["id"]},
        )
        assert greeting.status_code == 422
        assert fields_of(greeting) == {"body.greeting_prompt_id"}
    assert (await client.get(url, headers=world.admin.headers)).json()["name"] == prompt["name"]


async def test_out_of_range_ids_are_refused_not_crashing(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions)
    for path in (f"/api/v1/prompts/{2**64}", f"/api/v1/prompts/{2**63}/audio"):
        response = await client.get(path, headers=world.admin.headers)
        assert response.status_code == 422
        assert fields_of(response) == {"path.prompt_id"}


@pytest.fixture(scope="module")
async def hostile_world(client: httpx.AsyncClient, sessions: Sessions) -> TenantWorld:
    return await make_world(client, sessions)


@pytest.mark.parametrize("text", HOSTILE, ids=lambda text: repr(text)[:24])
async def test_hostile_strings_are_refused_as_names(
    client: httpx.AsyncClient, hostile_world: TenantWorld, text: str
) -> None:
    response = await upload(client, hostile_world.admin.headers, text)
    if NAME_ALPHABET.fullmatch(text):
        assert response.status_code == 201, response.text  # "00331" is a fine name
    else:
        assert response.status_code == 422, response.text
        assert fields_of(response) == {"body.name"}
    # A hostile file name is never used: the prompt's own name is.
    filename = text[:200] or "x"
    named = await upload(client, hostile_world.admin.headers, unique("p"), filename=filename)
    assert named.status_code == 201, named.text
