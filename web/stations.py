"""Service stations over HTTP: open stations near a point, check-ins, per-station counts
(``/api/v1/stations``), and the map page ``/stations``.

Anyone may look for stations and see the page; checking in needs an account (a rider's); the
counts are for staff.
"""

from __future__ import annotations

import folium
from flask import Blueprint, current_app, jsonify, render_template, request

from dispatch.accounts import staff
from dispatch.stations import Stations, load_station_hours
from web.api import body
from web.auth import current_user, require_user
from web.i18n import gettext as _
from web.maps import map_text, new_map, parts, to_display

bp = Blueprint("stations", __name__)
OPEN, CLOSED = "#1a9850", "#969696"


def stations() -> Stations:
    return current_app.extensions["gridline.stations"]


@bp.get("/api/v1/stations/near")
def near():
    """``lon``, ``lat`` (``crs``), ``radius_m`` (default 1000), ``services`` (comma-separated,
    all required), ``all=1`` to include closed stations."""
    query = request.args
    services = [s for s in (query.get("services") or "").split(",") if s]
    return jsonify(stations().near(query.get("lon"), query.get("lat"),
                                   query.get("radius_m") or 1000, services,
                                   open_only=query.get("all") != "1", crs=query.get("crs")))


@bp.post("/api/v1/stations/<station_id>/checkins")
def check_in(station_id: str):
    user = require_user()
    body(set())
    done = stations().check_in(station_id, user.id)
    return jsonify(done), 200 if done["repeat"] else 201


@bp.get("/api/v1/stations/counts")
def counts():
    staff(require_user())
    return jsonify(stations().counts())


@bp.get("/stations")
def page():
    """Every station on the map, green when open now, with its hours and services; the table
    beside it counts check-ins and riders' reports."""
    table = stations().table()
    user = current_user()
    shown = user is not None and user.is_staff  # the counts are for staff
    counts = {c["station_id"]: c for c in stations().counts()} if shown else {}
    bounds = stations().service.active_resolver()[1].boundaries.grids.total_bounds
    m = new_map(bounds)
    x, y = to_display([s["lon"] for s in table], [s["lat"] for s in table])
    for station, sx, sy in zip(table, x, y, strict=True):
        label = map_text(f"{station['name']} · {station['hours'] or _('no opening hours')} · "
                         f"{', '.join(station['services'])}")
        colour = OPEN if station["open"] else CLOSED
        folium.CircleMarker([float(sy), float(sx)], radius=6, color=colour, fill=True,
                            fill_color=colour, fill_opacity=0.9, tooltip=label).add_to(m)
    rows = [{**s, **counts.get(s["station_id"], {})} for s in table]
    return render_template("stations.html", map=parts(m), title=_("Service stations"),
                           rows=rows, counts=shown,
                           legend=[(OPEN, _("Open now")), (CLOSED, _("Closed now"))])


def init_app(app) -> None:
    """Stations over the app's dispatch service (hours from ``GRIDLINE_STATION_HOURS``, else
    the demo district's)."""
    service = app.extensions["gridline"]
    hours = load_station_hours(app.config.get("STATION_HOURS"))
    app.extensions["gridline.stations"] = Stations(service, hours)
    app.register_blueprint(bp)
