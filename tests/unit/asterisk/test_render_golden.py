"""Rendered output of a fixed snapshot equals the files under tests/golden/.

Set UPDATE_GOLDEN=1 to rewrite them after an intended change, then review the diff.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from graam_pbx.asterisk.render import environment, render_all
from tests.unit.asterisk.sample import sample_snapshot, sample_tenant

GOLDEN = Path(__file__).resolve().parents[2] / "golden" / "config"
# A fixed FastAGI key, so that the feature codes' URLs carry the keys they have in production.
GOLDEN_AGI_KEY = bytes(range(32))


def test_rendered_files_equal_golden_files() -> None:
    files = render_all(environment(), sample_snapshot(), agi_key=GOLDEN_AGI_KEY)
    if os.environ.get("UPDATE_GOLDEN") == "1":
        for name, text in files.items():
            (GOLDEN / name).parent.mkdir(parents=True, exist_ok=True)
            (GOLDEN / name).write_text(text)
    on_disk = {str(p.relative_to(GOLDEN)) for p in GOLDEN.rglob("*") if p.is_file()}
    assert on_disk == set(files)
    for name, text in files.items():
        assert text == (GOLDEN / name).read_text(), name


def test_an_operator_template_overrides_ours(tmp_path: Path) -> None:
    (tmp_path / "queue.conf.j2").write_text("[t{{ tenant.id }}-queue-{{ queue.id }}]\n; custom\n")
    files = render_all(environment(tmp_path), sample_snapshot())
    assert "; custom" in files["tenants/t7/extensions.conf"]


def test_a_tenant_without_recording_rules_has_no_recording_in_its_dialplan() -> None:
    """Its dialplan is the one it had before recordings existed (tenant 8's golden file):
    no recording context, no recording step before a queue or a phone rings."""
    files = render_all(environment(), sample_snapshot()._replace(tenants=(sample_tenant(7),)))
    dialplan = files["tenants/t7/extensions.conf"]
    for trace in ("-record", "GRAAM_REC", "MixMonitor"):
        assert trace not in dialplan
    assert " same => n,Dial(PJSIP/acme7-ana,30,t)\n" in dialplan


@pytest.mark.parametrize("tenant_id", [7, 8])
def test_each_tenant_has_its_own_files(tenant_id: int) -> None:
    files = render_all(environment(), sample_snapshot())
    for name in ("extensions.conf", "queues.conf", "voicemail.conf"):
        assert f"tenants/t{tenant_id}/{name}" in files
    # Devices' endpoints, auths and AORs are read by Asterisk from Postgres, never a file.
    assert f"tenants/t{tenant_id}/pjsip.conf" not in files
    assert "tenants/" not in files["pjsip.conf"]
