"""Reading boundary sources: GeoPackage, a folder of layer files, a single polygon file, a CSV.

A SOURCE is one of

* a GeoPackage with the layers ``streets``, ``communities``, ``grids``, ``stations`` and
  ``buildings`` (household points with a ``households`` count; only ``grids`` is required);
* a folder holding files named after those layers (``grids.geojson``, ``streets.gpkg``,
  ``stations.csv`` ...);
* a single polygon file (GeoJSON, GeoPackage, FlatGeobuf, Shapefile or a zipped Shapefile), used
  as the grid layer.

A file is read only as the format its suffix names, and its first bytes must show that format
before GDAL sees it (:func:`_check_gdal_file`): GDAL picks its driver from the content, so a
``.json`` holding a VRT would otherwise make it read any file of the server or fetch URLs. GeoJSON
is read without GDAL at all, and a zip may hold nothing but the parts of shapefiles.

Every layer comes back in WGS84. A file is read in the CRS it declares; a file that declares none
(a Shapefile without ``.prj``) is refused unless the caller names one, and GCJ-02 or BD-09 — which
no file can declare — must always be named. GeoJSON and CSV lon/lat columns are WGS84 unless the
caller names another system.

Stations have a CRS of their own: a separate station file is not read in the boundaries' CRS but
in the one it declares — WGS84 for a CSV, which declares none, as phone and GIS exports of lon/lat
are — unless ``stations_crs`` names another.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pyproj
import shapely
import shapely.geometry

from geo.crs import WGS84, CoordSystem, parse_crs, to_wgs84
from geo.errors import BoundaryError, CRSError

POLYGON_LAYERS = ("streets", "communities", "grids")
POINT_LAYERS = ("stations", "buildings")  # buildings: optional household points
LAYERS = (*POLYGON_LAYERS, *POINT_LAYERS)
LAYER_SUFFIXES = (".geojson", ".json", ".gpkg", ".shp", ".fgb")
SOURCE_SUFFIXES = (*LAYER_SUFFIXES, ".zip")  # a single-file source; ".zip": zipped shapefiles
GEOJSON_SUFFIXES = (".geojson", ".json")
GEOJSON_TYPES = ("FeatureCollection", "Feature", "Point", "MultiPoint", "LineString",
                 "MultiLineString", "Polygon", "MultiPolygon", "GeometryCollection")
GPKG_MAGIC = b"SQLite format 3\x00"
FGB_MAGIC = b"fgb\x03fgb"  # FlatGeobuf's magic bytes, major version 3 (the 8th is the patch)
SHAPE_MAGIC = (9994).to_bytes(4, "big")  # the file code that starts a .shp and a .shx
DBF_VERSIONS = frozenset({0x02, 0x03, 0x04, 0x05, 0x30, 0x31, 0x32, 0x43, 0x63, 0x83, 0x8B,
                          0x8E, 0xCB, 0xF5, 0xFB})  # the dBASE versions a .dbf starts with
SHAPEFILE_PARTS = (".shp", ".shx", ".dbf", ".prj", ".cpg")  # extracted from a zip and read
SHAPEFILE_EXTRAS = (".shp.xml", ".qix", ".sbn", ".sbx")  # indexes and metadata: allowed, unread
# A zipped district is a few MB; the limits refuse a zip bomb before it fills the disk.
MAX_ZIP_MEMBERS = 64
MAX_UNZIPPED_BYTES = 256 * 1024 * 1024
MAX_TEXT_PART_BYTES = 64 * 1024  # a .prj or .cpg is a line of text
_EPSG_NAME = re.compile(r"(?:urn:ogc:def:crs:epsg:[\d.]*:|epsg:{1,2})(\d{1,6})", re.IGNORECASE)
_CRS84_NAME = re.compile(r"(?:urn:ogc:def:crs:ogc:[\d.]*:|ogc:)?crs:?84", re.IGNORECASE)
LON_COLUMNS = ("lon", "lng", "longitude", "x")
LAT_COLUMNS = ("lat", "latitude", "y")


@dataclass
class RawLayers:
    """Layers as read, converted to WGS84, before codes and hierarchy are worked out."""

    layers: dict[str, gpd.GeoDataFrame]
    single_layer: bool
    notes: list[str] = field(default_factory=list)


def read_source(source, *, crs=None, stations=None, stations_crs=None,
                layer=None) -> RawLayers:
    """Read a boundary SOURCE (see the module doc) and an optional separate stations file.

    ``crs`` declares the CRS of the source files (required where a file has none, and for
    GCJ-02/BD-09). ``stations_crs`` declares the CRS of the stations: of the ``stations`` file,
    else of the source's own stations layer. Left out, the ``stations`` file is read in the CRS
    it declares (WGS84 for a CSV) and the source's stations layer in ``crs``, like its siblings.

    ``layer`` (one of LAYERS) reads that layer alone, as a planner replacing it uploads it: the
    source's layer (or shapefile) of that name, else its only one; a source holding several,
    none named so, is refused naming them rather than one being guessed.

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
        wanted = layer or "grids"
        if wanted not in files:
            raise BoundaryError(f"folder {path} has no {wanted} layer ({wanted}.geojson, "
                                f"{wanted}.gpkg, {wanted}.shp ...)", field="source")
        raw = _pick_layers(path, list(files), systems,
                           lambda name, *how: _read_layer(files[name], None, *how), layer)
    else:
        raw = _read_file_source(path, systems, layer)
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


