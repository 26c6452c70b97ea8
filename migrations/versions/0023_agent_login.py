"""agent login in one statement: agent_login()

Revision ID: 0023_agent_login
Revises: 0022_node_views
Create Date: 2026-12-04 23:00:00+00:00

A login was four statements of its request's transaction after the caller's account: the
tenant's lock with the agent and its device, the check that the device is not registered with
another node than the tenant's, the login itself, and, for an agent already logged in, its
session. Under a storm of logins on a machine of few cores every round trip costs CPU at both
ends (a wake-up, a system call, a trip through the driver), the rate follows the CPU, and so
``agent_login()`` does the whole login in one call, in the caller's transaction:

1. the tenant's row locked (``FOR NO KEY UPDATE``, the lock ``set_licences`` also takes),
   with its licences, the agent (disabled or not) and the device to log in with (the named
   one, else the agent's first);
2. the device's node: refused when it is registered (``ps_contacts.reg_server``, a node's
   ``systemname``) with a node other than the tenant's (its placement's, else the default
   node: the active node with the lowest id), as graam_pbx/cluster/placement.py decides;
3. under the lock, in one statement that starts after the lock is granted (its snapshot holds
   every login committed before; in a VOLATILE PL/pgSQL function each statement takes a new
   one): the live sessions counted, the agent's own found, and only when it has none and a
   licence is free, its session, its login event, its move to ``available``
   (``agent_state_apply``) and the worker told (``pg_notify``, delivered only if the
   transaction commits); when none is free, the refusal's event and who holds the licences
   (the very sessions the count saw);
4. for an agent already logged in, its session.

It raises nothing: ``outcome`` names what happened (``no-tenant``, ``no-agent``,
``disabled``, ``no-device``, ``elsewhere``, ``no-node``, ``created``, ``existing``,
``refused``) and the caller maps it to its error, so a refusal writes nothing but its own
event and the caller decides whether to commit.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0023_agent_login"
down_revision: str | None = "0022_node_views"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SIGNATURE = (
    "agent_login(bigint, bigint, bigint, text, text, bigint, text, jsonb, boolean, text, text)"
)

# The default node (0024 asks graam_default_node() in its place).
DEFAULT_NODE = "(SELECT a.id FROM asterisk_nodes a WHERE a.state = 'active' ORDER BY a.id LIMIT 1)"

FUNCTION = """
CREATE FUNCTION agent_login(
    p_tenant bigint, p_agent bigint, p_device bigint, p_role text, p_source text,
    p_actor bigint, p_refusal text, p_moves jsonb, p_notify boolean, p_channel text,
    p_payload text,
    OUT outcome text, OUT licences integer, OUT in_use bigint,
    OUT session_id bigint, OUT device_id bigint, OUT source text,
    OUT started_at timestamptz, OUT paused boolean, OUT pause_reason text,
    OUT paused_since timestamptz,
    OUT registered text, OUT home text,
    OUT holder_ids bigint[], OUT holder_names text[], OUT holder_since timestamptz[]
) LANGUAGE plpgsql VOLATILE AS $$
-- p_device: the device asked for, or NULL (the agent's first); p_role: the agents' role;
-- p_refusal: the refused event's reason; p_moves: the login's state move (agent_state_apply);
-- p_notify: tell the active worker on p_channel with p_payload.
DECLARE
    v_agent bigint;
    v_disabled boolean;
    v_chosen bigint;
    v_mine bigint;
    v_made bigint;
BEGIN
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
        DEFAULT_NODE)
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
        IF p_notify THEN
            PERFORM pg_notify(p_channel, p_payload);
        END IF;
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
""".replace("DEFAULT_NODE", DEFAULT_NODE)


def upgrade() -> None:
    op.execute(FUNCTION)


def downgrade() -> None:
    op.execute(f"DROP FUNCTION {SIGNATURE}")
