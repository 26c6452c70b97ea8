"""Billing API schemas: rate decks and the rates a client is shown."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field


class DeckOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    currency: str
    activates_at: datetime
    published_at: datetime
    published_by: str
    rates_count: int
    notice_id: int | None = Field(description="The notice sent to every tenant (null: none).")
    corrected_at: datetime | None


class CorrectionOut(BaseModel):
    deck: DeckOut
    added: int = Field(description="Rates added (new prefix, origin or type).")
    lowered: int = Field(description="Existing rates whose price or connect fee was lowered.")
    unchanged: int = Field(description="Lines that repeated an existing rate as it was.")


class RateOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    prefix: str = Field(description="E.164 digits (no '+'): the longest matching prefix wins.")
    destination_country: str
    origin_country: str = Field(description="The caller ID's country; empty: any.")
    number_type: str = Field(description="The dialled number's type; empty: any.")
    price_per_minute: Decimal = Field(description="A decimal string, 6 decimals at most.")
    connect_fee: Decimal = Field(description="Charged once per answered call.")


class ClientRateOut(RateOut):
    activates_at: datetime = Field(description="When this rate's deck takes effect.")
    deck_id: int


class RatesPage(BaseModel):
    """One page of a deck's rates, by prefix; pass ``next_cursor`` back as ``cursor``."""

    deck: DeckOut | None = Field(description="The deck shown (null: none in force, or no next).")
    items: list[ClientRateOut]
    next_cursor: str | None = Field(None, description="Absent on the last page.")


class DeckRatesPage(BaseModel):
    """One page of a deck's rates (operators), by prefix."""

    items: list[RateOut]
    next_cursor: str | None = Field(None, description="Absent on the last page.")
