"""Automatic partitioning of communities into balanced grids, and the quality of a partition.

:func:`partition` redraws the grids of some communities so that each grid holds about
``target`` households (or another weight, such as reports per month), stays within
``[min_households, max_households]`` where the community allows it, is one compact polygon and
follows the community's edge. It works in the set's metric CRS:

1. A community gets k grids: its total weight over the target, moved into the range that keeps
   the average grid within the limits. A community with no such k gets the nearest one, and a
   note says so; so does one without any weight, which stays one grid.
2. The community is cut in two by a straight line at the weighted quantile of its points that
   splits the weight k1 : k2 (k1 = k // 2), and each side is cut again until every piece is one
   grid. Each cut tries :data:`ANGLES` directions plus the perpendicular to the piece's long
   axis, and keeps the one whose sides are single polygons, best balanced and most compact.
3. Where every direction leaves a side in several parts (a very irregular community), the
   stray parts finally go to the grid they share most edge with, so every grid is one polygon.

Each piece is the community intersected with half-planes, so the grids tile it exactly. The new
grids go through :func:`geo.boundaries.build_boundaries` without codes, which numbers them in
reading order under their community; every other grid keeps its code and shape.

:func:`quality` measures any set: the weight in each grid, its Polsby-Popper score 4πA/P² in
metres (1 for a circle, 0.785 for a square), whether it is one polygon, and per community and
overall the grid count, the smallest and largest weight and their ratio, and the grids outside
the limits.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo.boundaries import BoundarySet, build_boundaries
from geo.codes import is_well_formed
from geo.crs import WGS84, parse_crs, transformer
from geo.errors import InputError
from geo.plain import plain_record, plain_records
from geo.resolver import input_problems
from geo.sources import RawLayers

ANGLES = 12  # cut directions tried at each bisection, evenly over 180°
BALANCE_WEIGHT = 4.0  # score of a cut: this × (weight error in grid shares) + (1 − Polsby-Popper)
PARTS_PENALTY = 100.0  # per extra part a cut leaves: contiguity comes before anything else
LIMITS_PENALTY = 50.0  # a side whose weight cannot make grids within the limits comes next
SLIVER_M2 = 0.01  # polygon parts this small are floating-point dust, not parts
SEGMENT_M = 25.0  # grid edges get a vertex at least this often before going back to lon/lat


@dataclass(frozen=True)
class PartitionQuality:
    """How good a set of grids is, per grid, per community and overall.

    ``grids``: code, community_code, weight, polsby_popper, contiguous, within_limits.
    ``communities``: code, name, grids, weight, min, max, ratio (max/min, None when a grid is
    empty), pp_mean, pp_min, contiguous, outside (grids outside the limits), note.
    ``weight_name`` says what was counted (``households`` or, e.g., ``reports``).
    """

    grids: pd.DataFrame
    communities: pd.DataFrame
    overall: dict
    weight_name: str = "households"
    min_weight: float | None = None
    max_weight: float | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict:
        """Plain JSON-able values: NaN and infinite ratios become None."""
        return {"weight": self.weight_name,
                "limits": {"min": self.min_weight, "max": self.max_weight},
                "overall": plain_record(self.overall),
                "communities": plain_records(self.communities),
                "grids": plain_records(self.grids),
                "notes": list(self.notes)}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=2)

    def to_text(self) -> str:
        """A readable table: one line per community, then the whole selection."""
        limits = (f"limits {_num(self.min_weight)}–{_num(self.max_weight)}"
                  if self.min_weight is not None or self.max_weight is not None else "no limits")
        lines = [f"{self.weight_name} per grid ({limits}); Polsby-Popper 4πA/P² in metres",
                 f"{'community':15} {'grids':>5} {self.weight_name[:10]:>10} {'min':>6} "
                 f"{'max':>6} {'max/min':>7} {'PP mean':>7} {'PP min':>6} {'one part':>8} "
                 f"{'outside':>7}"]
        rows = [*self.communities.to_dict("records"), {"code": "all", **self.overall}]
        for r in rows:
            lines.append(f"{r['code']:15} {r['grids']:5d} {_num(r['weight']):>10} "
                         f"{_num(r['min']):>6} {_num(r['max']):>6} {_num(r['ratio'], 3):>7} "
                         f"{_num(r['pp_mean'], 3):>7} {_num(r['pp_min'], 3):>6} "
                         f"{'yes' if r['contiguous'] else 'NO':>8} {r['outside']:7d}")
        lines += [f"  note {r['code']}: {r['note']}" for r in self.communities.to_dict("records")
                  if r["note"]]
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


@dataclass(frozen=True)
class Partition:
    """What :func:`partition` made: the new boundary set and the quality of its new grids."""

    boundaries: BoundarySet
    quality: PartitionQuality


def partition(bset: BoundarySet, communities=None, *, target, min_households=None,
              max_households=None, points=None, weights=None,
              weight_name=None) -> Partition:
    """Redraw the grids of ``communities`` (codes; None = all) as balanced, compact grids.

    The weight is the buildings' households by default. ``points`` (shapely points, an (n, 2)
    array of lon/lat, or a tuple ``(lon, lat)`` of arrays, all WGS84) with ``weights`` (one per
    point, default 1 each, e.g. reports per month) balance another weight instead; ``weights``
    alone re-weights the buildings. ``target``, ``min_households`` and ``max_households`` are in
    that weight; ``weight_name`` labels it in the report (default ``households``, or ``weight``
    for another one).

    Returns a :class:`Partition` whose ``boundaries`` is a new set in which those communities'
    grids are replaced, coded in reading order, and whose ``quality`` covers the new grids, with
    a note for every community whose limits could not be met. Raises
    :class:`~geo.errors.InputError` naming the field for an unknown or malformed community
    code or one with an invalid polygon, a target, min or max that is not a positive number or
    not in order, or weights of the wrong length or negative. ``bset`` is not changed.
    """
    target, low, high = _limits(target, min_households, max_households)
    codes = _community_codes(bset, communities)
    _check_communities(bset, codes)
    xy, w = _weight_points(bset, points, weights)
    name = weight_name or ("households" if points is None and weights is None else "weight")
    community_of = _containing(bset.metric("communities"), xy)
    position = {c: i for i, c in enumerate(bset.communities["code"])}
    grids, community_codes, notes = [], [], {}
    for code in codes:
        inside = community_of == position[code]
        pieces, note = _partition_community(bset.metric("communities")[position[code]],
                                            xy[inside], w[inside], target, low, high)
        grids += pieces
        community_codes += [code] * len(pieces)
        if note:
            notes[code] = note
    new = _replace_grids(bset, codes, np.asarray(grids), community_codes)
    outside = int((community_of < 0).sum())
    extra = (f"{outside} weighted points ({name}) lie in no community and were not counted",) if (
        outside and points is not None) else ()
    measured = _measure(new, codes, xy, w, name, low, high, notes, extra)
    return Partition(new, measured)


def quality(bset: BoundarySet, communities=None, *, points=None, weights=None,
            min_households=None, max_households=None, weight_name=None) -> PartitionQuality:
    """Measure the grids of ``communities`` (codes; None = all) of any boundary set.

    Weights as in :func:`partition`; each weighted point counts in the first grid that contains
    it. ``min_households``/``max_households``, when given, count the grids outside them.
    """
    _, low, high = _limits(None, min_households, max_households)
    codes = _community_codes(bset, communities)
    xy, w = _weight_points(bset, points, weights)
    name = weight_name or ("households" if points is None and weights is None else "weight")
    return _measure(bset, codes, xy, w, name, low, high, {}, ())


# --- input ---------------------------------------------------------------------------------------


def _limits(target, low, high):
    """Check target and limits: positive finite numbers, min ≤ target ≤ max."""
    values = {}
    for field_name, value in (("target_households", target), ("min_households", low),
                              ("max_households", high)):
        if value is None:
            values[field_name] = None
            continue
        number = _number(value, field_name)
        if not number > 0:
            raise InputError(f"{field_name} must be greater than 0, not {value!r}",
                             field=field_name)
        values[field_name] = number
    target, low, high = values.values()
    if low is not None and high is not None and low > high:
        raise InputError(f"min_households ({_num(low)}) is greater than max_households "
                         f"({_num(high)})", field="min_households")
    if target is not None and ((low is not None and target < low)
                               or (high is not None and target > high)):
        raise InputError(f"target_households ({_num(target)}) lies outside [min_households, "
                         f"max_households] = [{_num(low)}, {_num(high)}]",
                         field="target_households")
    return target, low, high


def _number(value, field_name) -> float:
    if isinstance(value, bool | str | bytes):
        raise InputError(f"{field_name} must be a number, not {value!r}", field=field_name)
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: an integer beyond floats
        raise InputError(f"{field_name} must be a number, not {str(value)[:40]!r}",
                         field=field_name) from None
    if not math.isfinite(number):
        raise InputError(f"{field_name} must be a finite number, not {value!r}",
                         field=field_name)
    return number


def _community_codes(bset: BoundarySet, communities) -> list[str]:
    known = [c for c in bset.communities["code"] if isinstance(c, str)]
    if not known:
        raise InputError("the boundary set has no coded communities to partition",
                         field="communities")
    if communities is None:
        return known
    wanted = [communities] if isinstance(communities, str) else list(communities)
    unknown = [c for c in wanted if c not in set(known)]
    if unknown:
        raise InputError(f"unknown community code{'s' if len(unknown) > 1 else ''}: "
                         f"{', '.join(map(str, unknown))}", field="communities")
    if not wanted:
        raise InputError("no community codes given", field="communities")
    return list(dict.fromkeys(wanted))


def _check_communities(bset: BoundarySet, codes) -> None:
    """Refuse a community whose polygon is empty or invalid, or whose code cannot head grid
    codes."""
    malformed = [c for c in codes if not is_well_formed(c, "community")]
    if malformed:
        raise InputError(f"community {malformed[0]} has a malformed code (a community code has "
                         "12 digits), so its grids could not be coded", field="communities")
    chosen = bset.communities["code"].isin(codes).to_numpy()
    geoms = np.asarray(bset.communities.geometry.values)[chosen]
    metric = bset.metric("communities")[chosen]
    bad = shapely.is_empty(geoms) | ~shapely.is_valid(geoms) | ~shapely.is_valid(metric)
    if bad.any():
        code = bset.communities["code"].to_numpy(object)[chosen][np.flatnonzero(bad)[0]]
        raise InputError(f"community {code} has an empty or invalid polygon; validate the set "
                         "and repair it (--fix) before partitioning", field="communities")


def _weight_points(bset: BoundarySet, points, weights):
    """Weighted points in the metric CRS: (n, 2) coordinates and n non-negative weights."""
    if points is None:
        lon, lat = (shapely.get_coordinates(bset.buildings.geometry.values).T
                    if len(bset.buildings) else (np.zeros(0), np.zeros(0)))
        default = bset.buildings["households"].to_numpy(dtype=float)
    else:
        lon, lat = _lon_lat(points)
        default = np.ones(len(lon))
    w = default if weights is None else _weights(weights, len(lon), points is None)
    x, y = transformer(WGS84, bset.metric_crs).transform(lon, lat)
    return np.column_stack([x, y]).reshape(-1, 2), w


def _lon_lat(points):
    if isinstance(points, tuple) and len(points) == 2:
        lon, lat = (_floats(p, "points") for p in points)
        if len(lon) != len(lat):
            raise InputError(f"points: {len(lon)} longitudes but {len(lat)} latitudes",
                             field="points")
    else:
        array = np.asarray(getattr(points, "values", points), dtype=object)
        if array.size and isinstance(array.flat[0], shapely.Geometry):
            array = array.reshape(-1)
            if not (shapely.get_type_id(array) == 0).all():
                raise InputError("points must all be shapely Points", field="points")
            lon, lat = shapely.get_coordinates(array).T
        else:
            coords = _floats(points, "points")
            if coords.size % 2:
                raise InputError("points must be shapely points or an (n, 2) array of lon/lat",
                                 field="points")
            lon, lat = coords.reshape(-1, 2).T
    problems = input_problems(lon, lat, parse_crs("wgs84"))
    bad = np.flatnonzero(problems != "")
    if len(bad):
        raise InputError(f"point #{bad[0] + 1}: {problems[bad[0]]} ({len(bad)} such points)",
                         field="points")
    return lon, lat


def _floats(values, field_name) -> np.ndarray:
    try:
        return np.asarray(values, dtype=float).reshape(-1)
    except (TypeError, ValueError, OverflowError):
        raise InputError(f"{field_name} must hold numbers only", field=field_name) from None


def _weights(weights, count, of_buildings) -> np.ndarray:
    w = _floats(weights, "weights")
    if len(w) != count:
        what = "building point" if of_buildings else "point"
        raise InputError(f"weights must have one value per {what} ({count}), not {len(w)}",
                         field="weights")
    if not np.isfinite(w).all():
        raise InputError("weights must be finite numbers", field="weights")
    if (w < 0).any():
        i = int(np.flatnonzero(w < 0)[0])
        raise InputError(f"weights must not be negative (weight #{i + 1} is {w[i]:g})",
                         field="weights")
    return w


def _containing(polygons: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """For each point, the index of the first polygon that contains or touches it, or -1."""
    found = np.full(len(xy), -1)
    if not len(xy) or not len(polygons):
        return found
    point_idx, poly_idx = shapely.STRtree(polygons).query(shapely.points(xy),
                                                          predicate="intersects")
    if not len(point_idx):
        return found
    order = np.lexsort((poly_idx, point_idx))
    point_idx, poly_idx = point_idx[order], poly_idx[order]
    first = np.r_[True, point_idx[1:] != point_idx[:-1]]
    found[point_idx[first]] = poly_idx[first]
    return found


def _loads(polygons: np.ndarray, xy: np.ndarray, w: np.ndarray) -> np.ndarray:
    """The weight of the points in each polygon (each point counted once, in the first)."""
    found = _containing(polygons, xy)
    return np.bincount(found[found >= 0], w[found >= 0], minlength=len(polygons))


# --- cutting -------------------------------------------------------------------------------------


def _partition_community(community, xy, w, target, low, high):
    """A community's grids (metric polygons) and a note when its limits cannot all be met."""
    positive = w > 0
    xy, w = xy[positive], w[positive]
    total = float(w.sum())
    if total == 0:
        return [community], "no weighted points: kept as one grid"
    choices, note = _grid_counts(total, target, low, high, len(w))
    best = None
    for k in choices:
        pieces = _single_parts(_bisect(community, xy, w, k, low, high))
        loads = _loads(np.asarray(pieces), xy, w)
        outside = int((~_within(loads, low, high)).sum())
        if best is None or outside < best[1]:
            best = (pieces, outside, k)
        if outside == 0:
            break
    pieces, outside, k = best
    if outside and not note:
        note = (f"{outside} of {k} grids fall outside the limits: the buildings are too coarse "
                "to split this community more evenly")
    return pieces, note


