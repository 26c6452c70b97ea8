"""The console's login: cookie, CSRF, logout, throttling, roles and tenants, languages."""

from __future__ import annotations

import re
from datetime import timedelta

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from graam_pbx.auth.principal import Role
from graam_pbx.web.render import NAV
from graam_pbx.web.session import csrf_token
from tests.factories import PASSWORD, TenantWorld, make_world

CSRF_INPUT = re.compile(r'name="csrf_token" value="([^"]*)"')


def console_client(client: httpx.AsyncClient) -> httpx.AsyncClient:
    """A browser of its own (its own cookies) on the same app."""
    return httpx.AsyncClient(transport=client._transport, base_url="http://graam.test")


async def login_form(browser: httpx.AsyncClient) -> str:
    page = await browser.get("/login")
    assert page.status_code == 200
    match = CSRF_INPUT.search(page.text)
    assert match is not None
    return match.group(1)


async def log_in(
    browser: httpx.AsyncClient, world: TenantWorld, role: str, password: str = PASSWORD
) -> httpx.Response:
    token = await login_form(browser)
    actor = world.actor(role)
    return await browser.post(
        "/login",
        data={
            "csrf_token": token,
            "tenant": "" if role == "operator" else world.slug,
            "email": actor.email,
            "password": password,
        },
    )


async def page_csrf(browser: httpx.AsyncClient, path: str) -> str:
    page = await browser.get(path)
    match = CSRF_INPUT.search(page.text)
    assert match is not None, page.text[:500]
    return match.group(1)


async def test_login_sets_a_safe_cookie_and_logout_ends_the_session(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    world = await make_world(client, sessions)
    async with console_client(client) as browser:
        answer = await log_in(browser, world, "supervisor")
        assert answer.status_code == 303
        assert answer.headers["location"] == "/wallboard"
        cookie = answer.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=lax" in cookie
        assert "secure" not in cookie  # plain http here; https sets it
        home = await browser.get("/")
        assert home.status_code == 303 and home.headers["location"] == "/wallboard"
        # A state-changing request without the session's CSRF token is refused.
        refused = await browser.post("/preferences/locale", data={"locale": "fr"})
        assert refused.status_code == 403
        forged = await browser.post("/logout", data={"csrf_token": "forged"})
        assert forged.status_code == 403
        token = session_csrf(client, browser.cookies["graam_session"])
        chosen = await browser.post(
            "/preferences/locale", data={"locale": "fr", "csrf_token": token, "back": "/x"}
        )
        assert chosen.status_code == 303 and chosen.headers["location"] == "/x"
        # The same token in a header (scripts) works too.
        out = await browser.post("/logout", headers={"X-CSRF-Token": token})
        assert out.status_code == 303


def session_csrf(client: httpx.AsyncClient, cookie: str) -> str:
    signing_key: str = client._transport.app.state.runtime.signing_key  # type: ignore[attr-defined]
    return csrf_token(signing_key, cookie)


async def test_a_login_without_its_form_token_or_from_another_site_is_refused(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    world = await make_world(client, sessions)
    async with console_client(client) as browser:
        token = await login_form(browser)
        data = {"tenant": world.slug, "email": world.admin.email, "password": PASSWORD}
        assert (await browser.post("/login", data=data)).status_code == 403
        cross_site = await browser.post(
            "/login",
            data={**data, "csrf_token": token},
            headers={"Origin": "https://evil.example"},
        )
        assert cross_site.status_code == 403
        assert "graam_session" not in browser.cookies


async def test_wrong_passwords_are_throttled_like_the_apis(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    world = await make_world(client, sessions)
    async with console_client(client) as browser:
        statuses = [
            (await log_in(browser, world, "agent", password="not the password")).status_code
            for _ in range(6)
        ]
        assert statuses[:5] == [401] * 5
        assert statuses[5] == 429
        # The API counts the same failures: the account is throttled there too.
        api = await client.post(
            "/api/v1/auth/token",
            json={"email": world.agent.email, "password": PASSWORD, "tenant": world.slug},
        )
        assert api.status_code == 429


async def test_the_session_logs_out_for_good(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    world = await make_world(client, sessions)
    async with console_client(client) as browser:
        assert (await log_in(browser, world, "admin")).status_code == 303
        cookie = browser.cookies["graam_session"]
        form = await browser.get("/login")
        token = CSRF_INPUT.search(form.text)
        assert token is not None
        # The logout form's token is the session's, rendered on every logged-in page; the
        # login page's is another: refused.
        assert (
            await browser.post("/logout", data={"csrf_token": token.group(1)})
        ).status_code == 403
    async with console_client(client) as browser:
        browser.cookies.set("graam_session", cookie)
        out = await browser.post("/logout", data={"csrf_token": session_csrf(client, cookie)})
        assert out.status_code == 303 and out.headers["location"] == "/login"
    async with console_client(client) as browser:
        browser.cookies.set("graam_session", cookie)
        again = await browser.get("/")
        assert again.status_code == 303
        assert again.headers["location"].startswith("/login")


async def test_pages_need_a_login_and_keep_where_the_user_was_going(
    client: httpx.AsyncClient,
) -> None:
    async with console_client(client) as browser:
        answer = await browser.get("/reports?period=day")
        assert answer.status_code == 303
        assert answer.headers["location"] == "/login?next=%2Freports%3Fperiod%3Dday"


async def test_the_login_page_speaks_the_browsers_language(client: httpx.AsyncClient) -> None:
    async with console_client(client) as browser:
        french = await browser.get("/login", headers={"Accept-Language": "fr-FR,fr;q=0.9,en;q=0.5"})
        assert '<html lang="fr">' in french.text and "Mot de passe" in french.text
        english = await browser.get("/login", headers={"Accept-Language": "de, en;q=0.5"})
        assert '<html lang="en">' in english.text and "Password" in english.text
        assert "default-src 'self'" in english.headers["content-security-policy"]


def test_every_navigation_entry_names_roles_the_api_knows() -> None:
    for item in NAV:
        assert set(item.roles) <= set(Role)


async def test_a_new_login_deletes_the_users_sessions_that_ended_a_day_ago(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    from sqlalchemy import func, select, update

    from graam_pbx.auth.models import WebSession

    world = await make_world(client, sessions)
    async with console_client(client) as browser:
        assert (await log_in(browser, world, "admin")).status_code == 303
        assert (await log_in(browser, world, "admin")).status_code == 303
    async with sessions() as session, session.begin():
        rows = (
            await session.scalars(
                select(WebSession).where(WebSession.user_id == world.admin.user_id)
            )
        ).all()
        assert len(rows) == 2
        # One ended two days ago; the other is still live.
        await session.execute(
            update(WebSession)
            .where(WebSession.id == rows[0].id)
            .values(expires_at=func.now() - timedelta(days=2))
        )
    async with console_client(client) as browser:
        assert (await log_in(browser, world, "admin")).status_code == 303
    async with sessions() as session:
        left = (
            await session.scalars(
                select(WebSession.id).where(WebSession.user_id == world.admin.user_id)
            )
        ).all()
    assert rows[0].id not in left and rows[1].id in left and len(left) == 2
