"""the login checks its caller: agent_login() reads the caller's account itself

Revision ID: 0039_login_checks_caller
Revises: 0038_sip_devices_changed
Create Date: 2026-12-08 01:30:00+00:00

A login was two statements: the caller's account, read as for every request (it exists, is
not disabled, and the access token's epoch is still its ``token_epoch``), then
``agent_login()``. The token already says who the caller is, in which tenant and with which
role, signed, and a change of role, password or status moves the epoch; what only the
database knows is whether the account still stands. ``agent_login()`` now checks that first,
in the same round trip, when its caller gives the token's epoch (``p_actor_epoch``): an
account gone or disabled answers ``caller-gone``, another epoch ``caller-revoked``, and
nothing is locked, counted or written. NULL: the caller's account was read before (an API
key, an operator), as before.

The parameters of the worker's notification (``p_notify``, ``p_channel``, ``p_payload``) are
gone: an API process tells the worker after the commit (graam_pbx/cluster/agent_signals.py).
The rest is 0023's function as 0024 and 0025 left it: the default node asked of
``graam_default_node()``, and one generic plan per statement. It is written out whole, not
derived from 0023's text by replacements as 0024 did: the login as it now stands reads in
one place. The downgrade restores 0024's text and 0025's setting.
"""

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from alembic import op

revision: str = "0039_login_checks_caller"
down_revision: str | None = "0038_sip_devices_changed"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BEFORE = "agent_login(bigint, bigint, bigint, text, text, bigint, text, jsonb, boolean, text, text)"
SIGNATURE = "agent_login(bigint, bigint, bigint, text, text, bigint, integer, text, jsonb)"