def _grid_counts(total, target, low, high, points):
    """The grid counts to try, best first, and a note when none keeps the average in limits."""
    k = max(1, round(total / target))
    lowest = max(1, math.ceil(total / high)) if high else 1
    highest = math.floor(total / low) if low else max(k, lowest)
    cap = min(points, 999)
    if lowest <= highest and lowest <= cap:
        feasible = range(lowest, min(highest, cap) + 1)
        return sorted(feasible, key=lambda n: (abs(total / n - target), n)), None
    if low and total < low:
        return [1], (f"{_num(total)} in all, fewer than the minimum {_num(low)}: kept as one "
                     "grid")
    if lowest > cap:
        return [cap], (f"only {points} weighted points: {cap} grids, fewer than the "
                       f"{lowest} the maximum {_num(high)} needs")
    # No count keeps the average within both limits: take the one missing them least.
    below, above = max(1, highest), lowest

    def miss(n):
        return max((low or 0) - total / n, total / n - (high or math.inf), 0) / target

    chosen = min((below, above), key=lambda n: (miss(n), n))
    return [chosen], (f"no grid count keeps {_num(total)} within {_num(low)}–{_num(high)} "
                      f"per grid: {chosen} grids of about {_num(total / chosen)}")


def _bisect(region, xy, w, k, low=None, high=None) -> list:
    """Cut ``region`` into ``k`` pieces of balanced weight by recursive straight cuts."""
    if k <= 1:
        return [region]
    k1 = k // 2
    left, right, on_left = _best_cut(region, xy, w, k1, k, low, high)
    return (_bisect(left, xy[on_left], w[on_left], k1, low, high)
            + _bisect(right, xy[~on_left], w[~on_left], k - k1, low, high))


