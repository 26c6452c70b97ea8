"""The ``graam-pbx`` command: run, migrate, and the Asterisk sandbox."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import signal
import socket
import sys
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import asyncpg
import typer
import uvicorn
from fastapi import FastAPI
from sqlalchemy.engine import make_url

from graam_pbx.ami import AmiConfig, AmiNotConnected, AmiSupervisor, EventBus
from graam_pbx.ami.agi_auth import agi_key
from graam_pbx.app import RECORDINGS_SPOOL, Endpoints, Runtime, create_app
from graam_pbx.asterisk.applier import ConfigApplier
from graam_pbx.asterisk.reloads import ReloadFailed
from graam_pbx.auth import passwords
from graam_pbx.auth import service as auth_service
from graam_pbx.auth.principal import Principal, Role
from graam_pbx.billing import retention as billing_retention
from graam_pbx.billing.demo import seed_demo_billing
from graam_pbx.cdr.backfill import ASTERISK_LOG as ASTERISK_CDR_LOG
from graam_pbx.cdr.backfill import LOG_NAME as CDR_LOG_NAME
from graam_pbx.db import create_engine, migrate, plain_url, session_factory, startup_lock
from graam_pbx.errors import Conflict, GraamError
from graam_pbx.fields import email_address
from graam_pbx.files import configured_access
from graam_pbx.logs import configure_logging
from graam_pbx.queue_calls.worker import QUEUE_LOG
from graam_pbx.sandbox import SandboxError, instances
from graam_pbx.sandbox.asterisk import AsteriskSandbox
from graam_pbx.sandbox.stack import asterisk_sandbox, embedded_postgres
from graam_pbx.settings import ProcessRole, Settings, get_settings
from graam_pbx.sip_security import service as sip_security_service
from graam_pbx.stats import service as stats_service
from graam_pbx.tenants.flows import first_run
from graam_pbx.voicemail.spool import ASTERISK_SPOOL as VOICEMAIL_SPOOL

cli = typer.Typer(
    help="graam-pbx: the control plane beside Asterisk.", no_args_is_help=True, add_completion=False
)
asterisk_cli = typer.Typer(help="The Asterisk sandbox (a Debian sid chroot).", no_args_is_help=True)
cli.add_typer(asterisk_cli, name="asterisk")
operator_cli = typer.Typer(help="Platform operators.", no_args_is_help=True)
config_cli = typer.Typer(help="Generated Asterisk configuration.", no_args_is_help=True)
cli.add_typer(config_cli, name="config")
cli.add_typer(operator_cli, name="operator")
sip_cli = typer.Typer(
    help="SIP sources blocked after failed authentications.", no_args_is_help=True
)
cli.add_typer(sip_cli, name="sip")
stats_cli = typer.Typer(help="Call-centre statistics.", no_args_is_help=True)
cli.add_typer(stats_cli, name="stats")
billing_cli = typer.Typer(help="Billing: archived CDRs and retention.", no_args_is_help=True)
cli.add_typer(billing_cli, name="billing")

EMBEDDED_DATABASE = "graam"
# Where an existing Asterisk beside us reads generated files, unless configured.
EXTERNAL_CONFIG_DIR = Path("/etc/asterisk/graam")
EXTERNAL_SOUNDS_DIR = Path("/var/lib/asterisk/graam-sounds")


class StartupError(Exception):
    """A part could not come up; ``part`` and the message make one console line."""

    def __init__(self, part: str, message: str) -> None:
        super().__init__(message)
        self.part = part


def say(part: str, message: str) -> None:
    typer.echo(f"[{part}]".ljust(12) + message)


def fail(part: str, message: str) -> None:
    typer.echo(f"[{part}]".ljust(12) + f"error: {message}", err=True)


def main() -> None:
    cli()


# ---- run ----------------------------------------------------------------------------------


# Exit status of a worker that lost its lease (EX_TEMPFAIL): its supervisor starts it again,
# and it comes back as a standby.
FENCED_EXIT = 75


@cli.command()
def run(
    role: Annotated[
        ProcessRole | None,
        typer.Option(
            help="all: everything in one process (development); api: HTTP only, as many as "
            "wanted; worker: AMI, applier, writers, schedulers, one active at a time "
            "(default: GRAAM_ROLE, else all)"
        ),
    ] = None,
) -> None:
    """Start everything on this machine: Postgres, Asterisk, migrations, the API (role all);
    with --role api or worker, one part of a deployment (docs/processes.md)."""
    settings = get_settings()
    if role is not None:
        settings = settings.model_copy(update={"role": role})
    configure_logging(settings.log_level, settings.log_format)
    code = 0
    try:
        code = asyncio.run(_run(settings))
    except StartupError as err:
        fail(err.part, str(err))
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        pass
    say("graam-pbx", "stopped" if not code else "stopped: the worker lease was lost")
    if code:
        raise typer.Exit(code)


async def _run(settings: Settings) -> int:
    _preflight(settings)
    async with contextlib.AsyncExitStack() as stack:
        database_url = await _start_database(settings, stack)
        asterisk = await _start_asterisk(settings, stack)
        # Several processes of one deployment may start together: one migrates (and seeds a
        # first run) at a time, the others find it done.
        async with startup_lock(database_url):
            try:
                revision = await migrate(database_url)
            except (OSError, asyncpg.PostgresError) as err:
                raise StartupError("schema", f"migration failed: {err}") from err
            say("schema", f"migrated to revision {revision}")
            if settings.demo_seed:
                await _first_run(database_url, settings)
        app = create_app(settings, dataclasses.replace(asterisk, database_url=database_url))
        return await serve(app, settings, announce=True)


async def serve(app: FastAPI, settings: Settings, *, announce: bool = False) -> int:
    """Serve ``app`` until SIGINT or SIGTERM (0), or until its worker is fenced (FENCED_EXIT)."""
    server = _Server(api_server_config(app, settings))
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, server.request_exit)
    fenced = asyncio.Event()
    tasks = [asyncio.create_task(_exit_when_fenced(server, fenced))]
    if announce:
        tasks.append(asyncio.create_task(_announce(server, settings)))
    try:
        await server.serve()
    finally:
        for task in tasks:
            task.cancel()
        if announce:
            say("graam-pbx", "stopping")
    return FENCED_EXIT if fenced.is_set() else 0


async def _exit_when_fenced(server: _Server, fenced: asyncio.Event) -> None:
    await server.listening.wait()
    runtime: Runtime = server.config.app.state.runtime  # type: ignore[union-attr]
    if runtime.worker is None:
        return
    await runtime.worker.fenced.wait()
    fenced.set()
    server.request_exit()


def api_server_config(app: Any, settings: Settings, **overrides: Any) -> uvicorn.Config:
    """How uvicorn serves the API: forwarded headers believed from trusted proxies only.

    uvicorn's own default believes X-Forwarded-For from 127.0.0.1 (or $FORWARDED_ALLOW_IPS):
    anything on the machine could then claim any address, and escape the per-address
    login throttling. With no GRAAM_TRUSTED_PROXIES the headers are not read at all.
    """
    return uvicorn.Config(
        app,
        host=settings.api_host,
        port=settings.api_port,
        log_config=None,
        lifespan="on",
        proxy_headers=bool(settings.trusted_proxies),
        forwarded_allow_ips=list(settings.trusted_proxies),
        **overrides,
    )


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: ``run`` stops every part in order."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.listening = asyncio.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        self.listening.set()

    def request_exit(self) -> None:
        if self.should_exit:
            self.force_exit = True
        self.should_exit = True
        # uvicorn waits for open responses before the lifespan ends: live streams end now.
        runtime = getattr(getattr(self.config.app, "state", None), "runtime", None)
        for streams in (getattr(runtime, "live", None), getattr(runtime, "event_streams", None)):
            if streams is not None:
                streams.close_streams()


async def _announce(server: _Server, settings: Settings) -> None:
    await server.listening.wait()
    runtime: Runtime = server.config.app.state.runtime  # type: ignore[union-attr]
    address = f"http://{settings.api_host}:{settings.api_port}"
    if runtime.worker is not None:
        say("worker", f"{address}  (health: /readyz, metrics: /metrics); Ctrl-C stops it")
        say("worker", "standing by until this process holds the worker lease")
        await runtime.worker.activated.wait()
        say("worker", "active: this process holds the worker lease")
    else:
        say(
            "api",
            f"{address}  (OpenAPI: /docs, health: /readyz, metrics: /metrics); "
            "Ctrl-C stops everything",
        )
        say("console", f"{address}/  (log in as any user above)")
    try:
        await runtime.ami.wait_connected(timeout=15)
        say("ami", f"logged in; {runtime.ami.state.asterisk_version or 'Asterisk'} fully booted")
    except AmiNotConnected:
        say("ami", f"not connected yet ({runtime.ami.state.last_error}); retrying in background")


def _preflight(settings: Settings) -> None:
    """Settings that cannot work are refused before anything starts."""
    if not settings.sandbox_enabled and settings.ami_secret is None:
        raise StartupError("asterisk", "GRAAM_AMI_HOST is set but GRAAM_AMI_SECRET is not")
    _check_port_free(settings.api_host, settings.api_port)


def _check_port_free(host: str, port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as err:
            raise StartupError(
                "api", f"{host}:{port} is not free ({err.strerror}): set GRAAM_API_PORT"
            ) from err


async def _start_database(settings: Settings, stack: contextlib.AsyncExitStack) -> str:
    if settings.database_url:
        url = settings.database_url
        try:
            connection = await asyncpg.connect(plain_url(url), timeout=5)
            await connection.close()
        except (OSError, TimeoutError, asyncpg.PostgresError) as err:
            raise StartupError(
                "postgres", f"cannot reach {_safe(url)}: {err} (check GRAAM_DATABASE_URL)"
            ) from err
        say("postgres", f"using {_safe(url)}")
        return url
    server = embedded_postgres(settings)
    adopted = server.running()
    try:
        await server.start()
    except SandboxError as err:
        raise StartupError("postgres", str(err)) from err
    if not adopted:
        stack.push_async_callback(server.stop)
    await _ensure_database(server.url(), EMBEDDED_DATABASE)
    url = server.url(EMBEDDED_DATABASE)
    say(
        "postgres",
        f"embedded PostgreSQL ready at {server.config.host}:{server.config.port} "
        f"(data: {server.pgdata}{', already running' if adopted else ''})",
    )
    return url


async def _ensure_database(admin_url: str, name: str) -> None:
    connection = await asyncpg.connect(admin_url)
    try:
        if not await connection.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()


async def _start_asterisk(settings: Settings, stack: contextlib.AsyncExitStack) -> Endpoints:
    """The Asterisk part of the endpoints (``database_url`` is filled in by the caller)."""
    if not settings.sandbox_enabled:
        say("asterisk", f"using AMI at {settings.ami_host}:{settings.ami_port}")
        return Endpoints(
            database_url="",
            ami=AmiConfig.from_settings(settings),
            config_dir=settings.asterisk_config_dir or EXTERNAL_CONFIG_DIR,
            sounds_dir=settings.asterisk_sounds_dir or EXTERNAL_SOUNDS_DIR,
            cdr_csv_log=settings.cdr_csv_log or ASTERISK_CDR_LOG,
            voicemail_spool=settings.voicemail_spool_dir or VOICEMAIL_SPOOL,
            queue_log=settings.queue_log or QUEUE_LOG,
            phone_websocket=settings.sip_websocket_url,
            recordings_spool=settings.recordings_spool_dir or RECORDINGS_SPOOL,
        )
    sandbox = asterisk_sandbox(settings)
    adopted = sandbox.running_pid() is not None
    elsewhere = None if adopted else instances.find_running(settings).sandbox
    if elsewhere is not None:
        raise StartupError(
            "asterisk",
            f"a sandbox started from another folder runs ({elsewhere.state_dir}): stop it with "
            "`graam-pbx asterisk down`, or set GRAAM_DATA_DIR to its data directory",
        )
    _say_if_installing(settings)
    try:
        info = await sandbox.start()
    except SandboxError as err:
        raise StartupError("asterisk", str(err)) from err
    instances.record_started(settings, sandbox.state_dir)
    if not adopted:
        stack.push_async_callback(sandbox.stop)
    say(
        "asterisk",
        f"sandbox {info.version} booted (pid {info.pid}); AMI 127.0.0.1:"
        f"{info.ami_port}, SIP udp {settings.sip_bind}:{settings.sip_port}"
        f"{', already running' if adopted else ''}",
    )
    return Endpoints(
        database_url="",
        ami=AmiConfig.from_settings(settings, secret=info.ami_secret),
        config_dir=settings.asterisk_config_dir or info.config_dir,
        sounds_dir=settings.asterisk_sounds_dir or info.sounds_dir,
        cdr_csv_log=settings.cdr_csv_log or sandbox.log_dir / CDR_LOG_NAME,
        voicemail_spool=settings.voicemail_spool_dir or sandbox.spool_dir / "voicemail",
        queue_log=settings.queue_log or sandbox.log_dir / QUEUE_LOG.name,
        phone_websocket=settings.sip_websocket_url or sandbox.websocket_url(),
        recordings_spool=settings.recordings_spool_dir or sandbox.recordings_spool(),
    )


async def _first_run(database_url: str, settings: Settings) -> None:
    engine = create_engine(database_url, pool_size=2)
    try:
        async with session_factory(engine)() as session, session.begin():
            made = await first_run(session)
            if made is not None and made.operator_id is not None:
                operator = Principal(made.operator_id, Role.OPERATOR, None, made.operator.email)
                await seed_demo_billing(
                    session,
                    operator,
                    made.tenant.tenant_id,
                    zone=ZoneInfo(settings.billing_timezone),
                )
    finally:
        await engine.dispose()
    if made is None:
        return
    say("first run", "an empty database: made an operator and a demo tenant.")
    say("first run", "these passwords are shown once; change them (PATCH /api/v1/users/{id})")
    say("first run", f"operator  {made.operator.email}  {made.operator.password}  (no tenant)")
    for login in made.tenant.logins:
        say(
            "first run",
            f"{login.role:<9} {login.email}  {login.password}  (tenant {made.tenant.slug})",
        )
    for phone in made.tenant.phones:
        say(
            "first run",
            f"phone {phone.extension}: SIP user {phone.sip_username}  "
            f"password {phone.password}  (UDP {settings.sip_bind}:{settings.sip_port})",
        )
    if made.catalogue:
        say(
            "first run",
            f"{len(made.catalogue)} demo numbers for sale (GET /api/v1/numbers/available):",
        )
        for kind in dict.fromkeys(entry.number_type for entry in made.catalogue):
            entries = [entry for entry in made.catalogue if entry.number_type == kind]
            prices = {f"{entry.monthly_price} {entry.currency}" for entry in entries}
            say(
                "first run",
                f"  {kind:<10} {' '.join(entry.e164 for entry in entries)}  "
                f"({', '.join(sorted(prices))} a month)",
            )
    say(
        "first run",
        "billing: demo prices (plan, users, licences, numbers) and outbound rates "
        "(GET /api/v1/billing/rates); the demo tenant is invoiced at each month's end",
    )
    say(
        "first run",
        f"try it: POST http://{settings.api_host}:{settings.api_port}"
        "/api/v1/auth/token, then Authorize in /docs with the access token",
    )


def _say_if_installing(settings: Settings) -> None:
    if not (settings.asterisk_rootfs / "usr/sbin/asterisk").exists():
        say("asterisk", "installing Debian sid's asterisk with debootstrap (once, about a minute)")


def _safe(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


# ---- migrate ------------------------------------------------------------------------------


def _with_database(work: Callable[[str], Awaitable[None]]) -> None:
    """Run ``work(url)`` against the configured database, or the embedded one for a moment."""
    settings = get_settings()

    async def _go() -> None:
        async with contextlib.AsyncExitStack() as stack:
            await work(await _start_database(settings, stack))

    try:
        asyncio.run(_go())
    except StartupError as err:
        fail(err.part, str(err))
        raise typer.Exit(1) from None


@cli.command("migrate")
def migrate_command(revision: str = typer.Argument("head")) -> None:
    """Upgrade the schema (of GRAAM_DATABASE_URL, or of the embedded server)."""

    async def _migrate(url: str) -> None:
        say("schema", f"at revision {await migrate(url, revision)}")

    _with_database(_migrate)


# ---- operators ----------------------------------------------------------------------------


@operator_cli.command("create")
def operator_create(
    email: str = typer.Option(..., help="The operator's e-mail, used to log in."),
    name: str = typer.Option("Operator", help="Display name."),
) -> None:
    """Make a platform operator; its generated password is printed once."""
    try:
        address = email_address(email)
    except ValueError as err:
        fail("operator", f"{email!r}: {err}")
        raise typer.Exit(2) from None
    password = passwords.generate(address, [name])

    async def _create(url: str) -> None:
        await migrate(url)
        engine = create_engine(url, pool_size=2)
        try:
            async with session_factory(engine)() as session, session.begin():
                await auth_service.create_operator(session, address, name, password)
        except Conflict as err:
            raise StartupError("operator", err.message) from err
        finally:
            await engine.dispose()
        say("operator", f"created {address}; password (shown once): {password}")

    _with_database(_create)


# ---- generated configuration --------------------------------------------------------------


@config_cli.command("render")
def config_render(
    out: Annotated[Path, typer.Option(help="Directory to write the generated files into.")],
) -> None:
    """Render every tenant's Asterisk configuration into OUT, without touching Asterisk."""
    settings = get_settings()

    async def _render(url: str) -> None:
        engine = create_engine(url, pool_size=2)
        try:
            applier = ConfigApplier(
                engine,
                out,
                override_dir=settings.config_templates_dir,
                agi_address=(settings.agi_host, settings.agi_port),
                agi_key=agi_key(auth_service.signing_key(settings)),
                file_access=configured_access(settings),
            )
            try:
                result = await applier.apply(None)
            finally:
                await applier.stop()
        finally:
            await engine.dispose()
        say("config", f"{result.tenants} tenants: {len(result.written)} files written to {out}")

    _with_database(_render)


