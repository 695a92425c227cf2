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
from geo.resolver import Resolver

ADDED, REMOVED, RESHAPED, MOVED = "added", "removed", "reshaped", "moved"


def grid_changes(old: BoundarySet, new: BoundarySet) -> pd.DataFrame:
    """One row per grid that differs: code, change, community before/after, area before/after
    and change (m²). Grids equal in outline and community are left out."""
    before = _grid_table(old, "before")
    after = _grid_table(new, "after")
    both = before.join(after, how="outer")
    common = both.index[both["community_before"].notna() & both["community_after"].notna()]
    same = pd.Series(False, index=both.index)
    if len(common):
        g_old = old.grids.set_index("code").geometry.reindex(common).values
        g_new = new.grids.set_index("code").geometry.reindex(common).values
        same[common] = shapely.equals(np.asarray(g_old), np.asarray(g_new))
    change = np.select(
        [both["community_before"].isna(), both["community_after"].isna(),
         both["community_before"] != both["community_after"], ~same],
        [ADDED, REMOVED, MOVED, RESHAPED], default="")
    both["change"] = change
    out = both[both["change"] != ""].copy()
    out["area_change_m2"] = out["area_after_m2"].fillna(0) - out["area_before_m2"].fillna(0)
    out = out.reset_index()
    columns = ["code", "change", "community_before", "community_after", "area_before_m2",
               "area_after_m2", "area_change_m2"]
    return out[columns].round({"area_before_m2": 1, "area_after_m2": 1, "area_change_m2": 1})


def _grid_table(bset: BoundarySet, when: str) -> pd.DataFrame:
    return pd.DataFrame({"code": bset.grids["code"].to_numpy(object),
                         f"community_{when}": bset.grids["community_code"].to_numpy(object),
                         f"area_{when}_m2": shapely.area(bset.metric("grids"))}).set_index("code")


@dataclass(frozen=True)
class Impact:
    """A draft's effect; tables are plain frames so callers can add what they know (people)."""

    grids: pd.DataFrame  # changed grids with workload before/after
    stations: pd.DataFrame  # stations whose served grids change
    summary: dict

    def to_dict(self) -> dict:
        return {"summary": self.summary,
                "grids": _records(self.grids), "stations": _records(self.stations)}


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
        self.grid = np.zeros(0, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.lon)

    def add(self, lon, lat, when) -> None:
        """Resolve new points against the old set and keep them."""
        lon, lat = np.asarray(lon, float), np.asarray(lat, float)
        self.lon = np.concatenate([self.lon, lon])
        self.lat = np.concatenate([self.lat, lat])
        self.when = np.concatenate([self.when, np.asarray(when, dtype="datetime64[s]")])
        self.grid = np.concatenate([self.grid, self._resolver.grid_index(lon, lat)])

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
        now = np.datetime64(now or "now", "M")
        recent = self.when.astype("datetime64[M]") > now - np.timedelta64(months, "M")
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
        grids["households_before"] = _households(old, codes)
        grids["households_after"] = _households(new, codes)
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


def _households(bset: BoundarySet, codes: list[str]) -> np.ndarray:
    """Households of grids ``codes`` (0 where a grid is not in the set): counted from building
    points where the set has them, else the grids' ``households`` column."""
    grids = bset.grids.set_index("code")
    present = [c for c in codes if c in grids.index]
    result = pd.Series(0.0, index=codes)
    if len(bset.buildings) and present:
        geoms = grids.geometry.reindex(present).values
        grid_idx, point_idx = shapely.STRtree(bset.buildings.geometry.values).query(
            np.asarray(geoms), predicate="covers")
        weights = bset.buildings["households"].to_numpy(float)[point_idx]
        result[present] = np.bincount(grid_idx, weights=weights, minlength=len(present))
    elif "households" in grids.columns and present:
        result[present] = grids["households"].reindex(present).fillna(0).to_numpy(float)
    return result.to_numpy()


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


def _records(frame: pd.DataFrame) -> list[dict]:
    return [{k: (None if isinstance(v, float) and v != v else
                 v.item() if hasattr(v, "item") else v) for k, v in row.items()}
            for row in frame.to_dict("records")]
