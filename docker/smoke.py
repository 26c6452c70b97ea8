"""The stack's smoke test: real calls through Kamailio, the active worker killed in between.

Run by ``docker/stack.sh smoke`` (and ``check``) against a stack that ``up`` brought up, from
the repository's venv (httpx, and the e2e tests' sipp helpers), with sipp on the host. Every
step waits on a state (an HTTP answer, a row, a SIP response) with a time limit, never a fixed
sleep, and says what it waited for when it gives up.

1. An operator (``graam-pbx operator create`` in the migrate container) registers node b and
   makes a tenant placed on asterisk-a's node with b as its standby, an agent and a
   caller, each with a device.
2. The agent's phone registers through Kamailio (127.0.0.144) from 127.0.0.149 and answers;
   the caller dials the agent's extension through Kamailio: answered, and its CDR is written
   once, with node a's system name.
3. The active worker (the one whose graam_worker_active is 1) is killed with SIGKILL; the
   standby takes the lease within 10 s; a second call is answered and its CDR written once.
4. Prometheus's console page of the dashboards (/consoles/graam.html) shows every dashboard,
   and the AMI connection of both nodes, as scraped from the active worker.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import secrets
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from graam_pbx.sandbox.kamailio import KamailioConfig, KamailioSandbox  # noqa: E402
from tests.e2e.sipp import SippPool, routed_phone_call  # noqa: E402 - the repository's own helpers

EDGE = "127.0.0.144:5060"
CONSOLE = "http://127.0.0.147:9090/consoles/graam.html"
DASHBOARD_TITLES = ("AMI per node", "CDR and apply lag", "licences", "queues", "SIP blocks")
PHONES_IP = "127.0.0.149"
API = "http://127.0.0.145:8000"
OTHER_API = "http://127.0.0.146:8000"  # the same deployment: any API answers any token
WORKERS = {"worker-1": "http://127.0.0.145:8001", "worker-2": "http://127.0.0.146:8001"}
# The nodes as docker/compose.yml runs them: asterisk-a has the systemname the control plane
# gives the Asterisk of its settings when it registers it itself (the node "local").
NODE_A = {"name": "a", "systemname": "graam", "host": "127.0.0.142", "secret": "AMI_SECRET_A"}
NODE_B = {"name": "b", "systemname": "b", "host": "127.0.0.143", "secret": "AMI_SECRET_B"}
FAILOVER_SECONDS = 10  # the bound for a standby worker to take over
COMPOSE = [
    "docker-compose",
    "--project-name",
    "graam-pbx",
    "--project-directory",
    str(ROOT / "docker"),
    "--file",
    str(ROOT / "docker/compose.yml"),
]


def say(text: str) -> None:
    print(f"{time.strftime('%H:%M:%S', time.gmtime())}  smoke: {text}", flush=True)


T = TypeVar("T")


async def until(check: Callable[[], Awaitable[T | None]], what: str, seconds: float) -> T:
    """The first truthy result of ``check``, polled until ``seconds`` have passed."""
    deadline = time.monotonic() + seconds
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise SystemExit(f"smoke: no {what} within {seconds:g} s")
        await asyncio.sleep(0.2)


async def command(*argv: str) -> str:
    """A command's output; its failure ends the smoke test, saying why."""
    process = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await process.communicate()
    if process.returncode != 0:
        raise SystemExit(f"smoke: {' '.join(argv[-6:])} failed: {err.decode()[-500:]}")
    return out.decode()


async def compose(state: Path, *args: str) -> str:
    return await command(*COMPOSE, "--env-file", str(state / "compose.env"), *args)


def secrets_of(state: Path) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in (state / "secrets.env").read_text().splitlines())
    return {key: value for key, value in pairs}


async def sql(state: Path, query: str) -> str:
    """One query as the superuser, through the postgres container's socket."""
    out = await compose(
        state,
        "exec",
        "-T",
        "postgres",
        "setpriv",
        "--reuid=graam-postgres",
        "--regid=graam-postgres",
        "--init-groups",
        "/opt/postgresql/bin/psql",
        "-h",
        "/tmp",  # noqa: S108 - the socket directory inside the postgres container
        "-U",
        "postgres",
        "-d",
        "graam",
        "-qAt",
        "-c",
        query,
    )
    return out.strip()


def created(response: httpx.Response) -> dict[str, Any]:
    if response.status_code not in (200, 201):
        raise SystemExit(
            f"smoke: {response.request.method} {response.request.url}: "
            f"{response.status_code} {response.text[:300]}"
        )
    body: dict[str, Any] = response.json()
    return body