@config_cli.command("apply")
def config_apply() -> None:
    """Render into Asterisk's generated directory and reload only what changed."""
    settings = get_settings()

    async def _apply(url: str) -> None:
        async with contextlib.AsyncExitStack() as stack:
            asterisk = await _start_asterisk(settings, stack)
            engine = create_engine(url, pool_size=2)
            bus = EventBus()
            ami = AmiSupervisor(asterisk.ami, bus)
            await bus.start()
            await ami.start()
            try:
                await ami.wait_connected(timeout=settings.ami_connect_timeout * 2)
                assert asterisk.config_dir is not None  # noqa: S101 - always set by _start_asterisk
                applier = ConfigApplier(
                    engine,
                    asterisk.config_dir,
                    sounds_dir=asterisk.sounds_dir,
                    ami=ami,
                    override_dir=settings.config_templates_dir,
                    agi_address=(settings.agi_host, settings.agi_port),
                    agi_key=agi_key(auth_service.signing_key(settings)),
                    file_access=configured_access(settings),
                )
                try:
                    result = await applier.apply(None)
                finally:
                    await applier.stop()
            except AmiNotConnected as err:
                raise StartupError("config", f"cannot reach AMI: {err}") from err
            except ReloadFailed as err:
                raise StartupError("config", f"files written, but Asterisk: {err}") from err
            finally:
                await ami.stop()
                await bus.stop()
                await engine.dispose()
        reloads = ", ".join(sorted(result.reload_s)) or "nothing to reload"
        say(
            "config",
            f"{result.tenants} tenants: {len(result.written)} files changed; reloaded: {reloads}",
        )
        for tenant, why in sorted(result.failed.items()):
            say("config", f"tenant {tenant} kept its previous files: {why}")
        for trunk, why in sorted(result.trunks_failed.items()):
            say("config", f"trunk {trunk} kept its previous file: {why}")

    _with_database(_apply)


