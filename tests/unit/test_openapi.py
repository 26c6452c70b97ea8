"""The OpenAPI document is complete: every route documents its answers, bodies have examples."""

from __future__ import annotations

from typing import Any

from graam_pbx.ami import AmiConfig
from graam_pbx.app import Endpoints, create_app
from graam_pbx.settings import Settings

SPEC: dict[str, Any] = create_app(
    Settings(),
    Endpoints(
        database_url="postgresql://x@127.0.0.1:1/x",
        ami=AmiConfig.from_settings(Settings(ami_host="127.0.0.1"), secret="unused"),
    ),
).openapi()


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
