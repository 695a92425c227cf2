"""Rate limits on report creation: per API key and per client address (429 + Retry-After).

Each app gets its own Flask-Limiter; counters live in the process unless
``GRIDLINE_RATELIMIT_STORAGE_URI`` points at a shared store. ``GRIDLINE_REPORT_RATE_LIMIT``
sets the limit (default 30 per minute).
"""

from __future__ import annotations

from flask import current_app, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

REPORT_ENDPOINTS = ("open311.create_request", "api.create_report")


def _limit() -> str:
    return current_app.config["REPORT_RATE_LIMIT"]


def _credential() -> str:
    return (request.headers.get("Authorization") or request.form.get("api_key")
            or f"address:{get_remote_address()}")


def init_app(app) -> Limiter:
    """Wrap the report-creating endpoints of ``app`` in both limits."""
    limiter = Limiter(get_remote_address, app=app, headers_enabled=True,
                      storage_uri=app.config.get("RATELIMIT_STORAGE_URI", "memory://"))
    for endpoint in REPORT_ENDPOINTS:
        view = app.view_functions[endpoint]
        view = limiter.limit(_limit, key_func=_credential, scope="reports-key")(view)
        view = limiter.limit(_limit, key_func=get_remote_address, scope="reports-address")(view)
        app.view_functions[endpoint] = view
    return limiter
