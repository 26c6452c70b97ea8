from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from graam_pbx.fields import Extension, Flag, NotNull, ObjectId, ObjectName


class Codec(StrEnum):
    ULAW = "ulaw"
    ALAW = "alaw"
    G722 = "g722"
    GSM = "gsm"
    OPUS = "opus"


class Transport(StrEnum):
    UDP = "udp"
    TCP = "tcp"
    TLS = "tls"
    # A browser: SIP over WebSocket, media in DTLS-SRTP (the console's softphone).
    WEBRTC = "webrtc"


Codecs = list[Codec]
# What a browser speaks, in the order a browser device gets by default.
BROWSER_CODECS = (Codec.OPUS, Codec.G722, Codec.ULAW, Codec.ALAW)


def _unique_codecs(codecs: Codecs | None) -> Codecs | None:
    if codecs is not None and len(set(codecs)) != len(codecs):
        raise ValueError("each codec at most once")
    return codecs


class DeviceCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "user_id": 12,
                    "name": "ana-desk",
                    "extension": "201",
                    "codecs": ["g722", "ulaw", "alaw"],
                    "transport": "udp",
                    "max_contacts": 1,
                }
            ]
        },
    )

    user_id: ObjectId = Field(
        description="Who it belongs to: an agent (takes calls on it), or a supervisor or "
        "admin (called on it to supervise agents' calls)."
    )
    name: ObjectName = Field(
        description="Local name; the SIP username is '<tenant slug>-<name>' and never changes."
    )
    extension: Extension
    codecs: Codecs = Field(
        default_factory=lambda: [Codec.ULAW, Codec.ALAW],
        min_length=1,
        max_length=5,
        description="In order of preference, each at most once. A `webrtc` device given none "
        "gets opus, g722, ulaw, alaw, and speaks only those.",
    )
    transport: Transport = Field(
        Transport.UDP,
        description="udp, tcp or tls: a SIP phone; webrtc: a browser (the console's "
        "softphone: SIP over WebSocket, DTLS-SRTP).",
    )
    max_contacts: int = Field(1, ge=1, le=10, description="Phones registered at once.")

    _codecs_unique = field_validator("codecs")(_unique_codecs)

    @model_validator(mode="after")
    def _browser_codecs(self) -> DeviceCreate:
        if self.transport == Transport.WEBRTC:
            if "codecs" not in self.model_fields_set:
                self.codecs = list(BROWSER_CODECS)
            if other := not_for_browsers(self.codecs):
                raise ValueError(browser_codecs_rule(other))
        return self


def not_for_browsers(codecs: Iterable[str]) -> list[str]:
    """What a browser device may not have among ``codecs``."""
    return [str(codec) for codec in codecs if codec not in BROWSER_CODECS]


def browser_codecs_rule(other: list[str]) -> str:
    return f"a webrtc device speaks only {', '.join(BROWSER_CODECS)}; not {', '.join(other)}"


class DeviceUpdate(BaseModel):
    """Any subset; the SIP username is fixed (it is part of the password's hash)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"extension": "202", "codecs": ["opus", "ulaw"]}]},
    )

    user_id: Annotated[ObjectId | None, NotNull] = None
    extension: Annotated[Extension | None, NotNull] = None
    codecs: Annotated[Codecs | None, NotNull] = Field(None, min_length=1, max_length=5)
    transport: Annotated[Transport | None, NotNull] = None
    max_contacts: Annotated[int | None, NotNull] = Field(None, ge=1, le=10)

    _codecs_unique = field_validator("codecs")(_unique_codecs)


class DeviceOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    user_id: int
    sip_username: str = Field(description="PJSIP endpoint, auth and AOR name: '<slug>-<name>'.")
    extension: str
    codecs: list[str]
    transport: Transport
    max_contacts: int
    version: int
    created_at: datetime
    updated_at: datetime


class DeviceWithPassword(DeviceOut):
    password: str = Field(
        description="The SIP password, shown once: only its digest (HA1) is kept."
    )


# ---- sessions: login, logout, pause ------------------------------------------------------------

PauseReason = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9 _.-]{0,63}$"),
    Field(examples=["lunch"], description="Letters, digits, ' ', '_', '.', '-'; up to 64"),
]


class SessionLogin(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"device_id": 7}]})

    device_id: ObjectId | None = Field(
        None, description="The agent's device to take calls on; default: its first device."
    )


class SessionPause(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"paused": True, "reason": "lunch"}]}
    )

    paused: Flag
    reason: PauseReason | None = Field(None, description="Why (kept only while paused).")


class AgentSessionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    user_id: int
    device_id: int | None
    source: str = Field(description="api, phone or web (the console): where the login came from.")
    started_at: datetime
    paused: bool
    pause_reason: str | None
    paused_since: datetime | None


class LiveAgentOut(AgentSessionOut):
    display_name: str
    sip_username: str
    extension: str
    device_state: str | None = Field(
        description="Asterisk's state of the device (NOT_INUSE, INUSE, RINGING, UNAVAILABLE…)."
    )
    on_call: bool


# ---- the pause-reason catalogue ----------------------------------------------------------------

PauseCode = Annotated[
    str,
    StringConstraints(pattern=r"^[0-9]{1,8}$"),
    Field(examples=["2"], description="1 to 8 digits: a phone pauses with it by dialing *47<code>"),
]
PauseLabel = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9 _.-]{0,63}$"),
    Field(examples=["Lunch"], description="Letters, digits, ' ', '_', '.', '-'; up to 64"),
]


class PauseReasonCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"code": "2", "label": "Lunch"}]}
    )

    code: PauseCode
    label: PauseLabel


class PauseReasonUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"label": "Break"}]})

    code: Annotated[PauseCode | None, NotNull] = None
    label: Annotated[PauseLabel | None, NotNull] = None


class PauseReasonOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    code: str
    label: str
    version: int
    created_at: datetime
    updated_at: datetime
