"""Reading boundary sources: GeoPackage, a folder of layer files, a single polygon file, a CSV.

A SOURCE is one of

* a GeoPackage with the layers ``streets``, ``communities``, ``grids``, ``stations`` and
  ``buildings`` (household points with a ``households`` count; only ``grids`` is required);
* a folder holding files named after those layers (``grids.geojson``, ``streets.gpkg``,
  ``stations.csv`` ...);
* any single polygon file GDAL reads (GeoJSON, GeoPackage, Shapefile ...), used as the grid layer.

Every layer comes back in WGS84. A file is read in the CRS it declares; a file that declares none
(a Shapefile without ``.prj``) is refused unless the caller names one, and GCJ-02 or BD-09 — which
no file can declare — must always be named. GeoJSON and CSV lon/lat columns are WGS84 unless the
caller names another system.

Stations have a CRS of their own: a separate station file is not read in the boundaries' CRS but
in the one it declares — WGS84 for a CSV, which declares none, as phone and GIS exports of lon/lat
are — unless ``stations_crs`` names another.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely

from geo.crs import WGS84, CoordSystem, parse_crs, to_wgs84
from geo.errors import BoundaryError, CRSError

POLYGON_LAYERS = ("streets", "communities", "grids")
POINT_LAYERS = ("stations", "buildings")  # buildings: optional household points
LAYERS = (*POLYGON_LAYERS, *POINT_LAYERS)
LAYER_SUFFIXES = (".geojson", ".json", ".gpkg", ".shp", ".fgb")
LON_COLUMNS = ("lon", "lng", "longitude", "x")
LAT_COLUMNS = ("lat", "latitude", "y")


@dataclass
class RawLayers:
    """Layers as read, converted to WGS84, before codes and hierarchy are worked out."""

    layers: dict[str, gpd.GeoDataFrame]
    single_layer: bool
    notes: list[str] = field(default_factory=list)


def read_source(source, *, crs=None, stations=None, stations_crs=None) -> RawLayers:
    """Read a boundary SOURCE (see the module doc) and an optional separate stations file.

    ``crs`` declares the CRS of the source files (required where a file has none, and for
    GCJ-02/BD-09). ``stations_crs`` declares the CRS of the stations: of the ``stations`` file,
    else of the source's own stations layer. Left out, the ``stations`` file is read in the CRS
    it declares (WGS84 for a CSV) and the source's stations layer in ``crs``, like its siblings.
    Raises :class:`BoundaryError` or :class:`CRSError` naming the file and what is wrong.
    """
    path = Path(source)
    declared = parse_crs(crs) if crs is not None else None
    station_system = parse_crs(stations_crs) if stations_crs is not None else None
    # layer -> (the CRS declared for it, the option that declares it, for messages)
    systems = {name: (declared, "--crs") for name in LAYERS}
    if stations is None and station_system is not None:
        systems["stations"] = (station_system, "--stations-crs")
    if not path.exists():
        raise BoundaryError(f"boundary source {path} does not exist", field="source")
    if path.is_dir():
        files = _layer_files(path)
        if "grids" not in files:
            raise BoundaryError(f"folder {path} has no grids layer (grids.geojson, grids.gpkg, "
                                "grids.shp ...)", field="source")
        raw = RawLayers({}, single_layer=False)
        for name, file in files.items():
            raw.layers[name] = _read_layer(file, None, *systems[name], raw.notes)
    else:
        raw = _read_file_source(path, systems)
    if stations is not None:
        raw.layers["stations"] = _read_layer(Path(stations), None, station_system,
                                             "--stations-crs", raw.notes)
    _check_geometry_types(raw.layers)
    return raw


def _layer_files(folder: Path) -> dict[str, Path]:
    found = {}
    for name in LAYERS:
        suffixes = (*LAYER_SUFFIXES, ".csv") if name == "stations" else LAYER_SUFFIXES
        for suffix in suffixes:
            candidate = folder / f"{name}{suffix}"
            if candidate.exists():
                found[name] = candidate
                break
    return found


def _read_file_source(path: Path, systems: dict) -> RawLayers:
    try:
        names = [str(n) for n in pyogrio.list_layers(path)[:, 0]]
    except Exception as exc:  # pyogrio raises several GDAL error types for unreadable files
        raise BoundaryError(f"cannot read {path}: {exc}", field="source") from exc
    if "grids" in names:
        raw = RawLayers({}, single_layer=False)
        for name in LAYERS:
            if name in names:
                raw.layers[name] = _read_layer(path, name, *systems[name], raw.notes)
        return raw
    if not names:
        raise BoundaryError(f"{path} has no layers", field="source")
    raw = RawLayers({}, single_layer=True)
    raw.layers["grids"] = _read_layer(path, names[0], *systems["grids"], raw.notes)
    raw.notes.append(f"{path.name}: single polygon layer {names[0]!r} used as the grid layer")
    return raw


def _read_layer(path: Path, layer, declared: CoordSystem | None, option: str, notes: list[str]):
    """One layer in WGS84; ``option`` is how the user declares its CRS (named in errors)."""
    where = f"{path.name}" + (f" layer {layer}" if layer and path.suffix == ".gpkg" else "")
    if path.suffix.lower() == ".csv":
        return _read_points_csv(path, declared, notes)
    try:
        frame = gpd.read_file(path, layer=layer, engine="pyogrio")
    except Exception as exc:  # GDAL reports unreadable files with several exception types
        raise BoundaryError(f"cannot read {where}: {exc}", field="source") from exc
    return _to_wgs84(frame, declared, where, notes, option)


def _read_points_csv(path: Path, declared: CoordSystem | None, notes: list[str]):
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise BoundaryError(f"cannot read {path.name}: {exc}", field="source") from exc
    lon_col = find_column(table.columns, LON_COLUMNS)
    lat_col = find_column(table.columns, LAT_COLUMNS)
    if lon_col is None or lat_col is None:
        raise BoundaryError(f"{path.name} needs longitude and latitude columns "
                            f"(one of {LON_COLUMNS} and one of {LAT_COLUMNS})", field="stations")
    lon = pd.to_numeric(table[lon_col], errors="coerce").to_numpy(float)
    lat = pd.to_numeric(table[lat_col], errors="coerce").to_numpy(float)
    bad = ~(np.isfinite(lon) & np.isfinite(lat))
    if bad.any():
        rows = ", ".join(str(i + 2) for i in np.flatnonzero(bad)[:10])
        raise BoundaryError(f"{path.name}: rows without usable coordinates (line {rows})",
                            field="stations")
    system = declared or parse_crs("wgs84")
    x, y = to_wgs84(lon, lat, system)
    _check_range(x, y, system, path.name)
    if not system.is_wgs84:
        notes.append(f"{path.name}: converted from {system.name} to WGS84")
    frame = table.drop(columns=[lon_col, lat_col])
    return gpd.GeoDataFrame(frame, geometry=shapely.points(x, y), crs=WGS84)


def find_column(columns, candidates) -> str | None:
    """The first column whose lower-cased name is one of ``candidates``."""
    lowered = {str(c).lower(): c for c in columns}
    return next((lowered[c] for c in candidates if c in lowered), None)


def _to_wgs84(frame: gpd.GeoDataFrame, declared: CoordSystem | None, where: str, notes, option):
    file_crs = frame.crs
    if declared is None:
        if file_crs is None:
            raise CRSError(f"{where} declares no coordinate system; name one with {option} "
                           "(wgs84, gcj02, bd09, cgcs2000 or EPSG:<code>)", field=_field(option))
        system = parse_crs(file_crs)
    else:
        _check_declared(file_crs, declared, where, option)
        system = declared
    geoms = frame.geometry.values
    if not system.is_wgs84:
        geoms = shapely.transform(np.asarray(geoms), lambda xy: np.column_stack(
            to_wgs84(xy[:, 0], xy[:, 1], system)))
        notes.append(f"{where}: converted from {system.name} to WGS84")
    x, y = _all_xy(geoms)
    _check_range(x, y, system, where)
    out = gpd.GeoDataFrame(frame.drop(columns=frame.geometry.name), geometry=np.asarray(geoms),
                           crs=WGS84)
    return out


def _check_declared(file_crs, declared: CoordSystem, where: str, option: str) -> None:
    """A declared CRS may fill a missing one, or re-label lon/lat as an offset system."""
    if file_crs is None:
        return
    if declared.offset is not None:
        if not file_crs.is_geographic:
            raise CRSError(f"{where} is in {parse_crs(file_crs).name}, a projected system, "
                           f"but {declared.name} (lon/lat) was declared", field=_field(option))
        return
    if file_crs != declared.crs and not (file_crs.is_geographic and declared.crs.is_geographic):
        raise CRSError(f"{where} declares {parse_crs(file_crs).name} but {declared.name} was "
                       f"given; drop {option} or correct it", field=_field(option))


def _field(option: str) -> str:
    """The error field for a CRS option: ``crs`` or ``stations_crs``."""
    return option.removeprefix("--").replace("-", "_")


def _all_xy(geoms):
    coords = shapely.get_coordinates(np.asarray(geoms))
    return coords[:, 0], coords[:, 1]


def _check_range(x, y, system: CoordSystem, where: str) -> None:
    if len(x) and not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))
                       and np.abs(x).max() <= 180 and np.abs(y).max() <= 90):
        raise CRSError(f"{where}: coordinates are out of range for lon/lat after reading them as "
                       f"{system.name}; the file's CRS is probably something else", field="crs")


def _check_geometry_types(layers: dict[str, gpd.GeoDataFrame]) -> None:
    """Refuse a layer holding the wrong kind of geometry, naming the first offending feature."""
    for name, frame in layers.items():
        points = name in POINT_LAYERS
        allowed = ("Point",) if points else ("Polygon", "MultiPolygon")
        kinds = frame.geometry.geom_type.to_numpy(dtype=object)
        # Empty polygons are kept for validation to report; a point must be a real point.
        bad = ~np.isin(kinds, allowed)
        if points:
            bad |= frame.geometry.is_empty.to_numpy()
        else:
            bad &= ~frame.geometry.is_empty.to_numpy()
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            kind = kinds[i] if isinstance(kinds[i], str) else "no geometry"
            raise BoundaryError(f"{name} feature #{i + 1} has {kind}; the {name} layer must hold "
                                f"{' or '.join(allowed)} geometries ({int(bad.sum())} such "
                                "features)", field=name)
