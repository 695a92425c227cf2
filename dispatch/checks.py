"""Field checks shared by the service handlers: each gives back the clean value or raises an
:class:`InputError` that names the field, before anything is written."""

from __future__ import annotations

import re
from datetime import UTC, datetime, tzinfo

from dispatch.errors import InputError

MAX_NAME = 100
MAX_ADDRESS = 500  # an address as a reporter writes it
PHONE = re.compile(r"^\+?[0-9][0-9 -]{5,19}$")
# Control characters other than tab and line breaks, and halves of surrogate pairs: no XML
# document can carry them, and no UTF-8 text a lone surrogate.
# Dates asked for are held between these: a client asking from year 1 or up to year 9999 means
# "from the start" or "to the end", and arithmetic on such dates would overflow.
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)
UNPRINTABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff\ufffe\uffff]")


def check_text(value, field: str, limit: int, required: bool = True) -> str:
    """Text of at most ``limit`` characters, stripped; "" for an optional one left out."""
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise InputError(f"{field} is required", field=field)
        return ""
    if not isinstance(value, str):
        raise InputError(f"{field} must be text", field=field)
    if len(value) > limit:
        raise InputError(f"{field} has {len(value)} characters; at most {limit} are allowed",
                         field=field)
    check_printable(value, field)
    return value.strip()


def check_printable(value: str, field: str) -> str:
    """``value``, unless it holds a character that text may not (see ``UNPRINTABLE``)."""
    found = UNPRINTABLE.search(value)
    if found:
        raise InputError(f"{field} holds the unprintable character U+{ord(found[0]):04X} at "
                         f"position {found.start() + 1}", field=field)
    return value


def check_phone(value) -> str | None:
    """A phone number (None when left out)."""
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not PHONE.match(value):
        raise InputError("phone must be digits (optionally +, spaces or dashes), 6 to 20 long",
                         field="phone")
    return value


def check_datetime(text: str, field: str, local: tzinfo) -> datetime:
    """An ISO 8601 / RFC 3339 date-time in UTC (in ``local`` time when it has no offset), held
    between EARLIEST and LATEST. RFC 3339 allows a lowercase ``t`` and ``z``."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise InputError(f"{field} {text!r} is not an ISO 8601 date-time", field=field) from None
    moment = moment if moment.tzinfo else moment.replace(tzinfo=local)
    try:
        moment = moment.astimezone(UTC)
    except OverflowError:  # before year 1 or after 9999 once in UTC
        return EARLIEST if moment.year < 5000 else LATEST
    return min(max(moment, EARLIEST), LATEST)
