"""Keeps one AMI connection alive: login, FullyBooted, resync, pings, capped back-off."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from graam_pbx.ami.client import AmiClient
from graam_pbx.ami.errors import (
    AmiActionError,
    AmiDisconnected,
    AmiError,
    AmiNotConnected,
    AmiTimeout,
)
from graam_pbx.ami.protocol import FieldValue, Message
from graam_pbx.ami.transport import AmiTransport, open_tcp
from graam_pbx.errors import Unavailable
from graam_pbx.metrics import AMI_CONNECTED, AMI_RECONNECTS

if TYPE_CHECKING:
    from graam_pbx.ami.bus import EventBus
    from graam_pbx.settings import Settings

logger = logging.getLogger(__name__)

TransportFactory = Callable[[str, int, float], Awaitable[AmiTransport]]

# Uptime is whole seconds and is read a little after it was computed; two seconds of slack
# keeps one Asterisk from looking restarted, while a real restart takes far longer.
RESTART_TOLERANCE = timedelta(seconds=2)
SANDBOX_HOST = "127.0.0.1"
# The label of a supervisor that names no node: the one Asterisk of a deployment without
# nodes, registered as the node of this name (graam_pbx/cluster/nodes.py).
DEFAULT_NODE = "local"


@dataclass(frozen=True, slots=True)
class AmiConfig:
    host: str
    port: int
    username: str
    secret: str = field(repr=False)
    ping_interval: float
    ping_timeout: float
    action_timeout: float
    connect_timeout: float
    backoff_max: float
    backoff_initial: float = 0.2

    @classmethod
    def from_settings(cls, settings: Settings, *, secret: str | None = None) -> AmiConfig:
        """The AMI part of ``settings``; ``secret`` overrides it (the sandbox generates one)."""
        if secret is None and settings.ami_secret is not None:
            secret = settings.ami_secret.get_secret_value()
        if secret is None:
            raise ValueError("no AMI secret: set GRAAM_AMI_SECRET or pass the sandbox's secret")
        return cls(
            host=settings.ami_host or SANDBOX_HOST,
            port=settings.ami_port,
            username=settings.ami_username,
            secret=secret,
            ping_interval=settings.ami_ping_interval,
            ping_timeout=settings.ami_ping_timeout,
            action_timeout=settings.ami_action_timeout,
            connect_timeout=settings.ami_connect_timeout,
            backoff_max=settings.ami_backoff_max,
        )


@dataclass(slots=True)
class AmiState:
    connected: bool = False
    since: datetime | None = None
    last_event_at: float | None = None
    asterisk_startup: datetime | None = None
    asterisk_version: str | None = None
    reconnects: int = 0
    last_error: str | None = None


class AmiSupervisor:
    """Owns the AMI connection; actions never wait for a reconnect and are never replayed.

    After every (re)connection it publishes a resync on the bus. The first connection counts
    as a restart, so every domain starts from a full re-read of Asterisk's state.
    """

    def __init__(
        self,
        config: AmiConfig,
        bus: EventBus,
        *,
        transport_factory: TransportFactory = open_tcp,
        node: str = DEFAULT_NODE,
    ) -> None:
        self._config = config
        self.node = node
        # graam_ami_connected{node}: one series per Asterisk this process is logged in to.
        self._connected_gauge = AMI_CONNECTED.labels(node=node)
        self._bus = bus
        self._transport_factory = transport_factory
        self._state = AmiState()
        self._client: AmiClient | None = None
        self._connected = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._jitter = random.SystemRandom()

    @property
    def state(self) -> AmiState:
        client = self._client
        last_event_at = self._state.last_event_at
        if client is not None and client.last_event_at is not None:
            last_event_at = client.last_event_at
        return replace(self._state, last_event_at=last_event_at)

    async def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="ami-supervisor")

    async def stop(self) -> None:
        """Stop reconnecting, log off and close the connection."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.wait([task])
        client = self._client
        self._set_disconnected()
        if client is not None:
            await client.close()

    def client_or_raise(self) -> AmiClient:
        client = self._client
        if client is None or client.closed:
            raise AmiNotConnected(f"not connected to AMI at {self._config.host}")
        return client

    async def client(self, *, timeout: float = 0.0) -> AmiClient:  # noqa: ASYNC109
        """The live client, waiting up to ``timeout`` seconds for one."""
        if timeout > 0:
            await self.wait_connected(timeout)
        return self.client_or_raise()

    async def wait_connected(self, timeout: float) -> None:  # noqa: ASYNC109
        try:
            async with asyncio.timeout(timeout):
                await self._connected.wait()
        except TimeoutError:
            raise AmiNotConnected(f"no AMI connection within {timeout:g} s") from None

    async def action(
        self,
        name: str,
        fields: Mapping[str, FieldValue] | None = None,
        *,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> Message:
        return await self.client_or_raise().action(name, fields, timeout=timeout)

    async def action_list(
        self,
        name: str,
        fields: Mapping[str, FieldValue] | None = None,
        *,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> list[Message]:
        return await self.client_or_raise().action_list(name, fields, timeout=timeout)

    async def command(self, cli: str, *, timeout: float | None = None) -> str:  # noqa: ASYNC109
        return await self.client_or_raise().command(cli, timeout=timeout)

    async def _run(self) -> None:
        config = self._config
        failed_attempts = 0
        in_outage = False
        while True:
            try:
                client = await self._open()
            except Exception as err:
                failed_attempts += 1
                self._state.last_error = str(err) or type(err).__name__
                if not in_outage:
                    in_outage = True
                    logger.warning(
                        "ami connect failed host=%s port=%d error=%s",
                        config.host,
                        config.port,
                        self._state.last_error,
                    )
                else:
                    logger.debug(
                        "ami connect retry failed attempt=%d error=%s",
                        failed_attempts,
                        self._state.last_error,
                    )
            else:
                if in_outage:
                    logger.info(
                        "ami connection recovered host=%s port=%d retries=%d",
                        config.host,
                        config.port,
                        failed_attempts,
                    )
                else:
                    logger.info("ami connected host=%s port=%d", config.host, config.port)
                in_outage = False
                failed_attempts = 0
                reason = await self._serve(client)
                self._state.last_error = reason
                in_outage = True
                logger.warning(
                    "ami connection lost host=%s port=%d reason=%s",
                    config.host,
                    config.port,
                    reason,
                )
            self._state.reconnects += 1
            AMI_RECONNECTS.inc()
            await asyncio.sleep(self._backoff(failed_attempts))

    def _backoff(self, failed_attempts: int) -> float:
        config = self._config
        ceiling = min(config.backoff_max, config.backoff_initial * 2.0 ** min(failed_attempts, 30))
        return ceiling * self._jitter.uniform(0.5, 1.0)

    async def _open(self) -> AmiClient:
        config = self._config
        booted: asyncio.Future[Message] = asyncio.get_running_loop().create_future()

        def on_event(message: Message) -> None:
            if not booted.done() and message.name == "FullyBooted":
                booted.set_result(message)
            self._bus.publish(message)

        transport = await self._transport_factory(config.host, config.port, config.connect_timeout)
        client = await AmiClient.connect(
            transport,
            config.username,
            config.secret,
            on_event=on_event,
            action_timeout=config.action_timeout,
            login_timeout=config.connect_timeout,
        )
        try:
            fully_booted = await self._wait_booted(client, booted)
            self._state.asterisk_version = await self._read_version(client)
            await self._ask_only(client)
            if client.closed:
                raise AmiDisconnected(f"connection closed after login: {client.close_reason}")
        except BaseException:
            await client.close(logoff=False)
            raise
        self._set_connected(client, fully_booted)
        return client

    async def _wait_booted(self, client: AmiClient, booted: asyncio.Future[Message]) -> Message:
        # FullyBooted reaches a read=system user right after login on a booted Asterisk, and
        # only once boot completes otherwise; actions before it may hit unloaded modules.
        limit = self._config.connect_timeout * 4
        closed = asyncio.create_task(client.wait_closed())
        try:
            async with asyncio.timeout(limit):
                waiters: list[asyncio.Future[Any]] = [booted, closed]
                await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        except TimeoutError:
            raise AmiTimeout(f"no FullyBooted event within {limit:g} s of login") from None
        finally:
            closed.cancel()
        if not booted.done():
            raise AmiDisconnected(f"connection closed before FullyBooted: {client.close_reason}")
        return booted.result()

    def _set_connected(self, client: AmiClient, fully_booted: Message) -> None:
        now = datetime.now(UTC)
        uptime = fully_booted.get("Uptime", "")
        startup = now - timedelta(seconds=int(uptime)) if uptime.isdigit() else None
        previous = self._state.asterisk_startup
        restarted = (
            previous is None or startup is None or abs(startup - previous) > RESTART_TOLERANCE
        )
        self._state.connected = True
        self._state.since = now
        self._state.asterisk_startup = startup
        self._state.last_error = None
        self._client = client
        self._connected.set()
        self._connected_gauge.set(1)
        self._bus.publish_resync(restarted)

    def _set_disconnected(self) -> None:
        client = self._client
        if client is not None and client.last_event_at is not None:
            self._state.last_event_at = client.last_event_at
        self._client = None
        self._connected.clear()
        self._state.connected = False
        self._state.since = None
        self._connected_gauge.set(0)

    async def _serve(self, client: AmiClient) -> str:
        try:
            reason = await self._watch(client)
        except Exception as err:
            logger.exception("ami connection watch failed")
            reason = f"watch failed: {err!r}"
        self._set_disconnected()
        await client.close(logoff=False)
        return reason

    async def _ask_only(self, client: AmiClient) -> None:
        """Ask Asterisk for the bus's events alone (``EventBus.only``), by the connection's
        own filters (action ``Filter``, Asterisk 20+: by event name, no regular expression).
        Answers to actions, list items included, are never filtered. A user without the
        ``system`` right cannot add filters: the connection then reads every event, as
        before, and says so."""
        only = self._bus.only
        if only is None:
            return
        for name in sorted(only):  # names the bus checked when it was made
            try:
                await client.action(
                    "Filter", {"Operation": "Add", "MatchCriteria": f"name({name})"}
                )
            except AmiActionError as err:
                logger.warning(
                    "ami event filter refused; reading every event host=%s error=%s",
                    self._config.host,
                    err.message,
                )
                return

    async def _read_version(self, client: AmiClient) -> str | None:
        try:
            settings = await client.action("CoreSettings")
        except AmiError as err:
            logger.debug("ami CoreSettings failed error=%s", err)
            return self._state.asterisk_version
        return settings.get("AsteriskVersion")

    async def _watch(self, client: AmiClient) -> str:
        # Without pongs a half-open TCP connection looks healthy forever: no event, no error.
        config = self._config
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(config.ping_interval):
                    await client.wait_closed()
            if client.closed:
                return client.close_reason or "connection closed"
            try:
                # A Ping behind a long action (a reload) waits for it: see AmiClient.ping.
                await client.ping(timeout=config.ping_timeout)
            except AmiTimeout:
                return f"no answer to Ping within {config.ping_timeout:g} s"
            except AmiError as err:
                if client.closed:
                    return client.close_reason or str(err)
                logger.warning("ami Ping refused error=%s", err)


class AmiRoutes(Protocol):
    """Which AMI connection acts for a tenant: the connection to the Asterisk it lives on.

    Domains below the cluster layer take this instead of knowing nodes: a process with one
    Asterisk routes everything to it (``OneAsterisk``), one driving several nodes routes by
    each tenant's placement (``graam_pbx/cluster/supervisors.py``).
    """

    async def for_tenant(self, tenant_id: int) -> AmiSupervisor:
        """The connection to ``tenant_id``'s Asterisk."""
        ...

    async def partition(
        self, tenant_ids: set[int] | None
    ) -> list[tuple[AmiSupervisor, set[int] | None]]:
        """``tenant_ids`` (None: every tenant) split by the connection that acts for them;
        a part of None means every tenant of that connection's Asterisk."""
        ...


def ami_routes(runtime: object) -> AmiRoutes:
    """The AMI connection of each tenant's node, from the process's runtime (the app's
    ``state.runtime``): its node supervisors, else its one Asterisk."""
    nodes: AmiRoutes | None = getattr(runtime, "nodes", None)
    if nodes is not None:
        return nodes
    ami: AmiSupervisor | None = getattr(runtime, "ami", None)
    if ami is None:
        raise Unavailable("no Asterisk is reachable from this process", retry_after=5)
    return OneAsterisk(ami)


class OneAsterisk:
    """Every tenant on the one Asterisk of ``ami``: what a deployment without nodes has."""

    def __init__(self, ami: AmiSupervisor) -> None:
        self.ami = ami

    async def for_tenant(self, tenant_id: int) -> AmiSupervisor:
        return self.ami

    async def partition(
        self, tenant_ids: set[int] | None
    ) -> list[tuple[AmiSupervisor, set[int] | None]]:
        return [(self.ami, tenant_ids)]
