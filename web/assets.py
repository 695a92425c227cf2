"""Leaflet served by the app itself (from the ``xstatic-leaflet`` package), so maps work on a
network with no internet; the app's own CSS and JavaScript are in ``web/static``."""

from __future__ import annotations

from flask import Blueprint, send_from_directory
from xstatic.pkg import leaflet

bp = Blueprint("assets", __name__, url_prefix="/assets")


@bp.get("/leaflet/<path:filename>")
def leaflet_file(filename):
    return send_from_directory(leaflet.BASE_DIR, filename, max_age=7 * 24 * 3600)
