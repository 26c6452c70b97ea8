"""Real servers for one machine: the Asterisk sandbox (debootstrap chroot) and embedded Postgres."""

from graam_pbx.sandbox.errors import SandboxError

__all__ = ["SandboxError"]
