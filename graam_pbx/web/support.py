"""Console page(s): support (being built)."""

from __future__ import annotations

from graam_pbx.web.viewer import console_router

router = console_router()
