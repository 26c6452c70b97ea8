"""agents' state moves in one statement: agent_state_enter(), _complete(), _apply()

Revision ID: 0012_agent_state_enter
Revises: 0011_stats_rollup
Create Date: 2026-12-03

A move of an agent's state timeline (``graam_pbx/agents/states.py``) was four statements from
the control plane (the agent's live session, the per-agent lock, its open interval, then
close-and-open): at a busy call centre's rate of queue events, most of the control plane's
time. ``agent_state_enter()`` does the same in one call. In a VOLATILE PL/pgSQL function every
statement takes a new snapshot (READ COMMITTED), so the open interval is read after the lock
is held, as before: two moves of one agent never interleave. ``agent_state_complete()`` is
the move at the end of a queue call: to ``wrap-up`` when the queue has a wrap-up time (its
seconds returned, for the timer that ends it), else to the agent's base state.
``agent_state_apply()`` makes a list of moves in its order (the queue events that arrived
together) and returns each one's result: a batch of events costs one statement.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0012_agent_state_enter"
down_revision: str | None = "0011_stats_rollup"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FUNCTION = """
CREATE FUNCTION agent_state_enter(
    p_tenant bigint, p_agent bigint, p_state text, p_code text, p_only_from text[],
    p_session text
) RETURNS boolean LANGUAGE plpgsql VOLATILE AS $$
-- p_session: 'any' (move whatever the agent's session), 'live' (only an agent with a live
-- session of this tenant), 'base' (the same, to its base state: paused with its reason,
-- else available; p_state and p_code are then ignored).
DECLARE
    v_state text := p_state;
    v_code text := CASE WHEN p_state = 'paused' THEN p_code END;
    v_paused boolean;
    v_reason text;
    v_open_id bigint;
    v_open_state text;
    v_open_code text;
BEGIN
    IF p_session <> 'any' THEN
        SELECT paused, pause_reason INTO v_paused, v_reason FROM agent_sessions
        WHERE tenant_id = p_tenant AND user_id = p_agent AND ended_at IS NULL
        LIMIT 1;
        IF NOT FOUND THEN
            RETURN false;
        END IF;
        IF p_session = 'base' THEN
            v_state := CASE WHEN v_paused THEN 'paused' ELSE 'available' END;
            v_code := CASE WHEN v_paused THEN v_reason END;
        END IF;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtextextended('graam-agent-state', p_agent));
    SELECT id, state, pause_reason_code INTO v_open_id, v_open_state, v_open_code
    FROM agent_state_intervals WHERE agent_id = p_agent AND ended_at IS NULL;
    IF NOT FOUND THEN
        IF v_state = 'logged-out' THEN
            RETURN false;  -- nothing to close: a timeline starts at a login
        END IF;
    ELSE
        IF p_only_from IS NOT NULL AND NOT (v_open_state = ANY (p_only_from)) THEN
            RETURN false;
        END IF;
        IF v_open_state = v_state AND v_open_code IS NOT DISTINCT FROM v_code THEN
            RETURN false;
        END IF;
    END IF;
    -- Close and open in one statement: the new interval starts exactly when the old one
    -- ends (never before it started, whatever the clocks of earlier transactions said).
    WITH closed AS (
        UPDATE agent_state_intervals SET ended_at = greatest(clock_timestamp(), started_at)
        WHERE id = v_open_id RETURNING ended_at
    )
    INSERT INTO agent_state_intervals (tenant_id, agent_id, state, pause_reason_code, started_at)
    VALUES (p_tenant, p_agent, v_state, v_code,
            coalesce((SELECT ended_at FROM closed), clock_timestamp()));
    RETURN true;
END
$$
"""


COMPLETE = """
CREATE FUNCTION agent_state_complete(p_tenant bigint, p_queue bigint, p_agent bigint)
RETURNS integer LANGUAGE plpgsql VOLATILE AS $$
-- An agent's queue call ended: the seconds of the wrap-up it entered, else 0 (back to its
-- base state, or not moved: not on that call any more, or not logged in).
DECLARE
    v_wrapup integer;
BEGIN
    SELECT wrapup_time INTO v_wrapup FROM queues WHERE id = p_queue AND tenant_id = p_tenant;
    IF coalesce(v_wrapup, 0) <= 0 THEN
        PERFORM agent_state_enter(p_tenant, p_agent, 'available', NULL, ARRAY['on-call'], 'base');
        RETURN 0;
    END IF;
    IF agent_state_enter(p_tenant, p_agent, 'wrap-up', NULL, ARRAY['on-call'], 'live') THEN
        RETURN v_wrapup;
    END IF;
    RETURN 0;
END
$$
"""


APPLY = """
CREATE FUNCTION agent_state_apply(p_moves jsonb) RETURNS integer[] LANGUAGE plpgsql VOLATILE
AS $$
-- Each move: {"kind": "any"|"live"|"base"|"complete", "tenant", "agent", "state", "code",
-- "only_from": [states] or null, "queue" (complete)}. Its result: agent_state_complete's
-- seconds for a complete, else 1 (moved) or 0.
DECLARE
    v_move jsonb;
    v_results integer[] := '{}';
BEGIN
    FOR v_move IN
        SELECT e FROM jsonb_array_elements(p_moves) WITH ORDINALITY AS t (e, n) ORDER BY n
    LOOP
        IF v_move ->> 'kind' = 'complete' THEN
            v_results := v_results || agent_state_complete(
                (v_move ->> 'tenant')::bigint, (v_move ->> 'queue')::bigint,
                (v_move ->> 'agent')::bigint);
        ELSE
            v_results := v_results || CASE WHEN agent_state_enter(
                (v_move ->> 'tenant')::bigint, (v_move ->> 'agent')::bigint,
                v_move ->> 'state', v_move ->> 'code',
                CASE WHEN jsonb_typeof(v_move -> 'only_from') = 'array'
                     THEN ARRAY(SELECT jsonb_array_elements_text(v_move -> 'only_from')) END,
                v_move ->> 'kind') THEN 1 ELSE 0 END;
        END IF;
    END LOOP;
    RETURN v_results;
END
$$
"""


def upgrade() -> None:
    op.execute(FUNCTION)
    op.execute(COMPLETE)
    op.execute(APPLY)


def downgrade() -> None:
    op.execute("DROP FUNCTION agent_state_apply(jsonb)")
    op.execute("DROP FUNCTION agent_state_complete(bigint, bigint, bigint)")
    op.execute("DROP FUNCTION agent_state_enter(bigint, bigint, text, text, text[], text)")