def _best_cut(region, xy, w, k1, k, low, high):
    """The best straight cut of ``region`` into shares k1 : k − k1: both sides, and the points
    falling on the first side.

    For every direction the cut lies halfway between the two consecutive points (in the order
    along the direction) where the running weight comes closest to the k1 share, leaving at
    least k1 points on one side and k − k1 on the other. Each candidate is scored by its extra
    parts, whether its sides can still make grids within the limits, its weight error and its
    sides' smaller Polsby-Popper score; the lowest wins.
    """
    normals = _directions(region)
    origin = xy.mean(axis=0)
    t = (xy - origin) @ normals.T  # (points, directions)
    order = np.argsort(t, axis=0, kind="stable")
    t_sorted = np.take_along_axis(t, order, axis=0)
    running = np.cumsum(w[order], axis=0)
    total = running[-1, 0]
    share = total * k1 / k
    n = len(w)
    j = np.arange(n - 1)[:, None]
    usable = (j >= k1 - 1) & (j <= n - (k - k1) - 1) & (t_sorted[1:] > t_sorted[:-1])
    error = np.where(usable, np.abs(running[:-1] - share), np.inf)
    best_j = np.argmin(error, axis=0)
    columns = np.arange(len(normals))
    possible = np.isfinite(error[best_j, columns])
    if not possible.any():  # every point at one spot: nothing to cut between
        return region, shapely.Polygon(), np.ones(n, dtype=bool)
    offsets = (t_sorted[best_j, columns] + t_sorted[best_j + 1, columns]) / 2
    lows, highs = _half_planes(region, origin, normals, offsets)
    left, right = shapely.intersection(region, lows), shapely.intersection(region, highs)
    extra = _part_count(left) + _part_count(right) - 2
    pp = np.minimum(_polsby_popper(left), _polsby_popper(right))
    first = running[best_j, columns]
    outside = ~_within(first, k1 * (low or 0), k1 * (high or np.inf)) | ~_within(
        total - first, (k - k1) * (low or 0), (k - k1) * (high or np.inf))
    score = (PARTS_PENALTY * np.abs(extra) + LIMITS_PENALTY * outside
             + BALANCE_WEIGHT * error[best_j, columns] / (total / k) + (1 - pp))
    score[~possible] = np.inf
    c = int(np.argmin(score))
    on_left = t[:, c] < offsets[c]
    return _polygonal(left[c]), _polygonal(right[c]), on_left


