"""The database engine, its sessions and the declarative base of every model."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import (
    BigInteger,
    DateTime,
    ForeignKey,
    Integer,
    MetaData,
    Select,
    event,
    func,
    select,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError, IntegrityError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, declared_attr, mapped_column

from graam_pbx.errors import Conflict, NotFound, PreconditionFailed

# Stable constraint names: alembic migrations can name what they drop.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Timestamped:
    """created_at / updated_at, always with time zone."""

    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True),
        server_default=func.now(),
        # Set in Python so the new value is known after flush without a refetch.
        onupdate=lambda: datetime.now(UTC),
        nullable=False,
    )


class TenantOwned:
    """A row that belongs to one tenant; services filter every query on ``tenant_id``."""

    tenant_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("tenants.id", ondelete="RESTRICT"), index=True
    )


class Versioned:
    """Optimistic locking: ``version`` grows on every update and is the object's ETag."""

    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)

    @declared_attr.directive
    def __mapper_args__(cls) -> dict[str, Any]:
        return {"version_id_col": cls.__table__.c.version}  # type: ignore[attr-defined]


ModelT = TypeVar("ModelT", bound=Base)


async def get_in_tenant(
    session: AsyncSession, model: type[ModelT], tenant_id: int, object_id: int
) -> ModelT:
    """The tenant's object, or NotFound: another tenant's object does not exist for it."""
    statement: Select[ModelT] = select(model).where(
        model.id == object_id,  # type: ignore[attr-defined]
        model.tenant_id == tenant_id,  # type: ignore[attr-defined]
    )
    found = await session.scalar(statement)
    if found is None:
        raise NotFound(f"no {model.__tablename__.removesuffix('s').replace('_', ' ')} {object_id}")
    return found


async def keyset_page(
    session: AsyncSession,
    statement: Select[ModelT],
    id_column: Any,
    after_id: int | None,
    limit: int,
) -> tuple[list[ModelT], int | None]:
    """One page ordered by id after ``after_id``; the id to continue after, if any."""
    if after_id is not None:
        statement = statement.where(id_column > after_id)
    rows = list((await session.scalars(statement.order_by(id_column).limit(limit + 1))).all())
    if len(rows) > limit:
        rows = rows[:limit]
        return rows, int(rows[-1].id)  # type: ignore[attr-defined]
    return rows, None


def ensure_version(obj: Versioned, expected: int | None) -> None:
    """Refuse an update made from a stale read: If-Match named another version."""
    if expected is not None and obj.version != expected:
        raise PreconditionFailed(
            "the object changed since it was read", current_version=obj.version
        )


def violated_constraint(err: IntegrityError) -> str | None:
    """The name of the constraint (or unique index) Postgres says an integrity error broke."""
    name: str | None = getattr(err.driver_exception, "constraint_name", None)
    return name


async def flush_or_conflict(
    session: AsyncSession,
    *,
    taken: Mapping[str, tuple[str, object]] | None = None,
    otherwise: str | None = None,
) -> None:
    """Flush; a broken constraint named in ``taken`` is a Conflict on its (field, value).

    Any other integrity error is a Conflict saying ``otherwise`` when given, else raised as is.
    """
    # No savepoint: a conflict fails the request, whose transaction the caller rolls back
    # (and begin_nested() would flush the pending change before the savepoint anyway).
    try:
        await session.flush()
    except IntegrityError as err:
        constraint = violated_constraint(err)
        if taken is not None and constraint is not None and constraint in taken:
            field, value = taken[constraint]
            raise Conflict(f"{field} {value!r} is already taken", field=field) from err
        if otherwise is not None:
            raise Conflict(otherwise) from err
        raise


