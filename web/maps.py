"""Folium maps for the pages: Leaflet from the app itself, the configured tiles, and overlays in
the tiles' coordinate system.

``GRIDLINE_TILES`` picks the background: ``none`` (a plain background, the default: no request
leaves the machine), ``osm``, ``tianditu`` (needs ``GRIDLINE_TIANDITU_KEY``), ``amap`` (Gaode,
GCJ-02), or any ``{z}/{x}/{y}`` URL template (``GRIDLINE_TILES_CRS`` = ``wgs84`` or ``gcj02``
says which system its pictures are drawn in). Over GCJ-02 tiles every overlay is shifted to
GCJ-02 for display, so grids and markers line up with the streets underneath.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass

import folium
import numpy as np
import shapely
from flask import current_app, url_for

from geo.crs import from_wgs84, to_wgs84
from geo.errors import InputError
from geo.plain import plain

WGS84, GCJ02 = "wgs84", "gcj02"


@dataclass(frozen=True)
class TileSource:
    url: str
    attribution: str
    crs: str = WGS84


PRESETS = {
    "osm": TileSource("https://tile.openstreetmap.org/{z}/{x}/{y}.png",
                      "© OpenStreetMap contributors"),
    # Tianditu draws in CGCS2000, which agrees with WGS84 to within centimetres.
    "tianditu": TileSource("https://t0.tianditu.gov.cn/vec_w/wmts?SERVICE=WMTS&REQUEST=GetTile"
                           "&VERSION=1.0.0&LAYER=vec&STYLE=default&TILEMATRIXSET=w&FORMAT=tiles"
                           "&TILEMATRIX={z}&TILEROW={y}&TILECOL={x}&tk={key}", "© 天地图"),
    "amap": TileSource("https://webrd01.is.autonavi.com/appmaptile?lang=zh_cn&size=1&scale=1"
                       "&style=8&x={x}&y={y}&z={z}", "© 高德地图", GCJ02),
}


def tile_source(config) -> TileSource | None:
    """The background named by the app's ``TILES`` setting (None: no tiles)."""
    name = str(config.get("TILES") or "none").strip()
    if name.lower() == "none":
        return None
    if name.lower() in PRESETS:
        preset = PRESETS[name.lower()]
        if "{key}" in preset.url:
            key = config.get("TIANDITU_KEY")
            if not key:
                raise InputError("GRIDLINE_TILES=tianditu needs GRIDLINE_TIANDITU_KEY",
                                 field="TIANDITU_KEY")
            return TileSource(preset.url.replace("{key}", str(key)), preset.attribution)
        return preset
    if all(part in name for part in ("{z}", "{x}", "{y}")):
        crs = str(config.get("TILES_CRS") or WGS84).lower()
        if crs not in (WGS84, GCJ02):
            raise InputError("GRIDLINE_TILES_CRS must be wgs84 or gcj02", field="TILES_CRS")
        return TileSource(name, str(config.get("TILES_ATTRIBUTION") or ""), crs)
    raise InputError(f"GRIDLINE_TILES={name!r}: use none, {', '.join(PRESETS)} or a URL "
                     "template with {z}, {x} and {y}", field="TILES")


def tiles() -> TileSource | None:
    return current_app.extensions["gridline.tiles"]


def display_crs() -> str:
    """The system overlays are drawn in: the tiles' own."""
    source = tiles()
    return source.crs if source else WGS84


def to_display(lon, lat):
    """WGS84 coordinates as the map draws them."""
    if display_crs() == GCJ02:
        return from_wgs84(lon, lat, "gcj02")
    return np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)


def from_display(lon, lat):
    """A point picked on the map, back in WGS84."""
    if display_crs() == GCJ02:
        return to_wgs84(lon, lat, "gcj02")
    return np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)


def display_geometries(geometries) -> np.ndarray:
    """WGS84 geometries as the map draws them."""
    geometries = np.asarray(geometries)
    if display_crs() != GCJ02:
        return geometries
    return shapely.transform(geometries, lambda xy: np.column_stack(to_display(xy[:, 0],
                                                                                  xy[:, 1])))


def new_map(bounds) -> folium.Map:
    """A map fitted to ``bounds`` (west, south, east, north in WGS84), loading Leaflet from this
    app rather than a CDN, with the configured tiles or none."""
    m = folium.Map(tiles=None, control_scale=True, prefer_canvas=False)
    m.default_js = [("leaflet", url_for("assets.leaflet_file", filename="leaflet.js"))]
    m.default_css = [("leaflet_css", url_for("assets.leaflet_file", filename="leaflet.css"))]
    source = tiles()
    if source is not None:
        folium.TileLayer(source.url, attr=source.attribution or " ", name="tiles",
                         max_zoom=19).add_to(m)
    x, y = to_display([bounds[0], bounds[2]], [bounds[1], bounds[3]])
    m.fit_bounds([[float(y[0]), float(x[0])], [float(y[1]), float(x[1])]])
    return m


def parts(m: folium.Map) -> dict:
    """The map's pieces for a page template: ``header`` (its CSS and JS links, in <head>),
    ``html`` (the map's element), ``script`` (after it) and ``name`` (its JS variable)."""
    root = m.get_root()
    root.render()
    return {"header": root.header.render(), "html": root.html.render(),
            "script": root.script.render(), "name": m.get_name()}


def map_text(value) -> str:
    """``value`` as text for a map's tooltip. Tooltips take HTML, and folium puts a plain
    tooltip's text inside a JavaScript template literal, so names (which come from uploaded
    files and from people) are escaped for both: as HTML, and ` $ \\ as character references."""
    return html.escape(str(value)).replace("`", "&#96;").replace("$", "&#36;").replace(
        "\\", "&#92;")


def geojson(frame, properties: list[str]) -> dict:
    """A layer as a display-ready GeoJSON dict with only ``properties``."""
    geometries = shapely.to_geojson(display_geometries(frame.geometry.values))
    records = frame[properties].to_dict("records")
    return {"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": json.loads(g),
         "properties": {k: plain(v) for k, v in p.items()}}
        for g, p in zip(geometries, records, strict=True)]}
