"""Rendering: a snapshot in, the text of every generated Asterisk file out. No I/O.

Every value reaching a file goes through a filter that either checks it against a strict
alphabet (identifiers, digits, E.164) and refuses anything else, or escapes it for its
position (a PJSIP value, a quoted caller-ID name, a voicemail.conf field).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from datetime import date
from pathlib import Path
from typing import Any

import jinja2
import phonenumbers

from graam_pbx import sip_values
from graam_pbx.ami.agi_auth import KEY_PARAMETER, tenant_token
from graam_pbx.asterisk.snapshot import (
    Dest,
    FollowMeMemberConf,
    InboundConf,
    MohClassConf,
    OutboundConf,
    PromptConf,
    Snapshot,
    TenantConf,
    TrunkConf,
)
from graam_pbx.recordings.policy import dialplan_plan

REPO = Path(__file__).resolve().parent.parent.parent
TEMPLATE_DIRS = (REPO / "dialplans", REPO / "asterisk_conf" / "templates")

SIP_REALM = "graam"
RING_SECONDS = 30
OUTBOUND_RING_SECONDS = 60
# Asterisk's own English prompts; an operator overrides them with a template directory.
SUSPENDED_PROMPT = "ss-noservice"
REFUSED_PROMPT = "cannot-complete-as-dialed"
HANGUP = Dest("hangup", None)
SOUNDS_PATH = "/var/lib/asterisk/graam-sounds"  # where Asterisk sees tenants' prompts
# Where the feature codes reach the control plane's FastAGI server (settings agi_host/port).
DEFAULT_AGI_ADDRESS = ("127.0.0.1", 4573)

# Calls from carrier trunks enter [graam-from-trunk] (asterisk_conf/extensions.conf), which
# sends each to the context named by its number's last FROM_TRUNK_DIGITS digits (the
# dispatcher's ${EXTEN:-3} says the same). One context holding every number of every tenant
# made the dialplan's reload grow with the square of their count: pbx_config inserts each
# extension by walking its context's sorted list (bench.config_render --dialplan-only, 10,000
# tenants: 469 s; 8.2 s split). Three digits, measured on Asterisk 22 with those 100,000
# extensions alone: 100 contexts reload in 6.9 s, 1,000 in 1.9 s, 10,000 in 1.7 s (little
# left to gain past 1,000); at 100 tenants 1,000 contexts cost 11 ms more than 100. Every
# E.164 number has at least seven digits.
FROM_TRUNK_PREFIX = "graam-from-trunk-"
FROM_TRUNK_DIGITS = 3

# The files Asterisk includes (paths relative to the generated directory), by what reloads them.
# Devices' endpoints, auths and AORs are no file: Asterisk reads them from Postgres
# (realtime.py, docs/realtime-sip.md), so a device change reloads nothing of res_pjsip.
TOP_FILES = {
    "pjsip.conf": '#include "graam/trunks.conf"\n',
    "extensions.conf": '#include "graam/tenants/*/extensions.conf"\n',
    "queues.conf": '#include "graam/tenants/*/queues.conf"\n',
    "voicemail.conf": '#include "graam/tenants/*/voicemail.conf"\n',
    "musiconhold.conf": '#include "graam/tenants/*/musiconhold.conf"\n',
    "queuerules.conf": "",
}
TENANT_FILES = {
    "extensions.conf": "tenant.conf.j2",
    "queues.conf": "queues_tenant.conf.j2",
    "voicemail.conf": "voicemail_tenant.conf.j2",
    "musiconhold.conf": "musiconhold_tenant.conf.j2",
}


class RenderError(ValueError):
    """A value does not fit where it would go: nothing is written."""


_IDENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_IDENT_LIST = re.compile(r"^[A-Za-z0-9_.-]+(,[A-Za-z0-9_.-]+)*$")
_DIGITS = re.compile(r"^[0-9]{1,16}$")
_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
_DTMF = re.compile(r"^[0-9*#]$")
_HEX = re.compile(r"^[0-9a-f]{32}$")
_AGI_QUERY = re.compile(r"^(\?key=[0-9a-f]{32})?$")
_HHMM = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$|^24:00$")
_TZ = re.compile(r"^[A-Za-z][A-Za-z0-9_+/-]{0,63}$")
_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _checked(check: Any, what: str) -> Any:
    """A filter from one of sip_values' checks: the API validates with the same function."""

    def render(value: object) -> str:
        try:
            text: str = check(str(value))
        except ValueError as err:
            raise RenderError(f"{what} {str(value)!r}: {err}") from None
        return text

    return render


