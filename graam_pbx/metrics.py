"""Prometheus metrics of the control plane: one registry, every name starts with ``graam_``."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

AMI_CONNECTED = Gauge(
    "graam_ami_connected",
    "1 while logged in to the node's Asterisk and fully booted, by node name",
    ["node"],
    registry=REGISTRY,
)
AMI_RECONNECTS = Counter(
    "graam_ami_reconnects_total", "AMI connections lost and attempted again", registry=REGISTRY
)
AMI_EVENTS = Counter(
    "graam_ami_events_total", "AMI events received, by event name", ["event"], registry=REGISTRY
)
AMI_ACTION_SECONDS = Histogram(
    "graam_ami_action_seconds", "AMI action round-trip time", ["action"], registry=REGISTRY
)
AMI_ACTION_ERRORS = Counter(
    "graam_ami_action_errors_total",
    "AMI actions that failed, by action and reason (error, timeout, disconnected)",
    ["action", "reason"],
    registry=REGISTRY,
)
AMI_SUBSCRIBER_DROPPED = Counter(
    "graam_ami_subscriber_dropped_total",
    "Events dropped because a subscriber's queue was full",
    ["subscriber"],
    registry=REGISTRY,
)
AMI_SUBSCRIBER_BACKLOG = Gauge(
    "graam_ami_subscriber_backlog",
    "Events waiting for a subscriber",
    ["subscriber"],
    registry=REGISTRY,
)
AMI_HANDLER_ERRORS = Counter(
    "graam_ami_handler_errors_total",
    "Event handlers that raised",
    ["subscriber"],
    registry=REGISTRY,
)
DB_POOL_SIZE = Gauge("graam_db_pool_size", "Connections in the database pool", registry=REGISTRY)
DB_POOL_CHECKED_OUT = Gauge(
    "graam_db_pool_checked_out", "Database connections in use", registry=REGISTRY
)
AGI_REQUESTS = Counter(
    "graam_agi_requests_total",
    "FastAGI conversations by outcome (ok, hangup, failed)",
    ["outcome"],
    registry=REGISTRY,
)
AGI_REFUSALS = Counter(
    "graam_agi_refusals_total",
    "FastAGI requests refused as not proven to come from Asterisk for the phone they name, "
    "by reason (key, channel, device, unverified)",
    ["reason"],
    registry=REGISTRY,
)
LICENCES_TOTAL = Gauge(
    "graam_licences_total",
    "Licences of each tenant (concurrent agents)",
    ["tenant"],
    registry=REGISTRY,
)
LICENCES_IN_USE = Gauge(
    "graam_licences_in_use", "Agents logged in now, per tenant", ["tenant"], registry=REGISTRY
)
LICENCE_REFUSALS = Counter(
    "graam_licence_refusals_total",
    "Logins refused because every licence of the tenant was in use",
    ["tenant"],
    registry=REGISTRY,
)
AGENT_SESSIONS_ENDED = Counter(
    "graam_agent_sessions_ended_total",
    "Agent sessions ended, by reason (logout, forced, unregistered, unreachable, max-length)",
    ["reason"],
    registry=REGISTRY,
)
QUEUE_MEMBER_FIXES = Counter(
    "graam_queue_member_fixes_total",
    "Queue member changes made on Asterisk to match the sessions, by action",
    ["action"],
    registry=REGISTRY,
)
CDR_RECEIVED = Counter(
    "graam_cdr_received_total",
    "CDRs parsed, by source (ami: live events, csv: backfilled from Asterisk's log)",
    ["source"],
    registry=REGISTRY,
)
CDR_WRITTEN = Counter(
    "graam_cdr_written_total", "CDRs newly inserted into Postgres", registry=REGISTRY
)
CDR_DUPLICATES = Counter(
    "graam_cdr_duplicates_total",
    "CDRs written again and ignored because their key was already there",
    registry=REGISTRY,
)
CDR_DEAD_LETTERS = Counter(
    "graam_cdr_dead_letters_total",
    "CDRs refused and kept in the dead-letter file, by reason",
    ["reason"],
    registry=REGISTRY,
)
CDR_JOURNALED = Counter(
    "graam_cdr_journaled_total", "CDRs written to the local journal", registry=REGISTRY
)
CDR_REPLAYED = Counter(
    "graam_cdr_replayed_total", "CDRs replayed from the journal into Postgres", registry=REGISTRY
)
CDR_JOURNAL_BYTES = Gauge(
    "graam_cdr_journal_bytes", "Bytes waiting in the local CDR journal", registry=REGISTRY
)
CDR_JOURNAL_FILL = Gauge(
    "graam_cdr_journal_fill_ratio",
    "Fill level of the local CDR journal (0 to 1 of its bound)",
    registry=REGISTRY,
)
CDR_PIPELINE_DEGRADED = Gauge(
    "graam_cdr_pipeline_degraded",
    "1 while CDRs are journaled, replayed or blocked instead of written to Postgres",
    registry=REGISTRY,
)
CDR_BATCH_SECONDS = Histogram(
    "graam_cdr_batch_write_seconds", "Time to write one batch of CDRs", registry=REGISTRY
)
CDR_LAG_SECONDS = Histogram(
    "graam_cdr_lag_seconds",
    "From the end of a call leg to its CDR committed in Postgres (live events)",
    buckets=(0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0),
    registry=REGISTRY,
)
VOICEMAIL_EMAILS = Counter(
    "graam_voicemail_emails_total",
    "Voicemail e-mails by outcome (sent; failed, retried at the next scan)",
    ["outcome"],
    registry=REGISTRY,
)
VOICEMAIL_RELAY_CONFIGURED = Gauge(
    "graam_voicemail_relay_configured",
    "1 when an SMTP relay is configured for voicemail e-mails (GRAAM_SMTP_HOST)",
    registry=REGISTRY,
)
CONFIG_PENDING_TENANTS = Gauge(
    "graam_config_pending_tenants",
    "Tenants whose committed configuration is not live in Asterisk yet (after the last pass)",
    registry=REGISTRY,
)
CONFIG_APPLY_LAG = Histogram(
    "graam_config_apply_lag_seconds",
    "From a tenant's first configuration commit not yet live to the pass that made it live",
    buckets=(0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0),
    registry=REGISTRY,
)
CONFIG_RENDER_FAILURES = Counter(
    "graam_config_render_failures_total",
    'Renders of a tenant\'s configuration (or of a trunk: tenant="trunks") that failed;'
    " its previous files stayed",
    ["tenant"],
    registry=REGISTRY,
)
CONFIG_RELOAD_RETRIES = Counter(
    "graam_config_reload_retries_total",
    "Asterisk reloads sent again because they were not done, by reload and outcome"
    " (in-progress, queued, failed, error)",
    ["reload", "outcome"],
    registry=REGISTRY,
)
CONFIG_APPLY_FAILURES = Counter(
    "graam_config_apply_failures_total",
    "Config passes that failed whole (a reload never done, the database away) and were retried",
    registry=REGISTRY,
)
TRUNK_RESOLUTIONS = Counter(
    "graam_trunk_resolutions_total",
    "Lookups of trunks' host names by the control plane, by outcome (resolved, failed)",
    ["outcome"],
    registry=REGISTRY,
)
LOGIN_ATTEMPTS = Counter(
    "graam_login_attempts_total",
    "Password logins by outcome (ok, bad-credentials, disabled, throttled, busy: refused "
    "with 503 because too many logins ran at once)",
    ["outcome"],
    registry=REGISTRY,
)
DB_POOL_TIMEOUTS = Counter(
    "graam_db_pool_timeouts_total",
    "Requests answered 503 because no database connection freed in time",
    registry=REGISTRY,
)
SIP_AUTH_FAILURES = Counter(
    "graam_sip_auth_failures_total",
    "Failed SIP authentications Asterisk reported (AMI security events), by event",
    ["event"],
    registry=REGISTRY,
)
SIP_BLOCKS = Counter(
    "graam_sip_blocks_total",
    "SIP sources blocked after too many failed authentications",
    registry=REGISTRY,
)
SIP_BLOCKED_SOURCES = Gauge(
    "graam_sip_blocked_sources",
    "SIP sources (IPv4 addresses, IPv6 /64s) Asterisk denies now",
    registry=REGISTRY,
)
QUEUE_CALLS_WRITTEN = Counter(
    "graam_queue_calls_written_total",
    "Finished queue calls sent to Postgres (an existing key is not doubled), by source",
    ["source"],
    registry=REGISTRY,
)
# Per queue: tenant and queue ids as labels (GRAAM_QUEUE_METRICS_PER_QUEUE=false: one series,
# tenant="all", queue="all", summed over every queue).
QUEUE_WAITING = Gauge(
    "graam_queue_waiting_calls",
    "Callers waiting in the queue",
    ["tenant", "queue"],
    registry=REGISTRY,
)
QUEUE_LONGEST_WAIT = Gauge(
    "graam_queue_longest_wait_seconds",
    "Wait of the caller waiting longest (the longest over queues when not per queue)",
    ["tenant", "queue"],
    registry=REGISTRY,
)
QUEUE_AGENTS_AVAILABLE = Gauge(
    "graam_queue_agents_available",
    "Members not paused, not in a call and reachable",
    ["tenant", "queue"],
    registry=REGISTRY,
)
QUEUE_AGENTS_PAUSED = Gauge(
    "graam_queue_agents_paused", "Members paused", ["tenant", "queue"], registry=REGISTRY
)
# The campaign dialer (graam_pbx/campaigns/worker.py).
DIALER_ATTEMPTS = Counter(
    "graam_dialer_attempts_total",
    "Campaign attempts ended, by tenant and outcome",
    ["tenant", "outcome"],
    registry=REGISTRY,
)
DIALER_CALLS_IN_PROGRESS = Gauge(
    "graam_dialer_calls_in_progress",
    "Campaign attempts placed and not yet ended, by tenant",
    ["tenant"],
    registry=REGISTRY,
)
DIALER_DECISION_SECONDS = Histogram(
    "graam_dialer_decision_seconds",
    "Time the dialer takes for one campaign's decision (measures, pacing, placing)",
    registry=REGISTRY,
)