# ---- SIP blocks ---------------------------------------------------------------------------


@sip_cli.command("blocks")
def sip_blocks() -> None:
    """List the SIP sources blocked now (address, failures, until when, why)."""

    async def _list(url: str) -> None:
        engine = create_engine(url, pool_size=2)
        try:
            async with session_factory(engine)() as session, session.begin():
                blocks, _ = await sip_security_service.list_blocks(
                    session, active_only=True, after_id=None, limit=10_000
                )
        finally:
            await engine.dispose()
        if not blocks:
            say("sip", "no SIP source is blocked")
        for block in blocks:
            say(
                "sip",
                f"{block.address} blocked until {block.expires_at.isoformat(timespec='seconds')}"
                f": {block.reason}",
            )

    _with_database(_list)


@sip_cli.command("unblock")
def sip_unblock(
    address: str = typer.Argument(..., help="The blocked address (IPv6: any of its /64)."),
) -> None:
    """Let a blocked SIP source in again; the running control plane updates Asterisk."""

    async def _unblock(url: str) -> None:
        engine = create_engine(url, pool_size=2)
        try:
            async with session_factory(engine)() as session, session.begin():
                block = await sip_security_service.unblock(
                    session, address, by="cli", field="address"
                )
        except GraamError as err:
            raise StartupError("sip", err.message) from err
        finally:
            await engine.dispose()
        interval = get_settings().sip_block_sync_interval
        say(
            "sip",
            f"unblocked {block.address}; Asterisk lets it in within {interval:g} s (the "
            "running control plane rewrites its deny list)",
        )

    _with_database(_unblock)


