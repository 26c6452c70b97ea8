"""How a delivery is signed, and how a receiver checks it (docs/integrations.md).

The signature is HMAC-SHA256, keyed with the endpoint's secret, of the timestamp, a dot and
the raw body: ``Graam-Signature: v1=<hex>`` beside ``Graam-Timestamp: <unix seconds>``. A
receiver recomputes it over the bytes it received, compares in constant time, and refuses a
timestamp too far from its clock (a replay).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

SIGNATURE_HEADER = "Graam-Signature"
TIMESTAMP_HEADER = "Graam-Timestamp"
EVENT_ID_HEADER = "Graam-Event-Id"
EVENT_TYPE_HEADER = "Graam-Event-Type"
DELIVERY_ID_HEADER = "Graam-Delivery-Id"
SCHEME = "v1"
SECRET_PREFIX = "whsec_"  # noqa: S105 - a prefix, not a secret
TOLERANCE_SECONDS = 300  # what receivers are advised to accept between the clocks


def new_secret() -> str:
    """A new signing secret: 32 random bytes."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The ``Graam-Signature`` value of ``body`` sent at ``timestamp``."""
    message = str(timestamp).encode() + b"." + body
    digest = hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
    return f"{SCHEME}={digest}"


def verify(
    secret: str,
    timestamp: str,
    body: bytes,
    signed: str,
    *,
    now: float,
    tolerance: int = TOLERANCE_SECONDS,
) -> bool:
    """What a receiver does: the signature matches and the timestamp is recent."""
    if not timestamp.isdigit() or abs(now - int(timestamp)) > tolerance:
        return False
    return hmac.compare_digest(signature(secret, int(timestamp), body), signed)
