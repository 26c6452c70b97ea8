"""Browser phones' SIP side on the real Asterisk: a device of transport ``webrtc`` registers
over SIP-over-WebSocket on Asterisk's HTTP server, its endpoint is a WebRTC one (DTLS-SRTP
with the control plane's certificate, ICE, AVPF, Opus), and its wrong password is refused."""

from __future__ import annotations

from datetime import timedelta

import httpx
from cryptography import x509
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from graam_pbx.asterisk import dtls
from tests.conftest import Asterisk, RunningApp
from tests.e2e.sip_ws import WS_PATH, WsPhone
from tests.e2e.test_calls import created
from tests.e2e.test_config_live import live
from tests.factories import browser_device, make_world

Sessions = async_sessionmaker[AsyncSession]


def ws_url(asterisk: Asterisk) -> str:
    port = asterisk.sandbox.config.http_port
    assert port is not None, "the session's Asterisk serves HTTP"
    return f"ws://127.0.0.1:{port}{WS_PATH}"


async def test_a_webrtc_device_registers_over_websocket_as_a_webrtc_endpoint(
    pbx: RunningApp,
    client: httpx.AsyncClient,
    sessions: Sessions,
    asterisk: Asterisk,
) -> None:
    world = await make_world(client, sessions)
    device = await browser_device(client, world, "301")
    assert device["transport"] == "webrtc"
    assert device["codecs"] == ["opus", "g722", "ulaw", "alaw"]
    name, password = str(device["sip_username"]), str(device["password"])
    await live(client, world)

    async with WsPhone(ws_url(asterisk), name) as phone:
        assert (await phone.register("not-" + password)).status in (401, 403)
    async with WsPhone(ws_url(asterisk), name) as phone:
        answer = await phone.register(password)
        assert answer.status == 200, answer
        async with sessions() as session:
            uri = await session.scalar(
                text("SELECT uri FROM ps_contacts WHERE endpoint = :name"), {"name": name}
            )
        # Rewritten to where the WebSocket came from (stored with ';' as '^3B').
        assert uri is not None and ";transport=ws" in uri.replace("^3B", ";").lower(), uri

        shown = await pbx.runtime.ami.command(f"pjsip show endpoint {name}", timeout=10)
        settings = dict(
            (line.split(":", 1)[0].strip(), line.split(":", 1)[1].strip())
            for line in shown.splitlines()
            if line.count(":") >= 1 and line.startswith(" ")
        )
        assert settings.get("webrtc") == "yes", shown
        assert settings.get("media_encryption") == "dtls", shown
        assert settings.get("ice_support") == "true", shown
        assert settings.get("use_avpf") == "true", shown
        assert settings.get("dtls_cert_file") == "/etc/asterisk/graam/dtls.pem", shown
        assert "opus" in settings.get("allow", ""), shown

    # The certificate the endpoint names, made by the control plane's first full pass.
    pem = (asterisk.info.config_dir / dtls.FILE_NAME).read_bytes()
    assert dtls.valid_until(pem) is not None  # a key and its certificate
    certificate = x509.load_pem_x509_certificate(pem)
    span = certificate.not_valid_after_utc - certificate.not_valid_before_utc
    assert span == dtls.VALID_FOR + timedelta(hours=1)  # made by dtls.make, an hour back
    # Current: a pass that finds it leaves it as it is.
    assert not dtls.ensure(asterisk.info.config_dir)
    assert (asterisk.info.config_dir / dtls.FILE_NAME).read_bytes() == pem


async def test_a_sip_phone_may_not_have_a_browsers_transport_with_a_codec_browsers_lack(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions)
    refused = await client.post(
        "/api/v1/devices",
        headers=world.admin.headers,
        json={
            "user_id": world.agent.user_id,
            "name": "browser",
            "extension": "302",
            "transport": "webrtc",
            "codecs": ["gsm"],
        },
    )
    assert refused.status_code == 422, refused.text
    assert "webrtc device speaks only" in refused.text
    desk = await created(
        await client.post(
            "/api/v1/devices",
            headers=world.admin.headers,
            json={
                "user_id": world.agent.user_id,
                "name": "desk",
                "extension": "303",
                "codecs": ["gsm", "ulaw"],
            },
        )
    )
    changed = await client.patch(
        f"/api/v1/devices/{desk['id']}", headers=world.admin.headers, json={"transport": "webrtc"}
    )
    assert changed.status_code == 422, changed.text
    assert changed.json()["details"]["errors"] == [
        {
            "field": "body.codecs",
            "reason": "a webrtc device speaks only opus, g722, ulaw, alaw; not gsm",
        }
    ]
    kept = await client.get(f"/api/v1/devices/{desk['id']}", headers=world.admin.headers)
    assert kept.json()["transport"] == "udp"
