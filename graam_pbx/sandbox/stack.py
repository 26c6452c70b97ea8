"""The local servers chosen by the settings: configured ones, or embedded/sandboxed ones."""

from __future__ import annotations

from graam_pbx.sandbox.asterisk import AsteriskSandbox, AsteriskSandboxConfig
from graam_pbx.sandbox.postgres import EmbeddedPostgres, EmbeddedPostgresConfig
from graam_pbx.settings import Settings


def embedded_postgres(settings: Settings) -> EmbeddedPostgres:
    """The embedded server kept under ``data_dir/postgres``."""
    return EmbeddedPostgres(
        EmbeddedPostgresConfig(
            data_dir=settings.data_dir / "postgres", port=settings.embedded_postgres_port
        )
    )


def asterisk_sandbox(settings: Settings) -> AsteriskSandbox:
    """The Asterisk sandbox kept under ``data_dir/asterisk``."""
    return AsteriskSandbox(
        AsteriskSandboxConfig(
            rootfs=settings.asterisk_rootfs,
            state_dir=settings.sandbox_dir,
            ami_port=settings.ami_port,
            ami_username=settings.ami_username,
            ami_secret=settings.ami_secret.get_secret_value() if settings.ami_secret else None,
            sip_bind=settings.sip_bind,
            sip_port=settings.sip_port,
            http_port=settings.sip_websocket_port,
            sip_media_address=settings.sip_media_address,
        )
    )
