"""Bulk and single-point resolving: gridline's resolver against geopandas, in the same run.

1 000 000 random points (WGS84) over a district of about 1 000 grids and 108 stations are resolved
to their grid and nearest station twice:

* gridline: ``Resolver.resolve_many`` (the resolver is built once per boundary version, so its
  construction is reported but not timed with the query);
* geopandas: ``sjoin(predicate="within")`` for the grid, then ``sjoin_nearest`` in the same
  metric CRS for the station, with both spatial indexes built before the clock starts.

The two answers must be identical (grid per point, station per point, distance to 1 mm).
Then single in-process resolves are timed (median of 2 000) for the cases a phone app meets: a
WGS84 point inside a grid, a GCJ-02 point inside a grid (converted on the way in) and a WGS84
point outside the district (which also measures its distance to the nearest grid).
The last line is ``ratio_vs_geopandas=<x> identical=<true|false>``, x being geopandas' time
divided by gridline's.

    python benchmarks/bench_resolve.py [--points N] [--repeat R]
"""

from __future__ import annotations

import argparse
import statistics
import time

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo.crs import from_wgs84
from geo.demo import generate
from geo.resolver import Resolver


def district(grids: int):
    """The demo district redrawn with about ``grids`` grids (smaller household targets)."""
    target = round(400 * 559 / grids)
    bset = generate(target_households=target)
    return bset


def random_points(bset, n, rng):
    west, south, east, north = bset.grids.total_bounds
    return rng.uniform(west, east, n), rng.uniform(south, north, n)


def run_gridline(resolver, lon, lat):
    started = time.perf_counter()
    result = resolver.resolve_many(lon, lat)
    return time.perf_counter() - started, result


def run_geopandas(bset, lon, lat):
    grids = bset.grids[["code", "geometry"]]
    stations_m = bset.stations[["station_id", "geometry"]].to_crs(bset.metric_crs)
    grids.sindex.query(shapely.Point(0, 0))  # build both indexes before timing
    stations_m.sindex.query(shapely.Point(0, 0))
    started = time.perf_counter()
    points = gpd.GeoDataFrame(geometry=gpd.points_from_xy(lon, lat), crs="EPSG:4326")
    within = gpd.sjoin(points, grids, how="left", predicate="within")
    within = within[~within.index.duplicated(keep="first")]
    nearest = gpd.sjoin_nearest(points.to_crs(bset.metric_crs), stations_m, how="left",
                                distance_col="distance")
    nearest = nearest[~nearest.index.duplicated(keep="first")]
    elapsed = time.perf_counter() - started
    return elapsed, pd.DataFrame({"grid_code": within["code"], "station_id": nearest["station_id"],
                                  "distance": nearest["distance"]})


def identical(ours: pd.DataFrame, theirs: pd.DataFrame) -> bool:
    # A point exactly on an edge is "within" no grid for sjoin but covered for gridline: random
    # floats never land there, so any difference is a real disagreement.
    grids = ours["grid_code"].fillna("").to_numpy(object) == theirs["grid_code"].fillna(
        "").to_numpy(object)
    stations = ours["station_id"].to_numpy(object) == theirs["station_id"].to_numpy(object)
    distances = np.abs(ours["station_distance_m"].to_numpy() - theirs["distance"].to_numpy())
    print(f"  grid agreements {grids.sum():,}/{len(grids):,}, station agreements "
          f"{stations.sum():,}/{len(stations):,}, max distance difference {distances.max():.2e} m")
    return bool(grids.all() and stations.all() and distances.max() < 1e-3)


def single_point_median_us(resolver, lon, lat, crs=None, repeat=2000):
    timings = []
    for x, y in zip(lon[:repeat].tolist(), lat[:repeat].tolist(), strict=True):
        started = time.perf_counter()
        resolver.resolve(x, y, crs=crs)
        timings.append(time.perf_counter() - started)
    return statistics.median(timings) * 1e6


def outside_points(resolver, bset, n, rng, margin=0.02):
    """``n`` random WGS84 points within ``margin`` degrees of the district but outside it."""
    west, south, east, north = bset.grids.total_bounds
    lon = rng.uniform(west - margin, east + margin, 8 * n)
    lat = rng.uniform(south - margin, north + margin, 8 * n)
    outside = (resolver.resolve_many(lon, lat)["status"] == "outside").to_numpy()
    return lon[outside][:n], lat[outside][:n]


def single_point_medians(resolver, bset, lon_in, lat_in, rng):
    """Median single-resolve times in µs for the phone-app cases (see the module doc)."""
    gcj_lon, gcj_lat = from_wgs84(lon_in[:2000], lat_in[:2000], "gcj02")
    out_lon, out_lat = outside_points(resolver, bset, 2000, rng)
    return {"WGS84, inside a grid": single_point_median_us(resolver, lon_in, lat_in),
            "GCJ-02, inside a grid": single_point_median_us(resolver, gcj_lon, gcj_lat, "gcj02"),
            "WGS84, outside the district": single_point_median_us(resolver, out_lon, out_lat)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--grids", type=int, default=1_000)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each; the best counts")
    args = parser.parse_args()

    bset = district(args.grids)
    started = time.perf_counter()
    resolver = Resolver(bset)
    build_s = time.perf_counter() - started
    print(f"district: {len(bset.grids)} grids, {len(bset.communities)} communities, "
          f"{len(bset.stations)} stations; resolver built in {build_s * 1e3:.1f} ms")
    rng = np.random.default_rng(1)
    lon, lat = random_points(bset, args.points, rng)

    ours_s, ours = min((run_gridline(resolver, lon, lat) for _ in range(args.repeat)),
                       key=lambda r: r[0])
    theirs_s, theirs = min((run_geopandas(bset, lon, lat) for _ in range(args.repeat)),
                           key=lambda r: r[0])
    print(f"gridline  resolve_many:              {ours_s:7.3f} s  "
          f"{args.points / ours_s:12,.0f} points/s")
    print(f"geopandas sjoin + sjoin_nearest:     {theirs_s:7.3f} s  "
          f"{args.points / theirs_s:12,.0f} points/s")
    inside = ours["status"] == "ok"
    print(f"  {inside.mean():.1%} of the points fall in a grid")
    same = identical(ours, theirs)
    lon_in, lat_in = lon[inside.to_numpy()], lat[inside.to_numpy()]
    for case, median_us in single_point_medians(resolver, bset, lon_in, lat_in, rng).items():
        print(f"single resolve (in-process, {case}): median {median_us:.1f} µs")
    print(f"ratio_vs_geopandas={theirs_s / ours_s:.2f} identical={str(same).lower()}")


if __name__ == "__main__":
    main()