def _read_file_source(path: Path, systems: dict, layer: str | None) -> RawLayers:
    suffix = path.suffix.lower()
    if suffix == ".zip":  # checked as it is unpacked
        with tempfile.TemporaryDirectory(prefix="gridline-zip-") as folder:
            shapes = {shp.stem: shp for shp in _unzip_shapefiles(path, Path(folder))}
            return _pick_layers(path, list(shapes), systems, lambda name, *how: _read_layer(
                shapes[name], None, *how, label=_zipped(path, shapes[name])), layer)
    if suffix == ".csv" and layer == "stations":  # a lon/lat table, as --stations takes
        raw = RawLayers({}, single_layer=False)
        raw.layers["stations"] = _read_layer(path, None, *systems["stations"], raw.notes)
        return raw
    if suffix in GEOJSON_SUFFIXES:  # checked as it is parsed
        name, frame = _read_geojson(path)
        return _pick_layers(path, [name], systems,
                            lambda _name, declared, option, notes: _to_wgs84(
                                frame, declared, path.name, notes, option), layer)
    _check_gdal_file(path)
    try:
        names = [str(n) for n in pyogrio.list_layers(_gdal_path(path))[:, 0]]
    except Exception as exc:  # pyogrio raises several GDAL error types for unreadable files
        raise BoundaryError(f"cannot read {path}: {exc}", field="source") from exc
    return _pick_layers(path, names, systems,
                        lambda name, *how: _read_layer(path, name, *how), layer)


def _pick_layers(path: Path, names: list[str], systems: dict, read,
                 layer: str | None = None) -> RawLayers:
    """The layers named after LAYERS if ``grids`` is one, else the first as the grid layer;
    with ``layer``, that layer alone (see :func:`read_source`). ``read(name, declared, option,
    notes)`` reads one."""
    if layer is not None:
        name = _wanted_layer(path, names, layer)
        raw = RawLayers({}, single_layer=False)
        raw.layers[layer] = read(name, *systems[layer], raw.notes)
        return raw
    if "grids" in names:
        raw = RawLayers({}, single_layer=False)
        for name in LAYERS:
            if name in names:
                raw.layers[name] = read(name, *systems[name], raw.notes)
        return raw
    if not names:
        raise BoundaryError(f"{path} has no layers", field="source")
    raw = RawLayers({}, single_layer=True)
    raw.layers["grids"] = read(names[0], *systems["grids"], raw.notes)
    raw.notes.append(f"{path.name}: single polygon layer {names[0]!r} used as the grid layer")
    return raw


