"""The statistics page ``/stats`` and its CSV export ``/stats.csv``: closure rate, on-time rate
and volume of work orders over a period, by street or by department.

Both are public and read only, because they show aggregates of work orders and never a person.
The figures are the service's own (:meth:`dispatch.services.Service.stats`); this module only
picks the period, names the groups and draws them. A period is a run of calendar days in the
district's time zone, ``since`` and ``until`` both included.
"""

from __future__ import annotations

from dataclasses import astuple, dataclass

from flask import Blueprint, current_app, render_template, request

from dispatch.errors import InputError
from web import args, charts
from web.formats import csv_response
from web.i18n import gettext as _
from web.i18n import locale

bp = Blueprint("statspage", __name__)

BY = ("street", "department")
DEFAULT_DAYS = 90
MAX_DAYS = 366  # one chart column per day: a year, leap or not, and no more


@dataclass(frozen=True)
class Period(args.Period):
    """What to count: orders created from ``since`` to ``until`` (local days), grouped ``by``."""

    by: str = "street"


FIELDS = ("reported", "reports", "closed", "closure_rate", "on_time_rate",
          "median_hours_to_close", "reopened", "whistles", "whistles_answered_on_time")


def service():
    return current_app.extensions["gridline"]


def period_from(query) -> Period:
    """The period and grouping asked for in the query string (default: the last 90 days up to
    today, by street)."""
    by = query.get("by") or "street"
    if by not in BY:
        raise InputError(f"by must be one of {', '.join(BY)}", field="by")
    today = service().clock().astimezone(service().timezone).date()
    return Period(*astuple(args.period_from(query, today, DEFAULT_DAYS, MAX_DAYS)), by=by)


def group_rows(period: Period, found: list[dict] | None = None) -> list[dict]:
    """The service's figures per street or department (``found``, if already worked out),
    each with its ``code`` and ``name``."""
    if found is None:
        found = service().stats(period.by, *period.bounds(service().timezone))
    names = _names(period.by)
    rows = []
    for figures in found:
        code = figures.pop(period.by)
        code = code if isinstance(code, str) else None  # orders outside every street
        rows.append({"code": code,
                     "name": names.get(code, code) if code else _("Not in any street"),
                     **figures})
    return rows


def _names(by: str) -> dict[str, str]:
    """Street names from the active boundary version, or department names in the page's
    language from the catalogue."""
    if by == "department":
        english = locale() == "en"
        return {code: d.name_en if english else d.name
                for code, d in service().catalogue.departments.items()}
    if not service().has_active_version():
        return {}
    streets = service().active_resolver()[1].boundaries.streets
    return dict(zip(streets["code"], streets["name"], strict=True))


@bp.get("/stats")
def page():
    """Overall figures, a chart of volume per day, rate charts per group and the table."""
    period = period_from(request.args)
    found = service().stats_by((period.by, None, "day"), *period.bounds(service().timezone))
    rows = group_rows(period, found[period.by])
    [overall] = found[None] or [None]
    per_day = {r["day"]: r for r in found["day"]}
    days = period.days()
    volume = charts.columns(
        "volume-chart", days,
        [("reported", _("Reported"), [per_day.get(d, {}).get("reported", 0) for d in days]),
         ("closed", _("Closed orders"), [per_day.get(d, {}).get("closed", 0) for d in days])],
        caption=_("Work orders per day"))
    group = _("street") if period.by == "street" else _("department")
    closure = charts.rate_bars(
        "closure-chart", [(r["name"], r["closure_rate"]) for r in rows],
        caption=_("Closure rate by {group}", group=group), missing="–")
    on_time = charts.rate_bars(
        "on-time-chart", [(r["name"], r["on_time_rate"]) for r in rows],
        caption=_("On-time rate by {group}", group=group), missing=_("none closed"))
    query = {"by": period.by, "since": period.since.isoformat(),
             "until": period.until.isoformat()}
    return render_template("stats.html", title=_("Statistics"), period=period, rows=rows,
                           overall=overall, volume=volume, closure=closure, on_time=on_time,
                           group=group, query=query, by_choices=BY, percent=charts.percent)


@bp.get("/stats.csv")
def export():
    """The table of the page as CSV: one row per group, rates as fractions, blanks where a
    figure cannot be measured. The file starts with a byte-order mark so that spreadsheet
    programs read the Chinese names as UTF-8."""
    period = period_from(request.args)
    rows = ([row["code"] or "", row["name"], *(row[f] for f in FIELDS)]
            for row in group_rows(period))
    return csv_response([period.by, "name", *FIELDS], rows,
                        f"gridline-stats-{period.by}-{period.since}-{period.until}.csv")
