"""Billing API schemas: retention (an invoice's archived calls, a tenant's export, erasures)."""

from __future__ import annotations

from datetime import date
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from graam_pbx.fields import E164, ObjectId
from graam_pbx.rest import ErrorOut, error_responses


class ErasureCreate(BaseModel):
    """Whom to erase: one user of a tenant, or a caller's phone number."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"user_id": 42}, {"phone_number": "+33612345678"}]},
    )

    user_id: ObjectId | None = Field(None, description="A tenant user to erase.")
    phone_number: E164 | None = Field(None, description="A caller's number to erase from calls.")
    tenant_id: ObjectId | None = Field(
        None,
        description="Operators, with phone_number: only this tenant's calls (default: every "
        "tenant's). Tenant admins always act in their own tenant.",
    )

    @model_validator(mode="after")
    def _one_person(self) -> ErasureCreate:
        if (self.user_id is None) == (self.phone_number is None):
            raise ValueError("give exactly one of user_id and phone_number")
        if self.user_id is not None and self.tenant_id is not None:
            raise ValueError("tenant_id goes with phone_number only")
        return self


class ErasureOut(BaseModel):
    """What an erasure changed."""

    kind: Literal["user", "phone_number"]
    user_id: int | None
    cdrs: int = Field(description="Call legs whose numbers or caller names were blanked.")
    queue_calls: int = Field(description="Queue calls whose caller number was blanked.")
    archives_unreadable: list[date] = Field(
        description="Archived months whose file is missing or fails its checksum: not erased "
        "in (restore the file, then erase again)."
    )


def _file(media_type: str, description: str) -> dict[int | str, dict[str, Any]]:
    return {
        200: {"content": {media_type: {}}, "description": description},
        **error_responses(401, 403, 404, 409, 422),
    }


CDRS_CSV: Final = {
    **_file("text/csv", "The tenant's CDRs of the invoice's period, archived months included."),
    410: {"model": ErrorOut, "description": "The month's archive was purged past its retention"},
}
EXPORT_ZIP: Final = _file(
    "application/zip",
    "A ZIP: manifest.json, one JSON-lines file per table of the tenant's data, cdrs.csv "
    "and invoices/<number>.<format>.",
)
