from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from graam_pbx.ami import actions
from graam_pbx.ami.client import AmiClient
from graam_pbx.ami.errors import (
    AmiActionError,
    AmiDisconnected,
    AmiInjectionError,
    AmiLoginError,
    AmiNotConnected,
    AmiTimeout,
)
from graam_pbx.ami.protocol import MAX_MESSAGE_BYTES, FrameDecoder, Message
from graam_pbx.ami.transport import open_tcp

from .scripted import (
    AMI_SECRET,
    AMI_USER,
    GREETING,
    FakeAsterisk,
    Recorder,
    ScriptedTransport,
    event,
    frame,
    hang_up,
    metric,
    no_answer,
    response,
)


@asynccontextmanager
async def logged_in(
    asterisk: FakeAsterisk | None = None, *, action_timeout: float = 2.0
) -> AsyncIterator[tuple[AmiClient, ScriptedTransport, Recorder]]:
    transport = ScriptedTransport(asterisk or FakeAsterisk(send_fully_booted=False))
    events = Recorder()
    client = await AmiClient.connect(
        transport, AMI_USER, AMI_SECRET, on_event=events.record, action_timeout=action_timeout
    )
    try:
        yield client, transport, events
    finally:
        await client.close()


async def test_connect_returns_only_after_login_response() -> None:
    transport = ScriptedTransport()
    connecting = asyncio.create_task(
        AmiClient.connect(transport, AMI_USER, AMI_SECRET, on_event=Recorder().record)
    )

    login = await transport.wait_for_action("Login")
    assert login["Username"] == AMI_USER
    assert login["Secret"] == AMI_SECRET
    assert not connecting.done()

    transport.feed(response(login, Message="Authentication accepted"))
    async with asyncio.timeout(2):
        client = await connecting
    assert client.greeting == "Asterisk Call Manager/11.0.0"
    assert not client.closed
    await client.close(logoff=False)


async def test_login_error_response_raises_login_error() -> None:
    transport = ScriptedTransport(FakeAsterisk(accept_login=False))

    with pytest.raises(AmiLoginError, match="Authentication failed"):
        await AmiClient.connect(transport, AMI_USER, "wrong", on_event=Recorder().record)
    assert transport.closed


async def test_login_without_answer_raises_timeout() -> None:
    transport = ScriptedTransport()

    with pytest.raises(AmiTimeout):
        await AmiClient.connect(
            transport, AMI_USER, AMI_SECRET, on_event=Recorder().record, login_timeout=0.2
        )
    assert transport.closed


async def test_coroutine_on_event_is_refused() -> None:
    async def on_event(message: Message) -> None:
        return None

    with pytest.raises(TypeError):
        AmiClient(ScriptedTransport(), on_event=on_event)  # type: ignore[arg-type]


async def test_split_utf8_jose_arrives_whole() -> None:
    async with logged_in() as (_, transport, events):
        data = event("Newchannel", Channel="PJSIP/100-00000001", CallerIDName="José")
        cut = data.index("é".encode()) + 1
        transport.feed(data[:cut])
        transport.feed(data[cut:])

        [newchannel] = await events.wait_for(1)

    assert newchannel["CallerIDName"] == "José"


async def test_crlf_in_value_raises_injection_error_and_writes_nothing() -> None:
    async with logged_in() as (client, transport, _):
        written = bytes(transport.written)

        with pytest.raises(AmiInjectionError):
            await client.action("Setvar", {"Variable": "X", "Value": "1\r\nAction: Hangup"})
        with pytest.raises(AmiInjectionError):
            await client.action("Setvar", {"Bad\nKey": "1"})

        assert bytes(transport.written) == written


