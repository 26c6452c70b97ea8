"""Finding the running Asterisk sandbox whatever the current folder.

The data directory (``GRAAM_DATA_DIR``) defaults to ``var``, relative to the current folder,
so a sandbox started from the project's folder lives in its ``var/asterisk``. The command
line records each sandbox it starts in the default data directory in a per-user list
(``~/.cache/graam-pbx``, or ``$XDG_CACHE_HOME/graam-pbx``); ``graam-pbx asterisk …`` run from
any folder looks, in order, at the configured data directory, at the recorded sandboxes (the
latest first) and at the project's own ``var``. A data directory set explicitly is the only
place looked at.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from graam_pbx.sandbox.asterisk import BASE_CONF_DIR, AsteriskSandbox
from graam_pbx.sandbox.stack import asterisk_sandbox
from graam_pbx.settings import Settings, _default_cache_dir

log = logging.getLogger(__name__)

REGISTRY_NAME = "asterisk-sandboxes.json"
MAX_RECORDED = 20
_AMI_PORT = re.compile(r"^\s*port\s*=\s*(\d+)\s*$", re.MULTILINE)


def registry_path() -> Path:
    """The per-user list of sandboxes the command line started."""
    return _default_cache_dir() / REGISTRY_NAME


def recorded(path: Path | None = None) -> list[Path]:
    """The recorded sandboxes' state directories, the latest first."""
    try:
        entries = json.loads((path or registry_path()).read_text())
    except (OSError, ValueError):
        return []
    if not isinstance(entries, list):
        return []
    return [Path(entry) for entry in entries if isinstance(entry, str) and entry.startswith("/")]


def record(state_dir: Path, path: Path | None = None) -> None:
    """Put a sandbox first in the list (whoever cannot write the list only loses the hint)."""
    path = path or registry_path()
    state = str(state_dir.resolve())
    entries = [state, *(str(p) for p in recorded(path) if str(p) != state and p.is_dir())]
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        with os.fdopen(fd, "w") as out:
            json.dump(entries[:MAX_RECORDED], out, indent=1)
        Path(temp).replace(path)
    except OSError as err:
        log.warning("asterisk sandbox: cannot record %s in %s: %s", state, path, err)


def record_started(settings: Settings, state_dir: Path) -> None:
    """Record a sandbox the command line started in the default data directory (one in a
    data directory set explicitly is found through that setting, never by searching)."""
    if "data_dir" not in settings.model_fields_set:
        record(state_dir)


def project_data_dir() -> Path | None:
    """``var`` of the source checkout this package runs from, if it does."""
    root = BASE_CONF_DIR.parent
    return root / "var" if (root / "pyproject.toml").is_file() else None


def candidates(settings: Settings, registry: Path | None = None) -> list[Path]:
    """Where a sandbox may live, in the order they are looked at (absolute, each once)."""
    configured = settings.sandbox_dir.resolve()
    if "data_dir" in settings.model_fields_set:
        return [configured]
    found = [configured, *recorded(registry)]
    project = project_data_dir()
    if project is not None:  # a sandbox started before sandboxes were recorded
        found.append((project / configured.name).resolve())
    return list(dict.fromkeys(found))


@dataclass(frozen=True)
class Search:
    """The running sandbox found (or None), and every state directory looked at."""

    sandbox: AsteriskSandbox | None
    pid: int | None
    looked_in: list[Path]

    def where(self) -> str:
        return ", ".join(str(path) for path in self.looked_in)


def sandbox_at(settings: Settings, state_dir: Path) -> AsteriskSandbox:
    """The sandbox of ``state_dir``, with the AMI port it was started with."""
    config = asterisk_sandbox(settings).config
    port = ami_port(state_dir)
    return AsteriskSandbox(
        dataclasses.replace(
            config, state_dir=state_dir, ami_port=config.ami_port if port is None else port
        )
    )


def find_running(settings: Settings, registry: Path | None = None) -> Search:
    """The first sandbox of ``candidates`` whose Asterisk runs."""
    looked_in = candidates(settings, registry)
    for state_dir in looked_in:
        sandbox = sandbox_at(settings, state_dir)
        pid = sandbox.running_pid()
        if pid is not None:
            return Search(sandbox, pid, looked_in)
    return Search(None, None, looked_in)


def ami_port(state_dir: Path) -> int | None:
    """The AMI port a sandbox was started with (its manager_graam.conf), if known."""
    try:
        match = _AMI_PORT.search((state_dir / "etc" / "manager_graam.conf").read_text())
    except OSError:
        return None
    return int(match.group(1)) if match else None