def _directions(region) -> np.ndarray:
    """Unit normals of the cuts to try: :data:`ANGLES` even ones and the long axis."""
    angles = np.arange(ANGLES) * np.pi / ANGLES
    rectangle = shapely.get_coordinates(shapely.oriented_envelope(region))
    if len(rectangle) >= 4:
        sides = np.diff(rectangle[:3], axis=0)
        longest = sides[np.argmax(np.hypot(sides[:, 0], sides[:, 1]))]
        angles = np.r_[np.arctan2(longest[1], longest[0]), angles]
    return np.column_stack([np.cos(angles), np.sin(angles)])


def _half_planes(region, origin, normals, offsets):
    """For each cut {p : (p − origin)·n = offset}: the half-planes below and above it, as
    rectangles reaching well past ``region``."""
    west, south, east, north = shapely.bounds(region)
    reach = 4 * float(np.hypot(east - west, north - south)) + 1
    along = np.column_stack([-normals[:, 1], normals[:, 0]]) * reach
    foot = origin + normals * offsets[:, None]
    away = normals * reach
    low = np.stack([foot - along, foot + along, foot + along - away, foot - along - away,
                    foot - along], axis=1)
    high = np.stack([foot - along, foot - along + away, foot + along + away, foot + along,
                     foot - along], axis=1)
    return shapely.polygons(low), shapely.polygons(high)


