"""One tenant or one trunk that cannot be rendered leaves the others, and its own previous
files, alone."""

from __future__ import annotations

from pathlib import Path

from graam_pbx.asterisk.render import environment, trunk_file, trunk_files
from graam_pbx.asterisk.shards import write_tenants
from graam_pbx.asterisk.writer import reloads_for, remove_trunks
from tests.unit.asterisk.sample import sample_snapshot, sample_tenant

ENV = environment()


def test_a_tenant_that_cannot_render_keeps_its_files_and_the_others_are_written(
    tmp_path: Path,
) -> None:
    good, bad = sample_tenant(7), sample_tenant(8)
    write_tenants(ENV, tmp_path, [bad])
    before = (tmp_path / "tenants/t8/extensions.conf").read_text()
    device = bad.devices[0]._replace(sip_username="x\n[evil]", extension="299")
    broken = bad._replace(devices=(device,))

    result = write_tenants(ENV, tmp_path, [broken, good])

    assert set(result.failed) == {8}
    assert "identifier" in result.failed[8]
    assert (tmp_path / "tenants/t8/extensions.conf").read_text() == before
    assert (tmp_path / "tenants/t7/extensions.conf").exists()
    assert all(name.startswith("tenants/t7/") for name in result.written)


def test_any_exception_of_a_template_is_a_failure_of_that_tenant_only(tmp_path: Path) -> None:
    override = tmp_path / "templates"
    override.mkdir()
    (override / "voicemail_tenant.conf.j2").write_text(
        "{% if tenant.id == 8 %}{{ 1 // 0 }}{% endif %}; box\n"
    )
    result = write_tenants(
        environment(override), tmp_path / "out", [sample_tenant(7), sample_tenant(8)]
    )
    assert set(result.failed) == {8}
    assert "ZeroDivisionError" in result.failed[8]
    assert (tmp_path / "out/tenants/t7/voicemail.conf").read_text() == "; box\n"


def test_a_trunk_that_cannot_render_is_reported_and_the_others_render() -> None:
    base = sample_snapshot()
    good = base.trunks[0]
    bad = good._replace(id=2, name="x\n[evil]")
    failures: dict[int, str] = {}
    files = trunk_files(ENV, base._replace(trunks=(bad, good)), failures)
    assert set(files) == {trunk_file(good.id)}
    assert set(failures) == {2}


def test_trunk_files_of_deleted_trunks_go_and_failing_ones_stay(tmp_path: Path) -> None:
    (tmp_path / "trunks").mkdir()
    for name in ("trunks/1.conf", "trunks/2.conf", "trunks/3.conf"):
        (tmp_path / name).write_text("; old\n")
    removed = remove_trunks(tmp_path, {"trunks/1.conf", "trunks/2.conf"})
    assert removed == {"trunks/3.conf"}
    assert reloads_for(removed) == {"res_pjsip"}
