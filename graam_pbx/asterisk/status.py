"""Configuration generations in Postgres: bumped with each change, marked when live.

A tenant's ``committed`` generation grows in the very transaction that changes its
configuration (graam_pbx.asterisk.changes), so a snapshot that reads generation *g* holds
exactly the changes up to *g*. The applier sets ``applied`` to *g* once that snapshot's
files are written and every reload they needed has succeeded, and records what failed
otherwise. Plain SQL: this runs inside other transactions' commit and in the applier.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.types import BigInteger, Boolean, Text

_IDS = ARRAY(BigInteger())

# One statement, rows locked in tenant order: two transactions bumping overlapping tenants
# wait for each other instead of deadlocking.
BUMP = text(
    """
    INSERT INTO config_generations AS g (tenant_id, committed, committed_at, pending_since)
    SELECT t.id, 1, clock_timestamp(), clock_timestamp()
      FROM tenants AS t
     WHERE (:every AND t.status <> 'terminated') OR t.id = ANY(:ids)
     ORDER BY t.id
    ON CONFLICT (tenant_id) DO UPDATE
       SET committed = g.committed + 1,
           committed_at = excluded.committed_at,
           pending_since = COALESCE(g.pending_since, excluded.pending_since)
    """
).bindparams(bindparam("ids", type_=_IDS), bindparam("every", type_=Boolean()))


def bump_parameters(tenant_ids: Iterable[int], every: bool) -> dict[str, Any]:
    return {"ids": sorted(set(tenant_ids)), "every": every}


@dataclass(frozen=True)
class Generation:
    tenant_id: int
    committed: int
    pending_since: datetime | None
    failing_since: datetime | None
    last_error: str | None


async def read_generations(
    connection: AsyncConnection, tenant_ids: Iterable[int] | None
) -> list[Generation]:
    """The generations of these tenants (None: every tenant), as of the caller's snapshot."""
    statement = text(
        """
        SELECT t.id, COALESCE(g.committed, 0), g.pending_since, g.failing_since, g.last_error
          FROM tenants AS t LEFT JOIN config_generations AS g ON g.tenant_id = t.id
         WHERE :every OR t.id = ANY(:ids)
        """
    ).bindparams(bindparam("ids", type_=_IDS), bindparam("every", type_=Boolean()))
    every = tenant_ids is None
    rows = await connection.execute(
        statement, {"ids": [] if tenant_ids is None else sorted(tenant_ids), "every": every}
    )
    return [Generation(*row) for row in rows]


async def mark_applied(connection: AsyncConnection, generations: Mapping[int, int]) -> None:
    """These tenants' generations are live (tenant → generation)."""
    if not generations:
        return
    statement = text(
        """
        INSERT INTO config_generations AS g (tenant_id, applied, applied_at)
        SELECT v.tenant_id, v.gen, clock_timestamp()
          FROM unnest(:ids, :gens) AS v(tenant_id, gen)
          JOIN tenants AS t ON t.id = v.tenant_id
        ON CONFLICT (tenant_id) DO UPDATE
           SET applied = GREATEST(g.applied, excluded.applied),
               applied_at = excluded.applied_at,
               pending_since = CASE WHEN g.committed <= excluded.applied THEN NULL
                                    ELSE g.committed_at END,
               last_error = NULL,
               failing_since = NULL
        """
    ).bindparams(bindparam("ids", type_=_IDS), bindparam("gens", type_=_IDS))
    ids = sorted(generations)
    await connection.execute(statement, {"ids": ids, "gens": [generations[i] for i in ids]})


async def mark_failing(connection: AsyncConnection, errors: Mapping[int, str]) -> None:
    """These tenants' changes could not be applied (tenant → why); since when is kept."""
    if not errors:
        return
    statement = text(
        """
        INSERT INTO config_generations AS g (tenant_id, last_error, failing_since)
        SELECT v.tenant_id, v.error, clock_timestamp()
          FROM unnest(:ids, :errors) AS v(tenant_id, error)
          JOIN tenants AS t ON t.id = v.tenant_id
        ON CONFLICT (tenant_id) DO UPDATE
           SET last_error = excluded.last_error,
               failing_since = COALESCE(g.failing_since, excluded.failing_since)
        """
    ).bindparams(bindparam("ids", type_=_IDS), bindparam("errors", type_=ARRAY(Text())))
    ids = sorted(errors)
    await connection.execute(statement, {"ids": ids, "errors": [errors[i] for i in ids]})


