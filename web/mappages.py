"""The map pages: the dispatcher's live map, hotspots, station coverage and grid workload.

Each page is a Folium map (Leaflet served by the app, see :mod:`web.maps`) inside the site's
layout. Heavy work — binning reports, measuring coverage — happens here on the server, so a page
carries a few hundred shapes however many reports lie behind it. The live map's work orders come
from ``/map/live/orders.geojson``, which the page polls to stay current without reloading.
"""

from __future__ import annotations

from collections import OrderedDict
from datetime import timedelta
from weakref import WeakKeyDictionary

import branca.colormap as cm
import folium
import numpy as np
import pandas as pd
from flask import Blueprint, current_app, jsonify, render_template, request, url_for

from dispatch.errors import InputError
from dispatch.model import FINAL, State
from dispatch.overview import gridworker_names, report_points, reports_per_grid, whistling
from geo.coverage import station_coverage
from geo.hexbins import hexbin
from web.args import int_arg, period_from
from web.i18n import category_name
from web.i18n import gettext as _
from web.maps import geojson, map_text, new_map, parts, to_display

bp = Blueprint("maps", __name__, url_prefix="/map")
OPEN_STATES = [str(s) for s in State if s not in FINAL]
WINDOWS = (24, 24 * 7, 24 * 30, 24 * 90, 0)  # hours; 0 = no limit
URGENCY_COLOURS = {"emergency": "#d7191c", "urgent": "#fd8d3c", "normal": "#2c7bb6"}
REFRESH_SECONDS = 5
MAX_ORDERS = 10_000
HEX_EDGES = (100, 250, 500)
PALETTE = ["#ffffcc", "#fed976", "#fd8d3c", "#e31a1c", "#800026"]


def service():
    return current_app.extensions["gridline"]


def _boundaries():
    """The active boundary set."""
    return service().active_resolver()[1].boundaries


def _grid_layer(bset, m, fill=None, tooltip_fields=("code", "name", "gridworkers"),
                extra=None, name=None):
    """The grids, outlined (or filled by ``fill``: code → colour), with a tooltip."""
    frame = bset.grids[["code", "name", "geometry"]].copy()
    names = gridworker_names(service().db, frame["code"])
    frame["gridworkers"] = ["、".join(names.get(c, [])) for c in frame["code"]]
    for column, values in (extra or {}).items():
        frame[column] = values
    for column in tooltip_fields:  # text shown as HTML; codes are digits and stay as they are
        if not pd.api.types.is_numeric_dtype(frame[column]):
            frame[column] = frame[column].map(map_text)
    aliases = {"code": _("Grid"), "name": _("Name"), "gridworkers": _("Gridworker")}

    def style(feature):
        colour = (fill or {}).get(feature["properties"]["code"])
        return {"color": "#1f3a5f", "weight": 1, "fillColor": colour or "#1f3a5f",
                "fillOpacity": 0.65 if colour else 0.03}

    folium.GeoJson(
        geojson(frame, list(dict.fromkeys(["code", *tooltip_fields]))),
        name=name or _("Grids"), style_function=style,
        tooltip=folium.GeoJsonTooltip(fields=list(tooltip_fields),
                                      aliases=[aliases.get(f, f) for f in tooltip_fields]),
    ).add_to(m)


def _station_layer(bset, m, radii=()):
    """The stations as one GeoJSON layer of dots (name in the tooltip), and one layer of
    service circles per radius (metres) — a few layers however many stations there are."""
    stations = bset.stations.assign(name=bset.stations["name"].fillna("").map(map_text))
    data = geojson(stations, ["name"])
    for radius in radii:
        folium.GeoJson(data, name=f"{_('Stations')} {radius:g} m", interactive=False,
                       marker=folium.Circle(radius=radius, color="#238b45", weight=1, fill=True,
                                            fill_opacity=0.05)).add_to(m)
    folium.GeoJson(data, name=_("Stations"),
                   marker=folium.CircleMarker(radius=4, color="#00441b", weight=1, fill=True,
                                              fill_color="#41ab5d", fill_opacity=1),
                   tooltip=folium.GeoJsonTooltip(fields=["name"], aliases=[_("Station")]),
                   ).add_to(m)


def _page(template: str, m, **context):
    folium.LayerControl(collapsed=True).add_to(m)
    return render_template(template, map=parts(m), **context)


# --- live map -------------------------------------------------------------------------------


def _live_filters() -> dict:
    args = request.args
    category = args.get("category") or None
    if category is not None:
        service().catalogue.category(category)
    states = [s for s in (args.get("state") or "").split(",") if s]
    unknown = [s for s in states if s not in OPEN_STATES]
    if unknown:
        raise InputError(f"state {unknown[0]!r} is not an open state; open states: "
                         f"{', '.join(OPEN_STATES)}", field="state")
    hours = int_arg("hours", 24 * 30, 0, 24 * 366)
    return {"category": category, "states": states or OPEN_STATES, "hours": hours}


