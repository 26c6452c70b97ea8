"""The Forwarding page over HTTP: an agent sets their own rules (the API reads them back), a
refusal is shown beside its rule with what was chosen kept, another user's page is an admin's
only, every role finds it in the navigation, French."""

from __future__ import annotations

import html
import re
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.factories import TenantWorld, make_world
from tests.integration.test_console_auth import console_client, log_in, page_csrf
from tests.integration.test_external_numbers_api import make_external
from tests.integration.test_user_forwarding_api import box, device, rules_url

Sessions = async_sessionmaker[AsyncSession]
ALERT = re.compile(r'role="alert"[^>]*>([^<]*)<')


def select_of(text: str, name: str) -> str:
    """The HTML of the page's select ``name``."""
    found = re.search(rf'<select id="{name}" name="{name}".*?</select>', text, re.S)
    assert found is not None, name
    return found.group(0)


def selected(text: str, name: str) -> str:
    """The value the select ``name`` shows chosen ("" when off)."""
    chosen = re.search(r'<option value="([^"]*)" selected>', select_of(text, name))
    return chosen.group(1) if chosen else ""


async def api_rules(client: httpx.AsyncClient, world: TenantWorld, user_id: int) -> dict[str, Any]:
    read = await client.get(rules_url(user_id), headers=world.admin.headers)
    assert read.status_code == 200, read.text
    body: dict[str, Any] = read.json()
    return body


async def test_an_agent_sets_their_own_rules_which_the_api_reads_back(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions)
    agent = world.agent.user_id
    await device(client, world, agent, "201")
    colleague = await device(client, world, world.supervisor.user_id, "202")
    voicemail = await box(client, world, "800", "Sales box")
    mobile = (await make_external(client, world))["id"]
    async with console_client(client) as browser:
        assert (await log_in(browser, world, "agent")).status_code == 303
        shown = await browser.get("/forwarding")
        assert shown.status_code == 200, shown.text[:300]
        assert '<a href="/forwarding" aria-current="page">Forwarding</a>' in shown.text
        # Every rule offers off, the tenant's extensions (a colleague's too, with the owner's
        # name), its voicemail boxes and its external numbers; do not disturb, boxes only.
        busy = select_of(shown.text, "busy")
        for option in (
            '<option value="">Off</option>',
            f'<option value="extension:{colleague}">202 · Supervisor</option>',
            f'<option value="voicemail:{voicemail}">800 · Sales box</option>',
            f'<option value="external:{mobile}">Night duty · +33612345678</option>',
        ):
            assert option in busy, option
        dnd = select_of(shown.text, "do_not_disturb_to")
        assert f'value="voicemail:{voicemail}"' in dnd and "Nobody: callers hear busy" in dnd
        assert "extension:" not in dnd and "external:" not in dnd
        assert all(selected(shown.text, name) == "" for name in ("busy", "unconditional"))
        csrf = await page_csrf(browser, "/forwarding")
        # Without the console's CSRF token nothing is saved.
        forged = await browser.post(f"/forwarding/{agent}", data={"busy": f"voicemail:{voicemail}"})
        assert forged.status_code == 403
        saved = await browser.post(
            f"/forwarding/{agent}",
            data={
                "csrf_token": csrf,
                "version": "0",
                "do_not_disturb": "on",
                "do_not_disturb_to": f"voicemail:{voicemail}",
                "unconditional": "",
                "busy": f"extension:{colleague}",
                "no_answer": f"external:{mobile}",
                "no_answer_seconds": "12",
                "unreachable": f"voicemail:{voicemail}",
            },
        )
        assert saved.status_code == 303, saved.text[:500]
        assert saved.headers["location"] == "/forwarding?done=saved"
        after = await browser.get(saved.headers["location"])
        assert "The forwarding rules are saved: they apply from the next call." in after.text
        assert selected(after.text, "busy") == f"extension:{colleague}"
        assert selected(after.text, "no_answer") == f"external:{mobile}"
        assert 'id="do_not_disturb" name="do_not_disturb" value="on" checked' in after.text
        assert 'name="no_answer_seconds"' in after.text and 'value="12"' in after.text
        assert "On: 800 · Sales box" in after.text
    # The API reads back what the page saved: the same service, the same rows.
    read = await client.get(rules_url(agent), headers=world.agent.headers)
    assert read.status_code == 200, read.text
    assert read.json() == {
        "user_id": agent,
        "version": 1,
        "do_not_disturb": True,
        "do_not_disturb_to": {"type": "voicemail", "id": voicemail},
        "unconditional": None,
        "busy": {"type": "extension", "id": colleague},
        "no_answer": {"type": "external", "id": mobile},
        "no_answer_seconds": 12,
        "unreachable": {"type": "voicemail", "id": voicemail},
    }
    assert read.headers["ETag"] == f'"{agent}.1"'


