"""How a destination is stored: a (<prefix>_type, <prefix>_id) column pair, checked by type."""

from __future__ import annotations

DESTINATION_TYPES = (
    "agent",
    "extension",
    "queue",
    "ivr",
    "voicemail",
    "announcement",
    "hangup",
    "external",
    "follow_me",
)

# The CHECK constraint of one column pair: DESTINATION_CHECK.format("<prefix>").
DESTINATION_CHECK = "{0}_type in ('" + "', '".join(DESTINATION_TYPES) + "')"