def _part_count(geoms) -> np.ndarray:
    """Polygon parts (larger than :data:`SLIVER_M2`) of each geometry."""
    parts, index = shapely.get_parts(geoms, return_index=True)
    real = (shapely.get_type_id(parts) == 3) & (shapely.area(parts) > SLIVER_M2)
    return np.bincount(index[real], minlength=len(geoms))


def _polygonal(geom):
    """The polygon parts of a geometry, without dust: one Polygon or a MultiPolygon."""
    parts = shapely.get_parts(geom)
    parts = parts[(shapely.get_type_id(parts) == 3) & (shapely.area(parts) > SLIVER_M2)]
    if len(parts) == 1:
        return parts[0]
    return shapely.multipolygons(parts) if len(parts) else shapely.Polygon()


def _polsby_popper(geoms) -> np.ndarray:
    area, length = shapely.area(geoms), shapely.length(geoms)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(length > 0, 4 * np.pi * area / length**2, 0.0)


def _single_parts(pieces) -> list:
    """Make every piece one polygon: each smaller part joins the piece it shares most edge with.

    Only an irregular community whose every cut direction left a side in parts needs this.
    """
    pieces = [_polygonal(p) for p in pieces]
    while True:
        split = next((i for i, p in enumerate(pieces) if p.geom_type == "MultiPolygon"), None)
        if split is None:
            return [p for p in pieces if not p.is_empty]
        parts = sorted(shapely.get_parts(pieces[split]), key=lambda g: -g.area)
        pieces[split] = parts[0]
        for part in parts[1:]:
            edge = shapely.length(shapely.intersection(part.boundary, np.asarray(pieces)))
            edge[split] = -1 if len(pieces) > 1 else 0
            owner = int(np.argmax(edge))
            pieces[owner] = _polygonal(shapely.union(pieces[owner], part))


