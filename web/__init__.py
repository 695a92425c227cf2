"""The web service: a Flask app factory over the dispatch service.

Blueprints stay thin: each endpoint parses the request, calls the service layer, and formats the
answer. Errors are mapped to HTTP statuses in one place (:mod:`web.errors`).
"""

from __future__ import annotations

import functools
import json
import logging
import os
import secrets
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

from flask import Flask, current_app, g, request

from dispatch.accounts import Accounts
from dispatch.settings import Settings, make_service
from web.args import AsciiIdConverter

DEFAULTS = {
    "MAX_CONTENT_LENGTH": 16 * 1024 * 1024,
    "REPORT_RATE_LIMIT": "30 per minute",
    "SESSION_COOKIE_SAMESITE": "Lax",  # a form on another site sends no session with its post
}
# Sent with every answer: no guessing content types (an upload served as a page), no framing
# of the pages by other sites, and no full URLs in Referer headers to other sites.
SECURITY_HEADERS = {"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY",
                    "Referrer-Policy": "same-origin"}
# The Content-Security-Policy, a second line of defence should stored text ever reach a page as
# markup. Everything is served by the app itself (Leaflet included); only map tiles, when a tile
# server is configured, come from its origin, added to img-src per app. Scripts run only from the
# app's files or with the answer's nonce, which every inline <script> in the templates carries
# (folium's too), so an injected <script> or onerror= attribute does not run. Styles keep
# 'unsafe-inline': folium and Leaflet write <style> blocks and style attributes, which nonces
# cannot cover. Leaflet blanks aborted tiles with a data: image. No page evaluates strings as
# code, so there is no 'unsafe-eval'.
CONTENT_SECURITY_POLICY = {
    "default-src": "'self'", "script-src": "'self'", "style-src": "'self' 'unsafe-inline'",
    "img-src": "'self' data:", "connect-src": "'self'", "object-src": "'none'",
    "base-uri": "'none'", "form-action": "'self'", "frame-ancestors": "'none'",
}
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
    app.url_map.converters["int"] = AsciiIdConverter
    settings = Settings.from_config({k: v for k, v in app.config.items() if isinstance(k, str)})
    service = service or make_service(settings)
    if settings.auto_upgrade:
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
    app.add_template_global(csp_nonce)
    app.add_template_filter(with_nonce)

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


def csp_nonce() -> str:
    """This answer's script nonce, for ``<script nonce="{{ csp_nonce() }}">`` in templates."""
    if "csp_nonce" not in g:
        g.csp_nonce = secrets.token_urlsafe(18)
    return g.csp_nonce


def with_nonce(html: str) -> str:
    """``html`` (folium's page header) with the answer's nonce on each of its scripts."""
    return html.replace("<script", f'<script nonce="{csp_nonce()}"')


@functools.cache
def _policy(tiles) -> str:
    """The policy as sent, with the tile server's origin (if any) allowed for images and
    ``{nonce}`` where an answer's script nonce goes."""
    policy = dict(CONTENT_SECURITY_POLICY)
    origin = _tile_origin(tiles.url) if tiles else None
    if origin:
        policy["img-src"] += " " + origin
    policy["script-src"] += "{nonce}"
    return "; ".join(f"{k} {v}" for k, v in policy.items())


def _tile_origin(template: str) -> str | None:
    """The origin of a tile URL template as a CSP source: ``{s}.tiles.example`` becomes
    ``*.tiles.example``; a placeholder elsewhere in the host allows the whole scheme. A
    template without a scheme (``//host/...``) takes the page's. None for a template on this
    site (a path)."""
    parts = urlsplit(template)
    if not parts.netloc:
        return None
    host = parts.netloc.rpartition("@")[2]
    labels = host.split(".")
    if "{" in labels[0]:
        labels[0] = "*"
    if any("{" in label for label in labels):
        return f"{parts.scheme}:" if parts.scheme else "http: https:"
    return f"{parts.scheme}://" * bool(parts.scheme) + ".".join(labels)


def _security_headers(response):
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    nonce = f" 'nonce-{g.csp_nonce}'" if "csp_nonce" in g else ""
    response.headers.setdefault("Content-Security-Policy", _policy(
        current_app.extensions.get("gridline.tiles")).replace("{nonce}", nonce))
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
