"""Billing API: rate decks (operators) and the rates a client is shown.

A deck is uploaded as the raw request body (``Content-Type: text/csv``), its name and
activation in the query: one ``curl --data-binary @deck.csv`` and no multipart parsing of a
file that may hold tens of thousands of lines.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request

from graam_pbx.billing import decks as service
from graam_pbx.billing.models import Rate, RateDeck
from graam_pbx.billing.schemas.rates import (
    ClientRateOut,
    CorrectionOut,
    DeckOut,
    DeckRatesPage,
    RateOut,
    RatesPage,
)
from graam_pbx.deps import Caller, DbSession, Operator
from graam_pbx.errors import Invalid, NotFound
from graam_pbx.fields import Country, DisplayText, IsoDateTime
from graam_pbx.rest import (
    MAX_PAGE,
    CursorParam,
    Page,
    PageParams,
    error_responses,
    id_path,
    id_query,
    page_of,
)
from graam_pbx.tenants.models import Tenant

router = APIRouter(prefix="/api/v1/billing", tags=["billing"])

MAX_CSV_BYTES = 32 * 1024 * 1024
DeckId = Annotated[int, id_path("The rate deck's id.")]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE, description="Rates per page")]
PrefixFilter = Annotated[
    str | None,
    Query(pattern=r"^[0-9]{1,15}$", description="Only rates whose prefix starts with these digits"),
]
CountryFilter = Annotated[Country | None, Query(description="Only rates to this country")]
_CSV_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "The deck as CSV (UTF-8), a header line naming the columns "
        "prefix,destination_country,origin_country,number_type,price_per_minute,connect_fee.",
        "content": {
            "text/csv": {
                "schema": {"type": "string"},
                "example": "prefix,destination_country,origin_country,number_type,"
                "price_per_minute,connect_fee\n33,FR,,,0.010000,0\n336,FR,,mobile,0.050000,0\n",
            }
        },
    }
}


async def _csv_body(request: Request) -> str:
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media not in ("text/csv", "text/plain"):
        raise Invalid("header.content-type", "send the deck as text/csv")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_CSV_BYTES:
            raise Invalid("body", f"a deck's CSV is at most {MAX_CSV_BYTES} bytes")
        chunks.append(chunk)
    return service.decode_csv(b"".join(chunks))


def deck_out(deck: RateDeck) -> DeckOut:
    return DeckOut.model_validate(deck)


def client_rate(rate: Rate, deck: RateDeck) -> ClientRateOut:
    return ClientRateOut(
        prefix=rate.prefix,
        destination_country=rate.destination_country,
        origin_country=rate.origin_country,
        number_type=rate.number_type,
        price_per_minute=rate.price_per_minute,
        connect_fee=rate.connect_fee,
        activates_at=deck.activates_at,
        deck_id=deck.id,
    )


@router.post(
    "/rate-decks",
    status_code=201,
    response_model=DeckOut,
    responses=error_responses(401, 403, 409, 422),
    openapi_extra=_CSV_BODY,
    summary="Publish a rate deck from CSV (operators)",
    description="Every line is validated; one bad line is a 422 naming each bad line "
    "(details.errors[].line) and nothing is stored. activates_at at least one month after "
    "today (UTC); the very first deck may activate at once (activates_at absent: now). A "
    "notice goes to every tenant.",
)
async def publish_deck(
    request: Request,
    principal: Operator,
    session: DbSession,
    name: Annotated[DisplayText, Query(description="The deck's name")],
    activates_at: Annotated[
        IsoDateTime | None, Query(description="When it takes effect (ISO 8601 with offset)")
    ] = None,
) -> DeckOut:
    text = await _csv_body(request)
    deck = await service.publish_deck(
        session, principal, name=name, activates_at=activates_at, csv_text=text
    )
    return deck_out(deck)


@router.get(
    "/rate-decks",
    response_model=Page[DeckOut],
    responses=error_responses(401, 403, 422),
    summary="Every rate deck (operators)",
)
async def list_decks(principal: Operator, session: DbSession, page: PageParams) -> Page[DeckOut]:
    rows, after = await service.list_decks(
        session, principal, after_id=page.after_id, limit=page.limit
    )
    return page_of([deck_out(deck) for deck in rows], after)


@router.get(
    "/rate-decks/{deck_id}",
    response_model=DeckOut,
    responses=error_responses(401, 403, 404, 422),
    summary="A rate deck (operators)",
)
async def get_deck(deck_id: DeckId, principal: Operator, session: DbSession) -> DeckOut:
    return deck_out(await service.get_deck(session, principal, deck_id))


@router.get(
    "/rate-decks/{deck_id}/rates",
    response_model=DeckRatesPage,
    responses=error_responses(401, 403, 404, 422),
    summary="A rate deck's rates, by prefix (operators)",
)
async def deck_rates(
    deck_id: DeckId,
    principal: Operator,
    session: DbSession,
    country: CountryFilter = None,
    prefix: PrefixFilter = None,
    limit: Limit = 50,
    cursor: CursorParam = None,
) -> DeckRatesPage:
    deck = await service.get_deck(session, principal, deck_id)
    rates, last = await service.deck_rates(
        session,
        deck.id,
        country=country,
        prefix=prefix,
        after=service.decode_rate_cursor(cursor),
        limit=limit,
    )
    return DeckRatesPage(
        items=[RateOut.model_validate(rate) for rate in rates],
        next_cursor=service.encode_rate_cursor(last) if last else None,
    )


@router.put(
    "/rate-decks/{deck_id}/rates",
    response_model=CorrectionOut,
    responses=error_responses(401, 403, 404, 422),
    openapi_extra=_CSV_BODY,
    summary="Correct a rate deck: add prefixes, lower prices (operators)",
    description="Lines naming an existing rate (prefix, origin, type) may lower its price or "
    "connect fee; new lines add rates. A line that would raise what any call pays is a 422 "
    "naming it, and nothing changes; no rate is ever removed. Re-rate an open period "
    "afterwards to apply it to calls already rated.",
)
async def correct_deck(
    deck_id: DeckId, request: Request, principal: Operator, session: DbSession
) -> CorrectionOut:
    text = await _csv_body(request)
    done = await service.correct_deck(session, principal, deck_id, text)
    return CorrectionOut(
        deck=deck_out(done.deck), added=done.added, lowered=done.lowered, unchanged=done.unchanged
    )


@router.get(
    "/rates",
    response_model=RatesPage,
    responses=error_responses(401, 404, 422),
    summary="The outbound rates a client pays: the deck in force now, or the next one",
    description="Any user of a tenant; operators may name ?tenant_id= (rates are the same "
    "for every tenant).",
)
async def client_rates(
    principal: Caller,
    session: DbSession,
    deck: Annotated[
        Literal["current", "next"], Query(description="current: in force now; next: the next")
    ] = "current",
    country: CountryFilter = None,
    prefix: PrefixFilter = None,
    tenant_id: Annotated[int | None, id_query("Operators: the tenant")] = None,
    limit: Limit = 50,
    cursor: CursorParam = None,
) -> RatesPage:
    if tenant_id is not None:
        if not principal.is_operator and tenant_id != principal.tenant_id:
            raise NotFound(f"no tenant {tenant_id}")
        if await session.get(Tenant, tenant_id) is None:
            raise NotFound(f"no tenant {tenant_id}")
    found = await service.rates_for_client(
        session, principal, deck=deck, country=country, prefix=prefix, after=cursor, limit=limit
    )
    return RatesPage(
        deck=deck_out(found.deck) if found.deck else None,
        items=[client_rate(rate, found.deck) for rate in found.rates] if found.deck else [],
        next_cursor=found.next_cursor,
    )
