"""The generated dialplan tells the queue-call writer what Queue() alone does not."""

from __future__ import annotations

import re

from graam_pbx.asterisk.render import environment, render_all
from graam_pbx.asterisk.snapshot import Dest, Snapshot
from tests.unit.asterisk.sample import sample_snapshot


def _with_route(open_dest: Dest, closed_dest: Dest | None) -> Snapshot:
    snapshot = sample_snapshot()
    tenant = snapshot.tenants[0]
    route = tenant.inbound[0]._replace(open_dest=open_dest, closed_dest=closed_dest)
    tenants = (tenant._replace(inbound=(route,)), *snapshot.tenants[1:])
    return snapshot._replace(tenants=tenants)


def _extensions(snapshot: Snapshot) -> str:
    return render_all(environment(), snapshot)["tenants/t7/extensions.conf"]


def test_a_queue_number_out_of_hours_records_a_closed_queue_call() -> None:
    text = _extensions(_with_route(Dest("queue", 3), Dest("voicemail", 5)))
    assert (
        "QueueLog(t7-q3,${UNIQUEID},NONE,GRAAMSTATUS,CLOSED|${GRAAM_QUEUE_CALLER}|${GRAAM_DID})"
        in text
    )
    assert "GraamStatus: CLOSED" in text


def test_no_closed_queue_call_when_the_number_goes_to_the_queue_anyway() -> None:
    assert "CLOSED" not in _extensions(_with_route(Dest("queue", 3), None))
    assert "CLOSED" not in _extensions(_with_route(Dest("ivr", 4), Dest("voicemail", 5)))


def test_every_queue_reports_its_status_after_queue() -> None:
    text = _extensions(sample_snapshot())
    queue_part = text[text.index("[t7-queue-3]") :]
    assert queue_part.index("Queue(t7-q3") < queue_part.index("GRAAMSTATUS,${QUEUESTATUS}")
    assert "UserEvent(GraamQueueStatus,GraamQueue: t7-q3,GraamStatus: ${QUEUESTATUS}" in text


def test_the_did_reaches_the_queue_events_and_queue_log() -> None:
    text = _extensions(sample_snapshot())
    inbound = text[text.index("[t7-inbound]") :]
    assert inbound.index("Set(GRAAM_DID=+33142685300)") < inbound.index("(open),Goto(")
    queue_part = text[text.index("[t7-queue-3]") :]
    # Queue(name,options,URL,...): the URL argument is the DID.
    assert re.search(r"Queue\(t7-q3,[^,]*,\$\{GRAAM_DID\},", queue_part)
    assert "GRAAMSTATUS,${QUEUESTATUS}|${GRAAM_QUEUE_CALLER}|${GRAAM_DID})" in queue_part
