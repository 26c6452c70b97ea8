from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from graam_pbx.fields import E164, NotNull, ShortDisplayText

NumberName = Annotated[ShortDisplayText, Field(examples=["Night duty mobile"])]


class ExternalNumberCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"name": "Night duty mobile", "number": "+33612345678"}]},
    )

    name: NumberName
    number: E164


class ExternalNumberUpdate(BaseModel):
    """Any subset."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"name": "Duty"}]})

    name: Annotated[NumberName | None, NotNull] = None
    number: Annotated[E164 | None, NotNull] = None


class ExternalNumberOut(BaseModel):
    """A number outside the switch that calls can be sent to: ``{"type": "external", "id":
    <its id>}`` in any destination."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    number: str
    version: int
    created_at: datetime
    updated_at: datetime
