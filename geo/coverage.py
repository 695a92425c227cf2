"""Station coverage: how far households live from their nearest service station, in metres.

Households are the boundary set's building points (each with its household count); where a set
has none, each grid's households are placed at a point inside the grid. Every household point is
measured to its nearest station (STRtree nearest query in the district's metric CRS) and falls
in the grid that contains it. A grid counts as covered at a radius when at least half of its
households live within that radius of a station.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import shapely

from geo.boundaries import BoundarySet, to_metric
from geo.errors import InputError

COVERED_SHARE = 0.5  # a grid is covered when this share of its households is within the radius


@dataclass(frozen=True)
class Coverage:
    radii: tuple[float, ...]
    grids: pd.DataFrame  # code, households, mean_m, max_m, within_<r> (share), covered_<r>
    summary: list[dict]  # per radius: households/grids/area covered and the uncovered grids


def station_coverage(bset: BoundarySet, radii=(500, 1000)) -> Coverage:
    """Coverage of ``bset``'s grids by its stations at each radius (metres)."""
    radii = tuple(sorted({float(r) for r in radii}))
    if not radii or any(not np.isfinite(r) or r <= 0 for r in radii):
        raise InputError("coverage radii must be positive numbers of metres", field="radius")
    if not len(bset.stations):
        raise InputError("the boundary set has no stations", field="stations")
    grids = bset.metric("grids")
    homes, weights, grid_of = _households(bset, grids)
    stations = bset.metric("stations")
    _, distance = shapely.STRtree(stations).query_nearest(homes, return_distance=True,
                                                         all_matches=False)
    table = pd.DataFrame({"grid": grid_of, "w": weights, "d": distance})
    table["wd"] = table["w"] * table["d"]
    for radius in radii:
        table[f"in_{radius:g}"] = table["w"] * (table["d"] <= radius)
    sums = table.groupby("grid").sum()
    out = pd.DataFrame({"code": bset.grids["code"].to_numpy()})
    out["households"] = sums["w"].reindex(out.index).fillna(0).to_numpy()
    out["mean_m"] = (sums["wd"] / sums["w"]).reindex(out.index).round(1).to_numpy()
    out["max_m"] = table.groupby("grid")["d"].max().reindex(out.index).round(1).to_numpy()
    summary = []
    total_households = float(out["households"].sum())
    area = shapely.area(grids)
    district = shapely.union_all(grids)
    for radius in radii:
        share = (sums[f"in_{radius:g}"] / sums["w"].where(sums["w"] > 0)).reindex(out.index)
        out[f"within_{radius:g}"] = share.round(4).to_numpy()
        covered = (share >= COVERED_SHARE).to_numpy()
        out[f"covered_{radius:g}"] = covered
        reach = shapely.union_all(shapely.buffer(stations, radius, quad_segs=16))
        summary.append({
            "radius_m": radius,
            "households_covered": float(sums[f"in_{radius:g}"].sum()),
            "households_share": round(float(sums[f"in_{radius:g}"].sum()) / total_households, 4)
            if total_households else None,
            "grids_covered": int(covered.sum()),
            "grids_share": round(float(covered.mean()), 4),
            "area_share": round(float(shapely.area(shapely.intersection(reach, district))
                                      / area.sum()), 4),
            "uncovered_grids": out.loc[~covered, "code"].tolist(),
        })
    return Coverage(radii, out, summary)


def _households(bset: BoundarySet, grids: np.ndarray):
    """Household points (metric), their household counts, and the grid each lies in."""
    buildings = bset.buildings
    if len(buildings):
        points = to_metric(buildings.geometry.values, bset.metric_crs)
        weights = buildings["households"].to_numpy(dtype=float)
        pairs = shapely.STRtree(grids).query(points, predicate="within")
        grid_of = np.full(len(points), -1)
        grid_of[pairs[0]] = pairs[1]
        inside = grid_of >= 0
        return points[inside], weights[inside], grid_of[inside]
    households = (bset.grids["households"].fillna(0).to_numpy(dtype=float)
                  if "households" in bset.grids.columns else np.ones(len(grids)))
    return shapely.point_on_surface(grids), households, np.arange(len(grids))
