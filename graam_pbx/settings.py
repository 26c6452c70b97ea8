"""Every setting of the control plane, read once from the environment (prefix ``GRAAM_``)."""

from __future__ import annotations

import ipaddress
import os
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


def _default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "graam-pbx"


class SandboxMode(StrEnum):
    AUTO = "auto"  # sandbox unless GRAAM_AMI_HOST names an existing Asterisk
    ON = "on"
    OFF = "off"


class LogFormat(StrEnum):
    TEXT = "text"
    JSON = "json"


def _written_networks(
    value: object,
) -> list[tuple[str, ipaddress.IPv4Network | ipaddress.IPv6Network]] | None:
    """Comma-separated text or a list: each item as written and as the network it names; None
    for another type (pydantic then says what is wrong)."""
    if isinstance(value, str):
        value = [item for item in (part.strip() for part in value.split(",")) if item]
    if not isinstance(value, list):
        return None
    networks = []
    for item in value:
        written = str(item).strip()
        try:
            networks.append((written, ipaddress.ip_network(written, strict=False)))
        except ValueError:
            raise ValueError(f"{item!r} is not an IP address or network (CIDR)") from None
    return networks


class ProcessRole(StrEnum):
    """What a `graam-pbx run` process does."""

    ALL = "all"
    API = "api"
    WORKER = "worker"


