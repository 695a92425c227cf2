"""The web service: a Flask app factory over the dispatch service.

Blueprints stay thin: each endpoint parses the request, calls the service layer, and formats the
answer. Errors are mapped to HTTP statuses in one place (:mod:`web.errors`).
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import time
import uuid
from pathlib import Path

from flask import Flask, g, request

from dispatch.accounts import Accounts
from dispatch.settings import Settings, make_service

DEFAULTS = {
    "MAX_CONTENT_LENGTH": 16 * 1024 * 1024,
    "REPORT_RATE_LIMIT": "30 per minute",
    "SESSION_COOKIE_SAMESITE": "Lax",  # a form on another site sends no session with its post
}
# Sent with every answer: no guessing content types (an upload served as a page), no framing
# of the pages by other sites, and no full URLs in Referer headers to other sites.
SECURITY_HEADERS = {"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY",
                    "Referrer-Policy": "same-origin"}
log = logging.getLogger("gridline.http")


def create_app(config: dict | None = None, service=None) -> Flask:
    """Build the app. Settings come from ``GRIDLINE_*`` environment variables, then ``config``
    (unprefixed keys: ``DATABASE_URL``, ``INSTANCE``, ``SECRET_KEY`` ...). The database is
    migrated to the newest schema unless ``AUTO_UPGRADE`` is false. ``service`` replaces the
    configured dispatch service (for embedding and tests)."""
    app = Flask(__name__)
    app.config.update(DEFAULTS)
    app.config.from_prefixed_env("GRIDLINE")
    app.config.update(config or {})
    app.json.ensure_ascii = False
    settings = Settings.from_config({k: v for k, v in app.config.items() if isinstance(k, str)})
    service = service or make_service(settings)
    if app.config.get("AUTO_UPGRADE", True):
        service.db.upgrade()
    service.active_ttl = float(app.config.get("ACTIVE_VERSION_TTL", 2.0))
    if app.config.get("DELIVERY_WORKER", not app.testing):
        service.start_delivery_worker()
    # Reports arriving together are written together: one transaction, a few statements and
    # one commit for the lot (see dispatch.batching).
    if app.config.get("GROUP_COMMIT", not app.testing):
        service.start_group_commit()
    app.extensions["gridline"] = service
    app.extensions["gridline.accounts"] = Accounts(service.db, service.clock)
    app.config["SECRET_KEY"] = app.config.get("SECRET_KEY") or _secret_key(settings.instance)
    _request_logging(app)
    app.after_request(_security_headers)

    from web import (
        api,
        assets,
        auth,
        errors,
        health,
        i18n,
        mappages,
        maps,
        ogc,
        open311,
        openapi,
        participation,
        planner,
        point,
        ratelimit,
        reporter,
        service_orders,
        stations,
        statspage,
    )

    app.extensions["gridline.tiles"] = maps.tile_source(app.config)
    errors.init_app(app)
    auth.init_app(app)
    i18n.init_app(app)
    participation.init_app(app)
    service_orders.init_app(app)
    stations.init_app(app)
    for module in (health, point, open311, ogc, api, openapi, assets, mappages, reporter,
                   statspage, planner):
        app.register_blueprint(module.bp)
    ratelimit.init_app(app)
    return app


def _secret_key(instance: Path) -> str:
    """The session key: generated once into the instance folder, never in the repository."""
    path = instance / "secret_key"
    if not path.exists():
        instance.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
    return path.read_text().strip()


def _security_headers(response):
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def _request_logging(app: Flask) -> None:
    """One JSON log line per request, with a request id echoed in ``X-Request-ID``."""

    @app.before_request
    def start():
        g.request_id = request.headers.get("X-Request-ID") or uuid.uuid4().hex
        g.started = time.perf_counter()

    @app.after_request
    def finish(response):
        response.headers["X-Request-ID"] = g.get("request_id", "")
        if not log.isEnabledFor(logging.INFO):  # the line is not even built when unlogged
            return response
        log.info(json.dumps({
            "request_id": g.get("request_id"), "method": request.method,
            "path": request.path, "status": response.status_code,
            "ms": round((time.perf_counter() - g.get("started", time.perf_counter())) * 1000, 1),
        }))
        return response
