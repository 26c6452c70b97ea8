"""The queue-call writer through a Postgres outage and a restart: every queue call once.

The writer reaches the real Postgres through a loopback TCP relay the test can cut (every
connection closed, the port refusing) and restore, the way a Postgres restart looks to it.
Its source is a queue_log as Asterisk writes it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from graam_pbx.ami import EventBus
from graam_pbx.db import create_engine, session_factory
from graam_pbx.queue_calls.models import QueueCall
from graam_pbx.queue_calls.worker import QueueCallSettings, QueueCallWorker
from tests.factories import make_world
from tests.waiting import until

Sessions = async_sessionmaker[AsyncSession]


class Relay:
    """127.0.0.1:<port> to Postgres, until cut."""

    def __init__(self, host: str, port: int) -> None:
        self._target = (host, port)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for writer in list(self._writers):
            writer.close()
        if server is not None:
            await server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self._target)
        self._writers.update({writer, up_writer})

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError, OSError):
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            sink.close()

        try:
            await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        finally:
            self._writers.difference_update({writer, up_writer})


def _backfilled(worker: QueueCallWorker) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return worker.backfills >= 1

    return check


async def test_queue_calls_logged_during_an_outage_are_written_once_it_ends_and_never_twice(
    database_url: str, client: httpx.AsyncClient, sessions: Sessions, tmp_path: Path
) -> None:
    world = await make_world(client, sessions)
    queue = await client.post("/api/v1/queues", headers=world.admin.headers, json={"name": "o"})
    assert queue.status_code == 201, queue.text
    name = f"t{world.tenant_id}-q{queue.json()['id']}"
    queue_log = tmp_path / "queue_log"
    queue_log.write_text(
        f"1796300000|1796300000.1|{name}|NONE|ENTERQUEUE||+33612345678|1\n"
        f"1796300004|1796300000.1|{name}|NONE|ABANDON|1|1|4\n"
    )
    url = make_url(database_url)
    relay = Relay(url.host or "127.0.0.1", url.port or 5432)
    await relay.start()
    await relay.cut()  # Postgres is down when the writer starts
    relayed = url.set(host="127.0.0.1", port=relay.port).render_as_string(hide_password=False)
    engine = create_engine(relayed, pool_size=2)
    settings = QueueCallSettings(
        queue_log=queue_log, state_dir=tmp_path / "state", retry_interval=0.1
    )

    async def stored() -> int:
        async with sessions() as session:
            count = await session.scalar(
                select(func.count()).where(QueueCall.tenant_id == world.tenant_id)
            )
        return int(count or 0)

    worker = QueueCallWorker(session_factory(engine), EventBus(), None, settings)
    try:
        await worker.start()

        async def failing() -> bool:
            return worker.failing

        await until(failing, "failed write")
        assert await stored() == 0
        # Another call finishes while Postgres is still down.
        with queue_log.open("a") as file:
            file.write(
                f"1796300010|1796300010.2|{name}|NONE|ENTERQUEUE||+33612345679|1\n"
                f"1796300016|1796300010.2|{name}|NONE|EXITWITHTIMEOUT|1|1|6\n"
            )
        await relay.start()  # Postgres is back

        async def both() -> bool:
            return await stored() == 2

        await until(both, "both queue calls")
    finally:
        await worker.stop()
    # Started again (the same checkpoint), and with the checkpoint lost: nothing doubled.
    for lost_checkpoint in (False, True):
        if lost_checkpoint:
            worker.checkpoint_path.unlink()
        again = QueueCallWorker(session_factory(engine), EventBus(), None, settings)
        await again.start()
        try:
            await until(_backfilled(again), "backfill")
        finally:
            await again.stop()
        assert await stored() == 2
    await engine.dispose()
    await relay.cut()
    async with sessions() as session:
        outcomes = (
            await session.scalars(
                select(QueueCall.outcome)
                .where(QueueCall.tenant_id == world.tenant_id)
                .order_by(QueueCall.entered_at)
            )
        ).all()
    assert list(outcomes) == ["abandoned", "timeout"]
