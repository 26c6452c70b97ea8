"""The login and the agents' state moves plan each statement once per connection (migration
0025): a later ``CREATE OR REPLACE FUNCTION`` without the setting would silently drop it and
bring back planning on every call."""

from __future__ import annotations

import importlib

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

GENERIC_PLANS = importlib.import_module("migrations.versions.0025_generic_plans")


async def test_each_function_plans_its_statements_once(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session:
        settings = {
            signature: await session.scalar(
                text("SELECT proconfig FROM pg_proc WHERE oid = CAST(:f AS regprocedure)"),
                {"f": signature},
            )
            for signature in GENERIC_PLANS.FUNCTIONS
        }
    assert settings == {
        signature: ["plan_cache_mode=force_generic_plan"] for signature in GENERIC_PLANS.FUNCTIONS
    }