def _wanted_layer(path: Path, names: list[str], layer: str) -> str:
    """Which of a source's layers ``names`` is ``layer``: the one named so (in any case), else
    the only one. A zip's layers are its shapefiles, named by their stems."""
    named = [n for n in names if n == layer] or [n for n in names if n.lower() == layer]
    if named or len(names) == 1:
        return (named or names)[0]
    if not names:
        raise BoundaryError(f"{path} has no layers", field="source")
    if path.suffix.lower() == ".zip":
        found = ", ".join(f"{n}.shp" for n in names)
        raise _refused(path, f"it holds several shapefiles ({found}) and none is named "
                             f"{layer}.shp; zip only the one for the {layer} layer, or name it "
                             f"{layer}.shp")
    raise _refused(path, f"it holds several layers ({', '.join(names)}) and none is named "
                         f"{layer}; keep only the one for the {layer} layer, or name it {layer}")


def _zipped(archive: Path, member: Path) -> str:
    """How errors name a file unpacked from ``archive``: after the zip, which the user sent."""
    return f"{archive.name}/{member.name}"


def _read_layer(path: Path, layer, declared: CoordSystem | None, option: str, notes: list[str],
                label: str | None = None):
    """One layer in WGS84; ``option`` is how the user declares its CRS and ``label`` how errors
    name the file (default: its name)."""
    where = label or (f"{path.name}"
                      + (f" layer {layer}" if layer and path.suffix == ".gpkg" else ""))
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _read_points_csv(path, declared, notes)
    if suffix in GEOJSON_SUFFIXES:
        return _to_wgs84(_read_geojson(path)[1], declared, where, notes, option)
    if suffix == ".zip":
        with tempfile.TemporaryDirectory(prefix="gridline-zip-") as folder:
            shapes = {shp.stem: shp for shp in _unzip_shapefiles(path, Path(folder))}
            shape = next(iter(shapes.values()))
            return _read_layer(shape, None, declared, option, notes,
                               label=_zipped(path, shape))
    _check_gdal_file(path)
    try:
        frame = gpd.read_file(_gdal_path(path), layer=layer, engine="pyogrio")
    except Exception as exc:  # GDAL reports unreadable files with several exception types
        raise BoundaryError(f"cannot read {where}: {exc}", field="source") from exc
    return _to_wgs84(frame, declared, where, notes, option)


def _gdal_path(path: Path) -> str:
    """``path`` for GDAL, naming the driver where GDAL lets a path do so: ``GPKG:`` (which
    cannot carry a path holding ``:``; the SQLite header, checked first, still holds there)."""
    if path.suffix.lower() == ".gpkg" and ":" not in str(path):
        return f"GPKG:{path}"
    return str(path)


def _check_gdal_file(path: Path) -> None:
    """Refuse a file for GDAL that is not what its suffix says, before GDAL ever opens it.

    GDAL chooses its driver from the content, not the name: a ``.gpkg`` holding an
    ``<OGRVRTDataSource>`` would read any file of the server or fetch a URL. So only these pass:
    a GeoPackage starting with the SQLite header, FlatGeobuf with its magic bytes, and a
    shapefile whose .shp (and .shx) start with the file code 9994. (GeoJSON, zips and CSV never
    reach GDAL unchecked: see :func:`_geojson`, :func:`_unzip_shapefiles`.) Raises
    :class:`BoundaryError` naming the file.
    """
    suffix = path.suffix.lower()
    if suffix not in SOURCE_SUFFIXES:
        raise _refused(path, f"not a layer file; use one of {', '.join(SOURCE_SUFFIXES)} (or "
                             ".csv for stations)")
    if suffix == ".gpkg" and not _head(path).startswith(GPKG_MAGIC):
        raise _refused(path, "not a GeoPackage (no SQLite header)")
    elif suffix == ".fgb" and not _head(path).startswith(FGB_MAGIC):
        raise _refused(path, "not a FlatGeobuf file (no fgb magic bytes)")
    elif suffix == ".shp":
        _check_part(path, path.name, _head(path))
        for part in (".shx", ".dbf", ".SHX", ".DBF"):
            if (sibling := path.with_suffix(part)).exists():
                _check_part(path, sibling.name, _head(sibling))


def _refused(path: Path, why: str) -> BoundaryError:
    return BoundaryError(f"cannot read {path}: {why}", field="source")