@bp.get("/live")
def live():
    filters = _live_filters()
    bset = _boundaries()
    m = new_map(bset.grids.total_bounds)
    _grid_layer(bset, m)
    _station_layer(bset, m)
    categories = sorted(service().catalogue.categories.values(), key=lambda c: c.code)
    return _page("live.html", m, title=_("Live map"), filters=filters, categories=categories,
                 states=OPEN_STATES, windows=WINDOWS, refresh=REFRESH_SECONDS,
                 colours=URGENCY_COLOURS)


@bp.get("/live/orders.geojson")
def live_orders():
    """Open work orders matching the live map's filters, as display-ready GeoJSON."""
    filters = _live_filters()
    since = (service().clock() - timedelta(hours=filters["hours"])) if filters["hours"] else None
    page = service().list_orders(states=filters["states"], category=filters["category"],
                                 since=since, limit=MAX_ORDERS)
    orders = page["orders"]
    blowing = whistling(service().db, [o["id"] for o in orders])
    catalogue = service().catalogue
    x, y = to_display([o["lon"] for o in orders], [o["lat"] for o in orders])
    features = []
    for order, lon, lat in zip(orders, x, y, strict=True):
        category = catalogue.category(order["category"])
        features.append({"type": "Feature", "id": order["id"],
                         "geometry": {"type": "Point", "coordinates": [lon, lat]},
                         "properties": {
                             "id": order["id"], "category": order["category"],
                             "category_name": category_name(category),
                             "urgency": category.urgency, "state": order["state"],
                             "state_name": _(order["state"].replace("_", " ")),
                             "grid_code": order["grid_code"],
                             "created": order["created_at_local"][:16].replace("T", " "),
                             "due": (order["resolve_due_local"] or "")[:16].replace("T", " "),
                             "overdue": bool(order["respond_overdue"]
                                             or order["resolve_overdue"]),
                             "whistle": order["id"] in blowing,
                             "url": url_for("reporter.status", order_id=order["id"])}})
    response = jsonify({"type": "FeatureCollection", "features": features,
                        "numberMatched": page["total"], "numberReturned": len(features),
                        "timeStamp": service().clock().isoformat()})
    response.mimetype = "application/geo+json"
    response.headers["Cache-Control"] = "no-store"
    return response


# --- hotspots -------------------------------------------------------------------------------


@bp.get("/hotspots")
def hotspots():
    today = service().clock().astimezone(service().timezone).date()
    period = period_from(request.args, today, default_days=90, max_days=366 * 5)
    since, until = period.bounds(service().timezone)
    edge = int_arg("edge", 250, HEX_EDGES[0], HEX_EDGES[-1])
    bset = _boundaries()
    lon, lat = report_points(service().db, since, until)
    bins = hexbin(lon, lat, bset.metric_crs, edge)
    m = new_map(bset.grids.total_bounds)
    folium.GeoJson(geojson(bset.streets, ["name"]), name=_("Streets"),
                   style_function=lambda f: {"color": "#555", "weight": 1.5, "fillOpacity": 0},
                   interactive=False).add_to(m)
    classes = _classes(bins["count"].to_numpy())
    if len(bins):
        bins["colour"] = [PALETTE[int(np.searchsorted(classes, v, side="left"))]
                          for v in bins["count"]]
        folium.GeoJson(
            geojson(bins, ["count", "colour"]), name=_("Reports per hexagon"),
            style_function=lambda f: {"color": f["properties"]["colour"], "weight": 0.5,
                                      "fillColor": f["properties"]["colour"],
                                      "fillOpacity": 0.7},
            tooltip=folium.GeoJsonTooltip(fields=["count"], aliases=[_("Reports")]),
        ).add_to(m)
    figures = {"reports": len(lon), "hexagons": len(bins),
               "busiest": int(bins["count"].max()) if len(bins) else 0,
               "area_km2": round(3 * np.sqrt(3) / 2 * edge**2 / 1e6, 3)}
    return _page("hotspots.html", m, title=_("Hotspots"), period=period, edge=edge,
                 edges=HEX_EDGES, figures=figures, legend=_legend(classes))


def _classes(values: np.ndarray) -> list[float]:
    """Upper bounds of up to five colour classes (quantiles of ``values``)."""
    if not len(values):
        return []
    bounds = np.unique(np.quantile(values, [0.2, 0.4, 0.6, 0.8, 1.0], method="higher"))
    return [float(b) for b in bounds]