class Settings(BaseSettings):
    """One place for configuration; the README's table lists every field."""

    model_config = SettingsConfigDict(env_prefix="GRAAM_", extra="ignore")

    data_dir: Path = Field(Path("var"), description="Runtime state: embedded Postgres, sandbox.")
    database_url: str | None = Field(
        None, description="postgresql:// URL of an existing server; unset runs embedded Postgres."
    )
    embedded_postgres_port: int = Field(55432, description="Loopback port of embedded Postgres.")
    db_pool_size: int = Field(
        20, ge=2, description="Connections the database pool opens at most, and keeps."
    )

    role: ProcessRole = Field(
        ProcessRole.ALL,
        description="all (development: everything in one process), api (HTTP only, run "
        "as many as wanted) or worker (AMI, applier, CDR and event writers, schedulers; one "
        "active at a time through a Postgres lease, the others stand by).",
    )
    worker_lease_interval: float = Field(
        1.0, gt=0, description="Seconds between a standby worker's tries to take the lease."
    )
    worker_name: str = Field(
        "",
        max_length=48,
        description="This worker's name as the lease holder (pg_stat_activity, /readyz); "
        "host:pid when empty. Workers in containers sharing the host's network (one host "
        "name, pid 1 each) need one each.",
    )
    asterisk_db_url: SecretStr | None = Field(
        None,
        description="postgresql:// URL Asterisk's realtime (res_config_pgsql) reads SIP "
        "endpoints with; unset: the control plane's database, as a generated role limited "
        "to the SIP views.",
    )

    ami_host: str | None = Field(
        None, description="Host of an existing Asterisk's AMI; unset runs the Asterisk sandbox."
    )
    ami_port: int = Field(5038, description="AMI port (of the sandbox too).")
    ami_username: str = Field("graam", description="AMI user name.")
    ami_secret: SecretStr | None = Field(
        None, description="AMI secret; the sandbox generates one under data_dir when unset."
    )
    ami_ping_interval: float = Field(5.0, description="Seconds between AMI pings.")
    ami_ping_timeout: float = Field(3.0, description="Seconds before an unanswered ping drops.")
    ami_action_timeout: float = Field(10.0, description="Seconds before any AMI action fails.")
    ami_connect_timeout: float = Field(5.0, description="Seconds for TCP connect and login.")
    ami_backoff_max: float = Field(5.0, description="Cap of the reconnect back-off, seconds.")

    asterisk_sandbox: SandboxMode = Field(
        SandboxMode.AUTO, description="auto, on or off: run Asterisk in a debootstrap chroot."
    )
    asterisk_rootfs: Path = Field(
        default_factory=lambda: _default_cache_dir() / "asterisk-sid",
        description="Cached Debian sid root with the asterisk package (made once).",
    )
    asterisk_config_dir: Path | None = Field(
        None, description="Where generated config is written; the sandbox's own when unset."
    )
    asterisk_sounds_dir: Path | None = Field(
        None,
        description="Where tenants' prompts are written (Asterisk reads them as "
        "/var/lib/asterisk/graam-sounds); the sandbox's own when unset.",
    )
    nodes_files_dir: Path | None = Field(
        None,
        description="Root of the other Asterisk nodes' files: node N's generated configuration "
        "in N/config, its prompts in N/sounds (each mounted where that node reads them), and "
        "its Asterisk log directory in N/log (read by the CDR and queue-call backfills); "
        "unset: only the configured Asterisk's files are written and read.",
    )
    config_templates_dir: Path | None = Field(
        None, description="Operator's template overrides, searched before the shipped ones."
    )
    asterisk_group: str = Field(
        "asterisk",
        description="Group Asterisk runs as: generated files (they hold secrets) are 0640 with "
        "it; empty, or unset and no such group: 0600, the control plane's user only.",
    )
    sip_port: int = Field(5060, description="UDP port of the sandbox's SIP transport.")
    sip_bind: str = Field("127.0.0.1", description="Address the sandbox's SIP transport binds.")
    sip_websocket_port: int | None = Field(
        8088,
        description="Port of the sandbox's HTTP server on sip_bind, where browser phones' "
        "SIP over WebSocket is (path /ws); none: no browser phones.",
    )
    sip_websocket_url: str | None = Field(
        None,
        pattern=r"^wss?://[^\s/]+(/\S*)?$",
        description="Where browsers reach Asterisk's SIP WebSocket (the console's phone), as "
        "they see it: wss://… behind a TLS proxy; unset: ws://sip_bind:sip_websocket_port/ws "
        "for the sandbox, none for an Asterisk of its own.",
    )
    sip_media_address: str | None = Field(
        None,
        description="Address the sandbox's RTP binds and announces in SDP; sip_bind when unset.",
    )
    sip_block_threshold: int = Field(
        20,
        ge=1,
        description="Failed SIP authentications from one source within sip_block_window "
        "that block it.",
    )
    sip_block_window: float = Field(
        600.0, gt=0, description="Seconds over which failed SIP authentications are counted."
    )
    sip_block_duration: float = Field(
        3600.0, gt=0, description="Seconds a blocked SIP source stays blocked."
    )
    sip_block_allow: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Addresses or networks (comma-separated) never blocked, besides every "
        "trunk's own addresses.",
    )
    sip_edge_rpc_socket: Path | None = Field(
        None,
        description="The SIP edge's JSON-RPC datagram socket (Kamailio's EDGE_RPC_SOCKET): "
        "nodes added, removed or readdressed through the API make the edge reload its "
        "dispatcher. Unset: no edge to tell.",
    )
    sip_block_sync_interval: float = Field(
        5.0,
        gt=0,
        description="Seconds between reads of the SIP blocks (expiries, changes by another "
        "process) into Asterisk's deny list.",
    )

    api_host: str = Field("127.0.0.1", description="Address the admin API binds.")
    api_port: int = Field(8000, description="Port of the admin API.")
    metrics_token: SecretStr | None = Field(
        None,
        description="When set, /metrics answers only requests with "
        "'Authorization: Bearer <this token>' (401 otherwise).",
    )

    agi_host: str = Field(
        "127.0.0.1",
        description="Address the FastAGI server binds; the dialplan's feature codes dial it.",
    )
    agi_port: int = Field(4573, description="Port of the FastAGI server (agents' phone codes).")
    agent_unreachable_grace: float = Field(
        60.0, description="Seconds a device may stay unreachable before its session ends."
    )
    agent_max_session: float = Field(
        12 * 3600.0, description="Seconds after which an agent's session ends by itself."
    )
    trunk_resolve_interval: float = Field(
        300.0, gt=0, description="Seconds between lookups of each trunk's host name."
    )
    trunk_resolve_timeout: float = Field(
        5.0, gt=0, description="Seconds one lookup of a trunk's host name may take."
    )
    agent_sweep_interval: float = Field(
        5.0, description="Seconds between checks of session limits and licence gauges."
    )
    agent_reconcile_interval: float = Field(
        60.0, description="Seconds between full comparisons of queue members with sessions."
    )
    agent_session_concurrency: int = Field(
        64,
        ge=1,
        description="Agent login, logout and pause requests handled at once; others queue. "
        "Above db_pool_size, so that a storm keeps every pooled connection busy.",
    )

    secret_key: SecretStr | None = Field(
        None, description="Key signing access tokens; generated under data_dir when unset."
    )
    access_token_ttl: int = Field(900, description="Seconds an access token is valid.")
    refresh_token_ttl: int = Field(30 * 86400, description="Seconds a refresh token is valid.")
    web_session_ttl: int = Field(
        12 * 3600, ge=60, description="Seconds a console login lasts (then the user logs in again)."
    )
    login_max_failures: int = Field(
        5, ge=1, description="Failed logins of one account within login_window before throttling."
    )
    login_max_failures_per_address: int = Field(
        20,
        ge=1,
        description="Failed logins from one address within login_window before throttling.",
    )
    login_window: int = Field(
        900, ge=1, description="Seconds over which failed logins are counted."
    )
    login_concurrency: int = Field(
        4, ge=1, description="Password verifications at once per process; other logins wait."
    )
    login_queue_timeout: float = Field(
        5.0,
        gt=0,
        description="Seconds a login waits for its turn before a 503 with Retry-After.",
    )
    trusted_proxies: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Addresses or networks of reverse proxies whose X-Forwarded-For and "
        "X-Forwarded-Proto are believed (comma-separated); none by default.",
    )
    demo_seed: bool = Field(
        True, description="On an empty database, create an operator and a demo tenant."
    )

    cdr_dir: Path | None = Field(
        None, description="The CDR writer's journal, dead letters and checkpoint; data_dir/cdr."
    )
    cdr_csv_log: Path | None = Field(
        None,
        description="Asterisk's CSV log of CDRs as this host sees it (backfill); the sandbox's "
        "when unset, else /var/log/asterisk/graam-cdr.csv.",
    )
    cdr_batch_size: int = Field(5000, ge=1, description="CDRs written per batch at most.")
    cdr_batch_delay: float = Field(
        0.1, gt=0, le=0.2, description="Seconds a CDR waits for its batch to fill, at most."
    )
    cdr_journal_max_bytes: int = Field(
        1 << 30, ge=1 << 20, description="Bound of the local CDR journal, bytes."
    )
    cdr_checkpoint_interval: float = Field(
        60.0, gt=0, description="Seconds between checkpoints of the CSV log read so far."
    )
    queue_calls_dir: Path | None = Field(
        None, description="The queue-call writer's queue_log checkpoint; data_dir/queue-calls."
    )
    queue_log: Path | None = Field(
        None,
        description="Asterisk's queue_log as this host sees it (backfill of queue calls); the "
        "sandbox's when unset, else /var/log/asterisk/queue_log.",
    )
    queue_calls_backfill_interval: float = Field(
        60.0, gt=0, description="Seconds between reads of queue_log after the checkpoint."
    )
    queue_metrics_per_queue: bool = Field(
        True,
        description="Queue gauges labelled by tenant and queue; false: one series for all.",
    )
    queue_metrics_interval: float = Field(
        5.0, gt=0, description="Seconds between QueueStatus reads that refresh the queue gauges."
    )
    config_failure_grace: float = Field(
        60.0,
        ge=0,
        description="Seconds a configuration change may fail to apply (render or reload) "
        "before /readyz says degraded.",
    )

    voicemail_spool_dir: Path | None = Field(
        None,
        description="Asterisk's voicemail spool as this host sees it (messages are read there); "
        "the sandbox's spool/voicemail when unset, else /var/spool/asterisk/voicemail.",
    )
    voicemail_scan_interval: float = Field(
        60.0, gt=0, description="Seconds between scans for messages still to e-mail (retries)."
    )
    voicemail_mail_max_age: float = Field(
        86400.0, gt=0, description="Seconds after which a message not yet e-mailed is not sent."
    )
    recordings_spool_dir: Path | None = Field(
        None,
        description="Where Asterisk's MixMonitor writes recordings (its monitor spool's graam/), "
        "as this host sees it; the sandbox's spool/monitor/graam when unset, else "
        "/var/spool/asterisk/monitor/graam.",
    )
    recordings_dir: Path | None = Field(
        None, description="The recordings store (a local directory); data_dir/recordings."
    )
    recordings_scan_interval: float = Field(
        30.0, gt=0, description="Seconds between looks at the spool besides hang-ups."
    )
    recordings_purge_interval: float = Field(
        3600.0, gt=0, description="Seconds between purges of recordings past retention."
    )
    webhooks_allowed_networks: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Networks webhooks may be delivered to although they are private, loopback "
        "or otherwise not public (comma-separated CIDRs); none by default: only public "
        "addresses.",
    )
    webhooks_retry_base: float = Field(
        10.0,
        gt=0,
        description="Seconds before a failed webhook delivery's first retry; each next one "
        "waits twice as long (at most an hour).",
    )
    webhooks_retry_for: float = Field(
        86400.0,
        gt=0,
        description="Seconds a webhook delivery is retried before it is dead (and its endpoint, "
        "when nothing reached it meanwhile, disabled).",
    )
    webhooks_timeout: float = Field(
        10.0, gt=0, le=60, description="Seconds an endpoint has to answer a webhook delivery."
    )
    webhooks_concurrency: int = Field(
        100, ge=1, le=1000, description="Webhook deliveries in flight at once, all endpoints."
    )
    smtp_host: str | None = Field(
        None, description="SMTP relay for every e-mail (voicemail, support); unset: none sent."
    )
    smtp_port: int = Field(25, ge=1, le=65535, description="Port of the SMTP relay.")
    smtp_username: str | None = Field(None, description="SMTP login; unset: no AUTH.")
    smtp_password: SecretStr | None = Field(None, description="SMTP password.")
    smtp_starttls: bool = Field(False, description="Upgrade the connection with STARTTLS.")
    smtp_from: str = Field(
        "graam-pbx@localhost", description="Sender address of voicemail e-mails."
    )
    smtp_timeout: float = Field(30.0, gt=0, description="Seconds for one SMTP conversation.")
    support_email: str | None = Field(
        None,
        description="The operator's support address: new support requests and clients' "
        "messages are e-mailed there; unset: said once in the log, nothing sent.",
    )

    billing_timezone: str = Field(
        "Europe/Paris",
        description="The clock of billing: a month (its calls, its fixed part) and the month-end "
        "invoicing run from midnight to midnight there.",
    )
    billing_interval: float = Field(
        60.0,
        gt=0,
        description="Seconds between the billing scheduler's passes (rating new calls, month-end "
        "invoices, dunning, invoice e-mails).",
    )
    billing_archive_dir: Path | None = Field(
        None, description="Where archived months of CDRs are written; data_dir/archive when unset."
    )
    cdr_archive_after_months: int = Field(
        13,
        ge=2,
        description="Months a month of CDRs stays in Postgres before it is archived to a file.",
    )
    billing_retention_years: int = Field(
        10,
        ge=10,
        description="Years billing data are kept from their invoice's date (Code de commerce "
        "L123-22), then purged.",
    )
    seller_name: str = Field("graam-pbx operator", description="The operator's legal name.")
    seller_address: str = Field(
        "1 rue de l'Exemple, 75001 Paris", description="The operator's address (invoices)."
    )
    seller_country: str = Field("FR", description="The operator's country (ISO 3166 alpha-2).")
    seller_siren: str = Field("000000000", description="The operator's SIREN (9 digits).")
    seller_vat_number: str = Field(
        "FR00000000000", description="The operator's intra-community VAT number."
    )
    seller_legal_form: str = Field(
        "SAS au capital de 10 000 EUR", description="The operator's legal form and capital."
    )
    seller_iban: str | None = Field(None, description="The account invoices are paid to.")

    dialer_interval: float = Field(
        1.0,
        gt=0,
        le=15,
        description="Seconds between the campaign dialer's decisions (each running campaign's "
        "pacing is recomputed at least every 15 s).",
    )
    dialer_lease_seconds: float = Field(
        15.0,
        ge=3,
        description="How long a dialer holds a running campaign without renewing its lease "
        "(Postgres) before another dialer may take it over.",
    )
    dialer_node: str = Field(
        "",
        description="This dialer's name in campaign leases; the host name when empty (a restart "
        "on the same host takes its campaigns back at once).",
    )
    dialer_calls_per_licence: int = Field(
        3,
        ge=1,
        le=10,
        description="Campaign calls a tenant may have in progress per licensed agent (all its "
        "campaigns together; each campaign also has its own cap).",
    )

    log_level: str = Field("INFO", description="Python log level.")
    log_format: LogFormat = Field(LogFormat.TEXT, description="text (key=value) or json.")

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _proxy_networks(cls, value: object) -> object:
        # Each as ipaddress writes it (uvicorn compares written-out networks strictly):
        # "10.0.0.7/8" is "10.0.0.0/8"; names and "*" are refused, not silently ignored.
        networks = _written_networks(value)
        if networks is None:
            return value
        return [
            str(network.network_address)
            if network.num_addresses == 1 and "/" not in written
            else str(network)
            for written, network in networks
        ]

    @field_validator("webhooks_allowed_networks", mode="before")
    @classmethod
    def _webhook_networks(cls, value: object) -> object:
        networks = _written_networks(value)
        return value if networks is None else [str(network) for _, network in networks]

    @property
    def webhooks_allowed(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        return [ipaddress.ip_network(item) for item in self.webhooks_allowed_networks]

    @field_validator("sip_block_allow", mode="before")
    @classmethod
    def _sip_allow_networks(cls, value: object) -> object:
        networks = _written_networks(value)
        return value if networks is None else [str(network) for _, network in networks]

    @property
    def sip_block_allow_networks(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        return [ipaddress.ip_network(item) for item in self.sip_block_allow]

    @field_validator("metrics_token")
    @classmethod
    def _long_metrics_token(cls, value: SecretStr | None) -> SecretStr | None:
        # An empty or short token would be guessed (or match an empty "Bearer ").
        if value is not None and len(value.get_secret_value().strip()) < 16:
            raise ValueError("GRAAM_METRICS_TOKEN must be at least 16 characters")
        return value

    @property
    def sandbox_enabled(self) -> bool:
        if self.asterisk_sandbox is SandboxMode.AUTO:
            return self.ami_host is None
        return self.asterisk_sandbox is SandboxMode.ON

    @property
    def sandbox_dir(self) -> Path:
        return self.data_dir / "asterisk"

    @property
    def cdr_state_dir(self) -> Path:
        return self.cdr_dir or self.data_dir / "cdr"

    @property
    def queue_calls_state_dir(self) -> Path:
        return self.queue_calls_dir or self.data_dir / "queue-calls"

    @property
    def recordings_path(self) -> Path:
        return self.recordings_dir or self.data_dir / "recordings"

    @property
    def billing_archive_path(self) -> Path:
        return self.billing_archive_dir or self.data_dir / "archive"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read from the environment once."""
    return Settings()
