"""One AMI connection: login, a single reader task, actions matched to answers by ActionID."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import itertools
import logging
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import Counter

from graam_pbx.ami.errors import (
    AmiActionError,
    AmiDisconnected,
    AmiError,
    AmiLoginError,
    AmiNotConnected,
    AmiProtocolError,
    AmiTimeout,
)
from graam_pbx.ami.protocol import FieldValue, FrameDecoder, Message, encode_action
from graam_pbx.ami.transport import AmiTransport
from graam_pbx.metrics import AMI_ACTION_ERRORS, AMI_ACTION_SECONDS, AMI_EVENTS, AMI_HANDLER_ERRORS

logger = logging.getLogger(__name__)

EventCallback = Callable[[Message], None]

LOGOFF_TIMEOUT = 1.0
# AMI_EVENTS labelled once per event name: a busy Asterisk sends thousands of events a second.
_EVENT_COUNTERS: dict[str, Counter] = {}


@dataclass(eq=False)
class _Pending:
    action: str
    future: asyncio.Future[Message]
    collect: bool
    deadline: float = 0.0  # monotonic time the waiter gives up at
    events: list[Message] = field(default_factory=list)


class AmiClient:
    """One logged-in AMI connection; it never reconnects and never re-sends an action."""

    def __init__(
        self, transport: AmiTransport, *, on_event: EventCallback, action_timeout: float = 10.0
    ) -> None:
        if inspect.iscoroutinefunction(on_event):
            # The reader must never wait on a handler: Asterisk drops a client that stops
            # reading for longer than its writetimeout (100 ms by default).
            raise TypeError("on_event must be a plain callable; queue slow work elsewhere")
        self._transport = transport
        self._on_event = on_event
        self._action_timeout = action_timeout
        self._decoder = FrameDecoder()
        self._pending: dict[str, _Pending] = {}
        self._collecting = 0  # actions in flight answered by an event list
        self._id_prefix = secrets.token_hex(4)
        self._id_counter = itertools.count(1)
        self._closed = asyncio.Event()
        self._close_reason: str | None = None
        self._reader: asyncio.Task[None] | None = None
        self.last_event_at: float | None = None
        self._event_counts: dict[str, int] = {}  # since the last read, by event name

    @classmethod
    async def connect(
        cls,
        transport: AmiTransport,
        username: str,
        secret: str,
        *,
        on_event: EventCallback,
        action_timeout: float = 10.0,
        login_timeout: float = 5.0,
    ) -> AmiClient:
        """Start reading ``transport`` and log in; returns only once Asterisk accepted the login."""
        client = cls(transport, on_event=on_event, action_timeout=action_timeout)
        client._reader = asyncio.create_task(client._read_loop(), name="ami-reader")
        try:
            await client.action(
                "Login", {"Username": username, "Secret": secret}, timeout=login_timeout
            )
        except AmiActionError as err:
            await client._terminate("login refused")
            raise AmiLoginError(f"AMI login refused for {username!r}: {err.message}") from err
        except BaseException:
            await client._terminate("login failed")
            raise
        return client

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    @property
    def close_reason(self) -> str | None:
        return self._close_reason

    @property
    def greeting(self) -> str | None:
        return self._decoder.greeting

    async def wait_closed(self) -> None:
        await self._closed.wait()

    async def action(
        self,
        name: str,
        fields: Mapping[str, FieldValue] | None = None,
        *,
        # Each action owns its deadline so that a timeout is counted per action and the
        # pending entry is dropped in one place; callers need no asyncio.timeout of their own.
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> Message:
        """Send one action and return its response; raises on ``Response: Error``."""
        pending = await self._roundtrip(name, fields, timeout, collect=False)
        return pending.future.result()

    async def action_list(
        self,
        name: str,
        fields: Mapping[str, FieldValue] | None = None,
        *,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> list[Message]:
        """Send an action answered by an event list; return the list's items.

        The closing ``...Complete`` event is not among them, and no item reaches ``on_event``.
        """
        pending = await self._roundtrip(name, fields, timeout, collect=True)
        return pending.events

    async def command(self, cli: str, *, timeout: float | None = None) -> str:  # noqa: ASYNC109
        """Run a CLI command and return its output lines joined by newlines.

        A CLI command that fails (``dialplan show`` of a missing context) still answers with
        its output, under ``Response: Error``: that output is the answer, not an error.
        """
        try:
            response = await self.action("Command", {"Command": cli}, timeout=timeout)
        except AmiActionError as err:
            if err.response is None or not err.response.getall("Output"):
                raise
            response = err.response
        return "\n".join(response.getall("Output"))

    async def ping(self, *, timeout: float) -> Message:  # noqa: ASYNC109
        """Send ``Ping``; ``timeout`` counts from when the actions ahead of it are answered.

        Asterisk runs one connection's actions one after the other, and sends nothing at all
        on it meanwhile: a Ping sent behind a long action (``module reload res_pjsip.so``
        takes seconds) is answered only after it. So while an action sent before the Ping is
        still within its own timeout, the silence is that action's, not a dead Asterisk's;
        the Ping gets ``timeout`` seconds once the last of them is answered or gives up.
        """
        ahead = [p for p in self._pending.values() if not p.future.done()]
        # An upper bound only: the loop below decides when the wait is over.
        bound = max([0.0, *(p.deadline - time.monotonic() for p in ahead)]) + timeout + 1.0
        answer = asyncio.ensure_future(self.action("Ping", timeout=bound))
        deadline = time.monotonic() + timeout
        try:
            while True:
                now = time.monotonic()
                ahead = [p for p in ahead if not p.future.done() and p.deadline > now]
                if ahead:
                    waiters: set[asyncio.Future[Any]] = {answer, *(p.future for p in ahead)}
                    await asyncio.wait(
                        waiters,
                        timeout=max(p.deadline for p in ahead) - now,
                        return_when=asyncio.FIRST_COMPLETED,
                    )
                    deadline = max(deadline, time.monotonic() + timeout)
                else:
                    await asyncio.wait({answer}, timeout=max(0.0, deadline - now))
                if answer.done():
                    return answer.result()
                if not ahead and time.monotonic() >= deadline:
                    AMI_ACTION_ERRORS.labels(action="Ping", reason="timeout").inc()
                    raise AmiTimeout(f"Ping: no answer from Asterisk within {timeout:g} s")
        finally:
            if not answer.done():
                answer.cancel()
                await asyncio.wait({answer})

    async def close(self, *, logoff: bool = True) -> None:
        """Log off (best effort, briefly), close the transport and fail what is in flight."""
        if self._closed.is_set():
            return
        self._close_reason = self._close_reason or "closed by client"
        if logoff:
            with contextlib.suppress(AmiError):
                await self.action("Logoff", timeout=LOGOFF_TIMEOUT)
        await self._terminate(self._close_reason)

    async def _terminate(self, reason: str) -> None:
        self._close_reason = self._close_reason or reason
        if self._reader is not None and not self._reader.done():
            self._reader.cancel()
            await asyncio.wait([self._reader])
        # A reader cancelled before its first step never ran its own cleanup.
        self._finish(self._close_reason)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(LOGOFF_TIMEOUT):
                await self._transport.wait_closed()

    def _finish(self, reason: str) -> None:
        if self._closed.is_set():
            return
        self._close_reason = self._close_reason or reason
        for pending in self._pending.values():
            if not pending.future.done():
                pending.future.set_exception(
                    AmiDisconnected(f"{pending.action}: {self._close_reason}")
                )
        self._transport.close()
        self._closed.set()

    async def _roundtrip(
        self,
        name: str,
        fields: Mapping[str, FieldValue] | None,
        timeout: float | None,  # noqa: ASYNC109
        *,
        collect: bool,
    ) -> _Pending:
        if self._closed.is_set():
            raise AmiNotConnected(f"{name}: AMI connection closed ({self._close_reason})")
        action_id = f"{self._id_prefix}-{next(self._id_counter)}"
        data = encode_action(name, fields or {}, action_id)
        limit = self._action_timeout if timeout is None else timeout
        started = time.monotonic()
        pending = _Pending(
            name, asyncio.get_running_loop().create_future(), collect, deadline=started + limit
        )
        self._pending[action_id] = pending
        self._collecting += collect
        try:
            self._transport.write(data)
            async with asyncio.timeout(limit):
                await self._transport.drain()
                await pending.future
        except AmiActionError:
            AMI_ACTION_SECONDS.labels(action=name).observe(time.monotonic() - started)
            AMI_ACTION_ERRORS.labels(action=name, reason="error").inc()
            raise
        except AmiDisconnected:
            AMI_ACTION_ERRORS.labels(action=name, reason="disconnected").inc()
            raise
        except TimeoutError:
            AMI_ACTION_ERRORS.labels(action=name, reason="timeout").inc()
            raise AmiTimeout(f"{name}: no answer from Asterisk within {limit:g} s") from None
        except OSError as err:
            AMI_ACTION_ERRORS.labels(action=name, reason="disconnected").inc()
            raise AmiDisconnected(f"{name}: write failed: {err}") from err
        finally:
            del self._pending[action_id]
            self._collecting -= collect
            if not pending.future.done():
                pending.future.cancel()
        AMI_ACTION_SECONDS.labels(action=name).observe(time.monotonic() - started)
        return pending

    async def _read_loop(self) -> None:
        reason = "connection closed by Asterisk"
        try:
            while data := await self._transport.read():
                for message in self._decoder.feed(data):
                    self._dispatch(message)
                if self._event_counts:
                    self._count_events()
        except AmiProtocolError as err:
            reason = str(err)
        except OSError as err:
            reason = f"read failed: {err!r}"
        except Exception as err:
            logger.exception("ami reader failed")
            reason = f"reader failed: {err!r}"
        finally:
            self._finish(reason)

    def _dispatch(self, message: Message) -> None:
        name = message.event
        if name is not None:
            self._deliver(message, name)
        elif message.is_response:
            self._resolve(message)
        else:
            logger.debug("ami message neither event nor response fields=%d", len(message))

    def _count_events(self) -> None:
        """Counted once per read rather than once per event (hundreds of events per read)."""
        self.last_event_at = time.monotonic()
        for name, count in self._event_counts.items():
            counter = _EVENT_COUNTERS.get(name)
            if counter is None:
                counter = _EVENT_COUNTERS[name] = AMI_EVENTS.labels(event=name)
            counter.inc(count)
        self._event_counts.clear()

    def _resolve(self, response: Message) -> None:
        pending = self._pending.get(response.action_id or "")
        if pending is None or pending.future.done():
            # The waiter gave up (timeout, cancellation); the answer has no one left to tell.
            logger.debug("ami response without waiter action_id=%s", response.action_id)
            return
        if response.name.lower() == "error":
            error = AmiActionError(pending.action, response.get("Message", ""), response)
            pending.future.set_exception(error)
        elif pending.collect and response.get("EventList", "").lower() == "start":
            return
        else:
            pending.future.set_result(response)

    def _deliver(self, event: Message, name: str) -> None:
        self._event_counts[name] = self._event_counts.get(name, 0) + 1
        # Only the items of an event list carry the ActionID that matters here; most events
        # arrive while no list is awaited, and need no look at their headers.
        pending = None
        if self._collecting and (action_id := event.action_id) is not None:
            pending = self._pending.get(action_id)
        if pending is not None and pending.collect:
            if event.get("EventList", "").lower() == "complete":
                if not pending.future.done():
                    pending.future.set_result(event)
            else:
                pending.events.append(event)
            return
        try:
            self._on_event(event)
        except Exception:
            AMI_HANDLER_ERRORS.labels(subscriber="on_event").inc()
            logger.exception("ami on_event failed event=%s", event.name)
