"""A crowd of wallboards connecting at once (everyone reconnecting after a restart) is served
from a small database pool: no viewer holds a connection while the board it waits for is
built."""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path
from typing import Any

import httpx

from graam_pbx.app import Endpoints
from graam_pbx.sandbox.http import LoopbackHttp
from graam_pbx.sandbox.ports import free_port
from graam_pbx.sandbox.postgres import EmbeddedPostgres
from graam_pbx.settings import Settings
from tests.conftest import Asterisk, start_app
from tests.e2e.test_agent_login import Sessions
from tests.e2e.web.test_wallboard import boards, console_cookie
from tests.factories import make_world

VIEWERS = 12
POOL = 4  # far fewer connections than viewers


async def test_viewers_connecting_at_once_all_get_their_board_from_a_small_pool(
    client: httpx.AsyncClient,
    sessions: Sessions,
    asterisk: Asterisk,
    postgres: EmbeddedPostgres,
    tmp_path: Path,
) -> None:
    world = await make_world(client, sessions)
    settings = Settings(
        db_pool_size=POOL,
        agi_port=free_port(),
        cdr_dir=tmp_path / "cdr",
        queue_calls_dir=tmp_path / "queue-calls",
    )
    endpoints = Endpoints(database_url=postgres.url("pbx"), ami=asterisk.ami_config())
    async with contextlib.asynccontextmanager(start_app)(endpoints, settings) as running:
        await running.runtime.ami.wait_connected(timeout=20)
        server = LoopbackHttp(running.app)
        await server.start()
        try:
            cookie = await console_cookie(server.url, world, "supervisor")

            async def first_board() -> dict[str, Any]:
                async with (
                    httpx.AsyncClient(timeout=30) as http,
                    http.stream(
                        "GET",
                        f"{server.url}/live/wallboard",
                        headers={"Cookie": f"graam_session={cookie}"},
                    ) as stream,
                ):
                    assert stream.status_code == 200, await stream.aread()
                    async for fields, _ in boards(stream):
                        if fields.get("event") == "board":
                            board: dict[str, Any] = json.loads(fields["data"])
                            return board
                raise AssertionError("the stream ended without a board")

            async with asyncio.timeout(60):
                received = await asyncio.gather(*(first_board() for _ in range(VIEWERS)))
            assert [board["tenant_id"] for board in received] == [world.tenant_id] * VIEWERS
        finally:
            assert running.runtime.live is not None
            running.runtime.live.close_streams()
            await server.stop()
