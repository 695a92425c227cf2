"""Liveness and readiness for load balancers and orchestrators."""

from __future__ import annotations

import logging

from flask import Blueprint, current_app, g, jsonify
from sqlalchemy import text

bp = Blueprint("health", __name__)
log = logging.getLogger("gridline.http")


@bp.get("/healthz")
def healthz():
    """The process is up."""
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz():
    """The database answers and a boundary version is active. Why the database does not
    answer goes to the log (with the request id), not to the caller: the driver's message
    names hosts, ports and users."""
    service = current_app.extensions["gridline"]
    checks = {"database": False, "boundaries": False}
    try:
        with service.db.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        checks["database"] = True
        checks["boundaries"] = service.has_active_version()
    except Exception:  # any failure here means "not ready", logged, not raised
        log.exception("not ready (request %s)", g.get("request_id"))
        checks["error"] = "the database does not answer; the log says why"
    ready = checks["database"] and checks["boundaries"]
    return jsonify({"status": "ready" if ready else "not ready", **checks}), 200 if ready else 503
