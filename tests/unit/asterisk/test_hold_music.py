"""A tenant's hold music classes become directories of their prompts' files."""

from __future__ import annotations

from pathlib import Path

from graam_pbx.asterisk.hold_music import sync_classes
from graam_pbx.asterisk.render import environment, moh_directory, prompt_path, render_all
from graam_pbx.asterisk.snapshot import MohClassConf, PromptConf
from tests.unit.asterisk.sample import sample_snapshot, sample_tenant

FIRST = PromptConf(9, "a" * 64)
SECOND = PromptConf(10, "b" * 64)


def _synced_prompts(tenant_dir: Path, *prompts: PromptConf) -> None:
    tenant_dir.mkdir(parents=True, exist_ok=True)
    for prompt in prompts:
        name = Path(prompt_path(7, prompt.id, prompt.sha256)).name + ".wav"
        (tenant_dir / name).write_bytes(f"audio of {prompt.id}".encode())


def test_a_class_directory_holds_its_prompts_in_playing_order(tmp_path: Path) -> None:
    _synced_prompts(tmp_path, FIRST, SECOND)
    tenant = sample_tenant(7)._replace(moh_classes=(MohClassConf(13, "jazz", (SECOND, FIRST)),))
    made = sync_classes(tmp_path, tenant)
    directory = tmp_path / Path(moh_directory(7, tenant.moh_classes[0])).name
    assert made == {directory.name}
    files = sorted(p.name for p in directory.iterdir())
    assert files == ["00-p10-bbbbbbbbbbbb.wav", "01-p9-aaaaaaaaaaaa.wav"]
    assert (directory / files[0]).read_bytes() == b"audio of 10"
    assert sync_classes(tmp_path, tenant) == set()  # already complete: nothing to make


def test_new_music_is_a_new_directory_and_the_old_one_goes(tmp_path: Path) -> None:
    _synced_prompts(tmp_path, FIRST, SECOND)
    before = sample_tenant(7)._replace(moh_classes=(MohClassConf(13, "jazz", (FIRST,)),))
    after = before._replace(moh_classes=(MohClassConf(13, "jazz", (FIRST, SECOND)),))
    sync_classes(tmp_path, before)
    sync_classes(tmp_path, after)
    old = Path(moh_directory(7, before.moh_classes[0])).name
    new = Path(moh_directory(7, after.moh_classes[0])).name
    assert old != new
    assert [p.name for p in tmp_path.glob("moh-*")] == [new]
    sync_classes(tmp_path, after._replace(moh_classes=()))
    assert list(tmp_path.glob("moh-*")) == []


def test_a_class_waits_for_its_prompts_audio(tmp_path: Path) -> None:
    _synced_prompts(tmp_path, FIRST)
    tenant = sample_tenant(7)._replace(moh_classes=(MohClassConf(13, "jazz", (FIRST, SECOND)),))
    assert sync_classes(tmp_path, tenant) == set()
    assert list(tmp_path.glob("moh-*")) == []


def test_a_queue_plays_its_tenants_class_or_default() -> None:
    tenant = sample_tenant(7)
    # Tenant 8 names a class it does not have (the API refuses that; old rows may): default.
    other = sample_tenant(8)
    other = other._replace(queues=(other.queues[0]._replace(music_on_hold="rock"),), moh_classes=())
    files = render_all(environment(), sample_snapshot()._replace(tenants=(tenant, other)))
    assert "musicclass = t7-jazz" in files["tenants/t7/queues.conf"]
    assert "[t7-jazz]" in files["tenants/t7/musiconhold.conf"]
    assert "musicclass = default" in files["tenants/t8/queues.conf"]
    assert "[t8-" not in files["tenants/t8/musiconhold.conf"]
    assert files["musiconhold.conf"] == '#include "graam/tenants/*/musiconhold.conf"\n'
