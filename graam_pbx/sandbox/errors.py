"""One-line, actionable failures of the local servers."""

from __future__ import annotations


class SandboxError(RuntimeError):
    """A local server could not be provided; the message says how to fix it."""
