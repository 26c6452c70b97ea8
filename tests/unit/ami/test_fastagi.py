"""The FastAGI server's side of the protocol, against a scripted Asterisk on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from graam_pbx.ami.fastagi import AgiHangup, AgiSession, FastAgiServer, quote_argument

ENVIRONMENT = (
    b"agi_network: yes\n"
    b"agi_network_script: login\n"
    b"agi_request: agi://127.0.0.1:4573/login\n"
    b"agi_channel: PJSIP/acme-ana-00000001\n"
    b"agi_arg_1: 42\n"
    b"\n"
)

Handler = Callable[[AgiSession], Awaitable[None]]


async def serve(handler: Handler) -> AsyncIterator[int]:
    server = FastAgiServer("127.0.0.1", 0, handler, command_timeout=2)
    await server.start()
    try:
        yield server.port
    finally:
        await server.stop()


async def converse(port: int, answers: list[bytes], env: bytes = ENVIRONMENT) -> list[str]:
    """Play Asterisk: send the environment, answer each command in turn, return the commands."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(env)
    commands = []
    try:
        async with asyncio.timeout(5):
            for answer in answers:
                commands.append((await reader.readline()).decode().rstrip("\n"))
                writer.write(answer)
            rest = await reader.read()  # the server closes when its handler is done
    finally:
        writer.close()
    assert rest == b""
    return commands


async def test_a_conversation_reads_variables_and_plays_prompts() -> None:
    seen: dict[str, object] = {}

    async def handler(agi: AgiSession) -> None:
        seen["script"] = agi.script
        seen["arguments"] = agi.arguments
        seen["agent"] = await agi.get_variable("GRAAM_AGENT")
        seen["missing"] = await agi.get_variable("NOPE")
        seen["ids"] = await agi.get_variable_expression("${GRAAM_TENANT},${GRAAM_AGENT}")
        await agi.stream_file("agent-loginok")

    async for port in serve(handler):
        commands = await converse(
            port,
            [
                b"200 result=1 (17)\n",
                b"200 result=0\n",
                b"200 result=1 (3,17)\n",
                b"200 result=0 endpos=12000\n",
            ],
        )
    assert commands == [
        "GET VARIABLE GRAAM_AGENT",
        "GET VARIABLE NOPE",
        "GET FULL VARIABLE ${GRAAM_TENANT},${GRAAM_AGENT}",
        'STREAM FILE agent-loginok ""',
    ]
    assert seen == {
        "script": "login",
        "arguments": ["42"],
        "agent": "17",
        "missing": None,
        "ids": "3,17",
    }


async def test_a_hangup_ends_the_conversation_and_nothing_more_is_sent() -> None:
    outcome: list[str] = []

    async def handler(agi: AgiSession) -> None:
        try:
            await agi.stream_file("agent-loginok")
        except AgiHangup:
            outcome.append("hangup")
            raise
        outcome.append("played")  # pragma: no cover - the test fails if it gets here

    async for port in serve(handler):
        # Asterisk's notice, then the dead channel's answer to the command in flight.
        commands = await converse(
            port, [b"HANGUP\n511 Command Not Permitted on a dead channel or intercept routine\n"]
        )
    assert commands == ['STREAM FILE agent-loginok ""']
    assert outcome == ["hangup"]


async def test_a_usage_answer_of_several_lines_is_one_failure() -> None:
    failures: list[str] = []

    async def handler(agi: AgiSession) -> None:
        try:
            await agi.command("STREAM FILE")
        except Exception as err:
            failures.append(str(err))
        await agi.set_variable("GRAAM_AGENT_RESULT", "failed")

    async for port in serve(handler):
        commands = await converse(
            port,
            [
                b"520-Invalid command syntax.  Proper usage follows:\n"
                b"Usage: STREAM FILE <filename> <escape digits>\n"
                b"520 End of proper usage.\n",
                b"200 result=1\n",
            ],
        )
    assert commands == ["STREAM FILE", 'SET VARIABLE GRAAM_AGENT_RESULT "failed"']
    assert failures and "520" in failures[0]


async def test_an_endless_environment_is_refused_before_any_handler_runs() -> None:
    called: list[bool] = []

    async def handler(agi: AgiSession) -> None:
        called.append(True)  # pragma: no cover

    async for port in serve(handler):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"agi_network: yes\n" + b"agi_x: y\n" * 300)
        async with asyncio.timeout(8):
            assert await reader.read() == b""
        writer.close()
    assert called == []


@pytest.mark.parametrize("value", ['a"b', "a\\b", "a\nSTREAM FILE x", "a\x00"])
def test_an_argument_cannot_end_itself_or_the_command(value: str) -> None:
    with pytest.raises(ValueError):
        quote_argument(value)


async def test_a_taken_port_does_not_stop_the_server_from_starting() -> None:
    async def handler(agi: AgiSession) -> None:
        return None

    first = FastAgiServer("127.0.0.1", 0, handler)
    await first.start()
    second = FastAgiServer("127.0.0.1", first.port, handler)
    try:
        await second.start()  # logs, retries in the background
        assert not second.listening.is_set()
    finally:
        await second.stop()
        await first.stop()
