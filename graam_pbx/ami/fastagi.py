"""Our own FastAGI server: Asterisk's ``AGI(agi://host:port/script)`` runs a handler here.

The protocol: Asterisk connects and sends ``agi_*: value`` lines ending with a blank line;
then the script sends one command per line (``STREAM FILE agent-loginok ""``) and reads one
answer per command (``200 result=0 endpos=1234``). When the caller hangs up, Asterisk writes
a bare ``HANGUP`` line between answers, and commands on the dead channel answer ``511``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from graam_pbx.metrics import AGI_REQUESTS

logger = logging.getLogger(__name__)

MAX_LINE = 8192
MAX_ENV_LINES = 256
# Asterisk sends the environment at once; a client that does not is not Asterisk.
ENV_TIMEOUT = 5.0
# An answer to a command like STREAM FILE comes when the prompt has played: allow for it.
DEFAULT_COMMAND_TIMEOUT = 60.0
STOP_GRACE = 5.0
BIND_RETRY = 5.0

_ANSWER = re.compile(r"^(\d{3})(?: result=(-?\d+))?(?: \((.*)\))?(?: (.*))?$")
_UNSAFE_ARGUMENT = re.compile(r'[\x00-\x1f\x7f"\\]')


class AgiError(Exception):
    """A command failed or the conversation broke."""


class AgiHangup(AgiError):
    """The channel hung up (or the connection closed): nothing more can be played."""


@dataclass(frozen=True, slots=True)
class AgiAnswer:
    code: int
    result: int | None
    data: str | None  # the part in parentheses: a variable's value
    rest: str | None


def quote_argument(value: str) -> str:
    """One AGI argument in double quotes; refuses what could end it or the command."""
    if _UNSAFE_ARGUMENT.search(value):
        raise ValueError(f"AGI argument {value!r} has quotes, backslashes or control characters")
    return f'"{value}"'


class AgiSession:
    """One AGI conversation: the environment Asterisk sent and a way to send commands."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        env: dict[str, str],
        *,
        command_timeout: float = DEFAULT_COMMAND_TIMEOUT,
    ) -> None:
        self._reader = reader
        self._writer = writer
        self.env = env
        self._command_timeout = command_timeout
        self.hung_up = False

    @property
    def script(self) -> str:
        """The path of ``agi://host:port/<script>``, without slashes: what to run."""
        return unquote(urlsplit(self.env.get("agi_request", "")).path).strip("/")

    @property
    def arguments(self) -> list[str]:
        """``agi_arg_1`` … in order: the AGI application's arguments after the URL."""
        found = []
        for index in range(1, 64):
            value = self.env.get(f"agi_arg_{index}")
            if value is None:
                break
            found.append(value)
        return found

    @property
    def channel(self) -> str:
        return self.env.get("agi_channel", "")

    async def command(self, line: str) -> AgiAnswer:
        """Send one command and return its answer; raises AgiHangup on a dead channel."""
        if "\n" in line or "\r" in line:
            raise ValueError("an AGI command is one line")
        if self.hung_up:
            raise AgiHangup(f"channel {self.channel} hung up")
        try:
            self._writer.write(line.encode() + b"\n")
            async with asyncio.timeout(self._command_timeout):
                await self._writer.drain()
                answer = await self._read_answer()
        except TimeoutError:
            raise AgiError(f"no answer to {line.split(' ', 1)[0]} in time") from None
        except (ConnectionError, asyncio.IncompleteReadError) as err:
            self.hung_up = True
            raise AgiHangup(f"connection closed: {err}") from err
        if answer.code == 511:
            self.hung_up = True
            raise AgiHangup(f"channel {self.channel} hung up")
        if answer.code != 200:
            raise AgiError(f"{line.split(' ', 1)[0]} failed: {answer.code} {answer.rest or ''}")
        return answer

    async def stream_file(self, name: str, escape_digits: str = "") -> AgiAnswer:
        """Play a prompt (a sound name without extension) to the caller."""
        return await self.command(f"STREAM FILE {name} {quote_argument(escape_digits)}")

    async def get_variable(self, name: str) -> str | None:
        """A channel variable's value, or None when it is not set."""
        answer = await self.command(f"GET VARIABLE {name}")
        return answer.data if answer.result == 1 else None

    async def get_variable_expression(self, expression: str) -> str | None:
        """An expression with ``${…}`` substituted on the channel (GET FULL VARIABLE)."""
        if " " in expression or '"' in expression:
            raise ValueError("an AGI variable expression has no spaces or quotes")
        answer = await self.command(f"GET FULL VARIABLE {expression}")
        return answer.data if answer.result == 1 else None

    async def set_variable(self, name: str, value: str) -> None:
        await self.command(f"SET VARIABLE {name} {quote_argument(value)}")

    async def _read_answer(self) -> AgiAnswer:
        while True:
            line = await self._readline()
            if line == "HANGUP":
                # The hangup notice precedes the answer of the command in flight.
                self.hung_up = True
                continue
            if line.startswith("520-"):
                # Usage text of a bad command: lines until "520 End of proper usage."
                while not (await self._readline()).startswith("520 "):
                    pass
                return AgiAnswer(520, None, None, "invalid command syntax")
            match = _ANSWER.match(line)
            if match is None:
                raise AgiError(f"not an AGI answer: {line[:80]!r}")
            code, result, data, rest = match.groups()
            return AgiAnswer(int(code), None if result is None else int(result), data, rest)

    async def _readline(self) -> str:
        raw = await self._reader.readuntil(b"\n")
        return raw.decode("utf-8", "replace").rstrip("\r\n")