async def ensure_node(
    client: httpx.AsyncClient, operator: dict[str, str], state: Path, node: dict[str, str]
) -> str:
    """The name of the registered node at ``node``'s AMI address, registered if none is."""
    nodes = created(await client.get("/api/v1/nodes", headers=operator))["items"]
    for known in nodes:
        if known["ami_host"] == node["host"]:
            return str(known["name"])
    created(
        await client.post(
            "/api/v1/nodes",
            headers=operator,
            json={
                "name": node["name"],
                "systemname": node["systemname"],
                "ami_host": node["host"],
                "ami_port": 5038,
                "ami_username": "graam",
                "ami_secret": secrets_of(state)[node["secret"]],
                "sip_host": node["host"],
                "sip_port": 5060,
            },
        )
    )
    return node["name"]


@dataclass
class World:
    tenant_id: int
    caller: dict[str, Any]
    agent: dict[str, Any]


async def provision(client: httpx.AsyncClient, state: Path) -> World:
    suffix = secrets.token_hex(3)
    email = f"smoke-{suffix}@operator.example"
    out = await compose(state, "run", "--rm", "migrate", "operator", "create", "--email", email)
    match = re.search(r"password \(shown once\): (\S+)", out)
    if match is None:
        raise SystemExit(f"smoke: no operator password in: {out[-300:]}")
    password = match.group(1)
    token = created(
        await client.post("/api/v1/auth/token", json={"email": email, "password": password})
    )["access_token"]
    operator = {"Authorization": f"Bearer {token}"}

    node_a = await ensure_node(client, operator, state, NODE_A)
    node_b = await ensure_node(client, operator, state, NODE_B)
    # The edge reads its dispatcher sets (one per node) at start and on this command.
    edge = KamailioSandbox(KamailioConfig(state_dir=state / "kamailio", database_url=""))
    # The API already asked for a reload when it registered a node; one more is harmless
    # (an "Ongoing reload" answer is retried, as the control plane's own client does).
    await edge.control.reload_dispatcher()

    async def both_probed() -> bool:
        """Both nodes in the edge's dispatcher, and answering its probes (flag A)."""
        listed = await edge.rpc("dispatcher.list")
        flags = {
            target["DEST"]["URI"]: target["DEST"]["FLAGS"]
            for record in listed.get("RECORDS", [])
            for target in record["SET"].get("TARGETS", [])
        }
        return all(
            flags.get(f"sip:{node['host']}:5060", "").startswith("A") for node in (NODE_A, NODE_B)
        )

    await until(both_probed, "both nodes active in the edge's dispatcher", 10)
    slug = f"smoke{suffix}"
    tenant = created(
        await client.post(
            "/api/v1/tenants",
            headers=operator,
            json={
                "slug": slug,
                "name": f"Smoke {suffix}",
                "country": "FR",
                "timezone": "Europe/Paris",
                "licences": 5,
            },
        )
    )
    tenant_id = tenant["id"]
    created(
        await client.put(
            f"/api/v1/tenants/{tenant_id}/placement",
            headers=operator,
            json={"node": node_a, "standby": node_b},
        )
    )
    in_tenant = {**operator, "X-Graam-Tenant": str(tenant_id)}
    devices = {}
    # Devices belong to agents: the caller is another agent of the tenant.
    for who, extension in (("agent", "201"), ("caller", "101")):
        user = created(
            await client.post(
                "/api/v1/users",
                headers=in_tenant,
                json={
                    "email": f"{who}@{slug}.example",
                    "display_name": who.title(),
                    "role": "agent",
                    "password": secrets.token_urlsafe(18),
                },
            )
        )
        devices[who] = created(
            await client.post(
                "/api/v1/devices",
                headers=in_tenant,
                json={"user_id": user["id"], "name": f"desk{extension}", "extension": extension},
            )
        )
    seen = created(await client.get(f"{OTHER_API}/api/v1/tenants/{tenant_id}", headers=operator))
    if seen["slug"] != slug:
        raise SystemExit(f"smoke: the other API process sees {seen['slug']!r}, not {slug!r}")
    say(f"tenant {slug} (id {tenant_id}) on node {node_a}, standby {node_b}; both APIs see it")
    return World(tenant_id, caller=devices["caller"], agent=devices["agent"])


async def contact_on_node(state: Path, aor: str) -> bool:
    """The node (asterisk-a) holds a usable contact of ``aor``."""
    out = await compose(
        state, "exec", "-T", "asterisk-a", "asterisk", "-rx", f"pjsip show aor {aor}"
    )
    return bool(re.search(rf"Contact:\s+{re.escape(aor)}/\S+\s+\S+\s+(Avail|NonQual)", out))


