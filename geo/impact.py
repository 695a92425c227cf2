"""What a redrawn boundary set would change, fast enough to recompute after every edit.

:func:`grid_changes` compares two sets grid by grid (by code): a grid is ``added``, ``removed``,
``reshaped`` (same code, other outline) or ``moved`` (same code, other community), with its area
before and after in m².

:class:`ReportIndex` holds historic report points resolved once against the old (active) set.
:meth:`ReportIndex.preview` then answers for a draft by re-resolving only the points that can
move: those in grids that changed, and those that were in no grid. A grid whose outline and
community are the same in both sets keeps every point it had (a point is resolved to the
covering grid with the smallest code, and an unchanged grid covers exactly the same points), so
for one edit only a few thousand of a million points are looked at again.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import shapely

from geo.boundaries import BoundarySet, to_metric
from geo.locate import PolygonLocator
from geo.plain import plain_records
from geo.resolver import Resolver

ADDED, REMOVED, RESHAPED, MOVED = "added", "removed", "reshaped", "moved"


def grid_changes(old: BoundarySet, new: BoundarySet) -> pd.DataFrame:
    """One row per grid that differs: code, change, community before/after, area before/after
    and change (m²). Grids equal in outline (vertex for vertex) and community are left out."""
    before = dict(zip(old.grids["code"], range(len(old.grids)), strict=True))
    after = dict(zip(new.grids["code"], range(len(new.grids)), strict=True))
    common = [c for c in before if c in after]
    g_old = np.asarray(old.grids.geometry.values)[[before[c] for c in common]]
    g_new = np.asarray(new.grids.geometry.values)[[after[c] for c in common]]
    same = np.array([a is b for a, b in zip(g_old, g_new, strict=True)], dtype=bool)
    if (~same).any():
        same[~same] = shapely.equals_exact(g_old[~same], g_new[~same], tolerance=0)
    same_shape = dict(zip(common, same, strict=True))
    comm_old, comm_new = old.grids["community_code"].to_numpy(object), new.grids[
        "community_code"].to_numpy(object)
    rows = []
    for code in sorted(before.keys() | after.keys()):
        i, j = before.get(code), after.get(code)
        c_old = comm_old[i] if i is not None else None
        c_new = comm_new[j] if j is not None else None
        change = (ADDED if i is None else REMOVED if j is None else MOVED if c_old != c_new
                  else "" if same_shape[code] else RESHAPED)
        if change:
            rows.append((code, change, c_old, c_new, i, j))
    frame = pd.DataFrame(rows, columns=["code", "change", "community_before", "community_after",
                                        "i", "j"])
    frame["area_before_m2"] = _areas(old, frame["i"])
    frame["area_after_m2"] = _areas(new, frame["j"])
    frame["area_change_m2"] = frame["area_after_m2"].fillna(0) - frame["area_before_m2"].fillna(0)
    return frame.drop(columns=["i", "j"]).round(
        {"area_before_m2": 1, "area_after_m2": 1, "area_change_m2": 1})


def _areas(bset: BoundarySet, rows: pd.Series) -> np.ndarray:
    """Areas in m² of the grids at positions ``rows`` (NaN where a row is missing)."""
    result = np.full(len(rows), np.nan)
    present = rows.notna().to_numpy()
    if present.any():
        geoms = np.asarray(bset.grids.geometry.values)[rows[present].astype(int).to_numpy()]
        result[present] = shapely.area(to_metric(geoms, bset.metric_crs))
    return result


@dataclass(frozen=True)
class Impact:
    """A draft's effect; tables are plain frames so callers can add what they know (people)."""

    grids: pd.DataFrame  # changed grids with workload before/after
    stations: pd.DataFrame  # stations whose served grids change
    summary: dict

    def to_dict(self) -> dict:
        return {"summary": self.summary,
                "grids": plain_records(self.grids),
                "stations": plain_records(self.stations)}


