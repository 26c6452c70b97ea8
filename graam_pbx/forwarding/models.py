from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, CheckConstraint, ForeignKey, Identity, Integer, String
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from graam_pbx.db import Base, TenantOwned, Timestamped, Versioned
from graam_pbx.destinations.models import DESTINATION_CHECK


class ExternalNumber(TenantOwned, Timestamped, Versioned, Base):
    """A number outside the switch that calls can be sent to (a destination of type
    ``external``): placed through the tenant's outbound routes as any outbound call."""

    __tablename__ = "external_numbers"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    number: Mapped[str] = mapped_column(String(16))  # E.164


# Where a user's forwarding rules may send calls (docs/forwarding.md): a phone, a person,
# a voicemail box or a number outside the switch; never a queue or an IVR.
RULE_TARGETS = ("agent", "extension", "voicemail", "external")
# The rules' column pairs, each a destination (graam_pbx.destinations: 409 on deleting its
# target); do_not_disturb's may only be a voicemail box.
RULE_PREFIXES = ("unconditional", "busy", "no_answer", "unreachable", "dnd_dest")
NO_ANSWER_SECONDS = (5, 120)


def _known(prefix: str, types: tuple[str, ...]) -> CheckConstraint:
    allowed = "', '".join(types)
    return CheckConstraint(
        f"({prefix}_type IS NULL) = ({prefix}_id IS NULL)"
        f" AND ({prefix}_type IS NULL OR {prefix}_type in ('{allowed}'))",
        name=f"{prefix}_known",
    )


class UserForwarding(TenantOwned, Timestamped, Versioned, Base):
    """A user's forwarding rules for the calls made to them (their extensions, or to them as
    a destination); never for the queue calls an agent takes. ``id`` is the user's id."""

    __tablename__ = "user_forwarding"
    __table_args__ = (
        *(_known(prefix, RULE_TARGETS) for prefix in RULE_PREFIXES[:-1]),
        _known("dnd_dest", ("voicemail",)),
        CheckConstraint(
            f"no_answer_seconds between {NO_ANSWER_SECONDS[0]} and {NO_ANSWER_SECONDS[1]}",
            name="no_answer_seconds_range",
        ),
    )

    id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    do_not_disturb: Mapped[bool] = mapped_column(Boolean, default=False)
    dnd_dest_type: Mapped[str | None] = mapped_column(String(16))
    dnd_dest_id: Mapped[int | None] = mapped_column(BigInteger)
    unconditional_type: Mapped[str | None] = mapped_column(String(16))
    unconditional_id: Mapped[int | None] = mapped_column(BigInteger)
    busy_type: Mapped[str | None] = mapped_column(String(16))
    busy_id: Mapped[int | None] = mapped_column(BigInteger)
    no_answer_type: Mapped[str | None] = mapped_column(String(16))
    no_answer_id: Mapped[int | None] = mapped_column(BigInteger)
    no_answer_seconds: Mapped[int] = mapped_column(Integer, default=20)
    unreachable_type: Mapped[str | None] = mapped_column(String(16))
    unreachable_id: Mapped[int | None] = mapped_column(BigInteger)


# What a follow-me step rings: a phone, a person's phones, a number outside the switch.
FOLLOW_ME_MEMBERS = ("extension", "agent", "external")
STEP_SECONDS = (5, 120)
MAX_STEPS = 10
MAX_MEMBERS = 20  # per step


class FollowMe(TenantOwned, Timestamped, Versioned, Base):
    """A destination (type ``follow_me``) that rings its steps in order, each step's members
    at once for ``step_seconds[i]``, then sends the call to ``final``."""

    __tablename__ = "follow_me"
    __table_args__ = (
        CheckConstraint(
            "cardinality(step_seconds) between 1 and " + str(MAX_STEPS), name="steps_count"
        ),
        CheckConstraint(DESTINATION_CHECK.format("final"), name="final_known"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    step_seconds: Mapped[list[int]] = mapped_column(ARRAY(Integer))
    final_type: Mapped[str] = mapped_column(String(16))
    final_id: Mapped[int | None] = mapped_column(BigInteger)


class FollowMeMember(TenantOwned, Base):
    """One member of a follow-me's step (``step``: its index). ``confirm``: an external
    number must press 1 to take the call (a mobile's voicemail never does)."""

    __tablename__ = "follow_me_members"
    __table_args__ = (
        _known("dest", FOLLOW_ME_MEMBERS),
        CheckConstraint("confirm = false OR dest_type = 'external'", name="confirm_external"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    follow_me_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("follow_me.id", ondelete="CASCADE"), index=True
    )
    step: Mapped[int] = mapped_column(Integer)
    dest_type: Mapped[str] = mapped_column(String(16))
    dest_id: Mapped[int] = mapped_column(BigInteger)
    confirm: Mapped[bool] = mapped_column(Boolean, default=False)
