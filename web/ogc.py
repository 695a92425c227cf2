"""OGC API – Features (Part 1, core) at ``/ogc``: streets, communities, grids and stations of the
active boundary version, and the open work orders (no personal data).

JSON is the default (clients such as OWSLib, GDAL and QGIS send no Accept header); ``f=html``
gives a plain page. Items are ``application/geo+json`` with ``numberMatched``,
``numberReturned`` and ``next``/``prev`` links.
"""

from __future__ import annotations

import json
import math
from datetime import datetime, timedelta

import numpy as np
import shapely
from flask import Blueprint, current_app, jsonify, render_template_string, request, url_for

from dispatch.checks import check_datetime
from dispatch.errors import InputError, NotFound
from dispatch.model import FINAL, State
from dispatch.overview import gridworker_names
from dispatch.services import MAX_OFFSET
from geo.plain import plain
from web.args import int_arg, whole_number

bp = Blueprint("ogc", __name__, url_prefix="/ogc")
GEOJSON = "application/geo+json"
DEFAULT_LIMIT, MAX_LIMIT = 10, 10_000
JSON, HTML = "application/json", "text/html"
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
CONFORMANCE = ["http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
               "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
               "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/html",
               "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30"]
LAYERS = {"streets": "Streets (街道)", "communities": "Communities (社区)",
          "grids": "Grids (网格)", "stations": "Service stations (红色驿站)"}
ORDERS = "orders"
# What each layer publishes: its standard columns, never the rest of the source's (a real source
# may carry the phones of managers or gridworkers). Grids add their gridworkers' names.
PROPERTIES = {"streets": ("code", "name"), "communities": ("code", "name", "street_code"),
              "grids": ("code", "name", "community_code", "street_code", "households"),
              "stations": ("station_id", "name", "services")}
# The query parameters of each endpoint; the others take only f (GDAL's OAPIF driver and OWSLib
# send nothing more).
PARAMETERS = {"ogc.items": {"f", "bbox", "limit", "offset", "datetime"}}
OPEN_STATES = [s for s in State if s not in FINAL]
PAGE = """<!doctype html><html lang="en"><meta charset="utf-8"><title>{{ title }}</title>
<h1>{{ title }}</h1>{% if description %}<p>{{ description }}</p>{% endif %}
<ul>{% for link in links %}<li><a href="{{ link.href }}" rel="{{ link.rel }}"
type="{{ link.type }}">{{ link.title or link.rel }}</a> ({{ link.type }})</li>{% endfor %}</ul>
{% if rows %}<table>{% for row in rows %}<tr>{% for v in row %}<td>{{ v }}</td>{% endfor %}</tr>
{% endfor %}</table>{% endif %}</html>"""


def service():
    return current_app.extensions["gridline"]


def _link(endpoint, rel, type_, title=None, **values):
    return {"href": url_for(endpoint, _external=True, **values), "rel": rel, "type": type_,
            **({"title": title} if title else {})}


@bp.before_request
def _check_parameters():
    """Refuse a query parameter the endpoint does not know (/req/core/query-param-unknown) and
    a format other than json or html, before any work."""
    allowed = PARAMETERS.get(request.endpoint, {"f"})
    for name in request.args:
        if name not in allowed:
            raise InputError(f"unknown query parameter {name!r}; this takes "
                             f"{', '.join(sorted(allowed))}", field=name)
    if request.args.get("f", "json") not in ("json", "html"):
        raise InputError("f must be json or html", field="f")


def _html() -> bool:
    return request.args.get("f") == "html"


def _as(endpoint, rel, type_, html, title=None, **values):
    """A link to ``endpoint`` in HTML (``f=html``) when ``html``, else in JSON as ``type_``."""
    return _link(endpoint, rel, HTML if html else type_, title, **values,
                 **({"f": "html"} if html else {}))


def _own(endpoint, type_, **values) -> list[dict]:
    """The answer's links to itself (rel self, in the format asked for) and to its other
    format (rel alternate), as /req/core/fc-md-links and /req/html ask."""
    html = _html()
    return [_as(endpoint, "self", type_, html, "this document", **values),
            _as(endpoint, "alternate", type_, not html,
                "this document as " + ("JSON" if html else "HTML"), **values)]


def _answer(document: dict, rows=None, mimetype=JSON):
    if _html():
        return render_template_string(PAGE, title=document.get("title", "gridline"),
                                      description=document.get("description"),
                                      links=document.get("links", []), rows=rows or [])
    response = jsonify(document)
    response.mimetype = mimetype
    return response


