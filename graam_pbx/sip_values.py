"""What a SIP value of the generated configuration may be: one definition for both sides.

The API's schemas validate with these functions and the renderer's filters check with the
same ones, so that whatever the API accepts renders, and whatever cannot render is refused
with a 422 naming the field. Each function returns the value as it is stored and rendered
(normalised), or raises ``ValueError`` saying what is allowed.
"""

from __future__ import annotations

import ipaddress
import re

# The user part of a carrier's SIP account (``+33100``, ``.user``, ``acme-out``): nothing a
# PJSIP config line or a SIP URI would read as a separator, quote or comment.
SIP_USER = re.compile(r"[A-Za-z0-9._+-]{1,80}")
SIP_USER_RULE = "1 to 80 of A-Z, a-z, 0-9, '.', '_', '+', '-'"

_HOST_ALPHABET = re.compile(r"[a-z0-9.:-]{1,253}")
_HOST_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
HOST_RULE = "a host name, IPv4 or IPv6 address: a-z, 0-9, '.', '-' (':' in IPv6)"

# A SIP header the carrier sends, matched by Asterisk's identify ``match_header``: a token
# for the name, and a value without spaces, quotes, ';' or ',' (a config line cuts there).
_HEADER_NAME = re.compile(r"[A-Za-z][A-Za-z0-9-]{0,63}")
_HEADER_VALUE = re.compile(r"[A-Za-z0-9._~+/=@:!*-]{1,128}")
MATCH_HEADER_RULE = (
    "'Name: value': a name of A-Z, a-z, 0-9, '-' (up to 64) and a value of 1 to 128 of "
    "A-Z, a-z, 0-9 and '._~+/=@:!*-'"
)
# Headers Asterisk itself reads to route or authenticate: matching on them proves nothing.
_RESERVED_HEADERS = frozenset(
    {"via", "to", "call-id", "cseq", "contact", "authorization", "proxy-authorization"}
)

# The caller name a carrier receives: letters and digits of any script, spaces and
# ".'&-_", up to 40 characters (what carriers' CNAM takes), nothing the dialplan parses
# ('$', '[', ',', '(', ';', '"', '\').
_CALLER_NAME = re.compile(r"[^\W_][\w .'&-]{0,39}")
CALLER_NAME_RULE = '1 to 40 letters, digits, spaces and ".\'&-_", starting with a letter or digit'


def sip_user(value: str) -> str:
    """A trunk's SIP username or inbound username."""
    if not SIP_USER.fullmatch(value):
        raise ValueError(SIP_USER_RULE)
    return value


def host(value: str) -> str:
    """A trunk's host: a lower-case host name or a normalised IPv4/IPv6 address."""
    text = value.lower()
    if not _HOST_ALPHABET.fullmatch(text):
        raise ValueError(HOST_RULE)
    if ":" in text or text.replace(".", "").isdigit():
        try:
            return str(ipaddress.ip_address(text))
        except ValueError:
            raise ValueError("not a valid IP address") from None
    labels = text.split(".")
    if not all(_HOST_LABEL.fullmatch(label) for label in labels):
        raise ValueError("not a valid host name")
    if labels[-1].isdigit():
        raise ValueError("not a valid host name (its last label is all digits)")
    return text


def is_ip(value: str) -> bool:
    """Whether a (valid) host is an IP address rather than a name."""
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def uri_host(value: str) -> str:
    """A host as it goes into a SIP URI: an IPv6 address in brackets (RFC 3261)."""
    checked = host(value)
    return f"[{checked}]" if ":" in checked else checked


def network(value: str) -> str:
    """An address or network a carrier sends from, as CIDR (``192.0.2.10/32``).

    Always written with its prefix length: Asterisk resolves a ``match`` entry without one
    through DNS (SRV, then A and AAAA) at every reload, even an address, and drops the whole
    identify section when that fails.
    """
    if len(value) > 49 or not re.fullmatch(r"[0-9A-Fa-f.:/]+", value):
        raise ValueError("an IPv4 or IPv6 address or network (CIDR), e.g. 192.0.2.0/24")
    try:
        parsed = ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise ValueError("not a valid IP address or network") from None
    if parsed.prefixlen == 0:
        raise ValueError("a network of every address identifies nobody")
    return str(parsed)  # always with its prefix length, /32 or /128 for one address


def match_header(value: str) -> str:
    """A ``Name: value`` SIP header, normalised to one space after the colon."""
    name, colon, rest = value.partition(":")
    name, rest = name.strip(), rest.strip()
    if not colon or not _HEADER_NAME.fullmatch(name) or not _HEADER_VALUE.fullmatch(rest):
        raise ValueError(MATCH_HEADER_RULE)
    if name.lower() in _RESERVED_HEADERS:
        raise ValueError(f"{name} is a header Asterisk routes by; use one the carrier adds")
    return f"{name}: {rest}"


def caller_name(value: str) -> str:
    """The caller name an outbound call presents to the carrier."""
    if not _CALLER_NAME.fullmatch(value) or value != value.rstrip():
        raise ValueError(CALLER_NAME_RULE + ", not ending with a space")
    return value
