"""The FastAPI application: routes, error mapping and the lifespan that runs the workers."""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse, JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import exc as sqlalchemy_errors
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from graam_pbx import heap, metrics
from graam_pbx.agents import api as agents_api
from graam_pbx.agents import phone as agents_phone
from graam_pbx.agents.worker import AgentWorker
from graam_pbx.ami import AmiConfig, AmiSupervisor, EventBus
from graam_pbx.ami.agi_auth import agi_key
from graam_pbx.ami.fastagi import FastAgiServer
from graam_pbx.ami.supervisor import DEFAULT_NODE
from graam_pbx.asterisk import status as config_status
from graam_pbx.asterisk.applier import ConfigApplier
from graam_pbx.asterisk.nodes import NodeAppliers
from graam_pbx.asterisk.shards import ShardedWriter
from graam_pbx.asterisk.sip_cache import listener as sip_cache_listener
from graam_pbx.audit import api as audit_api
from graam_pbx.auth import api as auth_api
from graam_pbx.auth import service as auth_service
from graam_pbx.auth.throttle import LoginGate
from graam_pbx.billing import api as billing_api
from graam_pbx.billing.worker import BillingScheduler
from graam_pbx.call_control import api as call_control_api
from graam_pbx.campaigns import api as campaigns_api
from graam_pbx.campaigns.remote_preview import PreviewRequests, RemoteDialer
from graam_pbx.campaigns.worker import DialerWorker
from graam_pbx.cdr import api as cdr_api
from graam_pbx.cdr.backfill import ASTERISK_LOG
from graam_pbx.cdr.node_logs import NodeLogs
from graam_pbx.cdr.worker import CdrSettings, CdrWorker
from graam_pbx.cluster import api as cluster_api
from graam_pbx.cluster import signals
from graam_pbx.cluster.agent_signals import AgentWakeups
from graam_pbx.cluster.lease import WORKER_ACTIVE, ActiveWorker, Component, WorkerLease
from graam_pbx.cluster.nodes import ensure_local_node
from graam_pbx.cluster.signals import Listener
from graam_pbx.cluster.supervisors import NodeBus, NodeSupervisors
from graam_pbx.config_status import api as config_status_api
from graam_pbx.config_status import service as config_status_service
from graam_pbx.db import create_engine, plain_url, session_factory
from graam_pbx.errors import DatabaseBusy, GraamError, Invalid
from graam_pbx.files import FileAccess, configured_access
from graam_pbx.forwarding import api as forwarding_api
from graam_pbx.ivr import api as ivr_api
from graam_pbx.live.relay import BoardRelay, board_listener
from graam_pbx.live.wallboards import EVENTS as WALLBOARD_EVENTS
from graam_pbx.live.wallboards import Wallboards
from graam_pbx.mail import SmtpRelay
from graam_pbx.moh import api as moh_api
from graam_pbx.notices import api as notices_api
from graam_pbx.numbers import api as numbers_api
from graam_pbx.prompts import api as prompts_api
from graam_pbx.queue_calls import api as queue_calls_api
from graam_pbx.queue_calls.worker import QUEUE_LOG, QueueCallSettings, QueueCallWorker
from graam_pbx.queues import api as queues_api
from graam_pbx.recordings import api as recordings_api
from graam_pbx.recordings.spool import ASTERISK_MONITOR, SPOOL_SUBDIR
from graam_pbx.recordings.store import LocalStore, RecordingStore
from graam_pbx.recordings.worker import RecordingCollector
from graam_pbx.rest import (
    StorableInput,
    allowed_methods,
    openapi_document,
    openapi_parameters_without_null,
)
from graam_pbx.routing import api as routing_api
from graam_pbx.routing.worker import TrunkResolver
from graam_pbx.settings import ProcessRole, Settings, get_settings
from graam_pbx.sip_security import api as sip_security_api
from graam_pbx.sip_security.worker import BlockPolicy, SipSecurityWorker
from graam_pbx.stats import api as stats_api
from graam_pbx.supervision import api as supervision_api
from graam_pbx.support import api as support_api
from graam_pbx.tenants import api as tenants_api
from graam_pbx.voicemail import api as voicemail_api
from graam_pbx.voicemail.events import VoicemailEvents
from graam_pbx.voicemail.spool import ASTERISK_SPOOL as VOICEMAIL_SPOOL
from graam_pbx.voicemail.spool import VoicemailSpool
from graam_pbx.voicemail.worker import VoicemailNotifier
from graam_pbx.web import routes as console
from graam_pbx.web.errors import console_error, console_not_found, is_console_path
from graam_pbx.webhooks import api as webhooks_api
from graam_pbx.webhooks import documented as webhooks_documented
from graam_pbx.webhooks import stream_api as events_api
from graam_pbx.webhooks.delivery import CHANNEL as WEBHOOKS_CHANNEL
from graam_pbx.webhooks.delivery import WebhookDeliverer
from graam_pbx.webhooks.recorder import WebhookRecorder
from graam_pbx.webhooks.stream import EventStreams