def inbound_networks(trunk: TrunkConf) -> list[str]:
    """Where a trunk's calls come from, as CIDR: its host when that is an address (else the
    addresses the control plane resolved it to), and its inbound addresses. A host name is
    never among them: Asterisk would resolve it at every reload, blocking for as long as DNS
    takes, and drop the whole identify section when that fails."""
    check = _checked(sip_values.network, "address")
    if sip_values.is_ip(trunk.host):
        networks = [check(trunk.host)]
    else:
        networks = [check(address) for address in trunk.resolved_addresses]
    for address in trunk.inbound_addresses:
        network = check(address)
        if network not in networks:
            networks.append(network)
    return networks


def _strict(pattern: re.Pattern[str], what: str) -> Any:
    def check(value: object) -> str:
        text = str(value)
        if not pattern.match(text):
            raise RenderError(f"{what} {text!r} has characters a config file cannot take")
        return text

    return check


# C0 and C1 controls and Unicode line separators: none may reach a config line.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def conf_value(value: object) -> str:
    """A PJSIP/queues value: one line, ';' escaped (';--' would comment out the rest)."""
    text = str(value)
    if _CONTROL.search(text):
        raise RenderError("a config value cannot hold control characters")
    return text.replace("\\", "\\\\").replace(";", "\\;").strip()


def quoted(value: object) -> str:
    """The name inside ``callerid = "name" <ext>``: no quotes, brackets or control characters."""
    text = _CONTROL.sub("", re.sub(r'["<>\\]', "", str(value)))
    return conf_value(text)[:80]


def vm_text(value: object) -> str:
    """A voicemail.conf field: its separators (',' and '|') and comments cannot appear."""
    text = _CONTROL.sub(" ", re.sub(r"[,|;\[\]]", " ", str(value))).strip()
    return text[:100]


def _hhmm_before(value: object) -> str:
    """GotoIfTime ranges include their last minute: a range closing at 17:00 ends at 16:59."""
    text = _strict(_HHMM, "time")(value)
    hours, minutes = (int(part) for part in text.split(":"))
    total = hours * 60 + minutes - 1
    return f"{total // 60:02d}:{total % 60:02d}"


def _weekday(value: object) -> str:
    day = int(str(value))
    if not 0 <= day <= 6:
        raise RenderError(f"day {value!r} is not 0 (Monday) to 6 (Sunday)")
    return _WEEKDAYS[day]


def _isodate(value: object) -> str:
    return date.fromisoformat(str(value)).isoformat()


def from_trunk_context(e164: str) -> str:
    """The context where calls from trunks find ``e164``'s entries (both its forms: the
    ``+`` changes nothing of its last digits)."""
    number: str = _strict(_E164, "E.164 number")(e164)
    return FROM_TRUNK_PREFIX + number[-FROM_TRUNK_DIGITS:]


def from_trunk_contexts(
    routes: Iterable[InboundConf],
) -> list[tuple[str, list[InboundConf]]]:
    """A tenant's numbers grouped by their context for calls from trunks, in name order."""
    contexts: dict[str, list[InboundConf]] = {}
    for route in routes:
        contexts.setdefault(from_trunk_context(route.e164), []).append(route)
    return sorted(contexts.items())


# How many times one call may be forwarded by users' rules (dialplans/tenant_dest.conf.j2):
# the next forward is refused with cause 25 (SIP 483, too many hops), so a loop between users
# ends there (docs/forwarding.md).
MAX_FORWARDS = 5


def _follow_me_dials(tenant: TenantConf) -> dict[int, list[tuple[int, str]]]:
    """Each follow-me's steps: (seconds, what its Dial rings), a step ringing nothing (a
    person without a phone) left out. A phone is PJSIP/<its username>; a person, all their
    phones (agents' or not); an external number, a Local channel into the tenant's outbound
    routes (through t<id>-confirm-out when it must press 1)."""
    ident = _strict(_IDENT, "identifier")
    e164 = _strict(_E164, "E.164 number")
    devices = {d.id: d.sip_username for d in tenant.devices}
    people: dict[int, list[str]] = {}
    for device in tenant.devices:
        people.setdefault(device.user_id, []).append(device.sip_username)
    numbers = {e.id: e.number for e in tenant.external_numbers}

    def rung(member: FollowMeMemberConf) -> list[str]:
        if member.type == "extension":
            return [f"PJSIP/{ident(devices[member.id])}"] if member.id in devices else []
        if member.type == "agent":
            return [f"PJSIP/{ident(name)}" for name in people.get(member.id, [])]
        if member.id not in numbers:
            return []
        context = "confirm-out" if member.confirm else "outbound"
        return [f"Local/{e164(numbers[member.id])}@t{tenant.id}-{context}/n"]

    dials: dict[int, list[tuple[int, str]]] = {}
    for follow in tenant.follow_me:
        steps = [
            (seconds, "&".join(c for m in members for c in rung(m)))
            for seconds, members in follow.steps
        ]
        dials[follow.id] = [(int(seconds), dial) for seconds, dial in steps if dial]
    return dials


