from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from graam_pbx.fields import Extension, ObjectId, ObjectName


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


Codecs = list[Codec]


def _unique_codecs(codecs: Codecs | None) -> Codecs | None:
    if codecs is not None and len(set(codecs)) != len(codecs):
        raise ValueError("each codec at most once")
    return codecs


def _not_null(value: Any) -> Any:
    if value is None:
        raise ValueError("may not be null: leave it out to keep the current value")
    return value


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

    user_id: ObjectId = Field(description="The agent (a user with the agent role) it belongs to.")
    name: ObjectName = Field(
        description="Local name; the SIP username is '<tenant slug>-<name>' and never changes."
    )
    extension: Extension
    codecs: Codecs = Field(
        default_factory=lambda: [Codec.ULAW, Codec.ALAW],
        min_length=1,
        max_length=5,
        description="In order of preference, each at most once.",
    )
    transport: Transport = Transport.UDP
    max_contacts: int = Field(1, ge=1, le=10, description="Phones registered at once.")

    _codecs_unique = field_validator("codecs")(_unique_codecs)


class DeviceUpdate(BaseModel):
    """Any subset; the SIP username is fixed (it is part of the password's hash)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"extension": "202", "codecs": ["opus", "ulaw"]}]},
    )

    user_id: ObjectId | None = None
    extension: Extension | None = None
    codecs: Codecs | None = Field(None, min_length=1, max_length=5)
    transport: Transport | None = None
    max_contacts: int | None = Field(None, ge=1, le=10)

    _codecs_unique = field_validator("codecs")(_unique_codecs)
    _present_not_null = field_validator(
        "user_id", "extension", "codecs", "transport", "max_contacts", mode="before"
    )(_not_null)


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
