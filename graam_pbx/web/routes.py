"""The console in the application: its pages' routers, its static files, its error pages."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.staticfiles import StaticFiles

from graam_pbx.web import (
    account,
    agents,
    billing,
    campaigns,
    forwarding,
    login,
    my_day,
    notices,
    operator,
    phone,
    recordings,
    reports,
    support,
    wallboard,
    webhooks,
)

STATIC = Path(__file__).parent / "static"

# Every console page's router (each module's ``router``).
PAGE_ROUTERS: list[APIRouter] = [
    login.router,
    wallboard.router,
    reports.router,
    agents.router,
    recordings.router,
    my_day.router,
    phone.router,
    forwarding.router,
    account.router,
    support.router,
    operator.router,
    notices.router,
    billing.router,
    campaigns.router,
    webhooks.router,
]


def install(app: FastAPI) -> None:
    """Serve the console beside the API: pages under ``/``, files under ``/static``."""
    for router in PAGE_ROUTERS:
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
