from __future__ import annotations

import ipaddress
import re
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    StringConstraints,
    model_validator,
)

from graam_pbx.fields import MAX_ID, Country, NotNull, ObjectId, ObjectName, Timezone
from graam_pbx.routing.models import DESTINATION_TYPES, InboundRoute, Trunk


class DestinationType(StrEnum):
    AGENT = "agent"  # a user with the agent role: rings its devices
    EXTENSION = "extension"  # one agent device
    QUEUE = "queue"
    IVR = "ivr"
    VOICEMAIL = "voicemail"
    ANNOUNCEMENT = "announcement"  # plays a prompt, then hangs up
    HANGUP = "hangup"


assert tuple(t.value for t in DestinationType) == DESTINATION_TYPES  # noqa: S101


class Destination(BaseModel):
    """Where a call goes: one typed reference to an object of the same tenant."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"type": "queue", "id": 3}]}
    )

    type: DestinationType
    id: int | None = Field(None, ge=1, description="The object's id; none for hangup.")

    @model_validator(mode="after")
    def _id_matches_type(self) -> Destination:
        if self.type is DestinationType.HANGUP and self.id is not None:
            raise ValueError("hangup takes no id")
        if self.type is not DestinationType.HANGUP and self.id is None:
            raise ValueError(f"{self.type} needs the id of its object")
        return self

    @classmethod
    def stored(cls, kind: str, object_id: int | None) -> Destination:
        """The destination stored in a NOT NULL (type, id) column pair."""
        return cls(type=DestinationType(kind), id=object_id)

    @classmethod
    def of(cls, kind: str | None, object_id: int | None) -> Destination | None:
        """The destination stored in a nullable (type, id) column pair, if any."""
        return None if kind is None else cls.stored(kind, object_id)


# ---- shared ---------------------------------------------------------------------------------


def _bounded_destination(destination: Destination | None) -> Destination | None:
    if destination is not None and destination.id is not None and destination.id > MAX_ID:
        raise ValueError("id is out of range")
    return destination


RoutedTo = Annotated[Destination, AfterValidator(_bounded_destination)]


# ---- trunks ---------------------------------------------------------------------------------


class Transport(StrEnum):
    UDP = "udp"
    TCP = "tcp"
    TLS = "tls"


_HOST_ALPHABET = re.compile(r"[a-z0-9.:-]{1,253}")
_HOST_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")


def _trunk_host(text: str) -> str:
    value = text.lower()
    if not _HOST_ALPHABET.fullmatch(value):
        raise ValueError("a host name or IP address: a-z, 0-9, '.', '-' (':' in IPv6)")
    if ":" in value or value.replace(".", "").isdigit():
        try:
            return str(ipaddress.ip_address(value))
        except ValueError:
            raise ValueError("not a valid IP address") from None
    labels = value.split(".")
    if not all(_HOST_LABEL.fullmatch(label) for label in labels):
        raise ValueError("not a valid host name")
    if labels[-1].isdigit():
        raise ValueError("not a valid host name (its last label is all digits)")
    return value


# Printable ASCII without the characters that end or escape a value in Asterisk's config
# files and dial strings: quotes, ';', '\' and spaces.
_TRUNK_PASSWORD = re.compile(r"[!#-&(-:<-\[\]-~]{1,128}")


def _trunk_password(secret: SecretStr) -> SecretStr:
    if not _TRUNK_PASSWORD.fullmatch(secret.get_secret_value()):
        raise ValueError("1 to 128 printable ASCII characters, without quotes, ';', '\\' or spaces")
    return secret


TrunkHost = Annotated[
    str,
    AfterValidator(_trunk_host),
    Field(examples=["sip.carrier.example"], description="A host name, IPv4 or IPv6 address"),
]
TrunkUsername = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z0-9._+-]{1,80}$"),
    Field(examples=["acme-out"], description="A-Z, a-z, 0-9, '.', '_', '+', '-'; 1 to 80"),
]
TrunkPassword = Annotated[
    SecretStr,
    AfterValidator(_trunk_password),
    Field(description="Write-only: never returned."),
]
Port = Annotated[int, Field(ge=1, le=65535, examples=[5060])]


class TrunkCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "name": "carrier-fr",
                    "host": "sip.carrier.example",
                    "port": 5060,
                    "transport": "udp",
                    "country": "FR",
                    "username": "acme-out",
                    "password": "s3cret-Pa55",
                    "enabled": True,
                }
            ]
        },
    )

    name: ObjectName
    host: TrunkHost
    port: Port = 5060
    transport: Transport = Transport.UDP
    country: Country = Field(description="Where calls leave the network: the rating origin.")
    username: TrunkUsername | None = None
    password: TrunkPassword | None = None
    enabled: bool = True


class TrunkUpdate(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"enabled": False}, {"password": None}]}
    )

    name: Annotated[ObjectName | None, NotNull] = None
    host: Annotated[TrunkHost | None, NotNull] = None
    port: Annotated[Port | None, NotNull] = None
    transport: Annotated[Transport | None, NotNull] = None
    country: Annotated[Country | None, NotNull] = None
    username: TrunkUsername | None = Field(None, description="null removes it")
    password: TrunkPassword | None = Field(None, description="Write-only; null removes it")
    enabled: Annotated[bool | None, NotNull] = None


class TrunkOut(BaseModel):
    """A trunk; its password is write-only and never appears here."""

    id: int
    name: str
    host: str
    port: int
    transport: Transport
    country: str
    username: str | None
    has_password: bool
    enabled: bool
    version: int
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, trunk: Trunk) -> TrunkOut:
        return cls(
            id=trunk.id,
            name=trunk.name,
            host=trunk.host,
            port=trunk.port,
            transport=Transport(trunk.transport),
            country=trunk.country,
            username=trunk.username,
            has_password=trunk.password is not None,
            enabled=trunk.enabled,
            version=trunk.version,
            created_at=trunk.created_at,
            updated_at=trunk.updated_at,
        )


# ---- outbound routes ------------------------------------------------------------------------


def _unique_countries(countries: list[str]) -> list[str]:
    seen: set[str] = set()
    for country in countries:
        if country in seen:
            raise ValueError(f"{country} is listed twice")
        seen.add(country)
    return countries


AllowedCountries = Annotated[
    list[Country],
    Field(min_length=1, max_length=250, examples=[["FR", "BE"]]),
    AfterValidator(_unique_countries),
]
Priority = Annotated[int, Field(ge=0, le=1000, description="Higher is tried first.")]


class OutboundRouteCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "name": "france",
                    "trunk_id": 1,
                    "caller_id_number_id": 12,
                    "allowed_countries": ["FR", "BE"],
                    "priority": 0,
                }
            ]
        },
    )

    name: ObjectName
    trunk_id: ObjectId = Field(description="An enabled trunk.")
    caller_id_number_id: ObjectId = Field(description="One of the tenant's assigned numbers.")
    allowed_countries: AllowedCountries
    priority: Priority = 0


class OutboundRouteUpdate(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"allowed_countries": ["FR"]}]}
    )

    name: Annotated[ObjectName | None, NotNull] = None
    trunk_id: Annotated[ObjectId | None, NotNull] = None
    caller_id_number_id: Annotated[ObjectId | None, NotNull] = None
    allowed_countries: Annotated[AllowedCountries | None, NotNull] = None
    priority: Annotated[Priority | None, NotNull] = None


class OutboundRouteOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    trunk_id: int
    caller_id_number_id: int
    allowed_countries: list[str]
    priority: int
    version: int
    created_at: datetime
    updated_at: datetime


# ---- schedules ------------------------------------------------------------------------------

OpeningTime = Annotated[
    str,
    StringConstraints(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$"),
    Field(examples=["09:00"], description="HH:MM, 00:00 to 23:59"),
]
ClosingTime = Annotated[
    str,
    StringConstraints(pattern=r"^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$"),
    Field(examples=["17:30"], description="HH:MM, 00:00 to 24:00 (24:00: end of the day)"),
]


def clock_minutes(text: str) -> int:
    """Minutes since midnight of an "HH:MM" clock time."""
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


class OpeningHours(BaseModel):
    """One opening range of one weekday, in the schedule's own time zone."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"day": 0, "open": "09:00", "close": "17:30"}]},
    )

    day: int = Field(ge=0, le=6, description="0 is Monday, 6 is Sunday")
    open: OpeningTime
    close: ClosingTime

    @model_validator(mode="after")
    def _opens_before_closing(self) -> OpeningHours:
        if clock_minutes(self.open) >= clock_minutes(self.close):
            raise ValueError("open must be before close")
        return self


