"""Every kind of destination is registered by its domain, and every holder of one too.

The registry is filled as the domains' services are imported; the application imports them
all, so once it is loaded nothing may be missing: a missing target would answer 500 instead
of 422, and a missing holder would let an object still routed to be deleted.
"""

from __future__ import annotations

import re

import graam_pbx.app  # noqa: F401 - loads every domain, as the running application does
from graam_pbx.db import Base
from graam_pbx.destinations import service as destinations
from graam_pbx.destinations.models import DESTINATION_CHECK, DESTINATION_TYPES
from graam_pbx.destinations.schemas import DestinationType

_PAIR = re.compile(r"(\w+)_type in \(([^)]*)\)")


def _destination_columns() -> set[tuple[str, str]]:
    """(table, prefix) of every column pair whose CHECK constraint is a destination's: all
    the types (DESTINATION_CHECK), or some of them (a user's forwarding rules)."""
    found: set[tuple[str, str]] = set()
    for table in Base.metadata.tables.values():
        for constraint in table.constraints:
            text = str(getattr(constraint, "sqltext", ""))
            for prefix, listed in _PAIR.findall(text):
                types = {kind.strip().strip("'") for kind in listed.split(",")}
                if DESTINATION_CHECK.format(prefix) in text or types <= set(DESTINATION_TYPES):
                    found.add((table.name, prefix))
    return found


def test_every_destination_type_but_hangup_has_a_target() -> None:
    expected = {kind for kind in DestinationType if kind is not DestinationType.HANGUP}
    assert destinations.registered_targets() == expected


def test_every_destination_column_pair_is_a_registered_holder() -> None:
    columns = _destination_columns()
    assert ("inbound_routes", "open_dest") in columns  # the detection itself works
    assert ("user_forwarding", "dnd_dest") in columns
    assert destinations.registered_holders() == columns
