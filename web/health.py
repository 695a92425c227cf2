"""Liveness and readiness for load balancers and orchestrators."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify
from sqlalchemy import text

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    """The process is up."""
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz():
    """The database answers and a boundary version is active."""
    service = current_app.extensions["gridline"]
    checks = {"database": False, "boundaries": False}
    try:
        with service.db.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        checks["database"] = True
        checks["boundaries"] = service.has_active_version()
    except Exception as exc:  # any failure here means "not ready", reported, not raised
        checks["error"] = str(exc)[:200]
    ready = checks["database"] and checks["boundaries"]
    return jsonify({"status": "ready" if ready else "not ready", **checks}), 200 if ready else 503
