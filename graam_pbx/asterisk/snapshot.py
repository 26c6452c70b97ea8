"""One consistent read of everything Asterisk's configuration is made from.

This is the only place ``graam_pbx.asterisk`` reads domain tables. It uses plain Core
queries inside one REPEATABLE READ transaction: fast at thousands of tenants, and every file
rendered from it agrees with every other.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from graam_pbx.agents.models import AgentDevice
from graam_pbx.auth.models import User
from graam_pbx.cluster.models import AsteriskNode, TenantPlacement
from graam_pbx.forwarding.models import ExternalNumber, FollowMe, FollowMeMember, UserForwarding
from graam_pbx.ivr.models import IvrMenu, IvrOption
from graam_pbx.moh.models import MohClass, MohClassPrompt
from graam_pbx.numbers.models import PhoneNumber
from graam_pbx.prompts.models import Prompt
from graam_pbx.queues.models import Queue
from graam_pbx.recordings.models import RecordingRule, RecordingSettings
from graam_pbx.recordings.policy import Direction, Mode, Rule
from graam_pbx.routing.models import InboundRoute, OutboundRoute, Schedule, Trunk
from graam_pbx.tenants.models import Tenant, TenantStatus
from graam_pbx.voicemail.models import VoicemailBox

# Rows Asterisk configuration is made from: a change to one re-renders its tenant.
CONFIG_MODELS = (
    AgentDevice,
    User,
    Queue,
    IvrMenu,
    IvrOption,
    VoicemailBox,
    Prompt,
    Schedule,
    InboundRoute,
    OutboundRoute,
    PhoneNumber,
    MohClass,
    MohClassPrompt,
    RecordingRule,
    RecordingSettings,
    TenantPlacement,  # which nodes' files hold the tenant (asterisk/nodes.py)
    ExternalNumber,
    UserForwarding,
    FollowMe,
    FollowMeMember,
)
# Rows every tenant's files depend on.
PLATFORM_MODELS = (Trunk,)


# Named tuples rather than dataclasses: a full render ships the snapshot to worker
# processes, and tuples pickle several times faster than frozen dataclasses.


class Dest(NamedTuple):
    type: str
    id: int | None


class Device(NamedTuple):
    id: int
    user_id: int
    sip_username: str
    password_ha1: str
    extension: str
    codecs: tuple[str, ...]
    transport: str
    max_contacts: int


class QueueConf(NamedTuple):
    id: int
    name: str
    strategy: str
    ring_timeout: int
    retry: int
    wrapup_time: int
    max_wait: int | None
    fallback: Dest | None
    music_on_hold: str
    announce_position: bool
    announce_holdtime: bool
    announce_frequency: int
    weight: int
    # Asterisk's own ServicelevelPerf counters judge by the same threshold as the KPIs.
    service_level_seconds: int = 20
    join_empty: str = "yes"  # queues.models.JOIN_EMPTY
    leave_when_empty: str = "no"  # queues.models.LEAVE_WHEN_EMPTY


class IvrConf(NamedTuple):
    id: int
    name: str
    greeting_prompt_id: int | None
    timeout_s: int
    repeat_count: int
    timeout_dest: Dest
    invalid_dest: Dest
    options: tuple[tuple[str, Dest], ...]


class VoicemailConf(NamedTuple):
    id: int
    number: str
    name: str
    pin: str
    email: str | None
    greeting_prompt_id: int | None


class PromptConf(NamedTuple):
    id: int
    sha256: str


class MohClassConf(NamedTuple):
    id: int
    name: str
    prompts: tuple[PromptConf, ...]  # in playing order


class ScheduleConf(NamedTuple):
    id: int
    timezone: str
    weekly: tuple[tuple[int, str, str], ...]  # (day 0=Monday, "HH:MM", "HH:MM")
    holidays: tuple[str, ...]  # ISO dates


class InboundConf(NamedTuple):
    id: int
    e164: str
    schedule_id: int | None
    open_dest: Dest
    closed_dest: Dest | None


class OutboundConf(NamedTuple):
    id: int
    name: str
    trunk: str
    caller_id: str
    allowed_countries: tuple[str, ...]
    priority: int
    caller_name: str | None = None  # what carriers see; never an agent's name
    # The trunk shows a forwarded call's original caller (routing/models.py, Trunk).
    forwarded_caller_id: bool = False


class ForwardingConf(NamedTuple):
    """A user's forwarding rules (graam_pbx/forwarding/rules.py): each a target or None."""

    do_not_disturb: bool
    dnd_dest: Dest | None
    unconditional: Dest | None
    busy: Dest | None
    no_answer: Dest | None
    no_answer_seconds: int
    unreachable: Dest | None