AgiHandler = Callable[[AgiSession], Awaitable[None]]


async def read_environment(reader: asyncio.StreamReader) -> dict[str, str]:
    """The ``agi_*`` lines up to the blank line that ends them."""
    env: dict[str, str] = {}
    async with asyncio.timeout(ENV_TIMEOUT):
        for _ in range(MAX_ENV_LINES):
            line = (await reader.readuntil(b"\n")).decode("utf-8", "replace").rstrip("\r\n")
            if not line:
                return env
            name, separator, value = line.partition(":")
            if separator and name.startswith("agi_"):
                env[name] = value.strip()
    raise AgiError(f"AGI environment longer than {MAX_ENV_LINES} lines")


class FastAgiServer:
    """Listens for Asterisk's FastAGI connections and runs ``handler`` for each.

    A port that is taken is not fatal: the server logs it once and keeps trying, so the rest
    of the control plane runs (and the dialplan's codes answer again once it binds).
    """

    def __init__(
        self,
        host: str,
        port: int,
        handler: AgiHandler,
        *,
        command_timeout: float = DEFAULT_COMMAND_TIMEOUT,
    ) -> None:
        self.host = host
        self.port = port
        self._handler = handler
        self._command_timeout = command_timeout
        self._server: asyncio.Server | None = None
        self._binder: asyncio.Task[None] | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self.listening = asyncio.Event()

    async def start(self) -> None:
        try:
            await self._bind()
        except OSError as err:
            logger.warning(
                "fastagi cannot listen yet host=%s port=%d error=%s", self.host, self.port, err
            )
            self._binder = asyncio.create_task(self._keep_binding(), name="fastagi-bind")

    async def stop(self) -> None:
        """Stop listening; conversations in flight get a short grace, then are cancelled."""
        binder, self._binder = self._binder, None
        if binder is not None:
            binder.cancel()
            await asyncio.wait([binder])
        server, self._server = self._server, None
        self.listening.clear()
        if server is not None:
            server.close()
        if self._connections:
            _, pending = await asyncio.wait(set(self._connections), timeout=STOP_GRACE)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending)
        if server is not None:
            await server.wait_closed()

    async def _bind(self) -> None:
        self._server = await asyncio.start_server(
            self._accept, self.host, self.port, limit=MAX_LINE
        )
        sockets = self._server.sockets
        if sockets:
            self.port = int(sockets[0].getsockname()[1])
        self.listening.set()
        logger.info("fastagi listening host=%s port=%d", self.host, self.port)

    async def _keep_binding(self) -> None:
        while True:
            await asyncio.sleep(BIND_RETRY)
            try:
                await self._bind()
            except OSError:
                continue
            return

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._connections.add(task)
        script = "unknown"
        try:
            env = await read_environment(reader)
            session = AgiSession(reader, writer, env, command_timeout=self._command_timeout)
            script = session.script or "unknown"
            await self._handler(session)
            AGI_REQUESTS.labels(outcome="ok").inc()
        except AgiHangup:
            AGI_REQUESTS.labels(outcome="hangup").inc()
        except (
            AgiError,
            TimeoutError,
            ConnectionError,
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
        ) as err:
            AGI_REQUESTS.labels(outcome="failed").inc()
            logger.warning("fastagi conversation failed script=%s error=%s", script, err)
        except Exception:
            AGI_REQUESTS.labels(outcome="failed").inc()
            logger.exception("fastagi handler failed script=%s", script)
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError, TimeoutError):
                async with asyncio.timeout(1.0):
                    await writer.wait_closed()
            if task is not None:
                self._connections.discard(task)
