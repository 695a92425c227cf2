"""Rate limits on report creation: per API key and per client address (429 + Retry-After).

``GRIDLINE_REPORT_RATE_LIMIT`` sets the limit, counted in fixed windows: ``30 per minute`` (the
default), ``5 per second``, ``100 per 10 minutes``, ``1000/day`` ... Counters live in the process
— a dictionary behind a lock, cheap enough to sit in front of every report — unless
``GRIDLINE_RATELIMIT_STORAGE_URI`` names a store that the workers and servers share (any store of
the ``limits`` library, e.g. ``redis://host:6379``).
"""

from __future__ import annotations

import functools
import hashlib
import math
import re
import threading
import time

from flask import current_app, request

from web.auth import bearer_token
from web.errors import TooManyRequests

REPORT_ENDPOINTS = ("open311.create_request", "api.create_report")
LIMIT = re.compile(r"^\s*(\d+)\s*(?:per|/)\s*(\d+)?\s*(second|minute|hour|day)s?\s*$")
UNITS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
SWEEP_SECONDS = 60


@functools.lru_cache(maxsize=16)
def parse_limit(text: str) -> tuple[int, int]:
    """``"30 per minute"`` → (30, 60): how many hits a window of how many seconds allows."""
    match = LIMIT.match(text or "")
    if match is None:
        raise ValueError(f"REPORT_RATE_LIMIT {text!r} is not like '30 per minute' or "
                         "'100 per 10 minutes' (second, minute, hour or day)")
    amount, count, unit = match.groups()
    return int(amount), int(count or 1) * UNITS[unit]


class LocalCounters:
    """Fixed-window counters of this process."""

    def __init__(self):
        self._lock = threading.Lock()
        self._counts: dict[str, tuple[float, int]] = {}  # key → (window end, hits)
        self._swept = time.time()

    def hit(self, key: str, amount: int, seconds: int) -> float | None:
        """Count a hit on ``key``: None if allowed, else the seconds until its window ends."""
        now = time.time()
        with self._lock:
            if now - self._swept >= SWEEP_SECONDS:  # forget the windows that are over
                self._counts = {k: v for k, v in self._counts.items() if v[0] > now}
                self._swept = now
            end, hits = self._counts.get(key, (0.0, 0))
            if end <= now:
                end, hits = (now // seconds + 1) * seconds, 0
            if hits >= amount:
                return end - now
            self._counts[key] = (end, hits + 1)
            return None


class SharedCounters:
    """Fixed-window counters in a store of the ``limits`` library, shared between processes."""

    def __init__(self, uri: str):
        from limits.storage import storage_from_string
        from limits.strategies import FixedWindowRateLimiter

        self._limiter = FixedWindowRateLimiter(storage_from_string(uri))

    def hit(self, key: str, amount: int, seconds: int) -> float | None:
        from limits import RateLimitItemPerSecond

        item = RateLimitItemPerSecond(amount, seconds)
        if self._limiter.hit(item, key):
            return None
        return max(self._limiter.get_window_stats(item, key).reset_time - time.time(), 0.0)


def init_app(app) -> None:
    """Wrap the report-creating endpoints of ``app`` in both limits."""
    uri = app.config.get("RATELIMIT_STORAGE_URI")
    counters = SharedCounters(uri) if uri else LocalCounters()
    for endpoint in REPORT_ENDPOINTS:
        app.view_functions[endpoint] = _limited(app.view_functions[endpoint], counters)


def _limited(view, counters):
    @functools.wraps(view)
    def limited(*args, **kwargs):
        text = current_app.config["REPORT_RATE_LIMIT"]
        amount, seconds = parse_limit(text)
        for scope, key in (("key", _credential()), ("address", request.remote_addr)):
            wait = counters.hit(f"reports-{scope}:{key}", amount, seconds)
            if wait is not None:
                retry_after = max(1, math.ceil(wait))
                raise TooManyRequests(f"too many reports ({text}); try again in "
                                      f"{retry_after} s", retry_after=retry_after)
        return view(*args, **kwargs)

    return limited


def _credential() -> str:
    """The caller's bearer token or Open311 api_key (a JSON body has no form to parse) as it is
    checked, spaces around it dropped, and hashed (no token is kept in the counters' storage);
    else its address."""
    token = bearer_token() or (None if request.is_json else
                               (request.form.get("api_key") or "").strip() or None)
    if token:
        return "token:" + hashlib.sha256(token.encode()).hexdigest()
    return f"address:{request.remote_addr}"
