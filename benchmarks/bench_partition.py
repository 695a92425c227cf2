"""Partitioning: gridline's recursive cuts against spopt's max-p and SKATER, in the same run.

On a sample of the demo district's communities (every n-th by code), each community is split
three ways:

* gridline: :func:`geo.partition.partition` with a target of 400 households and limits 300–500,
  timed as one call for all sampled communities (it also rebuilds and codes the whole set and
  measures the result, which the others are not asked to do);
* spopt ``MaxPHeuristic``: as many regions as possible with at least 300 households each
  (the floor = the minimum), with 20 construction and 3 annealing iterations instead of spopt's
  99 and 10, which take about two minutes per community on this machine;
* spopt ``Skater``: the same number of regions as gridline made, with a floor of half the
  units one region would get on average, so it cannot return slivers.

Both spopt methods work on the same areal units: a square lattice of ``--cell`` metres clipped
to the community, each cell carrying the households of the buildings in it, with rook
contiguity (libpysal); their attributes are the cells' centres, so they favour compact regions.
Building the lattice and its weights is not timed. Every result is measured the same way:
households per grid from the building points, Polsby-Popper 4πA/P² in metres, and whether each
grid is one polygon.

    pip install -e '.[bench]'
    python benchmarks/bench_partition.py [--every N] [--cell M] [--maxp-construction I]
                                         [--maxp-annealing J]
"""

from __future__ import annotations

import argparse
import time
import warnings

import geopandas as gpd
import numpy as np
import shapely

from geo.boundaries import load_boundaries
from geo.demo import default_source
from geo.partition import partition

TARGET, LOW, HIGH = 400, 300, 500


def sample(bset, every: int) -> list[str]:
    return list(bset.communities["code"].iloc[::every])


def building_points(bset):
    points = bset.buildings.to_crs(bset.metric_crs)
    return shapely.get_coordinates(points.geometry.values), points["households"].to_numpy(float)


def lattice(community, cell: float, xy, households) -> gpd.GeoDataFrame:
    """Square cells of ``cell`` metres clipped to the community, with their households."""
    west, south, east, north = community.bounds
    xs, ys = np.meshgrid(np.arange(west, east, cell), np.arange(south, north, cell))
    boxes = shapely.box(xs.ravel(), ys.ravel(), xs.ravel() + cell, ys.ravel() + cell)
    cells = shapely.intersection(community, boxes)
    cells = cells[shapely.area(cells) > 1.0]
    centres = shapely.get_coordinates(shapely.point_on_surface(cells))
    return gpd.GeoDataFrame({"x": centres[:, 0] - west, "y": centres[:, 1] - south,
                             "households": loads(cells, xy, households)}, geometry=cells)


def loads(polygons, xy, weights) -> np.ndarray:
    """Weight in each polygon, each point counted once (in the first polygon holding it)."""
    point_idx, poly_idx = shapely.STRtree(polygons).query(shapely.points(xy),
                                                          predicate="intersects")
    first = np.unique(point_idx, return_index=True)[1]
    return np.bincount(poly_idx[first], weights[point_idx[first]], minlength=len(polygons))


def rook_weights(cells: gpd.GeoDataFrame):
    from libpysal.weights import KNN, Rook
    from libpysal.weights.util import attach_islands

    w = Rook.from_dataframe(cells, use_index=False, silence_warnings=True)
    if w.islands:
        w = attach_islands(w, KNN.from_dataframe(cells, k=1, use_index=False))
    return w


def regions(cells: gpd.GeoDataFrame, labels) -> np.ndarray:
    labels = np.asarray(labels)
    return np.array([shapely.union_all(cells.geometry.values[labels == label])
                     for label in np.unique(labels)])


def run_maxp(cells, w, construction, annealing):
    from spopt.region import MaxPHeuristic

    model = MaxPHeuristic(cells, w, ["x", "y"], "households", LOW, top_n=2,
                          max_iterations_construction=construction,
                          max_iterations_sa=annealing)
    model.solve()
    return model.labels_


def run_skater(cells, w, k):
    from spopt.region import Skater

    if k <= 1:
        return np.zeros(len(cells), dtype=int)
    model = Skater(cells, w, ["x", "y"], n_clusters=k, floor=len(cells) // (2 * k),
                   trace=False, islands="increase")
    model.solve()
    return model.labels_


