"""Preview calls asked in an API process, placed by the active worker's dialer.

An API process runs no dialer. ``RemoteDialer`` (in the API process) sends the agent's click
to the active worker with ``pg_notify``, naming the attempt's channel id it chose; the
worker's ``PreviewRequests`` has its dialer place the call with that channel id and answers
on the reply channel (the attempt, or the domain's error); the API process answers as a
process with a dialer does.

Exactly one call per click, a worker takeover included:

- the channel id is the attempt's, and unique: whatever the number of times a request is
  heard, by one worker or by its successor, it makes one attempt at most; a request heard
  again after its attempt was written is answered with that attempt;
- the Originate is sent once, by the worker that committed the attempt, right after;
- an unanswered request is sent again every ``RESEND`` seconds until ``DEADLINE``: a request
  the dead worker never heard, or heard but never committed, is placed by its successor;
  past the deadline the API answers 503 (``dialer-unavailable``) and nothing was placed
  unless a worker still answers it later, and then once.

What is not covered is the dialer's own window: a worker that dies between the attempt's
commit and its Originate leaves an attempt the successor's reconciliation ends as lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

import asyncpg
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from graam_pbx.campaigns import placing
from graam_pbx.campaigns.models import CampaignAttempt
from graam_pbx.campaigns.outcomes import CHANNEL_PREFIX
from graam_pbx.campaigns.worker import DialerUnavailable, DialerWorker
from graam_pbx.cluster import signals
from graam_pbx.cluster.lease import lease_holder
from graam_pbx.errors import Conflict, GraamError, NotFound

log = logging.getLogger(__name__)

RESEND = 2.0  # seconds an API process waits for the worker's answer before asking again
# Seconds an API process asks for: a takeover (the lease interval, then the new worker's
# AMI login and dialer start) fits in it.
DEADLINE = 20.0
CONNECT_TIMEOUT = 5.0

# The errors a worker answers, rebuilt in the API process by their stable id.
_ERRORS: dict[str, type[GraamError]] = {
    placing.CallRefused.error_id: placing.CallRefused,
    placing.AgentNotReady.error_id: placing.AgentNotReady,
    DialerUnavailable.error_id: DialerUnavailable,
    NotFound.error_id: NotFound,
    Conflict.error_id: Conflict,
}


class PreviewRequests:
    """In the worker: the preview calls API processes ask for, placed by its dialer.

    ``heard`` is the LISTEN handler (on the lease's connection); while the component is not
    started (the worker still starting, or fenced) requests are left unanswered: the API
    process asks again.
    """

    def __init__(self, sessions: async_sessionmaker[AsyncSession], dialer: DialerWorker) -> None:
        self._sessions = sessions
        self._dialer = dialer
        self._started = False
        self._in_flight: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.answered = 0

    async def start(self) -> None:
        self._started = True

    async def stop(self) -> None:
        self._started = False
        tasks, self._tasks = self._tasks, set()
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)

    def heard(self, payload: str) -> None:
        if not self._started:
            return
        try:
            request = json.loads(payload)
            channel_id = str(request["channel"])
            ids = tuple(int(request[key]) for key in ("tenant", "campaign", "contact", "agent"))
        except (ValueError, KeyError, TypeError):
            log.warning("preview request not understood", extra={"payload": payload[:80]})
            return
        if not channel_id.startswith(CHANNEL_PREFIX) or channel_id in self._in_flight:
            return  # a repeat of a request being placed: its answer is on its way
        self._in_flight.add(channel_id)
        task = asyncio.create_task(self._answer(channel_id, *ids), name="preview-request")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer(
        self, channel_id: str, tenant_id: int, campaign_id: int, contact_id: int, agent_id: int
    ) -> None:
        try:
            reply = await self._place(channel_id, tenant_id, campaign_id, contact_id, agent_id)
            async with self._sessions() as session, session.begin():
                await session.execute(
                    select(func.pg_notify(signals.PREVIEW_REPLY_CHANNEL, json.dumps(reply)))
                )
            self.answered += 1
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("preview request not answered; the API process asks again")
        finally:
            self._in_flight.discard(channel_id)

    async def _place(
        self, channel_id: str, tenant_id: int, campaign_id: int, contact_id: int, agent_id: int
    ) -> dict[str, Any]:
        done = await self._written(channel_id, tenant_id)
        if done is not None:
            return done
        try:
            attempt_id = await self._dialer.dial_preview(
                tenant_id, campaign_id, contact_id, agent_id, channel_id=channel_id
            )
        except IntegrityError:
            pass  # written meanwhile by another worker (one fenced out): answered from it
        except GraamError as err:
            done = await self._written(channel_id, tenant_id)
            if done is not None:
                return done
            # Nothing written: unavailable is worth asking again (a starting dialer).
            retry = isinstance(err, DialerUnavailable)
            return _error(channel_id, err, retry=retry)
        else:
            return {"channel": channel_id, "attempt": attempt_id}
        return await self._written(channel_id, tenant_id) or _error(
            channel_id, DialerUnavailable("the call was not placed"), retry=True
        )

    async def _written(self, channel_id: str, tenant_id: int) -> dict[str, Any] | None:
        """The answer to a request whose attempt is already written, if it is."""
        async with self._sessions() as session:
            attempt = await session.scalar(
                select(CampaignAttempt).where(
                    CampaignAttempt.channel_id == channel_id,
                    CampaignAttempt.tenant_id == tenant_id,
                )
            )
        if attempt is None:
            return None
        if attempt.dial_status == placing.NOT_SENT:
            return _error(
                channel_id, DialerUnavailable("Asterisk did not take the call"), retry=False
            )
        return {"channel": channel_id, "attempt": attempt.id}


def _error(channel_id: str, err: GraamError, *, retry: bool) -> dict[str, Any]:
    return {
        "channel": channel_id,
        "error": {"id": err.error_id, "message": err.message, "details": err.details},
        "retry": retry,
    }


class RemoteDialer:
    """In an API process: ``dial_preview`` as the dialer's, answered by the active worker."""

    def __init__(
        self, database_url: str, *, resend: float = RESEND, deadline: float = DEADLINE
    ) -> None:
        self._url = database_url
        self._resend = resend
        self._deadline = deadline

    async def dial_preview(
        self, tenant_id: int, campaign_id: int, contact_id: int, agent_user_id: int
    ) -> int:
        channel_id = placing.new_channel_id()
        request = json.dumps(
            {
                "channel": channel_id,
                "tenant": tenant_id,
                "campaign": campaign_id,
                "contact": contact_id,
                "agent": agent_user_id,
            }
        )
        replies: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

        def heard(_: Any, pid: int, channel: str, payload: str) -> None:
            del pid, channel
            with contextlib.suppress(ValueError):
                reply = json.loads(payload)
                if isinstance(reply, dict) and reply.get("channel") == channel_id:
                    replies.put_nowait(reply)

        try:
            connection = await asyncpg.connect(self._url, timeout=CONNECT_TIMEOUT)
        except (OSError, TimeoutError, asyncpg.PostgresError) as err:
            raise DialerUnavailable("the database is unreachable", retry_after=5) from err
        try:
            await connection.add_listener(signals.PREVIEW_REPLY_CHANNEL, heard)
            if await lease_holder(connection) is None:
                raise DialerUnavailable("no worker is active", retry_after=5)
            async with asyncio.timeout(self._deadline):
                while True:
                    await connection.execute(
                        "SELECT pg_notify($1, $2)", signals.PREVIEW_CHANNEL, request
                    )
                    try:
                        async with asyncio.timeout(self._resend):
                            reply = await replies.get()
                    except TimeoutError:
                        continue  # unheard (a takeover): asked again, the same channel id
                    if "attempt" in reply:
                        return int(reply["attempt"])
                    if not reply.get("retry"):
                        raise _rebuilt(reply.get("error") or {})
                    await asyncio.sleep(self._resend)
        except TimeoutError as err:
            raise DialerUnavailable("no worker placed the call", retry_after=5) from err
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as err:
            raise DialerUnavailable("the database is unreachable", retry_after=5) from err
        finally:
            with contextlib.suppress(Exception):
                await connection.close(timeout=CONNECT_TIMEOUT)


def _rebuilt(error: dict[str, Any]) -> GraamError:
    kind = _ERRORS.get(str(error.get("id")), DialerUnavailable)
    details = error.get("details")
    return kind(str(error.get("message") or "the call was not placed"), **(details or {}))