FUNCTION = """
CREATE FUNCTION agent_login(
    p_tenant bigint, p_agent bigint, p_device bigint, p_role text, p_source text,
    p_actor bigint, p_actor_epoch integer, p_refusal text, p_moves jsonb,
    OUT outcome text, OUT licences integer, OUT in_use bigint,
    OUT session_id bigint, OUT device_id bigint, OUT source text,
    OUT started_at timestamptz, OUT paused boolean, OUT pause_reason text,
    OUT paused_since timestamptz,
    OUT registered text, OUT home text,
    OUT holder_ids bigint[], OUT holder_names text[], OUT holder_since timestamptz[]
) LANGUAGE plpgsql VOLATILE SET plan_cache_mode = force_generic_plan AS $$
-- p_device: the device asked for, or NULL (the agent's first); p_role: the agents' role;
-- p_actor: who logs the agent in; p_actor_epoch: its access token's epoch, its account checked
-- here (NULL: read before); p_refusal: the refused event's reason; p_moves: the login's state
-- move (agent_state_apply).
DECLARE
    v_actor_disabled boolean;
    v_actor_epoch integer;
    v_agent bigint;
    v_disabled boolean;
    v_chosen bigint;
    v_mine bigint;
    v_made bigint;
BEGIN
    IF p_actor_epoch IS NOT NULL THEN
        SELECT u.disabled, u.token_epoch INTO v_actor_disabled, v_actor_epoch
        FROM users u WHERE u.id = p_actor;
        IF NOT FOUND OR v_actor_disabled THEN
            outcome := 'caller-gone';
            RETURN;
        END IF;
        IF v_actor_epoch <> p_actor_epoch THEN
            outcome := 'caller-revoked';
            RETURN;
        END IF;
    END IF;

    SELECT t.licences, u.id, u.disabled,
           (SELECT d.id FROM agent_devices d
            WHERE d.tenant_id = t.id AND d.user_id = u.id
              AND (p_device IS NULL OR d.id = p_device)
            ORDER BY d.id LIMIT 1)
    INTO licences, v_agent, v_disabled, v_chosen
    FROM tenants t
    LEFT JOIN users u ON u.id = p_agent AND u.tenant_id = t.id AND u.role = p_role
    WHERE t.id = p_tenant
    FOR NO KEY UPDATE OF t;
    IF NOT FOUND THEN
        outcome := 'no-tenant';
        RETURN;
    END IF;
    IF v_agent IS NULL THEN
        outcome := 'no-agent';
        RETURN;
    END IF;
    IF v_disabled THEN
        outcome := 'disabled';
        RETURN;
    END IF;
    IF v_chosen IS NULL THEN
        outcome := 'no-device';
        RETURN;
    END IF;
    device_id := v_chosen;

    SELECT n.name, home_node.name INTO registered, home
    FROM agent_devices d
    JOIN ps_contacts c ON c.endpoint = d.sip_username
    JOIN asterisk_nodes n ON n.systemname = c.reg_server
    LEFT JOIN asterisk_nodes home_node ON home_node.id = coalesce(
        (SELECT p.node_id FROM tenant_placements p WHERE p.tenant_id = p_tenant),
        (select graam_default_node()))
    WHERE d.id = v_chosen AND n.id IS DISTINCT FROM home_node.id
    LIMIT 1;
    IF FOUND THEN
        outcome := CASE WHEN home IS NULL THEN 'no-node' ELSE 'elsewhere' END;
        RETURN;
    END IF;

    WITH live AS (
        SELECT count(*) AS in_use, max(s.id) FILTER (WHERE s.user_id = p_agent) AS mine
        FROM agent_sessions s WHERE s.tenant_id = p_tenant AND s.ended_at IS NULL
    ), made AS (
        INSERT INTO agent_sessions (tenant_id, user_id, device_id, source, started_by, paused)
        SELECT p_tenant, p_agent, v_chosen, p_source, p_actor, false FROM live
        WHERE live.mine IS NULL AND live.in_use < agent_login.licences
        RETURNING id, agent_sessions.started_at
    ), logged AS (
        INSERT INTO agent_state_events (tenant_id, user_id, session_id, kind, source,
                                        actor_user_id)
        SELECT p_tenant, p_agent, made.id, 'login', p_source, p_actor FROM made
    ), refused AS (
        INSERT INTO agent_state_events (tenant_id, user_id, kind, reason, source,
                                        actor_user_id)
        SELECT p_tenant, p_agent, 'refused', p_refusal, p_source, p_actor FROM live
        WHERE live.mine IS NULL AND live.in_use >= agent_login.licences
    ), holders AS (
        SELECT array_agg(s.user_id ORDER BY s.started_at, s.id) AS ids,
               array_agg(u.display_name::text ORDER BY s.started_at, s.id) AS names,
               array_agg(s.started_at ORDER BY s.started_at, s.id) AS since
        FROM agent_sessions s JOIN users u ON u.id = s.user_id
        WHERE s.tenant_id = p_tenant AND s.ended_at IS NULL
    )
    SELECT live.in_use, live.mine, made.id, made.started_at,
           CASE WHEN live.mine IS NULL AND live.in_use >= agent_login.licences
                THEN (SELECT holders.ids FROM holders) END,
           CASE WHEN live.mine IS NULL AND live.in_use >= agent_login.licences
                THEN (SELECT holders.names FROM holders) END,
           CASE WHEN live.mine IS NULL AND live.in_use >= agent_login.licences
                THEN (SELECT holders.since FROM holders) END
    INTO in_use, v_mine, v_made, started_at, holder_ids, holder_names, holder_since
    FROM live LEFT JOIN made ON true;

    IF v_made IS NOT NULL THEN
        -- In the statement that made the session, they would not see it: run after it.
        PERFORM agent_state_apply(p_moves);
        outcome := 'created';
        session_id := v_made;
        source := p_source;
        paused := false;
        RETURN;
    END IF;
    IF v_mine IS NOT NULL THEN
        outcome := 'existing';
        SELECT s.id, s.device_id, s.source, s.started_at, s.paused, s.pause_reason,
               s.paused_since
        INTO session_id, device_id, source, started_at, paused, pause_reason, paused_since
        FROM agent_sessions s WHERE s.id = v_mine;
        RETURN;
    END IF;
    outcome := 'refused';
END
$$
"""


def _revision(name: str) -> ModuleType:
    """An earlier revision of this folder, whose function this one restores."""
    path = Path(__file__).with_name(f"{name}.py")
    spec = importlib.util.spec_from_file_location(f"graam_revision_{name}", path)
    assert spec is not None and spec.loader is not None  # noqa: S101 - a file of this folder
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def upgrade() -> None:
    op.execute(f"DROP FUNCTION {BEFORE}")
    op.execute(FUNCTION)


def downgrade() -> None:
    op.execute(f"DROP FUNCTION {SIGNATURE}")
    # 0024's text of 0023's function (it asks graam_default_node()), and 0025's plans.
    *_, function = _revision("0024_default_node")._views(through_function=True)
    op.execute(function.replace("CREATE OR REPLACE FUNCTION", "CREATE FUNCTION", 1))
    op.execute(f"ALTER FUNCTION {BEFORE} SET plan_cache_mode = force_generic_plan")
