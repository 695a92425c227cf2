"""The reporter's phone pages: the report form at ``/report`` and an order's progress at
``/report/<id>``.

The form posts to the native API (``POST /api/v1/reports``) from the browser, so the page and
the API share one set of rules and error answers. The map has no tiles unless some are
configured; the active version's grid outlines, thinned, show the reporter where to tap.
"""

from __future__ import annotations

import json
from datetime import datetime

import shapely
from flask import Blueprint, current_app, render_template, request, url_for

from dispatch.model import DONE, State
from web import maps
from web.auth import csrf_token, current_user

bp = Blueprint("reporter", __name__)
# Outlines are thinned to about 5 m and rounded to about 1 m: plenty for choosing where to tap.
SIMPLIFY_DEGREES = 0.00005
ROUND_DEGREES = 0.00001
STEPS = (State.SUBMITTED, State.DISPATCHED, State.ACCEPTED, State.IN_PROGRESS, State.RESOLVED,
         State.VERIFIED, State.CLOSED)
# Reopened and transferred orders are dispatched again at once; show them at that step.
STEP_OF = {State.REOPENED: State.DISPATCHED, State.TRANSFERRED: State.DISPATCHED}
STOPPED = {State.REJECTED, State.DUPLICATE}


def service():
    return current_app.extensions["gridline"]


@bp.get("/report")
def form():
    """The report form: map, category, description, photo and optional contact details."""
    _, resolver = service().active_resolver()
    grids = resolver.boundaries.grids.geometry.values
    outlines = shapely.set_precision(
        maps.display_geometries(shapely.simplify(grids, SIMPLIFY_DEGREES)), ROUND_DEGREES)
    west, south, east, north = map(float, shapely.total_bounds(outlines))
    left, bottom, right, top = shapely.total_bounds(grids)
    x, y = (left + right) / 2, (bottom + top) / 2
    shifted_x, shifted_y = maps.to_display(x, y)
    tiles = maps.tiles()
    user = current_user()
    config = {
        "outlines": json.loads(shapely.to_geojson(shapely.geometrycollections(outlines))),
        "bounds": [[south, west], [north, east]],
        "crs": maps.display_crs(),
        # A browser's own fix is WGS84; over GCJ-02 tiles its marker is drawn shifted by this.
        "offset": [float(shifted_x - x), float(shifted_y - y)],
        "tiles": {"url": tiles.url, "attribution": tiles.attribution} if tiles else None,
        "api": url_for("api.create_report"),
        "status_url": url_for("reporter.form"),
        "point_url": f"{request.script_root}/point",
        "csrf": csrf_token() if user else "",
    }
    return render_template("report.html", config=config,
                           categories=service().catalogue.categories.values(), user=user)


@bp.get("/report/<int:order_id>")
def status(order_id: int):
    """An order's progress for its reporter: steps, trail, deadline and the repair photo."""
    user = current_user()
    order = service().order(order_id, staff=False, viewer_id=user.id if user else None)
    state = State(order["state"])
    due = order["resolve_due"] and datetime.fromisoformat(order["resolve_due"])
    current = STEPS.index(STEP_OF.get(state, state)) if state not in STOPPED else None
    return render_template(
        "status.html", order=order, state=state, steps=STEPS, current=current,
        category=service().catalogue.categories.get(order["category"]),
        created=_local(datetime.fromisoformat(order["created_at"])),
        due=due and state not in DONE and _local(due),
        overdue=bool(order["resolve_overdue"] or (due and service().clock() > due)),
        trail=[{**a, "at": _local(datetime.fromisoformat(a["at"]))} for a in order["audit"]],
        joined=request.args.get("joined") == "1")


def _local(moment: datetime) -> str:
    """A time as the district's clocks show it, to the minute."""
    return service().local_time(moment).strftime("%Y-%m-%d %H:%M")