def _head(path: Path) -> bytes:
    """The first bytes of a file, enough for any signature checked here."""
    try:
        with path.open("rb") as f:
            return f.read(16)
    except OSError as exc:
        raise _refused(path, exc.strerror or str(exc)) from None


def _check_part(path: Path, name: str, head: bytes) -> None:
    """Refuse a shapefile part ``name`` (of ``path``) whose first bytes are not its format's."""
    part = Path(name).suffix.lower()
    if part in (".shp", ".shx") and not head.startswith(SHAPE_MAGIC):
        raise _refused(path, f"{name} is not a shapefile {part} (it must start with the file "
                             "code 9994)")
    if part == ".dbf" and (not head or head[0] not in DBF_VERSIONS):
        raise _refused(path, f"{name} is not a dBASE table")


def _check_zip_listing(path: Path, members: list[zipfile.ZipInfo]) -> list[zipfile.ZipInfo]:
    """The members to extract; refuses a zip bomb or anything but plain shapefile parts."""
    if len(members) > MAX_ZIP_MEMBERS:
        raise _refused(path, f"it holds {len(members)} files; a zipped shapefile may hold at "
                             f"most {MAX_ZIP_MEMBERS}")
    total = sum(m.file_size for m in members)
    if total > MAX_UNZIPPED_BYTES:
        raise _refused(path, f"it unpacks to {total:,} bytes; at most {MAX_UNZIPPED_BYTES:,} "
                             "are taken")
    wanted, seen = [], set()
    for member in members:
        name, lowered = member.filename, member.filename.lower()
        if "/" in name or "\\" in name or name.startswith(".") or not name.isprintable():
            raise _refused(path, f"member {name!r} is not a plain file name; a zipped shapefile "
                                 "holds its parts at the top level")
        if lowered in seen:
            raise _refused(path, f"member {name!r} is there twice")
        seen.add(lowered)
        if member.flag_bits & 0x1 or member.compress_type not in (zipfile.ZIP_STORED,
                                                                  zipfile.ZIP_DEFLATED):
            raise _refused(path, f"member {name!r} is encrypted or not deflated")
        if lowered.endswith(SHAPEFILE_EXTRAS):
            continue
        if not lowered.endswith(SHAPEFILE_PARTS):
            raise _refused(path, f"member {name!r} is not a shapefile part; a zipped shapefile "
                                 f"may hold only {', '.join(SHAPEFILE_PARTS)} (and "
                                 f"{', '.join(SHAPEFILE_EXTRAS)})")
        if lowered.endswith((".prj", ".cpg")) and member.file_size > MAX_TEXT_PART_BYTES:
            raise _refused(path, f"member {name!r} is too large for a {lowered[-4:]}")
        wanted.append(member)
    if not any(m.filename.lower().endswith(".shp") for m in wanted):
        raise _refused(path, "it holds no .shp file")
    for member in wanted:  # GDAL cannot read a .shp without .shx, nor its fields without .dbf
        if member.filename.lower().endswith(".shp"):
            stem = member.filename[:-4]
            missing = [f"{stem}{part}" for part in (".shx", ".dbf") if f"{stem}{part}".lower()
                       not in seen]
            if missing:
                raise _refused(path, f"{member.filename} comes without {' and '.join(missing)}; "
                                     "a shapefile needs its .shx and .dbf beside it")
    return wanted


def _unzip_shapefiles(path: Path, folder: Path) -> list[Path]:
    """Extract the parts of a zipped shapefile into ``folder``; the .shp files.

    One pass over one open archive: its listing is checked first (:func:`_check_zip_listing`:
    shapefile parts only, at the top level, within the count and size limits), then each part's
    first bytes as it is unpacked, so GDAL only ever sees checked parts. zipfile reads no member
    past the size its listing declares, so the listing's size limit bounds what is written."""
    shapes = []
    try:
        with zipfile.ZipFile(path) as archive:
            for member in _check_zip_listing(path, archive.infolist()):
                target = folder / member.filename
                with archive.open(member) as source, target.open("wb") as out:
                    head = source.read(16)
                    _check_part(path, member.filename, head)
                    out.write(head)
                    shutil.copyfileobj(source, out)
                if target.suffix.lower() == ".shp":
                    shapes.append(target)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
        raise _refused(path, f"not a readable zip file: {exc}") from None
    return shapes


