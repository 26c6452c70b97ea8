"""What the console's browser tests share: the browser, logging in, the accessibility check."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

from playwright.async_api import Page, expect

ROOT = Path(__file__).resolve().parents[3]
CHROMIUM = Path("/usr/bin/chromium")
# No background traffic: this machine's network is closed, and the tests talk to loopback only.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
ARTIFACTS = ROOT / "var" / "test-artifacts" / "screenshots"
AXE = Path(__file__).parent / "vendor" / "axe-4.14.1.min.js"
# What a user waits for at most; the tests wait on what they see, never on a fixed sleep.
SEEN_WITHIN_MS = 10_000


def screenshot_path(name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS / (re.sub(r"[^A-Za-z0-9_.-]+", "_", name)[:150] + ".png")


# The login form's words in each language: tenant, e-mail, password, log in; then log out.
LOGIN_WORDS = {
    "en": ("Tenant", "E-mail", "Password", "Log in", "Log out"),
    "fr": ("Client", "E-mail", "Mot de passe", "Se connecter", "Se déconnecter"),
}


async def log_in(
    page: Page,
    console: str,
    tenant: str | None,
    email: str,
    password: str,
    *,
    next_path: str | None = None,
    language: str = "en",
) -> None:
    """Log in through the console's form, as a user would, and wait for the landing page (or
    ``next_path``, whatever the role's landing page). ``language``: the page's, as the
    browser's locale chose it."""
    tenant_label, email_label, password_label, submit, log_out = LOGIN_WORDS[language]
    query = f"?next={quote(next_path, safe='')}" if next_path else ""
    await page.goto(f"{console}/login{query}")
    if tenant:
        await page.get_by_label(tenant_label).fill(tenant)
    await page.get_by_label(email_label).fill(email)
    await page.get_by_label(password_label).fill(password)
    await page.get_by_role("button", name=submit).click()
    await expect(page.get_by_role("button", name=log_out)).to_be_visible(timeout=SEEN_WITHIN_MS)


async def accessibility_violations(page: Page) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on the page as it is now."""
    # Evaluated through the DevTools protocol: the pages' CSP (scripts from self only) stays on.
    await page.evaluate(AXE.read_text(encoding="utf-8"))
    results: dict[str, Any] = await page.evaluate(
        "async () => await axe.run(document, {resultTypes: ['violations']})"
    )
    return [
        {
            "id": v["id"],
            "impact": v["impact"],
            "help": v["help"],
            "nodes": [n["target"] for n in v["nodes"]][:5],
        }
        for v in results["violations"]
        if v["impact"] in ("serious", "critical")
    ]


async def assert_accessible(page: Page) -> None:
    violations = await accessibility_violations(page)
    assert violations == [], violations


async def save_screenshot(page: Page, name: str) -> Path:
    """A named screenshot (the wallboard, a report), kept as a test artifact."""
    path = screenshot_path(name)
    await page.screenshot(path=str(path), full_page=True)
    return path