def _dest(destination: Dest) -> str:
    """The extension of a destination in the tenant's ``-dest`` context."""
    prefix = {
        "extension": "ext",
        "agent": "agent",
        "queue": "queue",
        "ivr": "ivr",
        "voicemail": "vm",
        "announcement": "ann",
        "external": "external",
        "follow_me": "followme",
    }
    if destination.type == "hangup" or destination.id is None:
        return "hangup"
    if destination.type not in prefix:
        raise RenderError(f"unknown destination type {destination.type!r}")
    return f"{prefix[destination.type]}-{int(destination.id)}"


def environment(override_dir: Path | None = None) -> jinja2.Environment:
    """The one jinja2 environment: an operator's directory first, then ours."""
    loaders: list[jinja2.BaseLoader] = []
    if override_dir is not None:
        loaders.append(jinja2.FileSystemLoader(str(override_dir)))
    loaders.append(jinja2.FileSystemLoader([str(d) for d in TEMPLATE_DIRS]))
    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader(loaders),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,  # noqa: S701 - Asterisk config, not HTML: every value is filtered
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        ident=_strict(_IDENT, "identifier"),
        ident_list=_strict(_IDENT_LIST, "list"),
        digits=_strict(_DIGITS, "number"),
        e164=_strict(_E164, "E.164 number"),
        e164_digits=lambda value: _strict(_E164, "E.164 number")(value)[1:],
        dtmf=_strict(_DTMF, "DTMF digit"),
        hexdigest=_strict(_HEX, "digest"),
        agi_query=_strict(_AGI_QUERY, "FastAGI query"),
        host=_checked(sip_values.uri_host, "host"),
        sip_user=_checked(sip_values.sip_user, "SIP username"),
        network=_checked(sip_values.network, "address"),
        match_header=_checked(sip_values.match_header, "header"),
        caller_name=_checked(sip_values.caller_name, "caller name"),
        inbound_networks=inbound_networks,
        tz=_strict(_TZ, "time zone"),
        hhmm=_strict(_HHMM, "time"),
        hhmm_before=_hhmm_before,
        weekday=_weekday,
        isodate=_isodate,
        conf_value=conf_value,
        quoted=quoted,
        vm_text=vm_text,
        dest=_dest,
        from_trunk_contexts=from_trunk_contexts,
    )
    return env


def outbound_patterns(routes: tuple[OutboundConf, ...]) -> list[tuple[str, OutboundConf]]:
    """One dial pattern per allowed country calling code, the best route first.

    Countries sharing a calling code (+1, +7, +44…) cannot be told apart by prefix: the
    first route allowing any of them takes the whole code.
    """
    patterns: dict[str, OutboundConf] = {}
    for route in routes:  # already by priority, highest first
        for country in route.allowed_countries:
            code = phonenumbers.country_code_for_region(country)
            if code == 0:
                continue
            pattern = "_+1NXXNXXXXXX" if code == 1 else f"_+{code}X."
            patterns.setdefault(pattern, route)
    return sorted(patterns.items())


def prompt_path(tenant_id: int, prompt_id: int, sha256: str) -> str:
    """Where Asterisk finds a prompt (no extension: Asterisk picks the format)."""
    return f"{SOUNDS_PATH}/t{tenant_id}/p{prompt_id}-{sha256[:12]}"


def moh_directory(tenant_id: int, moh_class: MohClassConf) -> str:
    """Where Asterisk finds a tenant's hold music class: named after its prompts, so that new
    music is a new directory, and a new directory a changed musiconhold.conf (a reload)."""
    digest = hashlib.sha256(",".join(p.sha256 for p in moh_class.prompts).encode()).hexdigest()
    return f"{SOUNDS_PATH}/t{tenant_id}/moh-{moh_class.id}-{digest[:12]}"


def moh_file(position: int, prompt: PromptConf) -> str:
    """A prompt's file name inside its class's directory; sorted by name, in playing order."""
    return f"{position:02d}-p{prompt.id}-{prompt.sha256[:12]}"


def agi_query(tenant_id: int, agi_key: bytes | None) -> str:
    """The query of the tenant's FastAGI URLs: its key (none without ``agi_key``: the
    control plane then refuses every request made through them)."""
    if agi_key is None:
        return ""
    return f"?{KEY_PARAMETER}={tenant_token(agi_key, tenant_id)}"