@bp.get("/")
def landing():
    return _answer({
        "title": "gridline", "description": "Grids, communities, streets, stations and open "
        "work orders of the district",
        "links": [*_own("ogc.landing", JSON),
                  _link("openapi.spec", "service-desc", "application/vnd.oai.openapi+json;"
                        "version=3.0", "the API definition"),
                  _link("ogc.conformance", "conformance", "application/json",
                        "conformance classes"),
                  _link("ogc.collections", "data", "application/json", "collections")]})


@bp.get("/conformance")
def conformance():
    return _answer({"conformsTo": CONFORMANCE, "links": _own("ogc.conformance", JSON)})


@bp.get("/collections")
def collections():
    described = [_collection(cid) for cid in (*LAYERS, ORDERS)]
    return _answer({"title": "collections", "collections": described,
                    "links": _own("ogc.collections", JSON)},
                   rows=[(c["id"], c["title"]) for c in described])


@bp.get("/collections/<cid>")
def collection(cid):
    return _answer(_collection(cid, _own("ogc.collection", JSON, cid=cid)))


def _collection(cid, own=None) -> dict:
    """Collection ``cid`` described; ``own`` are its self and alternate links when it is the
    answer itself, else it links to itself in JSON."""
    if cid not in LAYERS and cid != ORDERS:
        raise NotFound(f"no collection {cid!r}")
    _, resolver = service().active_resolver()
    bounds = [float(v) for v in resolver.boundaries.grids.total_bounds]
    return {"id": cid, "title": LAYERS.get(cid, "Open work orders (工单)"),
            "itemType": "feature", "crs": [CRS84],
            "extent": {"spatial": {"bbox": [bounds], "crs": CRS84},
                       **({"temporal": {"interval": [[None, None]]}} if cid == ORDERS else {})},
            "links": [*(own or [_link("ogc.collection", "self", JSON, cid=cid)]),
                      _link("ogc.items", "items", GEOJSON, "items", cid=cid)]}


@bp.get("/collections/<cid>/items")
def items(cid):
    """A page of features. A limit above MAX_LIMIT is MAX_LIMIT (/req/core/fc-limit-response-1);
    a collection without time checks ``datetime`` and otherwise ignores it."""
    limit = int_arg("limit", DEFAULT_LIMIT, 1, MAX_LIMIT, clamp=True)
    offset = int_arg("offset", 0, 0, MAX_OFFSET)
    boxes = _boxes(request.args.get("bbox"))
    since, until = _datetime(request.args.get("datetime"))
    if cid == ORDERS:
        features, matched = _order_features(boxes, since, until, limit, offset)
    elif cid in LAYERS:
        features, matched = _layer_features(cid, boxes, limit, offset)
    else:
        raise NotFound(f"no collection {cid!r}")
    html = _html()
    links = _own("ogc.items", GEOJSON, cid=cid, **_args(offset, limit))
    if offset + len(features) < matched:
        links.append(_as("ogc.items", "next", GEOJSON, html, "next page", cid=cid,
                         **_args(offset + limit, limit)))
    if offset > 0:
        links.append(_as("ogc.items", "prev", GEOJSON, html, "previous page", cid=cid,
                         **_args(max(offset - limit, 0), limit)))
    document = {"type": "FeatureCollection", "features": features, "numberMatched": matched,
                "numberReturned": len(features), "timeStamp": service().clock().isoformat(),
                "links": links}
    return _answer(document, rows=[(f["id"], f["properties"].get("name", ""))
                                   for f in features], mimetype=GEOJSON)


@bp.get("/collections/<cid>/items/<fid>")
def item(cid, fid):
    if cid == ORDERS:
        try:
            order = service().order(whole_number(fid, "featureId"))
        except InputError:
            raise NotFound(f"no work order {fid!r}") from None
        if State(order["state"]) in FINAL:
            raise NotFound(f"work order {fid} is closed")
        feature = _order_feature(order)
    elif cid in LAYERS:
        frame = _frame(cid)
        key = "station_id" if cid == "stations" else "code"
        match = np.flatnonzero(frame[key].to_numpy(object) == fid)
        if not len(match):
            raise NotFound(f"no feature {fid!r} in {cid}")
        feature = _features(cid, frame, match)[0]
    else:
        raise NotFound(f"no collection {cid!r}")
    feature["links"] = [*_own("ogc.item", GEOJSON, cid=cid, fid=fid),
                        _link("ogc.collection", "collection", JSON, cid=cid)]
    return _answer(feature, mimetype=GEOJSON)


def _frame(cid):
    _, resolver = service().active_resolver()
    return resolver.boundaries.layer(cid)


