"""Every text of the console exists in French: the templates' ``_("…")`` and the pages'
``gettext("…")`` are all in the French catalogue (``graam_pbx/web/locales/fr/*.json``)."""

from __future__ import annotations

import re
from pathlib import Path

from graam_pbx.web.i18n import Texts, catalogue, choose_locale

WEB = Path(__file__).resolve().parents[2] / "graam_pbx" / "web"
# _("text"), _('text'), gettext("text") — the one way texts are written.
CALLS = re.compile(r"""(?:\b_|\bgettext)\(\s*(?:"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)')""")


def console_texts() -> set[str]:
    found: set[str] = set()
    files = [*WEB.glob("templates/*.html"), *WEB.glob("*.py")]
    for path in files:
        for match in CALLS.finditer(path.read_text(encoding="utf-8")):
            text = match.group(1) if match.group(1) is not None else match.group(2)
            found.add(text.replace('\\"', '"').replace("\\'", "'"))
    return found


def test_every_console_text_has_its_french() -> None:
    missing = sorted(console_texts() - set(catalogue("fr")))
    assert missing == [], missing


def test_the_language_is_the_users_choice_else_the_browsers() -> None:
    assert choose_locale("fr", "en-GB,en") == "fr"
    assert choose_locale(None, "fr-CA,fr;q=0.9,en;q=0.8") == "fr"
    assert choose_locale(None, "de-DE, en;q=0.3, fr;q=0.5") == "fr"
    assert choose_locale(None, "fr;q=0, en") == "en"
    assert choose_locale(None, None) == "en"
    assert choose_locale("xx", "garbage;;q=abc") == "en"


def test_numbers_and_durations_follow_the_locale() -> None:
    from decimal import Decimal

    english, french = Texts("en"), Texts("fr")
    assert english.number(Decimal("12345.678"), 1) == "12,345.7"
    assert french.number(Decimal("12345.678"), 1).replace("\u202f", " ") == "12 345,7"
    assert english.percent(Decimal("0.8")) == "80.0%"
    assert french.percent(Decimal("0.8")).replace("\u202f", " ").replace("\xa0", " ") == "80,0 %"
    assert english.duration(65) == "1:05" and english.duration(3725) == "1:02:05"
    assert french.gettext("Log in") == "Se connecter"
    assert french.gettext("Too many failed logins: try again in {seconds} s.", seconds=3).endswith(
        "3 s."
    )