# ---- statistics ---------------------------------------------------------------------------


@stats_cli.command("rebuild-rollup")
def stats_rebuild_rollup(
    tenant: Annotated[int | None, typer.Option(help="Only this tenant's queues.")] = None,
    queue: Annotated[int | None, typer.Option(help="Only this queue.")] = None,
) -> None:
    """Recompute the queue KPIs' 15-minute rollup from the queue calls (kept by the
    database as calls are written; this is for repairs and after bulk loads)."""

    async def _rebuild(url: str) -> None:
        engine = create_engine(url, pool_size=2)
        try:
            async with session_factory(engine)() as session, session.begin():
                written = await stats_service.rebuild_queue_rollup(session, tenant, queue)
        finally:
            await engine.dispose()
        say("stats", f"rollup rebuilt: {written} rows of 15 minutes")

    _with_database(_rebuild)


# ---- billing ------------------------------------------------------------------------------


@billing_cli.command("cdrs")
def billing_cdrs(
    invoice: Annotated[int, typer.Option(min=1, help="The invoice's id.")],
) -> None:
    """Write an invoice's CDRs (archived months included, checksums checked) to stdout."""
    output = sys.stdout.buffer

    async def _cdrs(url: str) -> None:
        engine = create_engine(url, pool_size=2)
        try:
            async with session_factory(engine)() as session, session.begin():
                content = await billing_retention.archived_calls(session, get_settings(), invoice)
        except GraamError as err:
            raise StartupError("billing", err.message) from err
        finally:
            await engine.dispose()
        output.write(content)
        output.flush()

    # Only the CSV goes to stdout: the progress lines go to stderr.
    with contextlib.redirect_stdout(sys.stderr):
        _with_database(_cdrs)


