"""The campaigns API: one router per area."""

from fastapi import APIRouter

from graam_pbx.campaigns.api import calls, campaigns, contacts, dispositions

ROUTERS: list[APIRouter] = [
    contacts.router,
    dispositions.router,
    campaigns.router,
    calls.router,
]
