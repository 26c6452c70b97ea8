"""Login throttling that holds across API processes, and the bounds of a login burst.

Counting failures and refusing are one step per account and per address: a login takes a
Postgres advisory transaction lock on its account, then on its address, counts the failures
of the window (a reserved attempt counts as one until its outcome is known), and either
records a refusal or reserves its own attempt, in one short transaction. The password is
then verified with no database connection held, and the outcome is recorded in a second
short transaction. However many processes take guesses at once, an account never gets more
than ``login_max_failures`` passwords verified per window.

Within one process, ``LoginGate`` bounds the database transactions logins run at once (so a
burst never drains the pool other requests need) and the password verifications at once
(argon2 costs CPU and memory); a login that cannot get a slot within
``login_queue_timeout`` is answered 503 with ``Retry-After``.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from graam_pbx import metrics
from graam_pbx.auth.models import COUNTED_FAILURE, LoginAttempt
from graam_pbx.errors import Unavailable
from graam_pbx.settings import Settings

# An attempt reserved, its password not checked yet: counted as a failure meanwhile.
PENDING = "pending"
# Attempts that never reached a password check: kept, never counted (COUNTED_FAILURE).
THROTTLED = "throttled"
BUSY = "busy"

# The two-key form of Postgres' advisory locks: one key space per kind, so an account never
# waits on an address's lock by accident. Every login takes its account's lock before its
# address's, so two logins never wait on each other in a cycle.
_ACCOUNT_LOCKS = 0x6C6F6701
_ADDRESS_LOCKS = 0x6C6F6702

BUSY_RETRY_AFTER = 1


class LoginBusy(Unavailable):
    error_id = "login-busy"


@dataclass(frozen=True)
class Refusal:
    """Too many failures in the window: refused without a password check."""

    retry_after: int
    per: str  # "account" or "address"


@dataclass(frozen=True)
class Reservation:
    """An attempt row reserved (counted as a failure) until its outcome is recorded."""

    attempt_id: int


class LoginGate:
    """How many logins of this process use the database, and verify passwords, at once."""

    def __init__(self, *, transactions: int, verifications: int, wait: float) -> None:
        self._transactions = asyncio.Semaphore(max(1, transactions))
        self._verifications = asyncio.Semaphore(max(1, verifications))
        self.wait = wait

    @classmethod
    def from_settings(cls, settings: Settings) -> LoginGate:
        # A quarter of the pool at most: a login burst leaves the rest to every other request.
        return cls(
            transactions=max(1, settings.db_pool_size // 4),
            verifications=settings.login_concurrency,
            wait=settings.login_queue_timeout,
        )

    @asynccontextmanager
    async def transaction(self, *, bounded: bool = True) -> AsyncIterator[None]:
        """A slot for one short login transaction; bounded: 503 when none frees in time."""
        if bounded:
            await self._acquire(self._transactions)
        else:
            await self._transactions.acquire()
        try:
            yield
        finally:
            self._transactions.release()

    @asynccontextmanager
    async def verification(self) -> AsyncIterator[None]:
        """A slot for one password verification; 503 when none frees in time."""
        await self._acquire(self._verifications)
        try:
            yield
        finally:
            self._verifications.release()

    async def _acquire(self, slots: asyncio.Semaphore) -> None:
        try:
            async with asyncio.timeout(self.wait):
                await slots.acquire()
        except TimeoutError:
            metrics.LOGIN_ATTEMPTS.labels(outcome=BUSY).inc()
            raise LoginBusy(
                "too many logins at once; try again shortly", retry_after=BUSY_RETRY_AFTER
            ) from None


def account_key(email: str, tenant_slug: str | None) -> str:
    return f"{tenant_slug or ''}/{email}"


async def reserve(
    session: AsyncSession,
    settings: Settings,
    *,
    email: str,
    tenant_slug: str | None,
    address: str | None,
) -> Refusal | Reservation:
    """In the caller's (short) transaction: refuse and record it, or reserve an attempt.

    The advisory locks are held until that transaction ends, so the count and the row that
    follows it are one step for every other login of the same account or address.
    """
    await session.execute(
        select(
            func.pg_advisory_xact_lock(
                _ACCOUNT_LOCKS, func.hashtext(account_key(email, tenant_slug))
            )
        )
    )
    if address is not None:
        await session.execute(
            select(func.pg_advisory_xact_lock(_ADDRESS_LOCKS, func.hashtext(address)))
        )
    per_account = (
        LoginAttempt.email == email,
        LoginAttempt.tenant_slug.is_not_distinct_from(tenant_slug),
    )
    refusal: Refusal | None = None
    retry_after = await _over_limit(session, settings, per_account, settings.login_max_failures)
    if retry_after is not None:
        refusal = Refusal(retry_after, "account")
    elif address is not None:
        retry_after = await _over_limit(
            session,
            settings,
            (LoginAttempt.address == address,),
            settings.login_max_failures_per_address,
        )
        if retry_after is not None:
            refusal = Refusal(retry_after, "address")
    attempt = LoginAttempt(
        email=email[:254],
        tenant_slug=tenant_slug,
        address=address,
        user_id=None,
        success=False,
        reason=PENDING if refusal is None else THROTTLED,
    )
    session.add(attempt)
    await session.flush()
    if refusal is not None:
        metrics.LOGIN_ATTEMPTS.labels(outcome=THROTTLED).inc()
        return refusal
    return Reservation(attempt.id)


async def _over_limit(
    session: AsyncSession, settings: Settings, which: tuple[object, ...], limit: int
) -> int | None:
    """Seconds until the failures counted by ``which`` fall below ``limit``; None: below."""
    window = timedelta(seconds=settings.login_window)
    # The limit-th latest failure of the window: none, below the limit; else its expiry is
    # what brings the count below it.
    row = (
        await session.execute(
            select(LoginAttempt.at, func.now())
            .where(
                *which,  # type: ignore[arg-type]
                text(COUNTED_FAILURE),
                LoginAttempt.at > func.now() - window,
            )
            .order_by(LoginAttempt.at.desc())
            .offset(limit - 1)
            .limit(1)
        )
    ).one_or_none()
    if row is None:
        return None
    at, now = row
    return max(1, math.ceil((at + window - now).total_seconds()))


async def record_outcome(
    session: AsyncSession, attempt_id: int, *, user_id: int | None, reason: str
) -> None:
    """In the caller's (short) transaction: a reserved attempt's outcome."""
    await session.execute(
        update(LoginAttempt)
        .where(LoginAttempt.id == attempt_id)
        .values(user_id=user_id, success=reason == "ok", reason=reason)
    )
    if reason != BUSY:  # counted when the wait ran out
        metrics.LOGIN_ATTEMPTS.labels(outcome=reason).inc()
