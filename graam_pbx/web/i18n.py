"""The console's two languages: which one a request gets, its texts, and locale formatting.

English is the source language: a text is written in English in the templates and the code
(``_("Calls waiting")``) and looked up in the French catalogue, one JSON file per page under
``locales/fr/`` (merged at start). Dates, numbers and durations go through Babel for the
locale, and times are shown in the tenant's time zone.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo

from babel import dates as babel_dates
from babel import numbers as babel_numbers

from graam_pbx.auth.service import LOCALES

DEFAULT_LOCALE = LOCALES[0]
LOCALE_DIR = Path(__file__).parent / "locales"
UTC_ZONE = ZoneInfo("UTC")


def _(text: str) -> str:
    """Marks an English text at module level (labels kept in dicts): the French catalogue's
    check finds it, and the page translates it when rendered (``Texts.gettext``)."""
    return text


@cache
def catalogue(locale: str) -> dict[str, str]:
    """Every page's translations into ``locale`` (English: none needed)."""
    merged: dict[str, str] = {}
    for path in sorted((LOCALE_DIR / locale).glob("*.json")):
        for source, translated in json.loads(path.read_text(encoding="utf-8")).items():
            if merged.get(source, translated) != translated:
                raise ValueError(f"{path.name}: {source!r} translated twice, differently")
            merged[source] = translated
    return merged


def choose_locale(preference: str | None, accept_language: str | None) -> str:
    """The user's own choice, else the browser's first language we speak, else English."""
    if preference in LOCALES:
        return preference
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        primary = tag.strip().lower().split("-")[0]
        if primary in LOCALES and quality > 0:
            ranked.append((-quality, position, primary))
    return min(ranked)[2] if ranked else DEFAULT_LOCALE


@dataclass(frozen=True)
class Texts:
    """One request's language and time zone: what every template formats through."""

    locale: str = DEFAULT_LOCALE
    zone: ZoneInfo = field(default=UTC_ZONE)

    def gettext(self, text: str, **values: object) -> str:
        """``text`` in this language, with ``{name}`` placeholders filled."""
        translated = (
            text if self.locale == DEFAULT_LOCALE else catalogue(self.locale).get(text, text)
        )
        return translated.format(**values) if values else translated

    def datetime(self, value: dt.datetime | None, form: str = "short") -> str:
        """A moment in the tenant's time zone, written for the locale."""
        if value is None:
            return "—"
        return babel_dates.format_datetime(value, form, tzinfo=self.zone, locale=self.locale)

    def time(self, value: dt.datetime | None, form: str = "short") -> str:
        if value is None:
            return "—"
        return babel_dates.format_time(value, form, tzinfo=self.zone, locale=self.locale)

    def date(self, value: dt.date | None, form: str = "medium") -> str:
        if value is None:
            return "—"
        return babel_dates.format_date(value, form, locale=self.locale)

    def number(self, value: int | Decimal | None, digits: int = 0) -> str:
        if value is None:
            return "—"
        pattern = "#,##0" + ("." + "0" * digits if digits else "")
        return babel_numbers.format_decimal(value, format=pattern, locale=self.locale)

    def percent(self, value: Decimal | None, digits: int = 1) -> str:
        """A ratio (0.8 is 80 %) as a percentage for the locale."""
        if value is None:
            return "—"
        pattern = "#,##0" + ("." + "0" * digits if digits else "") + " %"
        text = babel_numbers.format_percent(value, format=pattern, locale=self.locale)
        return text if self.locale == "fr" else text.replace(" %", "%")

    def duration(self, seconds: int | Decimal | float | dt.timedelta | None) -> str:
        """A duration as a clock: ``m:ss`` under an hour, ``h:mm:ss`` above (any locale)."""
        if seconds is None:
            return "—"
        total = seconds.total_seconds() if isinstance(seconds, dt.timedelta) else float(seconds)
        whole = max(0, round(total))
        hours, rest = divmod(whole, 3600)
        minutes, secs = divmod(rest, 60)
        return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"

    def now(self) -> dt.datetime:
        return dt.datetime.now(self.zone)
