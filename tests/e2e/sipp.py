"""sipp phones and carriers for the call-flow tests: one sipp process per role, each awaited.

A ``Sipp`` runs one scenario of ``scenarios/`` for one call (or ``calls`` at ``rate`` calls
per second: then sipp's statistics are kept too) on its own address and ports;
``wait`` returns how it ended: sipp's exit code, its log of unexpected messages and every SIP
message it sent or received. A UAC (``remote`` given) places one call (``-m 1``) and exits 0
when the scenario ran as written. A UAS runs without ``-m``: Asterisk qualifies registered
phones with OPTIONS, each a new call to sipp that ``-aa`` answers and that ``-m`` would count
as the call; its scenario stops sipp itself once the real call is over (exit 97).
"""

from __future__ import annotations

import asyncio
import itertools
import re
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from graam_pbx.sandbox.processes import end_process

SCENARIOS = Path(__file__).parent / "scenarios"
UAC_DONE = 0  # sipp's "all calls succeeded"
UAS_DONE = 97  # sipp's "stopped by an internal command": the scenario's final stop_now
_serial = itertools.count(1)


# Ports handed out lately, by (address, port): the process they were meant for may not have
# bound them yet, and the kernel would offer them again to the next caller.
_HANDED_OUT: dict[tuple[str, int], float] = {}
HANDED_OUT_SECONDS = 120.0
# sipp binds its audio RTP at -mp, RTCP at -mp + 1, and video at the two ports after.
MEDIA_SPAN = 4