class FollowMeMemberConf(NamedTuple):
    type: str  # extension, agent, external
    id: int
    confirm: bool  # an external number presses 1 to take the call


class FollowMeConf(NamedTuple):
    """Steps rung in order, each (seconds, members rung at once), then ``final``."""

    id: int
    steps: tuple[tuple[int, tuple[FollowMeMemberConf, ...]], ...]
    final: Dest


class ExternalConf(NamedTuple):
    """A number outside the switch a destination sends calls to (E.164)."""

    id: int
    number: str


class TrunkConf(NamedTuple):
    id: int
    name: str
    host: str
    port: int
    transport: str
    country: str
    username: str | None
    password: str | None
    enabled: bool
    match: str = "ip"
    inbound_addresses: tuple[str, ...] = ()
    match_header: str | None = None
    inbound_username: str | None = None
    inbound_password: str | None = None
    resolved_addresses: tuple[str, ...] = ()  # of the host name, by the control plane


class TenantConf(NamedTuple):
    id: int
    slug: str
    name: str
    status: str
    devices: tuple[Device, ...] = ()
    # Read-only (Mapping): the shared empty default is never written to.
    agents: Mapping[int, tuple[str, ...]] = {}  # user → SIP usernames
    agent_names: Mapping[int, str] = {}  # user → display name
    queues: tuple[QueueConf, ...] = ()
    ivrs: tuple[IvrConf, ...] = ()
    voicemail: tuple[VoicemailConf, ...] = ()
    prompts: tuple[PromptConf, ...] = ()
    schedules: tuple[ScheduleConf, ...] = ()
    inbound: tuple[InboundConf, ...] = ()
    outbound: tuple[OutboundConf, ...] = ()
    moh_classes: tuple[MohClassConf, ...] = ()
    recording_rules: tuple[Rule, ...] = ()  # graam_pbx/recordings/policy.py
    recording_announcement: int | None = None  # the prompt callers hear when recorded
    external_numbers: tuple[ExternalConf, ...] = ()
    forwarding: Mapping[int, ForwardingConf] = {}  # user → their rules (only users who set some)
    follow_me: tuple[FollowMeConf, ...] = ()

    @property
    def suspended(self) -> bool:
        return self.status == TenantStatus.SUSPENDED.value


class Snapshot(NamedTuple):
    tenants: tuple[TenantConf, ...]
    trunks: tuple[TrunkConf, ...]


def _dest(kind: str | None, object_id: int | None) -> Dest | None:
    return None if kind is None else Dest(kind, object_id)


def _json(value: Any) -> Any:
    """JSONB as asyncpg gives it: text unless a codec was set on the connection."""
    return json.loads(value) if isinstance(value, str) else value


def _columns(model: Any, shape: Any, **instead: tuple[str, ...]) -> list[Any]:
    """The columns of ``model``'s table that the named tuple ``shape`` is made of, and its
    tenant: only what is rendered is read (a full pass decodes hundreds of thousands of
    rows; timestamps alone cost more than the rest). ``instead`` names the columns a field
    is built from when they are not its own name."""
    table = model.__table__.c
    names = [n for field in shape._fields for n in instead.get(field, (field,))]
    return [table[name] for name in ("tenant_id", *names)]


def _by_tenant(rows: Iterable[Any]) -> dict[int, list[Any]]:
    grouped: dict[int, list[Any]] = defaultdict(list)
    for row in rows:
        grouped[row["tenant_id"]].append(row)
    return grouped


@dataclass(frozen=True)
class HeldTenants:
    """The tenants whose configuration a node holds: those living there (``home``) and those
    it stands by for (``standby``); ``every`` when the node is the only one (it holds every
    tenant, and the sets are left empty: nothing needs listing)."""

    home: frozenset[int]
    standby: frozenset[int]
    every: bool = False