@billing_cli.command("retention")
def billing_retention_pass() -> None:
    """Archive the CDR months due and purge what is past retention (daily in the scheduler)."""

    async def _retention(url: str) -> None:
        engine = create_engine(url, pool_size=2)
        settings = get_settings()
        now = datetime.now(UTC)
        try:
            archived = await billing_retention.archive_months(engine, settings, now)
            report = await billing_retention.purge_expired(session_factory(engine), settings, now)
        finally:
            await engine.dispose()
        say("billing", f"archived {', '.join(m.strftime('%Y-%m') for m in archived) or 'no month'}")
        say(
            "billing",
            f"purged before {report.cutoff.isoformat()}: {report.invoices} invoice(s), "
            f"{report.rated_calls} rated call(s), {len(report.archives)} archive(s)",
        )

    _with_database(_retention)


# ---- asterisk sandbox ---------------------------------------------------------------------


@asterisk_cli.command("up")
def asterisk_up() -> None:
    """Start the sandbox in the background (installs it once) and wait for FullyBooted."""
    settings = get_settings()
    sandbox = asterisk_sandbox(settings)
    found = instances.find_running(settings)
    if found.sandbox is not None and found.sandbox.state_dir != sandbox.state_dir:
        # One started from another folder: a second would fight it for the same ports.
        say(
            "asterisk",
            f"already running (pid {found.pid}) from {found.sandbox.state_dir}; AMI "
            f"127.0.0.1:{found.sandbox.config.ami_port}; `graam-pbx asterisk down` stops it",
        )
        return
    _say_if_installing(settings)
    try:
        info = asyncio.run(sandbox.start())
    except SandboxError as err:
        fail("asterisk", str(err))
        raise typer.Exit(1) from None
    instances.record_started(settings, sandbox.state_dir)
    say(
        "asterisk",
        f"{info.version} booted (pid {info.pid}); AMI 127.0.0.1:{info.ami_port} "
        f"user {info.ami_username}; generated config in {info.config_dir}",
    )


