"""Boundary sets: one district's streets, communities, grids and stations, coded and linked.

:func:`load_boundaries` reads a SOURCE (see :mod:`geo.sources`), repairs invalid polygons when
asked, links each community to its street and each grid to its community, and assigns the codes
that are missing. It never drops or silently changes a feature: whatever it did is listed in
``BoundarySet.notes``, and whatever is wrong is left for :mod:`geo.validation` to report.

The hierarchy comes from parent-code fields where a feature has one (``street_code`` on
communities, ``community_code`` on grids, or ``parent_code`` on either); a feature without one is
placed in the parent it overlaps most (measured in m² in the set's metric CRS).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely

from geo.codes import DISTRICT_DIGITS, is_well_formed, number_children, reading_order
from geo.crs import WGS84, metric_crs_for, parse_metric_crs, transformer
from geo.errors import BoundaryError
from geo.sources import POLYGON_LAYERS, RawLayers, find_column, read_source

PARENT_FIELD = {"communities": "street_code", "grids": "community_code"}
STATION_ID_COLUMNS = ("station_id", "id", "code")
STATION_NAME_COLUMNS = ("name", "station_name", "facilityname")
FREE_CODE_WIDTH = 4
METRIC_SEGMENT_DEG = 0.0005  # about 50 m


@dataclass(frozen=True, eq=False)
class BoundarySet:
    """A loaded district: four WGS84 layers, each sorted by code, plus what loading did.

    ``streets``: code, name. ``communities``: code, name, street_code. ``grids``: code, name,
    community_code, street_code (and ``households`` where the source has it). ``stations``:
    station_id, name. ``buildings``: code (the feature number), households — the points where
    households live, used for coverage and partitioning (empty where the source has none). Every
    layer also keeps ``feature`` (its 1-based position in the source)
    and the source's other columns. ``hierarchical`` is False for a single polygon file used as
    the grid layer, whose codes are then kept as given rather than in the 15-digit form.
    """

    district_code: str | None
    streets: gpd.GeoDataFrame
    communities: gpd.GeoDataFrame
    grids: gpd.GeoDataFrame
    stations: gpd.GeoDataFrame
    metric_crs: pyproj.CRS
    buildings: gpd.GeoDataFrame = field(default_factory=lambda: _normalise_buildings(None))
    hierarchical: bool = True
    notes: tuple[str, ...] = field(default_factory=tuple)

    def layer(self, name: str) -> gpd.GeoDataFrame:
        return getattr(self, name)

    def metric(self, name: str) -> np.ndarray:
        """The geometries of layer ``name`` in the metric CRS (cached)."""
        return self._metric[name]

    @cached_property
    def _metric(self) -> dict[str, np.ndarray]:
        return {name: to_metric(self.layer(name).geometry.values, self.metric_crs)
                for name in ("streets", "communities", "grids", "stations")}

    def summary(self) -> dict:
        area_m2 = float(shapely.area(self.metric("grids")).sum())
        return {"district_code": self.district_code, "streets": len(self.streets),
                "communities": len(self.communities), "grids": len(self.grids),
                "stations": len(self.stations), "grid_area_km2": round(area_m2 / 1e6, 3),
                "metric_crs": self.metric_crs_name()}

    def metric_crs_name(self) -> str:
        """The metric CRS as ``EPSG:n``, or as WKT if it has no EPSG code: text that
        :func:`geo.crs.parse_metric_crs` reads back, so a stored set is rebuilt with it."""
        code = self.metric_crs.to_epsg()
        return f"EPSG:{code}" if code else self.metric_crs.to_wkt()


def to_metric(geoms, metric_crs: pyproj.CRS) -> np.ndarray:
    """Project WGS84 geometries into ``metric_crs`` with the cached transformer.

    Edges are first cut into pieces of at most :data:`METRIC_SEGMENT_DEG`, so that an edge that
    is straight in lon/lat keeps its shape once projected; otherwise a vertex lying on a
    neighbour's long edge would stand off it by centimetres and every shared edge would show
    slivers of several m².
    """
    tr = transformer(WGS84, metric_crs)
    dense = shapely.segmentize(np.asarray(geoms), METRIC_SEGMENT_DEG)
    return shapely.transform(dense, lambda xy: np.column_stack(tr.transform(xy[:, 0], xy[:, 1])))


def load_boundaries(source, *, crs=None, stations=None, stations_crs=None, code_field=None,
                    name_field=None, district_code=None, metric_crs=None,
                    fix=False) -> BoundarySet:
    """Load a boundary SOURCE into a :class:`BoundarySet`.

    ``crs`` declares the CRS of the files (needed for GCJ-02/BD-09 and for files without one);
    ``stations`` is an optional separate station file (GeoJSON, GeoPackage or a CSV with lon/lat
    columns), read in ``stations_crs`` if given, else in the CRS it declares — WGS84 for a CSV,
    not ``crs`` (see :func:`geo.sources.read_source`). ``code_field``/``name_field`` name the
    properties holding code and name (default ``code`` and ``name``); a named property that a
    polygon layer lacks is a :class:`BoundaryError`. ``district_code`` is the 6-digit prefix for
    codes to assign; by default it is taken from the codes present. ``metric_crs`` (a projected
    CRS in metres) overrides the UTM zone of the grids' centre. With ``fix=True`` invalid
    polygons are repaired and each repair is listed in the notes.
    """
    raw = read_source(source, crs=crs, stations=stations, stations_crs=stations_crs)
    _check_has_grids(raw)
    return build_boundaries(raw, code_field=code_field, name_field=name_field,
                            district_code=district_code, metric_crs=metric_crs, fix=fix)


def build_boundaries(raw: RawLayers, *, code_field=None, name_field=None, district_code=None,
                     metric_crs=None, fix=False) -> BoundarySet:
    """Turn raw WGS84 layers into a coded, linked :class:`BoundarySet` (see ``load_boundaries``)."""
    notes = list(raw.notes)
    _check_named_fields(raw, code_field=code_field, name_field=name_field)
    layers = {name: _normalise(raw.layers.get(name), name, code_field, name_field)
              for name in ("streets", "communities", "grids")}
    if metric_crs is None:
        west, south, east, north = layers["grids"].total_bounds
        metric_crs = metric_crs_for((west + east) / 2, (south + north) / 2)
    else:
        metric_crs = parse_metric_crs(metric_crs)
    if fix:
        for name, frame in layers.items():
            notes += _repair(frame, name, metric_crs)
    stations = _normalise_stations(raw.layers.get("stations"))
    buildings = _normalise_buildings(raw.layers.get("buildings"))
    if raw.single_layer:
        grids = layers["grids"]
        grids["code"] = _free_codes(grids, metric_crs, notes)
        return BoundarySet(None, layers["streets"], layers["communities"], sorted_layer(grids),
                           stations, metric_crs, buildings, hierarchical=False, notes=tuple(notes))
    district = district_code or _district_from_codes(layers, notes)
    streets, communities, grids = layers["streets"], layers["communities"], layers["grids"]
    _assign_codes(streets, None, district, "street", metric_crs, notes)
    _link(communities, "communities", streets, "streets", metric_crs, notes)
    _assign_codes(communities, "street_code", district, "community", metric_crs, notes)
    if len(communities) or not len(streets):
        _link(grids, "grids", communities, "communities", metric_crs, notes)
    else:
        # No community layer: the grids can only hang under streets, which validation refuses.
        _link(grids, "grids", streets, "streets", metric_crs, notes, column="street_code")
    _fill_street_codes(grids, communities)
    _assign_codes(grids, "community_code", district, "grid", metric_crs, notes)
    return BoundarySet(district, sorted_layer(streets), sorted_layer(communities),
                       sorted_layer(grids), stations, metric_crs, buildings, hierarchical=True,
                       notes=tuple(notes))


def _check_has_grids(raw: RawLayers) -> None:
    """A source must hold at least one grid with coordinates: a set built from nothing has no
    place to measure in and would pass every check."""
    geoms = np.asarray(raw.layers["grids"].geometry.values)
    if not (~shapely.is_missing(geoms) & ~shapely.is_empty(geoms)).any():
        raise BoundaryError("the grids layer has no features", field="grids")


def _check_named_fields(raw: RawLayers, **named) -> None:
    """A property the caller names for code or name must be in every polygon layer read.

    Otherwise every code would be invented and every name missing without a word; the error
    names the field and lists the properties the layer does have.
    """
    for option, column in named.items():
        if column is None:
            continue
        for name in POLYGON_LAYERS:
            frame = raw.layers.get(name)
            if frame is None or column in frame.columns:
                continue
            present = [str(c) for c in frame.columns if c != frame.geometry.name]
            listing = f"its properties are: {', '.join(present)}" if present else (
                "it has no properties")
            raise BoundaryError(f"the {name} layer has no property {column!r} (the "
                                f"{option.replace('_', ' ')}); {listing}", field=option)


def _normalise(frame, name, code_field, name_field) -> gpd.GeoDataFrame:
    """Standard columns (code, name, parent codes, feature) on a copy of one polygon layer."""
    if frame is None:
        frame = gpd.GeoDataFrame({"geometry": []}, geometry="geometry", crs=WGS84)
    out = frame.copy()
    out["feature"] = np.arange(1, len(out) + 1)
    out["code"] = text_column(out, code_field or "code")
    out["name"] = text_column(out, name_field or "name")
    if name in PARENT_FIELD:
        given = text_column(out, PARENT_FIELD[name])
        out[PARENT_FIELD[name]] = given.fillna(text_column(out, "parent_code"))
    if name == "grids":
        out["street_code"] = text_column(out, "street_code")
        if "households" in out:
            out["households"] = pd.to_numeric(out["households"], errors="coerce")
    return out


def text_column(frame, column) -> pd.Series:
    """A column as trimmed text (integers without '.0'), None where missing or blank."""
    if column not in frame:
        return pd.Series([None] * len(frame), index=frame.index, dtype=object)
    values = frame[column]
    if pd.api.types.is_float_dtype(values) and values.dropna().mod(1).eq(0).all():
        values = values.astype("Int64")
    text = values.astype(object).map(lambda v: None if pd.isna(v) else str(v).strip() or None)
    return text.astype(object)


def _normalise_stations(frame) -> gpd.GeoDataFrame:
    if frame is None:
        frame = gpd.GeoDataFrame({"geometry": []}, geometry="geometry", crs=WGS84)
    out = frame.copy()
    out["feature"] = np.arange(1, len(out) + 1)
    id_col = find_column(out.columns, STATION_ID_COLUMNS)
    name_col = find_column(out.columns, STATION_NAME_COLUMNS)
    ids = text_column(out, id_col) if id_col else pd.Series([None] * len(out), dtype=object)
    numbered = pd.Series([f"S{i:04d}" for i in range(1, len(out) + 1)], index=out.index)
    out["station_id"] = ids.fillna(numbered)
    out["name"] = text_column(out, name_col) if name_col else None
    return out.reset_index(drop=True)


def _normalise_buildings(frame) -> gpd.GeoDataFrame:
    """Household points: ``code`` is the feature number, ``households`` defaults to 1."""
    if frame is None:
        frame = gpd.GeoDataFrame({"geometry": []}, geometry="geometry", crs=WGS84)
    households = (pd.to_numeric(frame["households"], errors="coerce").fillna(1)
                  if "households" in frame.columns else pd.Series(1, index=frame.index))
    return gpd.GeoDataFrame(
        {"code": [str(i) for i in range(1, len(frame) + 1)],
         "households": households.round().to_numpy(dtype=np.int64),
         "feature": np.arange(1, len(frame) + 1)},
        geometry=frame.geometry.to_numpy(), crs=WGS84)


def _repair(frame, name, metric_crs) -> list[str]:
    """Make invalid polygons valid in place (polygonal parts only) and describe each repair."""
    geoms = frame.geometry.values
    invalid = ~shapely.is_valid(np.asarray(geoms)) & ~shapely.is_missing(np.asarray(geoms))
    notes = []
    for i in np.flatnonzero(invalid):
        before = geoms[i]
        after = shapely.make_valid(before, method="structure", keep_collapsed=False)
        reason = shapely.is_valid_reason(before)
        area_before, area_after = shapely.area(to_metric([before, after], metric_crs))
        frame.iloc[i, frame.columns.get_loc(frame.geometry.name)] = after
        notes.append(f"repaired {name} {_ref(frame.iloc[i], name)}: {reason}; "
                     f"area {area_before:,.1f} m² -> {area_after:,.1f} m²")
    return notes


def _ref(row, layer) -> str:
    return row["code"] if isinstance(row.get("code"), str) else f"{layer}#{row['feature']}"


def _district_from_codes(layers, notes) -> str:
    prefixes = Counter(code[:DISTRICT_DIGITS] for frame in layers.values()
                       for code in frame["code"].dropna() if code.isdigit()
                       and len(code) > DISTRICT_DIGITS)
    if prefixes:
        return prefixes.most_common(1)[0][0]
    notes.append("no district code in the source or given: codes start with 000000")
    return "0" * DISTRICT_DIGITS


def _link(children, child_name, parents, parent_name, metric_crs, notes, column=None) -> None:
    """Fill each child's parent code: keep a given one, else take the parent it overlaps most."""
    column = column or PARENT_FIELD[child_name]
    missing = children[column].isna().to_numpy()
    given = int((~missing).sum())
    if missing.any() and len(parents):
        best = largest_overlap(children.geometry.values[missing], parents.geometry.values,
                               metric_crs)
        codes = parents["code"].to_numpy(dtype=object)
        found = np.where(best >= 0, codes[np.maximum(best, 0)], None)
        children.loc[missing, column] = pd.Series(found, index=children.index[missing],
                                                  dtype=object)
    if len(children):
        parts = []
        if given:
            parts.append(f"{given} from the parent-code field")
        if missing.any():
            parts.append(f"{int(missing.sum())} by spatial containment (largest overlap)")
        notes.append(f"{child_name} -> {parent_name}: " + ", ".join(parts))


