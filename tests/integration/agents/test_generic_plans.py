"""The login and the agents' state moves plan each statement once per connection (migration
0025; 0039 made ``agent_login`` again with the setting): a later ``CREATE OR REPLACE
FUNCTION`` without the setting would silently drop it and bring back planning on every
call."""

from __future__ import annotations

import importlib

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

GENERIC_PLANS = importlib.import_module("migrations.versions.0025_generic_plans")
# The functions by name, whatever their parameters became since.
NAMES = sorted({signature.partition("(")[0] for signature in GENERIC_PLANS.FUNCTIONS})


async def test_each_function_plans_its_statements_once(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session:
        rows = (
            await session.execute(
                text("SELECT proname, proconfig FROM pg_proc WHERE proname = ANY(:names)"),
                {"names": NAMES},
            )
        ).all()
    assert sorted((name, config) for name, config in rows) == [
        (name, ["plan_cache_mode=force_generic_plan"]) for name in NAMES
    ]
