"""The schema goes up, all the way down and up again on an empty database."""

from __future__ import annotations

import asyncpg

from graam_pbx.db import current_revision, downgrade, migrate, plain_url
from graam_pbx.webhooks import models as webhook_models
from tests.schema import differences_after_migrating


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


async def test_the_queue_calls_migration_makes_the_models_table(empty_database_url: str) -> None:
    assert await differences_after_migrating(empty_database_url, ["queue_calls"]) == []


async def test_the_billing_migration_makes_the_models_tables(empty_database_url: str) -> None:
    from graam_pbx.billing import models as billing_models

    tables = {
        model.__tablename__
        for model in vars(billing_models).values()
        if isinstance(model, type) and hasattr(model, "__tablename__")
    }
    assert await differences_after_migrating(empty_database_url, tables) == []


async def test_the_webhooks_migration_makes_the_models_tables(empty_database_url: str) -> None:
    tables = {
        model.__tablename__
        for model in vars(webhook_models).values()
        if isinstance(model, type) and hasattr(model, "__tablename__")
    }
    assert await differences_after_migrating(empty_database_url, tables) == []