# --- the new set ---------------------------------------------------------------------------------


def _replace_grids(bset: BoundarySet, codes, grids, community_codes) -> BoundarySet:
    """A new set with the grids of ``codes`` replaced by ``grids`` (metric), coded and named."""
    back = transformer(bset.metric_crs, WGS84)
    lonlat = shapely.transform(shapely.segmentize(grids, SEGMENT_M),
                               lambda xy: np.column_stack(back.transform(xy[:, 0], xy[:, 1])))
    households = _loads(grids, _building_xy(bset), bset.buildings["households"].to_numpy(float))
    kept = bset.grids[~bset.grids["community_code"].isin(codes)].drop(columns="feature")
    new = gpd.GeoDataFrame({"community_code": community_codes,
                            "households": households.astype(np.int64)},
                           geometry=lonlat, crs=WGS84)
    raw = RawLayers({
        "streets": bset.streets.drop(columns="feature"),
        "communities": bset.communities.drop(columns="feature"),
        "grids": pd.concat([kept, new], ignore_index=True),
        "stations": bset.stations.drop(columns="feature"),
        "buildings": bset.buildings[["households", "geometry"]],
    }, single_layer=False, notes=[f"partitioned {len(codes)} communities into {len(grids)} "
                                  "grids"])
    result = build_boundaries(raw, district_code=bset.district_code, metric_crs=bset.metric_crs)
    _name_new_grids(result, codes)
    return result


