"""Contact lists, their contacts and imports, the do-not-call and opposition lists."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from graam_pbx.fields import Country, DisplayText, IsoDateTime, NotNull


def _aware(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("give a time zone offset, e.g. 2026-01-31T09:00:00+01:00")
    try:
        # Stored in UTC: 0001-01-01T00:00:00+14:00 falls before year 1 there.
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("out of the range of dates") from None


ListName = Annotated[DisplayText, Field(max_length=64, examples=["Customers Paris 2026"])]
AwareDateTime = Annotated[IsoDateTime, AfterValidator(_aware)]


class ContactListCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"name": "Customers Paris", "default_region": "FR"}]},
    )

    name: ListName
    default_region: Country = Field(
        "FR", description="How numbers written without a country code are read."
    )


class ContactListUpdate(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"name": "Customers Lyon"}]}
    )

    name: Annotated[ListName | None, NotNull] = None
    default_region: Annotated[Country | None, NotNull] = Field(
        None, description="Applies to later imports; stored numbers keep their reading."
    )


class ContactListOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    tenant_id: int
    name: str
    default_region: str
    contacts: int = Field(description="Contacts in the list now.")
    version: int
    created_at: datetime
    updated_at: datetime


class ContactOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    list_id: int
    number: str = Field(description="E.164.")
    region: str = Field(description="The number's region (ISO 3166, 'RE' for Réunion).")
    time_zones: list[str] = Field(description="The time zones the number may ring in.")
    name: str | None
    fields: dict[str, Any] = Field(description="The import's other columns, for scripts.")
    consent_at: datetime | None
    consent_source: str | None
    created_at: datetime


class ConsentUpdate(BaseModel):
    """The proof of the person's consent to be called (null consent_at withdraws it)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"consent_at": "2026-09-01T10:15:00+02:00", "consent_source": "web form #4411"}
            ]
        },
    )

    consent_at: AwareDateTime | None = Field(description="When consent was given.")
    consent_source: DisplayText | None = Field(
        None, description="Where the proof is (a form, a recording, a contract)."
    )


class ContactImportOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    list_id: int
    filename: str
    rows_read: int = Field(description="Rows after the header (blank lines not counted).")
    rows_added: int = Field(description="New numbers in the list.")
    rows_merged: int = Field(description="Rows merged into a number already in the list.")
    rows_refused: int = Field(description="Rows refused; see the import's refusals.")
    created_at: datetime


class ImportRefusalOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    line: int = Field(description="The row's line in the file (the header is line 1).")
    field: str = Field(description="The column at fault ('row' for the row as a whole).")
    reason: str
    value: str


class DoNotCallCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"number": "+33612345678", "reason": "asked by phone"}]},
    )

    number: str = Field(
        min_length=1,
        max_length=32,
        description="E.164, or national in the tenant's country (0612345678).",
    )
    reason: DisplayText | None = None


class DoNotCallOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    tenant_id: int
    number: str
    reason: str | None
    created_at: datetime


class OppositionListOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    tenant_id: int
    list_date: date = Field(description="The day the opposition list was checked.")
    filename: str
    numbers: int = Field(description="Distinct numbers on the list.")
    created_at: datetime


class OppositionImportOut(OppositionListOut):
    lines_ignored: int = Field(0, description="Lines that were no telephone number.")