class ReportIndex:
    """Report points resolved against one boundary set, ready to preview drafts against it.

    Points are WGS84 ``lon``/``lat`` with the time each was reported (``when``, numpy
    datetime64); they are resolved once when added, and more can be added as reports arrive.
    """

    def __init__(self, boundaries: BoundarySet, resolver: Resolver | None = None):
        self.boundaries = boundaries
        self._resolver = resolver or Resolver(boundaries)
        self.lon = np.zeros(0)
        self.lat = np.zeros(0)
        self.when = np.zeros(0, dtype="datetime64[s]")
        self._month = np.zeros(0, dtype=np.int64)  # months since 1970, for quick periods
        buildings = boundaries.buildings.geometry.values
        self._buildings = shapely.STRtree(buildings) if len(buildings) else None
        self._building_xy = shapely.get_coordinates(buildings)
        self.grid = np.zeros(0, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.lon)

    def add(self, lon, lat, when) -> None:
        """Resolve new points against the old set and keep them."""
        lon, lat = np.asarray(lon, float), np.asarray(lat, float)
        self.lon = np.concatenate([self.lon, lon])
        self.lat = np.concatenate([self.lat, lat])
        when = np.asarray(when, dtype="datetime64[s]")
        self.when = np.concatenate([self.when, when])
        self._month = np.concatenate([self._month, when.astype("datetime64[M]").astype(np.int64)])
        self.grid = np.concatenate([self.grid, self._resolver.grid_index(lon, lat)])

    def recent(self, months: int, now=None) -> np.ndarray:
        """Which points fall in the last ``months`` calendar months (this one included)."""
        now = np.datetime64(now or "now", "M")
        return self._month > (now - np.timedelta64(months, "M")).astype(np.int64)

    def preview(self, new: BoundarySet, *, months: int = 6, now=None, open_lon=(),
                open_lat=()) -> Impact:
        """The effect of ``new`` on the reports of the last ``months`` calendar months (this
        one included, counted back from ``now``) and on open work orders at ``open_lon``/
        ``open_lat``."""
        old = self.boundaries
        changes = grid_changes(old, new)
        # Codes of both sets as one numbered list, so points are compared as integers.
        universe = np.array(sorted(set(old.grids["code"]) | set(new.grids["code"])), object)
        community_old, community_new = _community_numbers(universe, old, new)
        recent = self.recent(months, now)
        before, after, relocated = self._regrid(new, changes, universe, self.grid,
                                                self.lon[recent], self.lat[recent], recent)
        open_lon, open_lat = np.asarray(open_lon, float), np.asarray(open_lat, float)
        open_grid = self._resolver.grid_index(open_lon, open_lat)
        open_before, open_after, _ = self._regrid(new, changes, universe, open_grid, open_lon,
                                                  open_lat)
        grids = changes.copy()
        at = _positions(universe, grids["code"])[:-1]
        slots = len(universe) + 1
        per_month = max(months, 1)
        grids["reports_per_month_before"] = (np.bincount(before, minlength=slots)[at]
                                             / per_month).round(2)
        grids["reports_per_month_after"] = (np.bincount(after, minlength=slots)[at]
                                            / per_month).round(2)
        codes = list(grids["code"])
        grids["households_before"] = _households(old, codes, self._buildings)
        same_buildings = (len(new.buildings) == len(old.buildings) and np.array_equal(
            shapely.get_coordinates(new.buildings.geometry.values), self._building_xy))
        grids["households_after"] = _households(new, codes,
                                                self._buildings if same_buildings else None)
        summary = {
            "grids_added": int((changes["change"] == ADDED).sum()),
            "grids_removed": int((changes["change"] == REMOVED).sum()),
            "grids_reshaped": int((changes["change"] == RESHAPED).sum()),
            "grids_moved": int((changes["change"] == MOVED).sum()),
            "months": months,
            "reports": len(before),
            "reports_changing_grid": int((before != after).sum()),
            "reports_changing_community": int(
                (community_old[before] != community_new[after]).sum()),
            "open_orders": len(open_before),
            "open_orders_changing_grid": int((open_before != open_after).sum()),
            "open_orders_changing_community": int(
                (community_old[open_before] != community_new[open_after]).sum()),
            "points_reresolved": relocated,
        }
        return Impact(grids, _station_changes(old, new, codes), summary)

    def _regrid(self, new, changes, universe, grid, lon, lat, rows=None):
        """Points' grids before and after as positions in ``universe`` (its length = none),
        and how many points were located again. ``grid`` holds the old grid of all points
        (``rows`` picks the ones ``lon``/``lat`` give)."""
        grid = grid if rows is None else grid[rows]
        point_old = _positions(universe, self.boundaries.grids["code"])[grid]
        point_new = point_old.copy()
        todo, found = _relocate(self.boundaries, new, changes, grid, lon, lat)
        point_new[todo] = _positions(universe, new.grids["code"])[found]
        return point_old, point_new, len(todo)


