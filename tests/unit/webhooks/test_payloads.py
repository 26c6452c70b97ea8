"""The documented bodies (the OpenAPI document's webhooks) are what the recorders make."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel

from graam_pbx.voicemail.events import event_data
from graam_pbx.voicemail.spool import MessageInfo, StoredMessage
from graam_pbx.webhooks.models import EventType
from graam_pbx.webhooks.payloads import BODIES, envelope
from graam_pbx.webhooks.recorder import TYPES, recorded
from tests.unit.webhooks.test_recorded_events import NOW, event


def documented(event_type: EventType, data: dict[str, object]) -> None:
    """``data`` is valid for its type's model, with every field and nothing else."""
    body = json.loads(envelope(7, event_type.value, NOW, 12, json.dumps(data)))
    model = BODIES[event_type]
    model.model_validate(body)
    data_model = model.model_fields["data"].annotation
    assert isinstance(data_model, type) and issubclass(data_model, BaseModel)
    assert set(data) == set(data_model.model_fields), event_type


def test_every_event_type_has_a_documented_body() -> None:
    assert set(BODIES) == set(EventType)


def test_the_queue_events_data_is_as_documented() -> None:
    for name in TYPES:
        made = recorded(event(name, HoldTime="12", RingTime="3", Position="1"), NOW)
        assert made is not None
        documented(made.type, made.payload)


def test_a_voicemail_messages_data_is_as_documented() -> None:
    info = MessageInfo(
        msg_id="1764979200-00000001",
        caller_id='"Caller" <+33612345678>',
        caller_name="Caller",
        caller_number="+33612345678",
        duration=12,
        received_at=datetime(2026, 12, 6, tzinfo=UTC),
        urgent=False,
        original_box=None,
    )
    message = StoredMessage(info, "INBOX", 0, Path("msg0000.txt"))
    documented(EventType.VOICEMAIL_LEFT, event_data(3, "700", message))


def test_the_body_wraps_the_stored_data() -> None:
    body = envelope(5812, "call.ended", NOW, 12, '{"call_id": "c1"}')
    assert json.loads(body) == {
        "id": "5812",
        "type": "call.ended",
        "occurred_at": NOW.isoformat(),
        "tenant_id": 12,
        "data": {"call_id": "c1"},
    }
