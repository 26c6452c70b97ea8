"""Where PJSIP finds its objects (asterisk_conf/sorcery.conf): the memory caches in the places
the node needs them, and the control plane expiring exactly the caches the file names.

What each place does on a real node is tested in tests/e2e/test_sip_realtime.py (a changed
device read anew), tests/e2e/test_agent_login.py and tests/e2e/test_two_nodes.py (a cached
endpoint's state published); this reads the file, so a move says why it matters."""

from __future__ import annotations

import re

from graam_pbx.asterisk.sip_cache import CACHES
from graam_pbx.sandbox.asterisk import BASE_CONF_DIR


def _wizards() -> list[tuple[str, str]]:
    """The ``[res_pjsip]`` section's (object type with its options, wizard line) in order."""
    lines: list[tuple[str, str]] = []
    section = None
    for raw in (BASE_CONF_DIR / "sorcery.conf").read_text().splitlines():
        line = raw.split(";", 1)[0].strip()
        if not line:
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        if section == "res_pjsip":
            name, value = (part.strip() for part in line.split("=", 1))
            lines.append((name, value))
    return lines


def _of(kind: str) -> list[tuple[str, str]]:
    return [(name, value) for name, value in _wizards() if name.split("/")[0] == kind]


def test_the_endpoint_cache_is_the_first_endpoint_wizard() -> None:
    # Listed after the files' wizard, the cached endpoints' state went unpublished (no
    # ContactStatus, a reachable phone shown unavailable).
    endpoints = _of("endpoint")
    first_name, first_value = endpoints[0]
    assert first_name == "endpoint/cache", endpoints
    assert first_value.startswith("memory_cache,name=graam-endpoints,"), first_value
    assert [value.split(",")[0] for _, value in endpoints[1:]] == ["config", "realtime"]


def test_the_aor_cache_comes_before_postgres_and_auths_are_never_cached() -> None:
    aors = [(name, value.split(",")[0]) for name, value in _of("aor")]
    assert aors == [("aor", "config"), ("aor/cache", "memory_cache"), ("aor", "realtime")]
    assert all("/cache" not in name for name, _ in _of("auth") + _of("contact"))


def test_the_control_plane_expires_every_cache_the_file_names_and_only_those() -> None:
    named = {
        match.group(1)
        for name, value in _wizards()
        if name.endswith("/cache")
        for match in [re.search(r"\bname=([^,]+)", value)]
        if match is not None
    }
    assert named == set(CACHES)
    # Bounds, not the mechanism: a stale entry read again, an unread one dropped, a reload
    # of res_pjsip empties them.
    for name, value in _wizards():
        if name.endswith("/cache"):
            assert "object_lifetime_stale=600" in value, value
            assert "object_lifetime_maximum=3600" in value, value
            assert "expire_on_reload=yes" in value, value