def largest_overlap(children, parents, metric_crs) -> np.ndarray:
    """For each WGS84 child geometry, the parent it overlaps most (by m²), or -1."""
    result = np.full(len(children), -1)
    if not len(children) or not len(parents):
        return result
    parents = _valid(parents)
    children = _valid(children)
    child_idx, parent_idx = shapely.STRtree(parents).query(children, predicate="intersects")
    if not len(child_idx):
        return result
    pieces = shapely.intersection(children[child_idx], parents[parent_idx])
    areas = shapely.area(to_metric(pieces, metric_crs))
    keep = areas > 0
    child_idx, parent_idx, areas = child_idx[keep], parent_idx[keep], areas[keep]
    # Sort by child, then largest area first (ties: lowest parent index); keep each child's first.
    order = np.lexsort((parent_idx, -areas, child_idx))
    child_sorted = child_idx[order]
    first = np.flatnonzero(np.r_[True, child_sorted[1:] != child_sorted[:-1]])
    result[child_sorted[first]] = parent_idx[order][first]
    return result


def _valid(geoms) -> np.ndarray:
    """A valid stand-in for overlay work; the stored geometries are not changed."""
    geoms = np.asarray(geoms)
    invalid = ~shapely.is_valid(geoms)
    if invalid.any():
        geoms = geoms.copy()
        geoms[invalid] = shapely.make_valid(geoms[invalid])
    return geoms


