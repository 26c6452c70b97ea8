"""What the Webhooks pages say and read: the event types' and deliveries' labels, each
field's rule, an endpoint's state in words, and the forms' input checked by the API's own
schemas (``WebhookCreate``, ``WebhookUpdate``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import ValidationError

from graam_pbx.errors import Invalid
from graam_pbx.web.i18n import _
from graam_pbx.web.render import form_errors
from graam_pbx.web.viewer import Viewer
from graam_pbx.webhooks import addresses
from graam_pbx.webhooks.models import DeliveryState, EventType, WebhookEndpoint
from graam_pbx.webhooks.schemas import WebhookCreate, WebhookUpdate

# Each event type, said in a few words beside its code (docs/integrations.md, Events).
EVENT_LABELS = {
    EventType.CALL_RINGING.value: _("A queue call rings at an agent"),
    EventType.CALL_ANSWERED.value: _("An agent answered a queue call"),
    EventType.CALL_MISSED.value: _("An agent's phone rang out unanswered"),
    EventType.CALL_ABANDONED.value: _("A caller hung up while waiting in a queue"),
    EventType.CALL_ENDED.value: _("A leg of a call ended (its CDR)"),
    EventType.AGENT_STATE_CHANGED.value: _("An agent's state changed"),
    EventType.CAMPAIGN_FINISHED.value: _("An outbound campaign finished"),
}

STATE_LABELS = {
    DeliveryState.PENDING.value: _("Pending"),
    DeliveryState.DELIVERED.value: _("Delivered"),
    DeliveryState.DEAD.value: _("Dead"),
}

# The service's words when an administrator disables an endpoint (service.update_endpoint).
BY_AN_ADMINISTRATOR = "disabled by an administrator"

FORM_FIELDS = ("url", "events", "description")


@dataclass
class Typed:
    """An endpoint form's values as typed (shown again when refused)."""

    url: str = ""
    events: list[str] = field(default_factory=list)
    description: str = ""

    @classmethod
    def of(cls, endpoint: WebhookEndpoint) -> Typed:
        return cls(endpoint.url, list(endpoint.events), endpoint.description)

    def raw(self) -> dict[str, object]:
        return {
            "url": self.url.strip(),
            "events": self.events,
            "description": self.description.strip(),
        }


def field_rules(viewer: Viewer) -> dict[str, str]:
    """What each field accepts, said next to it when the schema refuses it."""
    gettext = viewer.texts.gettext
    return {
        "url": gettext(
            "An http or https URL, without credentials or fragment, at most 2,000 characters."
        ),
        "events": gettext("Choose at least one event type."),
        "description": gettext("At most 200 characters."),
    }


def refused_fields(viewer: Viewer, err: ValidationError) -> dict[str, str]:
    """The schema's refusals, each beside its field (the URL's when none is named)."""
    rules = field_rules(viewer)
    return form_errors(err, rules) or {"url": rules["url"]}


def refused_url(viewer: Viewer, err: Invalid) -> dict[str, str]:
    """The service's refusal of the URL (its host does not resolve, or not to a public
    address), with its reason in the reader's language."""
    cause = err.__cause__
    if isinstance(cause, addresses.Refused):
        reason = viewer.texts.gettext(cause.reason, **cause.values)
    else:
        errors = err.details.get("errors") or [{}]
        reason = str(errors[0].get("reason", err.message))
    return {"url": viewer.texts.gettext("This URL is refused: {reason}.", reason=reason)}


def to_create(viewer: Viewer, typed: Typed) -> tuple[WebhookCreate | None, dict[str, str]]:
    try:
        return WebhookCreate.model_validate(typed.raw()), {}
    except ValidationError as err:
        return None, refused_fields(viewer, err)


def to_update(viewer: Viewer, typed: Typed) -> tuple[WebhookUpdate | None, dict[str, str]]:
    try:
        return WebhookUpdate.model_validate(typed.raw()), {}
    except ValidationError as err:
        return None, refused_fields(viewer, err)


def endpoint_state(viewer: Viewer, endpoint: WebhookEndpoint) -> str:
    """Why an endpoint is disabled, in the viewer's language when the reason is known."""
    texts = viewer.texts
    reason = endpoint.disabled_reason or ""
    if reason == BY_AN_ADMINISTRATOR:
        return texts.gettext("Disabled by an administrator.")
    if reason.startswith("every delivery failed") and endpoint.failing_since is not None:
        return texts.gettext(
            "Disabled: every delivery failed since {moment}.",
            moment=texts.datetime(endpoint.failing_since),
        )
    return reason