log = logging.getLogger(__name__)

# Every domain's routes, under /api/v1.
API_ROUTERS: list[APIRouter] = [
    auth_api.router,
    # Routes are tried in this order: the agents' sessions (a login storm's one route) come
    # first after the token's own. No other router has paths under /api/v1/agents/.
    agents_api.sessions_router,
    tenants_api.router,
    audit_api.router,
    numbers_api.router,
    routing_api.router,
    agents_api.router,
    agents_api.pause_reasons_router,
    queues_api.router,
    prompts_api.router,
    moh_api.router,
    ivr_api.router,
    voicemail_api.router,
    forwarding_api.router,
    forwarding_api.users_router,
    forwarding_api.follow_me_router,
    recordings_api.router,
    cdr_api.router,
    queue_calls_api.router,
    config_status_api.router,
    sip_security_api.router,
    stats_api.router,
    support_api.router,
    notices_api.router,
    *billing_api.ROUTERS,
    *campaigns_api.ROUTERS,
    cluster_api.router,
    supervision_api.router,
    call_control_api.router,
    webhooks_api.router,
    events_api.router,
]

READY_DB_TIMEOUT = 2.0
OPENAPI_PATH = "/openapi.json"
SWAGGER_REDIRECT_PATH = "/docs/oauth2-redirect"


RECORDINGS_SPOOL = ASTERISK_MONITOR / SPOOL_SUBDIR


@dataclass(frozen=True)
class Endpoints:
    """Where the real parts are: resolved before the app starts (embedded or configured)."""

    database_url: str
    ami: AmiConfig
    config_dir: Path | None = None  # generated Asterisk config; None: not generated here
    sounds_dir: Path | None = None  # tenants' prompts as files Asterisk plays
    cdr_csv_log: Path | None = None  # Asterisk's CSV log of CDRs; None: no backfill
    voicemail_spool: Path | None = None  # Asterisk's voicemail spool; None: messages unreachable
    queue_log: Path | None = None  # Asterisk's queue_log; None: no queue-call backfill
    # Where MixMonitor leaves recordings (monitor spool's graam/); None: not collected here.
    recordings_spool: Path | None = None
    # Where browsers reach Asterisk's SIP WebSocket (the console's phone); None: no phone.
    phone_websocket: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> Endpoints:
        if not settings.database_url:
            raise ValueError("GRAAM_DATABASE_URL is not set (`graam-pbx run` starts one)")
        return cls(
            database_url=settings.database_url,
            ami=AmiConfig.from_settings(settings),
            config_dir=settings.asterisk_config_dir,
            sounds_dir=settings.asterisk_sounds_dir,
            cdr_csv_log=settings.cdr_csv_log or ASTERISK_LOG,
            voicemail_spool=settings.voicemail_spool_dir or VOICEMAIL_SPOOL,
            queue_log=settings.queue_log or QUEUE_LOG,
            phone_websocket=settings.sip_websocket_url,
            recordings_spool=settings.recordings_spool_dir or RECORDINGS_SPOOL,
        )


@dataclass
class Runtime:
    """What the routes reach through ``request.app.state.runtime``."""

    settings: Settings
    engine: AsyncEngine
    bus: EventBus
    ami: AmiSupervisor
    signing_key: str
    applier: ConfigApplier | None  # the configured Asterisk's (appliers.local)
    appliers: NodeAppliers | None  # every node's: what configuration changes are told to
    logins: LoginGate
    # Every node's AMI connection (``ami`` adopted as the configured node's); None when the
    # database has no node table (a process started before its migrations).
    nodes: NodeSupervisors | None = None
    agents: AgentWorker | None = None
    cdr: CdrWorker | None = None
    queue_calls: QueueCallWorker | None = None
    dialer: DialerWorker | None = None
    # Preview calls across processes (campaigns/remote_preview.py): asked by an API process,
    # placed by the active worker.
    remote_dialer: RemoteDialer | None = None
    preview_requests: PreviewRequests | None = None
    voicemail_spool: VoicemailSpool | None = None
    live: Wallboards | None = None
    live_listener: Listener | None = None  # role api: what the wallboards hear from Postgres
    billing: BillingScheduler | None = None
    worker: ActiveWorker | None = None  # role worker: this process's part in the lease
    phone_websocket: str | None = None  # Endpoints.phone_websocket: the console's phone
    recordings: RecordingStore | None = None  # where registered recordings are kept
    collector: RecordingCollector | None = None  # the active worker's: spool → store
    webhooks: WebhookDeliverer | None = None  # the active worker's: deliveries sent
    event_streams: EventStreams | None = None  # roles api and all: the tenants' event streams
    local_node: str | None = None  # the configured Asterisk's node (None: no node table)