def _fill_street_codes(grids, communities) -> None:
    by_community = dict(zip(communities["code"], communities["street_code"], strict=True))
    derived = grids["community_code"].map(lambda c: by_community.get(c) if c else None)
    grids["street_code"] = derived.where(derived.notna(), grids["street_code"]).astype(object)


def _assign_codes(frame, parent_column, district, level, metric_crs, notes) -> None:
    """Number the features of ``frame`` that have no code, per parent, in reading order."""
    if not len(frame):
        return
    parent_level = {"street": "district", "community": "street", "grid": "community"}[level]
    parents = (pd.Series([district] * len(frame), index=frame.index) if parent_column is None
               else frame[parent_column])
    centroids, areas = _centroids_and_areas(frame, metric_crs)
    before = int(frame["code"].isna().sum())
    for parent, rows in frame.groupby(parents.fillna(""), sort=True).indices.items():
        if not is_well_formed(parent, parent_level) or not frame["code"].iloc[rows].isna().any():
            continue
        codes = number_children(list(frame["code"].iloc[rows]), parent, centroids[rows, 0],
                                centroids[rows, 1], areas[rows], level)
        frame.iloc[rows, frame.columns.get_loc("code")] = pd.Series(codes, dtype=object).values
    assigned = before - int(frame["code"].isna().sum())
    if assigned:
        notes.append(f"assigned {assigned} {level} codes in reading order")