def measure(grids, xy, households) -> dict:
    counts = loads(grids, xy, households)
    pp = 4 * np.pi * shapely.area(grids) / shapely.length(grids) ** 2
    return {"ratio": counts.max() / counts.min() if counts.min() > 0 else np.inf,
            "pp": pp, "single": shapely.get_type_id(grids) == 3, "grids": len(grids),
            "outside": int(((counts < LOW) | (counts > HIGH)).sum())}


def summarise(name, per_community, seconds) -> dict:
    ratios = np.array([m["ratio"] for m in per_community])
    pp = np.concatenate([m["pp"] for m in per_community])
    single = np.concatenate([m["single"] for m in per_community])
    return {"method": name, "median_ratio": float(np.median(ratios)),
            "worst_ratio": float(ratios.max()), "pp_mean": float(pp.mean()),
            "pp_min": float(pp.min()), "contiguous": float(single.mean()),
            "grids": int(sum(m["grids"] for m in per_community)),
            "outside": int(sum(m["outside"] for m in per_community)), "seconds": seconds}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--every", type=int, default=8,
                        help="Take every n-th community by code (1 = all).")
    parser.add_argument("--cell", type=float, default=80.0, help="Lattice cell size in metres.")
    parser.add_argument("--maxp-construction", type=int, default=20,
                        help="max-p construction iterations (spopt's default: 99).")
    parser.add_argument("--maxp-annealing", type=int, default=3,
                        help="max-p simulated annealing iterations (spopt's default: 10).")
    args = parser.parse_args()
    warnings.simplefilter("ignore")  # spopt and libpysal warn about islands and old defaults

    bset = load_boundaries(default_source())
    codes = sample(bset, args.every)
    xy, households = building_points(bset)
    started = time.perf_counter()
    ours = partition(bset, codes, target=TARGET, min_households=LOW, max_households=HIGH)
    ours_seconds = time.perf_counter() - started
    grid_frame = ours.boundaries.grids
    metric = ours.boundaries.metric("grids")
    community_metric = dict(zip(bset.communities["code"], bset.metric("communities"),
                                strict=True))
    results = {"gridline": [], "max-p": [], "skater": []}
    seconds = {"max-p": 0.0, "skater": 0.0}
    units = []
    for code in codes:
        grids = metric[(grid_frame["community_code"] == code).to_numpy()]
        results["gridline"].append(measure(grids, xy, households))
        cells = lattice(community_metric[code], args.cell, xy, households)
        w = rook_weights(cells)
        units.append(len(cells))
        for name, solve, extra in (
                ("max-p", run_maxp, (args.maxp_construction, args.maxp_annealing)),
                ("skater", run_skater, (len(grids),))):
            started = time.perf_counter()
            labels = solve(cells, w, *extra)
            seconds[name] += time.perf_counter() - started
            results[name].append(measure(regions(cells, labels), xy, households))

    sampled = loads(np.array([community_metric[c] for c in codes]), xy, households).sum()
    print(f"{len(codes)} of {len(bset.communities)} communities ({sampled:,.0f} households); "
          f"lattice of {args.cell:g} m: {min(units)}–{max(units)} units per community")
    rows = [summarise("gridline", results["gridline"], ours_seconds),
            summarise("spopt max-p", results["max-p"], seconds["max-p"]),
            summarise("spopt skater", results["skater"], seconds["skater"])]
    print(f"{'method':14} {'max/min med':>11} {'worst':>7} {'PP mean':>7} {'PP min':>6} "
          f"{'one part':>8} {'grids':>5} {'outside':>7} {'seconds':>8}")
    for r in rows:
        print(f"{r['method']:14} {r['median_ratio']:11.3f} {r['worst_ratio']:7.3f} "
              f"{r['pp_mean']:7.3f} {r['pp_min']:6.3f} {r['contiguous']:8.1%} {r['grids']:5d} "
              f"{r['outside']:7d} {r['seconds']:8.2f}")
    us = rows[0]
    for other in rows[1:]:
        print(f"gridline vs {other['method']}: balance (max/min − 1, median) "
              f"{(other['median_ratio'] - 1) / max(us['median_ratio'] - 1, 1e-9):.1f}× better, "
              f"Polsby-Popper {us['pp_mean'] / other['pp_mean']:.2f}×, "
              f"{other['seconds'] / us['seconds']:.1f}× faster")


if __name__ == "__main__":
    main()