async def test_refusals_are_shown_beside_their_rule_keeping_what_was_chosen(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions)
    agent = world.agent.user_id
    colleague = await device(client, world, world.supervisor.user_id, "202")
    kept = await box(client, world, "800", "Sales box")
    gone = await box(client, world, "801", "Old box")
    mobile = (await make_external(client, world))["id"]
    before = await api_rules(client, world, agent)
    async with console_client(client) as browser:
        assert (await log_in(browser, world, "agent")).status_code == 303
        csrf = await page_csrf(browser, "/forwarding")
        form = {
            "csrf_token": csrf,
            "version": "0",
            "busy": f"extension:{colleague}",
            "unreachable": f"voicemail:{kept}",
            "no_answer_seconds": "20",
        }
        # The schema's refusal: the seconds are out of range.
        answer = await browser.post(
            f"/forwarding/{agent}", data={**form, "no_answer_seconds": "200"}
        )
        assert answer.status_code == 422, answer.text[:500]
        assert ALERT.findall(answer.text) == ["A whole number of seconds, from 5 to 120."]
        assert 'value="200" aria-describedby="no_answer_seconds-error' in answer.text
        assert 'aria-invalid="true"' in answer.text
        assert selected(answer.text, "busy") == f"extension:{colleague}"
        assert selected(answer.text, "unreachable") == f"voicemail:{kept}"
        # The service's refusals, field and reason: a box deleted since the page was opened,
        # and do not disturb sent elsewhere than to a box (a forged choice).
        deleted = await client.delete(
            f"/api/v1/voicemail-boxes/{gone}", headers=world.admin.headers
        )
        assert deleted.status_code == 204, deleted.text
        answer = await browser.post(
            f"/forwarding/{agent}", data={**form, "no_answer": f"voicemail:{gone}"}
        )
        assert answer.status_code == 422, answer.text[:500]
        error = re.search(r'id="no_answer-error">([^<]*)<', answer.text)
        assert error is not None, answer.text
        assert html.unescape(error.group(1)) == f"Refused: no voicemail {gone} in this tenant."
        # What was chosen stays chosen, the deleted box by its number.
        assert selected(answer.text, "no_answer") == f"voicemail:{gone}"
        assert (
            f'<option value="voicemail:{gone}" selected>Voicemail box {gone}</option>'
            in answer.text
        )
        assert selected(answer.text, "busy") == f"extension:{colleague}"
        answer = await browser.post(
            f"/forwarding/{agent}", data={**form, "do_not_disturb_to": f"external:{mobile}"}
        )
        assert answer.status_code == 422, answer.text[:500]
        assert 'id="do_not_disturb_to-error"' in answer.text
        assert "do-not-disturb sends calls to a voicemail box only" in answer.text
        # Rules changed meanwhile (a phone's *72, another page): 412, nothing overwritten.
        changed = await client.put(
            rules_url(agent), headers=world.agent.headers, json={"busy": None}
        )
        assert changed.status_code == 200, changed.text
        stale = await browser.post(f"/forwarding/{agent}", data=form)
        assert stale.status_code == 412, stale.text[:500]
        assert "These rules changed since you opened the page" in stale.text
        assert selected(stale.text, "busy") == f"extension:{colleague}"
        # The page shown again carries the current version: saving it now is accepted.
        version = re.search(r'name="version" value="(\d+)"', stale.text)
        assert version is not None and version.group(1) == "1"
    after = await api_rules(client, world, agent)
    assert after == {**before, "version": 1}