async def held_by_node(connection: AsyncConnection, name: str) -> HeldTenants | None:
    """What the node named ``name`` holds (None: no such node).

    A tenant lives on its placement's node, or, without one, on the default node: the active
    node with the lowest id (the database's ``graam_default_node()``, migration 0024).
    """
    nodes = (
        await connection.execute(
            select(AsteriskNode.id, AsteriskNode.name).order_by(AsteriskNode.id)
        )
    ).all()
    node_id = next((node.id for node in nodes if node.name == name), None)
    if node_id is None:
        return None
    if len(nodes) == 1:
        return HeldTenants(frozenset(), frozenset(), every=True)
    default = await connection.scalar(select(func.graam_default_node()))
    placed = (
        await connection.execute(
            select(
                TenantPlacement.tenant_id, TenantPlacement.node_id, TenantPlacement.standby_node_id
            ).where(
                or_(TenantPlacement.node_id == node_id, TenantPlacement.standby_node_id == node_id)
            )
        )
    ).all()
    home = {row.tenant_id for row in placed if row.node_id == node_id}
    if default == node_id:
        unplaced = await connection.scalars(
            select(Tenant.id).where(
                ~select(TenantPlacement.tenant_id)
                .where(TenantPlacement.tenant_id == Tenant.id)
                .exists()
            )
        )
        home |= set(unplaced.all())
    standby = {row.tenant_id for row in placed if row.standby_node_id == node_id}
    return HeldTenants(frozenset(home), frozenset(standby))


async def load_snapshot(
    connection: AsyncConnection, tenant_ids: Sequence[int] | None = None
) -> Snapshot:
    """Every live tenant's configuration (or only ``tenant_ids``'), and the trunks."""
    reader = await SnapshotReader.open(connection)
    rows = await reader.tenant_rows(tenant_ids)
    tenants = await reader.tenants(rows, whole=tenant_ids is None)
    return Snapshot(tenants, await reader.trunks())


