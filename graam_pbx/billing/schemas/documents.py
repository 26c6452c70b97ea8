"""Billing API schemas: documents (files, described for the OpenAPI document)."""

from __future__ import annotations

from typing import Any, Final

from graam_pbx.rest import error_responses


def file_responses(media_type: str, description: str) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries of a route answering a file of ``media_type`` (and its errors)."""
    return {
        200: {"content": {media_type: {}}, "description": description},
        **error_responses(401, 403, 404, 409, 422),
    }


HTML: Final = file_responses("text/html", "The invoice as an HTML page in its language.")
PDF: Final = file_responses(
    "application/pdf", "The invoice as a PDF/A-3 with its Factur-X XML embedded."
)
XML: Final = file_responses(
    "application/xml", "The invoice's Factur-X XML (CII, EN 16931 profile)."
)
CSV: Final = file_responses("text/csv", "Every rated call the invoice bills, one row each.")
