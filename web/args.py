"""Arguments shared by the endpoints: ids in paths; and in query strings codes and names,
bounded whole numbers, and periods — runs of whole days in the district's time zone given as
``since`` and ``until`` (``YYYY-MM-DD``, both included)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from flask import request
from werkzeug.routing import IntegerConverter

from dispatch.checks import MAX_NAME, check_text
from dispatch.errors import InputError

EARLIEST, LATEST = date(1970, 1, 1), date(9999, 12, 30)
WHOLE = re.compile(r"[+-]?[0-9]{1,1000}")  # far beyond any bound, short of slow to read


class AsciiIdConverter(IntegerConverter):
    """``<int:...>`` in a path taking ASCII digits only: werkzeug's own also takes other
    scripts' digits, which would give one order several addresses."""

    regex = r"[0-9]+"


def text_arg(name: str, required: bool = False) -> str | None:
    """The code or name ``name`` from the query string (None when absent, unless
    ``required``): printable text of at most ``MAX_NAME`` characters, as no database takes
    every character in a comparison (PostgreSQL refuses NUL)."""
    return check_text(request.args.get(name), name, MAX_NAME, required=required) or None


def int_arg(name: str, default: int, low: int, high: int, clamp: bool = False) -> int:
    """The whole number ``name`` from the query string, from ``low`` to ``high`` (for an
    offset, the service's ``MAX_OFFSET``); ``default`` when it is absent. With ``clamp`` a
    number above ``high`` is taken as ``high`` rather than refused (OGC API's limit)."""
    value = whole_number(request.args.get(name, default), name)
    if clamp:
        value = min(value, high)
    if not low <= value <= high:
        raise InputError(f"{name} must be a whole number from {low} to {high}", field=name)
    return value


def whole_number(value, field: str) -> int:
    """A whole number sent as one (JSON) or as its ASCII digits (a query or form field): a
    fraction is not rounded, nor a bool taken for 0 or 1, nor ``1_000`` or other scripts'
    digits read as Python's ``int`` would."""
    if isinstance(value, str) and WHOLE.fullmatch(value.strip()):
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise InputError(f"{field} must be a whole number", field=field)


@dataclass(frozen=True)
class Period:
    since: date
    until: date

    def bounds(self, timezone) -> tuple[datetime, datetime]:
        """The period as UTC instants, the end excluded (midnight after ``until``)."""
        return tuple(datetime.combine(day, time(), tzinfo=timezone).astimezone(UTC)
                     for day in (self.since, self.until + timedelta(days=1)))

    def days(self) -> list[str]:
        """Every day of the period as ``YYYY-MM-DD``."""
        return [(self.since + timedelta(days=n)).isoformat()
                for n in range((self.until - self.since).days + 1)]


def period_from(args, today: date, default_days: int, max_days: int) -> Period:
    """The period in ``args``; by default the ``default_days`` up to ``today``. Refused when
    a date is malformed, ``since`` is after ``until``, or it spans more than ``max_days``."""
    until = _day(args, "until", today)
    since = _day(args, "since", until - timedelta(days=default_days - 1))
    if since > until:
        raise InputError(f"since ({since}) is after until ({until})", field="since")
    if (until - since).days >= max_days:
        raise InputError(f"a period may span at most {max_days} days", field="since")
    return Period(since, until)


def _day(args, field: str, default: date) -> date:
    value = args.get(field)
    if not value:
        return default
    try:
        day = datetime.strptime(value, "%Y-%m-%d").date()
    except ValueError:
        raise InputError(f"{field} must be a date written YYYY-MM-DD, not {value!r}",
                         field=field) from None
    if not EARLIEST <= day <= LATEST:
        raise InputError(f"{field} must lie between {EARLIEST} and {LATEST}", field=field)
    return day
