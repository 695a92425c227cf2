"""For planners: boundary versions over the API (``/api/v1/boundary-versions``) and the planner's
pages (``/planner``): start a draft, edit it on a map, preview the impact, activate.

Only planners and administrators may call these. Geometries sent with an edit are in WGS84
unless ``crs`` names the map's display system (GCJ-02 over Chinese tiles); the page sends what
it draws in.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import folium
import numpy as np
import shapely
from flask import Blueprint, current_app, jsonify, render_template, request, url_for

from dispatch.errors import Forbidden, InputError
from geo.crs import parse_crs, to_wgs84
from geo.errors import GridlineError
from geo.plain import plain
from geo.sources import LAYERS, SOURCE_SUFFIXES
from web.api import body
from web.args import int_arg, period_from, whole_number
from web.auth import current_user, login_redirect, require_user
from web.formats import csv_response
from web.i18n import gettext as _
from web.maps import display_crs, geojson, new_map, parts

bp = Blueprint("planner", __name__)
API = "/api/v1/boundary-versions"
EDIT_FIELDS = {"operation", "grid", "grids", "line", "polygon", "community", "communities",
               "target", "min", "max", "weight", "station", "name", "services", "point",
               "remove", "crs", "expected_revision"}
# What geo.sources reads as a single file, less a bare .shp: one upload cannot bring its .shx
# and .dbf, so a shapefile comes zipped.
UPLOAD_SUFFIXES = tuple(s for s in SOURCE_SUFFIXES if s != ".shp")
PLANNERS = ("planner", "admin")
IMPACT_COLUMNS = ["code", "change", "community_before", "community_after", "area_before_m2",
                  "area_after_m2", "area_change_m2", "reports_per_month_before",
                  "reports_per_month_after", "households_before", "households_after"]


def service():
    return current_app.extensions["gridline"]


def planner():
    """The calling planner (or administrator); anyone else is refused."""
    user = require_user()
    if user.role not in PLANNERS:
        raise Forbidden("boundary versions are for planners")
    return user


# --- API ------------------------------------------------------------------------------------


@bp.get(API)
def list_versions():
    planner()
    return jsonify(service().versions())


@bp.get(f"{API}/<int:version>")
def get_version(version: int):
    planner()
    return jsonify(service().version_info(version))


@bp.post(f"{API}/<int:version>/drafts")
def start_draft(version: int):
    user = planner()
    data = body({"name"})
    return jsonify(service().start_draft(version, user.actor, name=data.get("name"))), 201


@bp.post(f"{API}/<int:version>/edits")
def edit(version: int):
    user = planner()
    data = body(EDIT_FIELDS)
    operation = data.pop("operation", None)
    expected = _expected_revision(data)
    params = _to_wgs84(data, data.pop("crs", None))
    return jsonify(service().edit_draft(version, operation, params, user.actor,
                                        expected_revision=expected))


def _expected_revision(data: dict) -> int | None:
    """The revision the planner last saw, when sent: an edit or activation of a draft changed
    since then is refused (409)."""
    expected = data.pop("expected_revision", None)
    return None if expected is None else whole_number(expected, "expected_revision")


@bp.post(f"{API}/<int:version>/layers/<layer>")
def replace_layer(version: int, layer: str):
    """Replace one layer of a draft by an uploaded GeoJSON, GeoPackage, FlatGeobuf or zipped
    shapefile.

    The file is read only as the format its suffix names: its content is checked for that
    format's signature before GDAL sees it, as GDAL would otherwise pick a driver from the
    content (a VRT in a ``.json`` reads any file of the server). A zip is checked by its
    listing (shapefile parts only, each .shp with its .shx and .dbf, within count and size
    limits) before anything is unpacked, and each part's first bytes as it is unpacked
    (:mod:`geo.sources`). A file holding several layers or shapefiles gives the one named after
    ``layer``, else it is refused naming them."""
    user = planner()
    if layer not in LAYERS:
        raise InputError(f"layer must be one of {', '.join(LAYERS)}", field="layer")
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        raise InputError("send the layer as a file field named 'file'", field="file")
    suffix = Path(upload.filename).suffix.lower()
    if suffix not in UPLOAD_SUFFIXES:
        raise InputError(f"a layer file must be one of {', '.join(UPLOAD_SUFFIXES)}, not "
                         f"{suffix or 'a file without a suffix'}", field="file")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"upload{suffix}"
        upload.save(path)
        try:
            info = service().replace_draft_layer(
                version, layer, path, user.actor, crs=request.form.get("crs") or None,
                expected_revision=_expected_revision(dict(request.form)))
        except GridlineError as exc:  # an error about the file names the upload
            message = str(exc).replace(str(path), path.name)
            if path.name not in message:
                raise
            field = getattr(exc, "field", None)
            raise InputError(message.replace(path.name, upload.filename),
                             field="file" if field in (None, "source") else field) from None
    return jsonify(info)


@bp.post(f"{API}/<int:version>/activate")
def activate(version: int):
    planner()
    followed = service().activate_version(version,
                                          _expected_revision(body({"expected_revision"})))
    return jsonify({**service().version_info(version), "activation": followed})


@bp.delete(f"{API}/<int:version>")
def discard(version: int):
    planner()
    service().discard_draft(version)
    return "", 204


@bp.get(f"{API}/<int:version>/impact")
def impact(version: int):
    planner()
    return jsonify(service().planning.impact(version, int_arg("months", 6, 1, 120)))


@bp.get(f"{API}/<int:version>/impact.csv")
def impact_table(version: int):
    """The changed grids of the preview as a table."""
    planner()
    grids = service().planning.impact(version, int_arg("months", 6, 1, 120))["grids"]
    return csv_response(IMPACT_COLUMNS, ([g[c] for c in IMPACT_COLUMNS] for g in grids),
                        f"gridline-impact-{version}.csv")


@bp.get(f"{API}/<int:version>/grids.geojson")
def grids(version: int):
    """A version's grids in the map's display system, for drawing and editing."""
    planner()
    frame = service().boundaries(version).grids
    response = jsonify(geojson(frame.assign(name=frame["name"].fillna("")),
                                ["code", "name", "community_code"]))
    response.mimetype = "application/geo+json"
    return response


@bp.get(f"{API}/<int:version>/reresolve.csv")
def reresolve(version: int):
    """Past reports of a period (``since``/``until`` dates, default the last 30 days) with the
    grid each was given and the grid ``version`` would give it; nothing is changed."""
    planner()
    svc = service()
    period = period_from(request.args, svc.local_time(svc.clock()).date(), 30, 3660)
    frame = svc.planning.reresolve(version, *period.bounds(svc.timezone))
    columns = list(frame.columns)
    return csv_response(columns, (map(plain, row) for row in frame.itertuples(index=False)),
                        f"gridline-reresolve-{version}-{period.since}-{period.until}.csv")


def _to_wgs84(params: dict, crs) -> dict:
    """The edit's geometries converted from ``crs`` (default WGS84) to WGS84."""
    system = parse_crs(crs or "wgs84")
    if system.is_wgs84:
        return params
    out = dict(params)
    for name in ("line", "polygon", "point"):
        value = params.get(name)
        if isinstance(value, dict) and isinstance(value.get("coordinates"), list):
            try:
                geometry = shapely.from_geojson(json.dumps(value))
            except shapely.errors.GEOSException:
                continue  # left as sent: the edit itself explains what is wrong
            out[name] = json.loads(shapely.to_geojson(shapely.transform(
                geometry, lambda xy, s=system: np.column_stack(to_wgs84(xy[:, 0], xy[:, 1],
                                                                        s)))))
    return out


