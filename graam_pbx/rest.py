"""REST conventions every ``api.py`` shares: keyset pages, ETags, documented error bodies."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Depends, Header, Path, Query, Response
from pydantic import BaseModel, Field

from graam_pbx.errors import Invalid
from graam_pbx.fields import MAX_ID

Item = TypeVar("Item")

MAX_PAGE = 200


class Page(BaseModel, Generic[Item]):
    """One page of a list, oldest first; pass ``next_cursor`` back as ``cursor``."""

    items: list[Item]
    next_cursor: str | None = Field(None, description="Absent on the last page.")


class ErrorOut(BaseModel):
    """The one shape of every error."""

    error_id: str = Field(examples=["validation-failed"])
    message: str = Field(examples=["name: must match ^[a-z0-9][a-z0-9_-]*$"])
    details: dict[str, Any] = Field(
        default_factory=dict,
        examples=[{"errors": [{"field": "body.name", "reason": "must be at most 64 characters"}]}],
    )


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the error codes a route can answer."""
    described = {
        401: "Missing or invalid credentials",
        403: "The caller's role may not do this",
        404: "No such object in the caller's tenant",
        409: "Conflicts with what is stored",
        412: "If-Match does not match the current ETag",
        422: "Invalid input; details.errors names each field",
        429: "Too many failed attempts; retry later",
    }
    return {code: {"model": ErrorOut, "description": described[code]} for code in codes}


def id_path(description: str) -> Any:
    """A path parameter naming an object by id: a bigint (1 to MAX_ID), else a 422 on it."""
    return Path(ge=1, le=MAX_ID, description=description)


def id_query(description: str) -> Any:
    """A query parameter filtering on an object id, bounded like ``id_path``."""
    return Query(ge=1, le=MAX_ID, description=description)


def encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(str(last_id).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int | None:
    """The id after which the next page starts; a bad cursor is a 422 on ``cursor``."""
    if cursor is None:
        return None
    try:
        value = int(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode())
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise Invalid("query.cursor", "not a cursor returned by this API") from None
    if not 0 <= value <= MAX_ID:
        raise Invalid("query.cursor", "not a cursor returned by this API")
    return value


class PageQuery(BaseModel):
    limit: int
    after_id: int | None


def page_query(
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE, description="Items per page")] = 50,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
) -> PageQuery:
    return PageQuery(limit=limit, after_id=decode_cursor(cursor))


PageParams = Annotated[PageQuery, Depends(page_query)]


def page_of(items: list[Item], next_after_id: int | None) -> Page[Item]:
    return Page[Item](
        items=items, next_cursor=encode_cursor(next_after_id) if next_after_id else None
    )


def etag(object_id: int, version: int) -> str:
    return f'"{object_id}.{version}"'


def set_etag(response: Response, object_id: int, version: int) -> None:
    response.headers["ETag"] = etag(object_id, version)


IfMatch = Annotated[
    str | None,
    Header(description="ETag of the version being changed; a mismatch answers 412"),
]


def expected_version(if_match: str | None, object_id: int) -> int | None:
    """The version an If-Match header names for this object (None: no condition)."""
    if if_match is None or if_match.strip() == "*":
        return None
    for tag in if_match.split(","):
        text = tag.strip().removeprefix("W/").strip('"')
        ident, _, version = text.partition(".")
        if ident == str(object_id) and version.isdigit():
            return int(version)
    return 0  # names another object or no version: matches nothing
