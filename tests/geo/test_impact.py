"""The impact preview: its shortcut (re-resolving only points of changed grids) must give the
same moves as resolving every point against the draft."""

import numpy as np
import pandas as pd
import pytest
import shapely
from shapely.geometry import LineString, mapping

from geo.edits import apply_edit
from geo.impact import ReportIndex, grid_changes
from geo.resolver import Resolver

NOW = np.datetime64("2026-11-15T12:00:00")


@pytest.fixture(scope="module")
def points(demo):
    """Random points over the district (some outside it), with dates over two years."""
    rng = np.random.default_rng(7)
    x0, y0, x1, y1 = demo.grids.total_bounds
    n = 60_000
    lon, lat = rng.uniform(x0 - 0.005, x1 + 0.005, n), rng.uniform(y0 - 0.005, y1 + 0.005, n)
    when = NOW - rng.integers(0, 730, n).astype("timedelta64[D]")
    return lon, lat, when


@pytest.fixture(scope="module")
def index(demo, demo_resolver, points):
    index = ReportIndex(demo, demo_resolver)
    lon, lat, when = points
    index.add(lon[:30_000], lat[:30_000], when[:30_000])
    index.add(lon[30_000:], lat[30_000:], when[30_000:])  # topped up later
    return index


def _edits(demo):
    grids = demo.grids
    g = grids.iloc[200]
    x0, y0, x1, y1 = g.geometry.bounds
    line = LineString([((x0 + x1) / 2, y0 - 0.001), ((x0 + x1) / 2, y1 + 0.001)])
    rows = list(grids.itertuples())
    pair = next((a.code, b.code) for a, b in zip(rows, rows[1:], strict=False)
                if a.community_code == b.community_code
                and shapely.length(shapely.intersection(a.geometry.boundary,
                                                        b.geometry.boundary)) > 1e-4)
    communities = demo.communities.set_index("code")
    moved, target = next(
        (r.code, c) for r in grids.itertuples() for c in communities.index
        if c != r.community_code and (grids["community_code"] == r.community_code).sum() > 1
        and shapely.length(shapely.intersection(r.geometry.boundary,
                                                communities.geometry[c].boundary)) > 1e-4)
    return {
        "split": ("split", {"grid": g.code, "line": mapping(line)}),
        "merge": ("merge", {"grids": list(pair)}),
        "reassign": ("reassign", {"grid": moved, "community": target}),
    }


@pytest.mark.parametrize("kind", ["split", "merge", "reassign"])
def test_the_preview_moves_exactly_the_points_a_full_re_resolve_moves(demo, index, points, kind):
    operation, params = _edits(demo)[kind]
    draft = apply_edit(demo, operation, params).boundaries
    lon, lat, when = points
    opened = np.arange(0, len(lon), 7)
    impact = index.preview(draft, months=12, now=NOW, open_lon=lon[opened], open_lat=lat[opened])

    old = Resolver(demo).resolve_many(lon, lat, errors="mark")
    new = Resolver(draft).resolve_many(lon, lat, errors="mark")
    recent = when.astype("datetime64[M]") > NOW.astype("datetime64[M]") - np.timedelta64(12, "M")
    old, new = old.fillna({"grid_code": "", "community_code": ""}), new.fillna(
        {"grid_code": "", "community_code": ""})
    changes_grid = (old["grid_code"] != new["grid_code"]).to_numpy()
    changes_community = (old["community_code"] != new["community_code"]).to_numpy()
    s = impact.summary
    assert s["reports"] == recent.sum()
    assert s["reports_changing_grid"] == (changes_grid & recent).sum() > 0
    assert s["reports_changing_community"] == (changes_community & recent).sum()
    assert s["open_orders"] == len(opened)
    assert s["open_orders_changing_grid"] == changes_grid[opened].sum()
    assert s["open_orders_changing_community"] == changes_community[opened].sum()
    assert s["points_reresolved"] < recent.sum() / 20  # only points near the change

    # Workload per changed grid, before and after, equals a direct count.
    before = old.loc[recent, "grid_code"].value_counts() / 12
    after = new.loc[recent, "grid_code"].value_counts() / 12
    for row in impact.grids.itertuples():
        assert row.reports_per_month_before == pytest.approx(before.get(row.code, 0), abs=0.01)
        assert row.reports_per_month_after == pytest.approx(after.get(row.code, 0), abs=0.01)
    if kind == "reassign":
        assert s["reports_changing_community"] > 0 and s["grids_moved"] == 0
        assert sorted(impact.grids["change"]) == ["added", "removed"]


def test_an_unchanged_draft_changes_nothing(demo, index):
    impact = index.preview(demo, months=6, now=NOW)
    assert impact.grids.empty and impact.stations.empty
    assert impact.summary["reports_changing_grid"] == 0
    assert impact.summary["points_reresolved"] == 0


def test_grid_changes_name_each_kind_with_areas(demo):
    operation, params = _edits(demo)["split"]
    edited = apply_edit(demo, operation, params)
    table = grid_changes(demo, edited.boundaries).set_index("code")
    kept, added = edited.grids
    assert table.loc[kept, "change"] == "reshaped" and table.loc[added, "change"] == "added"
    assert pd.isna(table.loc[added, "area_before_m2"])
    assert table["area_change_m2"].sum() == pytest.approx(0, abs=1)
    assert table.loc[added, "area_after_m2"] == pytest.approx(-table.loc[kept, "area_change_m2"],
                                                              abs=0.2)
    merged = apply_edit(demo, *_edits(demo)["merge"]).boundaries
    assert sorted(grid_changes(demo, merged)["change"]) == ["removed", "reshaped"]


def test_households_and_stations_follow_the_new_grids(demo, index):
    operation, params = _edits(demo)["split"]
    edited = apply_edit(demo, operation, params)
    impact = index.preview(edited.boundaries, months=6, now=NOW).grids.set_index("code")
    kept, added = edited.grids
    assert impact.loc[added, "households_before"] == 0
    assert impact.loc[kept, "households_after"] + impact.loc[added, "households_after"] == \
        pytest.approx(impact.loc[kept, "households_before"])
    assert impact.loc[added, "households_after"] > 0
    stations = index.preview(edited.boundaries, months=6, now=NOW).stations
    assert added in {code for gained in stations["grids_gained"] for code in gained}
