"""The OpenAPI document's ``webhooks``: one POST per event type, as an endpoint receives it
(its body, its signature headers). Nothing here is served: ``app.webhooks`` only documents."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import APIRouter, Header, Response

from graam_pbx.webhooks import signing
from graam_pbx.webhooks.models import EventType
from graam_pbx.webhooks.payloads import BODIES, EventBody

HEADERS = {
    signing.SIGNATURE_HEADER: "`v1=` and the hex HMAC-SHA256, keyed with the endpoint's "
    "secret, of the `Graam-Timestamp` value, a dot and the raw body: verify it (constant "
    "time) before trusting the body.",
    signing.TIMESTAMP_HEADER: "When it was signed (Unix seconds): refuse one more than "
    f"{signing.TOLERANCE_SECONDS // 60} minutes from your clock (a replay).",
    signing.EVENT_ID_HEADER: "The event's id (the body's `id`): deduplicate on it.",
    signing.EVENT_TYPE_HEADER: "The event's type (the body's `type`).",
    signing.DELIVERY_ID_HEADER: "This delivery's id (`/api/v1/webhooks/{id}/deliveries`).",
}
DESCRIPTION = (
    "POSTed as JSON to every enabled endpoint of the tenant subscribed to `{type}`, at least "
    "once (a 2xx answer delivers it; anything else is retried with back-off for a day), in "
    "order per call. The same body is a streamed event's `data:` "
    "(`GET /api/v1/events/stream`). docs/integrations.md."
)

router = APIRouter()


def _receiver(body: type[EventBody]) -> Callable[..., Awaitable[None]]:
    """An operation taking ``body`` and the signature headers (its signature only matters)."""

    async def receive(**_: object) -> None:
        return None

    parameters = [
        inspect.Parameter("body", inspect.Parameter.KEYWORD_ONLY, annotation=body),
        *(
            inspect.Parameter(
                name.lower().replace("-", "_"),
                inspect.Parameter.KEYWORD_ONLY,
                annotation=Annotated[str, Header(alias=name, description=description)],
            )
            for name, description in HEADERS.items()
        ),
    ]
    receive.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    return receive


def _summary(event_type: EventType, body: type[EventBody]) -> str:
    """The first line of its data's docstring."""
    doc = getattr(body.model_fields["data"].annotation, "__doc__", None) or event_type.value
    return doc.strip().splitlines()[0].replace("``", "`")


for _type, _body in BODIES.items():
    router.add_api_route(
        _type.value,
        _receiver(_body),
        methods=["POST"],
        response_class=Response,
        summary=_summary(_type, _body),
        description=DESCRIPTION.format(type=_type.value),
        responses={
            200: {"description": "Any 2xx within the delivery timeout delivers it"},
            "default": {"description": "Anything else, or no answer in time: retried later"},
        },
        operation_id=f"webhook_{_type.value.replace('.', '_')}",
    )
