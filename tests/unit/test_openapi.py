"""The OpenAPI document is complete: every route documents its answers, bodies have examples."""

from __future__ import annotations

from typing import Any

from graam_pbx.webhooks import signing
from graam_pbx.webhooks.models import EventType
from tests.conftest import unstarted_app

SPEC: dict[str, Any] = unstarted_app().openapi()


def _schema(ref: str) -> dict[str, Any]:
    schema: dict[str, Any] = SPEC["components"]["schemas"][ref.rsplit("/", 1)[-1]]
    return schema


def test_every_operation_documents_success_and_errors() -> None:
    for path, operations in SPEC["paths"].items():
        if not path.startswith("/api/"):
            continue
        for method, operation in operations.items():
            codes = set(operation["responses"])
            success = [c for c in codes if c.startswith("2")]
            assert success, (method, path)
            if "204" not in success:
                content = operation["responses"][success[0]].get("content", {})
                assert content, (method, path)
            assert "401" in codes or path.startswith("/api/v1/auth/token"), (method, path)
            for code in codes - set(success):
                assert code == "422" or "ErrorOut" in str(operation["responses"][code]), (
                    method,
                    path,
                    code,
                )


def test_every_json_body_has_an_example() -> None:
    missing = []
    for path, operations in SPEC["paths"].items():
        for method, operation in operations.items():
            body = operation.get("requestBody", {}).get("content", {}).get("application/json")
            if body is None:
                continue
            schema = body["schema"]
            if "$ref" in schema:
                schema = _schema(schema["$ref"])
            elif schema.get("type") == "array" and "$ref" in schema["items"]:
                schema = _schema(schema["items"]["$ref"])
            if "examples" not in schema:
                missing.append(f"{method.upper()} {path}")
    assert not missing, missing


def test_every_error_shares_one_shape() -> None:
    error = _schema("ErrorOut")
    assert set(error["properties"]) == {"error_id", "message", "details"}


def test_every_event_type_is_documented_as_a_webhook_with_its_body_and_signature() -> None:
    webhooks = SPEC["webhooks"]
    assert set(webhooks) == {event_type.value for event_type in EventType}
    signed = {
        signing.SIGNATURE_HEADER,
        signing.TIMESTAMP_HEADER,
        signing.EVENT_ID_HEADER,
        signing.EVENT_TYPE_HEADER,
        signing.DELIVERY_ID_HEADER,
    }
    for event_type in EventType:
        operation = webhooks[event_type.value]["post"]
        headers = {p["name"] for p in operation["parameters"] if p["in"] == "header"}
        assert headers == signed, event_type
        body = _schema(operation["requestBody"]["content"]["application/json"]["schema"]["$ref"])
        assert set(body["required"]) == {"id", "type", "occurred_at", "tenant_id", "data"}
        assert body["properties"]["type"]["const"] == event_type.value
        data = _schema(body["properties"]["data"]["$ref"])
        assert data["properties"] and set(data["required"]) == set(data["properties"])
        assert operation["summary"], event_type


def test_the_event_stream_is_documented_as_server_sent_events() -> None:
    operation = SPEC["paths"]["/api/v1/events/stream"]["get"]
    assert operation["tags"] == ["events"]
    assert "text/event-stream" in operation["responses"]["200"]["content"]
    parameters = {p["name"]: p for p in operation["parameters"]}
    assert parameters["Last-Event-ID"]["in"] == "header"
    listed = _schema(parameters["types"]["schema"]["items"]["$ref"])
    assert set(listed["enum"]) == {event_type.value for event_type in EventType}
