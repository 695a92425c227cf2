"""OGC API – Features (Part 1, core) at ``/ogc``: streets, communities, grids and stations of the
active boundary version, and the open work orders (no personal data).

JSON is the default (clients such as OWSLib, GDAL and QGIS send no Accept header); ``f=html``
gives a plain page. Items are ``application/geo+json`` with ``numberMatched``,
``numberReturned`` and ``next``/``prev`` links.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import numpy as np
import shapely
from flask import Blueprint, current_app, jsonify, render_template_string, request, url_for

from dispatch.checks import check_datetime
from dispatch.errors import InputError, NotFound
from dispatch.model import FINAL, State
from dispatch.overview import gridworker_names
from geo.plain import plain
from web.args import int_arg

bp = Blueprint("ogc", __name__, url_prefix="/ogc")
GEOJSON = "application/geo+json"
DEFAULT_LIMIT, MAX_LIMIT = 10, 10_000
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
CONFORMANCE = ["http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
               "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
               "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/html",
               "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30"]
LAYERS = {"streets": "Streets (街道)", "communities": "Communities (社区)",
          "grids": "Grids (网格)", "stations": "Service stations (红色驿站)"}
ORDERS = "orders"
OPEN_STATES = [s for s in State if s not in FINAL]
PAGE = """<!doctype html><html lang="en"><meta charset="utf-8"><title>{{ title }}</title>
<h1>{{ title }}</h1>{% if description %}<p>{{ description }}</p>{% endif %}
<ul>{% for link in links %}<li><a href="{{ link.href }}">{{ link.title or link.rel }}</a>
({{ link.type }})</li>{% endfor %}</ul>
{% if rows %}<table>{% for row in rows %}<tr>{% for v in row %}<td>{{ v }}</td>{% endfor %}</tr>
{% endfor %}</table>{% endif %}</html>"""


def service():
    return current_app.extensions["gridline"]


def _link(endpoint, rel, type_, title=None, **values):
    return {"href": url_for(endpoint, _external=True, **values), "rel": rel, "type": type_,
            **({"title": title} if title else {})}


def _answer(document: dict, rows=None, mimetype="application/json"):
    fmt = request.args.get("f", "json")
    if fmt not in ("json", "html"):
        raise InputError("f must be json or html", field="f")
    if fmt == "html":
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
        "links": [_link("ogc.landing", "self", "application/json", "this document"),
                  _link("openapi.spec", "service-desc", "application/vnd.oai.openapi+json;"
                        "version=3.0", "the API definition"),
                  _link("ogc.conformance", "conformance", "application/json",
                        "conformance classes"),
                  _link("ogc.collections", "data", "application/json", "collections")]})


@bp.get("/conformance")
def conformance():
    return _answer({"conformsTo": CONFORMANCE})


@bp.get("/collections")
def collections():
    described = [_collection(cid) for cid in (*LAYERS, ORDERS)]
    return _answer({"title": "collections", "collections": described,
                    "links": [_link("ogc.collections", "self", "application/json")]},
                   rows=[(c["id"], c["title"]) for c in described])


@bp.get("/collections/<cid>")
def collection(cid):
    return _answer(_collection(cid))


def _collection(cid) -> dict:
    if cid not in LAYERS and cid != ORDERS:
        raise NotFound(f"no collection {cid!r}")
    _, resolver = service().active_resolver()
    bounds = [float(v) for v in resolver.boundaries.grids.total_bounds]
    return {"id": cid, "title": LAYERS.get(cid, "Open work orders (工单)"),
            "itemType": "feature", "crs": [CRS84],
            "extent": {"spatial": {"bbox": [bounds], "crs": CRS84},
                       **({"temporal": {"interval": [[None, None]]}} if cid == ORDERS else {})},
            "links": [_link("ogc.collection", "self", "application/json", cid=cid),
                      _link("ogc.items", "items", GEOJSON, "items", cid=cid)]}


@bp.get("/collections/<cid>/items")
def items(cid):
    limit = int_arg("limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    offset = int_arg("offset", 0, 0, None)
    bbox = _bbox(request.args.get("bbox"))
    if cid == ORDERS:
        since, until = _datetime(request.args.get("datetime"))
        page = service().list_orders(bbox=bbox, states=[str(s) for s in OPEN_STATES],
                                     since=since, until=until, limit=limit, offset=offset)
        features, matched = [_order_feature(o) for o in page["orders"]], page["total"]
    elif cid in LAYERS:
        features, matched = _layer_features(cid, bbox, limit, offset)
    else:
        raise NotFound(f"no collection {cid!r}")
    links = [_link("ogc.items", "self", GEOJSON, cid=cid, **_args(offset, limit))]
    if offset + len(features) < matched:
        links.append(_link("ogc.items", "next", GEOJSON, "next page", cid=cid,
                           **_args(offset + limit, limit)))
    if offset > 0:
        links.append(_link("ogc.items", "prev", GEOJSON, "previous page", cid=cid,
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
            order = service().order(int(fid))
        except ValueError:
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
    feature["links"] = [_link("ogc.item", "self", GEOJSON, cid=cid, fid=fid),
                        _link("ogc.collection", "collection", "application/json", cid=cid)]
    return _answer(feature, mimetype=GEOJSON)


def _frame(cid):
    _, resolver = service().active_resolver()
    return resolver.boundaries.layer(cid)


def _layer_features(cid, bbox, limit, offset):
    frame = _frame(cid)
    if bbox is None:
        hits = np.arange(len(frame))
    else:
        hits = np.sort(shapely.STRtree(frame.geometry.values).query(shapely.box(*bbox),
                                                                    predicate="intersects"))
    return _features(cid, frame, hits[offset:offset + limit]), len(hits)


def _features(cid, frame, rows) -> list[dict]:
    key = "station_id" if cid == "stations" else "code"
    geometries = shapely.to_geojson(frame.geometry.values[rows])
    names = (gridworker_names(service().db, frame["code"].iloc[rows]) if cid == "grids"
             else {})
    columns = [c for c in frame.columns if c not in ("geometry", "feature")]
    features = []
    for row, geometry in zip(rows, geometries, strict=True):
        record = frame.iloc[row]
        properties = {c: plain(record[c]) for c in columns}
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
    keep = {k: v for k, v in request.args.items() if k not in ("offset", "limit")}
    return {**keep, "offset": offset, "limit": limit}


def _bbox(raw):
    if not raw:
        return None
    parts = raw.split(",")
    if len(parts) != 4:
        raise InputError("bbox is minx,miny,maxx,maxy in CRS84", field="bbox")
    try:
        west, south, east, north = map(float, parts)
    except ValueError:
        raise InputError("bbox values must be numbers", field="bbox") from None
    if not (west <= east and south <= north):
        raise InputError("bbox must have minx <= maxx and miny <= maxy", field="bbox")
    return west, south, east, north


def _datetime(raw):
    """An instant or an interval (``a/b``, ``../b``, ``a/..``) as (since, until)."""
    if not raw:
        return None, None
    parts = raw.split("/")
    if len(parts) > 2:
        raise InputError("datetime is an instant or start/end", field="datetime")
    moments = [None if p in ("", "..") else _moment(p) for p in parts]
    if len(moments) == 1:  # one instant: orders created at exactly that moment
        return moments[0], moments[0] + timedelta(microseconds=1)
    return moments[0], moments[1]


def _moment(text) -> datetime:
    return check_datetime(text, "datetime", service().timezone)
