"""What the click-to-call and call-control tests share: the API's calls, a tenant that calls
out through a sipp carrier, Asterisk's state events and the far end's DTMF."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import httpx

from graam_pbx.ami import Message, event_time
from graam_pbx.cdr.models import Cdr
from tests.conftest import RunningApp
from tests.e2e.rtp_peer import RtpPeer
from tests.e2e.sipp import Sipp, SippPool, free_udp_port
from tests.e2e.test_calls import created, new_number, new_trunk
from tests.factories import TenantWorld
from tests.waiting import until

URL = "/api/v1/calls"
CALLED = "+33612345678"  # the number a CRM clicks: a person behind the carrier
TELEPHONE_EVENT = 101  # the payload type of RFC 4733 events in every scenario's SDP
DTMF_CODES = {**{str(d): d for d in range(10)}, "*": 10, "#": 11, "A": 12, "B": 13}
BILLED_TOLERANCE = Decimal("0.050")  # seconds: a carrier leg's time against its legs' billsec


def assert_billed_whole(legs: Sequence[Cdr], answered: datetime | None, hung_up: datetime) -> None:
    """The billable ``legs`` of a carrier leg add up to its time up, from its answer to its
    hangup (to BILLED_TOLERANCE): nothing of it unbilled, nothing twice."""
    assert answered is not None
    up = Decimal(str((hung_up - answered).total_seconds()))
    billsec = sum((leg.billsec for leg in legs), Decimal(0))
    assert abs(up - billsec) < BILLED_TOLERANCE, (up, [leg.__dict__ for leg in legs])


def new_key() -> str:
    return f"crm-{uuid.uuid4()}"


async def click(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    key: str,
    number: str = CALLED,
    **extra: Any,
) -> httpx.Response:
    return await client.post(
        URL, headers={**headers, "Idempotency-Key": key}, json={"number": number, **extra}
    )


async def placed(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 202, response.text
    body: dict[str, Any] = response.json()
    return body


async def call_of(client: httpx.AsyncClient, headers: dict[str, str], call_id: str) -> Any:
    response = await client.get(f"{URL}/{call_id}", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


async def in_state(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    call_id: str,
    state: str,
    timeout: float = 20,
) -> dict[str, Any]:
    """The call once the API shows it in ``state``."""
    seen: list[dict[str, Any]] = []

    async def reached() -> bool:
        seen.append(await call_of(client, headers, call_id))
        return bool(seen[-1]["state"] == state)

    try:
        await until(reached, f"call {call_id} {state}", timeout=timeout)
    except AssertionError as err:
        raise AssertionError(f"{err}; last seen: {seen[-1] if seen else None}") from None
    return seen[-1]


async def control(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    call_id: str,
    action: str,
    body: dict[str, Any] | None = None,
) -> httpx.Response:
    return await client.post(f"{URL}/{call_id}/{action}", headers=headers, json=body)


async def live_call_of(
    client: httpx.AsyncClient, headers: dict[str, str], device: dict[str, Any]
) -> dict[str, Any]:
    """The connected live call with a channel on ``device``, as GET /api/v1/calls lists it."""
    found: list[dict[str, Any]] = []

    async def listed() -> bool:
        response = await client.get(URL, headers=headers)
        assert response.status_code == 200, response.text
        for call in response.json()["items"]:
            devices = {channel["device"] for channel in call["channels"]}
            if device["sip_username"] in devices and call["state"] == "connected":
                found.append(call)
                return True
        return False

    await until(listed, f"a connected call on {device['sip_username']}")
    return found[0]


@dataclass
class OutboundTenant:
    """A tenant's caller-ID number and the carrier its one route's trunk dials."""

    number: dict[str, Any]
    carrier: Sipp
    trunk: dict[str, Any]


async def outbound_route(
    client: httpx.AsyncClient,
    world: TenantWorld,
    sipp: SippPool,
    carrier_ip: str,
    scenario: str = "uas_answer.xml",
    keys: dict[str, str] | None = None,
    **trunk_fields: Any,
) -> OutboundTenant:
    """The tenant's number, and a carrier on ``carrier_ip`` (not started) that its route to
    France dials (through a trunk with ``trunk_fields``)."""
    number = await new_number(client, world)
    carrier = sipp.uas(scenario, ip=carrier_ip, keys=keys)
    trunk = await new_trunk(client, world, carrier_ip, carrier.port, **trunk_fields)
    await created(
        await client.post(
            "/api/v1/outbound-routes",
            headers=world.admin.headers,
            json={
                "name": "france",
                "trunk_id": trunk["id"],
                "caller_id_number_id": number["id"],
                "allowed_countries": ["FR"],
            },
        )
    )
    return OutboundTenant(number, carrier, trunk)


@dataclass
class ChannelStates:
    """When each channel went up, from Asterisk's Newstate events (their own timestamps)."""

    up: dict[str, datetime] = field(default_factory=dict)

    async def note(self, message: Message) -> None:
        if message.get("ChannelStateDesc") == "Up":
            name = message.get("Channel", "")
            self.up.setdefault(name, event_time(message, datetime.now().astimezone()))

    def of(self, prefix: str) -> datetime:
        (moment,) = [at for name, at in self.up.items() if name.startswith(prefix)]
        return moment


@contextlib.asynccontextmanager
async def channel_states(pbx: RunningApp) -> AsyncIterator[ChannelStates]:
    states = ChannelStates()
    bus = pbx.runtime.bus
    subscription = bus.subscribe(f"e2e-states-{uuid.uuid4().hex}", ["Newstate"], states.note)
    try:
        yield states
    finally:
        await bus.unsubscribe(subscription)


class DtmfPeer(RtpPeer):
    """A far end's media that also keeps the DTMF digits it receives (RFC 4733 events: one
    digit each, however many packets repeat its end)."""

    def __init__(self) -> None:
        super().__init__(None)
        self.events: list[int] = []
        self._ended: set[int] = set()  # the RTP timestamps of the events already ended

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        if len(data) >= 16 and data[0] >> 6 == 2 and data[1] & 0x7F == TELEPHONE_EVENT:
            offset = 12 + 4 * (data[0] & 0x0F)
            event, flags = data[offset], data[offset + 1]
            stamp = int.from_bytes(data[4:8], "big")
            if flags & 0x80 and stamp not in self._ended:  # the event's end, once
                self._ended.add(stamp)
                self.events.append(event)
            return
        super().datagram_received(data, addr)


@contextlib.asynccontextmanager
async def dtmf_peer(ip: str) -> AsyncIterator[tuple[DtmfPeer, int]]:
    """A far end's media port on ``ip`` keeping the DTMF it receives, and the port."""
    port = free_udp_port(ip, pair=True)
    _transport, peer = await asyncio.get_running_loop().create_datagram_endpoint(
        DtmfPeer, local_addr=(ip, port)
    )
    try:
        yield peer, port
    finally:
        await peer.close()
