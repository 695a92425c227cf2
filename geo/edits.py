"""Edits a planner makes to a draft boundary set: split, merge, reshape, reassign, replace a layer.

Each edit takes a :class:`BoundarySet` and returns an :class:`Edited` — a new set and a one-line
summary — and never changes the set it was given. Polygons are cut and joined in lon/lat, where
their straight edges are defined (as :mod:`geo.validation` does), and measured in m².

The rules keep the grids of a community tiling it:

* ``split``: a line that crosses a grid from edge to edge cuts it in exactly two; the larger part
  keeps the code and name, the other gets the community's next code.
* ``merge``: grids of one community whose union is one polygon (they share an edge, not just a
  corner) become one grid under the smallest code.
* ``reshape`` (moving shared edges): the grid takes its new outline; the neighbours follow — the
  area it gains is taken from them, and each piece it gives up goes to the neighbour sharing the
  longest edge with that piece. A piece no neighbour touches would leave a gap and is refused,
  as is an outline that leaves the community or swallows or cuts a neighbour.
* ``reassign``: a grid moves to an adjacent community (which grows by the grid while the old one
  shrinks; streets follow the same way) and gets the next code under it.
* ``partition``: the grids of whole communities redrawn as balanced, compact grids around a
  target of households (see :mod:`geo.partition`), numbered in reading order after their
  community's earlier codes.
* ``station``: one service station added, changed (name, services, position) or removed; a
  station stands inside the district.
* ``replace``: a whole layer read from an uploaded file, coded and linked like an import.

A next code is above every code the community's grids have now and every ``retired`` one (the
codes of versions that were once active), so a code never comes back naming another place. A
bad edit raises :class:`EditError` saying why.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely.geometry import shape
from shapely.ops import split as split_polygon

from geo.boundaries import (
    BoundarySet,
    build_boundaries,
    sorted_layer,
    text_column,
    to_metric,
)
from geo.codes import CODE_LENGTH, LEVEL_DIGITS, MAX_CHILDREN
from geo.errors import InputError
from geo.partition import partition
from geo.sources import LAYERS, RawLayers

PARTITION_FIELDS = {"target_households": "target", "min_households": "min",
                    "max_households": "max"}
MIN_PART_M2 = 1.0  # a part smaller than this is a sliver, not a grid
OPERATIONS = ("split", "merge", "reshape", "reassign", "partition", "station", "replace")
MAX_STATION_TEXT = 200


class EditError(InputError):
    """An edit that cannot be made; the message says why and nothing was changed."""


@dataclass(frozen=True)
class Edited:
    """The set after an edit, what was done, and which grid codes it touched."""

    boundaries: BoundarySet
    summary: str
    grids: tuple[str, ...]


def apply_edit(bset: BoundarySet, operation: str, params: dict, points=None,
               weights=None, retired=frozenset()) -> Edited:
    """Apply one edit given as plain data (as an API receives it).

    ``split``: ``grid``, ``line`` (GeoJSON LineString). ``merge``: ``grids`` (codes).
    ``reshape``: ``grid``, ``polygon`` (GeoJSON Polygon). ``reassign``: ``grid``, ``community``.
    ``partition``: ``communities`` (codes), ``target`` and optionally ``min`` and ``max``
    households (or, with ``points`` and ``weights``, that weight instead, e.g. reports).
    ``station``: ``station`` (id) with ``name``, ``services`` (list) and ``point`` (GeoJSON
    Point) to add or change it, or ``remove`` true. Geometries are WGS84 lon/lat. ``retired``
    grid codes are never given to a new grid.
    (``replace`` takes a file and goes through :func:`replace_layer`.)
    """
    if not bset.hierarchical:
        raise EditError("only a set of streets, communities and grids can be edited",
                        field="version")
    if operation == "split":
        return split_grid(bset, _code(params, "grid"), _geometry(params, "line", "LineString"),
                          retired)
    if operation == "merge":
        codes = params.get("grids")
        if not isinstance(codes, list) or not all(isinstance(c, str) for c in codes):
            raise EditError("grids must be a list of grid codes", field="grids")
        return merge_grids(bset, codes)
    if operation == "reshape":
        return reshape_grid(bset, _code(params, "grid"),
                            _geometry(params, "polygon", "Polygon"))
    if operation == "reassign":
        return reassign_grid(bset, _code(params, "grid"), _code(params, "community"), retired)
    if operation == "partition":
        return partition_communities(bset, params, points, weights, retired)
    if operation == "station":
        return edit_station(bset, params)
    raise EditError(f"operation must be one of {', '.join(OPERATIONS[:-1])}",
                    field="operation")


def split_grid(bset: BoundarySet, code: str, line, retired=frozenset()) -> Edited:
    """Cut grid ``code`` in two along ``line`` (see the module doc)."""
    grids = bset.grids
    i = _grid_index(bset, code)
    parts = [p for p in shapely.get_parts(split_polygon(grids.geometry.iloc[i], line).geoms)
             if shapely.area(to_metric([p], bset.metric_crs))[0] > MIN_PART_M2]
    if len(parts) < 2:
        raise EditError(f"the line does not cut grid {code} in two: draw it across the grid "
                        "from one edge to another", field="line")
    if len(parts) > 2:
        raise EditError(f"the line cuts grid {code} into {len(parts)} pieces; draw a line that "
                        "cuts it in two", field="line")
    areas = shapely.area(to_metric(parts, bset.metric_crs))
    keep, new = (parts[0], parts[1]) if areas[0] >= areas[1] else (parts[1], parts[0])
    community = grids["community_code"].iloc[i]
    new_code = _next_code(grids, community, retired)
    frame = grids.copy()
    frame.loc[i, "geometry"] = keep
    added = _new_grid(frame, new_code, community, grids["street_code"].iloc[i], new,
                      _grid_name(bset, community, new_code))
    frame = pd.concat([frame, added], ignore_index=True)
    result = _with_grids(bset, frame, (code, new_code))
    return Edited(result, f"split grid {code}: new grid {new_code}", (code, new_code))


def merge_grids(bset: BoundarySet, codes: list[str]) -> Edited:
    """Join adjacent grids of one community into the one with the smallest code."""
    codes = sorted(set(codes))
    if len(codes) < 2:
        raise EditError("name at least two different grids to merge", field="grids")
    rows = [_grid_index(bset, c) for c in codes]
    grids = bset.grids
    communities = set(grids["community_code"].iloc[rows])
    if len(communities) > 1:
        raise EditError(f"grids {', '.join(codes)} belong to different communities "
                        f"({', '.join(sorted(communities))}); reassign them first",
                        field="grids")
    union = shapely.union_all(grids.geometry.values[rows])
    if union.geom_type != "Polygon":
        raise EditError(f"grids {', '.join(codes)} are not adjacent: they must share an edge "
                        "to be merged", field="grids")
    frame = grids.copy()
    frame.loc[rows[0], "geometry"] = union
    frame = frame.drop(index=rows[1:]).reset_index(drop=True)
    result = _with_grids(bset, frame, tuple(codes))
    return Edited(result, f"merged grids {', '.join(codes[1:])} into {codes[0]}", tuple(codes))


def reshape_grid(bset: BoundarySet, code: str, polygon) -> Edited:
    """Give grid ``code`` a new outline; its neighbours follow (see the module doc)."""
    if not polygon.is_valid:
        raise EditError(f"the new outline is not a valid polygon: "
                        f"{shapely.is_valid_reason(polygon)}", field="polygon")
    grids = bset.grids
    i = _grid_index(bset, code)
    community_code = grids["community_code"].iloc[i]
    community = _feature(bset.communities, community_code).geometry
    outside = _m2(bset, shapely.difference(polygon, community))
    if outside > MIN_PART_M2:
        raise EditError(f"the new outline of grid {code} leaves its community "
                        f"{community_code} by {outside:,.0f} m²", field="polygon")
    old = grids.geometry.iloc[i]
    new = shapely.intersection(polygon, community)
    if new.geom_type != "Polygon" or _m2(bset, new) <= MIN_PART_M2:
        raise EditError(f"the new outline of grid {code} must be one polygon inside its "
                        "community", field="polygon")
    siblings = [j for j in np.flatnonzero(grids["community_code"].to_numpy() == community_code)
                if j != i]
    shapes = {j: shapely.difference(grids.geometry.iloc[j], new) for j in siblings}
    for j, g in shapes.items():
        other = grids["code"].iloc[j]
        if _m2(bset, g) <= MIN_PART_M2:
            raise EditError(f"the new outline of grid {code} swallows grid {other}; merge them "
                            "instead", field="polygon")
        if g.geom_type != "Polygon":
            raise EditError(f"the new outline of grid {code} cuts grid {other} in pieces",
                            field="polygon")
    given_up = shapely.get_parts(shapely.difference(old, new))
    for piece in given_up:
        if _m2(bset, piece) <= MIN_PART_M2:
            continue
        shared = {j: shapely.length(shapely.intersection(piece.boundary, g.boundary))
                  for j, g in shapes.items()}
        taker = max(shared, key=shared.get, default=None)
        if taker is None or shared[taker] <= 0:
            raise EditError(f"the new outline of grid {code} would leave a gap of "
                            f"{_m2(bset, piece):,.0f} m² that no neighbouring grid touches",
                            field="polygon")
        shapes[taker] = shapely.union(shapes[taker], piece)
    frame = grids.copy()
    frame.loc[i, "geometry"] = new
    touched = [code]
    for j, g in shapes.items():
        if not shapely.equals(g, grids.geometry.iloc[j]):
            frame.loc[j, "geometry"] = g
            touched.append(grids["code"].iloc[j])
    result = _with_grids(bset, frame, tuple(touched))
    moved = ", ".join(touched[1:]) or "no neighbour"
    return Edited(result, f"reshaped grid {code} (neighbours following: {moved})",
                  tuple(touched))


def reassign_grid(bset: BoundarySet, code: str, community_code: str,
                  retired=frozenset()) -> Edited:
    """Move grid ``code`` to the adjacent community ``community_code`` under a new code."""
    grids, communities = bset.grids, bset.communities
    i = _grid_index(bset, code)
    old_code = grids["community_code"].iloc[i]
    if community_code == old_code:
        raise EditError(f"grid {code} already belongs to community {community_code}",
                        field="community")
    target = _feature(communities, community_code, field="community")
    geometry = grids.geometry.iloc[i]
    shared = shapely.length(shapely.intersection(geometry.boundary, target.geometry.boundary))
    if shared <= 0:
        raise EditError(f"grid {code} does not border community {community_code}; a grid can "
                        "only move to a neighbouring community", field="community")
    source = _feature(communities, old_code)
    if len(grids[grids["community_code"] == old_code]) == 1:
        raise EditError(f"grid {code} is the only grid of community {old_code}; the community "
                        "would be left empty", field="grid")
    new_code = _next_code(grids, community_code, retired)
    comm = communities.copy()
    _move_area(comm, old_code, community_code, geometry)
    streets = bset.streets.copy()
    if source["street_code"] != target["street_code"]:
        _move_area(streets, source["street_code"], target["street_code"], geometry)
    frame = grids.copy()
    frame.loc[i, ["code", "community_code", "street_code", "name"]] = [
        new_code, community_code, target["street_code"],
        _grid_name(bset, community_code, new_code)]
    result = dataclasses.replace(bset, streets=sorted_layer(streets),
                                 communities=sorted_layer(comm),
                                 grids=sorted_layer(_recount(bset, frame, (new_code,))))
    return Edited(result, f"moved grid {code} to community {community_code} as {new_code}",
                  (code, new_code))


def partition_communities(bset: BoundarySet, params: dict, points=None, weights=None,
                          retired=frozenset()) -> Edited:
    """Redraw the grids of ``params["communities"]`` with :func:`geo.partition.partition`; the
    new grids take codes after every one their community has had (see :func:`_fresh_codes`)."""
    codes = params.get("communities")
    if not isinstance(codes, list) or not codes or not all(isinstance(c, str) for c in codes):
        raise EditError("communities must be a list of community codes", field="communities")
    try:
        result = partition(bset, codes, target=params.get("target"),
                           min_households=params.get("min"), max_households=params.get("max"),
                           points=points, weights=weights,
                           weight_name="reports" if points is not None else None)
    except InputError as exc:  # name the fields as this edit calls them
        field = PARTITION_FIELDS.get(exc.field, exc.field)
        raise EditError(str(exc), field=field) from None
    q = result.quality.overall
    grids = result.boundaries.grids
    redrawn = _fresh_codes(result.boundaries, bset,
                           grids.index[grids["community_code"].isin(codes)], retired)
    before = set(bset.grids.loc[bset.grids["community_code"].isin(codes), "code"])
    after = set(redrawn.grids.loc[redrawn.grids["community_code"].isin(codes), "code"])
    ratio = "–" if q["ratio"] is None or not np.isfinite(q["ratio"]) else f"{q['ratio']:.2f}"
    summary = (f"partitioned {', '.join(codes)} into {q['grids']} grids: "
               f"{result.quality.weight_name} per grid {q['min']:.0f}–{q['max']:.0f} "
               f"(max/min {ratio}), mean Polsby-Popper {q['pp_mean']:.2f}")
    return Edited(redrawn, summary, tuple(sorted(before | after)))


def _fresh_codes(new: BoundarySet, old: BoundarySet, rows, retired) -> BoundarySet:
    """``new`` with its grids at ``rows`` (index labels) numbered, in their present order,
    after every code their community's grids have had (in ``old`` or ``retired``), and named
    after those numbers: a code an earlier grid had never names another place."""
    grids = new.grids.copy()
    chosen = grids.loc[rows]
    for community, members in chosen.groupby("community_code", sort=True):
        labels = members.index[np.argsort(members["code"].to_numpy(object), kind="stable")]
        first = int(_next_code(old.grids, community, retired)[-LEVEL_DIGITS:])
        if first + len(labels) - 1 > MAX_CHILDREN:
            raise EditError(f"community {community} has too few free grid codes left for "
                            f"{len(labels)} grids", field="communities")
        codes = [f"{community}{n:0{LEVEL_DIGITS}d}" for n in range(first, first + len(labels))]
        grids.loc[labels, "code"] = codes
        grids.loc[labels, "name"] = [_grid_name(old, community, c) for c in codes]
    return dataclasses.replace(new, grids=sorted_layer(grids))


def edit_station(bset: BoundarySet, params: dict) -> Edited:
    """Add, change or remove the station ``params["station"]`` (see :func:`apply_edit`)."""
    station = params.get("station")
    if not isinstance(station, str) or not 0 < len(station) <= 64:
        raise EditError("station must be a station id of 1 to 64 characters", field="station")
    stations = bset.stations.drop(columns="feature").copy()
    hits = np.flatnonzero(stations["station_id"].to_numpy() == station)
    if params.get("remove") is True:
        if not len(hits):
            raise EditError(f"there is no station {station} in this version", field="station")
        return _with_stations(bset, stations.drop(index=stations.index[hits[0]]),
                              f"removed station {station}")
    if set(params) - {"station"} <= {"remove"}:
        raise EditError("give name, services or point to set, or remove: true", field="remove")
    fields = {"station_id": station}
    if "name" in params:
        fields["name"] = _station_text(params["name"], "name")
    if "services" in params:
        services = params["services"]
        if not isinstance(services, list) or not all(
                isinstance(v, str) and v and ";" not in v for v in services):
            raise EditError("services must be a list of service names (text without ';')",
                            field="services")
        fields["services"] = ";".join(sorted(set(services)))
    if "point" in params:
        point = _geometry(params, "point", "Point")
        if not shapely.union_all(bset.communities.geometry.values).covers(point):
            raise EditError("point must lie inside the district", field="point")
        fields["geometry"] = point
    if len(hits):
        row = stations.index[hits[0]]
        for name, value in fields.items():
            stations.at[row, name] = value
        return _with_stations(bset, stations, f"changed station {station}")
    if "name" not in fields or "geometry" not in fields:
        raise EditError(f"there is no station {station}; a new one needs a name and a point",
                        field="station")
    fields.setdefault("services", "")
    added = gpd.GeoDataFrame([fields], geometry="geometry", crs=stations.crs)
    return _with_stations(bset, pd.concat([stations, added], ignore_index=True),
                          f"added station {station}")


def replace_layer(bset: BoundarySet, layer: str, frame: gpd.GeoDataFrame,
                  retired=frozenset()) -> Edited:
    """Replace one whole layer by ``frame`` (WGS84, as read from a file); coded like an import,
    except that grids without a code are numbered after every code their community has had
    (in ``bset`` or ``retired``)."""
    if layer not in LAYERS:
        raise EditError(f"layer must be one of {', '.join(LAYERS)}", field="layer")
    layers = {name: bset.layer(name) for name in LAYERS}
    layers[layer] = frame
    result = build_boundaries(RawLayers(layers, single_layer=False),
                              district_code=bset.district_code, metric_crs=bset.metric_crs)
    if layer == "grids":
        uncoded = np.flatnonzero(text_column(frame, "code").isna()) + 1  # numbered from 1
        result = _fresh_codes(result, bset, result.grids.index[
            result.grids["feature"].isin(uncoded) & result.grids["code"].notna()], retired)
    before, after = set(bset.grids["code"]), set(result.grids["code"])
    changed = sorted(before ^ after) if layer == "grids" else []
    return Edited(result, f"replaced the {layer} layer ({len(frame)} features)", tuple(changed))


# --- helpers ---------------------------------------------------------------------------------

def _with_stations(bset: BoundarySet, stations, summary: str) -> Edited:
    return dataclasses.replace(replace_layer(bset, "stations", stations), summary=summary)


def _station_text(value, name: str) -> str:
    if not isinstance(value, str) or not 0 < len(value.strip()) <= MAX_STATION_TEXT:
        raise EditError(f"{name} must be text of 1 to {MAX_STATION_TEXT} characters", field=name)
    return value.strip()


def _code(params: dict, name: str) -> str:
    value = params.get(name)
    if not isinstance(value, str) or not value:
        raise EditError(f"{name} must be a {name} code", field=name)
    return value


def _geometry(params: dict, name: str, kind: str):
    value = params.get(name)
    try:
        geometry = shape(value)
    except (AttributeError, KeyError, TypeError, ValueError, OverflowError,
            shapely.errors.GEOSException):
        geometry = None
    if geometry is None or geometry.geom_type != kind or geometry.is_empty:
        raise EditError(f"{name} must be a GeoJSON {kind} in lon/lat", field=name)
    if not np.isfinite(shapely.get_coordinates(geometry)).all():
        raise EditError(f"{name} has coordinates that are not finite numbers", field=name)
    return geometry


def _grid_index(bset: BoundarySet, code: str) -> int:
    hits = np.flatnonzero(bset.grids["code"].to_numpy() == code)
    if not len(hits):
        raise EditError(f"there is no grid {code} in this version", field="grid")
    return int(hits[0])


def _feature(frame, code, field="community"):
    hits = frame[frame["code"] == code]
    if hits.empty:
        raise EditError(f"there is no {field} {code} in this version", field=field)
    return hits.iloc[0]


def _next_code(grids, community_code: str, retired=frozenset()) -> str:
    used = [int(c[-LEVEL_DIGITS:]) for c in {*grids["code"], *retired}
            if isinstance(c, str) and c.startswith(community_code)
            and len(c) == CODE_LENGTH["grid"]]
    number = max(used, default=0) + 1
    if number > MAX_CHILDREN:
        raise EditError(f"community {community_code} has no free grid code left", field="grid")
    return f"{community_code}{number:0{LEVEL_DIGITS}d}"


def _grid_name(bset: BoundarySet, community_code: str, code: str) -> str | None:
    names = bset.communities.loc[bset.communities["code"] == community_code, "name"]
    name = names.iloc[0] if len(names) else None
    return f"{name}第{int(code[-LEVEL_DIGITS:])}网格" if isinstance(name, str) else None


def _new_grid(frame, code, community, street, geometry, name) -> gpd.GeoDataFrame:
    row = {column: None for column in frame.columns}
    row.update(code=code, name=name, community_code=community, street_code=street,
               feature=int(frame["feature"].max()) + 1, geometry=geometry)
    return gpd.GeoDataFrame([row], geometry="geometry", crs=frame.crs)


def _move_area(frame, from_code, to_code, geometry) -> None:
    """Take ``geometry`` out of feature ``from_code`` and add it to ``to_code`` (in place)."""
    src = frame.index[frame["code"] == from_code][0]
    dst = frame.index[frame["code"] == to_code][0]
    frame.loc[src, "geometry"] = shapely.difference(frame.geometry[src], geometry)
    frame.loc[dst, "geometry"] = shapely.union(frame.geometry[dst], geometry)


def _with_grids(bset: BoundarySet, frame, touched) -> BoundarySet:
    return dataclasses.replace(bset, grids=sorted_layer(_recount(bset, frame, touched)))


def _recount(bset: BoundarySet, frame, touched) -> gpd.GeoDataFrame:
    """Households of the touched grids, counted from the building points where the set has any
    (else shared out by area from the grids they came from)."""
    if "households" not in frame.columns:
        return frame
    rows = np.flatnonzero(frame["code"].isin(touched).to_numpy())
    geoms = frame.geometry.values[rows]
    if len(bset.buildings):
        tree = shapely.STRtree(bset.buildings.geometry.values)
        grid_idx, point_idx = tree.query(geoms, predicate="covers")
        counts = np.bincount(grid_idx, weights=bset.buildings["households"].to_numpy()[point_idx],
                             minlength=len(rows))
    else:
        old = bset.grids
        total = old.loc[old["code"].isin(touched), "households"].sum()
        area = shapely.area(to_metric(geoms, bset.metric_crs))
        counts = total * area / area.sum() if area.sum() else np.zeros(len(rows))
    frame = frame.copy()
    frame["households"] = frame["households"].astype(float)
    frame.loc[frame.index[rows], "households"] = np.round(counts)
    if frame["households"].notna().all():
        frame["households"] = frame["households"].astype(np.int64)
    return frame


def _m2(bset: BoundarySet, geometry) -> float:
    return float(shapely.area(to_metric([geometry], bset.metric_crs))[0])
