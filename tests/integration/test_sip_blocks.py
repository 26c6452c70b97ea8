"""SIP blocks in the real Postgres: one in force per source across processes, expiry, the
trunks' allow-list, and the ``graam-pbx sip unblock`` command."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from graam_pbx.db import create_engine, session_factory
from graam_pbx.routing.models import Trunk
from graam_pbx.sip_security import service
from graam_pbx.sip_security.models import SipBlock
from tests.factories import unique

Sessions = async_sessionmaker[AsyncSession]


@pytest.fixture(scope="module")
async def sessions(database_url: str) -> AsyncIterator[Sessions]:
    engine = create_engine(database_url, pool_size=8)
    yield session_factory(engine)
    await engine.dispose()


async def rows_of(sessions: Sessions, address: str) -> list[SipBlock]:
    async with sessions() as session:
        found = await session.scalars(
            select(SipBlock).where(SipBlock.address == address).order_by(SipBlock.id)
        )
        return list(found)


async def block(sessions: Sessions, address: str, failures: int, duration: float) -> None:
    async with sessions() as session, session.begin():
        await service.block(session, address, failures=failures, reason="test", duration=duration)


async def test_blocks_of_one_source_at_once_extend_one_block(sessions: Sessions) -> None:
    await asyncio.gather(*(block(sessions, "192.0.2.31", 20, 600) for _ in range(4)))
    (row,) = await rows_of(sessions, "192.0.2.31")
    assert row.failures == 80
    assert row.unblocked_at is None


async def test_an_expired_block_is_closed_and_the_next_one_is_new(sessions: Sessions) -> None:
    await block(sessions, "192.0.2.32", 20, 0.001)

    async def expired() -> bool:
        async with sessions() as session, session.begin():
            await service.expire(session)
            in_force = await session.scalar(
                select(func.count()).select_from(
                    service.in_force().where(SipBlock.address == "192.0.2.32").subquery()
                )
            )
        return in_force == 0

    async with asyncio.timeout(10):
        while not await expired():
            await asyncio.sleep(0.01)
    (old,) = await rows_of(sessions, "192.0.2.32")
    assert old.unblocked_at == old.expires_at and old.unblocked_by is None

    await block(sessions, "192.0.2.32", 21, 600)
    first, second = await rows_of(sessions, "192.0.2.32")
    assert first.id == old.id
    assert second.failures == 21 and second.unblocked_at is None


async def test_a_trunks_address_is_lifted_by_the_allow_list(sessions: Sessions) -> None:
    async with sessions() as session, session.begin():
        session.add(Trunk(name=unique("carrier"), host="192.0.2.33", port=5060, country="FR"))
    await block(sessions, "192.0.2.33", 20, 600)
    await block(sessions, "192.0.2.34", 20, 600)
    async with sessions() as session, session.begin():
        networks = await service.trunk_networks(session)
        lifted = await service.lift_allowed(session, networks)
    assert [row.address for row in lifted] == ["192.0.2.33"]
    (carrier,) = await rows_of(sessions, "192.0.2.33")
    assert carrier.unblocked_by == "allow-list"
    (other,) = await rows_of(sessions, "192.0.2.34")
    assert other.unblocked_at is None


async def run_cli(database_url: str, tmp_path: Path, *arguments: str) -> tuple[int, str]:
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith("GRAAM_")},
        "GRAAM_DATABASE_URL": database_url,
        "GRAAM_DATA_DIR": str(tmp_path),
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "graam_pbx",
        *arguments,
        env=environment,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    async with asyncio.timeout(60):
        out, _ = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode()


async def test_the_command_lists_and_unblocks_a_source(
    sessions: Sessions, database_url: str, tmp_path: Path
) -> None:
    await block(sessions, "192.0.2.35", 20, 600)
    code, out = await run_cli(database_url, tmp_path, "sip", "blocks")
    assert code == 0, out
    assert "192.0.2.35 blocked until" in out

    code, out = await run_cli(database_url, tmp_path, "sip", "unblock", "192.0.2.35")
    assert code == 0, out
    assert "unblocked 192.0.2.35" in out
    (row,) = await rows_of(sessions, "192.0.2.35")
    assert row.unblocked_by == "cli" and row.unblocked_at is not None

    code, out = await run_cli(database_url, tmp_path, "sip", "unblock", "192.0.2.35")
    assert code == 1
    assert "192.0.2.35 is not blocked" in out
    code, out = await run_cli(database_url, tmp_path, "sip", "unblock", "not-an-address")
    assert code == 1
    assert "not an IP address" in out