def _building_xy(bset: BoundarySet) -> np.ndarray:
    lon, lat = shapely.get_coordinates(bset.buildings.geometry.values).T
    return np.column_stack(transformer(WGS84, bset.metric_crs).transform(lon, lat))


def _name_new_grids(bset: BoundarySet, codes) -> None:
    """Name each new grid after its community and number: ``<community>第<n>网格``."""
    names = {c: n if isinstance(n, str) else c
             for c, n in zip(bset.communities["code"], bset.communities["name"], strict=True)}
    grids = bset.grids
    new = grids["community_code"].isin(codes).to_numpy()
    grids.loc[new, "name"] = [f"{names[c]}第{int(code[-3:])}网格" for c, code in
                              zip(grids.loc[new, "community_code"], grids.loc[new, "code"],
                                  strict=True)]


# --- measuring -----------------------------------------------------------------------------------


def _measure(bset, codes, xy, w, weight_name, low, high, notes, extra) -> PartitionQuality:
    grids = bset.grids
    chosen = grids["community_code"].isin(codes).to_numpy()
    metric = bset.metric("grids")[chosen]
    loads = _loads(metric, xy, w)
    within = _within(loads, low, high)
    table = pd.DataFrame({
        "code": grids["code"].to_numpy(object)[chosen],
        "community_code": grids["community_code"].to_numpy(object)[chosen],
        "weight": loads, "polsby_popper": _polsby_popper(metric).round(4),
        "contiguous": shapely.get_type_id(metric) == 3, "within_limits": within})
    names = dict(zip(bset.communities["code"], bset.communities["name"], strict=True))
    rows = []
    for code in codes:
        part = table[table["community_code"] == code]
        rows.append({"code": code, "name": names.get(code), **_summary(part),
                     "note": notes.get(code, "")})
    overall = {"communities": len(codes), **_summary(table)}
    return PartitionQuality(table, pd.DataFrame(rows), overall, weight_name, low, high,
                            tuple(extra))


def _within(loads, low, high) -> np.ndarray:
    """Which loads lie within the limits (a missing limit always holds)."""
    return (loads >= (low if low is not None else -np.inf)) & (
        loads <= (high if high is not None else np.inf))


def _summary(table: pd.DataFrame) -> dict:
    if not len(table):
        return {"grids": 0, "weight": 0.0, "min": None, "max": None, "ratio": None,
                "pp_mean": None, "pp_min": None, "contiguous": True, "outside": 0}
    least, most = float(table["weight"].min()), float(table["weight"].max())
    return {"grids": len(table), "weight": float(table["weight"].sum()), "min": least,
            "max": most, "ratio": most / least if least > 0 else None,
            "pp_mean": float(table["polsby_popper"].mean()),
            "pp_min": float(table["polsby_popper"].min()),
            "contiguous": bool(table["contiguous"].all()),
            "outside": int((~table["within_limits"]).sum())}


def _num(value, digits=0) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return f"{value:,.{digits}f}" if digits else f"{value:,.0f}"