def _bindable(ip: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind((ip, port))
        except OSError:
            return False
    return True


def free_udp_port(ip: str, *, pair: bool = False) -> int:
    """A UDP port free on ``ip`` now and not handed out in the last ``HANDED_OUT_SECONDS``;
    with ``pair``, an even one whose next three (RTCP, then sipp's video pair) are too. Many
    sipp processes start at once: each must get ports no other was given."""
    now = time.monotonic()
    for key, at in list(_HANDED_OUT.items()):
        if now - at > HANDED_OUT_SECONDS:
            del _HANDED_OUT[key]
    span = MEDIA_SPAN if pair else 1
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind((ip, 0))
            port = int(probe.getsockname()[1])
        if pair and (port % 2 or port + span > 65536):
            continue
        ports = range(port, port + span)
        if any((ip, each) in _HANDED_OUT for each in ports):
            continue
        if not all(_bindable(ip, each) for each in ports[1:]):
            continue
        for each in ports:
            _HANDED_OUT[(ip, each)] = now
        return port


_SCREEN_ROW = re.compile(r"^\s+(\S+)\s+(-+>|<-+)\s+\d+\s+(\d+)", re.MULTILINE)
_RECEIVED = re.compile(r"message received \[\d+\] bytes ?:\n\n(.*?)(?=\n-{20,} |\Z)", re.DOTALL)


@dataclass
class SippResult:
    """How one sipp run ended."""

    name: str
    returncode: int
    expected: int
    errors: str  # unexpected messages and failures (-trace_err)
    messages: str  # every SIP message sent and received (-trace_msg)
    output: str  # sipp's console: warnings, fatal errors, final statistics
    stats: dict[str, str] = field(default_factory=dict)  # the last row of -trace_stat
    screen: str = ""  # the final screen (-trace_screen): each message's count and retransmissions

    def count(self, statistic: str) -> int:
        """A cumulative counter of sipp's statistics, e.g. ``FailedCall``."""
        return int(self.stats[f"{statistic}(C)"])

    def retransmissions(self) -> dict[str, int]:
        """Retransmissions by message of the scenario, sent or received, from the screen."""
        return {
            f"{match.group(1)} {'sent' if match.group(2)[0] == '-' else 'received'}": int(
                match.group(3)
            )
            for match in _SCREEN_ROW.finditer(self.screen)
        }

    @property
    def ok(self) -> bool:
        return self.returncode == self.expected

    def received(self, method: str) -> list[str]:
        """The SIP requests of ``method`` this sipp received, each once (retransmissions are
        byte-identical)."""
        texts = (match.group(1).strip() for match in _RECEIVED.finditer(self.messages))
        return list(dict.fromkeys(text for text in texts if text.startswith(f"{method} ")))

    def describe(self) -> str:
        return (
            f"sipp {self.name} exited {self.returncode} (expected {self.expected})\n"
            f"--- errors\n{self.errors[-4000:]}\n--- output\n{self.output[-2500:]}\n"
            f"--- messages\n{self.messages[-8000:]}"
        )


def header(message: str, name: str) -> str | None:
    """The value of the first ``name`` header of a SIP message."""
    match = re.search(rf"^{name}\s*:\s*(.*?)\r?$", message, re.MULTILINE | re.IGNORECASE)
    return match.group(1) if match else None


class Sipp:
    """One sipp process: a UAC when ``remote`` is given, else a UAS."""

    def __init__(
        self,
        scenario: str,
        *,
        workdir: Path,
        ip: str,
        remote: str | None = None,
        port: int | None = None,
        service: str | None = None,
        auth: tuple[str, str] | None = None,
        keys: Mapping[str, str] | None = None,
        timeout: float = 45,
        calls: int = 1,
        rate: float | None = None,
    ) -> None:
        self.scenario = SCENARIOS / scenario
        if not self.scenario.exists():
            raise FileNotFoundError(self.scenario)
        self.ip = ip
        self.port = port or free_udp_port(ip)
        self.media_port = free_udp_port(ip, pair=True)
        self.name = f"{self.scenario.stem}-{next(_serial)}"
        self.dir = workdir / self.name
        self.timeout = timeout
        self.expected = UAC_DONE if remote else UAS_DONE
        self._argv = [
            "sipp",
            *([remote, "-m", str(calls)] if remote else []),
            *(["-r", f"{rate:g}"] if rate else []),
            "-sf",
            str(self.scenario),
            "-i",
            ip,
            "-p",
            str(self.port),
            "-mi",
            ip,
            "-mp",
            str(self.media_port),
            "-aa",
            "-nostdin",
            # sipp's own deadline: a scenario waiting for what never comes fails (exit 255).
            "-timeout",
            f"{int(timeout)}s",
            "-timeout_error",
            "-trace_err",
            "-error_file",
            str(self.dir / "errors.log"),
            "-trace_msg",
            "-message_file",
            str(self.dir / "messages.log"),
            *(
                [
                    "-trace_stat",
                    "-stf",
                    str(self.dir / "stats.csv"),
                    "-trace_screen",
                    "-screen_file",
                    str(self.dir / "screen.log"),
                ]
                if calls > 1
                else []
            ),
            *(["-s", service] if service else []),
            *(["-au", auth[0], "-ap", auth[1]] if auth else []),
            *itertools.chain.from_iterable(("-key", k, v) for k, v in (keys or {}).items()),
        ]
        self._process: asyncio.subprocess.Process | None = None

    async def start(self) -> Sipp:
        """Start sipp; a UAS listens once this returns (its socket is bound at startup)."""
        self.dir.mkdir(parents=True)
        with (self.dir / "output.log").open("wb") as output:
            self._process = await asyncio.create_subprocess_exec(
                *self._argv,
                cwd=self.dir,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=output,
                stderr=asyncio.subprocess.STDOUT,
            )
        return self

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.returncode is None

    async def wait(self) -> SippResult:
        """Wait for sipp to end by itself (its own ``-timeout`` bounds the wait)."""
        assert self._process is not None, "start() first"
        async with asyncio.timeout(self.timeout + 15):
            code = await self._process.wait()
        return self._result(code)

    async def run(self) -> SippResult:
        await self.start()
        return await self.wait()

    async def stop(self) -> SippResult:
        """End sipp now (a phone that must not have been called); what it saw until then."""
        assert self._process is not None, "start() first"
        await end_process(self._process, grace=10)
        assert self._process.returncode is not None
        return self._result(self._process.returncode)

    def _result(self, code: int) -> SippResult:
        return SippResult(
            name=self.name,
            returncode=code,
            expected=self.expected,
            errors=_read(self.dir / "errors.log"),
            messages=_read(self.dir / "messages.log"),
            output=_read(self.dir / "output.log"),
            stats=_last_stats(self.dir / "stats.csv"),
            screen=_read(self.dir / "screen.log"),
        )


@dataclass
class SippPool:
    """The sipp processes of one test, all stopped when it ends."""

    workdir: Path
    asterisk: str  # host:port of Asterisk's SIP transport
    started: list[Sipp] = field(default_factory=list)

    def uac(
        self,
        scenario: str,
        *,
        ip: str,
        service: str,
        port: int | None = None,
        auth: tuple[str, str] | None = None,
        keys: Mapping[str, str] | None = None,
        calls: int = 1,
        rate: float | None = None,
        timeout: float = 45,
    ) -> Sipp:
        """A caller (or a registering phone) sending to Asterisk; ``calls`` at ``rate``."""
        return self._track(
            Sipp(
                scenario,
                workdir=self.workdir,
                ip=ip,
                remote=self.asterisk,
                port=port,
                service=service,
                auth=auth,
                keys=keys,
                calls=calls,
                rate=rate,
                timeout=timeout,
            )
        )

    def uas(
        self,
        scenario: str,
        *,
        ip: str,
        port: int | None = None,
        keys: Mapping[str, str] | None = None,
    ) -> Sipp:
        """A phone or a carrier waiting for Asterisk's call."""
        return self._track(Sipp(scenario, workdir=self.workdir, ip=ip, port=port, keys=keys))

    def _track(self, sipp: Sipp) -> Sipp:
        self.started.append(sipp)
        return sipp

    async def close(self) -> None:
        for sipp in self.started:
            if sipp.running:
                await sipp.stop()


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except FileNotFoundError:
        return ""


def _last_stats(path: Path) -> dict[str, str]:
    """The last row of sipp's statistics file (``;``-separated, a header row first)."""
    rows = [line.rstrip(";").split(";") for line in _read(path).splitlines() if line.strip()]
    return dict(zip(rows[0], rows[-1], strict=False)) if len(rows) > 1 else {}


def routed_phone_call(directory: Path) -> Path:
    """uac_call.xml, its ACK and BYE following the Record-Route of the 200 (as a phone does):
    behind the edge, the node's Contact is not reachable without the edge's route."""
    text_ = (SCENARIOS / "uac_call.xml").read_text()
    head, answered = text_.split('<recv response="200" rrs="true"/>', 1)
    answered, count = re.subn(r"(\n(\s*)\[last_To:\]\n)", r"\1\2[routes]\n", answered)
    assert count == 2, "uac_call.xml changed: its ACK and BYE each have one [last_To:]"
    path = directory / "edge_phone_call.xml"
    path.write_text(head + '<recv response="200" rrs="true"/>' + answered)
    return path
