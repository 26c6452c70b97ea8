"""Generated Asterisk files hold secrets: after an apply nobody else can read them, and
Asterisk still loads them (a phone registers with its digest, read through the realtime
connection whose password is in a generated file; the voicemail box and the trunk's
credentials are Asterisk's). Phones' digests are in no file at all."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import httpx
from sqlalchemy import text

from graam_pbx.ami.agi_auth import agi_key, tenant_token
from graam_pbx.asterisk.applier import ConfigApplier
from graam_pbx.asterisk.render import TOP_FILES
from tests.conftest import Asterisk, RunningApp
from tests.e2e.sipp import SippPool
from tests.e2e.test_agent_login import Sessions
from tests.e2e.test_calls import (
    new_device,
    new_trunk,
    new_voicemail_box,
    registered_phone,
)
from tests.factories import make_world, unique

CARRIER_IP = "127.0.0.41"


# A line that holds a secret in Asterisk's configuration: a password, an HA1 digest, an AMI
# secret, a voicemail box's PIN (``831 => 4711,…``), a FastAGI key.
SECRET_LINE = re.compile(r"^\s*(password|password_digest|secret|dbpass)\s*=|=>\s*\d+,|\?key=", re.M)


def open_to_others(root: Path, secrets: list[str]) -> list[str]:
    """Walking ``root``: each directory, and each file holding a secret (one of ``secrets``
    or a line that looks like one), that another user could read, list or enter."""
    found = []
    for path in [root, *root.rglob("*")]:
        info = path.lstat()
        if stat.S_ISREG(info.st_mode):
            content = path.read_text(errors="replace")
            if not (SECRET_LINE.search(content) or any(s in content for s in secrets)):
                continue
        if stat.S_IMODE(info.st_mode) & stat.S_IRWXO:
            found.append(f"{oct(stat.S_IMODE(info.st_mode))} {path}")
    return found


async def test_generated_secrets_are_unreadable_by_others_and_asterisk_loads_them(
    pbx: RunningApp,
    client: httpx.AsyncClient,
    sessions: Sessions,
    applier: ConfigApplier,
    asterisk: Asterisk,
    sipp: SippPool,
) -> None:
    world = await make_world(client, sessions)
    device = await new_device(client, world, "231")
    box = await new_voicemail_box(client, world, "831")
    outbound_password, inbound_password = f"out-{unique('pw')}", f"in-{unique('pw')}"
    trunk = await new_trunk(
        client,
        world,
        CARRIER_IP,
        username=unique("acme"),
        password=outbound_password,
        match="auth",
        inbound_username=unique("carrier"),
        inbound_password=inbound_password,
    )
    await applier.settled()
    generated = asterisk.info.config_dir

    # Where each secret is: the realtime connection's password (phones' digests are read
    # through it), the box's PIN, the carrier's passwords, the tenant's FastAGI key.
    tenant_dir = generated / "tenants" / f"t{world.tenant_id}"
    key = tenant_token(agi_key(pbx.runtime.signing_key), world.tenant_id)
    async with sessions() as session:
        ha1 = await session.scalar(
            text("SELECT password_ha1 FROM agent_devices WHERE id = :id"), {"id": device["id"]}
        )
    trunk_file = generated / "trunks" / f"{trunk['id']}.conf"
    realtime_conf = generated / "res_pgsql.conf"
    dbpass = re.search(r"^dbpass = (\S+)$", realtime_conf.read_text(), re.M)
    assert dbpass is not None
    holders = [
        (realtime_conf, dbpass.group(1)),
        (tenant_dir / "voicemail.conf", "4711"),
        (tenant_dir / "extensions.conf", key),
        (trunk_file, outbound_password),
        (trunk_file, inbound_password),
    ]
    for path, secret in holders:
        assert secret in path.read_text(), path
    # The phone's digest is Postgres's only: no generated file holds it.
    assert not (tenant_dir / "pjsip.conf").exists()
    assert [p for p in generated.rglob("*") if p.is_file() and str(ha1) in p.read_text()] == []

    # No generated directory, no file with a secret, nor the sandbox's own directories is
    # open to other users.
    assert open_to_others(generated, [secret for _, secret in holders]) == []
    for own in (asterisk.sandbox.state_dir, asterisk.sandbox.etc_dir):
        assert stat.S_IMODE(own.stat().st_mode) & stat.S_IRWXO == 0, own
    manager = asterisk.sandbox.etc_dir / "manager_graam.conf"
    assert stat.S_IMODE(manager.stat().st_mode) == 0o600
    # Each file as the applier's access says (0600, or 0640 with Asterisk's group).
    access = applier.file_access
    written = [generated / name for name in (*TOP_FILES, "trunks.conf", "res_pgsql.conf")]
    written += [p for p in (generated / "tenants").rglob("*") if p.is_file()]
    written += [p for p in (generated / "trunks").rglob("*") if p.is_file()]
    for path in written:
        assert access.applied(path.stat()), (path, oct(path.stat().st_mode))
    for directory in (generated / "tenants", tenant_dir, generated / "trunks"):
        assert access.applied(directory.stat(), directory=True), directory
    assert os.access(realtime_conf, os.R_OK)

    # Asterisk loaded them: the phone registers with its password, the box and the trunk's
    # credentials are there.
    phone = await registered_phone(pbx, sipp, device)
    await phone.stop()
    boxes = await pbx.runtime.ami.command("voicemail show users")
    assert f"t{world.tenant_id}" in boxes and "831" in boxes
    auths = await pbx.runtime.ami.command("pjsip show auths")
    for section in ("auth", "inbound"):
        assert f"trunk-{trunk['name']}-{section}" in auths, auths
    assert box["number"] == "831"

    deleted = await client.delete(f"/api/v1/trunks/{trunk['id']}", headers=world.operator.headers)
    assert deleted.status_code == 204, deleted.text
    await applier.settled()