def _unique_dates(dates: list[date]) -> list[date]:
    seen: set[date] = set()
    for day in dates:
        if day in seen:
            raise ValueError(f"{day.isoformat()} is listed twice")
        seen.add(day)
    return sorted(dates)


_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _iso_date_text(value: Any) -> Any:
    # Only "YYYY-MM-DD": pydantic alone would also read "+0" as a Unix timestamp.
    if not isinstance(value, date) and not (isinstance(value, str) and _ISO_DATE.fullmatch(value)):
        raise ValueError("a date as YYYY-MM-DD")
    return value


IsoDate = Annotated[date, BeforeValidator(_iso_date_text)]
Weekly = Annotated[list[OpeningHours], Field(max_length=7 * 24)]
Holidays = Annotated[
    list[IsoDate],
    Field(max_length=1000, description="Closed all day (local dates)", examples=[["2025-12-25"]]),
    AfterValidator(_unique_dates),
]


class ScheduleCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "name": "office-hours",
                    "timezone": "Europe/Paris",
                    "weekly": [
                        {"day": 0, "open": "09:00", "close": "12:30"},
                        {"day": 0, "open": "13:30", "close": "18:00"},
                    ],
                    "holidays": ["2025-12-25"],
                }
            ]
        },
    )

    name: ObjectName
    timezone: Timezone | None = Field(None, description="The tenant's time zone when absent.")
    weekly: Weekly = Field(default_factory=list)
    holidays: Holidays = Field(default_factory=list)


