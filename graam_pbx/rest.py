"""REST conventions every ``api.py`` shares: keyset pages, ETags, documented error bodies."""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Annotated, Any, Generic, TypeVar
from urllib.parse import parse_qsl

from fastapi import Depends, FastAPI, Header, Path, Query, Response
from pydantic import BaseModel, Field
from starlette.datastructures import Headers
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from graam_pbx.errors import Invalid
from graam_pbx.fields import MAX_ID

Item = TypeVar("Item")

MAX_PAGE = 200


async def every_page(
    read: Callable[[int | None], Awaitable[tuple[list[Item], int | None]]],
) -> list[Item]:
    """Every row of a keyset-paged service list: ``read(after_id)``, from the start (None)
    to the page that names no next."""
    rows: list[Item] = []
    after: int | None = None
    while True:
        page, after = await read(after)
        rows.extend(page)
        if after is None:
            return rows


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
    if 401 in codes and 403 not in codes:
        # Whatever takes credentials answers 403 to an API key outside its scope.
        codes = (*codes, 403)
    described = {
        401: "Missing or invalid credentials",
        403: "The caller's role, or its API key's scope, may not do this",
        404: "No such object in the caller's tenant",
        409: "Conflicts with what is stored",
        412: "If-Match does not match the current ETag",
        422: "Invalid input; details.errors names each field",
        429: "Too many failed attempts; retry later",
        503: "Too busy now; retry after Retry-After seconds",
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


# What a cursor looks like (unpadded URL-safe base64), so a client's schema knows that an
# empty one is no cursor; one this API did not return is still a 422 on ``cursor``.
CursorParam = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=200,
        pattern=r"^[A-Za-z0-9_-]+$",
        description="next_cursor of the previous page",
    ),
]


def page_query(
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE, description="Items per page")] = 50,
    cursor: CursorParam = None,
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


# What Postgres cannot store in a text (nor a jsonb) value: NUL, and lone surrogates, which are
# no Unicode text and have no UTF-8 form (JSON's "\ud800" escapes make them).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def unstorable_reason(text: str) -> str | None:
    """Why ``text`` cannot be stored as text, or None when it can."""
    found = _UNSTORABLE.search(text)
    if found is None:
        return None
    if found.group() == "\x00":
        return "NUL characters are not allowed"
    return "lone surrogates (not Unicode text) are not allowed"


def _unstorable_in_json(value: Any, at: str) -> tuple[str, str] | None:
    if isinstance(value, str):
        reason = unstorable_reason(value)
        return (at, reason) if reason else None
    items: Iterator[tuple[Any, Any]]
    if isinstance(value, dict):
        for key in value:
            reason = unstorable_reason(key)
            if reason:
                return f"{at}.{key}", reason
        items = iter(value.items())
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return None
    for key, item in items:
        found = _unstorable_in_json(item, f"{at}.{key}")
        if found:
            return found
    return None


def _is_json(content_type: str | None) -> bool:
    # What FastAPI parses as JSON: application/json and any application/*+json. A body with no
    # content type is not (strict_content_type): FastAPI refuses it, so it is not read here.
    if not content_type:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


class StorableInput:
    """Refuses, before any route runs, input Postgres could not store: one 422, never a 500.

    Every string of the path, the query, the headers and a JSON body is checked, so a filter
    (``?did=%00``) or a free-text field added later is covered without a type of its own; a
    body that is not UTF-8 is the same 422 on ``body``. The error has the one shape of every
    error, naming the field (``query.did``, ``body.options.1``, ``path.msg_id``).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        found = await _unstorable_in_path(scope) or _unstorable_in_query(scope)
        found = found or _unstorable_in_headers(scope)
        if (
            found is None
            and scope["method"] in _BODY_METHODS
            and _is_json(Headers(scope=scope).get("content-type"))
        ):
            body, more = await _read_body(receive)
            found = _unstorable_in_body(body)
            receive = _replay(body, more, receive)
        if found is not None:
            field, reason = found
            error = ErrorOut(
                error_id="validation-failed",
                message="the request is not valid",
                details={"errors": [{"field": field, "reason": reason}]},
            )
            # ASCII JSON: a field named by a lone surrogate goes back as its "\ud800" escape.
            response = Response(json.dumps(error.model_dump()), 422, media_type="application/json")
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


async def _unstorable_in_path(scope: Scope) -> tuple[str, str] | None:
    reason = unstorable_reason(scope["path"])
    if reason is None:
        return None
    # Name the path parameter when a documented path matches, as a validation error would.
    app = scope.get("app")
    document = await openapi_document(app) if isinstance(app, FastAPI) else {}
    for template in document.get("paths", {}):
        regex, _, _ = compile_path(template)
        matched = regex.match(scope["path"])
        if matched:
            for name, value in matched.groupdict().items():
                if unstorable_reason(value):
                    return f"path.{name}", reason
    return "path", reason


def _unstorable_in_query(scope: Scope) -> tuple[str, str] | None:
    # Decoded as Starlette decodes it; bytes that are not UTF-8 become U+FFFD there.
    query = scope.get("query_string", b"").decode("latin-1")
    for key, value in parse_qsl(query, keep_blank_values=True):
        reason = unstorable_reason(key) or unstorable_reason(value)
        if reason:
            return f"query.{key}", reason
    return None


def _unstorable_in_headers(scope: Scope) -> tuple[str, str] | None:
    for key, value in scope["headers"]:
        if b"\x00" in key or b"\x00" in value:
            return f"header.{key.decode('latin-1').lower()}", "NUL characters are not allowed"
    return None


def _unstorable_in_body(body: bytes) -> tuple[str, str] | None:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return "body", "not UTF-8 text"
    if not text.strip():
        return None
    try:
        document = json.loads(text)
    except ValueError:
        return None  # FastAPI answers malformed JSON with its own 422 on the position
    return _unstorable_in_json(document, "body")


async def _read_body(receive: Receive) -> tuple[bytes, list[Message]]:
    """The whole body, and any message that came after it (a disconnect)."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks), [message]
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks), []