def _relocate(old, new, changes, grid, lon, lat):
    """The points that can change grid, and their grid's position in ``new.grids`` (-1 for
    none): those of changed old grids, and those in no old grid but inside the extent of a
    changed new grid. They are located among the new set's changed grids; the few left over
    (on an edge shared with an unchanged grid) in the whole new set."""
    changed_old = np.append(old.grids["code"].isin(changes["code"]).to_numpy(), False)
    picked = np.flatnonzero(new.grids["code"].isin(changes["code"]).to_numpy())
    todo = np.flatnonzero(changed_old[grid])
    if len(picked):
        x0, y0, x1, y1 = shapely.total_bounds(new.grids.geometry.values[picked])
        outside = np.flatnonzero(grid < 0)
        near = ((lon[outside] >= x0) & (lon[outside] <= x1)
                & (lat[outside] >= y0) & (lat[outside] <= y1))
        todo = np.concatenate([todo, outside[near]])
    found = np.full(len(todo), -1, dtype=np.int64)
    if not len(todo) or not len(picked):
        return todo, found
    hit = PolygonLocator(new.grids.geometry.values[picked]).locate(lon[todo], lat[todo])
    found[hit >= 0] = picked[hit[hit >= 0]]
    rest = (hit < 0) & (grid[todo] >= 0)
    if rest.any():
        whole = PolygonLocator(new.grids.geometry.values)
        found[rest] = whole.locate(lon[todo[rest]], lat[todo[rest]])
    return todo, found


def _positions(universe: np.ndarray, codes) -> np.ndarray:
    """Positions of ``codes`` in the sorted ``universe``, with -1 (→ "none", the last slot)
    appended so that position arrays can be indexed by -1."""
    at = np.searchsorted(universe, np.asarray(codes, dtype=object)).astype(np.int64)
    return np.append(at, len(universe))


def _community_numbers(universe, *sets: BoundarySet) -> list[np.ndarray]:
    """For each set, an array giving every code of ``universe`` (and "none", last) a number
    for its community in that set; the numbers are shared between the sets."""
    names = [pd.Series(b.grids["community_code"].to_numpy(object),
                       index=b.grids["code"].to_numpy(object)).reindex(universe)
             .fillna("").to_numpy(object) for b in sets]
    numbers = pd.factorize(np.concatenate([np.append(n, "") for n in names]))[0]
    return np.split(numbers, len(sets))


def _households(bset: BoundarySet, codes: list[str], tree=None) -> np.ndarray:
    """Households of grids ``codes`` (0 where a grid is not in the set): counted from building
    points where the set has them (``tree``: an STRtree over them, if one is at hand), else
    the grids' ``households`` column."""
    position = dict(zip(bset.grids["code"], range(len(bset.grids)), strict=True))
    slots = [k for k, c in enumerate(codes) if c in position]
    rows = [position[codes[k]] for k in slots]
    result = np.zeros(len(codes))
    if not rows:
        return result
    if len(bset.buildings):
        tree = tree or shapely.STRtree(bset.buildings.geometry.values)
        geoms = np.asarray(bset.grids.geometry.values)[rows]
        grid_idx, point_idx = tree.query(geoms, predicate="covers")
        weights = bset.buildings["households"].to_numpy(float)[point_idx]
        result[slots] = np.bincount(grid_idx, weights=weights, minlength=len(rows))
    elif "households" in bset.grids.columns:
        result[slots] = bset.grids["households"].to_numpy(float)[rows]
    return np.nan_to_num(result)


def _station_changes(old: BoundarySet, new: BoundarySet, codes: list[str]) -> pd.DataFrame:
    """Stations that gain or lose changed grids, a grid being served by the station nearest to
    the point inside it (measured in metres)."""
    if not len(old.stations):
        return pd.DataFrame(columns=["station_id", "name", "grids_lost", "grids_gained"])
    served_before = _serving_station(old, codes)
    served_after = _serving_station(new, codes)
    rows = []
    for station in sorted(set(served_before.values()) | set(served_after.values())):
        lost = sorted(c for c, s in served_before.items() if s == station
                      and served_after.get(c) != station)
        gained = sorted(c for c, s in served_after.items() if s == station
                        and served_before.get(c) != station)
        if lost or gained:
            rows.append({"station_id": station, "grids_lost": lost, "grids_gained": gained})
    names = dict(zip(new.stations["station_id"], new.stations["name"], strict=True))
    frame = pd.DataFrame(rows, columns=["station_id", "grids_lost", "grids_gained"])
    frame.insert(1, "name", frame["station_id"].map(names))
    return frame


def _serving_station(bset: BoundarySet, codes: list[str]) -> dict[str, str]:
    grids = bset.grids[bset.grids["code"].isin(codes)]
    if grids.empty:
        return {}
    inside = to_metric(shapely.point_on_surface(grids.geometry.values), bset.metric_crs)
    nearest = shapely.STRtree(bset.metric("stations")).query_nearest(inside, all_matches=False)
    ids = bset.stations["station_id"].to_numpy(object)[nearest[1]]
    return dict(zip(grids["code"].to_numpy(object)[nearest[0]], ids, strict=True))