# --- pages ----------------------------------------------------------------------------------


def _page_visitor():
    """None for a planner; else the answer to give: the login form for a visitor."""
    if current_user() is None:
        return login_redirect()
    planner()
    return None


@bp.get("/planner")
def versions_page():
    if (answer := _page_visitor()) is not None:
        return answer
    return render_template("planner_versions.html", title=_("Boundary versions"),
                           versions=service().versions())


@bp.get("/planner/<int:version>")
def draft_page(version: int):
    """A version on a map: its grids over the active version's edges, with the edit tools,
    the impact preview and activation for a draft."""
    if (answer := _page_visitor()) is not None:
        return answer
    info = service().version_info(version)
    active, resolver = service().active_resolver()
    bset = service().boundaries(version)
    m = new_map(bset.grids.total_bounds)
    folium.GeoJson(geojson(resolver.boundaries.grids[["code", "geometry"]], ["code"]),
                   name=_("Active version"), interactive=False,
                   style_function=lambda _f: {"color": "#555555", "weight": 2,
                                              "dashArray": "4 4", "fill": False}).add_to(m)
    communities = bset.communities[["code", "name"]].to_dict("records")
    return render_template(
        "planner.html", title=_("Draft {n}", n=version) if info["state"] == "draft"
        else _("Version {n}", n=version), info=info, active=active, map=parts(m),
        communities=communities, display_crs=display_crs(),
        urls={"grids": url_for("planner.grids", version=version),
              "edit": url_for("planner.edit", version=version),
              "impact": url_for("planner.impact", version=version),
              "table": url_for("planner.impact_table", version=version),
              "activate": url_for("planner.activate", version=version),
              "draft": url_for("planner.start_draft", version=version),
              "versions": url_for("planner.versions_page"),
              "page": url_for("planner.draft_page", version=0)[:-1]})

