"""Console page: reports, the KPIs of a period by interval, per queue and per agent.

The figures come from the services of ``/api/v1/stats`` (``period``, ``queue_figures``,
``agent_stats``) and the CSV files from their ``queue_csv`` / ``agent_csv``: a report shows what
the API gives the same user for the same period. The form is a GET, so a report is a link.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from fastapi import Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession

from graam_pbx.auth import service as auth_service
from graam_pbx.deps import DbSession
from graam_pbx.errors import Invalid
from graam_pbx.queues import service as queues_service
from graam_pbx.rest import MAX_PAGE, every_page
from graam_pbx.stats import service as stats_service
from graam_pbx.stats.kpi import STATES, Interval, QueueKpis
from graam_pbx.web.agents import STATE_LABELS
from graam_pbx.web.forms import form_id
from graam_pbx.web.i18n import Texts, _
from graam_pbx.web.render import page
from graam_pbx.web.viewer import Supervising, Viewer, console_router

router = console_router()

PERIODS = ("today", "yesterday", "last-7-days", "this-month", "last-month", "custom")
# English labels (translated when shown).
PERIOD_LABELS = {
    "today": _("Today"),
    "yesterday": _("Yesterday"),
    "last-7-days": _("Last 7 days"),
    "this-month": _("This month"),
    "last-month": _("Last month"),
    "custom": _("From … to …"),
}
INTERVAL_LABELS = {
    Interval.QUARTER: _("15 minutes"),
    Interval.HOUR: _("Hour"),
    Interval.DAY: _("Day"),
    Interval.MONTH: _("Month"),
}
QUERY_FIELDS = ("period", "interval", "queue", "agent", "from", "to")
# The service's field names (``query.x``) as the form's.
FORM_FIELDS = {"query.since": "from", "query.until": "to", "query.interval": "interval"}


@dataclass
class ReportForm:
    """What the form asked for, and what was wrong with it (field → message)."""

    period: str = "today"
    interval: Interval = Interval.HOUR
    queue_id: int | None = None
    agent_id: int | None = None
    date_from: date | None = None
    date_to: date | None = None
    raw: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    def query(self, **changes: object) -> dict[str, object]:
        """The form as query parameters (what the links and the CSV files repeat)."""
        values: dict[str, object] = {"period": self.period, "interval": self.interval.value}
        if self.period == "custom":
            values["from"] = self.raw.get("from", "")
            values["to"] = self.raw.get("to", "")
        if self.queue_id is not None:
            values["queue"] = self.queue_id
        if self.agent_id is not None:
            values["agent"] = self.agent_id
        values.update(changes)
        return {k: v for k, v in values.items() if v is not None}


def _id(form: ReportForm, name: str, texts: Texts) -> int | None:
    value = form.raw.get(name, "").strip()
    if not value:
        return None
    ident = form_id(value)
    if ident is None:
        form.errors[name] = texts.gettext("Choose one from the list.")
    return ident


def _date(form: ReportForm, name: str, texts: Texts) -> date | None:
    value = form.raw.get(name, "").strip()
    if not value:
        form.errors[name] = texts.gettext("Give a date.")
        return None
    try:
        day = date.fromisoformat(value)
    except ValueError:
        form.errors[name] = texts.gettext("Give a date as YYYY-MM-DD.")
        return None
    if not stats_service.EARLIEST_YEAR <= day.year <= stats_service.LATEST_YEAR:
        form.errors[name] = texts.gettext(
            "Give a date between {first} and {last}.",
            first=stats_service.EARLIEST_YEAR,
            last=stats_service.LATEST_YEAR,
        )
        return None
    return day


def read_form(request: Request, texts: Texts) -> ReportForm:
    """The form's fields from the query string, each checked (errors by field)."""
    params = request.query_params
    form = ReportForm(raw={k: params.get(k, "")[:40] for k in QUERY_FIELDS})
    period = form.raw["period"] or "today"
    if period not in PERIODS:
        form.errors["period"] = texts.gettext("Choose one from the list.")
        period = "today"
    form.period = period
    if period == "custom":
        form.date_from = _date(form, "from", texts)
        form.date_to = _date(form, "to", texts)
        if form.date_from and form.date_to and form.date_to < form.date_from:
            form.errors["to"] = texts.gettext("The end date is before the start date.")
    interval = form.raw["interval"]
    if interval:
        try:
            form.interval = Interval(interval)
        except ValueError:
            form.errors["interval"] = texts.gettext("Choose one from the list.")
    else:
        form.interval = _default_interval(form, texts.now().date())
    form.queue_id = _id(form, "queue", texts)
    form.agent_id = _id(form, "agent", texts)
    return form


