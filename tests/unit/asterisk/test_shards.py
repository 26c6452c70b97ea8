"""A large pass rendered by worker processes writes exactly what rendering here would."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from graam_pbx.asterisk.render import TENANT_FILES, environment, render_all, tenant_files
from graam_pbx.asterisk.shards import SHARD_THRESHOLD, ShardedWriter
from graam_pbx.asterisk.snapshot import Snapshot, TenantConf
from tests.unit.asterisk.sample import sample_snapshot, sample_tenant

AGI = ("127.0.0.1", 4573)


def _many_tenants() -> Snapshot:
    base = sample_snapshot()
    tenants = tuple(sample_tenant(tenant_id) for tenant_id in range(100, 100 + SHARD_THRESHOLD + 9))
    return base._replace(tenants=tenants)


def _on_disk(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): p.read_text() for p in root.rglob("*.conf")}


@pytest.fixture
async def writer() -> AsyncIterator[ShardedWriter]:
    shards = ShardedWriter(agi_address=AGI, processes=2)
    try:
        yield shards
    finally:
        await shards.stop()


async def test_workers_write_what_rendering_here_gives(
    writer: ShardedWriter, tmp_path: Path
) -> None:
    snapshot = _many_tenants()
    env = environment()
    result = await writer.write(tmp_path, snapshot.tenants)
    expected = {
        name: text
        for tenant in snapshot.tenants
        for name, text in tenant_files(env, tenant, agi_address=AGI).items()
    }
    assert _on_disk(tmp_path) == expected
    assert result.written == set(expected)
    assert set(expected) <= set(render_all(env, snapshot, agi_address=AGI))

    again = await writer.write(tmp_path, snapshot.tenants)
    assert again.written == frozenset()  # nothing changed: nothing rewritten


async def test_workers_use_the_operator_templates(tmp_path: Path) -> None:
    override = tmp_path / "templates"
    override.mkdir()
    (override / "queue.conf.j2").write_text("[t{{ tenant.id }}-queue-{{ queue.id }}]\n; ours\n")
    snapshot = _many_tenants()
    out = tmp_path / "out"
    writer = ShardedWriter(override, AGI, processes=2)
    try:
        await writer.write(out, snapshot.tenants)
    finally:
        await writer.stop()
    dialplans = [text for name, text in _on_disk(out).items() if name.endswith("extensions.conf")]
    assert len(dialplans) == len(snapshot.tenants)
    assert all("; ours" in text for text in dialplans)


async def test_files_no_longer_made_are_pruned(writer: ShardedWriter, tmp_path: Path) -> None:
    snapshot = _many_tenants()
    stale = tmp_path / "tenants" / f"t{snapshot.tenants[-1].id}" / "old.conf"
    stale.parent.mkdir(parents=True)
    stale.write_text("; from an older version\n")
    result = await writer.write(tmp_path, snapshot.tenants)
    assert not stale.exists()
    assert str(stale.relative_to(tmp_path)) in result.written


async def test_tenants_built_with_defaults_reach_the_workers(
    writer: ShardedWriter, tmp_path: Path
) -> None:
    tenants = tuple(
        TenantConf(tenant_id, f"bare{tenant_id}", "Bare", "active")
        for tenant_id in range(1, SHARD_THRESHOLD + 2)
    )
    result = await writer.write(tmp_path, tenants)
    assert len(result.written) == len(tenants) * len(TENANT_FILES)


async def test_a_pass_fed_in_parts_writes_what_one_write_gives(
    writer: ShardedWriter, tmp_path: Path
) -> None:
    tenants = _many_tenants().tenants
    whole = await writer.write(tmp_path / "whole", tenants)

    fed = writer.begin(tmp_path / "parts")
    for part in (tenants[:3], tenants[3 : SHARD_THRESHOLD + 5], tenants[SHARD_THRESHOLD + 5 :]):
        fed.submit(part)  # a few rendered here, a shard's worth in the workers
    parts = await fed.finish()
    assert _on_disk(tmp_path / "parts") == _on_disk(tmp_path / "whole")
    assert {name for name in parts.written} == {name for name in whole.written}
    assert fed.written == parts.written


async def test_a_failing_part_still_reports_what_the_others_wrote(
    writer: ShardedWriter, tmp_path: Path
) -> None:
    tenants = _many_tenants().tenants
    blocked = tmp_path / "tenants" / f"t{tenants[0].id}"
    blocked.parent.mkdir(parents=True)
    blocked.write_text("a file where the tenant's directory goes\n")
    fed = writer.begin(tmp_path)
    fed.submit(tenants[:1])
    fed.submit(tenants[1:])
    with pytest.raises(OSError):
        await fed.finish()
    assert len(fed.written) == (len(tenants) - 1) * len(TENANT_FILES)