class SnapshotReader:
    """One REPEATABLE READ view of the configuration, read in parts: a full pass reads its
    tenants a chunk at a time and hands each chunk to the rendering workers while it reads
    the next (asterisk/applier.py), every chunk from the same view.

    Opened on a connection whose transaction has not run anything yet.
    """

    def __init__(self, connection: AsyncConnection, raw: Any) -> None:
        self._connection = connection
        self._raw = raw

    @classmethod
    async def open(cls, connection: AsyncConnection) -> SnapshotReader:
        await connection.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        raw = (await connection.get_raw_connection()).driver_connection
        assert raw is not None  # noqa: S101 - an open connection has its driver connection
        return cls(connection, raw)

    async def _fetch(self, statement: Any) -> list[Any]:
        # Hot path: asyncpg decodes rows and arrays in C, several times faster than result
        # processing at thousands of tenants. Only ids and constants are inlined.
        sql = statement.compile(
            dialect=self._connection.dialect, compile_kwargs={"literal_binds": True}
        )
        return list(await self._raw.fetch(str(sql)))

    async def tenant_rows(self, tenant_ids: Sequence[int] | None = None) -> list[Any]:
        """The live tenants (or those of ``tenant_ids``), by id: what ``tenants`` reads."""
        statement = (
            select(Tenant.id, Tenant.slug, Tenant.name, Tenant.status)
            .where(Tenant.status != TenantStatus.TERMINATED.value)
            .order_by(Tenant.id)
        )
        if tenant_ids is not None:
            statement = statement.where(Tenant.id.in_(tenant_ids))
        return await self._fetch(statement)

    async def tenants(self, rows: Sequence[Any], *, whole: bool = False) -> tuple[TenantConf, ...]:
        """The configuration of the tenants of ``rows`` (a slice of ``tenant_rows``, by id).

        ``whole``: ``rows`` are every live tenant, so each table is read whole rather than
        filtered; a slice of all tenants is read by its range of ids, any other set by its ids.
        """
        if not rows:
            return ()
        ids = [row["id"] for row in rows]

        def scoped(statement: Any, column: Any) -> Any:
            if whole:
                return statement
            if len(ids) > 1 and ids[-1] - ids[0] + 1 <= 2 * len(ids):
                return statement.where(column.between(ids[0], ids[-1]))
            return statement.where(column.in_(ids))

        async def rows_of(statement: Any, column: Any) -> dict[int, list[Any]]:
            return _by_tenant(await self._fetch(scoped(statement, column)))

        devices = await rows_of(
            select(*_columns(AgentDevice, Device)).order_by(AgentDevice.extension),
            AgentDevice.tenant_id,
        )
        queues = await rows_of(
            select(*_columns(Queue, QueueConf, fallback=("fallback_type", "fallback_id"))).order_by(
                Queue.id
            ),
            Queue.tenant_id,
        )
        menus = await rows_of(select(*IvrMenu.__table__.c).order_by(IvrMenu.id), IvrMenu.tenant_id)
        options = await rows_of(
            select(
                IvrOption.tenant_id,
                IvrOption.menu_id,
                IvrOption.digit,
                IvrOption.dest_type,
                IvrOption.dest_id,
            ).order_by(IvrOption.menu_id, IvrOption.digit),
            IvrOption.tenant_id,
        )
        boxes = await rows_of(
            select(
                VoicemailBox.tenant_id,
                VoicemailBox.id,
                VoicemailBox.number,
                VoicemailBox.name,
                VoicemailBox.pin,
                VoicemailBox.email,
                VoicemailBox.greeting_prompt_id,
            ).order_by(VoicemailBox.number),
            VoicemailBox.tenant_id,
        )
        prompts = await rows_of(
            select(Prompt.tenant_id, Prompt.id, Prompt.sha256).order_by(Prompt.id), Prompt.tenant_id
        )
        schedules = await rows_of(
            select(
                Schedule.tenant_id,
                Schedule.id,
                Schedule.timezone,
                Schedule.weekly,
                Schedule.holidays,
            ).order_by(Schedule.id),
            Schedule.tenant_id,
        )
        inbound = await rows_of(
            select(
                InboundRoute.tenant_id,
                InboundRoute.id,
                PhoneNumber.e164,
                InboundRoute.schedule_id,
                InboundRoute.open_dest_type,
                InboundRoute.open_dest_id,
                InboundRoute.closed_dest_type,
                InboundRoute.closed_dest_id,
            )
            .join(PhoneNumber, PhoneNumber.id == InboundRoute.number_id)
            .where(
                PhoneNumber.tenant_id == InboundRoute.tenant_id, PhoneNumber.status == "assigned"
            )
            .order_by(PhoneNumber.e164),
            InboundRoute.tenant_id,
        )
        outbound = await rows_of(
            select(
                OutboundRoute.tenant_id,
                OutboundRoute.id,
                OutboundRoute.name,
                Trunk.name.label("trunk"),
                PhoneNumber.e164.label("caller_id"),
                OutboundRoute.allowed_countries,
                OutboundRoute.priority,
                OutboundRoute.caller_id_name,
                Trunk.forwarded_caller_id,
            )
            .join(Trunk, Trunk.id == OutboundRoute.trunk_id)
            .join(PhoneNumber, PhoneNumber.id == OutboundRoute.caller_id_number_id)
            .where(Trunk.enabled.is_(True), PhoneNumber.tenant_id == OutboundRoute.tenant_id)
            .order_by(OutboundRoute.priority.desc(), OutboundRoute.id),
            OutboundRoute.tenant_id,
        )
        moh_classes = await rows_of(
            select(MohClass.tenant_id, MohClass.id, MohClass.name).order_by(MohClass.id),
            MohClass.tenant_id,
        )
        moh_prompts = await rows_of(
            select(
                MohClassPrompt.tenant_id,
                MohClassPrompt.class_id,
                Prompt.id,
                Prompt.sha256,
            )
            .join(Prompt, Prompt.id == MohClassPrompt.prompt_id)
            .order_by(MohClassPrompt.class_id, MohClassPrompt.position),
            MohClassPrompt.tenant_id,
        )
        agents = await rows_of(
            select(User.tenant_id, User.id, User.display_name).where(
                User.role == "agent", User.disabled.is_(False)
            ),
            User.tenant_id,
        )
        rules = await rows_of(
            select(
                RecordingRule.tenant_id,
                RecordingRule.queue_id,
                RecordingRule.user_id,
                RecordingRule.direction,
                RecordingRule.mode,
            ).order_by(RecordingRule.id),
            RecordingRule.tenant_id,
        )
        announcements = await rows_of(
            select(RecordingSettings.tenant_id, RecordingSettings.announce_prompt_id).where(
                RecordingSettings.announce_prompt_id.is_not(None)
            ),
            RecordingSettings.tenant_id,
        )
        externals = await rows_of(
            select(ExternalNumber.tenant_id, ExternalNumber.id, ExternalNumber.number).order_by(
                ExternalNumber.id
            ),
            ExternalNumber.tenant_id,
        )
        forwarding = await rows_of(
            select(*UserForwarding.__table__.c).order_by(UserForwarding.id),
            UserForwarding.tenant_id,
        )
        follow_me = await rows_of(
            select(*FollowMe.__table__.c).order_by(FollowMe.id), FollowMe.tenant_id
        )
        follow_me_members = await rows_of(
            select(*FollowMeMember.__table__.c).order_by(FollowMeMember.id),
            FollowMeMember.tenant_id,
        )
        return tuple(
            _tenant(
                t,
                devices,
                queues,
                menus,
                options,
                boxes,
                prompts,
                schedules,
                inbound,
                outbound,
                agents,
                moh_classes,
                moh_prompts,
                rules,
                announcements,
                externals,
                forwarding,
                follow_me,
                follow_me_members,
            )
            for t in rows
        )

    async def trunks(self) -> tuple[TrunkConf, ...]:
        """Every trunk: each tenant's outbound routes name them."""
        trunks = await self._fetch(select(*Trunk.__table__.c).order_by(Trunk.name))
        return tuple(
            TrunkConf(
                t["id"],
                t["name"],
                t["host"],
                t["port"],
                t["transport"],
                t["country"],
                t["username"],
                t["password"],
                t["enabled"],
                t["match"],
                tuple(t["inbound_addresses"]),
                t["match_header"],
                t["inbound_username"],
                t["inbound_password"],
                # Only what was resolved from the current host name.
                tuple(t["resolved_addresses"]) if t["resolved_host"] == t["host"] else (),
            )
            for t in trunks
        )