def _free_codes(grids, metric_crs, notes) -> pd.Series:
    """Codes for a single polygon layer: kept as given, missing ones numbered in reading order."""
    codes = grids["code"].copy()
    if codes.isna().any():
        centroids, areas = _centroids_and_areas(grids, metric_crs)
        taken = set(codes.dropna())
        numbers = (f"{n:0{FREE_CODE_WIDTH}d}" for n in range(1, 10**6))
        for i in reading_order(centroids[:, 0], centroids[:, 1], areas):
            if codes.iloc[i] is None:
                codes.iloc[i] = next(n for n in numbers if n not in taken)
        notes.append(f"assigned {int(grids['code'].isna().sum())} grid codes in reading order")
    return codes


def _centroids_and_areas(frame, metric_crs):
    geoms = _valid(to_metric(frame.geometry.values, metric_crs))
    centroids = shapely.centroid(geoms)
    xy = np.full((len(geoms), 2), np.nan)  # an empty polygon has no centroid: numbered last
    present = ~shapely.is_empty(centroids)
    xy[present] = shapely.get_coordinates(centroids[present])
    return xy, shapely.area(geoms)


def sorted_layer(frame) -> gpd.GeoDataFrame:
    """Sort a layer by code (missing codes last, then file order) so index order is code order."""
    return frame.sort_values(["code", "feature"], na_position="last", kind="stable").reset_index(
        drop=True)


def write_boundaries(bset: BoundarySet, gpkg, geojson_folder=None) -> list[Path]:
    """Write a set as a GeoPackage (its layers; buildings where it has any) and, optionally, one
    GeoJSON file per layer."""
    gpkg = Path(gpkg)
    gpkg.parent.mkdir(parents=True, exist_ok=True)
    gpkg.unlink(missing_ok=True)
    written = [gpkg]
    for name in ("streets", "communities", "grids", "stations", "buildings"):
        frame = bset.layer(name).drop(columns=["feature", "code"] if name == "buildings"
                                      else ["feature"])
        if name == "buildings" and frame.empty:
            continue
        frame.to_file(gpkg, layer=name, driver="GPKG", engine="pyogrio")
        if geojson_folder is not None:
            path = Path(geojson_folder) / f"{name}.geojson"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.unlink(missing_ok=True)
            # Seven decimals (about 1 cm) are plenty for the many building points.
            precision = {"COORDINATE_PRECISION": 7} if name == "buildings" else {}
            frame.to_file(path, driver="GeoJSON", engine="pyogrio", **precision)
            written.append(path)
    return written
