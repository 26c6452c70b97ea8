"""The agents' phone codes over FastAGI: ``*45`` login, ``*46`` logout, ``*47`` pause toggle.

The dialplan's feature codes run ``AGI(agi://<host>:<port>/<script>[,<reason>])``. Who calls
comes from the channel variables every device's endpoint sets (``GRAAM_TENANT``,
``GRAAM_DEVICE``, ``GRAAM_AGENT``): Asterisk set them on the authenticated endpoint, the
caller cannot. The same session functions as the API's do the work, in one transaction
committed before the caller hears how it ended; the outcome is also left in the channel
variable ``GRAAM_AGENT_RESULT``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from graam_pbx.agents import sessions as sessions_service
from graam_pbx.agents.sessions import LicenceExhausted
from graam_pbx.ami.fastagi import AgiSession
from graam_pbx.auth.principal import Principal, Role, Scope
from graam_pbx.errors import Conflict, GraamError, NotFound

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
    "failed": ("cannot-complete-as-dialed",),
}
SCRIPTS = ("login", "logout", "pause")
MAX_REASON_DIGITS = 8


@dataclass(frozen=True)
class Caller:
    scope: Scope
    device_id: int


def handler(sessions: async_sessionmaker[AsyncSession]) -> Callable[[AgiSession], Awaitable[None]]:
    """The FastAGI handler of the feature codes, over ``sessions``."""

    async def handle(agi: AgiSession) -> None:
        script = agi.script
        caller = await _caller(agi)
        outcome = "failed"
        if script in SCRIPTS and caller is not None:
            try:
                outcome = await _run(sessions, script, caller, agi.arguments)
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
            reason = arguments[0] if arguments else ""
            live = await sessions_service.toggle_pause(
                session,
                scope,
                user_id,
                reason if reason.isdigit() and len(reason) <= MAX_REASON_DIGITS else None,
                source="phone",
            )
            return "paused" if live.paused else "unpaused"
        except LicenceExhausted:
            return "refused"
        except Conflict:
            return "already"  # logged in on another device
        except NotFound:
            return "not-logged-in" if script != "login" else "failed"
        except GraamError as err:
            log.warning("agent phone code refused script=%s error=%s", script, err.message)
            return "failed"
