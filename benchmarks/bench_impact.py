"""The impact preview after one edit, over a million historic reports.

1 000 000 report points inside the demo district, spread over 24 months, are indexed once against
the active set (``ReportIndex``, reported separately: it is built once per active version and
topped up as reports arrive). Then, for each kind of edit — split a grid, merge two grids, move
a grid to the neighbouring community, reshape a grid — the preview is computed and timed, side
by side with two ways of answering the same question without the shortcut, in the same run:

* ``full``: build a resolver for the draft and re-resolve every point (``Resolver.resolve_many``);
* ``sjoin``: geopandas ``sjoin(predicate="within")`` of every point against the draft's grids
  (its spatial index built before the clock starts).

Both must find exactly the same number of reports changing grid as the preview. The last line
is ``preview_ms=<worst> ratio_vs_full=<x> ratio_vs_sjoin=<y> identical=<true|false>``, the
ratios being the reference's time over the preview's (the smallest over the edits).

    python benchmarks/bench_impact.py [--points N] [--repeat R]
"""

from __future__ import annotations

import argparse
import statistics
import time

import geopandas as gpd
import numpy as np
import shapely
from shapely.geometry import LineString, mapping

from geo.boundaries import load_boundaries
from geo.demo import default_source
from geo.edits import apply_edit
from geo.impact import ReportIndex
from geo.resolver import Resolver

MONTHS = 12
NOW = np.datetime64("2026-11-15T12:00:00")


def edits(bset) -> dict[str, tuple[str, dict]]:
    """One edit of each kind on the demo district."""
    grids = bset.grids
    rows = list(grids.itertuples())
    g = rows[200]
    x0, y0, x1, y1 = g.geometry.bounds
    line = LineString([((x0 + x1) / 2, y0 - 0.001), ((x0 + x1) / 2, y1 + 0.001)])
    a, b = next((a, b) for a, b in zip(rows, rows[1:], strict=False)
                if a.community_code == b.community_code
                and shapely.length(shapely.intersection(a.geometry.boundary,
                                                        b.geometry.boundary)) > 1e-4)
    communities = bset.communities.set_index("code")
    moved, target = next(
        (r.code, c) for r in rows[300:] for c in communities.index
        if c != r.community_code and (grids["community_code"] == r.community_code).sum() > 1
        and shapely.length(shapely.intersection(r.geometry.boundary,
                                                communities.geometry[c].boundary)) > 1e-4)
    strip = shapely.intersection(shapely.buffer(shapely.intersection(
        a.geometry.boundary, b.geometry.boundary), 0.0002), b.geometry)
    return {
        "split": ("split", {"grid": g.code, "line": mapping(line)}),
        "merge": ("merge", {"grids": [a.code, b.code]}),
        "reassign": ("reassign", {"grid": moved, "community": target}),
        "reshape": ("reshape", {"grid": a.code, "polygon": mapping(
            shapely.union(a.geometry, strip))}),
    }


def history(bset, n: int, rng):
    """``n`` points inside the grids, dated over the last 24 months."""
    points = bset.grids.sample_points(max(n // len(bset.grids), 1), rng=rng)
    points = points.explode(index_parts=False)
    picks = rng.integers(0, len(points), n)
    lon = points.x.to_numpy()[picks] + rng.normal(0, 0.0004, n)
    lat = points.y.to_numpy()[picks] + rng.normal(0, 0.0004, n)
    when = NOW - rng.integers(0, 730, n).astype("timedelta64[D]")
    return lon, lat, when


def timed(function, repeat: int):
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    rng = np.random.default_rng(2026)
    active = load_boundaries(default_source())
    lon, lat, when = history(active, args.points, rng)
    recent = when.astype("datetime64[M]") > NOW.astype("datetime64[M]") - np.timedelta64(
        MONTHS, "M")
    resolver = Resolver(active)
    started = time.perf_counter()
    index = ReportIndex(active, resolver)
    index.add(lon, lat, when)
    built = time.perf_counter() - started
    old = active.grids["code"].to_numpy(object)
    old_codes = np.append(old, "")[index.grid]
    points = gpd.GeoDataFrame(geometry=gpd.points_from_xy(lon, lat), crs="EPSG:4326")
    print(f"{args.points:,} reports over {len(active.grids)} grids; {int(recent.sum()):,} in "
          f"the last {MONTHS} months; index built once in {built:.2f} s")
    print(f"{'edit':>9} {'preview ms':>11} {'full ms':>9} {'sjoin ms':>9} {'vs full':>8} "
          f"{'vs sjoin':>9} {'re-resolved':>12} {'moved':>7} identical")
    worst, ratios_full, ratios_sjoin, identical = 0.0, [], [], True
    for name, (operation, params) in edits(active).items():
        draft = apply_edit(active, operation, params).boundaries
        preview_s, impact = timed(lambda d=draft: index.preview(d, months=MONTHS, now=NOW),
                                  args.repeat)

        def full(d=draft):
            found = Resolver(d).resolve_many(lon, lat, errors="mark")
            return found["grid_code"].fillna("").to_numpy(object)

        def sjoin(d=draft):
            joined = gpd.sjoin(points, d.grids[["code", "geometry"]], how="left",
                               predicate="within")
            joined = joined[~joined.index.duplicated(keep="first")]
            return joined["code"].fillna("").to_numpy(object)

        draft.grids.sindex.query(shapely.Point(0, 0))
        full_s, full_codes = timed(full, 1)
        sjoin_s, sjoin_codes = timed(sjoin, 1)
        moved = impact.summary["reports_changing_grid"]
        same = (moved == int(((full_codes != old_codes) & recent).sum())
                == int(((sjoin_codes != old_codes) & recent).sum()))
        identical &= same
        worst = max(worst, preview_s)
        ratios_full.append(full_s / preview_s)
        ratios_sjoin.append(sjoin_s / preview_s)
        print(f"{name:>9} {preview_s * 1000:>11.1f} {full_s * 1000:>9.0f} {sjoin_s * 1000:>9.0f} "
              f"{full_s / preview_s:>8.1f} {sjoin_s / preview_s:>9.1f} "
              f"{impact.summary['points_reresolved']:>12,} {moved:>7,} {str(same).lower()}")
    print(f"preview_ms={worst * 1000:.1f} ratio_vs_full={min(ratios_full):.1f} "
          f"ratio_vs_sjoin={min(ratios_sjoin):.1f} identical={str(identical).lower()}")


if __name__ == "__main__":
    main()
