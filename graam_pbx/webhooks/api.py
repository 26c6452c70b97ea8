from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from graam_pbx.deps import Admin, DbSession, Reader
from graam_pbx.rest import (
    IfMatch,
    Page,
    PageParams,
    error_responses,
    expected_version,
    id_path,
    page_of,
    set_etag,
)
from graam_pbx.webhooks import addresses, service
from graam_pbx.webhooks.models import DeliveryState
from graam_pbx.webhooks.schemas import (
    DeliveryOut,
    WebhookCreate,
    WebhookCreated,
    WebhookOut,
    WebhookSecret,
    WebhookUpdate,
)

TAGS: list[str | Any] = ["webhooks"]
router = APIRouter(prefix="/api/v1/webhooks", tags=TAGS)
EndpointId = Annotated[int, id_path("The webhook endpoint's id")]
DeliveryId = Annotated[int, id_path("The delivery's id")]


def _allowed(request: Request) -> list[addresses.Network]:
    allowed: list[addresses.Network] = request.app.state.runtime.settings.webhooks_allowed
    return allowed


@router.post(
    "",
    status_code=201,
    response_model=WebhookCreated,
    responses=error_responses(401, 403, 422),
    summary="Register an endpoint for some of the tenant's events; its secret is shown once",
    description="The URL must be http or https, on a host resolving to public addresses only "
    "(422 `body.url` otherwise; the operator may allow networks with "
    "`GRAAM_WEBHOOKS_ALLOWED_NETWORKS`). Each event is POSTed to it as JSON with "
    "`Graam-Signature: v1=<hex HMAC-SHA256 of '<Graam-Timestamp>.<body>' keyed with the "
    "secret>` (docs/integrations.md).",
)
async def create_webhook(
    body: WebhookCreate, scope: Admin, session: DbSession, request: Request, response: Response
) -> WebhookCreated:
    endpoint = await service.create(session, scope, body, _allowed(request))
    set_etag(response, endpoint.id, endpoint.version)
    return WebhookCreated.model_validate(endpoint)


@router.get("", response_model=Page[WebhookOut], responses=error_responses(401, 403))
async def list_webhooks(scope: Reader, session: DbSession, page: PageParams) -> Page[WebhookOut]:
    endpoints, after = await service.list_endpoints(
        session, scope, after_id=page.after_id, limit=page.limit
    )
    return page_of([WebhookOut.model_validate(e) for e in endpoints], after)


@router.get(
    "/{endpoint_id}", response_model=WebhookOut, responses=error_responses(401, 403, 404, 422)
)
async def get_webhook(
    endpoint_id: EndpointId, scope: Reader, session: DbSession, response: Response
) -> WebhookOut:
    endpoint = await service.get(session, scope, endpoint_id)
    set_etag(response, endpoint.id, endpoint.version)
    return WebhookOut.model_validate(endpoint)


@router.patch(
    "/{endpoint_id}",
    response_model=WebhookOut,
    responses=error_responses(401, 403, 404, 412, 422),
    summary="Change an endpoint's URL, events or description; disable or enable it",
)
async def update_webhook(
    endpoint_id: EndpointId,
    body: WebhookUpdate,
    scope: Admin,
    session: DbSession,
    request: Request,
    response: Response,
    if_match: IfMatch = None,
) -> WebhookOut:
    endpoint = await service.update_endpoint(
        session,
        scope,
        endpoint_id,
        body,
        expected_version(if_match, endpoint_id),
        _allowed(request),
    )
    set_etag(response, endpoint.id, endpoint.version)
    return WebhookOut.model_validate(endpoint)


@router.delete("/{endpoint_id}", status_code=204, responses=error_responses(401, 403, 404, 422))
async def delete_webhook(endpoint_id: EndpointId, scope: Admin, session: DbSession) -> Response:
    await service.delete(session, scope, endpoint_id)
    return Response(status_code=204)


@router.post(
    "/{endpoint_id}/secret",
    response_model=WebhookSecret,
    responses=error_responses(401, 403, 404, 422),
    summary="Replace the endpoint's secret (shown once); the next deliveries use the new one",
)
async def rotate_secret(endpoint_id: EndpointId, scope: Admin, session: DbSession) -> WebhookSecret:
    return WebhookSecret(secret=await service.rotate_secret(session, scope, endpoint_id))


@router.get(
    "/{endpoint_id}/deliveries",
    response_model=Page[DeliveryOut],
    responses=error_responses(401, 403, 404, 422),
    summary="The endpoint's deliveries, newest first: pending, delivered, or dead with the "
    "last error",
)
async def list_deliveries(
    endpoint_id: EndpointId,
    scope: Reader,
    session: DbSession,
    page: PageParams,
    state: Annotated[DeliveryState | None, Query(description="Only in this state")] = None,
) -> Page[DeliveryOut]:
    items, after = await service.deliveries(
        session, scope, endpoint_id, state, after_id=page.after_id, limit=page.limit
    )
    return page_of(items, after)


@router.post(
    "/{endpoint_id}/deliveries/{delivery_id}/retry",
    status_code=202,
    responses=error_responses(401, 403, 404, 422),
    summary="Try a pending or dead delivery again now",
)
async def retry_delivery(
    endpoint_id: EndpointId,
    delivery_id: DeliveryId,
    scope: Admin,
    session: DbSession,
) -> Response:
    await service.retry(session, scope, endpoint_id, delivery_id)
    return Response(status_code=202)
