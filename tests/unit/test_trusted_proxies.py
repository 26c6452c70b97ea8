"""Forwarded headers are believed from the proxies GRAAM_TRUSTED_PROXIES names, and no one else."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from graam_pbx.cli import api_server_config
from graam_pbx.settings import Settings


async def _app(scope: Any, receive: Any, send: Any) -> None:  # a bare ASGI app
    raise NotImplementedError


def test_no_proxy_is_trusted_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    # uvicorn's own default would believe 127.0.0.1, or whatever $FORWARDED_ALLOW_IPS says.
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "*")
    settings = Settings()
    assert settings.trusted_proxies == []
    config = api_server_config(_app, settings)
    assert config.proxy_headers is False
    config.load()
    assert not isinstance(config.loaded_app, ProxyHeadersMiddleware)


def test_trusted_proxies_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRAAM_TRUSTED_PROXIES", " 10.1.2.3, 192.168.7.9/16,::1 ")
    settings = Settings()
    # Networks written as uvicorn compares them (it ignores a network with host bits set).
    assert settings.trusted_proxies == ["10.1.2.3", "192.168.0.0/16", "::1"]
    config = api_server_config(_app, settings)
    config.load()
    assert isinstance(config.loaded_app, ProxyHeadersMiddleware)
    trusted = config.loaded_app.trusted_hosts
    assert "10.1.2.3" in trusted and "192.168.200.1" in trusted and "::1" in trusted
    assert "127.0.0.1" not in trusted and "10.1.2.4" not in trusted


@pytest.mark.parametrize("value", ["*", "localhost", "10.0.0.0/33", "proxy.example"])
def test_anything_but_addresses_and_networks_is_refused(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("GRAAM_TRUSTED_PROXIES", value)
    with pytest.raises(ValidationError, match="trusted_proxies"):
        Settings()