def _running_sandbox() -> tuple[AsteriskSandbox, int]:
    """The running sandbox wherever it was started, else exit 3 saying where it looked."""
    found = instances.find_running(get_settings())
    if found.sandbox is None or found.pid is None:
        fail(
            "asterisk",
            f"the sandbox is not running (looked in {found.where()}): run `graam-pbx asterisk "
            "up`, or set GRAAM_DATA_DIR to the data directory of the one you mean",
        )
        raise typer.Exit(3)
    return found.sandbox, found.pid


@asterisk_cli.command("down")
def asterisk_down() -> None:
    """Stop the sandbox by its pid."""
    found = instances.find_running(get_settings())
    if found.sandbox is None:
        say("asterisk", f"was not running (looked in {found.where()})")
        return
    asyncio.run(found.sandbox.stop())
    say("asterisk", f"stopped (pid {found.pid}, {found.sandbox.state_dir})")


@asterisk_cli.command("status")
def asterisk_status() -> None:
    """Say whether the sandbox runs and where; exit 3 when it does not."""
    sandbox, pid = _running_sandbox()
    say(
        "asterisk",
        f"running (pid {pid}) from {sandbox.state_dir}; AMI 127.0.0.1:{sandbox.config.ami_port}",
    )


@asterisk_cli.command("cli")
def asterisk_console(
    command: str = typer.Argument(None, help="one CLI command; none: a console"),
) -> None:
    """Run an Asterisk CLI command in the sandbox, or open its console."""
    sandbox, pid = _running_sandbox()
    argv = sandbox.console_argv(pid, command)
    sys.stdout.flush()
    os.execvp(argv[0], argv)  # noqa: S606 - the console replaces this process


if __name__ == "__main__":  # pragma: no cover
    main()