def _tenant(
    tenant: Any,
    devices: dict[int, list[Any]],
    queues: dict[int, list[Any]],
    menus: dict[int, list[Any]],
    options: dict[int, list[Any]],
    boxes: dict[int, list[Any]],
    prompts: dict[int, list[Any]],
    schedules: dict[int, list[Any]],
    inbound: dict[int, list[Any]],
    outbound: dict[int, list[Any]],
    agents: dict[int, list[Any]],
    moh_classes: dict[int, list[Any]],
    moh_prompts: dict[int, list[Any]],
    rules: dict[int, list[Any]],
    announcements: dict[int, list[Any]],
    externals: dict[int, list[Any]],
    forwarding: dict[int, list[Any]],
    follow_me: dict[int, list[Any]],
    follow_me_members: dict[int, list[Any]],
) -> TenantConf:
    tid = tenant["id"]
    names = {row["id"]: row["display_name"] for row in agents.get(tid, [])}
    by_user: dict[int, list[str]] = defaultdict(list)
    tenant_devices = []
    for d in devices.get(tid, []):
        tenant_devices.append(
            Device(
                d["id"],
                d["user_id"],
                d["sip_username"],
                d["password_ha1"],
                d["extension"],
                tuple(d["codecs"]),
                d["transport"],
                d["max_contacts"],
            )
        )
        if d["user_id"] in names:
            by_user[d["user_id"]].append(d["sip_username"])
    class_prompts: dict[int, list[PromptConf]] = defaultdict(list)
    for p in moh_prompts.get(tid, []):
        class_prompts[p["class_id"]].append(PromptConf(p["id"], p["sha256"]))
    menu_options: dict[int, list[tuple[str, Dest]]] = defaultdict(list)
    for o in options.get(tid, []):
        menu_options[o["menu_id"]].append((o["digit"], Dest(o["dest_type"], o["dest_id"])))
    return TenantConf(
        id=tid,
        slug=tenant["slug"],
        name=tenant["name"],
        status=tenant["status"],
        devices=tuple(tenant_devices),
        agents={user: tuple(usernames) for user, usernames in by_user.items()},
        agent_names=names,
        queues=tuple(
            QueueConf(
                q["id"],
                q["name"],
                q["strategy"],
                q["ring_timeout"],
                q["retry"],
                q["wrapup_time"],
                q["max_wait"],
                _dest(q["fallback_type"], q["fallback_id"]),
                q["music_on_hold"],
                q["announce_position"],
                q["announce_holdtime"],
                q["announce_frequency"],
                q["weight"],
                q["service_level_seconds"],
                q["join_empty"],
                q["leave_when_empty"],
            )
            for q in queues.get(tid, [])
        ),
        ivrs=tuple(
            IvrConf(
                m["id"],
                m["name"],
                m["greeting_prompt_id"],
                m["timeout_s"],
                m["repeat_count"],
                Dest(m["timeout_dest_type"], m["timeout_dest_id"]),
                Dest(m["invalid_dest_type"], m["invalid_dest_id"]),
                tuple(menu_options.get(m["id"], ())),
            )
            for m in menus.get(tid, [])
        ),
        voicemail=tuple(
            VoicemailConf(
                b["id"], b["number"], b["name"], b["pin"], b["email"], b["greeting_prompt_id"]
            )
            for b in boxes.get(tid, [])
        ),
        prompts=tuple(PromptConf(p["id"], p["sha256"]) for p in prompts.get(tid, [])),
        schedules=tuple(
            ScheduleConf(
                s["id"],
                s["timezone"],
                tuple((int(r["day"]), str(r["open"]), str(r["close"])) for r in _json(s["weekly"])),
                tuple(str(h) for h in _json(s["holidays"])),
            )
            for s in schedules.get(tid, [])
        ),
        inbound=tuple(
            InboundConf(
                r["id"],
                r["e164"],
                r["schedule_id"],
                Dest(r["open_dest_type"], r["open_dest_id"]),
                _dest(r["closed_dest_type"], r["closed_dest_id"]),
            )
            for r in inbound.get(tid, [])
        ),
        outbound=tuple(
            OutboundConf(
                r["id"],
                r["name"],
                r["trunk"],
                r["caller_id"],
                tuple(r["allowed_countries"]),
                r["priority"],
                r["caller_id_name"],
                r["forwarded_caller_id"],
            )
            for r in outbound.get(tid, [])
        ),
        moh_classes=tuple(
            MohClassConf(c["id"], c["name"], tuple(class_prompts.get(c["id"], ())))
            for c in moh_classes.get(tid, [])
        ),
        recording_rules=tuple(
            Rule(
                r["queue_id"],
                r["user_id"],
                Direction(r["direction"]) if r["direction"] else None,
                Mode(r["mode"]),
            )
            for r in rules.get(tid, [])
        ),
        recording_announcement=next(
            (a["announce_prompt_id"] for a in announcements.get(tid, [])), None
        ),
        external_numbers=tuple(ExternalConf(e["id"], e["number"]) for e in externals.get(tid, [])),
        forwarding={f["id"]: _forwarding(f) for f in forwarding.get(tid, [])},
        follow_me=_follow_me(follow_me.get(tid, []), follow_me_members.get(tid, [])),
    )


