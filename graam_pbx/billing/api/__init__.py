"""Billing's HTTP API, one router per area, all under ``/api/v1/billing`` (tag ``billing``)."""

from fastapi import APIRouter

from graam_pbx.billing.api import (
    accounts,
    documents,
    invoices,
    payments,
    prices,
    rates,
    rating,
    retention,
    termination,
)

ROUTERS: list[APIRouter] = [
    prices.router,
    rates.router,
    rating.router,
    accounts.router,
    invoices.router,
    documents.router,
    payments.router,
    termination.router,
    retention.router,
]