def period_dates(form: ReportForm, today: date) -> tuple[date, date]:
    """The first day of the period and the day after its last, on the tenant's calendar."""
    if form.period == "yesterday":
        return today - timedelta(days=1), today
    if form.period == "last-7-days":
        return today - timedelta(days=6), today + timedelta(days=1)
    if form.period == "this-month":
        first = today.replace(day=1)
        return first, (first + timedelta(days=32)).replace(day=1)
    if form.period == "last-month":
        first = today.replace(day=1)
        return (first - timedelta(days=1)).replace(day=1), first
    if form.period == "custom" and form.date_from and form.date_to:
        return form.date_from, form.date_to + timedelta(days=1)
    return today, today + timedelta(days=1)


def _default_interval(form: ReportForm, today: date) -> Interval:
    first, after = period_dates(form, today)
    days = (after - first).days
    if days <= 2:
        return Interval.HOUR
    return Interval.DAY if days <= 92 else Interval.MONTH


async def report_period(
    session: AsyncSession, viewer: Viewer, form: ReportForm
) -> stats_service.Period | None:
    """The period of the form through the API's own checks; None (and the field's error)
    when they refuse it."""
    if form.errors:
        return None
    first, after = period_dates(form, viewer.texts.now().date())
    # Dates without an offset: the tenant's wall clock, as for the API's since/until.
    since = datetime(first.year, first.month, first.day)  # noqa: DTZ001
    until = datetime(after.year, after.month, after.day)  # noqa: DTZ001
    try:
        return await stats_service.period(session, viewer.scope, since, until, form.interval)
    except Invalid as err:
        name = str(err.details["errors"][0]["field"])
        form_field = FORM_FIELDS.get(name, "period")
        if form_field == "interval":
            message = viewer.texts.gettext(
                "Too many intervals for this period: choose a longer interval or a shorter period."
            )
        else:
            message = viewer.texts.gettext("This period cannot be reported on.")
        form.errors[form_field] = message
        return None


# ---- what the page shows --------------------------------------------------------------------


def _period_text(texts: Texts, span: stats_service.Period) -> str:
    # The days of the figures shown (not of a second reading of the clock).
    first = span.since.astimezone(span.zone).date()
    last = span.until.astimezone(span.zone).date() - timedelta(days=1)
    if first == last:
        return texts.date(first, "full")
    return texts.gettext("{since} to {until}", since=texts.date(first), until=texts.date(last))


def _float(value: Decimal | int | None, scale: int = 1) -> float | None:
    # Chart points only (drawn, never added up); every figure shown is formatted from Decimal.
    return None if value is None else float(value) * scale


def _tick_label(texts: Texts, start: datetime, interval: Interval) -> str:
    """A bucket's short name under a chart: its time, or its day or month."""
    if interval in (Interval.QUARTER, Interval.HOUR):
        return texts.time(start)
    return _bucket_label(texts, start, interval)


def _bucket_label(texts: Texts, start: datetime, interval: Interval) -> str:
    if interval in (Interval.QUARTER, Interval.HOUR):
        local = start.astimezone(texts.zone)
        if local.hour == 0 and local.minute == 0:
            return texts.datetime(start)
        return texts.time(start)
    local_day = start.astimezone(texts.zone).date()
    if interval is Interval.DAY:
        return texts.date(local_day)
    return texts.date(local_day, "LLL y")


def chart_data(
    texts: Texts, interval: Interval, starts: list[datetime], kpis: list[QueueKpis]
) -> dict[str, Any]:
    """The charts' points (JSON for the page's script): one value per bucket and series."""
    return {
        "labels": [_bucket_label(texts, start, interval) for start in starts],
        "ticks": [_tick_label(texts, start, interval) for start in starts],
        "locale": texts.locale,
        "series": {
            "offered": [k.offered for k in kpis],
            "answered": [k.answered for k in kpis],
            "abandoned": [k.abandoned for k in kpis],
            "short_abandoned": [k.short_abandoned for k in kpis],
            "service_level": [_float(k.service_level_answered, 100) for k in kpis],
            "abandon_rate": [_float(k.abandon_rate, 100) for k in kpis],
            "aht": [_float(k.average_handling_time) for k in kpis],
            "att": [_float(k.average_talk_time) for k in kpis],
            "asa": [_float(k.average_speed_of_answer) for k in kpis],
        },
        "names": {
            "start": texts.gettext("Start"),
            "offered": texts.gettext("Offered"),
            "answered": texts.gettext("Answered"),
            "abandoned": texts.gettext("Abandoned"),
            "short_abandoned": texts.gettext("Short abandons"),
            "service_level": texts.gettext("Service level"),
            "abandon_rate": texts.gettext("Abandon rate"),
            "aht": texts.gettext("Average handling time"),
            "att": texts.gettext("Average talk time"),
            "asa": texts.gettext("Average speed of answer"),
        },
    }