def create_app(settings: Settings | None = None, endpoints: Endpoints | None = None) -> FastAPI:
    """The admin API with its workers; ``endpoints`` default to the settings."""
    settings = settings or get_settings()
    endpoints = endpoints or Endpoints.from_settings(settings)

    role = settings.role

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Role all: everything here. Role api: the routes, with an AMI connection of their
        # own for actions and the wallboards' live events, nothing that writes events or
        # applies configuration. Role worker: the writers, the applier and the schedulers,
        # started only while this process holds the worker lease (docs/processes.md).
        acts = role is not ProcessRole.API
        engine = create_engine(endpoints.database_url, pool_size=settings.db_pool_size)
        # An API process hears Asterisk for its wallboards' waiting callers alone: it asks
        # for those events only, instead of reading every event of the switch (ami/bus.py).
        bus = EventBus(only=WALLBOARD_EVENTS if role is ProcessRole.API else None)
        # The configured Asterisk is a node (``local`` when none was registered): its one
        # connection serves as that node's, every other node gets its own (docs/nodes.md).
        nodes, local = await _node_supervisors(engine, bus, endpoints, settings)
        ami = AmiSupervisor(
            endpoints.ami,
            NodeBus(bus, local) if local is not None else bus,
            node=local or DEFAULT_NODE,
        )
        if nodes is not None and local is not None:
            nodes.adopt(local, ami)
        app.state.nodes = nodes  # the cluster API wakes it after a committed change
        signing_key = auth_service.signing_key(settings)
        # Each tenant's FastAGI URLs carry a key derived from the signing key: the dialplan
        # holds it and the FastAGI server checks it (ami/agi_auth.py).
        fastagi_key = agi_key(signing_key)
        file_access = configured_access(settings)
        db_url = settings.asterisk_db_url

        def node_applier(
            node: str | None,
            node_ami: AmiSupervisor,
            config_dir: Path,
            sounds_dir: Path | None,
            shards: ShardedWriter | None = None,
        ) -> ConfigApplier:
            return ConfigApplier(
                engine,
                config_dir,
                sounds_dir=sounds_dir,
                ami=node_ami,
                bus=bus,
                override_dir=settings.config_templates_dir,
                agi_address=(settings.agi_host, settings.agi_port),
                agi_key=fastagi_key,
                file_access=file_access,
                # A tenant whose configuration starts (or stops) failing gets an audit entry.
                on_failure=config_status_service.failure_auditor(session_factory(engine)),
                asterisk_db_url=db_url.get_secret_value() if db_url is not None else None,
                node=node,
                shards=shards,
            )

        # Each node gets only the tenants it holds (asterisk/nodes.py): the configured
        # Asterisk from this applier, the others under GRAAM_NODES_FILES_DIR.
        appliers: NodeAppliers | None = None
        if acts and endpoints.config_dir is not None:
            own = node_applier(local, ami, endpoints.config_dir, endpoints.sounds_dir)
            appliers = NodeAppliers(
                own,
                nodes=nodes,
                local_node=local,
                files_dir=settings.nodes_files_dir,
                # The other nodes' appliers render with the configured one's workers.
                make=lambda node, node_ami, config_dir, sounds_dir: node_applier(
                    node, node_ami, config_dir, sounds_dir, own.shards
                ),
            )
        applier = appliers.local if appliers is not None else None
        # In an API process the agent worker is never started: its device-state reads (the
        # supervisors' live view) go through this process's own AMI connection.
        agents = AgentWorker(engine, ami, bus, settings, routes=nodes)
        runtime = Runtime(
            settings=settings,
            engine=engine,
            bus=bus,
            ami=ami,
            signing_key=signing_key,
            applier=applier,
            appliers=appliers,
            logins=LoginGate.from_settings(settings),
            nodes=nodes,
            agents=agents,
            voicemail_spool=VoicemailSpool(endpoints.voicemail_spool)
            if endpoints.voicemail_spool
            else None,
            phone_websocket=endpoints.phone_websocket,
            local_node=local,
            recordings=LocalStore(settings.recordings_path),
        )
        app.state.runtime = runtime
        # The routes whose whole work is one statement run without BEGIN and COMMIT
        # (deps.one_statement): the same pool, each statement its own transaction.
        app.state.statement_engine = engine.execution_options(isolation_level="AUTOCOMMIT")
        # Committed configuration changes reach the applier, and committed logins, logouts
        # and pauses the agent worker: each makes Asterisk match. An API process sends them
        # to the active worker instead: configuration changes with pg_notify in the
        # committing transaction, agent changes after their commits, gathered.
        wakeups = AgentWakeups(app.state.statement_engine) if role is ProcessRole.API else None
        app.state.sessions = session_factory(
            engine,
            on_config_change=appliers.request if appliers else None,
            on_agent_change=agents.request if wakeups is None else wakeups.add,
            notify_changes=not acts,
        )
        acting = (
            _acting_components(app, runtime, endpoints, fastagi_key, file_access, local)
            if acts
            else []
        )
        # The tenants' event streams (roles api and all), woken when events are stored.
        streaming = (
            _event_streams(runtime, plain_url(endpoints.database_url))
            if role is not ProcessRole.WORKER
            else []
        )
        if role is ProcessRole.API:
            # Waiting callers from this process's AMI events, figures and agents from Postgres.
            runtime.live = Wallboards(session_factory(engine), bus, ami)
            # What the active worker and other API processes commit, heard through Postgres.
            listener = board_listener(plain_url(endpoints.database_url), runtime.live)
            runtime.live_listener = listener
            runtime.remote_dialer = RemoteDialer(plain_url(endpoints.database_url))
            components: list[Component] = [
                bus,
                ami,
                *([nodes] if nodes is not None else []),
                *([wakeups] if wakeups is not None else []),
                runtime.live,
                listener,
                *streaming,
            ]
        elif role is ProcessRole.WORKER:
            worker = ActiveWorker(
                WorkerLease(
                    plain_url(endpoints.database_url),
                    interval=settings.worker_lease_interval,
                    name=settings.worker_name or None,
                ),
                acting,
                # LISTEN before any component starts: a change committed from then on is
                # heard, one committed before is in the components' first full passes.
                on_taken=lambda connection: signals.listen(
                    connection,
                    on_config=appliers.request if appliers else None,
                    on_agents=agents.request,
                    on_preview=(
                        runtime.preview_requests.heard if runtime.preview_requests else None
                    ),
                ),
            )
            runtime.worker = worker
            components = [bus, worker]
        else:
            WORKER_ACTIVE.set(1)
            components = [bus, *acting, *streaming]
        started: list[Component] = []
        try:
            for component in components:
                await component.start()
                started.append(component)
            heap.settle_after_startup()
            yield
        finally:
            heap.release()
            for component in reversed(started):
                try:
                    await component.stop()
                except Exception:
                    log.exception(
                        "component did not stop cleanly",
                        extra={"component": type(component).__name__},
                    )
            if role is ProcessRole.ALL:
                WORKER_ACTIVE.set(0)
            await engine.dispose()

    app = FastAPI(
        title="graam-pbx",
        version="0.1.0",
        summary="Control plane of a multi-tenant call-centre switch beside Asterisk",
        lifespan=lifespan,
        # Served by _install_docs_routes, with the document built off the event loop.
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    _install_docs_routes(app)
    _install_error_handlers(app)
    _install_health_routes(app)
    if role is ProcessRole.WORKER:
        return app  # a worker serves /healthz, /readyz and /metrics only
    for router in API_ROUTERS:
        app.include_router(router)
    # What a webhook endpoint receives, documented (the OpenAPI document's ``webhooks``).
    app.webhooks.include_router(webhooks_documented.router)
    # The web console: pages under /, beside the API (its own error pages, same services).
    console.install(app)
    app.add_middleware(
        AdmissionLimit, prefix="/api/v1/agents/", limit=settings.agent_session_concurrency
    )
    # Outermost: input Postgres cannot store is refused before it waits for any slot.
    app.add_middleware(StorableInput)
    _document_parameters_as_sent(app)
    return app


def _acting_components(
    app: FastAPI,
    runtime: Runtime,
    endpoints: Endpoints,
    fastagi_key: bytes,
    file_access: FileAccess,
    local: str | None,
) -> list[Component]:
    """What acts on Asterisk and writes its events: the process of role all, or the active
    worker. Started in this order, stopped in reverse.

    The applier subscribes to AMI's resync before AMI first connects; the agent worker asks
    for a full pass when it starts, so it needs no resync to begin. The CDR writer subscribes
    before its first await, so it sees AMI's first resync too; it stops before AMI and
    flushes what it has (what it misses then is in Asterisk's CSV log).

    The CDR and queue-call writers backfill every other node's logs too, seen under
    ``GRAAM_NODES_FILES_DIR`` (``local`` is the configured Asterisk's node, whose logs are
    ``GRAAM_CDR_CSV_LOG`` and ``GRAAM_QUEUE_LOG``).
    """
    settings, engine, bus, ami = runtime.settings, runtime.engine, runtime.bus, runtime.ami
    appliers, agents, nodes = runtime.appliers, runtime.agents, runtime.nodes
    assert agents is not None  # noqa: S101 - made by the lifespan for every role
    node_logs = (
        NodeLogs(settings.nodes_files_dir, local, lambda: nodes.supervisors)
        if nodes is not None and settings.nodes_files_dir is not None
        else None
    )
    cdr = CdrWorker(
        plain_url(endpoints.database_url),
        bus,
        ami,
        CdrSettings(
            state_dir=settings.cdr_state_dir,
            csv_log=endpoints.cdr_csv_log,
            batch_size=settings.cdr_batch_size,
            batch_delay=settings.cdr_batch_delay,
            journal_max_bytes=settings.cdr_journal_max_bytes,
            checkpoint_interval=settings.cdr_checkpoint_interval,
        ),
        nodes=node_logs,
    )
    runtime.cdr = cdr
    # Queue calls: AMI queue events live, Asterisk's queue_log after any absence.
    queue_calls = QueueCallWorker(
        session_factory(engine),
        bus,
        ami,
        QueueCallSettings(
            queue_log=endpoints.queue_log,
            state_dir=settings.queue_calls_state_dir,
            backfill_interval=settings.queue_calls_backfill_interval,
            metrics_per_queue=settings.queue_metrics_per_queue,
            metrics_interval=settings.queue_metrics_interval,
        ),
        nodes=node_logs,
    )
    runtime.queue_calls = queue_calls
    # Campaigns: leases, pacing, placing calls and following them to their outcome.
    dialer = DialerWorker(session_factory(engine), ami, bus, settings, routes=runtime.nodes)
    runtime.dialer = dialer
    # The agents' phone codes (*45, *46, *47) arrive here from the dialplan.
    fastagi = FastAgiServer(
        settings.agi_host,
        settings.agi_port,
        agents_phone.handler(
            app.state.sessions,
            ami=ami,
            agi_key=fastagi_key,
            route=runtime.nodes.for_tenant if runtime.nodes is not None else None,
        ),
    )
    # New voicemail messages leave by e-mail through GRAAM_SMTP_* (said once when unset).
    notifier = VoicemailNotifier(
        session_factory(engine),
        bus,
        runtime.voicemail_spool,
        SmtpRelay.from_settings(settings),
        scan_interval=settings.voicemail_scan_interval,
        max_age=settings.voicemail_mail_max_age,
    )
    # New messages announced to the tenants' webhooks (voicemail.left).
    voicemail_events = VoicemailEvents(
        session_factory(engine),
        bus,
        runtime.voicemail_spool,
        scan_interval=settings.voicemail_scan_interval,
        max_age=settings.voicemail_mail_max_age,
    )
    # Trunks' host names, looked up here so that Asterisk never resolves them at a reload.
    trunk_resolver = TrunkResolver(
        session_factory(engine),
        (lambda: appliers.request(())) if appliers else None,
        interval=settings.trunk_resolve_interval,
        timeout=settings.trunk_resolve_timeout,
    )
    # SIP sources that keep failing to authenticate are blocked (Asterisk's security
    # events in, a deny list Asterisk enforces out); the API's unblock wakes it.
    sip_security = SipSecurityWorker(
        session_factory(engine),
        bus,
        ami,
        BlockPolicy.from_settings(settings),
        config_dir=endpoints.config_dir,
        file_access=file_access,
    )
    app.state.sip_security = sip_security
    live: list[Component] = []
    if settings.role is ProcessRole.WORKER:
        # The API processes' wallboards hear the timeline's moves and the queue calls written
        # (graam_pbx/live/relay.py); it hooks them before they start.
        relay: list[Component] = [BoardRelay(session_factory(engine), agents, queue_calls)]
        # API processes' preview calls, placed once the dialer runs (stopped before it).
        runtime.preview_requests = PreviewRequests(session_factory(engine), dialer)
        previews: list[Component] = [runtime.preview_requests]
    else:
        relay = previews = []
    if settings.role is ProcessRole.ALL:
        # The wallboards: waiting callers from AMI's queue events, agents' states from the
        # timeline's committed moves, figures when queue calls are written; pushed to
        # viewers. (A worker serves no viewer: API processes run their own.)
        runtime.live = Wallboards(
            session_factory(engine), bus, ami, agents=agents, queue_calls=queue_calls
        )
        live.append(runtime.live)
    # Billing: rating, month-end invoices (caught up at start), invoice e-mails, dunning
    # (its suspensions reach the applier: the app's sessions), terminations, retention.
    billing = BillingScheduler(app.state.sessions, settings, SmtpRelay.from_settings(settings))
    runtime.billing = billing
    # Recordings: finished ones from Asterisk's spool into the store; past retention, purged.
    assert runtime.recordings is not None  # noqa: S101 - made with the runtime
    runtime.collector = RecordingCollector(
        session_factory(engine),
        bus,
        endpoints.recordings_spool,
        runtime.recordings,
        nodes_files_dir=settings.nodes_files_dir,
        scan_interval=settings.recordings_scan_interval,
        purge_interval=settings.recordings_purge_interval,
    )
    # Webhooks: queue events recorded as the tenants' events; their deliveries sent, woken by
    # the events' notification (the migration's triggers) on a LISTEN connection of its own.
    runtime.webhooks = WebhookDeliverer(
        session_factory(engine),
        allowed=settings.webhooks_allowed,
        retry_base=settings.webhooks_retry_base,
        retry_for=settings.webhooks_retry_for,
        timeout=settings.webhooks_timeout,
        concurrency=settings.webhooks_concurrency,
        relay=SmtpRelay.from_settings(settings),
    )
    deliverer = runtime.webhooks
    webhook_listener = Listener(
        plain_url(endpoints.database_url),
        {WEBHOOKS_CHANNEL: lambda _: deliverer.request()},
        on_connected=deliverer.request,
        name="graam-webhooks",
    )
    # Devices changed in Postgres: each node forgets its cached copies (asterisk/sip_cache.py).
    sip_cache: list[Component] = (
        [sip_cache_listener(plain_url(endpoints.database_url), appliers.expire_devices)]
        if appliers
        else []
    )
    return [
        *relay,
        *([appliers] if appliers else []),
        *sip_cache,
        ami,
        *([runtime.nodes] if runtime.nodes is not None else []),
        agents,
        fastagi,
        cdr,
        queue_calls,
        dialer,
        *previews,
        notifier,
        trunk_resolver,
        sip_security,
        *live,
        billing,
        runtime.collector,
        WebhookRecorder(session_factory(engine), bus),
        voicemail_events,
        deliverer,
        webhook_listener,
    ]


def _event_streams(runtime: Runtime, database_url: str) -> list[Component]:
    """The process's event streams and the LISTEN that wakes them (their own connection)."""
    streams = EventStreams(session_factory(runtime.engine))
    runtime.event_streams = streams
    listener = Listener(
        database_url,
        {WEBHOOKS_CHANNEL: streams.heard},
        on_connected=streams.heard,
        name="graam-event-streams",
    )
    return [streams, listener]


async def _node_supervisors(
    engine: AsyncEngine, bus: EventBus, endpoints: Endpoints, settings: Settings
) -> tuple[NodeSupervisors | None, str | None]:
    """The process's node supervisors and the name of the configured Asterisk's node.

    ``ensure_local_node`` registers the configured Asterisk as ``local`` the first time
    (under an advisory lock: processes starting together register it once). A database
    without the node table (not migrated yet) or unreachable at start leaves the process
    with its one Asterisk, as before nodes: (None, None).
    """
    try:
        async with session_factory(engine)() as session, session.begin():
            node = await ensure_local_node(
                session,
                endpoints.ami,
                sip_host=endpoints.ami.host,
                sip_port=settings.sip_port,
            )
            local = node.name if node is not None else None
    except (sqlalchemy_errors.DBAPIError, OSError) as err:
        log.warning("no node table read at start; one Asterisk only", extra={"error": str(err)})
        return None, None
    return NodeSupervisors(session_factory(engine), bus, endpoints.ami), local


def _install_docs_routes(app: FastAPI) -> None:
    """The OpenAPI document and its two pages at FastAPI's usual paths; the document is
    built in a worker thread at its first request (rest.openapi_document)."""

    @app.get(OPENAPI_PATH, include_in_schema=False)
    async def openapi_json() -> JSONResponse:
        return JSONResponse(await openapi_document(app))

    def document_url(request: Request) -> str:
        # Behind a proxy that mounts the app under a prefix, the page fetches it there.
        return str(request.scope.get("root_path", "")).rstrip("/") + OPENAPI_PATH

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=document_url(request),
            title=f"{app.title} - Swagger UI",
            oauth2_redirect_url=SWAGGER_REDIRECT_PATH,
        )

    @app.get(SWAGGER_REDIRECT_PATH, include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        return get_redoc_html(openapi_url=document_url(request), title=f"{app.title} - ReDoc")


def _document_parameters_as_sent(app: FastAPI) -> None:
    # FastAPI documents an optional parameter as "integer or null"; on the wire it is left out.
    plain_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = openapi_parameters_without_null(plain_openapi())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


class AdmissionLimit:
    """At most ``limit`` requests under ``prefix`` run at once; the others wait their turn.

    A login storm then neither outwaits the database pool's checkout timeout nor starves the
    event loop that also answers AMI pings, FastAGI and the workers; waiting costs nothing.
    The limit is above the pool's size, so that the pool bounds a storm's database work and
    the event loop always has an admitted request to run: below it, the logins waited on
    their round trips with a fifth to two fifths of the machine idle (docs/login-storm.md,
    "Admission"). The admitted requests beyond the pool's size wait for a connection, about
    a tenth of a second at the default 64 and 20, far from the pool's 5 s timeout.
    """

    def __init__(self, app: ASGIApp, *, prefix: str, limit: int) -> None:
        self.app = app
        self.prefix = prefix
        self._slots = asyncio.Semaphore(limit)  # FIFO: the first to come is the first served

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        async with self._slots:
            await self.app(scope, receive, send)


def error_body(
    error_id: str, message: str, details: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The one shape of every error the API returns."""
    return {"error_id": error_id, "message": message, "details": details or {}}


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(GraamError)
    async def graam_error(request: Request, exc: GraamError) -> Response:
        if is_console_path(request.url.path):
            return console_error(request, exc)
        headers = (
            {"Retry-After": str(exc.details["retry_after"])}
            if exc.status_code in (429, 503) and "retry_after" in exc.details
            else None
        )
        return JSONResponse(
            error_body(exc.error_id, exc.message, exc.details),
            status_code=exc.status_code,
            headers=headers,
        )

    @app.exception_handler(sqlalchemy_errors.TimeoutError)
    async def pool_timeout(request: Request, exc: sqlalchemy_errors.TimeoutError) -> Response:
        # No pooled connection freed within the pool's time-out: the process is overloaded,
        # not broken; the client is told to come back instead of getting a 500.
        metrics.DB_POOL_TIMEOUTS.inc()
        busy = DatabaseBusy("the database is busy; try again shortly", retry_after=1)
        return await graam_error(request, busy)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        errors = [
            {"field": ".".join(str(p) for p in err.get("loc", ())), "reason": err.get("msg", "")}
            for err in exc.errors()
        ]
        if is_console_path(request.url.path):
            first = errors[0] if errors else {"field": "body", "reason": "not valid"}
            return console_error(request, Invalid(first["field"], first["reason"]))
        return JSONResponse(
            error_body("validation-failed", "the request is not valid", {"errors": errors}),
            status_code=422,
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 404 and is_console_path(request.url.path):
            return console_not_found(request)
        if exc.status_code == 400:
            # FastAPI's only 400: a body it could not parse (a broken multipart form). Bad
            # input is a 422 naming the field, like every other.
            errors = [{"field": "body", "reason": str(exc.detail)}]
            return JSONResponse(
                error_body("validation-failed", "the request is not valid", {"errors": errors}),
                status_code=422,
            )
        error_id = {404: "not-found", 405: "method-not-allowed"}.get(
            exc.status_code, f"http-{exc.status_code}"
        )
        headers = exc.headers
        if exc.status_code == 405:
            allow = allowed_methods(await openapi_document(request.app), request.url.path)
            headers = {**(headers or {}), "Allow": ", ".join(allow)}
        return JSONResponse(
            error_body(error_id, str(exc.detail)), status_code=exc.status_code, headers=headers
        )


def _install_health_routes(app: FastAPI) -> None:
    @app.get("/healthz", tags=["health"], summary="The process is alive")
    async def healthz() -> dict[str, str]:
        return {"status": "alive"}

    @app.get(
        "/readyz",
        tags=["health"],
        summary="Database reachable and AMI logged in; checks.cdr says if CDRs are degraded",
        description="A worker process also says `checks.worker`: whether it is the active "
        "worker (holds the lease); a standby answers `standby` (200) while its database is "
        "reachable.",
        responses={503: {"description": "A part is down; `checks` says which"}},
    )
    async def readyz(request: Request) -> JSONResponse:
        runtime: Runtime = request.app.state.runtime
        database = await _database_check(runtime.engine)
        worker = runtime.worker
        if worker is not None and not worker.check()["active"]:
            # A standby acts on nothing (no AMI): it is ready to take over if it reaches
            # Postgres and has not been fenced.
            checks = {"database": database, "worker": worker.check()}
            ready = all(check["ok"] for check in checks.values())
            return JSONResponse(
                {"status": "standby" if ready else "unavailable", "checks": checks},
                status_code=200 if ready else 503,
            )
        checks = {"database": database, "ami": _ami_check(runtime)}
        if worker is not None:
            checks["worker"] = worker.check()
        ready = all(check["ok"] for check in checks.values())
        status = "ready" if ready else "unavailable"
        if runtime.cdr is not None:
            # A degraded CDR pipeline (journaling, replaying) loses nothing and the API still
            # serves: said here without taking the process out of rotation.
            checks["cdr"] = runtime.cdr.check()
            if ready and not checks["cdr"]["ok"]:
                status = "degraded"
        # Configuration that has failed to reach Asterisk for longer than the grace: calls
        # still flow, but some tenant's change is not live.
        checks["config"] = await _config_check(runtime)
        if ready and not checks["config"]["ok"]:
            status = "degraded"
        return JSONResponse({"status": status, "checks": checks}, status_code=200 if ready else 503)

    @app.get(
        "/metrics",
        tags=["health"],
        summary="Prometheus metrics (with GRAAM_METRICS_TOKEN set: as a bearer token only)",
        response_class=Response,
        responses={401: {"description": "GRAAM_METRICS_TOKEN is set and was not presented"}},
    )
    async def prometheus(request: Request) -> Response:
        runtime: Runtime = request.app.state.runtime
        if not metrics_token_presented(runtime.settings, request.headers.get("authorization")):
            return JSONResponse(
                error_body("unauthorized", "/metrics needs its bearer token"),
                status_code=401,
                headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
            )
        pool = runtime.engine.pool
        metrics.DB_POOL_SIZE.set(getattr(pool, "size", lambda: 0)())
        metrics.DB_POOL_CHECKED_OUT.set(getattr(pool, "checkedout", lambda: 0)())
        return Response(generate_latest(metrics.REGISTRY), media_type=CONTENT_TYPE_LATEST)


def metrics_token_presented(settings: Settings, authorization: str | None) -> bool:
    """Whether a request may read /metrics: always without GRAAM_METRICS_TOKEN, else only
    with ``Authorization: Bearer <token>`` (compared in constant time)."""
    if settings.metrics_token is None:
        return True
    scheme, _, presented = (authorization or "").partition(" ")
    expected = settings.metrics_token.get_secret_value().strip().encode()
    return scheme.lower() == "bearer" and hmac.compare_digest(
        expected, presented.strip().encode("utf-8", "replace")
    )


async def _database_check(engine: AsyncEngine) -> dict[str, Any]:
    try:
        async with asyncio.timeout(READY_DB_TIMEOUT), engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except Exception as err:
        return {"ok": False, "error": f"{type(err).__name__}: {err}"[:300]}
    return {"ok": True}


async def _config_check(runtime: Runtime) -> dict[str, Any]:
    grace = runtime.settings.config_failure_grace
    try:
        async with asyncio.timeout(READY_DB_TIMEOUT), runtime.engine.connect() as connection:
            failing = await config_status.failing(connection)
    except Exception as err:
        return {"ok": True, "error": f"{type(err).__name__}: {err}"[:300]}
    overdue = (
        failing.oldest is not None and (datetime.now(UTC) - failing.oldest).total_seconds() > grace
    )
    check: dict[str, Any] = {
        "ok": not overdue,
        "failing_tenants": failing.tenants[:20],
        "failing_trunks": failing.trunks[:20],
        "failing_since": failing.oldest.isoformat() if failing.oldest else None,
        "grace_s": grace,
    }
    return check


def _ami_check(runtime: Runtime) -> dict[str, Any]:
    state = runtime.ami.state
    check: dict[str, Any] = {
        "ok": state.connected,
        "since": state.since.isoformat() if state.since else None,
        "reconnects": state.reconnects,
    }
    if not state.connected:
        check["error"] = state.last_error or "not connected"
    if state.asterisk_startup:
        check["asterisk_startup"] = state.asterisk_startup.isoformat()
    return check