async def test_queue_add_remove_pause_responses_resolve() -> None:
    async with logged_in() as (client, transport, _):
        async with asyncio.timeout(2):
            added = await actions.queue_add(
                client, "sales", "PJSIP/100", penalty=2, member_name="Ana", paused=True
            )
            paused = await actions.queue_pause(client, None, "PJSIP/100", False)
            removed = await actions.queue_remove(client, "sales", "PJSIP/100")

        assert [added.name, paused.name, removed.name] == ["Success"] * 3
        [queue_add] = transport.sent("QueueAdd")
        assert queue_add["Penalty"] == "2"
        assert queue_add["Paused"] == "true"
        assert queue_add["MemberName"] == "Ana"
        [queue_pause] = transport.sent("QueuePause")
        assert "Queue" not in queue_pause
        assert queue_pause["Paused"] == "false"


async def test_queue_add_error_raises_action_error() -> None:
    def already_there(transport: ScriptedTransport, action: Message) -> None:
        message = "Unable to add interface: Already there"
        transport.feed(response(action, "Error", Message=message))

    before = metric("graam_ami_action_errors_total", action="QueueAdd", reason="error")
    async with logged_in(FakeAsterisk(replies={"QueueAdd": already_there})) as (client, _, _):
        with pytest.raises(AmiActionError, match="Already there") as raised:
            await actions.queue_add(client, "sales", "PJSIP/100")

    assert raised.value.response is not None
    assert metric("graam_ami_action_errors_total", action="QueueAdd", reason="error") == before + 1


async def test_originate_always_carries_async_true_and_channel_id() -> None:
    async with logged_in() as (client, transport, _):
        await actions.originate(
            client,
            "PJSIP/100",
            channel_id="call-42",
            context="tenant-1-outbound",
            exten="0612345678",
            variables={"TENANT": "1"},
        )
        await actions.originate(client, "PJSIP/101", channel_id="call-43", application="Wait")

    first, second = transport.sent("Originate")
    for sent, channel_id in [(first, "call-42"), (second, "call-43")]:
        assert sent["Async"] == "true"
        assert sent["ChannelId"] == channel_id
        assert "OtherChannelId" not in sent
    assert first["Priority"] == "1"
    assert first.getall("Variable") == ["TENANT=1"]
    assert second["Application"] == "Wait"


async def test_originate_needs_one_destination() -> None:
    async with logged_in() as (client, transport, _):
        with pytest.raises(ValueError, match="either"):
            await actions.originate(client, "PJSIP/100", channel_id="c")
        with pytest.raises(ValueError, match="either"):
            await actions.originate(
                client, "PJSIP/100", channel_id="c", context="x", exten="1", application="Wait"
            )
    assert transport.sent("Originate") == []


async def test_originate_uniqueid_already_in_use_counts_as_success() -> None:
    def in_use(transport: ScriptedTransport, action: Message) -> None:
        transport.feed(response(action, "Error", Message="Uniqueid call-42 already in use"))

    async with logged_in(FakeAsterisk(replies={"Originate": in_use})) as (client, _, _):
        answer = await actions.originate(
            client, "PJSIP/100", channel_id="call-42", context="c", exten="1"
        )

    assert answer.name == "Error"


async def test_originate_other_errors_still_raise() -> None:
    def refused(transport: ScriptedTransport, action: Message) -> None:
        transport.feed(response(action, "Error", Message="Originate failed"))

    async with logged_in(FakeAsterisk(replies={"Originate": refused})) as (client, _, _):
        with pytest.raises(AmiActionError):
            await actions.originate(client, "PJSIP/100", channel_id="c", context="c", exten="1")


async def test_originate_variable_cannot_smuggle_another_variable() -> None:
    async with logged_in() as (client, transport, _):
        await actions.originate(
            client,
            "PJSIP/100",
            channel_id="call-1",
            application="Wait",
            variables={"NAME": 'Doe, John",X=1 (a) [b] \\'},
        )

    [sent] = transport.sent("Originate")
    assert sent.getall("Variable") == ['NAME=Doe\\, John\\"\\,X=1 \\(a\\) \\[b\\] \\\\']