async def test_only_an_admin_opens_another_users_rules_and_every_role_finds_the_page(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    world = await make_world(client, sessions)
    other = await make_world(client, sessions)
    voicemail = await box(client, world, "800", "Sales box")
    for role in ("agent", "supervisor"):
        async with console_client(client) as browser:
            assert (await log_in(browser, world, role)).status_code == 303
            home = await browser.get("/forwarding")
            assert home.status_code == 200 and 'href="/forwarding"' in home.text
            assert 'id="user"' not in home.text  # no choice of whose rules
            csrf = await page_csrf(browser, "/forwarding")
            colleague = world.actor("supervisor" if role == "agent" else "agent")
            for victim in (world.admin.user_id, colleague.user_id):
                page = await browser.get(f"/forwarding/{victim}")
                assert page.status_code == 403
                assert "You may not see this page or do this." in page.text
                # A valid form: the service itself refuses it.
                refused = await browser.post(
                    f"/forwarding/{victim}",
                    data={
                        "csrf_token": csrf,
                        "busy": f"voicemail:{voicemail}",
                        "no_answer_seconds": "20",
                    },
                )
                assert refused.status_code == 403
                # Even a refused form says nothing of the other's rules.
                assert 'id="forwarding-now"' not in refused.text
            # A choice of whose rules leads them to a page that refuses them as well.
            chosen = await browser.get(f"/forwarding?user={world.admin.user_id}")
            assert chosen.status_code == 303
            assert (await browser.get(chosen.headers["location"])).status_code == 403
    for user_id in (world.admin.user_id, world.supervisor.user_id):
        assert (await api_rules(client, world, user_id))["version"] == 0
    async with console_client(client) as browser:
        assert (await log_in(browser, world, "admin")).status_code == 303
        own = await browser.get("/forwarding")
        assert own.status_code == 200 and 'href="/forwarding"' in own.text
        # The admin chooses whose rules: the agent's page, by the user's id.
        chosen = await browser.get(f"/forwarding?user={world.agent.user_id}")
        assert chosen.status_code == 303
        assert chosen.headers["location"] == f"/forwarding/{world.agent.user_id}"
        theirs = await browser.get(chosen.headers["location"])
        assert theirs.status_code == 200
        assert "Forwarding of Agent" in theirs.text
        assert f'<option value="{world.agent.user_id}" selected>' in theirs.text
        csrf = await page_csrf(browser, "/forwarding")
        saved = await browser.post(
            f"/forwarding/{world.agent.user_id}",
            data={"csrf_token": csrf, "busy": f"voicemail:{voicemail}", "no_answer_seconds": "20"},
        )
        assert saved.status_code == 303, saved.text[:500]
        assert saved.headers["location"] == f"/forwarding/{world.agent.user_id}?done=saved"
        # Another tenant's user does not exist for this admin.
        assert (await browser.get(f"/forwarding/{other.agent.user_id}")).status_code == 404
        assert (await browser.get("/forwarding?user=abc")).status_code == 404
    assert (await api_rules(client, world, world.agent.user_id))["busy"] == {
        "type": "voicemail",
        "id": voicemail,
    }
    # An operator acting in the tenant has no rules of its own there, and no link to them.
    async with console_client(client) as browser:
        assert (await log_in(browser, world, "operator")).status_code == 303
        tenant = await browser.get(f"/wallboard?tenant={world.tenant_id}")
        assert tenant.status_code == 200 and 'href="/forwarding' not in tenant.text
        assert (await browser.get(f"/forwarding?tenant={world.tenant_id}")).status_code == 403


async def test_the_page_in_french(client: httpx.AsyncClient, sessions: Sessions) -> None:
    world = await make_world(client, sessions)
    async with console_client(client) as browser:
        browser.headers["Accept-Language"] = "fr-FR,fr;q=0.9"
        assert (await log_in(browser, world, "agent")).status_code == 303
        shown = await browser.get("/forwarding")
        assert shown.status_code == 200
        text = html.unescape(shown.text)
        assert '<html lang="fr">' in text
        for words in (
            "<title>Renvoi d'appels · graam-pbx</title>",
            '<a href="/forwarding" aria-current="page">Renvoi d\'appels</a>',
            "Ne pas déranger : les téléphones ne sonnent jamais",
            "Personne : les appelants entendent occupé",
            "Sur occupation",
            "Enregistrer les règles",
        ):
            assert words in text, words
        csrf = await page_csrf(browser, "/forwarding")
        refused = await browser.post(
            f"/forwarding/{world.agent.user_id}",
            data={"csrf_token": csrf, "no_answer_seconds": "trois"},
        )
        assert refused.status_code == 422
        assert ALERT.findall(refused.text) == ["Un nombre entier de secondes, de 5 à 120."]
