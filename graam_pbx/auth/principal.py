"""Who is calling the API, and in which tenant they act."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class Role(StrEnum):
    OPERATOR = "operator"  # the platform: every tenant
    ADMIN = "admin"  # everything in its tenant
    SUPERVISOR = "supervisor"  # reads its tenant, manages queues and agents' sessions
    AGENT = "agent"  # itself and its own calls


TENANT_ROLES = (Role.ADMIN, Role.SUPERVISOR, Role.AGENT)


class Area(StrEnum):
    """A part of the API an API key may be scoped to: the OpenAPI tag of its routes."""

    AGENT_SESSIONS = "agent sessions"
    ASTERISK_NODES = "asterisk nodes"
    AUDIT = "audit"
    AUTH = "auth"  # API keys themselves
    BILLING = "billing"
    CALL_CONTROL = "call control"  # one's own call (its recording); click-to-call, live calls
    CALL_RECORDS = "call records"
    CAMPAIGNS = "campaigns"
    CATALOGUE = "catalogue"
    CONFIGURATION_STATUS = "configuration status"
    DEVICES = "devices"
    EVENTS = "events"  # the tenant's event stream
    FORWARDING = "forwarding"  # external numbers calls are sent on to
    INBOUND_ROUTES = "inbound routes"
    IVR = "ivr"
    MUSIC_ON_HOLD = "music on hold"
    NOTICES = "notices"
    NUMBERS = "numbers"
    OUTBOUND_ROUTES = "outbound routes"
    PROMPTS = "prompts"
    QUEUES = "queues"
    RECORDINGS = "recordings"
    SCHEDULES = "schedules"
    SIP_BLOCKS = "sip blocks"
    STATISTICS = "statistics"
    SUPERVISION = "supervision"
    SUPPORT = "support"
    TENANTS = "tenants"
    TRUNKS = "trunks"
    USERS = "users"
    VOICEMAIL = "voicemail"
    WEBHOOKS = "webhooks"


# Areas that mint credentials: a key that writes reaches them only when they are named.
CREDENTIAL_AREAS = frozenset({Area.AUTH, Area.USERS})
# HTTP methods that only read; every other one writes.
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Why a caller's access token no longer stands, wherever its account is checked (read by
# auth.service, or by the route's own statement: agent_login's caller-gone, caller-revoked).
ACCOUNT_GONE = "this account is disabled or gone"
TOKEN_REVOKED = "the access token was revoked (password, role or account changed)"  # noqa: S105


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: a user through a token, or an API key."""

    user_id: int
    role: Role
    tenant_id: int | None  # None for operators
    label: str  # e-mail or API key name, for the audit log
    api_key_id: int | None = None
    # An API key's limits (a user's token has none).
    read_only: bool = False
    areas: frozenset[str] | None = None
    expires_at: datetime | None = None
    # The user's token_epoch the credential was checked against (None: not from a credential).
    token_epoch: int | None = None
    # False: taken from an access token's claims alone (deps.allow_checked_by_statement); the
    # route's own statement checks the account against ``token_epoch`` before anything else.
    account_read: bool = True

    @property
    def epoch_to_check(self) -> int | None:
        """The epoch the route's statement must find on the account (None: already read)."""
        return None if self.account_read else self.token_epoch

    @property
    def is_operator(self) -> bool:
        return self.role is Role.OPERATOR

    def refusal(self, method: str, tags: list[str]) -> str | None:
        """Why an API key may not call a route with these tags by ``method`` (None: it may)."""
        if self.api_key_id is None:
            return None
        if self.read_only and method.upper() not in READ_METHODS:
            return "this API key is read-only"
        missing = sorted(set(tags) - (self.areas or frozenset())) if tags else ["(none)"]
        if missing:
            return f"this API key is not scoped to {', '.join(missing)}"
        return None


@dataclass(frozen=True)
class Scope:
    """The tenant a request acts in, and who acts; every service query is filtered by it."""

    tenant_id: int
    principal: Principal
    address: str | None = None

    @property
    def role(self) -> Role:
        return self.principal.role
