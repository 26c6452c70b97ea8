"""An ASGI app served over HTTP on a loopback port, in the caller's event loop.

Tests and benches drive the console as browsers do, over real HTTP; the app's lifespan runs
elsewhere (the caller's ``RunningApp`` or ``lifespan_context``), so the server is started with
``lifespan="off"`` and stopping it leaves the app's components running.
"""

from __future__ import annotations

import asyncio
from typing import Any

import uvicorn

from graam_pbx.sandbox.ports import free_port

START_TIMEOUT = 20.0


class LoopbackHttp:
    """One app served on ``127.0.0.1:port`` (a free port when none is given)."""

    def __init__(self, app: Any, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, lifespan="off", log_level="warning"
        )
        self._server = uvicorn.Server(config)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Serve; returns once the port is listening (a server that failed to start raises)."""
        self._task = asyncio.create_task(self._server.serve())
        async with asyncio.timeout(START_TIMEOUT):
            while not self._server.started:
                if self._task.done():
                    self._task.result()
                await asyncio.sleep(0.02)

    async def stop(self) -> None:
        self._server.should_exit = True
        if self._task is not None:
            async with asyncio.timeout(START_TIMEOUT):
                await self._task

    async def __aenter__(self) -> LoopbackHttp:
        await self.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.stop()
