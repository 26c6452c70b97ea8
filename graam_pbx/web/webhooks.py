"""The Webhooks pages: the tenant's endpoints and each one's deliveries (admins and
supervisors read; admins, and operators acting in the tenant, add, change, enable, disable,
rotate the secret, delete and retry).

Every read and change is a ``webhooks.service`` function the API's routes call too
(``/api/v1/webhooks``), with the same rules, audit entries and URL checks (the operator's
allowed networks); the forms' input is checked by the API's own schemas. A secret is shown
once, on the page that answers its creation or rotation, never again.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Form, Path, Query, Request
from fastapi.responses import RedirectResponse, Response

from graam_pbx.auth.principal import Role
from graam_pbx.deps import DbSession
from graam_pbx.errors import Invalid, NotFound, PreconditionFailed
from graam_pbx.fields import MAX_ID
from graam_pbx.web.i18n import _
from graam_pbx.web.render import page
from graam_pbx.web.viewer import AdminViewer, Supervising, Viewer, console_router
from graam_pbx.web.webhook_forms import (
    EVENT_LABELS,
    STATE_LABELS,
    Typed,
    endpoint_state,
    refused_url,
    to_create,
    to_update,
)
from graam_pbx.webhooks import addresses, service
from graam_pbx.webhooks.models import DeliveryState, EventType, WebhookEndpoint
from graam_pbx.webhooks.schemas import WebhookUpdate

router = console_router()

PAGE_ROWS = 100  # endpoints listed
DELIVERY_ROWS = 50  # deliveries a page
EndpointId = Annotated[int, Path(ge=1, le=MAX_ID)]
DeliveryId = Annotated[int, Path(ge=1, le=MAX_ID)]
# Generous bounds for the raw form: the schema then says precisely what is wrong.
UrlForm = Annotated[str, Form(max_length=4000)]
EventsForm = Annotated[list[str] | None, Form(max_length=20)]
DescriptionForm = Annotated[str, Form(max_length=1000)]
StateQuery = Annotated[DeliveryState | None, Query()]

DONE_TEXTS = {
    "saved": _("The endpoint is saved."),
    "enabled": _("The endpoint is enabled: its events are delivered again."),
    "disabled": _("The endpoint is disabled: no event is kept for it, its pending ones are dead."),
    "deleted": _("The endpoint is deleted, with its deliveries."),
    "retried": _("The delivery is tried again now."),
}


def _allowed(request: Request) -> list[addresses.Network]:
    allowed: list[addresses.Network] = request.app.state.runtime.settings.webhooks_allowed
    return allowed


def _can_manage(viewer: Viewer) -> bool:
    return viewer.role in (Role.ADMIN, Role.OPERATOR)


def _done(viewer: Viewer, done: str | None) -> str | None:
    text = DONE_TEXTS.get(done or "")
    return viewer.texts.gettext(text) if text else None


def _common(viewer: Viewer) -> dict[str, Any]:
    return {
        "can_manage": _can_manage(viewer),
        # Every type the API takes, each with its words when it has some.
        "event_labels": {t.value: EVENT_LABELS.get(t.value, "") for t in EventType},
        "state_labels": STATE_LABELS,
    }


# ---- the list, and adding an endpoint -----------------------------------------------------


async def list_page(
    request: Request,
    viewer: Viewer,
    session: DbSession,
    *,
    status: int = 200,
    typed: Typed | None = None,
    errors: dict[str, str] | None = None,
    done: str | None = None,
) -> Response:
    endpoints, more = await service.list_endpoints(
        session, viewer.scope, after_id=None, limit=PAGE_ROWS
    )
    return page(
        request,
        viewer,
        "webhooks.html",
        status=status,
        title=viewer.texts.gettext("Webhooks"),
        endpoints=endpoints,
        more=more is not None,
        states={e.id: endpoint_state(viewer, e) for e in endpoints},
        typed=typed or Typed(),
        errors=errors or {},
        done=done,
        **_common(viewer),
    )


@router.get("/webhooks")
async def webhooks(
    request: Request,
    viewer: Supervising,
    session: DbSession,
    done: Annotated[str | None, Query(max_length=20)] = None,
) -> Response:
    return await list_page(request, viewer, session, done=_done(viewer, done))


@router.post("/webhooks")
async def add_webhook(
    request: Request,
    viewer: AdminViewer,
    session: DbSession,
    url: UrlForm = "",
    events: EventsForm = None,
    description: DescriptionForm = "",
) -> Response:
    typed = Typed(url, events or [], description)
    data, errors = to_create(viewer, typed)
    if data is None:
        return await list_page(request, viewer, session, status=422, typed=typed, errors=errors)
    try:
        async with session.begin_nested():
            made = await service.create(session, viewer.scope, data, _allowed(request))
    except Invalid as err:
        errors = refused_url(viewer, err)
        return await list_page(request, viewer, session, status=422, typed=typed, errors=errors)
    return await endpoint_page(
        request,
        viewer,
        session,
        made,
        secret=made.secret,
        done=viewer.texts.gettext("The endpoint is added."),
    )


# ---- one endpoint: its settings and its deliveries ----------------------------------------


async def endpoint_page(
    request: Request,
    viewer: Viewer,
    session: DbSession,
    endpoint: WebhookEndpoint,
    *,
    status: int = 200,
    state: DeliveryState | None = None,
    after: int | None = None,
    typed: Typed | None = None,
    errors: dict[str, str] | None = None,
    done: str | None = None,
    problem: str | None = None,
    secret: str | None = None,
) -> Response:
    deliveries, older = await service.deliveries(
        session, viewer.scope, endpoint.id, state, after_id=after, limit=DELIVERY_ROWS
    )
    return page(
        request,
        viewer,
        "webhook.html",
        status=status,
        title=viewer.texts.gettext("Webhook {url}", url=endpoint.url),
        endpoint=endpoint,
        endpoint_state=endpoint_state(viewer, endpoint),
        deliveries=deliveries,
        older=older,
        state=state.value if state else "",
        paged=after is not None,
        typed=typed or Typed.of(endpoint),
        errors=errors or {},
        done=done,
        problem=problem,
        secret=secret,
        **_common(viewer),
    )


@router.get("/webhooks/{endpoint_id}")
async def webhook(
    request: Request,
    viewer: Supervising,
    session: DbSession,
    endpoint_id: EndpointId,
    state: StateQuery = None,
    after: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    done: Annotated[str | None, Query(max_length=20)] = None,
) -> Response:
    endpoint = await service.get(session, viewer.scope, endpoint_id)
    return await endpoint_page(
        request, viewer, session, endpoint, state=state, after=after, done=_done(viewer, done)
    )


@router.post("/webhooks/{endpoint_id}")
async def change_webhook(
    request: Request,
    viewer: AdminViewer,
    session: DbSession,
    endpoint_id: EndpointId,
    url: UrlForm = "",
    events: EventsForm = None,
    description: DescriptionForm = "",
    version: Annotated[int | None, Form(ge=0, le=MAX_ID)] = None,
) -> Response:
    endpoint = await service.get(session, viewer.scope, endpoint_id)
    typed = Typed(url, events or [], description)
    data, errors = to_update(viewer, typed)
    if data is None:
        return await endpoint_page(
            request, viewer, session, endpoint, status=422, typed=typed, errors=errors
        )
    try:
        async with session.begin_nested():
            await service.update_endpoint(
                session, viewer.scope, endpoint_id, data, version, _allowed(request)
            )
    except Invalid as err:
        await session.refresh(endpoint)  # as it is, after the savepoint's rollback
        return await endpoint_page(
            request,
            viewer,
            session,
            endpoint,
            status=422,
            typed=typed,
            errors=refused_url(viewer, err),
        )
    except PreconditionFailed:
        await session.refresh(endpoint)
        problem = viewer.texts.gettext(
            "The endpoint changed since you opened the page: check your values, then save."
        )
        return await endpoint_page(
            request, viewer, session, endpoint, status=412, typed=typed, problem=problem
        )
    return RedirectResponse(viewer.link(f"/webhooks/{endpoint_id}", done="saved"), 303)


@router.post("/webhooks/{endpoint_id}/enabled")
async def enable_webhook(
    request: Request,
    viewer: AdminViewer,
    session: DbSession,
    endpoint_id: EndpointId,
    enabled: Annotated[bool, Form()] = True,
) -> Response:
    await service.update_endpoint(
        session,
        viewer.scope,
        endpoint_id,
        WebhookUpdate(enabled=enabled),
        None,
        _allowed(request),
    )
    done = "enabled" if enabled else "disabled"
    return RedirectResponse(viewer.link(f"/webhooks/{endpoint_id}", done=done), 303)


@router.post("/webhooks/{endpoint_id}/secret")
async def rotate_secret(
    request: Request, viewer: AdminViewer, session: DbSession, endpoint_id: EndpointId
) -> Response:
    secret = await service.rotate_secret(session, viewer.scope, endpoint_id)
    endpoint = await service.get(session, viewer.scope, endpoint_id)
    done = viewer.texts.gettext("The secret is replaced: the next deliveries are signed with it.")
    return await endpoint_page(request, viewer, session, endpoint, secret=secret, done=done)


@router.get("/webhooks/{endpoint_id}/secret")
async def secret_shown(viewer: Supervising, endpoint_id: EndpointId) -> Response:
    """The page of a rotation, asked again (a reload, a change of language): the secret is
    never shown again, the endpoint's page is."""
    return RedirectResponse(viewer.link(f"/webhooks/{endpoint_id}"), 303)


@router.post("/webhooks/{endpoint_id}/delete")
async def delete_webhook(
    viewer: AdminViewer, session: DbSession, endpoint_id: EndpointId
) -> Response:
    await service.delete(session, viewer.scope, endpoint_id)
    return RedirectResponse(viewer.link("/webhooks", done="deleted"), 303)


@router.post("/webhooks/{endpoint_id}/deliveries/{delivery_id}/retry")
async def retry_delivery(
    request: Request,
    viewer: AdminViewer,
    session: DbSession,
    endpoint_id: EndpointId,
    delivery_id: DeliveryId,
    state: Annotated[DeliveryState | None, Form()] = None,
) -> Response:
    try:
        async with session.begin_nested():
            await service.retry(session, viewer.scope, endpoint_id, delivery_id)
    except NotFound:
        endpoint = await service.get(session, viewer.scope, endpoint_id)
        problem = viewer.texts.gettext(
            "This delivery cannot be retried: it was delivered meanwhile."
        )
        return await endpoint_page(
            request, viewer, session, endpoint, status=404, state=state, problem=problem
        )
    chosen = state.value if state else None
    return RedirectResponse(
        viewer.link(f"/webhooks/{endpoint_id}", state=chosen, done="retried"), 303
    )
