"""Failed SIP authentications as Asterisk reports them, counted per source over a window.

Pure logic, no I/O: the worker feeds it AMI security events and a clock.
"""

from __future__ import annotations

import ipaddress
from collections import OrderedDict, deque
from collections.abc import Iterable
from dataclasses import dataclass

from graam_pbx.ami import Message

# Asterisk's security events that say a SIP request failed to prove who it comes from. The
# first request of a REGISTER or INVITE is answered with a challenge (ChallengeSent, not a
# failure); these come after.
FAILURE_EVENTS = frozenset(
    {
        "InvalidAccountID",  # an endpoint Asterisk does not know (user name probing)
        "InvalidPassword",
        "ChallengeResponseFailed",  # a known endpoint, the wrong password
        "FailedACL",  # an endpoint's own ACL refused the source
        "AuthMethodNotAllowed",
        "UnexpectedAddress",
    }
)
# Only SIP: AMI's own failed logins are Asterisk's business (it binds AMI to loopback).
SIP_SERVICE = "PJSIP"
IPV6_PREFIX = 64  # an IPv6 host owns a /64: counting single addresses would be no count at all

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class Failure:
    """One failed authentication: which event, from which source, naming which account."""

    event: str
    address: Address
    source: str  # what is counted and blocked: source_of(address)
    account: str


def remote_address(value: str) -> Address | None:
    """The IP of an AMI security event's ``RemoteAddress`` (``IPV4/UDP/192.0.2.1/5060``)."""
    parts = value.split("/")
    if len(parts) < 4 or parts[0] not in ("IPV4", "IPV6"):
        return None
    # IPv6 addresses hold no "/", but may come bracketed.
    host = "/".join(parts[2:-1]).strip("[]")
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def source_of(address: Address) -> str:
    """The unit counted and blocked: an IPv4 address, or the /64 of an IPv6 address."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, IPV6_PREFIX), strict=False))
    return str(address)


def parse_source(value: str) -> str:
    """The source an operator names (an address, or an IPv6 /64), canonical; ValueError."""
    text = value.strip()
    if "/" in text:
        network = ipaddress.ip_network(text, strict=False)
        if isinstance(network, ipaddress.IPv6Network) and network.prefixlen == IPV6_PREFIX:
            return str(network)
        if network.num_addresses != 1:
            raise ValueError("a single address (or an IPv6 /64), not a network")
        return source_of(network.network_address)
    return source_of(ipaddress.ip_address(text))


def source_network(source: str) -> Network:
    """The network Asterisk denies for ``source`` (/32 for IPv4, the /64 for IPv6)."""
    return ipaddress.ip_network(source, strict=False)


def parse_failure(message: Message) -> Failure | None:
    """The failure an AMI event reports, or None (another event, another service, no address)."""
    event = message.event
    if event is None or event not in FAILURE_EVENTS or message.get("Service") != SIP_SERVICE:
        return None
    address = remote_address(message.get("RemoteAddress") or "")
    if address is None:
        return None
    account = message.get("AccountID") or ""
    return Failure(event=event, address=address, source=source_of(address), account=account)


def allowed(source: str, networks: Iterable[Network]) -> bool:
    """Whether the allow-list covers any of ``source`` (never blocked: a /64 holding a
    carrier's address is not denied either)."""
    network = source_network(source)
    return any(network.version == other.version and network.overlaps(other) for other in networks)


class FailureWindow:
    """How many failures each source had in the last ``window`` seconds.

    Each source keeps at most ``threshold`` timestamps (more never changes the verdict), and
    at most ``max_sources`` sources are followed (the least recently failing is forgotten
    first): an attacker rotating addresses costs bounded memory.
    """

    def __init__(self, threshold: int, window: float, *, max_sources: int = 100_000) -> None:
        if threshold < 1 or window <= 0 or max_sources < 1:
            raise ValueError("threshold, window and max_sources must be positive")
        self.threshold = threshold
        self.window = window
        self.max_sources = max_sources
        self._times: OrderedDict[str, deque[float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._times)

    def add(self, source: str, now: float) -> int:
        """Count one failure of ``source`` at ``now``; its failures within the window."""
        times = self._times.get(source)
        if times is None:
            times = self._times[source] = deque(maxlen=self.threshold)
            while len(self._times) > self.max_sources:
                self._times.popitem(last=False)
        else:
            self._times.move_to_end(source)
        times.append(now)
        horizon = now - self.window
        while times and times[0] <= horizon:
            times.popleft()
        return len(times)

    def reached(self, source: str, now: float) -> bool:
        """Whether ``source`` failed ``threshold`` times within the window ending at ``now``."""
        times = self._times.get(source)
        if not times:
            return False
        horizon = now - self.window
        return len(times) >= self.threshold and times[0] > horizon

    def count(self, source: str, now: float) -> int:
        """Failures of ``source`` within the window ending at ``now`` (capped at threshold)."""
        horizon = now - self.window
        return sum(1 for at in self._times.get(source, ()) if at > horizon)

    def forget(self, source: str) -> None:
        """Start ``source`` from zero (it was blocked, or unblocked)."""
        self._times.pop(source, None)

    def prune(self, now: float) -> None:
        """Drop sources whose failures all left the window."""
        horizon = now - self.window
        stale = [
            source for source, times in self._times.items() if not times or times[-1] <= horizon
        ]
        for source in stale:
            del self._times[source]