def _geojson(path: Path) -> dict:
    """The GeoJSON object in ``path``: a JSON object whose type is a GeoJSON type."""
    try:
        data = json.loads(path.read_bytes())
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError
        raise _refused(path, f"not GeoJSON: {exc}") from None
    except OSError as exc:
        raise _refused(path, exc.strerror or str(exc)) from None
    if not isinstance(data, dict) or data.get("type") not in GEOJSON_TYPES:
        raise _refused(path, "not GeoJSON, which is a JSON object whose type is "
                             "FeatureCollection, Feature or a geometry")
    return data


def _read_geojson(path: Path) -> tuple[str, gpd.GeoDataFrame]:
    """A GeoJSON file as (layer name, frame), read without GDAL so that nothing in it (a
    ``crs`` link, say) can make the server open another file or URL.

    Read as GDAL did: the layer is named by the ``name`` member, else the file; a bare
    geometry is one feature; a string feature ``id`` is a column; nested values are JSON
    text; a column mixing text and numbers is text; the CRS is the ``crs`` member's EPSG code,
    WGS84 without one.
    """
    data = _geojson(path)
    kind = data["type"]
    if kind == "FeatureCollection":
        features = data.get("features")
        if not isinstance(features, list):
            raise _refused(path, "its GeoJSON features are not a list")
    else:
        features = [data if kind == "Feature" else {"type": "Feature", "geometry": data}]
    rows, geometries = [], []
    for i, feature in enumerate(features):
        properties = feature.get("properties") if isinstance(feature, dict) else None
        if (not isinstance(feature, dict) or feature.get("type") != "Feature"
                or not isinstance(properties, dict | None)):
            raise _refused(path, f"feature #{i + 1} is not a GeoJSON Feature with properties")
        row = {str(k): json.dumps(v, ensure_ascii=False) if isinstance(v, dict | list) else v
               for k, v in (properties or {}).items()}
        if isinstance(feature.get("id"), str):
            row.setdefault("id", feature["id"])
        rows.append(row)
        geometries.append(_geometry(feature.get("geometry"), path, i))
    table = pd.DataFrame(rows, index=pd.RangeIndex(len(rows)))
    for column in table.columns:
        values = table[column]
        if values.dtype == object and values.map(lambda v: isinstance(v, str)).any():
            table[column] = values.map(lambda v: v if v is None or isinstance(v, str)
                                       or v != v else str(v))  # v != v: NaN
    frame = gpd.GeoDataFrame(table, geometry=gpd.GeoSeries(geometries, index=table.index),
                             crs=_geojson_crs(data.get("crs")))
    name = data.get("name")
    return (name if isinstance(name, str) and name else path.stem), frame


def _geometry(value, path: Path, i: int):
    if value is None:
        return None
    try:
        return shapely.geometry.shape(value)
    except Exception as exc:  # shapely raises several types for malformed coordinates
        raise _refused(path, f"feature #{i + 1} has no readable geometry: {exc}") from None


def _geojson_crs(member) -> pyproj.CRS | None:
    """The CRS a GeoJSON ``crs`` member names: WGS84 without one, None (to be named by the
    caller) for anything but an EPSG code or CRS84 — a ``link`` is never followed."""
    if member is None:
        return WGS84
    properties = member.get("properties") if isinstance(member, dict) else None
    if not isinstance(properties, dict):
        return None
    name = properties.get("name") if member.get("type") == "name" else None
    if member.get("type") == "EPSG" and isinstance(properties.get("code"), int):
        name = f"EPSG:{properties['code']}"
    if not isinstance(name, str):
        return None
    if _CRS84_NAME.fullmatch(name):
        return WGS84
    if match := _EPSG_NAME.fullmatch(name):
        try:
            return pyproj.CRS.from_epsg(int(match[1]))
        except pyproj.exceptions.CRSError:
            return None
    return None


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