async def test_failing_on_event_does_not_kill_the_connection() -> None:
    seen: list[str] = []
    arrived = asyncio.Event()

    def on_event(message: Message) -> None:
        seen.append(message.name)
        if message.name == "Boom":
            raise RuntimeError("handler bug")
        arrived.set()

    transport = ScriptedTransport(FakeAsterisk(send_fully_booted=False))
    client = await AmiClient.connect(transport, AMI_USER, AMI_SECRET, on_event=on_event)
    before = metric("graam_ami_handler_errors_total", subscriber="on_event")

    transport.feed(event("Boom"))
    transport.feed(event("Hangup", Channel="PJSIP/100-00000001"))
    async with asyncio.timeout(2):
        await arrived.wait()
        pong = await client.action("Ping")

    assert seen == ["Boom", "Hangup"]
    assert pong["Ping"] == "Pong"
    assert not client.closed
    assert metric("graam_ami_handler_errors_total", subscriber="on_event") == before + 1
    await client.close()


async def test_unanswered_action_raises_timeout() -> None:
    before = metric("graam_ami_action_errors_total", action="Ping", reason="timeout")
    async with logged_in(FakeAsterisk(answer_ping=False)) as (client, _, _):
        with pytest.raises(AmiTimeout):
            await client.action("Ping", timeout=0.2)
        assert not client.closed

    assert metric("graam_ami_action_errors_total", action="Ping", reason="timeout") == before + 1


async def test_late_answer_after_timeout_is_ignored() -> None:
    async with logged_in(FakeAsterisk(replies={"Status": no_answer})) as (client, transport, _):
        with pytest.raises(AmiTimeout):
            await client.action("Status", timeout=0.1)
        transport.feed(response(transport.sent("Status")[0]))
        pong = await client.action("Ping")

    assert pong["Ping"] == "Pong"


async def test_connection_drop_fails_in_flight_action_with_disconnected() -> None:
    async with logged_in(FakeAsterisk(replies={"Originate": hang_up})) as (client, _, _):
        with pytest.raises(AmiDisconnected):
            await actions.originate(client, "PJSIP/100", channel_id="c-1", context="c", exten="1")
        await asyncio.wait_for(client.wait_closed(), 2)

        with pytest.raises(AmiNotConnected):
            await client.action("Ping")
    assert client.close_reason == "connection closed by Asterisk"


async def test_action_list_collects_until_complete_and_does_not_publish() -> None:
    def queue_status(transport: ScriptedTransport, action: Message) -> None:
        action_id = action["ActionID"]
        transport.feed(
            response(action, EventList="start", Message="Queue status will follow")
            + frame({"Event": "QueueParams", "Queue": "sales", "ActionID": action_id})
        )
        transport.feed(event("Newchannel", Channel="PJSIP/200-00000002"))
        transport.feed(
            frame(
                {
                    "Event": "QueueMember",
                    "Queue": "sales",
                    "Name": "Ana",
                    "ActionID": action_id,
                }
            )
            + frame(
                {
                    "Event": "QueueStatusComplete",
                    "ActionID": action_id,
                    "EventList": "Complete",
                    "ListItems": "2",
                }
            )
        )

    asterisk = FakeAsterisk(replies={"QueueStatus": queue_status}, send_fully_booted=False)
    async with logged_in(asterisk) as (client, transport, events):
        items = await actions.queue_status(client, "sales")
        await events.wait_for(1)

    assert [item.name for item in items] == ["QueueParams", "QueueMember"]
    assert events.names() == ["Newchannel"]
    assert transport.sent("QueueStatus")[0]["Queue"] == "sales"


async def test_action_list_error_raises_action_error() -> None:
    def refused(transport: ScriptedTransport, action: Message) -> None:
        transport.feed(response(action, "Error", Message="Permission denied"))

    async with logged_in(FakeAsterisk(replies={"QueueStatus": refused})) as (client, _, _):
        with pytest.raises(AmiActionError, match="Permission denied"):
            await client.action_list("QueueStatus")