def _replay(body: bytes, after: list[Message], receive: Receive) -> Receive:
    pending: list[Message] = [{"type": "http.request", "body": body, "more_body": False}, *after]

    async def replayed() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replayed


async def started_stream(chunks: AsyncIterator[str]) -> AsyncIterator[str]:
    """``chunks`` with its first chunk already made, for a ``StreamingResponse``.

    Awaited in the route, so that a refusal or a failing first query is an error response in
    the usual shape; only once the first chunk exists does the 200 start.
    """
    try:
        first = await anext(chunks)
    except StopAsyncIteration:
        first = None

    async def stream() -> AsyncIterator[str]:
        if first is None:
            return
        yield first
        async for chunk in chunks:
            yield chunk

    return stream()


def _not_nullable(schema: dict[str, Any]) -> dict[str, Any]:
    options = schema.get("anyOf")
    if not isinstance(options, list):
        return schema
    kept = [option for option in options if option != {"type": "null"}]
    if len(kept) == len(options):
        return schema
    rest = {key: value for key, value in schema.items() if key != "anyOf"}
    if len(kept) == 1:
        return {**kept[0], **rest}
    return {**rest, "anyOf": kept}


async def openapi_document(app: FastAPI) -> dict[str, Any]:
    """The app's OpenAPI document, built once, in a worker thread.

    FastAPI builds it at its first use, from a schema of every model of every route: seconds
    of CPU for this API. Built on the event loop, those seconds would stall everything the
    loop serves (AMI pings, whose time-out drops the connection; FastAGI; every request)
    the first time anyone opens ``/docs``, or sends a 405 or a NUL in a path. Every reader
    of the document goes through here; callers arriving during the build wait for it.
    """
    if app.openapi_schema is None:
        lock: asyncio.Lock | None = getattr(app.state, "openapi_lock", None)
        if lock is None:
            lock = app.state.openapi_lock = asyncio.Lock()
        async with lock:
            if app.openapi_schema is None:
                await asyncio.to_thread(app.openapi)
    document: dict[str, Any] = app.openapi()  # built: FastAPI returns the one it keeps
    return document


def openapi_parameters_without_null(document: dict[str, Any]) -> dict[str, Any]:
    """The OpenAPI document with no ``null`` among path, query, header or cookie values.

    A parameter is a string on the wire: ``X-Graam-Tenant: null`` is no tenant id but the
    text "null" (a 422); an optional parameter is one left out, as ``required: false`` says.
    """
    for item in document.get("paths", {}).values():
        for operation in item.values():
            if not isinstance(operation, dict):
                continue
            for parameter in operation.get("parameters", []):
                if "schema" in parameter:
                    parameter["schema"] = _not_nullable(parameter["schema"])
    return document


def allowed_methods(document: dict[str, Any], path: str) -> list[str]:
    """Every method the OpenAPI document serves at ``path``: a 405's ``Allow`` header.

    FastAPI's own 405 names only the methods of the first route whose path matched.
    """
    methods: set[str] = set()
    for template, item in document.get("paths", {}).items():
        regex, _, _ = compile_path(template)
        if regex.match(path):
            methods.update(method.upper() for method in item if method.upper() in _HTTP_METHODS)
    if "GET" in methods:
        methods.add("HEAD")
    return sorted(methods)


_HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"})