def render_tenant(
    env: jinja2.Environment,
    tenant: TenantConf,
    *,
    agi_address: tuple[str, int] = DEFAULT_AGI_ADDRESS,
    agi_key: bytes | None = None,
) -> dict[str, str]:
    """The tenant's files, by name inside its directory ``tenants/t<id>/``."""
    context: dict[str, Any] = {
        "tenant": tenant,
        "agi_host": agi_address[0],
        "agi_port": int(agi_address[1]),
        "agi_query": agi_query(tenant.id, agi_key),
        "names": tenant.agent_names,
        "realm": SIP_REALM,
        "ring_seconds": RING_SECONDS,
        "max_forwards": MAX_FORWARDS,
        "follow_me_dials": _follow_me_dials(tenant),
        "outbound_ring_seconds": OUTBOUND_RING_SECONDS,
        "suspended_prompt": SUSPENDED_PROMPT,
        "refused_prompt": REFUSED_PROMPT,
        "hangup": HANGUP,
        "schedules": {schedule.id: schedule for schedule in tenant.schedules},
        "prompt_paths": {p.id: prompt_path(tenant.id, p.id, p.sha256) for p in tenant.prompts},
        "outbound_patterns": outbound_patterns(tenant.outbound),
        # Hold music: the tenant's classes by name (a queue naming another plays "default").
        "moh_classes": {c.name: f"t{tenant.id}-{c.name}" for c in tenant.moh_classes},
        "moh_directories": {c.id: moh_directory(tenant.id, c) for c in tenant.moh_classes},
        "recording": dialplan_plan(
            tenant.recording_rules,
            (queue.id for queue in tenant.queues),
            {device.user_id for device in tenant.devices},
            announced=tenant.recording_announcement is not None,
        ),
    }
    return {
        name: env.get_template(template).render(context) for name, template in TENANT_FILES.items()
    }


def render_trunks(env: jinja2.Environment, snapshot: Snapshot) -> str:
    return env.get_template("pjsip_trunks.conf.j2").render(trunks=snapshot.trunks)


def trunk_file(trunk_id: int) -> str:
    """Where one trunk's PJSIP objects go, relative to the generated directory."""
    return f"trunks/{int(trunk_id)}.conf"


def trunk_files(
    env: jinja2.Environment, snapshot: Snapshot, failures: dict[int, str] | None = None
) -> dict[str, str]:
    """Each trunk in a file of its own, so that one trunk that cannot be rendered leaves
    the others (and its own previous file) alone: with ``failures`` given, such a trunk is
    noted there (id → reason) and left out; without, its RenderError is raised."""
    files = {}
    for trunk in snapshot.trunks:
        try:
            files[trunk_file(trunk.id)] = render_trunks(env, snapshot._replace(trunks=(trunk,)))
        except Exception as err:
            if failures is None:
                raise
            failures[trunk.id] = render_failure(err)
    return files


def render_failure(err: BaseException) -> str:
    """A render failure in one line, for logs and the status API."""
    text = f"{type(err).__name__}: {err}" if not isinstance(err, RenderError) else str(err)
    return _CONTROL.sub(" ", text)[:500]


def trunks_index(trunk_ids: Iterable[int]) -> str:
    """``trunks.conf``: each trunk's file by name. Not a glob: Asterisk refuses a whole
    pjsip.conf whose ``#include`` pattern matches no file (no trunk yet)."""
    lines = "".join(f'#include "graam/{trunk_file(t)}"\n' for t in sorted(set(trunk_ids)))
    return "; generated by graam-pbx: one file per trunk, do not edit\n" + lines


def common_files(env: jinja2.Environment, snapshot: Snapshot) -> dict[str, str]:
    """The files every tenant shares, by path relative to the generated directory."""
    files = trunk_files(env, snapshot)
    index = trunks_index(t.id for t in snapshot.trunks)
    return dict(TOP_FILES, **files, **{"trunks.conf": index})


def tenant_files(
    env: jinja2.Environment,
    tenant: TenantConf,
    *,
    agi_address: tuple[str, int] = DEFAULT_AGI_ADDRESS,
    agi_key: bytes | None = None,
) -> dict[str, str]:
    """One tenant's files, by path relative to the generated directory."""
    rendered = render_tenant(env, tenant, agi_address=agi_address, agi_key=agi_key)
    return {f"tenants/t{tenant.id}/{name}": text for name, text in rendered.items()}


def render_all(
    env: jinja2.Environment,
    snapshot: Snapshot,
    *,
    agi_address: tuple[str, int] = DEFAULT_AGI_ADDRESS,
    agi_key: bytes | None = None,
) -> dict[str, str]:
    """Every generated file of the snapshot, by path relative to the generated directory."""
    files = common_files(env, snapshot)
    for tenant in snapshot.tenants:
        files.update(tenant_files(env, tenant, agi_address=agi_address, agi_key=agi_key))
    return files
