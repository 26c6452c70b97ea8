"""The per-tenant catalogue of dispositions: what an agent sets after a campaign call."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from graam_pbx.campaigns.models import Disposition
from graam_pbx.fields import DisplayText, Flag, NotNull

DispositionCode = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$"),
    Field(examples=["interested"], description="a-z, 0-9, '_' and '-', 1 to 32 characters"),
]
Label = Annotated[DisplayText, StringConstraints(max_length=64), Field(examples=["Interested"])]


class DispositionCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"code": "sale", "label": "Sale made", "success": True}],
        },
    )

    code: DispositionCode
    label: Label
    refusal: Flag = Field(
        False, description="The person refused: the number is not called for the law's period."
    )
    success: Flag = Field(False, description="Counted as a success in the statistics.")
    machine: Flag = Field(
        False, description="An answering machine taken for a person: the attempt counts as one."
    )
    callback: Flag = Field(
        False, description="Call the contact again, after the no-answer retry delay."
    )


class DispositionUpdate(BaseModel):
    """Any subset; the code is fixed once made."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"label": "Call back later", "callback": True}]},
    )

    label: Annotated[Label | None, NotNull] = None
    refusal: Annotated[Flag | None, NotNull] = None
    success: Annotated[Flag | None, NotNull] = None
    machine: Annotated[Flag | None, NotNull] = None
    callback: Annotated[Flag | None, NotNull] = None


class DispositionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    code: str
    label: str
    refusal: bool
    success: bool
    machine: bool
    callback: bool
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, disposition: Disposition) -> DispositionOut:
        return cls.model_validate(disposition)