async def set_trunk_failures(connection: AsyncConnection, errors: Mapping[int, str]) -> None:
    """The trunks that cannot be rendered now (trunk → why); every other one is fine."""
    ids = sorted(errors)
    await connection.execute(
        text("DELETE FROM config_trunk_failures WHERE NOT (trunk_id = ANY(:ids))").bindparams(
            bindparam("ids", type_=_IDS)
        ),
        {"ids": ids},
    )
    if not ids:
        return
    await connection.execute(
        text(
            """
            INSERT INTO config_trunk_failures AS f (trunk_id, last_error, failing_since)
            SELECT v.trunk_id, v.error, clock_timestamp()
              FROM unnest(:ids, :errors) AS v(trunk_id, error)
              JOIN trunks AS t ON t.id = v.trunk_id
            ON CONFLICT (trunk_id) DO UPDATE SET last_error = excluded.last_error
            """
        ).bindparams(bindparam("ids", type_=_IDS), bindparam("errors", type_=ARRAY(Text()))),
        {"ids": ids, "errors": [errors[i] for i in ids]},
    )


async def pending_tenants(connection: AsyncConnection) -> int:
    """How many live tenants have committed configuration not yet live in Asterisk."""
    count = await connection.scalar(
        text(
            """
            SELECT count(*) FROM config_generations AS g JOIN tenants AS t ON t.id = g.tenant_id
             WHERE g.committed > g.applied AND t.status <> 'terminated'
            """
        )
    )
    return int(count or 0)


@dataclass(frozen=True)
class TenantStatus:
    tenant_id: int
    committed_generation: int
    applied_generation: int
    last_error: str | None
    failing_since: datetime | None
    applied_at: datetime | None
    committed_at: datetime | None

    @property
    def pending(self) -> bool:
        return self.committed_generation > self.applied_generation


@dataclass(frozen=True)
class TrunkStatus:
    trunk_id: int
    name: str
    last_error: str
    failing_since: datetime


async def tenant_statuses(connection: AsyncConnection, tenant_id: int | None) -> list[TenantStatus]:
    """One tenant's status, or every tenant's (None), by tenant id."""
    rows = await connection.execute(
        text(
            """
            SELECT t.id, COALESCE(g.committed, 0), COALESCE(g.applied, 0), g.last_error,
                   g.failing_since, g.applied_at, g.committed_at
              FROM tenants AS t LEFT JOIN config_generations AS g ON g.tenant_id = t.id
             WHERE CAST(:tenant AS bigint) IS NULL OR t.id = :tenant
             ORDER BY t.id
            """
        ).bindparams(bindparam("tenant", type_=BigInteger())),
        {"tenant": tenant_id},
    )
    return [TenantStatus(*row) for row in rows]


async def trunk_statuses(connection: AsyncConnection) -> list[TrunkStatus]:
    """Trunks whose configuration cannot be rendered."""
    rows = await connection.execute(
        text(
            """
            SELECT f.trunk_id, t.name, f.last_error, f.failing_since
              FROM config_trunk_failures AS f JOIN trunks AS t ON t.id = f.trunk_id
             ORDER BY f.trunk_id
            """
        )
    )
    return [TrunkStatus(*row) for row in rows]


@dataclass(frozen=True)
class Failing:
    """What has failed to apply, and since when (the oldest)."""

    tenants: list[int]
    trunks: list[int]
    oldest: datetime | None


async def failing(connection: AsyncConnection) -> Failing:
    """Tenants and trunks whose configuration is failing to apply now."""
    tenants = (
        await connection.execute(
            text(
                "SELECT tenant_id, failing_since FROM config_generations"
                " WHERE failing_since IS NOT NULL ORDER BY failing_since"
            )
        )
    ).all()
    trunks = (
        await connection.execute(
            text("SELECT trunk_id, failing_since FROM config_trunk_failures ORDER BY failing_since")
        )
    ).all()
    # Each list starts with its oldest failure.
    times = [rows[0][1] for rows in (tenants, trunks) if rows]
    return Failing(
        [row[0] for row in tenants], [row[0] for row in trunks], min(times) if times else None
    )