async def all_queues(session: AsyncSession, viewer: Viewer) -> list[tuple[int, str]]:
    """(id, name) of every queue of the viewer's tenant, oldest first."""
    queues = await every_page(
        lambda after: queues_service.list_queues(
            session, viewer.scope, after_id=after, limit=MAX_PAGE
        )
    )
    return [(queue.id, queue.name) for queue in queues]


async def _user_names(session: AsyncSession, viewer: Viewer) -> dict[int, str]:
    users = await every_page(
        lambda after: auth_service.list_users(
            session, viewer.scope, role=None, after_id=after, limit=MAX_PAGE
        )
    )
    return {user.id: user.display_name for user in users}


@router.get("/reports")
async def reports(request: Request, viewer: Supervising, session: DbSession) -> Response:
    texts = viewer.texts
    form = read_form(request, texts)
    queues = await all_queues(session, viewer)
    span = await report_period(session, viewer, form)
    values: dict[str, Any] = {
        "form": form,
        "queues": queues,
        # The queues' names now (the calls record Asterisk's name of the queue).
        "queue_names": dict(queues),
        "periods": [(key, texts.gettext(label)) for key, label in PERIOD_LABELS.items()],
        "intervals": [(key.value, texts.gettext(label)) for key, label in INTERVAL_LABELS.items()],
        "span": span,
    }
    if span is not None:
        # One read of the queues' sums: each queue's figures, and every queue together (with
        # one queue chosen, they are that queue's).
        figures = await stats_service.queue_figures(session, viewer.scope, span, form.queue_id)
        # Every agent's totals; the per-interval rows of the agent whose tab is open.
        agent_rows, agent_totals = await stats_service.agent_stats(
            session, viewer.scope, span, None, datetime.now(UTC)
        )
        interval_kpis, overall = figures.combined, figures.combined_total
        names = await _user_names(session, viewer)
        # The states someone spent time in (all seven are in the CSV).
        states = [s for s in STATES if any(row.kpis.seconds_by_state[s] for row in agent_totals)]
        values.update(
            intervals_kpis=list(zip(span.starts, interval_kpis, strict=True)),
            overall=overall,
            queue_totals=figures.totals,
            agent_totals=agent_totals,
            agent_rows=[row for row in agent_rows if row.agent_id == form.agent_id],
            agent_names=names,
            states=[(s, texts.gettext(STATE_LABELS[s])) for s in states],
            chart=chart_data(texts, form.interval, span.starts, interval_kpis),
            bucket_label=lambda start: _bucket_label(texts, start, form.interval),
            period_text=_period_text(texts, span),
        )
    return page(
        request,
        viewer,
        "reports.html",
        status=422 if form.errors else 200,
        title=texts.gettext("Reports"),
        **values,
    )


async def _csv_period(
    request: Request, viewer: Viewer, session: AsyncSession
) -> tuple[ReportForm, stats_service.Period]:
    form = read_form(request, viewer.texts)
    span = await report_period(session, viewer, form)
    if span is None:
        name, reason = next(iter(form.errors.items()))
        raise Invalid(f"query.{name}", reason)
    return form, span


def _csv(text: str, filename: str) -> Response:
    return Response(
        text,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.get("/reports/queues.csv")
async def queues_csv(request: Request, viewer: Supervising, session: DbSession) -> Response:
    form, span = await _csv_period(request, viewer, session)
    rows, _ = await stats_service.queue_stats(session, viewer.scope, span, form.queue_id)
    return _csv(stats_service.queue_csv(rows, span.zone), "queue-stats.csv")


@router.get("/reports/agents.csv")
async def agents_csv(request: Request, viewer: Supervising, session: DbSession) -> Response:
    form, span = await _csv_period(request, viewer, session)
    rows, _ = await stats_service.agent_stats(
        session, viewer.scope, span, form.agent_id, datetime.now(UTC)
    )
    return _csv(stats_service.agent_csv(rows, span.zone), "agent-stats.csv")