async def call(sipp: SippPool, world: World, state: Path, label: str) -> None:
    """The caller dials the agent through the edge: answered, and each CDR written once."""
    before = time.time()
    caller = world.caller["sip_username"]
    # A phone behind the edge: its ACK and BYE follow the edge's Record-Route.
    result = await sipp.uac(
        str(routed_phone_call(sipp.workdir)),
        ip=PHONES_IP,
        service=world.agent["extension"],
        auth=(caller, world.caller["password"]),
        keys={"caller": caller},
    ).run()
    if not result.ok:
        raise SystemExit(f"smoke: {label}: the call failed\n{result.describe()}")
    say(f"{label}: answered")
    # Numbers only: nothing to quote. The tenant is this run's own; the host and the
    # containers share one clock.
    where = f"tenant_id = {world.tenant_id} and started_at >= to_timestamp({before})"
    key = "uniqueid, sequence, system_name"
    query = f"select system_name, count(*) over (partition by {key}) from cdrs where {where}"  # noqa: S608

    async def written() -> list[str] | None:
        rows = [row for row in (await sql(state, query)).splitlines() if row]
        return rows or None

    rows = await until(written, f"CDR of the {label}", 30)
    if any(row.split("|")[1] != "1" for row in rows):
        raise SystemExit(f"smoke: {label}: a CDR written twice: {rows}")
    names = {row.split("|")[0] for row in rows}
    if names != {NODE_A["systemname"]}:
        raise SystemExit(f"smoke: {label}: CDRs from {names}, not only the tenant's node's")
    say(f"{label}: {len(rows)} CDR(s), each once, from the tenant's node ({names.pop()})")


async def active_worker(client: httpx.AsyncClient, token: str) -> str | None:
    for name, url in WORKERS.items():
        try:
            answer = await client.get(
                f"{url}/metrics", headers={"Authorization": f"Bearer {token}"}, timeout=2
            )
        except httpx.HTTPError:
            continue
        if re.search(r"^graam_worker_active 1(\.0)?$", answer.text, re.MULTILINE):
            return name
    return None


async def kill_active_worker(client: httpx.AsyncClient, state: Path) -> None:
    token = secrets_of(state)["METRICS_TOKEN"]

    async def any_active() -> str | None:
        return await active_worker(client, token)

    active = await until(any_active, "active worker", 30)
    container = (await compose(state, "ps", "-q", active)).strip()
    pid = (await command("docker", "inspect", "-f", "{{.State.Pid}}", container)).strip()
    killed = time.monotonic()
    await command("kill", "-KILL", pid)  # a crash: no goodbye, its lease connection just drops
    say(f"{active} (pid {pid}) killed")

    async def other_active() -> str | None:
        now = await active_worker(client, token)
        return now if now not in (None, active) else None

    standby = await until(other_active, "standby taking over", FAILOVER_SECONDS)
    say(f"{standby} active {time.monotonic() - killed:.1f} s after the kill")


async def dashboards_shown() -> None:
    """The console page renders, names every dashboard, and lists both nodes' AMI."""

    async def page() -> str | None:
        async with httpx.AsyncClient(timeout=10) as client:
            answer = await client.get(CONSOLE)
        if answer.status_code != 200:
            return None
        ami = answer.text.split("<h3>AMI connected</h3>", 1)[-1].split("</table>", 1)[0]
        nodes = set(re.findall(r"node=(\w+)", ami))
        return answer.text if len(nodes) >= 2 else None  # node a (the "local" one) and b

    text = await until(page, "the console page listing both nodes' AMI", 30)
    missing = [title for title in DASHBOARD_TITLES if title not in text]
    if missing or "error executing template" in text:
        raise SystemExit(f"smoke: the console page lacks {missing} or failed to render")
    say("dashboards: Prometheus's console page shows every dashboard and both nodes' AMI")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--state", type=Path, required=True)
    parser.add_argument(
        "--sip",
        default=EDGE,
        help="where phones send (default: the edge); a node's address checks the rest alone",
    )
    arguments = parser.parse_args()
    state: Path = arguments.state
    async with httpx.AsyncClient(base_url=API, timeout=30) as client:
        world = await provision(client, state)
        with tempfile.TemporaryDirectory(prefix="graam-docker-smoke-") as workdir:
            sipp = SippPool(Path(workdir), arguments.sip)
            try:
                agent = world.agent["sip_username"]
                registering = sipp.uac(
                    "register.xml",
                    ip=PHONES_IP,
                    service=agent,
                    auth=(agent, world.agent["password"]),
                )
                registration = await registering.run()
                if not registration.ok:
                    raise SystemExit(f"smoke: REGISTER refused\n{registration.describe()}")
                phone_port = registering.port
                # The agent's phone answers one call per sipp (uas_answer.xml ends with it).
                await sipp.uas("uas_answer.xml", ip=PHONES_IP, port=phone_port).start()
                say(f"agent's phone registered through {arguments.sip}")

                async def reachable() -> bool:
                    return await contact_on_node(state, agent)

                await until(reachable, "agent's contact on the tenant's node", 20)
                await call(sipp, world, state, "first call")
                await kill_active_worker(client, state)
                await sipp.close()  # the first call's phone, if still there
                await sipp.uas("uas_answer.xml", ip=PHONES_IP, port=phone_port).start()
                await call(sipp, world, state, "call after the failover")
            finally:
                await sipp.close()
    await dashboards_shown()
    say("passed")


if __name__ == "__main__":
    asyncio.run(main())