def _legend(classes) -> list[tuple[str, str]]:
    """Colour and label per class; whole-number classes read "3 – 6" for (2, 6]."""
    whole = all(float(c).is_integer() for c in classes)
    rows, low = [], None
    for colour, high in zip(PALETTE, classes, strict=False):
        if low is None:
            label = f"≤ {high:g}"
        elif whole:
            label = f"{low + 1:g} – {high:g}" if low + 1 < high else f"{high:g}"
        else:
            label = f"{low:g} – {high:g}"
        rows.append((colour, label))
        low = high
    return rows


# --- station coverage -------------------------------------------------------------------------


_COVERAGE: WeakKeyDictionary = WeakKeyDictionary()
KEPT_COVERAGES = 8  # per boundary set: anyone may ask for radii, so only the latest are kept


def _coverage(bset, radii: tuple[int, ...]):
    """Coverage depends only on the boundary set and the radii, so it is computed once for
    each of the last few radii asked for."""
    known = _COVERAGE.setdefault(bset, OrderedDict())
    if radii in known:
        known.move_to_end(radii)
    else:
        known[radii] = station_coverage(bset, radii)
        while len(known) > KEPT_COVERAGES:
            known.popitem(last=False)
    return known[radii]


@bp.get("/coverage")
def coverage():
    radii = _radii(request.args.get("radius"))
    bset = _boundaries()
    result = _coverage(bset, radii)
    grids = result.grids
    bands = [(300, "#1a9850"), (500, "#91cf60"), (1000, "#fee08b"), (np.inf, "#d73027")]

    def colour(distance):
        if distance is None or np.isnan(distance):
            return "#cccccc"
        return next(c for limit, c in bands if distance <= limit)

    fill = dict(zip(grids["code"], map(colour, grids["mean_m"]), strict=True))
    m = new_map(bset.grids.total_bounds)
    _grid_layer(bset, m, fill=fill, tooltip_fields=("code", "name", "households", "mean_m"),
                extra={"households": grids["households"].round().astype(int).to_numpy(),
                       "mean_m": grids["mean_m"].to_numpy()})
    _station_layer(bset, m, radii=radii)
    names = dict(zip(bset.grids["code"], bset.grids["name"], strict=True))
    legend = [(c, f"≤ {limit:g} m" if np.isfinite(limit) else "> 1000 m") for limit, c in bands]
    return _page("coverage.html", m, title=_("Station coverage"), radii=radii,
                 summary=result.summary, names=names, legend=legend,
                 stations=len(bset.stations))


def _radii(raw) -> tuple[int, ...]:
    """One to four radii in whole metres (a fraction of a metre changes nothing on a map)."""
    if not raw:
        return (500, 1000)
    try:
        radii = tuple(sorted({round(float(part)) for part in raw.split(",") if part.strip()}))
    except (ValueError, OverflowError):  # OverflowError: round() of an infinity
        raise InputError("radius is a comma-separated list of metres, e.g. 500,1000",
                         field="radius") from None
    if not radii or len(radii) > 4 or any(not 1 <= r <= 10_000 for r in radii):
        raise InputError("give one to four radii, each from 1 to 10000 metres", field="radius")
    return radii


# --- grid workload ----------------------------------------------------------------------------


@bp.get("/workload")
def workload():
    measure = request.args.get("by", "reports")
    if measure not in ("reports", "households"):
        raise InputError("by must be reports or households", field="by")
    months = int_arg("months", 3, 1, 36)
    bset = _boundaries()
    codes = bset.grids["code"].to_numpy()
    if measure == "reports":
        since = service().clock() - timedelta(days=30.4375 * months)
        counts = reports_per_grid(service().db, since)
        values = np.array([counts.get(c, 0) / months for c in codes], dtype=float)
    else:
        values = (bset.grids["households"].fillna(0).to_numpy(dtype=float)
                  if "households" in bset.grids.columns else np.zeros(len(codes)))
    classes = _classes(values)
    colours = cm.StepColormap(PALETTE[:len(classes)], index=[min(values.min(), 0), *classes],
                              vmin=min(values.min(), 0), vmax=classes[-1]) if classes else None
    fill = {c: colours(v) if colours else None for c, v in zip(codes, values, strict=True)}
    m = new_map(bset.grids.total_bounds)
    _grid_layer(bset, m, fill=fill, tooltip_fields=("code", "name", "gridworkers", "value"),
                extra={"value": np.round(values, 1)})
    order = np.argsort(-values)[:10]
    busiest = [(codes[i], bset.grids["name"].iloc[i], round(float(values[i]), 1)) for i in order]
    return _page("workload.html", m, title=_("Grid workload"), measure=measure, months=months,
                 legend=_legend(classes), busiest=busiest,
                 total=round(float(values.sum()), 1))


# --- arguments --------------------------------------------------------------------------------


