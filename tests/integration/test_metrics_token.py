"""/metrics names tenants and their licences: with GRAAM_METRICS_TOKEN set, only its bearer
reads it."""

from __future__ import annotations

import secrets
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pydantic import ValidationError

from graam_pbx.app import Endpoints
from graam_pbx.sandbox.ports import free_port
from graam_pbx.settings import Settings
from tests.conftest import Asterisk, RunningApp, start_app

TOKEN = secrets.token_urlsafe(32)


@pytest.fixture(scope="module")
async def protected(database_url: str, asterisk: Asterisk) -> AsyncIterator[RunningApp]:
    with tempfile.TemporaryDirectory(prefix="graam-cdr-") as cdr_dir:
        settings = Settings(agi_port=free_port(), cdr_dir=Path(cdr_dir), metrics_token=TOKEN)
        endpoints = Endpoints(database_url=database_url, ami=asterisk.ami_config())
        async for running in start_app(endpoints, settings):
            yield running


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Bearer",
        "Bearer ",
        f"Bearer {TOKEN[:-1]}",
        f"Bearer {TOKEN}x",
        f"Basic {TOKEN}",
        TOKEN,
        "Bearer é".encode(),  # not ASCII: compared as bytes, never an error
    ],
)
async def test_without_the_token_metrics_are_refused(
    protected: RunningApp, authorization: str | bytes | None
) -> None:
    if isinstance(authorization, str):
        authorization = authorization.encode()
    headers = {} if authorization is None else {b"Authorization": authorization}
    response = await protected.client.get("/metrics", headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    body = response.json()
    assert body["error_id"] == "unauthorized"
    assert set(body) == {"error_id", "message", "details"}
    assert "graam_" not in response.text


async def test_with_the_token_metrics_are_served(protected: RunningApp) -> None:
    for scheme in ("Bearer", "bearer"):
        response = await protected.client.get(
            "/metrics", headers={"Authorization": f"{scheme} {TOKEN}"}
        )
        assert response.status_code == 200, response.text
        assert "graam_licences_total" in response.text or "graam_ami_connected" in response.text


async def test_health_stays_open(protected: RunningApp) -> None:
    assert (await protected.client.get("/healthz")).status_code == 200


def test_a_short_token_is_refused_at_start() -> None:
    for token in ("", "   ", "short"):
        with pytest.raises(ValidationError, match="at least 16 characters"):
            Settings(metrics_token=token)