def _follow_me(rows: list[Any], members: list[Any]) -> tuple[FollowMeConf, ...]:
    by_step: dict[tuple[int, int], list[FollowMeMemberConf]] = defaultdict(list)
    for m in members:
        by_step[(m["follow_me_id"], m["step"])].append(
            FollowMeMemberConf(m["dest_type"], m["dest_id"], m["confirm"])
        )
    return tuple(
        FollowMeConf(
            f["id"],
            tuple(
                (seconds, tuple(by_step[(f["id"], index)]))
                for index, seconds in enumerate(f["step_seconds"])
            ),
            Dest(f["final_type"], f["final_id"]),
        )
        for f in rows
    )


def _forwarding(row: Any) -> ForwardingConf:
    def target(prefix: str) -> Dest | None:
        return _dest(row[f"{prefix}_type"], row[f"{prefix}_id"])

    return ForwardingConf(
        row["do_not_disturb"],
        target("dnd_dest"),
        target("unconditional"),
        target("busy"),
        target("no_answer"),
        row["no_answer_seconds"],
        target("unreachable"),
    )


async def prompt_audio(connection: AsyncConnection, prompt_id: int) -> bytes | None:
    """A prompt's audio, read only when its file is missing."""
    audio: bytes | None = await connection.scalar(
        select(Prompt.__table__.c.audio).where(Prompt.__table__.c.id == prompt_id)
    )
    return audio