async def test_command_returns_joined_output_lines() -> None:
    def core_show(transport: ScriptedTransport, action: Message) -> None:
        transport.feed(
            frame(
                [
                    ("Response", "Success"),
                    ("ActionID", action["ActionID"]),
                    ("Message", "Command output follows"),
                    ("Output", "System uptime: 3600"),
                    ("Output", "Last reload: 60"),
                ]
            )
        )

    async with logged_in(FakeAsterisk(replies={"Command": core_show})) as (client, transport, _):
        output = await client.command("core show uptime seconds")
        status = await actions.core_status(client)

    assert output == "System uptime: 3600\nLast reload: 60"
    assert transport.sent("Command")[0]["Command"] == "core show uptime seconds"
    assert status.uptime.total_seconds() == 3600
    assert status.last_reload > status.startup


async def test_close_logs_off_and_fails_pending_actions() -> None:
    transport = ScriptedTransport(FakeAsterisk(replies={"Status": no_answer}))
    client = await AmiClient.connect(transport, AMI_USER, AMI_SECRET, on_event=Recorder().record)
    pending = asyncio.create_task(client.action("Status"))
    await transport.wait_for_action("Status")

    await client.close()

    with pytest.raises(AmiDisconnected):
        await pending
    assert len(transport.sent("Logoff")) == 1
    assert transport.closed
    assert client.close_reason == "closed by client"


async def test_oversized_message_closes_the_connection() -> None:
    async with logged_in(FakeAsterisk(replies={"Status": no_answer})) as (client, transport, _):
        pending = asyncio.create_task(client.action("Status"))
        await transport.wait_for_action("Status")
        transport.feed(b"Event: Huge\r\nData: " + b"x" * (MAX_MESSAGE_BYTES + 1))

        with pytest.raises(AmiDisconnected):
            await pending
        assert client.closed
    assert "exceeds" in (client.close_reason or "")


async def test_events_update_last_event_at_and_count() -> None:
    before = metric("graam_ami_events_total", event="PeerStatus")
    async with logged_in() as (client, transport, events):
        assert client.last_event_at is None
        transport.feed(event("PeerStatus", Peer="PJSIP/100"))
        await events.wait_for(1)

        assert client.last_event_at is not None
    assert metric("graam_ami_events_total", event="PeerStatus") == before + 1


async def test_open_tcp_speaks_ami_over_a_loopback_socket() -> None:
    async def asterisk(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(GREETING)
        decoder = FrameDecoder()
        while data := await reader.read(4096):
            for action in decoder.feed(data):
                if action["Action"] == "Logoff":
                    writer.write(response(action, "Goodbye"))
                    writer.close()
                    return
                writer.write(response(action, Message=f"{action['Action']} done", Ping="Pong"))

    server = await asyncio.start_server(asterisk, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        transport = await open_tcp("127.0.0.1", port, 2.0)
        client = await AmiClient.connect(
            transport, AMI_USER, AMI_SECRET, on_event=Recorder().record
        )
        pong = await client.action("Ping")
        await client.close()

    assert client.greeting == "Asterisk Call Manager/11.0.0"
    assert pong["Ping"] == "Pong"
    assert client.close_reason == "closed by client"


async def test_a_failing_cli_command_still_returns_its_output() -> None:
    def missing(transport: ScriptedTransport, action: Message) -> None:
        transport.feed(
            frame(
                [
                    ("Response", "Error"),
                    ("ActionID", action["ActionID"]),
                    ("Message", "Command output follows"),
                    ("Output", "There is no existence of 't9-x' context"),
                ]
            )
        )

    async with logged_in(FakeAsterisk(replies={"Command": missing})) as (client, _, _):
        assert await client.command("dialplan show t9-x") == (
            "There is no existence of 't9-x' context"
        )
