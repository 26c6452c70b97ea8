"""Who is calling the API, and in which tenant they act."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    OPERATOR = "operator"  # the platform: every tenant
    ADMIN = "admin"  # everything in its tenant
    SUPERVISOR = "supervisor"  # reads its tenant, manages queues and agents' sessions
    AGENT = "agent"  # itself and its own calls


TENANT_ROLES = (Role.ADMIN, Role.SUPERVISOR, Role.AGENT)


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: a user through a token, or an API key."""

    user_id: int
    role: Role
    tenant_id: int | None  # None for operators
    label: str  # e-mail or API key name, for the audit log
    api_key_id: int | None = None

    @property
    def is_operator(self) -> bool:
        return self.role is Role.OPERATOR


@dataclass(frozen=True)
class Scope:
    """The tenant a request acts in, and who acts; every service query is filtered by it."""

    tenant_id: int
    principal: Principal
    address: str | None = None

    @property
    def role(self) -> Role:
        return self.principal.role