def _layer_features(cid, boxes, limit, offset):
    """A page of layer ``cid``'s features touching any of ``boxes`` (all with None), in code
    order, and how many there are in all."""
    frame = _frame(cid)
    if boxes is None:
        hits = np.arange(len(frame))
    else:
        tree = shapely.STRtree(frame.geometry.values)
        hits = np.unique(np.concatenate([tree.query(shapely.box(*box), predicate="intersects")
                                         for box in boxes]))
    return _features(cid, frame, hits[offset:offset + limit]), len(hits)


def _order_features(boxes, since, until, limit, offset):
    """A page of the open orders in any of ``boxes`` (all with None), created from ``since``
    to before ``until``, and how many there are in all. The boxes do not overlap; the orders of
    each follow those of the one before, newest first within each."""
    orders, matched = [], 0
    for box in boxes or [None]:
        wanted = limit - len(orders)
        page = service().list_orders(bbox=box, states=[str(s) for s in OPEN_STATES],
                                     since=since, until=until, limit=max(wanted, 1),
                                     offset=max(offset - matched, 0))
        orders += page["orders"][:wanted]
        matched += page["total"]
    return [_order_feature(o) for o in orders], matched


def _features(cid, frame, rows) -> list[dict]:
    key = "station_id" if cid == "stations" else "code"
    geometries = shapely.to_geojson(frame.geometry.values[rows])
    names = (gridworker_names(service().db, frame["code"].iloc[rows]) if cid == "grids"
             else {})
    features = []
    for row, geometry in zip(rows, geometries, strict=True):
        record = frame.iloc[row]
        properties = {c: plain(record.get(c)) for c in PROPERTIES[cid]}
        if cid == "grids":
            properties["gridworkers"] = names.get(record["code"], [])
        features.append({"type": "Feature", "id": record[key],
                         "geometry": json.loads(geometry), "properties": properties})
    return features


def _order_feature(order: dict) -> dict:
    public = ("category", "state", "open311_status", "grid_code", "community_code",
              "street_code", "department", "created_at", "resolve_due", "respond_overdue",
              "resolve_overdue", "reports_count")
    return {"type": "Feature", "id": order["id"],
            "geometry": {"type": "Point", "coordinates": [order["lon"], order["lat"]]},
            "properties": {k: order.get(k) for k in public}}


def _args(offset, limit) -> dict:
    keep = {k: v for k, v in request.args.items() if k not in ("offset", "limit", "f")}
    return {**keep, "offset": offset, "limit": limit}


def _boxes(raw) -> list[tuple[float, float, float, float]] | None:
    """``bbox`` (minx,miny,maxx,maxy or minx,miny,minz,maxx,maxy,maxz in CRS84; heights are
    ignored) as the boxes to match: one, or two when it crosses the antimeridian (minx above
    maxx). Longitudes beyond ±180 are taken as ±180, for every collection alike."""
    if not raw:
        return None
    parts = raw.split(",")
    if len(parts) not in (4, 6):
        raise InputError("bbox is minx,miny,maxx,maxy (or minx,miny,minz,maxx,maxy,maxz) in "
                         "CRS84", field="bbox")
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise InputError("bbox values must be numbers", field="bbox") from None
    if not all(map(math.isfinite, values)):
        raise InputError("bbox values must be finite numbers", field="bbox")
    west, south, east, north = (values[i] for i in ((0, 1, 2, 3) if len(values) == 4
                                                     else (0, 1, 3, 4)))
    if not -90 <= south <= north <= 90:
        raise InputError("bbox must have miny <= maxy, both within ±90", field="bbox")
    west, east = (min(max(x, -180.0), 180.0) for x in (west, east))
    if west <= east:
        return [(west, south, east, north)]
    return [(west, south, 180.0, north), (-180.0, south, east, north)]


def _datetime(raw):
    """``datetime`` as (since, until), until excluded: an instant, or an interval ``a/b`` whose
    ends are both included and of which one may be open (``..`` or nothing)."""
    if raw is None:
        return None, None
    parts = raw.split("/")
    if len(parts) > 2 or all(p in ("", "..") for p in parts):
        raise InputError("datetime is a date-time, or start/end with at most one end open "
                         "(..)", field="datetime")
    moments = [None if p in ("", "..") else _moment(p) for p in parts]
    since, until = moments[0], moments[-1]  # one instant: orders created at exactly it
    return since, until and until + timedelta(microseconds=1)


def _moment(text) -> datetime:
    return check_datetime(text, "datetime", service().timezone)
