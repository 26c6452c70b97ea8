from __future__ import annotations

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

from graam_pbx import sip_values
from graam_pbx.destinations.schemas import Destination, RoutedTo
from graam_pbx.fields import Country, Flag, NotNull, ObjectId, ObjectName, Timezone
from graam_pbx.routing.models import InboundRoute, Trunk

# ---- trunks ---------------------------------------------------------------------------------


class Transport(StrEnum):
    UDP = "udp"
    TCP = "tcp"
    TLS = "tls"


# Printable ASCII without the characters that end or escape a value in Asterisk's config
# files and dial strings: quotes, ';', '\' and spaces.
_TRUNK_PASSWORD = re.compile(r"[!#-&(-:<-\[\]-~]{1,128}")


def _trunk_password(secret: SecretStr) -> SecretStr:
    if not _TRUNK_PASSWORD.fullmatch(secret.get_secret_value()):
        raise ValueError("1 to 128 printable ASCII characters, without quotes, ';', '\\' or spaces")
    return secret


# The alphabets below are the renderer's own (graam_pbx.sip_values): what the API
# accepts renders, and what could not render is a 422 here.
TrunkHost = Annotated[
    str,
    AfterValidator(sip_values.host),
    Field(
        examples=["sip.carrier.example", "192.0.2.10", "2001:db8::10"],
        description="A host name, IPv4 or IPv6 address (no brackets, no port)",
    ),
]
TrunkUsername = Annotated[
    str,
    AfterValidator(sip_values.sip_user),
    Field(examples=["acme-out", "+33100"], description=sip_values.SIP_USER_RULE),
]
InboundAddress = Annotated[
    str,
    AfterValidator(sip_values.network),
    Field(examples=["192.0.2.0/28"], description="An IPv4/IPv6 address or network (CIDR)"),
]
MatchHeader = Annotated[
    str,
    AfterValidator(sip_values.match_header),
    Field(examples=["X-Carrier-Key: 9f2c7d1e"], description=sip_values.MATCH_HEADER_RULE),
]
CallerName = Annotated[
    str,
    AfterValidator(sip_values.caller_name),
    Field(examples=["Acme Support"], description=sip_values.CALLER_NAME_RULE),
]


class TrunkMatch(StrEnum):
    """How a call is known to come from the carrier (Asterisk's endpoint identification)."""

    IP = "ip"  # its source address is one of the trunk's addresses
    IP_AND_HEADER = "ip_and_header"  # and it carries match_header
    AUTH = "auth"  # it authenticates with inbound_username/inbound_password (digest)


def _unique_addresses(addresses: list[str]) -> list[str]:
    if len(set(addresses)) != len(addresses):
        raise ValueError("an address is listed twice")
    return addresses


InboundAddresses = Annotated[
    list[InboundAddress],
    Field(
        max_length=32,
        description="Where the carrier's calls come from (besides the host when it is an "
        "address). A host name is never resolved to identify calls.",
    ),
    AfterValidator(_unique_addresses),
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
    enabled: Flag = True
    match: TrunkMatch = TrunkMatch.IP
    inbound_addresses: InboundAddresses = []
    match_header: MatchHeader | None = None
    inbound_username: TrunkUsername | None = None
    inbound_password: TrunkPassword | None = None
    forwarded_caller_id: Flag = Field(
        False,
        description="The carrier accepts a caller number the tenant does not hold on calls "
        "the tenant forwards: they show the original caller's number (else the route's).",
    )


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
    enabled: Annotated[Flag | None, NotNull] = None
    match: Annotated[TrunkMatch | None, NotNull] = None
    inbound_addresses: Annotated[InboundAddresses | None, NotNull] = None
    match_header: MatchHeader | None = Field(None, description="null removes it")
    inbound_username: TrunkUsername | None = Field(None, description="null removes it")
    inbound_password: TrunkPassword | None = Field(None, description="Write-only; null removes it")
    forwarded_caller_id: Annotated[Flag | None, NotNull] = None


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
    match: TrunkMatch
    inbound_addresses: list[str]
    match_header: str | None
    inbound_username: str | None
    has_inbound_password: bool
    forwarded_caller_id: bool
    resolved_addresses: list[str] = Field(
        description="What the control plane last resolved the host name to (read-only)."
    )
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
            match=TrunkMatch(trunk.match),
            inbound_addresses=list(trunk.inbound_addresses),
            match_header=trunk.match_header,
            inbound_username=trunk.inbound_username,
            has_inbound_password=trunk.inbound_password is not None,
            forwarded_caller_id=trunk.forwarded_caller_id,
            resolved_addresses=(
                list(trunk.resolved_addresses) if trunk.resolved_host == trunk.host else []
            ),
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
    caller_id_name: CallerName | None = Field(
        None,
        description="The name carriers receive (From, P-Asserted-Identity); none sends no "
        "name. An agent's own name never leaves.",
    )


class OutboundRouteUpdate(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"allowed_countries": ["FR"]}]}
    )

    name: Annotated[ObjectName | None, NotNull] = None
    trunk_id: Annotated[ObjectId | None, NotNull] = None
    caller_id_number_id: Annotated[ObjectId | None, NotNull] = None
    allowed_countries: Annotated[AllowedCountries | None, NotNull] = None
    priority: Annotated[Priority | None, NotNull] = None
    caller_id_name: CallerName | None = Field(None, description="null removes it")


class OutboundRouteOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    trunk_id: int
    caller_id_number_id: int
    allowed_countries: list[str]
    priority: int
    caller_id_name: str | None
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
