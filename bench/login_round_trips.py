"""Round trips to Postgres, counted where they leave the process: asyncpg's protocol.

A request's cost in the database is mostly its round trips (each one a wait, a wake-up and a
trip through the driver), so the login path is held to a count, not a timing. Every awaited
call of the protocol's network methods is one round trip: a bind-and-execute of a prepared
statement, a simple query (BEGIN, COMMIT, ROLLBACK), or setup, kept apart: a prepare and the
driver's type lookups, made only the first time a connection sees a statement.

Counted only in the context that entered ``counting()``: a request made there through an
in-process transport (httpx's ASGITransport runs the app in the caller's task) is counted,
the app's own workers running beside it are not. The pool's checkout ping (a BEGIN, a ``;``
and a ROLLBACK: graam_pbx.db pings only a connection that sat idle for ``IDLE_BEFORE_PING``)
is counted apart: a request on a warm pool, as under a storm, makes none, and one that does
shows as such.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event
from sqlalchemy.pool import Pool

# The SQL of SQLAlchemy's asyncpg ping (the one graam_pbx.db's pool makes on checking out an
# idle connection), between its own BEGIN and ROLLBACK.
_PING = ";"


@dataclass
class Tally:
    """What one piece of work sent to Postgres, in order."""

    sent: list[tuple[str, str]] = field(default_factory=list)  # (kind, SQL)

    @property
    def setup(self) -> int:
        """Round trips of a connection's first use of a statement: its prepare and the
        driver's lookups of the types it names; a warm connection makes none."""
        return sum(1 for kind, _ in self.sent if kind in ("prepare", "setup"))

    @property
    def pings(self) -> int:
        """Round trips of the pool's checkout pings: each is its BEGIN, its ``;`` and its
        ROLLBACK."""
        return 3 * sum(1 for kind, sql in self.sent if kind == "execute" and sql == _PING)

    @property
    def transactions(self) -> int:
        """Transactions begun, pings' own excluded."""
        begins = sum(1 for kind, sql in self.sent if kind == "query" and sql.startswith("BEGIN"))
        return begins - self.pings // 3

    @property
    def statements(self) -> int:
        """Statements executed, pings' own excluded."""
        executes = sum(1 for kind, _ in self.sent if kind == "execute")
        return executes - self.pings // 3

    @property
    def round_trips(self) -> int:
        """Every round trip but setup: statements, BEGIN/COMMIT/ROLLBACK, pings."""
        return len(self.sent) - self.setup


_current: contextvars.ContextVar[Tally | None] = contextvars.ContextVar(
    "graam_bench_round_trips", default=None
)


# Where each counted method of asyncpg's protocol takes its SQL (or statement) positionally.
_POSITIONS = {"prepare": 1, "bind_execute": 0, "bind_execute_many": 0, "query": 0}


class _CountingProtocol:
    """asyncpg's protocol, its network calls noted in the current context's tally."""

    def __init__(self, protocol: Any) -> None:
        self._inner = protocol

    def _counted(self, kind: str, method_name: str, sql: str) -> Any:
        """The inner method, noting each call's (kind, SQL); ``sql`` names the argument
        holding the SQL, or the prepared statement whose SQL it is."""
        method = getattr(self._inner, method_name)
        position = _POSITIONS[method_name]

        async def call(*args: Any, **kwargs: Any) -> Any:
            tally = _current.get()
            if tally is not None:
                value = kwargs[sql] if sql in kwargs else args[position]
                # The driver's own type lookups (once per connection and type) are setup.
                own = getattr(value, "ignore_custom_codec", False)
                tally.sent.append(("setup" if own else kind, str(getattr(value, "query", value))))
            return await method(*args, **kwargs)

        return call

    @property
    def prepare(self) -> Any:
        return self._counted("prepare", "prepare", "query")

    @property
    def bind_execute(self) -> Any:
        return self._counted("execute", "bind_execute", "state")

    @property
    def bind_execute_many(self) -> Any:
        return self._counted("execute", "bind_execute_many", "state")

    @property
    def query(self) -> Any:
        return self._counted("query", "query", "query")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def _wrap(dbapi_connection: Any, _: Any) -> None:
    driver = dbapi_connection.driver_connection
    if not isinstance(driver._protocol, _CountingProtocol):
        driver._protocol = _CountingProtocol(driver._protocol)


@contextlib.contextmanager
def instrumented() -> Iterator[None]:
    """Every pool connection made meanwhile (of any engine) can be counted; nests."""
    if event.contains(Pool, "connect", _wrap):
        yield
        return
    event.listen(Pool, "connect", _wrap)
    try:
        yield
    finally:
        event.remove(Pool, "connect", _wrap)


@contextlib.contextmanager
def counting() -> Iterator[Tally]:
    """The round trips this context sends meanwhile (on connections made under
    ``instrumented()``)."""
    tally = Tally()
    token = _current.set(tally)
    try:
        yield tally
    finally:
        _current.reset(token)
