"""Tenants' hold music classes as directories of files, next to their prompts.

A class's directory holds its prompts' files (hard links to the prompts already synced), in
playing order by name. It is named after its music (render.moh_directory): new music makes a
new directory, built aside and renamed into place, so Asterisk never scans half of one; the
directories of older music and of deleted classes are removed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

from graam_pbx.asterisk.render import moh_directory, moh_file, prompt_path
from graam_pbx.asterisk.snapshot import TenantConf

PREFIX = "moh-"


def sync_classes(tenant_dir: Path, tenant: TenantConf) -> set[str]:
    """Make each class's directory under ``tenant_dir``; the directory names made."""
    made = set()
    wanted = {Path(moh_directory(tenant.id, c)).name: c for c in tenant.moh_classes}
    for name, moh_class in wanted.items():
        directory = tenant_dir / name
        if directory.is_dir():
            continue  # named after its content: present is complete
        sources = [
            tenant_dir / (Path(prompt_path(tenant.id, p.id, p.sha256)).name + ".wav")
            for p in moh_class.prompts
        ]
        if not all(source.exists() for source in sources):
            continue  # a prompt's audio is not synced yet: the next pass builds it
        partial = tenant_dir / f".{name}.partial"
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        for position, (prompt, source) in enumerate(zip(moh_class.prompts, sources, strict=True)):
            target = partial / (moh_file(position, prompt) + ".wav")
            try:
                os.link(source, target)
            except OSError:  # another file system: a copy does as well
                shutil.copyfile(source, target)
        partial.rename(directory)
        made.add(name)
    if tenant_dir.is_dir():
        for stale in tenant_dir.glob(f"{PREFIX}*"):
            if stale.name not in wanted:
                with contextlib.suppress(FileNotFoundError):
                    shutil.rmtree(stale)
    return made
