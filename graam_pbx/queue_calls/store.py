"""Writing finished queue calls: idempotent on the row's key, whatever the source."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from graam_pbx.queue_calls.tracker import QueueCallRow

# Queue, agent and tenant are checked in the statement itself: a row naming a queue or a user
# since deleted (or another tenant's) is still written, without the reference; a tenant since
# deleted has nothing left to report on. The answering device is the one of that SIP username
# (live), else the one the agent was logged in from when it answered (queue_log names no
# device). Wrap-up: Asterisk keeps the agent from the queue's next call for its wrapuptime
# after every answered call, so an answered row gets the queue's wrap-up time.
_INSERT = text(
    """
    INSERT INTO queue_calls (
        tenant_id, queue_id, queue_name, entry, linkedid, caller_uniqueid, caller_number, did,
        entered_at, position_at_entry, answered_at, agent_id, device_id, ended_at, wait_seconds,
        talk_seconds, hold_seconds, wrapup_seconds, ring_no_answer, outcome,
        abandon_position, exit_key, source
    )
    SELECT
        :tenant_id,
        (SELECT id FROM queues WHERE id = :queue_id AND tenant_id = :tenant_id),
        :queue_name, :entry, :linkedid, :caller_uniqueid, :caller_number, :did,
        :entered_at, :position_at_entry, :answered_at,
        (SELECT id FROM users WHERE id = :agent_id AND tenant_id = :tenant_id),
        CASE WHEN CAST(:answered_at AS timestamptz) IS NOT NULL THEN COALESCE(
            (SELECT id FROM agent_devices
             WHERE sip_username = :device AND tenant_id = :tenant_id),
            (SELECT device_id FROM agent_sessions
             WHERE tenant_id = :tenant_id AND user_id = :agent_id
               AND started_at <= :answered_at
               AND (ended_at IS NULL OR ended_at >= :answered_at)
             ORDER BY started_at DESC LIMIT 1)
        ) END,
        :ended_at, :wait_seconds, :talk_seconds, :hold_seconds,
        CASE WHEN CAST(:answered_at AS timestamptz) IS NOT NULL THEN COALESCE(
            (SELECT CAST(wrapup_time AS numeric) FROM queues
             WHERE id = :queue_id AND tenant_id = :tenant_id),
            CAST(:wrapup_seconds AS numeric)
        ) ELSE CAST(:wrapup_seconds AS numeric) END,
        :ring_no_answer, :outcome, :abandon_position, :exit_key, :source
    WHERE EXISTS (SELECT 1 FROM tenants WHERE id = :tenant_id)
    ON CONFLICT (tenant_id, caller_uniqueid, queue_name, entry) DO NOTHING
    """
)


def _params(row: QueueCallRow, source: str) -> dict[str, Any]:
    return {
        "tenant_id": row.tenant_id,
        "queue_id": row.queue_id,
        "queue_name": row.queue_name,
        "entry": row.entry,
        "linkedid": row.linkedid,
        "caller_uniqueid": row.caller_uniqueid,
        "caller_number": row.caller_number,
        "did": row.did,
        "entered_at": row.entered_at,
        "position_at_entry": row.position_at_entry,
        "answered_at": row.answered_at,
        "agent_id": row.agent_id,
        "device": row.device,
        "ended_at": row.ended_at or row.entered_at,
        "wait_seconds": row.wait_seconds,
        "talk_seconds": row.talk_seconds,
        "hold_seconds": row.hold_seconds,
        "wrapup_seconds": row.wrapup_seconds,
        "ring_no_answer": row.ring_no_answer,
        "outcome": str(row.outcome),
        "abandon_position": row.abandon_position,
        "exit_key": row.exit_key,
        "source": source,
    }


async def write_rows(session: AsyncSession, rows: Sequence[QueueCallRow], source: str) -> None:
    """Insert finished rows; one already there (same key) is left as it is."""
    if rows:
        await session.execute(_INSERT, [_params(row, source) for row in rows])
