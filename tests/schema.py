"""Do the migrations make the tables the models describe? One comparison for every test."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

import graam_pbx.models  # noqa: F401 - every table in Base.metadata
from graam_pbx.db import Base, create_engine, migrate


async def differences_after_migrating(database_url: str, tables: Iterable[str]) -> list[Any]:
    """Migrate the empty database at ``database_url`` to head, then list what alembic finds
    different between it and the models for the ``tables`` named (their columns, indexes
    and constraints)."""
    await migrate(database_url)
    engine = create_engine(database_url, pool_size=2)
    try:
        async with engine.connect() as connection:
            differences = await connection.run_sync(
                lambda sync: compare_metadata(MigrationContext.configure(sync), Base.metadata)
            )
    finally:
        await engine.dispose()
    # A table is named quoted in a column's or table's difference, as <name> in an index's.
    marks = [mark for table in set(tables) for mark in (f"'{table}'", f"<{table}>")]
    return [d for d in differences if any(mark in str(d) for mark in marks)]
