"""The phones' feature codes over FastAGI: ``*45`` login, ``*46`` logout, ``*47`` pause
toggle; ``*72<number>`` forward every call, ``*73`` stop, ``*78`` do-not-disturb on, ``*79``
off (graam_pbx/forwarding/rules.py: the calling user's own rules).

``*47<code>`` pauses with that code of the tenant's pause-reason catalogue; a code it lacks
changes nothing and the caller hears ``invalid`` (``GRAAM_AGENT_RESULT=unknown-reason``).
``*72<number>``: an extension of the tenant, or ``00`` and a number in international form
(``*720033612345678`` for +33612345678), kept as one of the tenant's external numbers; any
other number changes nothing and the caller hears ``invalid`` (``unknown-number``).

The dialplan's feature codes run ``AGI(agi://<host>:<port>/<script>[,<reason>])``. Who calls
comes from the channel variables every device's endpoint sets (``GRAAM_TENANT``,
``GRAAM_DEVICE``, ``GRAAM_AGENT``): Asterisk set them on the authenticated endpoint, the
caller cannot. The same session functions as the API's do the work, in one transaction
committed before the caller hears how it ended; the outcome is also left in the channel
variable ``GRAAM_AGENT_RESULT``.

Anything that reaches the FastAGI port could claim to be any phone: a request acts only once
it proved it comes from Asterisk for that phone (``ami/agi_auth.py``): the tenant's key in the
URL, and the channel, as Asterisk describes it over AMI, running AGI on that device's own
endpoint with its variables. Otherwise nothing changes, the request is answered ``forbidden``
and counted in ``graam_agi_refusals_total{reason}``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from graam_pbx.agents import service as devices_service
from graam_pbx.agents import sessions as sessions_service
from graam_pbx.agents.pause_reasons import UnknownPauseReason
from graam_pbx.agents.sessions import LicenceExhausted
from graam_pbx.ami.actions import ListActionSender
from graam_pbx.ami.agi_auth import channel_facts, request_token, token_matches
from graam_pbx.ami.errors import AmiError
from graam_pbx.ami.fastagi import AgiSession
from graam_pbx.auth.principal import Principal, Role, Scope
from graam_pbx.destinations.schemas import Destination, DestinationType
from graam_pbx.errors import Conflict, GraamError, NotFound
from graam_pbx.forwarding import rules as forwarding_rules
from graam_pbx.forwarding import service as forwarding_service
from graam_pbx.forwarding.schemas import ExternalNumberCreate
from graam_pbx.metrics import AGI_REFUSALS

log = logging.getLogger(__name__)

RESULT_VARIABLE = "GRAAM_AGENT_RESULT"
# Asterisk's own English prompts (the sandbox has them); one or more per outcome.
PROMPTS: dict[str, tuple[str, ...]] = {
    "loggedin": ("agent-loginok",),
    "already": ("agent-alreadyon",),
    "refused": ("all-circuits-busy-now",),
    "loggedout": ("agent-loggedoff",),
    "not-logged-in": ("agent-loggedoff",),
    "paused": ("dictate/paused",),
    "unpaused": ("dictate/paused", "de-activated"),
    "unknown-reason": ("invalid",),  # *47<code> with a code the tenant's catalogue lacks
    "forwarding": ("call-fwd-unconditional", "activated"),
    "not-forwarding": ("call-fwd-unconditional", "cancelled"),
    "unknown-number": ("invalid",),  # *72<digits> with no such extension, no valid number
    "dnd-on": ("do-not-disturb", "activated"),
    "dnd-off": ("do-not-disturb", "de-activated"),
    "failed": ("cannot-complete-as-dialed",),
    "forbidden": ("cannot-complete-as-dialed",),
}
SCRIPTS = ("login", "logout", "pause", "forward", "dnd")
MAX_REASON_DIGITS = 8
MAX_NUMBER_DIGITS = 17  # "00" and the 15 digits of the longest E.164 number
# Asking Asterisk about the channel: one Status action and one small query.
VERIFY_TIMEOUT = 5.0


@dataclass(frozen=True)
class Caller:
    scope: Scope
    device_id: int


def handler(
    sessions: async_sessionmaker[AsyncSession],
    *,
    ami: ListActionSender,
    agi_key: bytes,
    route: Callable[[int], Awaitable[ListActionSender]] | None = None,
) -> Callable[[AgiSession], Awaitable[None]]:
    """The FastAGI handler of the feature codes, over ``sessions``; ``ami`` and ``agi_key``
    (``agi_auth.agi_key``, as the dialplan was rendered with) verify each request.
    ``route`` names the connection to the tenant's own Asterisk (its node: the phone's
    channel lives there); without it, ``ami`` is asked."""

    async def sender(tenant_id: int) -> ListActionSender:
        return ami if route is None else await route(tenant_id)

    async def handle(agi: AgiSession) -> None:
        script = agi.script
        caller = await _caller(agi)
        outcome = "failed"
        if script in SCRIPTS and caller is not None:
            try:
                refusal = await _refusal(sessions, sender, agi_key, agi, caller)
                if refusal is None:
                    outcome = await _run(sessions, script, caller, agi.arguments)
                else:
                    AGI_REFUSALS.labels(reason=refusal).inc()
                    log.warning(
                        "agent phone code refused: not proven to come from Asterisk "
                        "script=%s tenant=%d device=%d reason=%s",
                        script,
                        caller.scope.tenant_id,
                        caller.device_id,
                        refusal,
                    )
                    outcome = "forbidden"
            except Exception:
                log.exception("agent phone code failed script=%s", script)
        log.info(
            "agent phone code script=%s tenant=%s agent=%s outcome=%s",
            script,
            caller.scope.tenant_id if caller else None,
            caller.scope.principal.user_id if caller else None,
            outcome,
        )
        await agi.set_variable(RESULT_VARIABLE, outcome)
        for prompt in PROMPTS[outcome]:
            await agi.stream_file(prompt)

    return handle


async def _caller(agi: AgiSession) -> Caller | None:
    """The calling device and its agent, from the variables its endpoint set."""
    value = await agi.get_variable_expression("${GRAAM_TENANT},${GRAAM_DEVICE},${GRAAM_AGENT}")
    parts = (value or "").split(",")
    if len(parts) != 3 or not all(part.isdigit() and len(part) < 19 for part in parts):
        return None
    tenant_id, device_id, user_id = (int(part) for part in parts)
    principal = Principal(user_id, Role.AGENT, tenant_id, f"phone:device-{device_id}")
    return Caller(Scope(tenant_id, principal), device_id)


async def _refusal(
    sessions: async_sessionmaker[AsyncSession],
    sender: Callable[[int], Awaitable[ListActionSender]],
    key: bytes,
    agi: AgiSession,
    caller: Caller,
) -> str | None:
    """Why the request is not proven to come from Asterisk for ``caller`` (None: it is)."""
    tenant_id = caller.scope.tenant_id
    if not token_matches(key, tenant_id, request_token(agi.env.get("agi_request", ""))):
        return "key"
    try:
        async with asyncio.timeout(VERIFY_TIMEOUT):
            facts = await channel_facts(await sender(tenant_id), agi.channel)
    except (AmiError, GraamError, TimeoutError) as err:  # GraamError: its node is down
        log.warning("agent phone code cannot be verified over AMI error=%s", err)
        return "unverified"
    if facts is None:
        return "channel"
    user_id = caller.scope.principal.user_id
    claimed = {
        "GRAAM_TENANT": str(tenant_id),
        "GRAAM_DEVICE": str(caller.device_id),
        "GRAAM_AGENT": str(user_id),
    }
    if any(facts.variables.get(name) != value for name, value in claimed.items()):
        return "device"
    # The variables are inherited by the channels a phone calls: only its own endpoint counts.
    try:
        async with asyncio.timeout(VERIFY_TIMEOUT), sessions() as session:
            # As the agent it claims to be: only a device of its own is found.
            device = await devices_service.get_device(session, caller.scope, caller.device_id)
    except NotFound:
        return "device"
    except TimeoutError:
        return "unverified"
    if facts.variables.get("CHANNEL(endpoint)") != device.sip_username:
        return "device"
    # The phone's own channel, but in a call rather than dialing a code.
    if facts.application != "AGI":
        return "channel"
    return None


async def _run(
    sessions: async_sessionmaker[AsyncSession], script: str, caller: Caller, arguments: list[str]
) -> str:
    scope = caller.scope
    user_id = scope.principal.user_id
    # One transaction, committed even after a refusal: the refused event is kept.
    async with sessions() as session, session.begin():
        try:
            if script == "login":
                result = await sessions_service.login(
                    session, scope, user_id, device_id=caller.device_id, source="phone"
                )
                return "loggedin" if result.created else "already"
            if script == "logout":
                await sessions_service.logout(session, scope, user_id, source="phone")
                return "loggedout"
            if script in ("forward", "dnd"):
                return await _forwarding(session, scope, script, arguments)
            reason = arguments[0] if arguments else ""
            if reason and not (reason.isdigit() and len(reason) <= MAX_REASON_DIGITS):
                return "unknown-reason"  # no catalogue code looks like it
            live = await sessions_service.toggle_pause(
                session, scope, user_id, reason or None, source="phone"
            )
            return "paused" if live.paused else "unpaused"
        except UnknownNumber:
            return "unknown-number"
        except LicenceExhausted:
            return "refused"
        except UnknownPauseReason:
            return "unknown-reason"  # nothing changed: the agent stays as it was
        except Conflict:
            return "already"  # logged in on another device
        except NotFound:
            return "not-logged-in" if script != "login" else "failed"
        except GraamError as err:
            log.warning("agent phone code refused script=%s error=%s", script, err.message)
            return "failed"


class UnknownNumber(Exception):
    """``*72<digits>`` names neither an extension of the tenant nor a valid number."""


async def _forward_target(session: AsyncSession, scope: Scope, digits: str) -> Destination:
    """What ``*72<digits>`` forwards to: the tenant's extension, or ``00<number>``."""
    if digits.startswith("00"):
        try:
            number = ExternalNumberCreate(name="Forwarded from a phone", number=f"+{digits[2:]}")
        except ValidationError:
            raise UnknownNumber from None
        external = await forwarding_service.number_named(session, scope, number)
        return Destination(type=DestinationType.EXTERNAL, id=external.id)
    device = await devices_service.device_by_extension(session, scope, digits)
    if device is None:
        raise UnknownNumber
    return Destination(type=DestinationType.EXTENSION, id=device.id)


async def _forwarding(
    session: AsyncSession, scope: Scope, script: str, arguments: list[str]
) -> str:
    user_id = scope.principal.user_id
    argument = arguments[0] if arguments else ""
    if script == "dnd":
        on = argument == "on"
        await forwarding_rules.change_rules(session, scope, user_id, do_not_disturb=on)
        return "dnd-on" if on else "dnd-off"
    if not argument:
        await forwarding_rules.change_rules(session, scope, user_id, unconditional=None)
        return "not-forwarding"
    if not (argument.isdigit() and len(argument) <= MAX_NUMBER_DIGITS):
        raise UnknownNumber
    target = await _forward_target(session, scope, argument)
    await forwarding_rules.change_rules(session, scope, user_id, unconditional=target)
    return "forwarding"
