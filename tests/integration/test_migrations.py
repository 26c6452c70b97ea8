"""The schema goes up, all the way down and up again on an empty database."""

from __future__ import annotations

import asyncpg

from graam_pbx.db import current_revision, downgrade, migrate, plain_url


async def _tables(url: str) -> set[str]:
    connection = await asyncpg.connect(plain_url(url))
    try:
        rows = await connection.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    finally:
        await connection.close()
    return {row["tablename"] for row in rows} - {"alembic_version"}


async def test_upgrade_downgrade_upgrade(empty_database_url: str) -> None:
    assert await current_revision(empty_database_url) is None
    head = await migrate(empty_database_url)
    assert head is not None
    tables = await _tables(empty_database_url)
    assert "tenants" in tables
    await downgrade(empty_database_url, "base")
    assert await current_revision(empty_database_url) is None
    assert await _tables(empty_database_url) == set()
    assert await migrate(empty_database_url) == head
    assert await _tables(empty_database_url) == tables
