"""Proof that a FastAGI request comes from Asterisk, for the channel and phone it names.

Anything that reaches the FastAGI port can send an AGI environment and answer our ``GET
VARIABLE`` as it likes: nothing it says is evidence. Two things are:

- a **key** in the request's URL (``agi://host:port/login?key=…``) that only the generated
  dialplan holds: one per tenant, an HMAC of the tenant's id under a key derived from the
  control plane's signing key, so that one tenant's key says nothing of another's. It is
  compared in constant time and never logged;
- the **channel**, asked of Asterisk over AMI (``Status``): it must exist under that very
  name, be running AGI now, and carry the tenant, device and agent variables that its PJSIP
  endpoint sets, on that device's own endpoint.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from graam_pbx.ami.actions import ListActionSender
from graam_pbx.ami.errors import AmiActionError

# Domain separation: the signing key also signs access tokens; this key only AGI URLs.
_KEY_CONTEXT = b"graam-pbx fastagi url key v1"
TOKEN_HEX_CHARS = 32  # 128 bits
KEY_PARAMETER = "key"
# What the endpoint of each device sets on its channels (pjsip_tenant.conf.j2), and its name.
CHANNEL_VARIABLES = ("GRAAM_TENANT", "GRAAM_DEVICE", "GRAAM_AGENT", "CHANNEL(endpoint)")


def agi_key(signing_key: str) -> bytes:
    """The key every tenant's AGI key is derived from (the signing key is never used raw)."""
    return hmac.new(signing_key.encode(), _KEY_CONTEXT, hashlib.sha256).digest()


def tenant_token(key: bytes, tenant_id: int) -> str:
    """The tenant's AGI key, as the generated dialplan writes it in the URL (hex)."""
    digest = hmac.new(key, f"tenant:{int(tenant_id)}".encode(), hashlib.sha256).hexdigest()
    return digest[:TOKEN_HEX_CHARS]


def request_token(agi_request: str) -> str | None:
    """The key an AGI request URL carries, if it carries exactly one."""
    values = parse_qs(urlsplit(agi_request).query).get(KEY_PARAMETER, [])
    return values[0] if len(values) == 1 else None


def token_matches(key: bytes, tenant_id: int, presented: str | None) -> bool:
    """Whether ``presented`` is the tenant's AGI key; constant time over its bytes."""
    if presented is None:
        return False
    expected = tenant_token(key, tenant_id).encode()
    return hmac.compare_digest(expected, presented.encode("utf-8", "replace"))


@dataclass(frozen=True, slots=True)
class ChannelFacts:
    """What Asterisk says of a channel: its name, what it runs, its variables."""

    channel: str
    application: str
    variables: dict[str, str]


async def channel_facts(ami: ListActionSender, channel: str) -> ChannelFacts | None:
    """Asterisk's own view of ``channel`` (``Status``), or None when it has no such channel.

    AMI failures other than "no such channel" propagate: the caller cannot verify then.
    """
    if not channel or any(c in channel for c in "\r\n,"):
        return None
    try:
        events = await ami.action_list(
            "Status", {"Channel": channel, "Variables": ",".join(CHANNEL_VARIABLES)}
        )
    except AmiActionError as err:
        if "no such channel" in err.message.lower():
            return None
        raise
    # Asterisk also finds a channel by its unique id: only the very name counts here.
    for event in events:
        if event.name == "Status" and event.get("Channel") == channel:
            variables: dict[str, str] = {}
            for line in event.getall("Variable"):
                name, _, value = line.partition("=")
                variables[name] = value
            return ChannelFacts(channel, event.get("Application") or "", variables)
    return None