class ScheduleUpdate(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"holidays": ["2026-01-01"]}]}
    )

    name: Annotated[ObjectName | None, NotNull] = None
    timezone: Annotated[Timezone | None, NotNull] = None
    weekly: Annotated[Weekly | None, NotNull] = None
    holidays: Annotated[Holidays | None, NotNull] = None


class ScheduleOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    timezone: str
    weekly: list[OpeningHours]
    holidays: list[date]
    version: int
    created_at: datetime
    updated_at: datetime


# ---- inbound routes -------------------------------------------------------------------------


class InboundRouteCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "number_id": 12,
                    "schedule_id": 2,
                    "open_destination": {"type": "queue", "id": 3},
                    "closed_destination": {"type": "voicemail", "id": 1},
                }
            ]
        },
    )

    number_id: ObjectId = Field(description="One of the tenant's assigned numbers.")
    schedule_id: ObjectId | None = None
    open_destination: RoutedTo
    closed_destination: RoutedTo | None = Field(
        None, description="Required with a schedule; only with one."
    )


class InboundRouteUpdate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"schedule_id": None, "closed_destination": None}]},
    )

    number_id: Annotated[ObjectId | None, NotNull] = None
    schedule_id: ObjectId | None = None
    open_destination: Annotated[RoutedTo | None, NotNull] = None
    closed_destination: RoutedTo | None = None


class InboundRouteOut(BaseModel):
    id: int
    number_id: int
    schedule_id: int | None
    open_destination: Destination
    closed_destination: Destination | None
    version: int
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, route: InboundRoute) -> InboundRouteOut:
        return cls(
            id=route.id,
            number_id=route.number_id,
            schedule_id=route.schedule_id,
            open_destination=Destination.stored(route.open_dest_type, route.open_dest_id),
            closed_destination=Destination.of(route.closed_dest_type, route.closed_dest_id),
            version=route.version,
            created_at=route.created_at,
            updated_at=route.updated_at,
        )