def async_url(url: str) -> str:
    """The SQLAlchemy asyncpg form of any ``postgresql://`` URL."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres", "postgresql+psycopg2"):
        parsed = parsed.set(drivername="postgresql+asyncpg")
    return parsed.render_as_string(hide_password=False)


def plain_url(url: str) -> str:
    """The libpq form (``postgresql://``) of a URL, for asyncpg used directly."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


# A pooled connection is pinged at checkout only when it sat unused this long: under load
# connections are never idle and a request (an agent's login included) costs no extra round
# trips; one that sat through a database restart is pinged, found dead and replaced before
# the request uses it. (SQLAlchemy's pre-ping would add three round trips to every request.)
IDLE_BEFORE_PING = 5.0


def create_engine(url: str, *, pool_size: int = 20) -> AsyncEngine:
    """An asyncpg engine whose pool notices connections that died with the server.

    The pool opens at most ``pool_size`` connections and keeps every one it opened: no
    overflow connection is closed when a burst ends, to be opened again at the next. A new
    connection costs Postgres a process and a SCRAM exchange, and the driver a look-up of the
    array types a statement returns (``bigint[]`` and ``timestamptz[]`` of ``agent_login``),
    so a pool that shed its overflow after each burst of logins paid all of that again in
    the next one (``bench.login_storm``).
    """
    engine = create_async_engine(
        async_url(url),
        pool_size=pool_size,
        max_overflow=0,
        pool_timeout=5,
    )
    _ping_when_idle(engine)
    return engine


def _ping_when_idle(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "checkin")
    def returned(_: Any, record: Any) -> None:
        record.info["returned_at"] = time.monotonic()

    @event.listens_for(engine.sync_engine, "checkout")
    def taken(dbapi_connection: Any, record: Any, __: Any) -> None:
        since = record.info.get("returned_at")
        if since is None or time.monotonic() - since < IDLE_BEFORE_PING:
            return
        try:
            dbapi_connection.ping()
        except Exception as err:
            # The pool discards this connection and takes (or opens) another one.
            raise DisconnectionError("an idle pooled connection did not answer") from err


# session.info: send the changes a transaction commits to other processes (pg_notify).
NOTIFY_KEY = "graam_notify_changes"


def session_factory(
    engine: AsyncEngine,
    *,
    on_config_change: Callable[[set[int]], None] | None = None,
    on_agent_change: Callable[[set[int]], None] | None = None,
    notify_changes: bool = False,
) -> async_sessionmaker[AsyncSession]:
    """Sessions whose committed configuration changes are announced to ``on_config_change``
    (graam_pbx.asterisk.changes notes them), and whose committed agent logins, logouts and
    pauses to ``on_agent_change`` (graam_pbx.agents.sessions notes them), by tenant.

    With ``notify_changes`` (an API process, where neither the applier nor the agent worker
    runs), configuration changes are also sent with ``pg_notify`` inside the committing
    transaction, for the active worker (graam_pbx.cluster.signals); its agent changes go to
    an ``on_agent_change`` that tells the worker after the commit
    (graam_pbx.cluster.agent_signals).
    """
    info: dict[str, Any] = {}
    if on_config_change:
        info["on_config_change"] = on_config_change
    if on_agent_change:
        info["on_agent_change"] = on_agent_change
    if notify_changes:
        info[NOTIFY_KEY] = True
    return async_sessionmaker(engine, expire_on_commit=False, info=info)


async def session_scope(
    factory: async_sessionmaker[AsyncSession],
) -> AsyncIterator[AsyncSession]:
    """One session in one transaction; the caller's work commits together or not at all."""
    async with factory() as session, session.begin():
        yield session


MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def _alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["database_url"] = url
    return config


# Advisory lock taken around start-up work that must not run twice at once (the schema's
# migration, the first run's seed): several processes of one deployment may start together.
STARTUP_LOCK_KEY = 0x67726161_6D000000


@asynccontextmanager
async def startup_lock(url: str) -> AsyncIterator[None]:
    """Hold the deployment's start-up lock (waiting for another process's start-up)."""
    connection = await asyncpg.connect(plain_url(url))
    try:
        await connection.execute("SELECT pg_advisory_lock($1)", STARTUP_LOCK_KEY)
        yield
    finally:
        await connection.close()  # the lock ends with its session


async def migrate(url: str, revision: str = "head") -> str | None:
    """Upgrade the schema to ``revision``; returns the revision the database is then at."""
    config = _alembic_config(url)
    # alembic is synchronous and runs its own event loop: keep it off ours.
    await asyncio.to_thread(command.upgrade, config, revision)
    return await current_revision(url)


async def downgrade(url: str, revision: str = "base") -> None:
    """Downgrade the schema to ``revision`` (``base`` drops every table)."""
    await asyncio.to_thread(command.downgrade, _alembic_config(url), revision)


async def current_revision(url: str) -> str | None:
    """The alembic revision the database is at, or None when it was never migrated."""
    engine = create_engine(url, pool_size=2)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(
                lambda sync: MigrationContext.configure(sync).get_current_revision()
            )
    finally:
        await engine.dispose()
